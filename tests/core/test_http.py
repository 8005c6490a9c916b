"""VendorHttp against a real simulator: an unreadable answer is read again only when safe."""

from __future__ import annotations

import pytest

from ordersync.errors import AmbiguousError
from ordersync.http import VendorHttp
from ordersync.http_answers import Response
from ordersync_adapters.fotoware.client import ORDER, client_credentials


async def connect(sim, clock) -> VendorHttp:
    http = VendorHttp("fw", sim.base_url, sleep=clock.sleep, clock=clock)
    http.auth = client_credentials(sim.client_id, sim.client_secret, clock=clock)
    return http


async def test_unreadable_answer_to_a_read_is_read_again(fotoware, clock):
    sim = await fotoware(orders=5)
    target = sim.order_ids()[0]
    sim.faults.add("malformed", method="GET")
    async with await connect(sim, clock) as http:
        order = await http.get_json(f"/fotoweb/orders/{target}", accept=ORDER)
    assert order["href"] == f"/fotoweb/orders/{target}"
    assert [r.method for r in sim.requests].count("GET") == 2


async def test_unreadable_answer_to_a_write_is_ambiguous_and_never_resent(fotoware, clock):
    sim = await fotoware(orders=20)
    target = next(i for i in sim.order_ids() if sim.get_order(i)["state"] == "pending")
    sim.faults.add("malformed", method="APPROVE")
    async with await connect(sim, clock) as http:
        with pytest.raises(AmbiguousError, match="may have taken effect"):
            await http.request("APPROVE", f"/fotoweb/orders/{target}",
                               headers={"Accept": ORDER}, read=Response.json)
    assert [(e.verb, e.order_id) for e in sim.effects] == [("APPROVE", target)]
    assert [r.method for r in sim.requests].count("APPROVE") == 1
