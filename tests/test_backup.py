"""``ordersync backup`` while the daemon writes, and ``ordersync restore``, through the real
command against the Fotoware simulator.

The daemon (``ordersync run``) ingests a large simulator whose list keeps growing and pushes
approvals while backups are taken one after the other. Before each backup the test reads what
the ledger has committed; every backup must pass ``PRAGMA integrity_check`` and hold all of it.

Why no test shows that a plain ``cp`` of a live ledger can be unusable: whether a copy tears
depends on where a checkpoint is at that instant, so such a test would pass or fail by luck;
docs/operations.md ("Backing up while it runs") explains it instead.

``ORDERSYNC_BACKUP_ORDERS`` and ``ORDERSYNC_BACKUP_ROUNDS`` make the first test longer (for
example 50000 orders and 20 backups).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from ordersync.constants import BUSY_TIMEOUT_S
from ordersync_adapters.fotoware.simulator import FotowareSimulator
from tests.cli_support import (  # noqa: F401  (fixtures)
    CLI,
    SECRET_ENV,
    SIM_SECRET,
    CliResult,
    arun_cli,
    cli_env,
    fotoware_sim,
    fotoware_toml,
    json_data,
    one_error_line,
    start_cli,
    wait_for_log_event,
    write_config,
)
from tests.test_cli import stop_daemon

V = "fotoware-main"
ENV = {SECRET_ENV: SIM_SECRET}
ORDERS = int(os.environ.get("ORDERSYNC_BACKUP_ORDERS", "3000"))
ROUNDS = int(os.environ.get("ORDERSYNC_BACKUP_ROUNDS", "4"))
APPROVALS = 8
BOUND_S = 120.0   # only keeps a broken build from hanging the suite


def committed(ledger: Path) -> dict[str, set]:
    """What the ledger holds now: order ids, event ids and succeeded action ids."""
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], ledger
        return {
            "orders": set(conn.execute("SELECT instance, vendor_id FROM orders")),
            "events": {row[0] for row in conn.execute("SELECT id FROM events")},
            "succeeded": {row[0] for row in conn.execute(
                "SELECT id FROM actions WHERE state = 'succeeded'")},
        }
    finally:
        conn.close()


async def keep_adding(sim: FotowareSimulator) -> None:
    """New orders at the vendor all the time, so the daemon keeps writing."""
    while True:
        sim.add_order("pending")
        await asyncio.sleep(0.01)


async def until(condition, what: str) -> None:
    """Wait (bounded) for ``condition()`` to hold; only a broken build reaches the bound."""
    async with asyncio.timeout(BOUND_S):
        while not condition():
            await asyncio.sleep(0.05)
    assert condition(), what


async def test_backups_taken_while_the_daemon_writes_hold_every_committed_order(
        write_config, tmp_path):  # noqa: F811
    sim = FotowareSimulator(orders=ORDERS, client_secret=SIM_SECRET, page_size=50)
    sim.base_url = await sim.start()
    ledger = tmp_path / "ledger.db"
    config = str(write_config(fotoware_toml(sim.base_url, ledger, name=V,
                                            extra="poll_interval_s = 0.1\n")))
    daemon = await start_cli("--config", config, "run", env=ENV, cwd=tmp_path)
    adding = asyncio.create_task(keep_adding(sim))
    seen: list[str] = []
    rounds = []
    try:
        await wait_for_log_event(daemon, "started", seen)
        await until(lambda: ledger.exists() and len(committed(ledger)["orders"]) > 100,
                    "the daemon's first pages")
        pending = sorted(o for o in sim.order_ids()
                         if sim.get_order(o)["state"] == "pending"
                         and (V, o) in committed(ledger)["orders"])[:APPROVALS]
        queued = await arun_cli("--config", config, "approve", *(f"{V}:{o}" for o in pending),
                                env=ENV, cwd=tmp_path)
        assert queued.returncode == 0, queued
        for n in range(ROUNDS):
            before = committed(ledger)
            target = tmp_path / "backups" / f"{n}.db"
            target.parent.mkdir(exist_ok=True)
            result = await arun_cli("--config", config, "backup", str(target), "--json",
                                    env=ENV, cwd=tmp_path, timeout=BOUND_S)
            assert result.returncode == 0, result
            copy = committed(target)   # passes PRAGMA integrity_check
            for what in before:
                assert before[what] <= copy[what], (n, what, before[what] - copy[what])
            assert json_data(result) == {"path": str(target), "bytes": target.stat().st_size,
                                         "orders": len(copy["orders"]), "ledger": str(ledger)}
            assert stat.S_IMODE(target.stat().st_mode) == 0o600
            assert not Path(f"{target}-wal").exists()  # one self-contained file
            rounds.append((len(before["orders"]), len(copy["orders"])))
        await until(lambda: len(committed(ledger)["succeeded"]) == APPROVALS,
                    "the approvals pushed")
        # The daemon goes on writing after the backups (waited for, not raced: with the
        # backfill written by the page writer, it can be over before the last round).
        await until(lambda: len(committed(ledger)["orders"]) > rounds[-1][1],
                    "orders written after the last backup")
    finally:
        adding.cancel()
        code, err = await stop_daemon(daemon)
        await sim.stop()
    assert code == 0, err
    assert sorted(e.order_id for e in sim.effects) == sorted(pending)   # each once
    # The daemon went on writing across the backups (the copies are of a moving ledger).
    assert rounds[-1][0] > rounds[0][1], rounds
    assert len(committed(ledger)["orders"]) > rounds[-1][1]
    assert list(tmp_path.glob("backups/.*")) == []   # no temporary file left behind


@pytest.fixture
def synced(fotoware_sim, write_config, tmp_path):  # noqa: F811
    """``await synced()``: (config path, ledger path) after one ``sync --once``."""

    async def make() -> tuple[str, Path]:
        ledger = tmp_path / "var" / "ledger.db"
        config = str(write_config(fotoware_toml(fotoware_sim.base_url, ledger, name=V)))
        result = await arun_cli("--config", config, "sync", "--once", env=ENV, cwd=tmp_path)
        assert result.returncode == 0, result
        return config, ledger

    return make


async def test_a_folder_gets_a_dated_backup_and_nothing_is_overwritten(synced, tmp_path):
    config, ledger = await synced()
    folder = tmp_path / "backups"
    folder.mkdir()
    made = await arun_cli("--config", config, "backup", str(folder), env=ENV, cwd=tmp_path)
    assert made.returncode == 0, made
    [copy] = folder.iterdir()
    assert copy.name.startswith("ordersync-") and copy.name.endswith("Z.db"), copy
    assert made.stdout == (f"wrote {copy}: {copy.stat().st_size} bytes, 40 orders (a checked"
                           f" copy of {ledger})\n")
    assert committed(copy)["orders"] == committed(ledger)["orders"]

    again = await arun_cli("--config", config, "backup", str(copy), env=ENV, cwd=tmp_path)
    one_error_line(again, 2, f"backup {copy} already exists (give --force")
    copy.write_bytes(b"old")
    forced = await arun_cli("--config", config, "backup", str(copy), "--force", env=ENV,
                            cwd=tmp_path)
    assert forced.returncode == 0, forced
    assert len(committed(copy)["orders"]) == 40


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", ".lock"])
async def test_the_ledger_itself_is_refused_as_a_target(synced, tmp_path, suffix):
    config, ledger = await synced()
    before = ledger.read_bytes()
    result = await arun_cli("--config", config, "backup", f"{ledger}{suffix}", "--force",
                            env=ENV, cwd=tmp_path)
    one_error_line(result, 2, f"the backup may not be {ledger}{suffix}: that is the ledger")
    assert ledger.read_bytes() == before


async def test_a_target_that_is_not_a_regular_file_is_refused_even_with_force(synced,
                                                                               tmp_path):
    """``backup /dev/stdout --force`` (run as root) used to rename the copy over the
    /dev/stdout link; a FIFO or a link to one is left as it is, and the copy goes nowhere."""
    config, _ = await synced()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "stdout"
    link.symlink_to(fifo)
    for target in (fifo, link):
        result = await arun_cli("--config", config, "backup", str(target), "--force",
                                env=ENV, cwd=tmp_path)
        one_error_line(result, 2, f"backup {target} is not a regular file (a device, FIFO or"
                       " socket): give a file or folder")
    assert stat.S_ISFIFO(fifo.stat().st_mode) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


async def test_an_unusable_target_exits_4_and_leaves_nothing(synced, tmp_path):
    config, _ = await synced()
    missing = await arun_cli("--config", config, "backup", str(tmp_path / "no" / "x.db"),
                             env=ENV, cwd=tmp_path)
    one_error_line(missing, 4, f"backup {tmp_path / 'no' / 'x.db'}: its folder"
                   f" {tmp_path / 'no'} does not exist")
    unwritable = await arun_cli("--config", config, "backup", "/sys/ordersync-backup.db",
                                env=ENV, cwd=tmp_path)   # sysfs refuses new files, even to root
    one_error_line(unwritable, 4, "/sys/ordersync-backup.db: cannot write it")

    folder = tmp_path / "small"
    folder.mkdir()

    def small_files() -> None:  # writes beyond 64 KiB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    proc = await asyncio.create_subprocess_exec(
        *CLI, "--config", config, "backup", str(folder / "x.db"), env=cli_env(ENV),
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, preexec_fn=small_files)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    full = CliResult(("backup",), proc.returncode, out.decode(), err.decode())
    one_error_line(full, 4, f"{folder / 'x.db'}: cannot write it: the disk is full or a file"
                   " size limit was reached")
    assert list(folder.iterdir()) == []


async def test_a_ledger_locked_past_the_busy_timeout_is_waited_for_not_refused(
        synced, tmp_path):
    """Where other commands give up after the busy timeout (exit 3), a backup waits on."""
    config, ledger = await synced()
    holder = sqlite3.connect(ledger, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")   # no reader gets in until it closes
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE vendor_health SET paused = 0")
    holder.execute("COMMIT")
    try:
        backup = await start_cli("--config", config, "backup", str(tmp_path / "b.db"),
                                 env=ENV, cwd=tmp_path)
        await asyncio.sleep(BUSY_TIMEOUT_S + 1)
        assert backup.returncode is None   # still waiting for the ledger
    finally:
        holder.close()
    out, err = await asyncio.wait_for(backup.communicate(), BOUND_S)
    assert backup.returncode == 0, err
    assert out.decode().startswith(f"wrote {tmp_path / 'b.db'}: ")
    assert committed(tmp_path / "b.db")["orders"] == committed(ledger)["orders"]


# ------------------------------------------------------------------ restore

async def test_restore_puts_a_backup_back_and_keeps_the_ledger_it_replaced(
        synced, fotoware_sim, tmp_path):  # noqa: F811
    config, ledger = await synced()
    order = sorted(o for o in fotoware_sim.order_ids()
                   if fotoware_sim.get_order(o)["state"] == "pending")[0]
    queued = await arun_cli("--config", config, "approve", f"{V}:{order}", env=ENV,
                            cwd=tmp_path)
    assert queued.returncode == 0, queued
    backup = tmp_path / "before.db"   # holds the approval as queued
    made = await arun_cli("--config", config, "backup", str(backup), env=ENV, cwd=tmp_path)
    assert made.returncode == 0, made
    backup_bytes = backup.read_bytes()
    for _ in range(5):
        fotoware_sim.add_order("pending")
    # Another process has the ledger open through the next sync and is then killed: the
    # sync's commits stay in the -wal, not yet in the ledger file, as after a crash.
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("
        "'SELECT count(*) FROM orders').fetchone(); print(flush=True); sys.stdin.read()",
        str(ledger), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    await holder.stdout.readline()
    later = await arun_cli("--config", config, "sync", "--once", env=ENV, cwd=tmp_path)
    holder.kill()
    await holder.wait()
    assert later.returncode == 0, later   # and performed the approval
    assert [e.order_id for e in fotoware_sim.effects] == [order]
    assert Path(f"{ledger}-wal").stat().st_size > 0
    latest = committed(ledger)["orders"]
    assert len(latest) == 45

    restored = await arun_cli("--config", config, "restore", str(backup), "--json", env=ENV,
                              cwd=tmp_path)
    assert restored.returncode == 0, restored
    data = json_data(restored)
    kept = Path(data["kept"])
    assert data == {"ledger": str(ledger), "from": str(backup), "bytes": ledger.stat().st_size,
                    "orders": 40, "kept": str(kept), "actions_to_verify": 1}
    assert kept.name.startswith("ledger.db.before-restore-")
    assert committed(ledger)["orders"] == committed(backup)["orders"]
    assert committed(kept)["orders"] == latest   # nothing of the replaced ledger is lost
    for path in (ledger, kept):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert backup.read_bytes() == backup_bytes   # the backup stays a backup

    again = await arun_cli("--config", config, "sync", "--once", "--json", env=ENV,
                           cwd=tmp_path)   # the restored ledger works, and catches up
    assert again.returncode == 0, again
    assert committed(ledger)["orders"] == latest
    # The approval, queued in the backup but performed since, is verified, not sent again.
    assert json_data(again)[0]["actions"] == {"succeeded": 1}
    assert [e.order_id for e in fotoware_sim.effects] == [order]


async def test_restore_is_refused_while_the_daemon_runs(synced, tmp_path):
    config, ledger = await synced()
    backup = tmp_path / "b.db"
    assert (await arun_cli("--config", config, "backup", str(backup), env=ENV,
                           cwd=tmp_path)).returncode == 0
    daemon = await start_cli("--config", config, "run", env=ENV, cwd=tmp_path)
    try:
        await wait_for_log_event(daemon, "started", [])
        refused = await arun_cli("--config", config, "restore", str(backup), env=ENV,
                                 cwd=tmp_path)
    finally:
        code, err = await stop_daemon(daemon)
    assert code == 0, err
    one_error_line(refused, 3, f"another ordersync process (pid {daemon.pid}) is using the"
                   f" ledger {ledger}")
    assert list(ledger.parent.glob("*before-restore*")) == []


@pytest.mark.parametrize("kind", ["not-sqlite", "someone-elses", "truncated", "newer",
                                  "missing"])
async def test_restore_refuses_what_is_not_a_sound_ledger(synced, tmp_path, kind):
    config, ledger = await synced()
    bad = tmp_path / "bad.db"
    if kind == "not-sqlite":
        bad.write_text("not a database\n" * 100)
        expected = (4, "backup")
    elif kind == "someone-elses":
        other = sqlite3.connect(bad)
        other.execute("CREATE TABLE customers (name TEXT)")
        other.commit()
        other.close()
        expected = (4, f"backup {bad} is not an ordersync ledger")
    elif kind == "truncated":
        made = await arun_cli("--config", config, "backup", str(bad), env=ENV, cwd=tmp_path)
        assert made.returncode == 0, made
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 3])
        expected = (4, f"backup {bad}")
    elif kind == "newer":   # a backup of a ledger a later ordersync migrated
        made = await arun_cli("--config", config, "backup", str(bad), env=ENV, cwd=tmp_path)
        assert made.returncode == 0, made
        newer = sqlite3.connect(bad)
        newer.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                      " VALUES ('ordersync', 'm999_from_the_future', '2030-01-01')")
        newer.commit()
        newer.close()
        expected = (4, f"backup {bad} was made by a newer ordersync (migrations unknown here:"
                       " m999_from_the_future)")
    else:
        expected = (2, f"backup {bad} does not exist")
    before = committed(ledger)
    result = await arun_cli("--config", config, "restore", str(bad), env=ENV, cwd=tmp_path)
    one_error_line(result, *expected)
    assert committed(ledger) == before
    assert [p.name for p in ledger.parent.iterdir() if "restore" in p.name] == []
