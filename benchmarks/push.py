"""The outbox's push rate: approvals drained against a rate-limited Fotoware simulator.

    .venv/bin/python benchmarks/push.py                      # 5,000 approvals at 50 req/s (~100 s)
    .venv/bin/python benchmarks/push.py --actions 500        # a quick run (~10 s)
    .venv/bin/python benchmarks/push.py --limit 20 --json    # another limit, machine-readable

Not part of the test suite. Target: at least 95% of the vendor's limit and no rate-limit
answer (429) at all, i.e. ordersync's own throttle keeps it just under the limit.

What it does, in one process:

1. starts the Fotoware simulator on loopback (``sim.rate_limit`` = the limit: a sliding
   window that answers 429 to every request beyond it, like a real gateway) with enough
   orders that ``--actions`` of them are pending or created (approvable);
2. syncs them into a fresh ledger (limit off: not what is measured);
3. queues one plain approval per order through ``ordersync.actions.enqueue`` (the code
   behind ``ordersync approve``), in one transaction;
4. switches the limit on and times ``Service.drain_actions``, the executor the daemon and
   ``sync --once`` run, with the vendor configured as ``rate_limit = {requests = LIMIT,
   per_s = 1}``; a plain approval is one request (APPROVE answers with the order);
5. reports, from the simulator's own request log: requests, wall time, achieved rate and its
   share of the limit, 429 answers, the most requests seen in any 1 s window; and checks
   that every action succeeded and each order was approved exactly once.

The simulator runs in the same process and event loop, so it shares the CPU with ordersync:
the figures are a floor for ordersync's own speed, not a measure of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ordersync import logs
from ordersync.actions import enqueue
from ordersync.config import parse_config
from ordersync.daemon import Service
from ordersync.ledger import Ledger
from ordersync_adapters.fotoware.simulator import FotowareSimulator

VENDOR = "fotoware-main"
SECRET_ENV = "BENCH_FOTOWARE_SECRET"
APPROVABLE = ("pending", "created")


def config_for(sim: FotowareSimulator, ledger: Path, limit: int):
    table = {
        "adapter": "fotoware", "base_url": sim.base_url, "client_id": sim.client_id,
        "client_secret_env": SECRET_ENV, "rate_limit": {"requests": limit, "per_s": 1},
        "poll_interval_s": 3600,
    }
    return parse_config({"ledger": {"path": str(ledger)}, "vendors": {VENDOR: table}},
                        source="benchmarks/push.py", environ={SECRET_ENV: sim.client_secret},
                        base_dir=ledger.parent)


def max_in_window(times: list[float], window_s: float = 1.0) -> int:
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def pick_orders(sim: FotowareSimulator, count: int) -> list[str]:
    """``count`` approvable orders, oldest first; others are made pending if too few."""
    ids = sorted(sim.order_ids())
    chosen = [oid for oid in ids if sim.get_order(oid)["state"] in APPROVABLE][:count]
    for oid in ids:
        if len(chosen) >= count:
            break
        if oid not in chosen and sim.get_order(oid)["state"] != "expired":
            sim.set_state(oid, "pending")
            chosen.append(oid)
    if len(chosen) < count:
        raise SystemExit(f"only {len(chosen)} approvable orders for {count} actions")
    return chosen


async def run(actions: int, limit: int, folder: Path) -> dict:
    orders = math.ceil(actions / 0.42) + 100          # ~45% of seeded orders are approvable
    sim = FotowareSimulator(orders=orders, page_size=250, clock=time.time)
    sim.base_url = await sim.start()
    try:
        targets = pick_orders(sim, actions)
        sim.warm()
        ledger_path = folder / "ledger.db"
        fast = config_for(sim, ledger_path, 10_000)
        async with Service(fast, handle_signals=False) as service:
            [synced] = await service.run_once()
        assert not synced.errors, synced.errors

        started = time.perf_counter()
        queued = await enqueue(fast, "approve", [(VENDOR, oid) for oid in targets], {})
        enqueue_s = time.perf_counter() - started
        assert all(created for _, created in queued)

        config = config_for(sim, ledger_path, limit)
        sim.rate_limit = (limit, 1.0)
        sim.rate_limited = 0
        mark = len(sim.requests)
        effects_before = len(sim.effects)
        async with Service(config, handle_signals=False) as service:
            started = time.perf_counter()
            ended = await service.drain_actions(VENDOR, recover=True)
            wall_s = time.perf_counter() - started
            http_stats = dict(service.runners[VENDOR].http.stats)
        sim.rate_limit = None

        requests = sim.requests[mark:]
        times = [r.at for r in requests]
        statuses = Counter(r.status for r in requests)
        first = min(times)
        after_burst = [t for t in times if t >= first + 1.0]
        steady = (len(after_burst) / (max(times) - (first + 1.0))
                  if len(after_burst) > 1 else None)
        ledger = Ledger(ledger_path)
        try:
            states = ledger.outbox.counts(VENDOR)
        finally:
            ledger.close()
        approvals = Counter(e.order_id for e in sim.effects[effects_before:]
                            if e.verb == "APPROVE")
        exactly_once = (set(approvals) == set(targets)
                        and set(approvals.values()) == {1}
                        and len(sim.effects) - effects_before == actions)
        achieved = len(requests) / wall_s
        return {
            "actions": actions,
            "limit_per_s": limit,
            "orders_in_simulator": orders,
            "enqueue_s": round(enqueue_s, 3),
            "requests": len(requests),
            "requests_by_method": dict(Counter(r.method for r in requests)),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "wall_s": round(wall_s, 2),
            "achieved_per_s": round(achieved, 2),
            "share_of_limit": round(achieved / limit, 4),
            "steady_per_s": round(steady, 2) if steady else None,
            "steady_share_of_limit": round(steady / limit, 4) if steady else None,
            "rate_limited_429": sim.rate_limited,
            "status_429_seen": statuses.get(429, 0),
            "max_requests_in_1s": max_in_window(times),
            "client_retries": http_stats.get("retries", 0),
            "ended": dict(ended),
            "outbox": states,
            "all_succeeded": states == {"succeeded": actions},
            "each_approved_exactly_once": exactly_once,
        }
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=5000, help="approvals (default 5000)")
    parser.add_argument("--limit", type=int, default=50,
                        help="the vendor's limit, requests per second (default 50)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.actions < 1 or args.limit < 1:
        parser.error("--actions and --limit must be at least 1")
    logs.configure(level="error", fmt="json", secrets=[])
    with tempfile.TemporaryDirectory(prefix="ordersync-push-") as folder:
        result = asyncio.run(run(args.actions, args.limit, Path(folder)))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['actions']} approvals against a simulator limited to"
              f" {result['limit_per_s']} requests/s (in-process simulator, shared CPU)")
        print(f"  requests sent        {result['requests']} {result['requests_by_method']}")
        print(f"  wall time            {result['wall_s']} s (queueing took"
              f" {result['enqueue_s']} s, not counted)")
        print(f"  achieved rate        {result['achieved_per_s']}/s ="
              f" {result['share_of_limit']:.1%} of the limit")
        if result["steady_per_s"]:
            print(f"  after the first 1 s  {result['steady_per_s']}/s ="
                  f" {result['steady_share_of_limit']:.1%} of the limit")
        print(f"  429 answers          {result['rate_limited_429']}"
              f" (client retries {result['client_retries']})")
        print(f"  most in any 1 s      {result['max_requests_in_1s']}")
        print(f"  outbox               {result['outbox']};"
              f" each order approved exactly once: {result['each_approved_exactly_once']}")
    ok = (result["all_succeeded"] and result["each_approved_exactly_once"]
          and result["rate_limited_429"] == 0 and result["share_of_limit"] >= 0.95)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
