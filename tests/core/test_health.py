"""health.py: loop progress, the heartbeat file and vendor readiness (time passed in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordersync.clock import iso
from ordersync.config import VendorConfig
from ordersync.health import (
    LoopProgress,
    UntrustedHeartbeat,
    allowance_s,
    daemon_problems,
    distrust,
    read_heartbeat,
    vendor_problems,
    write_heartbeat,
)
from ordersync.http import RetryPolicy
from ordersync.ledger.records import VendorHealth

NOW = 1_800_000_000.0


def test_a_busy_loop_without_progress_past_its_allowance_is_stuck():
    progress = LoopProgress()
    progress.add("fw/poll", 10.0, now=0.0)
    progress.add("fw/actions", 5.0, now=0.0)
    progress.mark("fw/poll", 1.0)                 # a poll begins
    progress.mark("fw/actions", 1.0, busy=False)  # the action loop waits
    assert progress.stuck(11.0) == []
    assert progress.stuck(11.5) == ["fw/poll"]    # a call hangs past every deadline
    progress.mark("fw/poll", 11.6)                # a page was written: progress again
    assert progress.stuck(100.0) == ["fw/poll"]
    progress.mark("fw/poll", 100.0, busy=False)   # waiting for the next poll: never stuck
    assert progress.stuck(10_000.0) == []
    assert progress.snapshot(10_000.0)["fw/actions"] == {
        "busy": False, "progress_age_s": 9999.0, "allowance_s": 5.0}


def test_heartbeat_file_is_private_and_says_who_and_when(tmp_path: Path):
    path = tmp_path / "ledger.db.heartbeat"
    write_heartbeat(path, 4242, NOW, {"fw/poll": {"busy": True}})
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_heartbeat(path) == {"pid": 4242, "time": NOW, "loops": {"fw/poll": {"busy": True}}}
    assert list(tmp_path.iterdir()) == [path]  # replaced atomically, nothing left behind
    assert read_heartbeat(tmp_path / "none") is None


def test_a_heartbeat_never_writes_through_a_planted_link(tmp_path: Path):
    """Someone who can write the heartbeat's folder plants its temporary name as a link to
    another file: the daemon (often root) used to truncate and write that file."""
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    path = tmp_path / "hb"
    planted = tmp_path / ".hb.4242.tmp"
    for plant in (planted.symlink_to, planted.hardlink_to):
        plant(victim)
        write_heartbeat(path, 4242, NOW, {})
        assert victim.read_text() == "keep me" and victim.stat().st_nlink == 1
        assert read_heartbeat(path)["pid"] == 4242 and path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("mode", "owner", "why"), [
    (0o100600, 1000, None),
    (0o100644, 1000, None),   # others may read it (the daemon's is 0600), not forge it
    (0o100666, 1000, "is writable by group or others (mode 0666)"),
    (0o100620, 1000, "is writable by group or others (mode 0620)"),
    (0o100602, 1000, "is writable by group or others (mode 0602)"),
    (0o100600, 0, "is owned by uid 0, not by this user (uid 1000)"),
])
def test_a_heartbeat_is_trusted_only_when_this_user_alone_may_write_it(mode, owner, why):
    assert distrust(mode, owner, 1000) == why


@pytest.mark.parametrize(("mode", "why"), [
    (0o100600, None),
    (0o100664, "is writable by group or others (mode 0664)"),
])
def test_root_trusts_the_daemon_users_heartbeat_that_only_its_owner_may_write(mode, why):
    assert distrust(mode, 1000, 0) == why


def test_reading_a_forgeable_heartbeat_or_a_link_says_so(tmp_path: Path):
    path = tmp_path / "hb"
    write_heartbeat(path, 4242, NOW, {})
    path.chmod(0o666)
    with pytest.raises(UntrustedHeartbeat, match=f"^heartbeat {path} is writable by group or"
                       r" others \(mode 0666\): not trusted \(anyone could fake a healthy"):
        read_heartbeat(path)
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(UntrustedHeartbeat, match=f"^heartbeat {link} is a symbolic link: not"
                       " trusted$"):
        read_heartbeat(link)


def test_daemon_problems_name_no_daemon_a_dead_one_and_a_wedged_one(tmp_path: Path):
    path = tmp_path / "hb"
    beat = {"pid": 7, "time": NOW, "loops": {"fw/poll": {"busy": True}, "fw/actions": {}}}
    assert daemon_problems(None, path, NOW, 60.0) == [
        f"no daemon: no heartbeat at {path} (is `ordersync run` running?)"]
    assert daemon_problems(beat, path, NOW + 5, 60.0, alive=lambda pid: pid == 7) == []
    assert daemon_problems(beat, path, NOW + 5, 60.0, alive=lambda pid: False) == [
        f"no daemon: the daemon (pid 7) that wrote {path} is not running (heartbeat 5s old)"]
    assert daemon_problems(beat, path, NOW + 61, 60.0, alive=lambda pid: True) == [
        "daemon (pid 7) wedged: heartbeat 61.0s old (stale after 60s); loops busy at its"
        " last heartbeat: fw/poll"]


def test_a_heartbeat_with_an_impossible_pid_or_time_is_not_a_heartbeat(tmp_path: Path):
    """pid 0 and -1 name process groups (os.kill says "alive"), a pid past the kernel's
    range made ``check`` crash with OverflowError, and a bool is not a pid."""
    path = tmp_path / "hb"
    for pid, at in ((0, NOW), (-1, NOW), (2**40, NOW), (True, NOW), (7, "soon")):
        path.write_text(f'{{"pid": {str(pid).lower()}, "time": {at!r}}}'.replace("'", '"'))
        path.chmod(0o600)
        with pytest.raises(ValueError, match=f"^{path} is not a heartbeat file$"):
            read_heartbeat(path)


def test_a_heartbeat_from_the_future_is_a_problem_not_healthy_forever(tmp_path: Path):
    path = tmp_path / "hb"
    beat = {"pid": 7, "time": NOW + 3600}   # the clock went back an hour, or a forged file
    assert daemon_problems(beat, path, NOW, 60.0, alive=lambda pid: True) == [
        f"daemon (pid 7): heartbeat {path} is 3600s in the future (was the clock set back?)"]
    assert daemon_problems({**beat, "time": NOW + 59}, path, NOW, 60.0,
                           alive=lambda pid: True) == []


def vendor(name: str) -> VendorConfig:
    return VendorConfig(name=name, adapter="fotoware", base_url="http://x", poll_interval_s=60,
                        retry=RetryPolicy(call_deadline_s=30.0))


def health(name: str, success_age_s: float | None, failures: int = 0,
           paused: bool = False) -> VendorHealth:
    return VendorHealth(name, iso(NOW), None if success_age_s is None
                        else iso(NOW - success_age_s), "VendorUnavailable" if failures else None,
                        "HTTP 503" if failures else None, failures, paused)


def test_a_vendor_is_ready_while_its_last_success_is_within_its_allowance():
    vendors = [vendor(n) for n in ("fresh", "stale", "never", "paused", "unseen")]
    assert allowance_s(vendors[0]) == 3 * 60 + 30
    problems = vendor_problems(vendors, [
        health("fresh", 200.0, failures=1),   # failing now, but its last success is recent
        health("stale", 211.0, failures=3),
        health("never", None, failures=2),
        health("paused", None, paused=True),  # an operator paused it: not asked to be ready
    ], NOW)
    assert problems == {
        "stale": "last successful poll 211s ago (allowed 210s); 3 failed polls since,"
                 " last: HTTP 503",
        "never": "no successful poll yet: HTTP 503",
        "unseen": "no successful poll yet",
    }


def test_a_last_success_from_the_future_is_not_ready_until_the_clock_catches_up():
    """The clock set back an hour: the vendor may have been down since, unseen."""
    problems = vendor_problems([vendor("ahead"), vendor("skew")], [
        health("ahead", -3600.0, failures=2), health("skew", -200.0)], NOW)
    assert problems == {"ahead": "last successful poll 3600s in the future (was the clock set"
                                 " back?); 2 failed polls since, last: HTTP 503"}
