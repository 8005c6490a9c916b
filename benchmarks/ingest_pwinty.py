"""Cold ingest of simulated Pwinty orders, and what an idle poll costs afterwards.

    .venv/bin/python benchmarks/ingest_pwinty.py --orders 100000
    .venv/bin/python benchmarks/ingest_pwinty.py --orders 20000 --json

Not part of the test suite. The Pwinty simulator runs in a separate process
(``--open-share``, default 1%, of its orders are open, all among the newest, as on a real
account where old orders are complete or cancelled; nothing progresses on its own during
the run) and is warmed by one raw paging pass first: it builds each order the first
time it is read, which is not our cost. Then, in this process: a Service over a fresh
ledger times the cold sync (every page, plus one SubmissionStatus per draft), then three
idle polls (nothing changed at the vendor): their requests, milliseconds and CPU
milliseconds of this process (the median, and each poll's: the first poll after the cold
sync still compares the final orders of its window with the ledger, the next ones hand it
nothing), and that they wrote nothing. Peak RSS is this process's high-water mark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from ordersync import logs
from ordersync.config import parse_config
from ordersync.daemon import Service

KEY_ENV = "BENCH_PWINTY_KEY"
HEADERS = {"X-Pwinty-MerchantId": "sim-merchant", "X-Pwinty-REST-API-Key": "sim-api-key",
           "Accept": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until_up(probe_url: str, headers: dict | None = None, tries: int = 400) -> None:
    """Until a GET of ``probe_url`` is answered (any status): the simulator is listening."""
    for _ in range(tries):
        try:
            async with aiohttp.ClientSession(headers=headers) as session:
                async with session.get(probe_url):
                    return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    raise SystemExit("the simulator did not start")


@contextmanager
def simulator_process(code: str, probe_url: str, headers: dict | None = None,
                      tries: int = 400) -> Iterator[None]:
    """A simulator in its own process (``python -c code``), up until the block ends: its CPU
    is not ours, so the figures are ordersync's alone."""
    sim = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:
        asyncio.run(wait_until_up(probe_url, headers, tries))
        yield
    finally:
        sim.terminate()
        sim.wait(timeout=10)


async def warm(base_url: str, page_size: int) -> None:
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        offset = 0
        while True:
            async with session.get(f"{base_url}/Orders",
                                   params={"count": page_size, "offset": offset}) as resp:
                orders = await resp.json()
            if not orders:
                return
            offset += len(orders)


async def measure(base_url: str, orders: int, page_size: int, directory: Path) -> dict:
    config = parse_config(
        {"ledger": {"path": str(directory / "ledger.db")},
         "vendors": {"prints": {"adapter": "pwinty", "base_url": base_url,
                                "merchant_id": "sim-merchant", "api_key_env": KEY_ENV,
                                "page_size": page_size,
                                "rate_limit": {"requests": 100_000, "per_s": 1}}}},
        source="benchmark", environ={KEY_ENV: "sim-api-key"}, base_dir=directory)
    async with Service(config, handle_signals=False) as service:
        started = time.perf_counter()
        [cold] = await service.run_once()
        cold_s = time.perf_counter() - started
        ledger = service.ledger.ledger
        stored = ledger.totals()
        idle = []
        for _ in range(3):
            idle.append((await idle_poll(service))[1])
        wrote_nothing = ledger.totals() == stored
    return summary(orders, page_size, cold, cold_s, idle, wrote_nothing)


async def idle_poll(service):
    """One poll: its result, and (requests, milliseconds, CPU milliseconds of this process)."""
    started, cpu = time.perf_counter(), time.process_time()
    [result] = await service.run_once()
    return result, (result.requests, (time.perf_counter() - started) * 1000,
                    (time.process_time() - cpu) * 1000)


def summary(orders: int, page_size: int, cold, cold_s: float,
            idle: list[tuple[int, float, float]], wrote_nothing: bool) -> dict:
    """The figures of a cold sync and of idle polls ``(requests, milliseconds, CPU ms)``."""
    return {
        "orders": orders, "page_size": page_size, "cold_s": round(cold_s, 2),
        "orders_per_s": round(cold.new / cold_s), "cold_requests": cold.requests,
        "cold_errors": cold.errors, "idle_requests": max(r for r, _, _ in idle),
        "idle_ms": round(statistics.median(ms for _, ms, _ in idle), 1),
        "idle_cpu_ms": round(statistics.median(cpu for _, _, cpu in idle), 1),
        "idle_cpu_ms_each": [round(cpu, 1) for _, _, cpu in idle],
        "idle_wrote_nothing": wrote_nothing,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="simulated orders")
    parser.add_argument("--page-size", type=int, default=100, help="orders per list request")
    parser.add_argument("--open-share", type=float, default=0.01,
                        help="share of orders still open, all among the newest (default 0.01)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    logs.configure(level="warning")
    port = free_port()
    # Nothing moves on its own during the measurement: no downloads finishing, no order
    # completing; an idle poll then finds nothing new, as the target assumes.
    code = ("import asyncio; from ordersync_adapters.pwinty.simulator import serve; "
            f"asyncio.run(serve('127.0.0.1', {port}, orders={args.orders}, "
            f"open_share={args.open_share}, download_delay_s=1e9, complete_after_s=1e9))")
    base_url = f"http://127.0.0.1:{port}/v2.2"
    with simulator_process(code, f"{base_url}/Country", HEADERS, tries=200):
        asyncio.run(warm(base_url, 250))
        with tempfile.TemporaryDirectory() as directory:
            figures = asyncio.run(measure(base_url, args.orders, args.page_size,
                                          Path(directory)))
    return report(figures, args.json)


def report(figures: dict, as_json: bool) -> int:
    """Print the figures; exit status 1 when the cold sync failed or an idle poll wrote."""
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"  {key:<20} {value}")
    return 0 if figures["idle_wrote_nothing"] and not figures["cold_errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
