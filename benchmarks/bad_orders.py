"""What one oversized order costs a poll: 10^6 items, or a 10 MB string.

A Pwinty simulator (in this process) serves ``--orders`` orders, one of them replaced by a
planted order with ``--items`` tiny photos and one by an order with a ``--string-mb`` MB
address line; one ``Service.run_once()`` with the default limits ingests them into a fresh
ledger. Prints the time, this process's peak RSS (simulator included) and what was flagged.

    .venv/bin/python benchmarks/bad_orders.py
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

import orjson

from ordersync import logs
from ordersync.config import parse_config
from ordersync.daemon import Service
from ordersync.ledger import Ledger
from ordersync_adapters.pwinty.simulator import PwintySimulator


async def main(args: argparse.Namespace) -> None:
    sim = PwintySimulator(orders=args.orders, seed=1)
    sim.base_url = await sim.start() + "/v2.2"
    ids = sim.order_ids()
    huge = sim.get_order(ids[-1])
    huge["photos"] = [{"id": n} for n in range(args.items)]
    sim.plant(ids[-1], orjson.dumps(huge))
    long = sim.get_order(ids[-2])
    long["address1"] = "x" * (args.string_mb << 20)
    sim.plant(ids[-2], orjson.dumps(long))
    sim.warm()
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.db"
        config = parse_config(
            {"ledger": {"path": str(path)},
             "vendors": {"prints": {"adapter": "pwinty", "base_url": sim.base_url,
                                    "merchant_id": sim.merchant_id, "api_key_env": "KEY",
                                    "rate_limit": {"requests": 100_000, "per_s": 1}}}},
            source="benchmark", environ={"KEY": sim.api_key}, base_dir=path.parent)
        started = time.perf_counter()
        async with Service(config, handle_signals=False) as service:
            [result] = await service.run_once()
        elapsed = time.perf_counter() - started
        ledger = Ledger(path)
        flagged = {o.vendor_id: o.problem for o in ledger.orders(flagged=True)}
        ledger.close()
    await sim.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.orders} orders, one with {args.items:,} items, one with a {args.string_mb} MB"
          f" string: {elapsed:.2f} s, peak RSS {peak_mb:.0f} MB ({before_mb:.0f} MB before"
          f" the sync, simulator included); new {result.new}, flagged {result.flagged}")
    for oid, problem in flagged.items():
        print(f"  {oid}: {problem}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--string-mb", type=int, default=10)
    logs.configure(level="error")
    asyncio.run(main(parser.parse_args()))
