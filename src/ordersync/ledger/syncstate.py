"""Sync state: each stream's cursor, and each vendor instance's health.

A cursor is written in the same transaction as the page it describes
(:func:`save_cursor`, called by ``OrderStore.apply_page``). Vendor health is written after
every poll (by the daemon and ``sync --once``): when it was, when one last succeeded, the
last error's class and (redacted) message, how many polls failed in a row, and whether an
operator paused the instance.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

import orjson
from sqlite_utils import Database

from ..clock import iso
from ..redaction import redact_optional
from .records import VendorHealth


def save_cursor(conn: sqlite3.Connection, instance: str, stream: str, cursor: dict,
                at: str) -> None:
    """Store ``cursor`` unless it is the one already stored (inside the caller's write)."""
    text = orjson.dumps(cursor, option=orjson.OPT_SORT_KEYS).decode()
    row = conn.execute(
        "SELECT cursor FROM sync_state WHERE instance = ? AND stream = ?", (instance, stream)
    ).fetchone()
    if row is not None and row[0] == text:
        return
    conn.execute(
        "INSERT OR REPLACE INTO sync_state (instance, stream, cursor, updated_at)"
        " VALUES (?, ?, ?, ?)",
        (instance, stream, text, at),
    )


class SyncState:
    """The sync_state and vendor_health tables (a part of the SQLite ``Ledger``)."""

    db: Database
    write: Callable[[], AbstractContextManager[None]]

    def cursor(self, instance: str, stream: str) -> dict | None:
        row = self.db.conn.execute(
            "SELECT cursor FROM sync_state WHERE instance = ? AND stream = ?", (instance, stream)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def record_poll(self, instance: str, now: float, *, error_class: str | None = None,
                    error: str | None = None) -> None:
        """One poll of ``instance`` ended: well (no error) or with ``error_class``/``error``."""
        at = iso(now)
        failed = error_class is not None
        with self.write():
            self.db.conn.execute(
                "INSERT INTO vendor_health (instance, last_poll_at, last_success_at,"
                " last_error_class, last_error, consecutive_failures) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT (instance) DO UPDATE SET last_poll_at = excluded.last_poll_at,"
                " last_success_at = coalesce(excluded.last_success_at, last_success_at),"
                " last_error_class = coalesce(excluded.last_error_class, last_error_class),"
                " last_error = coalesce(excluded.last_error, last_error),"
                " consecutive_failures = CASE WHEN ? THEN consecutive_failures + 1 ELSE 0 END",
                (instance, at, None if failed else at, error_class, redact_optional(error),
                 int(failed), int(failed)),
            )

    def set_paused(self, instance: str, paused: bool) -> None:
        """An operator pauses (or resumes) polling ``instance``."""
        with self.write():
            self.db.conn.execute(
                "INSERT INTO vendor_health (instance, paused) VALUES (?,?)"
                " ON CONFLICT (instance) DO UPDATE SET paused = excluded.paused",
                (instance, int(paused)),
            )

    def vendor_health(self, instance: str | None = None) -> list[VendorHealth]:
        """The health of every (or one) vendor instance that has been polled, by name."""
        sql = ("SELECT instance, last_poll_at, last_success_at, last_error_class, last_error,"
               " consecutive_failures, paused FROM vendor_health")
        params: tuple = ()
        if instance is not None:
            sql += " WHERE instance = ?"
            params = (instance,)
        return [VendorHealth(instance=row[0], last_poll_at=row[1], last_success_at=row[2],
                             last_error_class=row[3], last_error=row[4],
                             consecutive_failures=row[5], paused=bool(row[6]))
                for row in self.db.conn.execute(sql + " ORDER BY instance", params)]
