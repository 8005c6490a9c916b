"""One SQLite ledger file: opened private, configured, migrated, written in transactions.

The ledger holds customer data: a new ledger file is created 0600 (its -wal and -shm files
take the same mode) in a folder created 0700. A ledger that cannot be used (a folder that
cannot be written, a read-only or damaged file, a full disk) is a :class:`LedgerUnusable`
naming the file and what is wrong; one locked past the busy timeout is a
:class:`LedgerLocked` (see :func:`ledger_problem`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from ..constants import BUSY_TIMEOUT_S
from ..errors import LedgerLocked, LedgerUnusable, OrderSyncError
from .schema import MIGRATIONS_TABLE, build_deferred_indexes, defer_indexes, migrations

CACHE_SIZE = -16384
"""SQLite's page cache: 16 MB (negative: KiB), so index pages stay cached during an ingest."""
SORT_CACHE_SIZE = -2048
"""2 MB while indexes are built after a backfill: their sort's in-memory share."""


class Connection:
    """One SQLite connection (WAL), migrated on opening. Not thread-safe: use one thread."""

    def __init__(self, path: str | Path | None = None, *, memory: bool = False,
                 prepared: bool = False) -> None:
        self.path = None if memory or path is None else Path(path)
        """The ledger file (None in memory): what a page writer process opens."""
        if memory:
            self.db = Database(memory=True)
            self._configure()
        elif prepared and path is not None:
            # A second connection to a ledger another one has opened (created, migrated,
            # its indexes as that one wants them): the page writer's (pagewriter.py).
            self.db = Database(sqlite3_connect(Path(path)))
            self._set_pragmas()
        else:
            if path is None:
                raise TypeError("Connection needs a path unless memory=True")
            path = Path(path)
            try:
                private_folder(path.parent)
                _create_private(path)
            except OSError as exc:
                raise LedgerUnusable(f"ledger {path}: cannot create it: {_os_reason(exc)}"
                                     ) from None
            conn = None
            try:
                conn = sqlite3_connect(path)
                _refuse_a_foreign_database(conn, path)
                self.db = Database(conn)
                # 16 KiB pages for a new file (a no-op on an existing one): orders rows carry
                # ~1.5 KB of raw JSON, which wastes a quarter of a 4 KiB page and costs I/O.
                self.db.execute("PRAGMA page_size = 16384")
                self.db.enable_wal()
                self._configure()
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                problem = ledger_problem(path, exc)
                if problem is None:
                    raise
                raise problem from None

    def _configure(self) -> None:
        self._set_pragmas()
        migrations.apply(self.db)
        build_deferred_indexes(self.db)     # those a backfill killed half way left unbuilt

    def _set_pragmas(self) -> None:
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # A 16 MB page cache (the default is 2 MB): index pages stay cached during an ingest.
        self.db.execute(f"PRAGMA cache_size = {CACHE_SIZE}")
        # Statement journals (a multi-row INSERT OR REPLACE keeps one, to undo itself) in
        # memory: on disk they were a temp file written and dropped per statement, as many
        # bytes again as the WAL (docs/performance.md).
        self.db.execute("PRAGMA temp_store = MEMORY")

    def close(self) -> None:
        self.db.close()

    def defer_indexes(self) -> bool:
        """Drop the secondary indexes if no order is stored yet: a backfill is about to start.
        True if they were; :meth:`build_indexes` (or the next opening) builds them."""
        with self.write():
            return defer_indexes(self.db)

    def build_indexes(self) -> None:
        """Build whatever secondary index :meth:`defer_indexes` dropped.

        Building an index sorts every row, in memory up to the size of the page cache and in
        temp files beyond it: files here (temp_store = MEMORY would hold the whole sort in
        memory), and a small cache meanwhile, so that memory does not grow with the ledger.
        """
        self.db.execute("PRAGMA temp_store = FILE")
        self.db.execute(f"PRAGMA cache_size = {SORT_CACHE_SIZE}")
        try:
            with self.write():
                build_deferred_indexes(self.db)
        finally:
            self.db.execute("PRAGMA temp_store = MEMORY")
            self.db.execute(f"PRAGMA cache_size = {CACHE_SIZE}")

    @contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction that takes SQLite's write lock at once (BEGIN IMMEDIATE).

        Another process (the daemon, a CLI enqueueing) may be writing: a deferred
        transaction that reads first and writes later cannot wait for it and fails with
        "database is locked"; an immediate one waits (busy_timeout). Nested calls use the
        outer transaction.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


SIDE_FILES = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a ledger."""


def is_ledger_file(ledger: Path, path: Path) -> bool:
    """Whether ``path`` (followed through links and relative paths) is the ledger, one of
    SQLite's files beside it, or its lock: nothing ordersync writes may replace them."""
    own = {os.path.realpath(f"{base}{suffix}")
           for base in (ledger, os.path.realpath(ledger))
           for suffix in ("", *SIDE_FILES, ".lock")}
    return os.path.realpath(path) in own


def sqlite3_connect(path: Path):
    return sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_S)


def private_folder(folder: Path) -> None:
    """Create ``folder`` and any missing parents readable by this user only (0700)."""
    missing = [p for p in (folder, *folder.parents) if not p.is_dir()]
    for part in reversed(missing):
        try:
            part.mkdir(mode=0o700)
        except FileExistsError:
            if not part.is_dir():
                raise NotADirectoryError(20, "Not a directory", str(part)) from None


def _refuse_a_foreign_database(conn: sqlite3.Connection, path: Path) -> None:
    """An SQLite file with tables but none of ordersync's is someone else's database: never
    migrate into it (a wrong path in the configuration must not change it)."""
    tables = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    if tables and MIGRATIONS_TABLE not in tables:
        conn.close()
        shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
        raise LedgerUnusable(f"ledger {path}: not an ordersync ledger (an SQLite database"
                             f" with other tables: {shown}); ordersync leaves it untouched")


def _create_private(path: Path) -> None:
    """Create an empty ledger file 0600 (SQLite would make it world-readable)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _os_reason(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


_SQLITE_PROBLEMS = {
    "SQLITE_CANTOPEN": "cannot be opened or created (is its folder writable?)",
    "SQLITE_READONLY": "is read-only: ordersync must be able to write it, its -wal and -shm"
                       " files and its folder",
    "SQLITE_NOTADB": "is not an SQLite database (not an ordersync ledger)",
    "SQLITE_CORRUPT": "is damaged (truncated or corrupt): restore it from a backup",
    "SQLITE_FULL": "cannot grow: the disk is full",
    "SQLITE_IOERR": "cannot be read or written: the disk is full, a file size limit was"
                    " reached or the disk failed",
    "SQLITE_PERM": "may not be accessed (permission denied)",
}


def ledger_problem(path: Path, exc: sqlite3.Error) -> OrderSyncError | None:
    """What to tell the operator about an SQLite error on the ledger at ``path``.

    The ledger's surroundings (a lock held too long, a file that cannot be used) give a
    :class:`LedgerLocked` or :class:`LedgerUnusable` naming the file; anything else is
    ordersync's own fault (None).
    """
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return LedgerLocked(f"ledger {path} stayed locked by another process for more than"
                            f" {BUSY_TIMEOUT_S:g} s (the busy timeout); try again later")
    if Path(path).is_dir():
        return LedgerUnusable(f"ledger {path} is a directory, not a ledger file")
    for prefix, what in _SQLITE_PROBLEMS.items():
        if name.startswith(prefix):
            return LedgerUnusable(f"ledger {path} {what} (sqlite: {exc})")
    return None


