"""Cold ingest of simulated reseller API V3 orders, and what an idle poll costs afterwards.

    .venv/bin/python benchmarks/ingest_reseller.py --orders 5000
    .venv/bin/python benchmarks/ingest_reseller.py --orders 20000 --json

Not part of the test suite. The reseller simulator runs in a separate process (seeded
orders one an hour over the last ``--orders`` hours, one to three items each, every
execution already finished, drafts younger than 5 days: nothing progresses on its own
during the run). Then, in this
process: a Service over a fresh ledger times the cold sync (every page of ``stage=All``,
and per order its items, each item's characteristics, its custom fields and, for
confirmed orders not final, its execution status), then three idle polls (nothing changed
at the vendor): their requests and milliseconds, and that they wrote no order. Peak RSS is
this process's high-water mark. The vendor's own rate limit is left out (the client's is
set to 100,000/s): at a real organisation the cold sync takes requests / rate limit.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from ordersync import logs
from ordersync.config import parse_config
from ordersync.daemon import Service

from ingest_pwinty import (  # benchmarks/ is the script's folder
    free_port,
    idle_poll,
    report,
    simulator_process,
    summary,
)

SECRET_ENV, PASSWORD_ENV = "BENCH_RESELLER_SECRET", "BENCH_RESELLER_PASSWORD"


async def measure(base_url: str, orders: int, page_size: int, directory: Path) -> dict:
    config = parse_config(
        {"ledger": {"path": str(directory / "ledger.db")},
         "vendors": {"rs": {"adapter": "reseller", "base_url": base_url,
                            "client_key": "sim-client-key", "client_secret_env": SECRET_ENV,
                            "username": "api@reseller.example", "password_env": PASSWORD_ENV,
                            "page_size": page_size,
                            "rate_limit": {"requests": 100_000, "per_s": 1}}}},
        source="benchmark", environ={SECRET_ENV: "sim-client-secret",
                                     PASSWORD_ENV: "sim-password"}, base_dir=directory)
    async with Service(config, handle_signals=False) as service:
        started = time.perf_counter()
        [cold] = await service.run_once()
        cold_s = time.perf_counter() - started
        ledger = service.ledger.ledger
        stored = ledger.totals()
        idle, changed = [], 0
        for _ in range(3):
            await asyncio.sleep(1.1)   # past the second of the previous poll's read
            result, figures = await idle_poll(service)
            idle.append(figures)
            changed += result.new + result.changed
        after = ledger.totals()
    figures = summary(orders, page_size, cold, cold_s, idle, after == stored and not changed)
    figures["requests_per_order"] = round(cold.requests / max(1, cold.new), 2)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5_000, help="simulated orders")
    parser.add_argument("--page-size", type=int, default=100, help="orders per list request")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    logs.configure(level="warning")
    port = free_port()
    code = ("import asyncio; from ordersync_adapters.reseller.simulator import ResellerSimulator;"
            f" asyncio.run(ResellerSimulator.serve('127.0.0.1', {port}, orders={args.orders}))")
    base_url = f"http://127.0.0.1:{port}"
    with simulator_process(code, f"{base_url}/api/orders"):
        with tempfile.TemporaryDirectory() as directory:
            figures = asyncio.run(measure(base_url, args.orders, args.page_size,
                                          Path(directory)))
    return report(figures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
