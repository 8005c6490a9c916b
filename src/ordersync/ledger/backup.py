"""Copies of a live SQLite ledger (``ordersync backup``) and putting one back
(``ordersync restore``).

Why not copy the file: a running daemon's ledger is three files (the ledger, its ``-wal``
and ``-shm``). Recent commits live in the ``-wal`` until a checkpoint copies them into the
ledger, and a checkpoint may run at any moment. ``cp ledger.db`` alone misses the commits
still in the ``-wal``; ``cp`` of all three is not one moment either (the files are read one
after the other while pages move between them): the copy can miss commits, hold half a
transaction, or fail ``PRAGMA integrity_check``, and such a copy is usually found out only
when it is needed.

:func:`backup` copies through SQLite's online backup API instead. It holds one read
transaction on the ledger for the whole copy, so every page comes from the same snapshot: the
copy holds every transaction committed before it started and nothing half-done. In WAL mode a
reader never blocks a writer: the daemon keeps polling and pushing meanwhile (its later
commits are simply not in the copy). The copy goes in steps of ``BACKUP_STEP_PAGES`` with a
short pause between them, into a private temporary file in the target's folder, which is
then checked (``PRAGMA integrity_check``, and that it is an ordersync ledger), made a single
self-contained file (rollback journal, no ``-wal``), fsynced and renamed into place. No
ledger lock is taken; a ledger that is briefly busy is retried within
``BACKUP_BUSY_LIMIT_S``.

:func:`restore` checks a backup the same way, copies it beside the ledger, keeps the current
ledger as ``<ledger>.before-restore-<UTC time>`` and renames the copy into place: at every
moment the ledger file is either the old ledger or the restored one. Actions the backup holds
as queued may have been performed after it was taken: each is marked for verification, so
the vendor is asked before anything is sent again (nothing doubled). The caller holds the
ledger lock (no daemon, no ``sync --once`` may run meanwhile).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from ..constants import BACKUP_BUSY_LIMIT_S, BACKUP_STEP_PAGES, BACKUP_STEP_PAUSE_S, BUSY_TIMEOUT_S
from ..errors import ConfigError, LedgerUnusable
from .connection import SIDE_FILES, is_ledger_file, ledger_problem
from .schema import MIGRATIONS_TABLE, migrations

"""What SQLite keeps beside a database file, named after it."""
TARGET_PROBLEMS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN",
                   "SQLITE_PERM")
"""Errors of the backup API that come from writing the copy, not from reading the ledger."""


@dataclass(frozen=True)
class Copy:
    """A checked copy of a ledger: where, how large, how many orders it holds."""

    path: Path
    bytes: int
    orders: int


@dataclass(frozen=True)
class Restored:
    """A restore: the copy now in place, and where the ledger it replaced was kept."""

    ledger: Copy
    kept: Path | None
    to_verify: int
    """Queued actions of the backup, each verified with its vendor before it is sent."""


def stamp(now: float) -> str:
    """``20261130T045851Z``: a UTC time for file names."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


def backup(ledger: Path, target: Path, *, now: float, force: bool = False) -> Copy:
    """Copy the ledger (live or not) to ``target``, or into it when it is a folder."""
    _must_exist(ledger, "ledger")
    if target.is_dir():
        target = target / f"ordersync-{stamp(now)}.db"
    _not_the_ledger(ledger, target, "the backup")
    if target.exists() and not target.is_file():  # --force would rename over a link to it
        raise ConfigError(f"backup {target} is not a regular file (a device, FIFO or socket):"
                          " give a file or folder")
    if target.exists() and not force:
        raise ConfigError(f"backup {target} already exists (give --force to replace it, or"
                          " another name)")
    if not target.parent.is_dir():
        raise LedgerUnusable(f"backup {target}: its folder {target.parent} does not exist")
    return _copy(ledger, target)


def restore(ledger: Path, source: Path, *, now: float) -> Restored:
    """Put the backup ``source`` in place of the ledger, keeping the current one.

    The caller holds the ledger lock (which also made the ledger's folder). ``source`` is
    left as it was.
    """
    _must_exist(source, "backup")
    _not_the_ledger(ledger, source, "the backup to restore")
    tmp = ledger.with_name(f".{ledger.name}.restore-{stamp(now)}.tmp")
    copy = _copy(source, tmp, source_role="backup")
    try:
        unknown = _newer_migrations(tmp)
        if unknown:
            raise LedgerUnusable(f"backup {source} was made by a newer ordersync (migrations"
                                 f" unknown here: {', '.join(unknown)}): restore it with that"
                                 " version")
        to_verify = _verify_before_sending(tmp)
        kept = _keep(ledger, ledger.with_name(f"{ledger.name}.before-restore-{stamp(now)}"))
        for suffix in SIDE_FILES:  # the old ledger's; SQLite would apply a -wal to the new one
            Path(f"{ledger}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, ledger)
        _fsync_folder(ledger.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Restored(Copy(ledger, copy.bytes, copy.orders), kept, to_verify)


def _must_exist(path: Path, role: str) -> None:
    if not path.exists():
        raise ConfigError(f"{role} {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"{role} {path} is not a file")


def _not_the_ledger(ledger: Path, path: Path, role: str) -> None:
    if is_ledger_file(ledger, path):
        raise ConfigError(f"{role} may not be {path}: that is the ledger or one of its own"
                          " files")


def _copy(source: Path, target: Path, *, source_role: str = "ledger") -> Copy:
    """Copy ``source`` through the online backup API into a private temporary file beside
    ``target``, check the copy, fsync it and rename it to ``target``."""
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                    suffix=".tmp")  # 0600
    except OSError as exc:
        raise _unwritable(target, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        orders = _copy_snapshot(source, tmp, target, source_role)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_folder(target.parent)
        return Copy(target, target.stat().st_size, orders)
    except OSError as exc:
        raise _unwritable(target, exc) from None
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)


def _copy_snapshot(source: Path, tmp: Path, target: Path, source_role: str) -> int:
    """One snapshot of ``source`` into ``tmp``, checked; the number of orders in it."""
    src = _read_only(source)
    try:
        _begin_snapshot(src, source, source_role)
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            try:
                src.backup(dst, pages=BACKUP_STEP_PAGES,
                           progress=lambda *_: time.sleep(BACKUP_STEP_PAUSE_S))
            except sqlite3.Error as exc:
                name = getattr(exc, "sqlite_errorname", "") or ""
                if name.startswith(TARGET_PROBLEMS):
                    raise _unwritable(target, exc) from None
                raise _unusable(source, source_role, exc) from None
            src.execute("ROLLBACK")
            try:
                dst.execute("PRAGMA journal_mode = DELETE")  # one file: no -wal beside it
                return _checked(dst, source, source_role)
            except sqlite3.Error as exc:
                raise _unwritable(target, exc) from None
        finally:
            dst.close()
    finally:
        src.close()


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change the ledger (and never migrates it)."""
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                           isolation_level=None, timeout=BUSY_TIMEOUT_S)


def _busy(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", None) or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _begin_snapshot(conn: sqlite3.Connection, path: Path, role: str) -> None:
    """Open the read transaction the whole copy comes from, retrying a busy ledger within
    ``BACKUP_BUSY_LIMIT_S``."""
    def begin() -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()

    try:
        for attempt in Retrying(retry=retry_if_exception(_busy), reraise=True,
                                stop=stop_after_delay(BACKUP_BUSY_LIMIT_S), wait=wait_fixed(0.1)):
            with attempt:
                begin()
    except sqlite3.Error as exc:
        raise _unusable(path, role, exc) from None


def _checked(conn: sqlite3.Connection, source: Path, role: str) -> int:
    """The copy passes ``PRAGMA integrity_check`` and is an ordersync ledger: its orders."""
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise LedgerUnusable(f"{role} {source}: a copy of it fails PRAGMA integrity_check"
                             f" ({problems[0]}; {len(problems)} problems): it is damaged;"
                             " nothing was written")
    tables = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if MIGRATIONS_TABLE not in tables or "orders" not in tables:
        raise LedgerUnusable(f"{role} {source} is not an ordersync ledger (no"
                             f" {MIGRATIONS_TABLE} and orders tables)")
    return conn.execute("SELECT count(*) FROM orders").fetchone()[0]


def _newer_migrations(path: Path) -> list[str]:
    """Migrations recorded in the ledger at ``path`` that this ordersync does not know."""
    conn = sqlite3.connect(path)
    try:
        applied = [name for (name,) in conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ?", (migrations.name,))]
    finally:
        conn.close()
    known = {m.name for m in migrations._migrations}
    return [name for name in applied if name not in known]


def _verify_before_sending(path: Path) -> int:
    """An action queued when the backup was taken may have been performed since: like one
    cut off mid-request, it is verified with the vendor before anything is sent again."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute("UPDATE actions SET needs_verification = 1"
                                " WHERE state IN ('pending', 'in_flight')").rowcount
    finally:
        conn.close()


def _keep(ledger: Path, kept: Path) -> Path | None:
    """Keep the current ledger (and any commits still in its -wal) as ``kept``, private."""
    if not ledger.exists():
        return None
    conn = sqlite3.connect(ledger, timeout=BUSY_TIMEOUT_S)
    try:  # fold the -wal in, so that the kept file stands alone (best effort: it may be damaged)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error:
        pass
    finally:
        conn.close()
    for suffix in ("", "-wal"):
        part = Path(f"{ledger}{suffix}")
        if part.exists() and part.stat().st_size > 0:
            _link_or_copy(part, Path(f"{kept}{suffix}"))
    return kept


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)
    os.chmod(target, 0o600)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unwritable(target: Path, exc: Exception) -> LedgerUnusable:
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
    else:
        reason = str(exc)
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
            reason = f"the disk is full or a file size limit was reached (sqlite: {exc})"
    return LedgerUnusable(f"{target}: cannot write it: {reason}; nothing was written")


def _unusable(path: Path, role: str, exc: sqlite3.Error) -> Exception:
    problem = ledger_problem(path, exc)
    if problem is None:
        return LedgerUnusable(f"{role} {path} cannot be read (sqlite: {exc})")
    if role != "ledger":
        return type(problem)(str(problem).replace("ledger ", f"{role} ", 1))
    return problem
