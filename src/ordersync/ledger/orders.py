"""Orders, their items and events: pages of orders in, typed orders out.

:meth:`OrderStore.apply_page` is the hot path of every sync: new orders get an ``appeared``
event; orders whose raw JSON changed are rewritten with a ``state_changed`` or ``updated``
event; unchanged orders (the same digest) cost one read and write nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

import orjson
from sqlite_utils import Database

from ..clock import iso
from ..model import Item, Order, OrderRow, State, order_row
from .records import OrderEvent, OrderRef, PageResult, StateCount, StoredOrder, Totals
from .syncstate import save_cursor

T = TypeVar("T")

UNSTORABLE = (OverflowError, TypeError, ValueError)
"""What SQLite or orjson raise for a value they cannot hold (an int beyond 64 bits, a lone
surrogate): a mapped order the ledger cannot write is stored flagged instead (pages.py)."""


def digest(raw: bytes) -> bytes:
    """A short fingerprint of an order's raw JSON: equal fingerprints, nothing to write."""
    return hashlib.blake2b(raw, digest_size=16).digest()


class OrderStore:
    """The orders, items and events tables (a part of the SQLite ``Ledger``)."""

    db: Database
    write: Callable[[], AbstractContextManager[None]]

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
        return self.write_rows(instance, adapter, stream, page_rows(orders), cursor, now,
                               source, read_at)

    def write_rows(
        self,
        instance: str,
        adapter: str,
        stream: str,
        rows: PageRows,
        cursor: dict | None,
        now: float,
        source: str = "poll",
        read_at: float | None = None,
    ) -> PageResult:
        """:meth:`apply_page` for a page already turned into rows (:func:`page_rows`): the
        half that needs the database, so that it can run in another process (pagewriter.py).
        """
        at = iso(now)
        conn = self.db.conn
        # The hot path of every sync: a cold full scan runs this for every order. Parameters
        # go into flat lists, written 50 rows to a statement (see _insert_batched).
        blake2b = hashlib.blake2b
        with self.write():
            known = self._known_digests(instance, [row[0] for row in rows])
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
            for vendor_id, problem, state, vendor_state, raw, columns, items in rows:
                if vendor_id in seen:
                    continue
                seen.add(vendor_id)
                fingerprint = blake2b(raw, digest_size=16).digest()   # == digest(raw), inlined
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
                    # a stored order means ``known`` was given, so add_event is this very method
                    event_params.extend((instance, vendor_id, at, source, kind, old_state, state,
                                         old_vendor_state, vendor_state, problem))
                add_order((instance, vendor_id, adapter, state, vendor_state))
                add_order(columns)
                add_order((raw.decode("utf-8"), fingerprint, first_seen, at, read_at, problem))
                for position, item in enumerate(items):
                    add_item((instance, vendor_id, position))
                    add_item(item)
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
                save_cursor(conn, instance, stream, cursor, at)
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

    # -- reads ------------------------------------------------------------------------

    def sound_digests(self, instance: str, vendor_ids: list[str]) -> dict[str, bytes]:
        """The digest of each given order the ledger holds unflagged."""
        return {vendor_id: row[0] for vendor_id, row in
                self._known_digests(instance, vendor_ids).items() if row[5] is None}

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

    def in_vendor_state(self, instance: str, vendor_state: str) -> list[OrderRef]:
        """Every order the ledger holds in ``vendor_state``: its id, url and expiry."""
        return [
            OrderRef(*row)
            for row in self.db.conn.execute(
                "SELECT vendor_id, url, expires FROM orders WHERE instance = ?"
                " AND vendor_state = ?",
                (instance, vendor_state),
            )
        ]

    def flagged(self, instance: str) -> list[OrderRef]:
        """Every flagged order that has a url (one the vendor can be asked for).

        Every poll asks: the partial index finds them without reading the table (named, as
        the planner may otherwise take an index on ``instance`` built after it).
        """
        return [
            OrderRef(*row)
            for row in self.db.conn.execute(
                "SELECT vendor_id, url, expires FROM orders INDEXED BY orders_flagged"
                " WHERE instance = ?"
                " AND problem IS NOT NULL AND url IS NOT NULL", (instance,),
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
    ) -> list[StoredOrder]:
        """Orders, newest first, with their items (only flagged ones if asked)."""
        where, params = _where(instance=instance, state=state)
        if flagged:
            where += (" AND" if where else " WHERE") + " problem IS NOT NULL"
        sql = "SELECT * FROM orders" + where
        sql += (" ORDER BY created DESC, instance, length(vendor_id) DESC, vendor_id DESC")
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = list(self.db.query(sql, params))
        items = self._items_for([(r["instance"], r["vendor_id"]) for r in rows])
        return [_stored_order(r, items.get((r["instance"], r["vendor_id"]), ())) for r in rows]

    def order(self, instance: str, vendor_id: str) -> StoredOrder | None:
        """One order with its items, events and raw vendor JSON, or None."""
        rows = list(
            self.db.query(
                "SELECT * FROM orders WHERE instance = ? AND vendor_id = ?", (instance, vendor_id)
            )
        )
        if not rows:
            return None
        items = self._items_for([(instance, vendor_id)]).get((instance, vendor_id), ())
        events = tuple(
            OrderEvent(*row) for row in self.db.conn.execute(
                "SELECT at, source, kind, from_state, to_state, from_vendor_state,"
                " to_vendor_state, detail FROM events WHERE instance = ? AND vendor_id = ?"
                " ORDER BY id",
                (instance, vendor_id),
            )
        )
        return _stored_order(rows[0], items, raw=orjson.loads(rows[0]["raw"]), events=events)

    def _items_for(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[Item, ...]]:
        found: dict[tuple[str, str], list[Item]] = {}
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
                    found.setdefault((instance, row["vendor_id"]), []).append(Item(
                        key=row["key"], title=row["title"], quantity=row["quantity"],
                        status=row["status"], expires=row["expires"],
                        data=orjson.loads(row["data"]),
                    ))
        return {key: tuple(items) for key, items in found.items()}

    def summary(self) -> list[StateCount]:
        """Order counts per instance and common state."""
        return [
            StateCount(instance, State(state), count)
            for instance, state, count in self.db.conn.execute(
                "SELECT instance, state, count(*) FROM orders"   # from orders_by_state alone
                " GROUP BY state, instance ORDER BY instance, state"
            )
        ]

    def totals(self) -> Totals:
        """Counts of everything held, and when an order was last written."""
        conn = self.db.conn
        orders, without_raw, last_updated = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE raw IS NULL OR raw = ''), max(updated_at)"
            " FROM orders").fetchone()
        events, appeared = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE kind = 'appeared') FROM events").fetchone()
        items = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        return Totals(orders, items, events, appeared, without_raw, last_updated)

    def count_events(self, instance: str | None = None) -> int:
        if instance is None:
            return self.db.conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return self.db.conn.execute(
            "SELECT count(*) FROM events WHERE instance = ?", (instance,)
        ).fetchone()[0]



PageRows = list[OrderRow]
"""A page of orders as the ledger writes them (:data:`~ordersync.model.OrderRow`): plain
values, cheap to pickle to the page writer process."""


def page_rows(orders: Iterable[Order]) -> PageRows:
    """A page of orders as :data:`PageRows` (custom data orjson cannot serialise raises
    TypeError). Pure; the digests are :meth:`OrderStore.write_rows`'s."""
    return [order_row(order) for order in orders]


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


def _stored_order(row: dict, items: tuple[Item, ...], **extra) -> StoredOrder:
    return StoredOrder(
        instance=row["instance"], vendor_id=row["vendor_id"], adapter=row["adapter"],
        state=State(row["state"]), vendor_state=row["vendor_state"],
        reference=row["reference"], created=row["created"], modified=row["modified"],
        expires=row["expires"], customer=row["customer"], comment=row["comment"],
        url=row["url"], data=orjson.loads(row["data"]), first_seen=row["first_seen"],
        updated_at=row["updated_at"], problem=row["problem"], items=items, **extra,
    )


def _where(**equal: str | None) -> tuple[str, list]:
    """`` WHERE a = ? AND b = ?`` for the given columns that have a value, and the values."""
    given = {column: value for column, value in equal.items() if value}
    if not given:
        return "", []
    return " WHERE " + " AND ".join(f"{c} = ?" for c in given), list(given.values())


def _chunks(values: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


