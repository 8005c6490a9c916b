"""Helpers for the tests that drive a vendor simulator with a plain aiohttp client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp

# What a client sees when the simulator drops the connection (a "drop" fault).
DISCONNECTED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class Clock:
    """A hand-driven simulator clock."""

    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def simulator_clients(simulator: type, client: type) -> AsyncIterator[Callable]:
    """``await make(**kwargs)`` -> ``client(http, base_url, sim)``: a ``simulator(**kwargs)``
    started on loopback, with a fresh aiohttp session; all are closed when the block ends."""
    started, sessions = [], []

    async def make(**kwargs):
        sim = simulator(**kwargs)
        base = await sim.start()
        started.append(sim)
        http = aiohttp.ClientSession()
        sessions.append(http)
        return client(http, base, sim)

    try:
        yield make
    finally:
        for http in sessions:
            await http.close()
        for sim in started:
            await sim.stop()


@asynccontextmanager
async def loopback_simulators(simulator: type, clock) -> AsyncIterator[Callable]:
    """``sim = await start(**kwargs)``: a ``simulator(clock=clock, **kwargs)`` on loopback,
    its address in ``sim.base_url``; all are stopped when the block ends."""
    started = []

    async def start(**kwargs):
        kwargs.setdefault("clock", clock)
        sim = simulator(**kwargs)
        sim.base_url = await sim.start()
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            await sim.stop()
