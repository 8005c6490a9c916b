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

    def waiting_orders(self, instance: str, vendor_states: Collection[str]
                       ) -> list[WaitingOrder]:
        """Orders of ``instance`` in one of ``vendor_states``, each with when the ledger
        last saw it enter that state (its ``appeared`` or ``state_changed`` event)."""
        if not vendor_states:
            return []
        marks = ",".join("?" * len(vendor_states))
        return [WaitingOrder(*row) for row in self.db.conn.execute(
            "SELECT o.vendor_id, o.vendor_state, coalesce((SELECT max(e.at) FROM events e"
            " WHERE e.instance = o.instance AND e.vendor_id = o.vendor_id"
            " AND e.to_vendor_state = o.vendor_state"
            " AND e.from_vendor_state IS NOT e.to_vendor_state), o.first_seen), o.customer"
            f" FROM orders o WHERE o.instance = ? AND o.vendor_state IN ({marks})",
            [instance, *vendor_states])]

    def expiring(self, after: str, before: str) -> list[Expiring]:
        """Orders not ended whose expiry, or an item's, falls in [after, before] (ISO)."""
        found: dict[tuple[str, str], dict] = {}
        ended = ",".join("?" * len(ENDED))
        for inst, vendor_id, state, expires in self.db.conn.execute(
                "SELECT instance, vendor_id, state, expires FROM orders"
                " WHERE expires IS NOT NULL AND expires BETWEEN ? AND ?"
                f" AND state NOT IN ({ended})", [after, before, *ENDED]):
            found[inst, vendor_id] = {"state": state, "expires": expires, "items": []}
        for inst, vendor_id, title, expires, state in self.db.conn.execute(
                "SELECT i.instance, i.vendor_id, i.title, i.expires, o.state FROM items i"
                " JOIN orders o ON o.instance = i.instance AND o.vendor_id = i.vendor_id"
                " WHERE i.expires IS NOT NULL AND i.expires BETWEEN ? AND ?"
                f" AND o.state NOT IN ({ended})", [after, before, *ENDED]):
            entry = found.setdefault((inst, vendor_id),
                                     {"state": state, "expires": None, "items": []})
            entry["items"].append((title, expires))
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
        """Events at or after ``since`` (ISO): {instance: {event kind: count}}."""
        out: dict[str, dict[str, int]] = {}
        for instance, kind, count in self.db.conn.execute(
                "SELECT instance, kind, count(*) FROM events WHERE at >= ?"
                " GROUP BY instance, kind", (since,)):
            out.setdefault(instance, {})[kind] = count
        return out

    def values(self, instance: str, amount: str, currency: str | None
               ) -> dict[str | None, tuple[int, float]]:
        """{currency: (orders, total)} of the number at ``amount`` in each order's ``data``
        (and the text at ``currency``, when named), orders without an amount left out."""
        currency_sql = "json_extract(data, ?)" if currency else "NULL"
        params = [f"$.{amount}", instance] if not currency else [
            f"$.{currency}", f"$.{amount}", instance]
        rows = self.db.conn.execute(
            f"SELECT {currency_sql}, count(v), total(v) FROM (SELECT data,"
            " json_extract(data, ?) AS v FROM orders WHERE instance = ?)"
            " WHERE v IS NOT NULL GROUP BY 1", params)
        return {cur: (count, total) for cur, count, total in rows}

    def fingerprints(self, instance: str) -> dict[str, tuple[bytes, str, str, str | None]]:
        """Every order of ``instance``: {vendor id: (digest, state, vendor state, problem)},
        what a reconcile compares the vendor's copies with."""
        return {vendor_id: (bytes(fingerprint), state, vendor_state, problem)
                for vendor_id, fingerprint, state, vendor_state, problem in self.db.conn.execute(
                    "SELECT vendor_id, digest, state, vendor_state, problem FROM orders"
                    " WHERE instance = ?", (instance,))}
