"""Exceptions as state: what the report found wrong, one row per stable key.

:meth:`ExceptionStore.refresh_exceptions` takes what a detection found now
(:class:`~ordersync.ledger.records.Finding` s) and, in one short transaction, inserts the
new ones, touches those still there (``last_seen``, the latest reason) and resolves the open
ones of the same scope (kinds x instances) that were not found again. A resolved exception
found again is opened anew under its key: ``first_seen`` is when it came back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager

import orjson
from sqlite_utils import Database

from ..clock import iso
from .records import ExceptionRecord, Finding, Refreshed
from .syncstate import save_cursor

DRIFT = "drift"
"""The kind of the exceptions a reconcile records (a difference between vendor and ledger)."""
RECONCILE_STREAM = "ordersync:reconcile"
"""Where the last reconcile's counts are kept: a sync_state row, beside the cursors."""

_COMPARED = "key, kind, instance, vendor_id, action_id, reason, detail, resolved_at"
_COLUMNS = ("key, kind, instance, vendor_id, action_id, reason, detail, first_seen, last_seen,"
            " resolved_at")


class ExceptionStore:
    """The exceptions table (a part of the SQLite ``Ledger``)."""

    db: Database
    write: Callable[[], AbstractContextManager[None]]

    def refresh_exceptions(self, findings: Sequence[Finding], now: float, *,
                           kinds: Collection[str], instances: Collection[str]) -> Refreshed:
        """Record ``findings`` as the whole truth for ``kinds`` x ``instances`` at ``now``.

        Open exceptions of that scope that were not found again are resolved; findings
        outside the scope are recorded all the same. Only new, reopened or changed rows are
        written; the others get their ``last_seen`` in one statement.
        """
        at = iso(now)
        found = {f.key: f for f in findings}
        conn = self.db.conn
        scope = (f"resolved_at IS NULL AND kind IN ({_marks(kinds)})"
                 f" AND instance IN ({_marks(instances)})")
        with self.write():
            stored = {row[0]: row[1:] for row in conn.execute(
                f"SELECT {_COMPARED} FROM exceptions WHERE {scope}", [*kinds, *instances])}
            open_in_scope = set(stored)
            stored.update((row[0], row[1:]) for row in _select_in(
                conn, f"SELECT {_COMPARED} FROM exceptions WHERE key IN",
                [key for key in found if key not in stored]))
            known_open = {key for key, row in stored.items() if row[-1] is None}
            changed = []
            for key, f in found.items():
                row = (f.kind, f.instance, f.vendor_id, f.action_id, f.reason,
                       orjson.dumps(f.detail, option=orjson.OPT_SORT_KEYS).decode(), None)
                if stored.get(key) != row:
                    changed.append((key, *row[:-1], at, at))
            conn.executemany(
                "INSERT INTO exceptions (key, kind, instance, vendor_id, action_id, reason,"
                " detail, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (key) DO UPDATE SET kind = excluded.kind,"
                " instance = excluded.instance, vendor_id = excluded.vendor_id,"
                " action_id = excluded.action_id, reason = excluded.reason,"
                " detail = excluded.detail, last_seen = excluded.last_seen,"
                " first_seen = CASE WHEN resolved_at IS NULL THEN first_seen"
                " ELSE excluded.first_seen END, resolved_at = NULL", changed)
            cleared = sorted(open_in_scope - found.keys())
            conn.executemany("UPDATE exceptions SET resolved_at = ? WHERE key = ?",
                             [(at, key) for key in cleared])
            conn.execute(f"UPDATE exceptions SET last_seen = ? WHERE {scope}",
                         [at, *kinds, *instances])
        return Refreshed(new=tuple(sorted(found.keys() - known_open)),
                         persisting=tuple(sorted(found.keys() & known_open)),
                         resolved=tuple(cleared))

    def record_reconcile(self, instance: str, counts: dict[str, int],
                         differences: Sequence[Finding], now: float) -> Refreshed:
        """One reconcile of ``instance``, in one transaction: its counts (matched, missing
        ...), each difference as a ``drift`` exception, and a ``drift`` event for each one
        not already open (so that reconciling again does not repeat the history)."""
        at = iso(now)
        with self.write():
            refreshed = self.refresh_exceptions(differences, now, kinds=(DRIFT,),
                                                instances=(instance,))
            new = set(refreshed.new)
            self.db.conn.executemany(   # the order's states as stored, on both sides
                "INSERT INTO events (instance, vendor_id, at, source, kind, from_state,"
                " to_state, from_vendor_state, to_vendor_state, detail)"
                " SELECT :i, :v, :at, 'reconcile', 'drift', s, s, vs, vs, :d FROM (SELECT"
                " (SELECT state FROM orders WHERE instance = :i AND vendor_id = :v) AS s,"
                " (SELECT vendor_state FROM orders WHERE instance = :i AND vendor_id = :v)"
                " AS vs)",
                [{"i": instance, "v": d.vendor_id, "at": at, "d": d.reason}
                 for d in differences if d.key in new])
            save_cursor(self.db.conn, instance, RECONCILE_STREAM, {**counts, "at": at}, at)
        return refreshed

    def reconciled(self, instance: str) -> dict | None:
        """The counts of the last reconcile of ``instance`` (with ``at``), or None."""
        row = self.db.conn.execute(
            "SELECT cursor FROM sync_state WHERE instance = ? AND stream = ?",
            (instance, RECONCILE_STREAM)).fetchone()
        return orjson.loads(row[0]) if row else None

    def exceptions(self, *, instance: str | None = None, resolved_since: str | None = None
                   ) -> list[ExceptionRecord]:
        """Open exceptions, and those resolved at or after ``resolved_since`` (ISO), oldest
        first (only one instance's if asked)."""
        where = "(resolved_at IS NULL" + (" OR resolved_at >= ?)" if resolved_since else ")")
        params: list = [resolved_since] if resolved_since else []
        if instance is not None:
            where += " AND instance = ?"
            params.append(instance)
        return [ExceptionRecord(key, kind, inst, vendor_id, action_id, reason,
                                orjson.loads(detail), first_seen, last_seen, resolved_at)
                for (key, kind, inst, vendor_id, action_id, reason, detail, first_seen,
                     last_seen, resolved_at) in self.db.conn.execute(
                    f"SELECT {_COLUMNS} FROM exceptions WHERE {where}"
                    " ORDER BY first_seen, key", params)]


def _marks(values: Collection) -> str:
    return ",".join("?" * len(values))


def _select_in(conn, sql: str, keys: Collection[str]) -> list[tuple]:
    """``sql (?, ?, ...)`` over ``keys`` in chunks (SQLite's limit on parameters)."""
    keys = list(keys)
    rows: list[tuple] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        rows += conn.execute(f"{sql} ({_marks(chunk)})", chunk).fetchall()
    return rows
