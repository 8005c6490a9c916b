"""The reads the morning report needs beyond listing orders: orders waiting in a vendor
state and since when, what expires soon, what changed since a time, order value per
currency. Each is one indexed query, so that a report over a million orders stays quick.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from sqlite_utils import Database

from ..model import Item, State
from .records import Expiring, StoredOrder, WaitingOrder

ENDED = (State.EXPIRED.value, State.REJECTED.value, State.CANCELLED.value,
         State.FAILED.value, State.COMPLETED.value)
"""Common states in which an expiry no longer matters."""


class ReportReads:
    """Report queries over orders, items and events (a part of the SQLite ``Ledger``)."""

    db: Database
    _items_for: Callable[[list[tuple[str, str]]], dict[tuple[str, str], tuple[Item, ...]]]
    _known_digests: Callable[[str, list[str]], dict[str, tuple]]

    def waiting_orders(self, instance: str, vendor_states: Collection[str]
                       ) -> list[WaitingOrder]:
        """Orders of ``instance`` in one of ``vendor_states``, each with when it entered that
        state: its ``state_changed`` event into it, or, for an order that was already in it
        when the ledger first saw it, the ledger's first sight and the vendor's ``modified``
        (whichever is earlier: nothing about the order changed since ``modified``)."""
        if not vendor_states:
            return []
        marks = ",".join("?" * len(vendor_states))
        return [WaitingOrder(*row) for row in self.db.conn.execute(
            "SELECT vendor_id, vendor_state, coalesce(entered, first_seen), customer,"
            " CASE WHEN entered IS NULL THEN modified END FROM ("
            " SELECT o.vendor_id, o.vendor_state, o.first_seen, o.customer, o.modified,"
            " (SELECT max(e.at) FROM events e WHERE e.instance = o.instance"
            " AND e.vendor_id = o.vendor_id AND e.to_vendor_state = o.vendor_state"
            " AND e.from_vendor_state IS NOT NULL"
            " AND e.from_vendor_state IS NOT e.to_vendor_state) AS entered"
            f" FROM orders o WHERE o.instance = ? AND o.vendor_state IN ({marks}))",
            [instance, *vendor_states])]

    def expiring(self, after: str, before: str) -> list[Expiring]:
        """Orders not ended whose expiry, or an item's, falls in [after, before] (ISO).

        Both reads are of indexes (orders_by_expiry covers its query); an order's state is
        looked up only for an expiring item whose order does not expire itself."""
        conn = self.db.conn
        found: dict[tuple[str, str], dict] = {}
        ended = ",".join("?" * len(ENDED))
        for inst, vendor_id, state, expires in conn.execute(
                "SELECT instance, vendor_id, state, expires FROM orders"
                " WHERE expires IS NOT NULL AND expires BETWEEN ? AND ?"
                f" AND state NOT IN ({ended})", [after, before, *ENDED]):
            found[inst, vendor_id] = {"state": state, "expires": expires, "items": []}
        items: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for inst, vendor_id, title, expires in conn.execute(
                "SELECT instance, vendor_id, title, expires FROM items"
                " WHERE expires IS NOT NULL AND expires BETWEEN ? AND ?", (after, before)):
            items.setdefault((inst, vendor_id), []).append((title, expires))
        for (inst, vendor_id), expiring in items.items():
            entry = found.get((inst, vendor_id))
            if entry is None:
                row = conn.execute("SELECT state FROM orders WHERE instance = ? AND vendor_id = ?",
                                   (inst, vendor_id)).fetchone()
                if row is None or row[0] in ENDED:
                    continue
                entry = found[inst, vendor_id] = {"state": row[0], "expires": None, "items": []}
            entry["items"] += expiring
        return [Expiring(inst, vendor_id, State(e["state"]), e["expires"], tuple(e["items"]))
                for (inst, vendor_id), e in sorted(found.items())]

    def orders_in_vendor_states(self, instance: str, vendor_states: Collection[str]
                                ) -> list[StoredOrder]:
        """Orders of ``instance`` in one of ``vendor_states``, with their items."""
        from .orders import _stored_order

        if not vendor_states:
            return []
        marks = ",".join("?" * len(vendor_states))
        rows = list(self.db.query(
            f"SELECT * FROM orders WHERE instance = ? AND vendor_state IN ({marks})",
            [instance, *vendor_states]))
        items = self._items_for([(r["instance"], r["vendor_id"]) for r in rows])
        return [_stored_order(r, items.get((r["instance"], r["vendor_id"]), ())) for r in rows]

    def changes_since(self, since: str) -> dict[str, dict[str, int]]:
        """Events at or after ``since`` (ISO): {instance: {event kind: count}}.

        Events are appended as they happen, so their ids follow their times: the first id at
        or after ``since`` is found by a binary search over ids (a few point reads) and only
        the events from there are counted. (An event written while the clock stood earlier
        than an older one, after a clock step back, may be left out.)"""
        out: dict[str, dict[str, int]] = {}
        for instance, kind, count in self.db.conn.execute(
                "SELECT instance, kind, count(*) FROM events WHERE id >= ? AND at >= ?"
                " GROUP BY instance, kind", (self._first_event_at(since), since)):
            out.setdefault(instance, {})[kind] = count
        return out

    def _first_event_at(self, since: str) -> int:
        conn = self.db.conn
        low, high = conn.execute("SELECT coalesce(min(id), 0), coalesce(max(id), 0) + 1"
                                 " FROM events").fetchone()
        while low < high:       # the first id whose event is at or after ``since``
            middle = (low + high) // 2
            row = conn.execute("SELECT id, at FROM events WHERE id >= ? ORDER BY id LIMIT 1",
                               (middle,)).fetchone()
            if row is None or row[1] >= since:
                high = middle
            else:
                low = row[0] + 1
        return low

    def values(self, instance: str, amount: str, currency: str | None
               ) -> dict[str | None, tuple[int, float]]:
        """{currency: (orders, total)} of the open orders (not ended) of ``instance``: the
        number at ``amount`` in each one's ``data`` (and the text at ``currency``, when
        named); orders without an amount are left out. Found through orders_by_state."""
        currency_sql = "json_extract(data, ?)" if currency else "NULL"
        open_states = [s.value for s in State if s.value not in ENDED]
        marks = ",".join("?" * len(open_states))
        params = [f"$.{amount}", *open_states, instance]
        if currency:
            params.insert(0, f"$.{currency}")
        rows = self.db.conn.execute(
            f"SELECT {currency_sql}, count(v), total(v) FROM (SELECT data,"
            f" json_extract(data, ?) AS v FROM orders WHERE state IN ({marks})"
            " AND instance = ?) WHERE v IS NOT NULL GROUP BY 1", params)
        return {cur: (count, total) for cur, count, total in rows}

    def fingerprints(self, instance: str, vendor_ids: Collection[str]
                     ) -> dict[str, tuple[bytes, str, str, str | None]]:
        """The given orders of ``instance`` the ledger holds: {vendor id: (digest, state,
        vendor state, problem)}, what a reconcile compares a page of the vendor's copies with
        (a page at a time, so its memory does not grow with the ledger)."""
        return {vendor_id: (bytes(row[0]), row[1], row[2], row[5]) for vendor_id, row
                in self._known_digests(instance, list(vendor_ids)).items()}

    def unseen(self, instance: str, seen: Collection[str]) -> list[tuple[str, str, str]]:
        """The orders of ``instance`` whose ids are not in ``seen``: (vendor id, state,
        vendor state), by id; the other orders are read one by one and dropped."""
        return [row for row in self.db.conn.execute(
            "SELECT vendor_id, state, vendor_state FROM orders WHERE instance = ?"
            " ORDER BY vendor_id", (instance,)) if row[0] not in seen]
