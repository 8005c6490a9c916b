"""Is the daemon healthy? Its loops' progress, the heartbeat file, each vendor's readiness.

* **Progress** (:class:`LoopProgress`): each of the daemon's loops marks progress when it
  starts a step, as the step advances (a page written, an action done) and when it begins to
  wait. A loop that is busy (not waiting) and has marked nothing for longer than its
  allowance is *stuck*: a call hangs past its deadline, or a bug.
* **The heartbeat** (``<ledger>.heartbeat`` by default): a small private JSON file (pid,
  time, each loop's progress), replaced atomically every ``[heartbeat] interval_s``, but only
  while no loop is stuck. A heartbeat older than ``stale_after_s`` means the daemon is
  stopped or wedged; systemd's watchdog is pinged on the same condition.
* **Readiness** (:func:`vendor_problems`): every unpaused vendor instance polled successfully
  within its allowance, ``3 × poll_interval_s + call_deadline_s``.

``ordersync check`` and the status server's ``/healthz`` and ``/readyz`` answer from these.
Time is passed in everywhere (``now``: wall clock for files and the ledger, monotonic for
progress).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from .config import VendorConfig
from .ledger.records import VendorHealth

HEARTBEAT_MAX_BYTES = 65536
"""The most of a heartbeat file read (the daemon writes a few hundred bytes)."""
POLL_ALLOWANCE_INTERVALS = 3
"""A vendor is ready when its last success is at most this many poll intervals (plus one
call deadline) old."""


@dataclass
class _Loop:
    allowance_s: float
    last_s: float
    busy: bool = False


class LoopProgress:
    """When each loop last made progress, and which ones are stuck (monotonic time)."""

    def __init__(self) -> None:
        self._loops: dict[str, _Loop] = {}

    def add(self, name: str, allowance_s: float, now: float) -> None:
        """A loop whose step may go ``allowance_s`` without progress before it is stuck."""
        self._loops[name] = _Loop(allowance_s, now)

    def mark(self, name: str, now: float, *, busy: bool = True) -> None:
        """Progress: a step begins or advances (``busy``), or the loop begins to wait."""
        loop = self._loops[name]
        loop.last_s, loop.busy = now, busy

    def stuck(self, now: float) -> list[str]:
        return [name for name, loop in self._loops.items()
                if loop.busy and now - loop.last_s > loop.allowance_s]

    def snapshot(self, now: float) -> dict[str, dict]:
        return {name: {"busy": loop.busy, "progress_age_s": round(now - loop.last_s, 3),
                       "allowance_s": loop.allowance_s}
                for name, loop in self._loops.items()}


def write_heartbeat(path: Path, pid: int, now: float, loops: Mapping[str, dict]) -> None:
    """Replace the heartbeat file atomically (readers never see half of it); mode 0600,
    never through a link or file planted at its temporary name."""
    temporary = path.with_name(f".{path.name}.{pid}.tmp")
    temporary.unlink(missing_ok=True)   # a link or a file someone planted there: not ours
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, orjson.dumps({"pid": pid, "time": now, "loops": loops}))
    finally:
        os.close(fd)
    os.replace(temporary, path)


class UntrustedHeartbeat(ValueError):
    """A heartbeat file that someone other than this user may have written."""


def read_heartbeat(path: Path) -> dict | None:
    """The heartbeat the daemon last wrote; None when there is none. A file that is not a
    heartbeat raises ValueError; one this user does not alone control (a symbolic link,
    another's file, one that group or others may write) UntrustedHeartbeat: anyone could
    fake a healthy daemon with it."""
    try:  # never blocks on a FIFO, never reads a device without end, never follows a link
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UntrustedHeartbeat(f"heartbeat {path} is a symbolic link: not trusted"
                                     ) from None
        raise
    try:
        found = os.fstat(fd)
        why = distrust(found.st_mode, found.st_uid, os.getuid())
        if why:
            raise UntrustedHeartbeat(f"heartbeat {path} {why}: not trusted (anyone could"
                                     " fake a healthy daemon)")
        raw = os.read(fd, HEARTBEAT_MAX_BYTES) if stat.S_ISREG(found.st_mode) else b""
    finally:
        os.close(fd)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError(f"{path} is not a heartbeat file") from None
    if not (isinstance(data, dict) and _pid(data.get("pid"))
            and isinstance(data.get("time"), int | float)
            and not isinstance(data.get("time"), bool)):
        raise ValueError(f"{path} is not a heartbeat file")
    return data


def distrust(mode: int, owner: int, uid: int) -> str | None:
    """Why a heartbeat file of this mode and owner is not this user's alone (None: it is;
    the daemon writes it 0600). Root (uid 0) trusts one owner's file: checking the daemon's
    user's heartbeat from root's cron is checking the daemon, and only its owner may write
    it."""
    if owner != uid and uid != 0:
        return f"is owned by uid {owner}, not by this user (uid {uid})"
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by group or others (mode {stat.S_IMODE(mode):04o})"
    return None


def _pid(value: object) -> bool:
    """A process id (0 and negatives name process groups; os.kill overflows past 2**31)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


def remove_heartbeat(path: Path, pid: int) -> None:
    """On a clean stop: the file describes a running daemon, and this one is going."""
    try:
        if (read_heartbeat(path) or {}).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def daemon_problems(heartbeat: dict | None, path: Path, now: float, stale_after_s: float,
                    alive: Callable[[int], bool] = pid_alive) -> list[str]:
    """Why the daemon is not healthy according to its heartbeat (empty: it is)."""
    if heartbeat is None:
        return [f"no daemon: no heartbeat at {path} (is `ordersync run` running?)"]
    pid, age_s = heartbeat["pid"], now - heartbeat["time"]
    if not alive(pid):
        return [f"no daemon: the daemon (pid {pid}) that wrote {path} is not running"
                f" (heartbeat {age_s:.0f}s old)"]
    if age_s < -stale_after_s:   # else healthy, whatever happens, until the clock catches up
        return [f"daemon (pid {pid}): heartbeat {path} is {-age_s:.0f}s in the future (was the"
                " clock set back?)"]
    if age_s > stale_after_s:
        stuck = [name for name, loop in (heartbeat.get("loops") or {}).items()
                 if isinstance(loop, dict) and loop.get("busy")]
        return [f"daemon (pid {pid}) wedged: heartbeat {age_s:.1f}s old (stale after"
                f" {stale_after_s:g}s); loops busy at its last heartbeat: "
                + (", ".join(stuck) or "none")]
    return []


def allowance_s(vendor: VendorConfig) -> float:
    """How old a vendor's last successful poll may be while it counts as ready."""
    return POLL_ALLOWANCE_INTERVALS * vendor.poll_interval_s + vendor.retry.call_deadline_s


def vendor_problems(vendors: Iterable[VendorConfig], health: Iterable[VendorHealth],
                    now: float) -> dict[str, str]:
    """Each configured, unpaused vendor instance that is not ready, with why."""
    by_name = {h.instance: h for h in health}
    problems: dict[str, str] = {}
    for vendor in vendors:
        seen = by_name.get(vendor.name)
        if seen is not None and seen.paused:
            continue
        limit_s = allowance_s(vendor)
        if seen is None or seen.last_success_at is None:
            error = f": {seen.last_error}" if seen is not None and seen.last_error else ""
            problems[vendor.name] = f"no successful poll yet{error}"
            continue
        age_s = now - timestamp(seen.last_success_at)
        error = (f"; {seen.consecutive_failures} failed polls since, last: {seen.last_error}"
                 if seen.consecutive_failures else "")
        if age_s > limit_s:
            problems[vendor.name] = (f"last successful poll {age_s:.0f}s ago (allowed"
                                     f" {limit_s:g}s){error}")
        elif age_s < -limit_s:  # else ready, whatever happens, until the clock catches up
            problems[vendor.name] = (f"last successful poll {-age_s:.0f}s in the future (was"
                                     f" the clock set back?){error}")
    return problems


def timestamp(iso_text: str) -> float:
    """The ledger's ISO 8601 UTC time as a POSIX timestamp."""
    return datetime.fromisoformat(iso_text).timestamp()
