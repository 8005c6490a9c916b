"""apply_page with pages of realistic size: rows are written 50 to a statement.

tests/core/test_ledger.py covers the rules with two or three orders; these pages are larger
than one batch (and not a multiple of it), so the batched statements and the rows left over
both run, for new, changed, unchanged and repeated orders in one page.
"""

from __future__ import annotations

import orjson

from ordersync.ledger import Ledger, digest
from ordersync.model import Item, Order, State


def order(n: int, state: State = State.SUBMITTED, vendor_state: str = "pending",
          items: int = 2, note: str = "") -> Order:
    raw = orjson.dumps({"id": n, "state": vendor_state, "items": items, "note": note})
    return Order(
        vendor_id=str(n), state=state, vendor_state=vendor_state, reference=f"R{n}",
        created="2026-01-01T00:00:00Z", modified=None, raw=raw,
        items=tuple(Item(key=f"{n}/{i}", title=f"item {i}", status=None if i else "expired",
                         data={"i": i} if i % 2 else {}) for i in range(items)),
        url=f"/orders/{n}", comment=note or None, data={"b": 1, "a": [n]} if n % 3 else {},
    )


def rows(ledger: Ledger, sql: str) -> list[tuple]:
    return ledger.db.conn.execute(sql).fetchall()


def test_a_large_cold_page_keeps_every_order_item_event_and_raw_json():
    ledger = Ledger(memory=True)
    page = [order(n, items=n % 4) for n in range(1, 128)]
    result = ledger.apply_page("fw", "fotoware", "orders", page, {"page": 1}, now=10.0)
    assert (result.new, result.changed, result.unchanged) == (127, 0, 0)
    stored = rows(ledger, "SELECT vendor_id, raw, digest, data, comment, first_seen, updated_at"
                          " FROM orders ORDER BY rowid")
    assert [r[0] for r in stored] == [str(n) for n in range(1, 128)]
    for (_vendor_id, raw, fingerprint, data, comment, first_seen, updated_at), o in zip(
            stored, page, strict=True):
        assert raw.encode() == o.raw and fingerprint == digest(o.raw)
        assert data == (orjson.dumps(o.data, option=orjson.OPT_SORT_KEYS).decode()
                        if o.data else "{}")
        assert comment is None and first_seen == updated_at == "1970-01-01T00:00:10.000Z"
    items = rows(ledger, "SELECT vendor_id, position, key, status, data FROM items"
                         " ORDER BY CAST(vendor_id AS INTEGER), position")
    assert items == [(str(n), i, f"{n}/{i}", None if i else "expired",
                      '{"i":1}' if i % 2 else "{}")
                     for n in range(1, 128) for i in range(n % 4)]
    events = rows(ledger, "SELECT vendor_id, kind, from_state, to_state, from_vendor_state,"
                          " to_vendor_state, detail, source FROM events ORDER BY id")
    assert events == [(str(n), "appeared", None, "submitted", None, "pending", None, "poll")
                      for n in range(1, 128)]
    assert ledger.cursor("fw", "orders") == {"page": 1}


def test_a_large_mixed_page_writes_only_what_changed_in_page_order():
    ledger = Ledger(memory=True)
    ledger.apply_page("fw", "fotoware", "orders", [order(n) for n in range(1, 101)], None, 1.0)
    changes = ledger.db.conn.total_changes
    again = ledger.apply_page("fw", "fotoware", "orders", [order(n) for n in range(1, 101)],
                              None, 2.0)
    assert (again.new, again.changed, again.unchanged) == (0, 0, 100)
    assert ledger.db.conn.total_changes == changes

    page = []
    for n in range(1, 161):
        if n <= 100 and n % 5 == 0:
            page.append(order(n, State.APPROVED, "approved", items=1))   # state changed
        elif n <= 100 and n % 7 == 0:
            page.append(order(n, note="edited", items=3))                  # updated
        else:
            page.append(order(n))                                          # same, or new
    page += [order(5, State.REJECTED, "rejected"), order(150, note="twice")]  # repeats: ignored
    result = ledger.apply_page("fw", "fotoware", "orders", page, {"page": 2}, now=3.0,
                               source="action")
    moved = [n for n in range(1, 101) if n % 5 == 0]
    edited = [n for n in range(1, 101) if n % 5 and n % 7 == 0]
    fresh = list(range(101, 161))
    assert (result.new, result.changed, result.unchanged) == (
        len(fresh), len(moved) + len(edited), 100 - len(moved) - len(edited))

    events = rows(ledger, "SELECT vendor_id, kind, from_state, to_state, source FROM events"
                          " WHERE id > 100 ORDER BY id")
    expected = []
    for n in range(1, 161):
        if n in moved:
            expected.append((str(n), "state_changed", "submitted", "approved", "action"))
        elif n in edited:
            expected.append((str(n), "updated", "submitted", "submitted", "action"))
        elif n in fresh:
            expected.append((str(n), "appeared", None, "submitted", "action"))
    assert events == expected
    assert rows(ledger, "SELECT count(*) FROM items WHERE vendor_id = '5'") == [(1,)]
    assert rows(ledger, "SELECT count(*) FROM items WHERE vendor_id = '7'") == [(3,)]
    assert rows(ledger, "SELECT state, first_seen, updated_at FROM orders"
                        " WHERE vendor_id = '5'") == [
        ("approved", "1970-01-01T00:00:01.000Z", "1970-01-01T00:00:03.000Z")]
    assert rows(ledger, "SELECT comment FROM orders WHERE vendor_id = '150'") == [(None,)]
    assert ledger.cursor("fw", "orders") == {"page": 2}
