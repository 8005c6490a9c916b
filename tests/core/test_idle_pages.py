"""A page the ledger already holds byte for byte is not mapped again (pages.map_and_apply).

The Pwinty adapter's own pure mapping, counted by wrapping it in a spec of its own: a copy
stored unflagged and unchanged costs no mapping; anything else (a change, a flagged copy,
limits that now flag it) is mapped and written exactly as before.
"""

from __future__ import annotations

import dataclasses

import orjson

from ordersync.intake import Limits
from ordersync.ledger import Ledger
from ordersync.pages import DEFAULT_LIMITS, map_and_apply
from ordersync_adapters.pwinty import ADAPTER as PWINTY


def pwinty(n: int, **changes) -> dict:
    return {"id": n, "status": "Complete", "recipientName": f"R {n}",
            "photos": [{"id": n * 10, "url": f"https://x/{n}.jpg", "copies": 1}], **changes}


def counted_spec(calls: list):
    def map_order(raw):
        calls.append(raw.get("id"))
        return PWINTY.map_order(raw)
    return dataclasses.replace(PWINTY, map_order=map_order)


def page(ledger, spec, orders, limits=DEFAULT_LIMITS, now=1.0):
    # raw pages as the pull hands them: freshly decoded, never the same dicts twice
    orders = [orjson.loads(orjson.dumps(o)) for o in orders]
    return map_and_apply(ledger, spec, "p", "orders", orders, None, now, limits=limits)


def test_an_unchanged_copy_is_not_mapped_and_a_changed_one_is():
    ledger, calls = Ledger(memory=True), []
    spec = counted_spec(calls)
    first = page(ledger, spec, [pwinty(1), pwinty(2), pwinty(3)])
    assert (first.new, calls) == (3, [1, 2, 3])
    writes = ledger.db.conn.total_changes

    calls.clear()
    again = page(ledger, spec, [pwinty(1), pwinty(2), pwinty(3)], now=2.0)
    assert (again.new, again.changed, again.unchanged, calls) == (0, 0, 3, [])
    assert ledger.db.conn.total_changes == writes

    moved = page(ledger, spec, [pwinty(1), pwinty(2, status="Cancelled"), pwinty(3)], now=3.0)
    assert (moved.changed, moved.unchanged, calls) == (1, 2, [2])
    assert ledger.order("p", "2").vendor_state == "Cancelled"


def test_flagged_copies_and_copies_a_limit_now_flags_are_mapped_again():
    ledger, calls = Ledger(memory=True), []
    spec = counted_spec(calls)
    page(ledger, spec, [pwinty(1), pwinty(2, recipientName="\ufffd")])
    assert ledger.order("p", "2").problem is not None

    calls.clear()
    again = page(ledger, spec, [pwinty(1), pwinty(2, recipientName="\ufffd")], now=2.0)
    assert (again.unchanged, again.flagged, calls) == (2, 1, [2])   # read until readable

    calls.clear()
    tight = Limits(max_order_bytes=50)
    flagged = page(ledger, spec, [pwinty(1)], limits=tight, now=3.0)
    assert (flagged.changed, flagged.flagged) == (1, 1)
    assert "max_order_bytes" in ledger.order("p", "1").problem
