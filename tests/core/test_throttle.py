"""The rate-limit window (``throttle.AnswerDatedWindow``) against a real simulator: a place
is held from a request's release until a window after its answer."""

from __future__ import annotations

import asyncio
import time

from ordersync.http import RateLimit, VendorHttp
from ordersync_adapters.fotoware.client import DESCRIPTOR, DESCRIPTOR_PATH, client_credentials

SLOW_S = 0.3


async def test_a_request_in_flight_longer_than_the_window_keeps_its_place(fotoware, clock):
    sim = await fotoware(orders=2, clock=time.monotonic)   # requests dated as they arrive
    sim.faults.add("delay", delay_s=SLOW_S, times=1, path_prefix="/fotoweb/me/")
    auth = client_credentials(sim.client_id, sim.client_secret)
    async with VendorHttp("fw", sim.base_url, rate_limit=RateLimit(1, 0.05), sleep=clock.sleep,
                          auth=auth) as http:
        await asyncio.gather(*(http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
                               for _ in range(2)))
    slow, other = sorted((r for r in sim.requests if r.path.startswith("/fotoweb/me/")),
                         key=lambda r: r.at)
    assert slow.fault == "delay" and other.fault is None
    # the second waited for the slow one's answer (a window dated by release would have let
    # it go a window after the slow one left, while the slow one was still being answered)
    assert other.at >= slow.at + SLOW_S
    assert sim.rate_limited == 0 and clock.sleeps == []
