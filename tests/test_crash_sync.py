"""kill -9 in the middle of a cold sync leaves the ledger and its cursor consistent."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys

import aiohttp

from ordersync.ledger import Ledger
from ordersync.ledger.schema import DEFERRED_INDEXES

from .conftest import SECRET_ENV

PAGE = 10


def write_config(path, sim, ledger_path) -> None:
    path.write_text(
        f"""
[ledger]
path = "{ledger_path}"

[vendors.fw]
adapter = "fotoware"
base_url = "{sim.base_url}"
client_id = "{sim.client_id}"
client_secret_env = "{SECRET_ENV}"
rate_limit = {{ requests = 1000, per_s = 1 }}
""",
        encoding="utf-8",
    )


async def first_order_of(sim, url: str) -> str:
    async with aiohttp.ClientSession(sim.base_url) as session:
        form = {"grant_type": "client_credentials", "client_id": sim.client_id,
                "client_secret": sim.client_secret}
        async with session.post("/fotoweb/oauth2/token", data=form) as resp:
            token = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}",
                   "Accept": "application/vnd.fotoware.orderlist+json"}
        async with session.get(url, headers=headers) as resp:
            body = await resp.json(content_type=None)
    return body["data"][0]["href"].rsplit("/", 1)[-1]


async def test_kill_9_during_cold_sync_never_leaves_cursor_ahead_of_data(fotoware, tmp_path):
    sim = await fotoware(orders=400, page_size=PAGE, clock=__import__("time").time)
    sim.faults.add("delay", delay_s=0.02, times=10_000, path_prefix="/fotoweb/orders/")
    ledger_path = tmp_path / "ledger.db"
    config = tmp_path / "ordersync.toml"
    write_config(config, sim, ledger_path)
    env = {**os.environ, SECRET_ENV: sim.client_secret}
    rng = random.Random(7)
    expected = sim.order_ids()
    for round_ in range(4):
        pages_before = sum(1 for r in sim.requests if r.query.startswith("p="))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ordersync", "--config", str(config), "sync", "--once",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        target = pages_before + rng.randint(2, 6)
        while sum(1 for r in sim.requests if r.query.startswith("p=")) < target:
            await asyncio.sleep(0.005)
        await asyncio.sleep(rng.uniform(0, 0.02))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

        # The first kill is in a backfill into an empty ledger, which left the read-only
        # indexes for its end: opening the ledger again builds them.
        assert (indexes(ledger_path) & set(DEFERRED_INDEXES) == set()) == (round_ == 0)
        ledger = Ledger(ledger_path)
        try:
            assert set(DEFERRED_INDEXES) <= indexes(ledger_path)
            stored = [o.vendor_id for o in ledger.orders()]
            cursor = ledger.cursor("fw", "orders")
            events = ledger.count_events()
        finally:
            ledger.close()
        # the ledger holds exactly the first pages of history, each order once
        assert stored == expected[: len(stored)], f"round {round_}: not a prefix"
        assert len(stored) % PAGE == 0
        assert events == len(stored)
        if stored:
            assert "counts" not in cursor
            assert await first_order_of(sim, cursor["resume"]["next"]) == expected[len(stored)]

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ordersync", "--config", str(config), "sync", "--once",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    ledger = Ledger(ledger_path)
    try:
        assert [o.vendor_id for o in ledger.orders()] == expected
        assert ledger.count_events() == len(expected)
        assert "resume" not in ledger.cursor("fw", "orders")
    finally:
        ledger.close()


def indexes(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
