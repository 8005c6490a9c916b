"""The morning report over a big ledger: ``ordersync report`` as a whole process, and the
exceptions refresh alone.

    .venv/bin/python benchmarks/report.py                     # 1,000,000 orders (~3 min once)
    .venv/bin/python benchmarks/report.py --orders 100000     # a quick run
    .venv/bin/python benchmarks/report.py --index-cost        # what m008's indexes cost ingest

Not part of the test suite. Target: the report over 1,000,000 orders in under 3 s.

The ledger is built once (then kept in ``--dir`` and reused) through the ledger's own write
path, ``sync.map_and_apply`` (intake, the adapter's pure mapping, ``apply_page``), in pages
of 5,000, from Fotoware-shaped orders (a simulator order as the template, ~1.5 KB each) and
5% as many Pwinty-shaped ones, two days before now, with planted causes:

    fw (Fotoware)   1% pending (stuck after a day), 0.5% approved and expiring within the
                    window (order and items), 60% approved with a past expiry, the rest
                    rejected or expired; 0.02% without an href (stored flagged)
    prints (Pwinty) 2% drafts with a photo the vendor could not download (a problem),
                    prices on every order (the value summary)
    outbox          200 dead, 50 uncertain and 100 long-pending actions

It then times, as whole processes (start-up included), ``ordersync report --format json``
and the table (the first run inserts every exception; later runs touch them), and
``report.refresh`` in-process. ``--index-cost`` ingests 100,000 orders into fresh ledgers
with and without m008's two expiry indexes, alternating, and prints both rates and the
CPU time per order (steadier than the rate on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from ordersync.ledger import Ledger
from ordersync.pages import map_and_apply
from ordersync.registry import adapter as find_adapter
from ordersync.report import ReportSettings, refresh
from ordersync_adapters.fotoware.simulator import FotowareSimulator, iso
from ordersync_adapters.pwinty.simulator import PwintySimulator

DAY = 86400.0
PAGE = 5000
CONFIG = """\
[ledger]
path = '{ledger}'

[vendors.fw]
adapter = "fotoware"
base_url = "http://127.0.0.1:9"
client_id = "bench"
client_secret_env = "BENCH_UNUSED"

[vendors.prints]
adapter = "pwinty"
base_url = "http://127.0.0.1:9/v2.2"
merchant_id = "bench"
api_key_env = "BENCH_UNUSED"
"""


def fotoware_orders(count: int, start: int, built_at: float):
    """Fotoware-shaped raw orders with the planted mix, in pages."""
    template = FotowareSimulator(orders=50).get_order("10001")
    rnd = random.Random(start)
    page: list[dict] = []
    for oid in range(start, start + count):
        draw = rnd.random()
        if draw < 0.01:
            state, expires = "pending", None
        elif draw < 0.015:
            state, expires = "approved", iso(built_at + 2 * DAY + rnd.uniform(3600, DAY))
        elif draw < 0.615:
            state, expires = "approved", iso(built_at - rnd.uniform(DAY, 300 * DAY))
        else:
            state, expires = rnd.choice(("rejected", "expired")), None
        order = {**template, "href": f"/fotoweb/orders/{oid}", "state": state,
                 "expires": expires, "orderReference": f"ORD-{oid}",
                 "orderItems": [{**item, "expires": expires}
                                for item in template["orderItems"]]}
        if rnd.random() < 0.0002:
            del order["href"]          # unreadable: stored flagged under a digest id
        page.append(order)
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def pwinty_orders(count: int):
    sim = PwintySimulator(orders=50, open_share=0.0)
    template = sim.get_order(sim.order_ids()[0])
    rnd = random.Random(7)
    page: list[dict] = []
    for oid in range(100_000, 100_000 + count):
        draft = rnd.random() < 0.02
        photos = [{**p, "status": "FileNotFoundAtUrl" if draft else "Ok"}
                  for p in template["photos"]]
        page.append({**template, "id": oid, "photos": photos,
                     "status": "NotYetSubmitted" if draft else "Complete"})
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def build(path: Path, orders: int, built_at: float) -> float:
    """Write the ledger; returns the seconds it took."""
    started = time.perf_counter()
    ledger = Ledger(path)
    fw, prints = find_adapter("fotoware"), find_adapter("pwinty")
    for page in fotoware_orders(orders, 1, built_at):
        map_and_apply(ledger, fw, "fw", "orders", page, None, built_at)
    for page in pwinty_orders(max(1, orders // 20)):
        map_and_apply(ledger, prints, "prints", "orders", page, None, built_at)
    outbox = ledger.outbox
    for number in range(350):
        action, _ = outbox.enqueue("fw", str(number + 1), "approve", {}, f"bench-{number}",
                                   built_at)
        if number < 250:
            started_action = outbox.start(action.id, built_at)
            assert started_action is not None
            state = "dead" if number < 200 else "uncertain"
            from ordersync.model import ActionState

            outbox.finish(started_action, ActionState(state), built_at,
                          error="HTTP 503: planted by benchmarks/report.py")
    for instance in ("fw", "prints"):
        ledger.record_poll(instance, time.time())
    ledger.close()
    return time.perf_counter() - started


def timed_process(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"report failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


VARIANTS = {"both expiry indexes": (), "without items_by_expiry": ("items_by_expiry",),
            "without either": ("orders_by_expiry", "items_by_expiry")}


def index_cost(orders: int = 100_000, runs: int = 3) -> None:
    """Ingest ``orders`` into fresh ledgers with and without m008's expiry indexes,
    alternating; the rate and the CPU time per order of each."""
    built_at = time.time()
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    fw = find_adapter("fotoware")
    pages = list(fotoware_orders(orders, 1, built_at))
    for _ in range(runs):
        for name, dropped in VARIANTS.items():
            with tempfile.TemporaryDirectory() as folder:
                ledger = Ledger(Path(folder) / "l.db")
                for index in dropped:
                    ledger.db.execute(f"DROP INDEX {index}")
                started, cpu_started = time.perf_counter(), time.process_time()
                for page in pages:
                    map_and_apply(ledger, fw, "fw", "orders", page, None, built_at)
                rates[name].append(orders / (time.perf_counter() - started))
                cpu[name].append((time.process_time() - cpu_started) / orders * 1e6)
                ledger.close()
    for name in VARIANTS:
        print(f"ingest, {name}: {statistics.median(rates[name]):,.0f} orders/s"
              f" (runs: {', '.join(f'{v:,.0f}' for v in rates[name])}),"
              f" CPU {statistics.median(cpu[name]):.1f} µs/order"
              f" (runs: {', '.join(f'{v:.1f}' for v in cpu[name])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--orders", type=int, default=1_000_000,
                        help="Fotoware-shaped orders in the ledger (default: %(default)s)")
    parser.add_argument("--dir", default="var/bench-report", help="where the ledger is kept"
                        " and reused (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3,
                        help="timed runs of each command (default: %(default)s)")
    parser.add_argument("--index-cost", action="store_true",
                        help="time ingest with and without m008's expiry indexes instead")
    args = parser.parse_args()
    if args.index_cost:
        index_cost()
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    ledger_path = folder / f"ledger-{args.orders}.db"
    if not ledger_path.exists():
        seconds = build(ledger_path, args.orders, time.time() - 2 * DAY)
        print(f"built {ledger_path} in {seconds:.0f} s")
    config = folder / "ordersync.toml"
    config.write_text(CONFIG.format(ledger=ledger_path.resolve()), encoding="utf-8")
    env = {**os.environ, "BENCH_UNUSED": "unused"}
    command = [sys.executable, "-m", "ordersync", "--config", str(config), "report"]
    size = ledger_path.stat().st_size / 1e9
    print(f"{args.orders:,} orders (+{args.orders // 20:,} Pwinty), ledger {size:.1f} GB")
    for label, extra in (("json", ["--format", "json"]), ("table", [])):
        times = [timed_process(command + extra, env) for _ in range(args.runs)]
        print(f"ordersync report ({label}): median {statistics.median(times):.2f} s"
              f" (runs: {', '.join(f'{t:.2f}' for t in times)})")
    ledger = Ledger(ledger_path)
    specs = {"fw": find_adapter("fotoware"), "prints": find_adapter("pwinty")}
    times, counts = [], None
    for _ in range(args.runs):
        started = time.perf_counter()
        counts = refresh(ledger, specs, time.time(), ReportSettings())
        times.append(time.perf_counter() - started)
    ledger.close()
    assert counts is not None
    print(f"refresh (in-process): median {statistics.median(times):.2f} s, "
          f"{len(counts.persisting) + len(counts.new):,} open exceptions"
          f" (runs: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"exceptions found: {orjson.dumps(exception_counts(ledger_path)).decode()}")


def exception_counts(path: Path) -> dict:
    ledger = Ledger(path)
    try:
        counts: dict[str, int] = {}
        for e in ledger.exceptions():
            counts[e.kind] = counts.get(e.kind, 0) + 1
        return counts
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
