"""A mapped order the ledger cannot store (a value beyond 64 bits that an adapter's mapping
passed on) costs neither its page nor the cursor: the page is written order by order, that
order flagged (pages._one_by_one), in process and when the page writer had the page."""

from __future__ import annotations

import asyncio
import dataclasses

from ordersync.contract import Page
from ordersync.intake import Limits
from ordersync.ledger import AsyncLedger, Ledger
from ordersync.pages import PageSink, map_and_apply
from ordersync_adapters.pwinty import ADAPTER as PWINTY

from .test_idle_pages import pwinty


def passing_big_values(raw: dict):
    """Pwinty's mapping, but an order's ``big`` passed on as its ``modified``."""
    order = PWINTY.map_order(raw)
    return dataclasses.replace(order, modified=raw["big"]) if "big" in raw else order


SPEC = dataclasses.replace(PWINTY, map_order=passing_big_values)
BIG = 2**64 - 1


def check(ledger: Ledger, orders: int, flagged: set[str], cursor: dict) -> None:
    stored = {o.vendor_id: o for o in ledger.orders(instance="p")}
    assert len(stored) == orders
    assert {v for v, o in stored.items() if o.problem} == flagged
    for vendor_id in flagged:
        assert stored[vendor_id].problem.startswith("not storable:"), stored[vendor_id]
        assert stored[vendor_id].modified is None
    totals = ledger.totals()
    assert (totals.appeared, totals.events) == (orders, orders)
    assert ledger.cursor("p", "orders") == cursor


def test_in_process_the_page_is_written_order_by_order():
    ledger = Ledger(memory=True)
    result = map_and_apply(ledger, SPEC, "p", "orders",
                           [pwinty(1), pwinty(2, big=BIG), pwinty(3)], {"page": 1}, 1.0)
    assert (result.new, result.flagged) == (3, 1)
    check(ledger, 3, {"2"}, {"page": 1})


async def test_through_the_page_writer_the_failed_page_and_the_next_are_written_in_order(
        tmp_path):
    ledger = AsyncLedger(Ledger(tmp_path / "ledger.db"))
    sink = PageSink(ledger, SPEC, "p", "orders", Limits(), writer_after_orders=0)
    try:
        await sink.put(Page([pwinty(n) for n in range(1, 11)], {"page": 1}), 1.0, 1.0)
        for _ in range(1500):                     # the writer starts at the first page
            if await ledger.call(lambda _: sink.writer is not None and sink.writer.ready):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the page writer never got ready")
        done = []
        for number in range(2, 7):
            orders = [pwinty(n) for n in range(number * 10 - 9, number * 10 + 1)]
            if number == 3:
                orders[4] = pwinty(25, big=BIG)
            done += await sink.put(Page(orders, {"page": number}), 1.0, 1.0)
        done += await sink.finish()
        assert sink.pages_written >= 3               # pages 2, 5 and 6 at least
    finally:
        await sink.close()
        await ledger.close()
    assert sum(r.flagged for r in done) == 1
    opened = Ledger(tmp_path / "ledger.db")
    try:
        check(opened, 60, {"25"}, {"page": 6})
    finally:
        opened.close()
