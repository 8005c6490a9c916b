"""The ledger: one SQLite file (WAL) and every SQL statement ordersync runs.

Tables
    orders      one row per (instance, vendor_id): normalised columns, the vendor's raw JSON
                and a digest of it, so a re-poll of unchanged data writes nothing, and the
                ``problem`` of a flagged order (intake.py)
    items       the lines of each order, replaced whenever the order changes
    events      append-only: one row per real change (appeared, state_changed, updated,
                flagged, cleared)
    sync_state  a cursor per (instance, stream), written in the same transaction as the data
                it describes

:class:`Ledger` is synchronous and owns the connection. :class:`AsyncLedger` runs every call
on one dedicated thread, in submission order, so the event loop never waits on SQLite and a
read submitted after a write sees that write.

The ledger holds customer data: a new ledger file is created 0600 (its -wal and -shm files
take the same mode) in a folder created 0700. A ledger that cannot be used (a folder that
cannot be written, a read-only or damaged file, a full disk) is a :class:`LedgerUnusable`
naming the file and what is wrong; one locked past the busy timeout is a
:class:`LedgerLocked` (see :func:`ledger_problem`). Error text written to the outbox passes
through :func:`ordersync.redaction.redact` first: no secret a vendor repeats is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .clock import iso
from .errors import ConfigError, LedgerLocked, LedgerUnusable, OrderSyncError
from .model import NEW_ORDER, Action, ActionState, Order
from .redaction import redact, redact_optional

T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0
"""How long a statement waits for another process's write lock before giving up."""

migrations = Migrations("ordersync")


@migrations()
def m001_orders_items_events_sync_state(db: Database) -> None:
    db.execute(
        """CREATE TABLE orders (
            instance TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            adapter TEXT NOT NULL,
            state TEXT NOT NULL,
            vendor_state TEXT NOT NULL,
            reference TEXT,
            created TEXT,
            modified TEXT,
            expires TEXT,
            customer TEXT,
            comment TEXT,
            url TEXT,
            data TEXT NOT NULL DEFAULT '{}',
            raw TEXT NOT NULL,
            digest BLOB NOT NULL,
            first_seen TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (instance, vendor_id)
        )"""
    )
    db.execute("CREATE INDEX orders_by_vendor_state ON orders (instance, vendor_state)")
    db.execute("CREATE INDEX orders_by_state ON orders (state)")
    db.execute(
        """CREATE TABLE items (
            instance TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            key TEXT NOT NULL,
            title TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            status TEXT,
            expires TEXT,
            data TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (instance, vendor_id, position)
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            at TEXT NOT NULL,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT,
            from_vendor_state TEXT,
            to_vendor_state TEXT,
            detail TEXT
        )"""
    )
    db.execute("CREATE INDEX events_by_order ON events (instance, vendor_id)")
    db.execute(
        """CREATE TABLE sync_state (
            instance TEXT NOT NULL,
            stream TEXT NOT NULL,
            cursor TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (instance, stream)
        )"""
    )


@migrations()
def m002_outbox(db: Database) -> None:
    db.execute(
        """CREATE TABLE actions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            needs_verification INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            result TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX actions_due ON actions (instance, state, next_attempt_at)")
    db.execute("CREATE INDEX actions_by_order ON actions (instance, vendor_id)")
    db.execute(
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            action_id INTEGER NOT NULL REFERENCES actions (id),
            number INTEGER NOT NULL,
            at TEXT NOT NULL,
            request TEXT NOT NULL,
            status INTEGER,
            latency_ms REAL,
            error TEXT
        )"""
    )
    db.execute("CREATE INDEX attempts_by_action ON attempts (action_id)")


@migrations()
def m003_orders_read_at(db: Database) -> None:
    """When the stored copy of each order was read from the vendor (newest copy wins)."""
    db.execute("ALTER TABLE orders ADD COLUMN read_at REAL")


@migrations()
def m004_action_notes(db: Database) -> None:
    """What an adapter wrote down about an action just before its request (a baseline)."""
    db.execute("ALTER TABLE actions ADD COLUMN notes TEXT")


@migrations()
def m005_orders_problem(db: Database) -> None:
    """Why an order is flagged (unreadable, over a limit, not UTF-8); NULL for a sound one.

    A partial index finds the few flagged orders without reading the table: every poll asks.
    """
    db.execute("ALTER TABLE orders ADD COLUMN problem TEXT")
    db.execute("CREATE INDEX orders_flagged ON orders (instance) WHERE problem IS NOT NULL")


@migrations()
def m006_action_chains(db: Database) -> None:
    """An action may follow another (a chain): it runs only after that one succeeded."""
    db.execute("ALTER TABLE actions ADD COLUMN after_id INTEGER REFERENCES actions (id)")


@dataclass(frozen=True, slots=True)
class PageResult:
    """What one page did to the ledger."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    flagged: int = 0
    """Orders of the page stored flagged (see intake.py)."""
    flips: tuple[tuple[str, str | None], ...] = ()
    """(vendor id, problem) of each order whose flag came or (problem None) went."""


def digest(raw: bytes) -> bytes:
    """A short fingerprint of an order's raw JSON: equal fingerprints, nothing to write."""
    return hashlib.blake2b(raw, digest_size=16).digest()


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class Ledger:
    """The SQLite ledger. Not thread-safe: use it from one thread (see AsyncLedger)."""

    def __init__(self, path: str | Path | None = None, *, memory: bool = False) -> None:
        if memory:
            self.db = Database(memory=True)
            self._configure()
        else:
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
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # A 16 MB page cache (the default is 2 MB): index pages stay cached during an ingest.
        self.db.execute("PRAGMA cache_size = -16384")
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()

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

    @property
    def outbox(self) -> Outbox:
        """The actions and their attempts (the outbox half of the ledger)."""
        return Outbox(self)

    # -- writes -----------------------------------------------------------------------

    def apply_page(
        self,
        instance: str,
        adapter: str,
        stream: str,
        orders: Sequence[Order],
        cursor: dict | None,
        now: float,
        source: str = "poll",
        read_at: float | None = None,
    ) -> PageResult:
        """Write a page of orders and, in the same transaction, the stream's new cursor.

        New orders get an ``appeared`` event; orders whose raw JSON changed are rewritten
        with a ``state_changed`` or ``updated`` event, and those whose problem came or went
        with a ``flagged`` or ``cleared`` one; unchanged orders cost one read.
        ``read_at`` is when the vendor sent these copies: a stored copy read later (by an
        action, while this poll was under way) is newer and is kept.
        """
        at = iso(now)
        conn = self.db.conn
        # The hot path of every sync: a cold full scan runs this for every order. Rows are
        # built inline from local names into flat parameter lists, and written 50 rows to a
        # statement (see _insert_batched).
        dumps, sort_keys, blake2b = orjson.dumps, orjson.OPT_SORT_KEYS, hashlib.blake2b
        with self.write():
            known = self._known_digests(instance, [o.vendor_id for o in orders])
            # A page of orders the ledger has none of (a cold sync) writes its ``appeared``
            # events with a narrower statement; otherwise all events keep the page's order.
            order_params: list = []
            item_params: list = []
            appeared: list = []
            event_params: list = []
            replaced: list = []
            add_order, add_item = order_params.extend, item_params.extend
            add_event = event_params.extend if known else None
            new = changed = flagged = 0
            flips: list = []
            seen: set[str] = set()
            for order in orders:
                vendor_id = order.vendor_id
                if vendor_id in seen:
                    continue
                seen.add(vendor_id)
                raw = order.raw
                fingerprint = blake2b(raw, digest_size=16).digest()   # == digest(raw), inlined
                state, vendor_state = order.state._value_, order.vendor_state
                problem = order.problem
                if problem is not None:
                    flagged += 1
                before = known.get(vendor_id) if known else None
                if before is None:
                    new += 1
                    if problem is not None:
                        flips.append((vendor_id, problem))
                        (add_event or event_params.extend)((
                            instance, vendor_id, at, source, "appeared", None, state, None,
                            vendor_state, problem))
                    elif add_event is None:
                        appeared += instance, vendor_id, at, source, state, vendor_state
                    else:
                        add_event((instance, vendor_id, at, source, "appeared", None, state, None,
                                   vendor_state, None))
                    first_seen = at
                elif before[0] == fingerprint and before[5] == problem:
                    continue
                elif read_at is not None and before[4] is not None and read_at < before[4]:
                    continue  # an older copy than the one stored: the vendor moved on since
                else:
                    changed += 1
                    replaced.append((instance, vendor_id))
                    _, old_state, old_vendor_state, first_seen, _, old_problem = before
                    moved = old_state != state or old_vendor_state != vendor_state
                    kind = "state_changed" if moved else "updated"
                    if problem != old_problem:
                        kind = "flagged" if problem is not None else "cleared"
                        flips.append((vendor_id, problem))
                    add_event((instance, vendor_id, at, source, kind, old_state, state,
                               old_vendor_state, vendor_state, problem))
                data = order.data
                add_order((
                    instance, vendor_id, adapter, state, vendor_state, order.reference,
                    order.created, order.modified, order.expires, order.customer, order.comment,
                    order.url, dumps(data, option=sort_keys).decode() if data else "{}",
                    raw.decode("utf-8"), bytearray(fingerprint), first_seen, at, read_at, problem,
                ))
                for position, item in enumerate(order.items):
                    data = item.data
                    add_item((
                        instance, vendor_id, position, item.key, item.title, item.quantity,
                        item.status, item.expires,
                        dumps(data, option=sort_keys).decode() if data else "{}",
                    ))
            if replaced:
                conn.executemany("DELETE FROM items WHERE instance = ? AND vendor_id = ?", replaced)
            _insert_batched(
                conn,
                "INSERT OR REPLACE INTO orders (instance, vendor_id, adapter, state, vendor_state,"
                " reference, created, modified, expires, customer, comment, url, data, raw,"
                " digest, first_seen, updated_at, read_at, problem)",
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", 19, order_params,
            )
            _insert_batched(
                conn,
                "INSERT INTO items (instance, vendor_id, position, key, title, quantity, status,"
                " expires, data)",
                "(?,?,?,?,?,?,?,?,?)", 9, item_params,
            )
            _insert_batched(
                conn,
                "INSERT INTO events (instance, vendor_id, at, source, kind, to_state,"
                " to_vendor_state)",
                "(?,?,?,?,'appeared',?,?)", 6, appeared,
            )
            _insert_batched(
                conn,
                "INSERT INTO events (instance, vendor_id, at, source, kind, from_state, to_state,"
                " from_vendor_state, to_vendor_state, detail)",
                "(?,?,?,?,?,?,?,?,?,?)", 10, event_params,
            )
            if cursor is not None:
                self._save_cursor(instance, stream, cursor, at)
        return PageResult(new=new, changed=changed, unchanged=len(seen) - new - changed,
                          flagged=flagged, flips=tuple(flips))

    def _known_digests(self, instance: str, vendor_ids: list[str]) -> dict[str, tuple]:
        known: dict[str, tuple] = {}
        for chunk in _chunks(vendor_ids, 500):
            marks = ",".join("?" * len(chunk))
            rows = self.db.conn.execute(
                f"SELECT vendor_id, digest, state, vendor_state, first_seen, read_at, problem"
                f" FROM orders WHERE instance = ? AND vendor_id IN ({marks})",
                [instance, *chunk],
            )
            for vendor_id, *row in rows:
                known[vendor_id] = tuple(row)
        return known

    def _save_cursor(self, instance: str, stream: str, cursor: dict, at: str) -> None:
        text = _dumps(cursor)
        row = self.db.conn.execute(
            "SELECT cursor FROM sync_state WHERE instance = ? AND stream = ?", (instance, stream)
        ).fetchone()
        if row is not None and row[0] == text:
            return
        self.db.conn.execute(
            "INSERT OR REPLACE INTO sync_state (instance, stream, cursor, updated_at)"
            " VALUES (?, ?, ?, ?)",
            (instance, stream, text, at),
        )

    # -- reads ------------------------------------------------------------------------

    def cursor(self, instance: str, stream: str) -> dict | None:
        row = self.db.conn.execute(
            "SELECT cursor FROM sync_state WHERE instance = ? AND stream = ?", (instance, stream)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def known_modified(self, instance: str, vendor_ids: Iterable[str]) -> dict[str, str | None]:
        """The stored ``modified`` of each given order the ledger already has."""
        found: dict[str, str | None] = {}
        for chunk in _chunks(list(vendor_ids), 500):
            marks = ",".join("?" * len(chunk))
            for vendor_id, modified in self.db.conn.execute(
                f"SELECT vendor_id, modified FROM orders WHERE instance = ?"
                f" AND vendor_id IN ({marks})",
                [instance, *chunk],
            ):
                found[vendor_id] = modified
        return found

    def in_vendor_state(self, instance: str, vendor_state: str) -> list[dict]:
        """id, url and expires of every order the ledger holds in ``vendor_state``."""
        return [
            {"id": row[0], "url": row[1], "expires": row[2]}
            for row in self.db.conn.execute(
                "SELECT vendor_id, url, expires FROM orders WHERE instance = ?"
                " AND vendor_state = ?",
                (instance, vendor_state),
            )
        ]

    def flagged(self, instance: str) -> list[dict]:
        """id and url of every flagged order that has a url (one the vendor can be asked for)."""
        return [
            {"id": row[0], "url": row[1]}
            for row in self.db.conn.execute(
                "SELECT vendor_id, url FROM orders WHERE instance = ? AND problem IS NOT NULL"
                " AND url IS NOT NULL", (instance,),
            )
        ]

    def count_by_vendor_state(self, instance: str) -> dict[str, int]:
        return dict(
            self.db.conn.execute(
                "SELECT vendor_state, count(*) FROM orders WHERE instance = ?"
                " GROUP BY vendor_state",
                (instance,),
            ).fetchall()
        )

    def orders(
        self, *, instance: str | None = None, state: str | None = None, limit: int | None = None,
        flagged: bool = False,
    ) -> list[dict]:
        """Orders, newest first, with their items, as plain dicts (only flagged ones if asked)."""
        where, params = _where(instance=instance, state=state)
        if flagged:
            where += (" AND" if where else " WHERE") + " problem IS NOT NULL"
        sql = "SELECT * FROM orders" + where
        sql += (" ORDER BY created DESC, instance, length(vendor_id) DESC, vendor_id DESC")
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = list(self.db.query(sql, params))
        items = self._items_for([(r["instance"], r["vendor_id"]) for r in rows])
        return [_public_order(r, items.get((r["instance"], r["vendor_id"]), [])) for r in rows]

    def order(self, instance: str, vendor_id: str) -> dict | None:
        """One order with its items, events and raw vendor JSON, or None."""
        rows = list(
            self.db.query(
                "SELECT * FROM orders WHERE instance = ? AND vendor_id = ?", (instance, vendor_id)
            )
        )
        if not rows:
            return None
        row = rows[0]
        items = self._items_for([(instance, vendor_id)]).get((instance, vendor_id), [])
        order = _public_order(row, items)
        order["raw"] = orjson.loads(row["raw"])
        order["events"] = list(
            self.db.query(
                "SELECT at, source, kind, from_state, to_state, from_vendor_state,"
                " to_vendor_state, detail FROM events WHERE instance = ? AND vendor_id = ?"
                " ORDER BY id",
                (instance, vendor_id),
            )
        )
        return order

    def _items_for(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict]]:
        found: dict[tuple[str, str], list[dict]] = {}
        by_instance: dict[str, list[str]] = {}
        for instance, vendor_id in keys:
            by_instance.setdefault(instance, []).append(vendor_id)
        for instance, ids in by_instance.items():
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                for row in self.db.query(
                    f"SELECT * FROM items WHERE instance = ? AND vendor_id IN ({marks})"
                    f" ORDER BY vendor_id, position",
                    [instance, *chunk],
                ):
                    found.setdefault((instance, row["vendor_id"]), []).append(
                        {
                            "key": row["key"],
                            "title": row["title"],
                            "quantity": row["quantity"],
                            "status": row["status"],
                            "expires": row["expires"],
                            "data": orjson.loads(row["data"]),
                        }
                    )
        return found

    def summary(self) -> list[dict]:
        """Order counts per instance and common state."""
        return list(
            self.db.query(
                "SELECT instance, state, count(*) AS orders FROM orders"
                " GROUP BY instance, state ORDER BY instance, state"
            )
        )

    def count_events(self, instance: str | None = None) -> int:
        if instance is None:
            return self.db.conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return self.db.conn.execute(
            "SELECT count(*) FROM events WHERE instance = ?", (instance,)
        ).fetchone()[0]


class OutboxError(ConfigError):
    """An outbox request that cannot be honoured (unknown id, wrong state, key reused)."""


class Outbox:
    """The outbox half of the ledger: actions and their HTTP attempts."""

    def __init__(self, ledger: Ledger) -> None:
        self.db = ledger.db
        self.write = ledger.write

    def enqueue(self, instance: str, vendor_id: str, kind: str, payload: dict, key: str,
                now: float, after: int | None = None) -> tuple[Action, bool]:
        """Add an action (after action ``after``, in a chain); the same key twice is one
        action. Returns (action, created)."""
        at = iso(now)
        text = _dumps(payload)
        with self.write():
            # Not INSERT OR IGNORE: an ignored insert would still use up an action number.
            created = self.db.conn.execute(
                "INSERT INTO actions (instance, vendor_id, kind, payload, key, state,"
                " next_attempt_at, created_at, updated_at, after_id) SELECT ?,?,?,?,?,?,?,?,?,?"
                " WHERE NOT EXISTS (SELECT 1 FROM actions WHERE key = ?)",
                (instance, vendor_id, kind, text, key, ActionState.PENDING.value, now, at, at,
                 after, key),
            ).rowcount == 1
            action = self._by_key(key)
        # an order id still to be created has become the real one when its create succeeded
        same_order = action.vendor_id == vendor_id or vendor_id.startswith(NEW_ORDER)
        if not created and (not same_order or (action.instance, action.kind, action.payload)
                            != (instance, kind, orjson.loads(text))):
            raise OutboxError(
                f"idempotency key {key!r} already names action #{action.id}"
                f" ({action.kind} {action.target}), a different action"
            )
        return action, created

    def _by_key(self, key: str) -> Action:
        row = next(self.db.query("SELECT * FROM actions WHERE key = ?", (key,)))
        return _action(row)

    def get(self, action_id: int) -> Action:
        rows = list(self.db.query("SELECT * FROM actions WHERE id = ?", (action_id,)))
        if not rows:
            raise OutboxError(f"no action #{action_id}")
        return _action(rows[0])

    def attempts(self, action_id: int) -> list[dict]:
        return list(self.db.query(
            "SELECT number, at, request, status, latency_ms, error FROM attempts"
            " WHERE action_id = ? ORDER BY id", (action_id,)))

    def list(self, *, instance: str | None = None, state: str | None = None,
             limit: int | None = None) -> list[Action]:
        where, params = _where(instance=instance, state=state)
        sql = "SELECT * FROM actions" + where
        sql += " ORDER BY id" + (f" LIMIT {int(limit)}" if limit else "")
        return [_action(row) for row in self.db.query(sql, params)]

    def counts(self, instance: str | None = None) -> dict[str, int]:
        sql = "SELECT state, count(*) FROM actions"
        params: tuple = ()
        if instance:
            sql += " WHERE instance = ?"
            params = (instance,)
        return dict(self.db.conn.execute(sql + " GROUP BY state", params).fetchall())

    def due(self, instance: str, now: float, limit: int = 100) -> list[Action]:
        """Pending actions whose time has come, oldest first, one order at a time in order.

        An action waits while an earlier action on the same order is still open (pending,
        in flight or uncertain), so a vendor always sees one order's actions in the order
        they were given. A link of a chain also waits until the action it follows succeeded.
        """
        rows = self.db.query(
            "SELECT * FROM actions AS a WHERE a.instance = ? AND a.state = 'pending'"
            " AND a.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM actions AS b"
            " WHERE b.instance = a.instance AND b.vendor_id = a.vendor_id AND b.id < a.id"
            " AND b.state IN ('pending', 'in_flight', 'uncertain'))"
            " AND (a.after_id IS NULL OR EXISTS (SELECT 1 FROM actions AS p"
            " WHERE p.id = a.after_id AND p.state = 'succeeded'))"
            " ORDER BY a.id LIMIT ?",
            (instance, now, limit),
        )
        return [_action(row) for row in rows]

    def start(self, action_id: int, now: float) -> Action | None:
        """Mark a pending action in flight, durably, before its request. None if not pending."""
        with self.write():
            cursor = self.db.conn.execute(
                "UPDATE actions SET state = 'in_flight', attempts = attempts + 1,"
                " updated_at = ? WHERE id = ? AND state = 'pending'",
                (iso(now), action_id),
            )
            if cursor.rowcount != 1:
                return None
            return self.get(action_id)

    def finish(
        self,
        action: Action,
        state: ActionState,
        now: float,
        *,
        error: str | None = None,
        result: dict | None = None,
        next_attempt_at: float | None = None,
        needs_verification: bool | None = None,
        refund_attempt: bool = False,
        http_log: Sequence[dict] = (),
    ) -> None:
        """Record an attempt's outcome and its HTTP requests in one transaction.

        The vendor's words (errors, results, requests) are stored with every known secret
        redacted: a vendor may repeat a credential in its answer.
        """
        at = iso(now)
        with self.write():
            self.db.conn.execute(
                "UPDATE actions SET state = ?, last_error = ?, result = coalesce(?, result),"
                " next_attempt_at = coalesce(?, next_attempt_at),"
                " needs_verification = coalesce(?, needs_verification),"
                " attempts = attempts - ?, updated_at = ? WHERE id = ?",
                (state.value, redact_optional(error),
                 redact(_dumps(result)) if result is not None else None,
                 next_attempt_at, None if needs_verification is None else int(needs_verification),
                 int(refund_attempt), at, action.id),
            )
            self.db.conn.executemany(
                "INSERT INTO attempts (action_id, number, at, request, status, latency_ms, error)"
                " VALUES (?,?,?,?,?,?,?)",
                [(action.id, action.attempts, entry.get("at", at), redact(entry["request"]),
                  entry.get("status"), entry.get("latency_ms"), redact_optional(entry.get("error")))
                 for entry in http_log],
            )
            created = (result or {}).get("order_id")
            if state is ActionState.SUCCEEDED and created and action.vendor_id.startswith(
                    NEW_ORDER):
                # the chain's later links act on the order this action made
                self.db.conn.execute(
                    "UPDATE actions SET vendor_id = ? WHERE instance = ? AND vendor_id = ?",
                    (str(created), action.instance, action.vendor_id))

    def blocking(self, action: Action) -> Action | None:
        """The action a pending chain link waits for (it has not succeeded), if any."""
        if action.after is None or action.state is not ActionState.PENDING:
            return None
        before = self.get(action.after)
        return None if before.state is ActionState.SUCCEEDED else before

    def note(self, action_id: int, notes: dict, now: float) -> None:
        """Keep an adapter's notes on an action (committed before its request is sent)."""
        with self.write():
            self.db.conn.execute("UPDATE actions SET notes = ?, updated_at = ? WHERE id = ?",
                                 (_dumps(notes), iso(now), action_id))

    def recover_in_flight(self, instance: str, now: float, verify_at: float | None = None
                          ) -> int:
        """After a restart: every in-flight action must be verified before anything else,
        at ``verify_at`` (when a request it may have left at the vendor has landed)."""
        with self.write():
            return self.db.conn.execute(
                "UPDATE actions SET state = 'pending', needs_verification = 1,"
                " next_attempt_at = ?, updated_at = ? WHERE instance = ? AND state = 'in_flight'",
                (now if verify_at is None else verify_at, iso(now), instance),
            ).rowcount

    def retry(self, action_id: int, now: float) -> Action:
        """A person asks for another try: dead, failed or uncertain -> pending.

        An uncertain action is retried without verification: the person has decided it did
        not take effect. Others keep their need for verification.
        """
        action = self.get(action_id)
        allowed = (ActionState.DEAD, ActionState.FAILED, ActionState.UNCERTAIN)
        if action.state not in allowed:
            raise OutboxError(f"action #{action_id} is {action.state.value}; only dead, failed"
                              " or uncertain actions can be retried")
        verify = False if action.state is ActionState.UNCERTAIN else action.needs_verification
        with self.write():
            self.db.conn.execute(
                "UPDATE actions SET state = 'pending', attempts = 0, next_attempt_at = ?,"
                " needs_verification = ?, updated_at = ? WHERE id = ?",
                (now, int(verify), iso(now), action_id),
            )
        return self.get(action_id)

    def cancel(self, action_id: int, now: float) -> Action:
        """A person withdraws an action that has not reached the vendor for sure."""
        action = self.get(action_id)
        allowed = (ActionState.PENDING, ActionState.DEAD, ActionState.FAILED,
                   ActionState.UNCERTAIN)
        if action.state not in allowed:
            raise OutboxError(f"action #{action_id} is {action.state.value}; only pending, dead,"
                              " failed or uncertain actions can be cancelled")
        with self.write():
            # decided in the statement itself: an attempt that started (or lost its answer)
            # after the read above must not be cancelled
            cursor = self.db.conn.execute(
                "UPDATE actions SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = ?"
                " AND (needs_verification = 0 OR state = 'uncertain')",
                (iso(now), action_id, action.state.value),
            )
        if cursor.rowcount != 1:
            now_ = self.get(action_id)
            if now_.needs_verification and now_.state is not ActionState.UNCERTAIN:
                raise OutboxError(
                    f"action #{action_id} may already have reached the vendor (an answer was"
                    " lost); it is verified at its next attempt: cancel it only if it then ends"
                    " failed, or wait for it to become uncertain")
            raise OutboxError(f"action #{action_id} changed while cancelling; look again")
        return self.get(action_id)


def _action(row: dict) -> Action:
    return Action(
        id=row["id"], instance=row["instance"], vendor_id=row["vendor_id"], kind=row["kind"],
        payload=orjson.loads(row["payload"]), key=row["key"], state=ActionState(row["state"]),
        attempts=row["attempts"], next_attempt_at=row["next_attempt_at"],
        needs_verification=bool(row["needs_verification"]), last_error=row["last_error"],
        result=orjson.loads(row["result"]) if row["result"] else None,
        notes=orjson.loads(row["notes"]) if row.get("notes") else {},
        after=row.get("after_id"),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


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


_BATCH_ROWS = 50


def _insert_batched(conn, insert: str, row: str, width: int, params: list) -> None:
    """Run ``insert`` for every ``width`` values of ``params``: 50 rows to a statement.

    One statement for 50 rows instead of one per row: no per-row statement round trip, and
    SQLite inserts the 50 rows in one step with the GIL released, so that other threads (the
    event loop, the mapping) run meanwhile. 50 rows of the widest table (orders, 19 columns)
    stay under SQLite's oldest limit of 999 parameters. The rows left over go one statement
    per row, so that there are only two statements per table for the statement cache.
    """
    rows = len(params) // width
    full = rows - rows % _BATCH_ROWS
    if full:
        sql = f"{insert} VALUES {','.join([row] * _BATCH_ROWS)}"
        step = _BATCH_ROWS * width
        for start in range(0, full * width, step):
            conn.execute(sql, params[start:start + step])
    if full < rows:
        conn.executemany(f"{insert} VALUES {row}", [
            params[start:start + width] for start in range(full * width, rows * width, width)
        ])


def _public_order(row: dict, items: list[dict]) -> dict:
    return {
        "vendor": row["instance"],
        "id": row["vendor_id"],
        "adapter": row["adapter"],
        "state": row["state"],
        "vendor_state": row["vendor_state"],
        "reference": row["reference"],
        "created": row["created"],
        "modified": row["modified"],
        "expires": row["expires"],
        "customer": row["customer"],
        "comment": row["comment"],
        "url": row["url"],
        "data": orjson.loads(row["data"]),
        "first_seen": row["first_seen"],
        "updated_at": row["updated_at"],
        "problem": row["problem"],
        "items": items,
    }


def _where(**equal: str | None) -> tuple[str, list]:
    """`` WHERE a = ? AND b = ?`` for the given columns that have a value, and the values."""
    given = {column: value for column, value in equal.items() if value}
    if not given:
        return "", []
    return " WHERE " + " AND ".join(f"{c} = ?" for c in given), list(given.values())


def _chunks(values: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class AsyncLedger:
    """Runs a :class:`Ledger` on one dedicated thread; calls run in the order submitted."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``fn(ledger, *args)`` now; await the returned future for its result."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, fn, self.ledger, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    async def close(self) -> None:
        await self.call(Ledger.close)
        self._executor.shutdown(wait=True)


class LedgerView:
    """The read-only slice of the ledger an adapter may consult while it pulls."""

    def __init__(self, ledger: AsyncLedger, instance: str) -> None:
        self._ledger = ledger
        self.instance = instance

    async def known_modified(self, vendor_ids: Iterable[str]) -> dict[str, str | None]:
        return await self._ledger.call(Ledger.known_modified, self.instance, list(vendor_ids))

    async def in_vendor_state(self, vendor_state: str) -> list[dict]:
        return await self._ledger.call(Ledger.in_vendor_state, self.instance, vendor_state)

    async def count_by_vendor_state(self) -> dict[str, int]:
        return await self._ledger.call(Ledger.count_by_vendor_state, self.instance)

    async def stored(self, vendor_id: str) -> dict | None:
        """The vendor's JSON for one order as the ledger last stored it, or None."""
        order = await self._ledger.call(Ledger.order, self.instance, vendor_id)
        return order["raw"] if order is not None else None

    async def flagged(self) -> list[dict]:
        return await self._ledger.call(Ledger.flagged, self.instance)
