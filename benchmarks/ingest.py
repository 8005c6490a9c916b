"""Cold ingest of simulated Fotoware orders into a fresh ledger, and the idle cycle after it.

    .venv/bin/python benchmarks/ingest.py --orders 100000            # 3 runs, median
    .venv/bin/python benchmarks/ingest.py --orders 100000 --scaling  # also 25k and 50k
    .venv/bin/python benchmarks/ingest.py --json                     # machine-readable

Not part of the test suite. For each size it starts the Fotoware simulator in a separate
process (``python -m ordersync simulate fotoware``), warms it with one raw paging pass (the
simulator generates each order the first time it is read; that is not our cost), then for
each run starts a fresh Python process that:

1. builds a Service over a fresh ledger in a temporary directory (rate limit out of the way);
2. times ``service.run_once()``: the cold sync, a full scan of every order into the ledger;
   a monitor task sleeps 5 ms in a loop meanwhile and records how late it wakes up (the
   longest event-loop stall);
3. runs ``run_once()`` five more times: the idle cycle, with every order in the ledger and
   nothing changed on the vendor side; its requests (PollResult.requests, the most of the
   five), milliseconds and CPU milliseconds of the process (their medians);
4. reads peak RSS (``ru_maxrss``) of that process and of its page writer (the child process
   that writes a big poll's pages, whose CPU is counted apart), runs one more idle cycle with a new
   Service (what ``sync --once`` in a new process costs: it needs a token and the API
   descriptor first), and checks the ledger: one row and one ``appeared`` event per order,
   raw JSON kept, items, the final cursor, nothing written by any idle cycle.

Before each ordersync run, the minimal loader (``loader_run``, about 60 lines: aiohttp,
orjson and sqlite3) runs in its own fresh process against the same simulator: a token, every
page of the same list at the same page size, one transaction per page holding one row per
order with its raw JSON and one row per item. Runs alternate (loader, ordersync, loader, ...)
and each ordersync run is divided by the loader run just before it: on a shared machine the
ratio of a pair means more than either figure.

A fresh process per run keeps ``ru_maxrss`` (a high-water mark for the process's lifetime)
honest per run and per size. No tracemalloc while timing: it slows Python down and its own
bookkeeping would count. ``--tracemalloc`` adds one extra, untimed run per size that reports
the Python heap's peak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PAGE_SIZE = 250
SECRET_ENV = "BENCH_FOTOWARE_SECRET"
CLIENT_ID, CLIENT_SECRET = "ordersync", "sim-secret"      # the simulator's defaults
SCALING_SIZES = (25_000, 50_000, 100_000)
TICKS = os.sysconf("SC_CLK_TCK")
IDLE_CYCLES = 5


# --------------------------------------------------------------------------- the simulator

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(orders: int, page_size: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ordersync", "--log-level", "error", "simulate", "fotoware",
         "--orders", str(orders), "--page-size", str(page_size), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, line.split("listening on ", 1)[1].split()[0]


def stop_simulator(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def history_pages(base_url: str):
    """Every page of the history list, decoded: a token, then ``next`` until there is none."""
    import aiohttp
    import orjson

    async with aiohttp.ClientSession(base_url) as session:
        async with session.post("/fotoweb/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }) as resp:
            token = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}",
                   "Accept": "application/vnd.fotoware.orderlist+json"}
        url = "/fotoweb/orders/"
        while url:
            async with session.get(url, headers=headers) as resp:
                body = orjson.loads(await resp.read())
            yield body
            url = (body.get("paging") or {}).get("next") or ""


async def warm(base_url: str) -> tuple[int, float]:
    """One raw paging pass over history so that the simulator has generated every order."""
    started = time.perf_counter()
    seen = 0
    async for body in history_pages(base_url):
        seen += len(body["data"])
    return seen, time.perf_counter() - started


# --------------------------------------------------------------------------- one run (child)

def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def written_mb() -> float:
    """Bytes this process has written so far (``wchar``: to files, the WAL, temp files)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("wchar:")).split()[1]) / 2**20


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]                     # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def process_jiffies(pid: int) -> int:
    """utime + stime of a process in clock ticks (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def wait_until_idle(max_wait_s: float, busy_cores: float = 0.3) -> float:
    """Wait (at most ``max_wait_s``) for a second in which the machine is nearly idle."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait_s:
        busy0, total0 = busy_jiffies()
        time.sleep(1.0)
        busy1, total1 = busy_jiffies()
        if (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1) <= busy_cores:
            break
    return time.monotonic() - started


async def stall_monitor(stalls: list[float], stop: asyncio.Event, period: float = 0.005):
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(period)
        stalls.append(loop.time() - before - period)


async def one_run(base_url: str, orders: int, use_tracemalloc: bool, sim_pid: int = 0) -> dict:
    import tracemalloc

    import orjson

    from ordersync import logs
    from ordersync.config import parse_config
    from ordersync.daemon import Service
    from ordersync.ledger import open_ledger

    logs.configure(level="error", fmt="json")
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        ledger_path = Path(tmp) / "ledger.db"
        config = parse_config(
            {"ledger": {"path": str(ledger_path)}, "vendors": {"fw": {
                "adapter": "fotoware", "base_url": base_url, "client_id": CLIENT_ID,
                "client_secret_env": SECRET_ENV,
                "rate_limit": {"requests": 1_000_000, "per_s": 1},
            }}},
            source="benchmark", environ={SECRET_ENV: CLIENT_SECRET}, base_dir=Path(tmp),
        )
        service = Service(config, handle_signals=False)
        await service.open()
        rss_before = rss_mb()
        if use_tracemalloc:
            tracemalloc.start()
        stalls: list[float] = []
        stop = asyncio.Event()
        monitor = asyncio.create_task(stall_monitor(stalls, stop))
        await asyncio.sleep(0.05)
        try:
            cpu = resource.getrusage(resource.RUSAGE_SELF)
            writer_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            machine0, sim0 = busy_jiffies()[0], process_jiffies(sim_pid)
            written, started = written_mb(), time.perf_counter()
            [cold] = await service.run_once()
            cold_s = time.perf_counter() - started
            written = written_mb() - written
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            writer_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            machine1, sim1 = busy_jiffies()[0], process_jiffies(sim_pid)
            stop.set()
            await monitor
            heap_peak = tracemalloc.get_traced_memory()[1] / 2**20 if use_tracemalloc else None
            if use_tracemalloc:
                tracemalloc.stop()
            rss_after = rss_mb()
            idles = []
            idle_cpu = []
            for _ in range(IDLE_CYCLES):
                started, cpu_idle = time.perf_counter(), time.process_time()
                [idle] = await service.run_once()
                idles.append((time.perf_counter() - started, idle))
                idle_cpu.append(time.process_time() - cpu_idle)
        finally:
            await service.close()
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # The same idle cycle from a new process's point of view (``sync --once``): a new
        # Service has no token and no API descriptor yet.
        async with Service(config, handle_signals=False) as fresh:
            started = time.perf_counter()
            [fresh_idle] = await fresh.run_once()
            fresh_s = time.perf_counter() - started
        idles_fresh = [(fresh_s, fresh_idle)]
        ledger = open_ledger(ledger_path)
        try:
            totals = ledger.totals()
            cursor = orjson.dumps(ledger.cursor("fw", "orders")).decode()
        finally:
            ledger.close()
        stored, appeared, events = totals.orders, totals.appeared, totals.events
        items, no_raw = totals.items, totals.without_raw
        db_mb = sum(p.stat().st_size for p in Path(tmp).glob("ledger.db*")) / 2**20
    problems = []
    if cold.errors or any(idle.errors for _, idle in idles):
        problems.append(f"errors: {cold.errors + [e for _, i in idles for e in i.errors]}")
    if stored != orders or appeared != orders or events != orders or no_raw:
        problems.append(f"ledger holds {stored} orders, {appeared} appeared events"
                        f" ({events} events), {no_raw} without raw JSON; expected {orders}")
    if cold.new != orders or cold.flagged:
        problems.append(f"cold sync: {cold.new} new, {cold.flagged} flagged")
    for _, idle in idles + idles_fresh:
        if idle.new or idle.changed or idle.pages:
            problems.append(f"idle cycle wrote: {idle.as_dict()}")
    if '"counts"' not in cursor or '"resume"' in cursor:
        problems.append(f"cursor not final: {cursor}")
    late = sorted(stalls)
    return {
        "orders": orders,
        "cold_s": cold_s,
        "orders_per_s": orders / cold_s,
        "cpu_us_per_order": (cpu_after.ru_utime - cpu.ru_utime + cpu_after.ru_stime
                             - cpu.ru_stime) / orders * 1e6,
        "sys_us_per_order": (cpu_after.ru_stime - cpu.ru_stime) / orders * 1e6,
        "writer_cpu_us_per_order": (writer_after.ru_utime - writer_cpu.ru_utime
                                    + writer_after.ru_stime - writer_cpu.ru_stime) / orders * 1e6,
        "writer_peak_rss_mb": writer_after.ru_maxrss / 1024,
        "simulator_cores": (sim1 - sim0) / TICKS / cold_s,
        "other_cores": max(0.0, ((machine1 - machine0 - sim1 + sim0) / TICKS
                                 - (cpu_after.ru_utime - cpu.ru_utime
                                    + cpu_after.ru_stime - cpu.ru_stime)
                                 - (writer_after.ru_utime - writer_cpu.ru_utime
                                    + writer_after.ru_stime - writer_cpu.ru_stime)) / cold_s),
        "written_mb": written,
        "cold_requests": cold.requests,
        "cold_pages": cold.pages,
        "items": items,
        "peak_rss_mb": peak_rss,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "heap_peak_mb": heap_peak,
        "max_stall_ms": late[-1] * 1000 if late else 0.0,
        "p99_stall_ms": late[int(len(late) * 0.99)] * 1000 if late else 0.0,
        "stalls_over_50ms": sum(1 for s in late if s > 0.05),
        "idle_requests": max(idle.requests for _, idle in idles),
        "idle_ms": statistics.median(idle_s for idle_s, _ in idles) * 1000,
        "idle_cpu_ms": statistics.median(idle_cpu) * 1000,
        "fresh_idle_requests": fresh_idle.requests,
        "fresh_idle_ms": fresh_s * 1000,
        "ledger_mb": db_mb,
        "problems": problems,
    }


# --------------------------------------------------------------------------- the minimal loader

async def loader_run(base_url: str, orders: int, sim_pid: int = 0) -> dict:
    """The floor: the same network work as ordersync's cold sync, stored as simply as can be.

    A token, then every page of the history list (the simulator's page size), each page in one
    transaction: one row per order with its raw JSON, one row per item. WAL and synchronous =
    NORMAL like the ledger; no mapping, no events, no cursor, no checks.
    """
    import sqlite3

    import orjson

    dumps = orjson.dumps
    with tempfile.TemporaryDirectory(prefix="ordersync-loader-") as tmp:
        db = sqlite3.connect(Path(tmp) / "loader.db", isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, state TEXT, raw TEXT NOT NULL)")
        db.execute("CREATE TABLE items (order_id TEXT, position INTEGER, href TEXT,"
                   " PRIMARY KEY (order_id, position))")
        cpu, stored = resource.getrusage(resource.RUSAGE_SELF), 0
        machine0, sim0 = busy_jiffies()[0], process_jiffies(sim_pid)
        written, started = written_mb(), time.perf_counter()
        async for body in history_pages(base_url):
            rows, item_rows = [], []
            for order in body["data"]:
                oid = order["href"].rstrip("/").rsplit("/", 1)[-1]
                rows.append((oid, order.get("state"), dumps(order).decode()))
                item_rows += [(oid, n, (i.get("rendition") or {}).get("href"))
                              for n, i in enumerate(order.get("orderItems") or ())]
            db.execute("BEGIN")
            db.executemany("INSERT INTO orders VALUES (?, ?, ?)", rows)
            db.executemany("INSERT INTO items VALUES (?, ?, ?)", item_rows)
            db.execute("COMMIT")
            stored += len(rows)
        cold_s = time.perf_counter() - started
        written = written_mb() - written
        after = resource.getrusage(resource.RUSAGE_SELF)
        machine1, sim1 = busy_jiffies()[0], process_jiffies(sim_pid)
        db.close()
    used = after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime
    return {
        "orders": orders, "cold_s": cold_s, "orders_per_s": orders / cold_s,
        "cpu_us_per_order": used / orders * 1e6,
        "other_cores": max(0.0, ((machine1 - machine0 - sim1 + sim0) / TICKS - used) / cold_s),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "written_mb": written,
        "problems": [] if stored == orders else [f"loader stored {stored} of {orders}"],
    }


def child_main(args) -> None:
    import orjson

    if args.loader:
        result = asyncio.run(loader_run(args.child, args.orders, args.sim_pid))
    else:
        result = asyncio.run(one_run(args.child, args.orders, args.tracemalloc, args.sim_pid))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


def run_child(base_url: str, orders: int, sim_pid: int, tracemalloc: bool = False,
              loader: bool = False) -> dict:
    """One run in a fresh process; ``process_s`` is that whole process, imports included."""
    import orjson

    cmd = [sys.executable, __file__, "--child", base_url, "--orders", str(orders),
           "--sim-pid", str(sim_pid)]
    if tracemalloc:
        cmd.append("--tracemalloc")
    if loader:
        cmd.append("--loader")
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    result = orjson.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------- orchestration

MEDIAN_KEYS = ("cold_s", "orders_per_s", "cpu_us_per_order", "sys_us_per_order",
               "simulator_cores", "other_cores", "peak_rss_mb", "rss_before_mb", "rss_after_mb",
               "max_stall_ms", "p99_stall_ms", "idle_requests", "idle_ms", "idle_cpu_ms",
               "fresh_idle_requests",
               "fresh_idle_ms", "ledger_mb", "process_s", "written_mb",
               "writer_cpu_us_per_order", "writer_peak_rss_mb")


def summarise(runs: list[dict], loaders: list[dict]) -> dict:
    summary = {key: statistics.median(r[key] for r in runs) for key in MEDIAN_KEYS}
    # Each ordersync run is paired with the loader run just before it: the ratio of each pair
    # (the same minute, the same load), and its median.
    ratios = [r["orders_per_s"] / f["orders_per_s"] for r, f in zip(runs, loaders, strict=True)]
    summary.update(
        loader_orders_per_s=statistics.median(f["orders_per_s"] for f in loaders),
        loader_orders_per_s_all=[round(f["orders_per_s"]) for f in loaders],
        loader_cpu_us_per_order=statistics.median(f["cpu_us_per_order"] for f in loaders),
        loader_process_s=statistics.median(f["process_s"] for f in loaders),
        loader_written_mb=statistics.median(f["written_mb"] for f in loaders),
        ratio=statistics.median(ratios), ratios=[round(x, 2) for x in ratios],
        process_ratio=statistics.median(
            f["process_s"] / r["process_s"] for r, f in zip(runs, loaders, strict=True)),
    )
    summary.update(
        orders=runs[0]["orders"], runs=len(runs), cold_requests=runs[0]["cold_requests"],
        items=runs[0]["items"],
        orders_per_s_all=[round(r["orders_per_s"]) for r in runs],
        max_stall_ms_all=[round(r["max_stall_ms"]) for r in runs],
        worst_stall_ms=max(r["max_stall_ms"] for r in runs),
        peak_rss_mb_max=max(r["peak_rss_mb"] for r in runs),
        idle_requests_max=max(r["idle_requests"] for r in runs),
        problems=sorted({p for r in runs + loaders for p in r["problems"]}),
    )
    return summary


def machine() -> dict:
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    import sqlite3

    return {"cpus": os.cpu_count(), "ram_gb": round(mem_kb / 2**20, 1),
            "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders (default 100000)")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE,
                        help=f"simulator list page size (default {DEFAULT_PAGE_SIZE})")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the median counts")
    parser.add_argument("--scaling", action="store_true",
                        help=f"also run {', '.join(map(str, SCALING_SIZES))} orders")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="one extra untimed run per size reporting the Python heap peak")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                        help="before each run, wait up to S seconds for a nearly idle machine")
    parser.add_argument("--child", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--sim-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--loader", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    sizes = sorted({*SCALING_SIZES, args.orders}) if args.scaling else [args.orders]
    report = {"machine": machine(), "page_size": args.page_size, "sizes": []}
    for orders in sizes:
        proc, base_url = start_simulator(orders, args.page_size)
        try:
            warmed, warm_s = asyncio.run(warm(base_url))
            assert warmed == orders, (warmed, orders)
            if not args.json:
                print(f"{orders} orders: simulator warm in {warm_s:.1f} s;"
                      " runs (loader/ordersync orders/s):",
                      end="", flush=True)
            runs, loaders = [], []
            for _ in range(args.runs):      # alternating: loader, ordersync, loader, ...
                if args.wait_idle:
                    wait_until_idle(args.wait_idle)
                loaders.append(run_child(base_url, orders, proc.pid, loader=True))
                runs.append(run_child(base_url, orders, proc.pid))
                if not args.json:
                    print(f" {loaders[-1]['orders_per_s']:,.0f}/{runs[-1]['orders_per_s']:,.0f}",
                          end="", flush=True)
            summary = summarise(runs, loaders)
            if args.tracemalloc:
                untimed = run_child(base_url, orders, proc.pid, tracemalloc=True)
                summary["heap_peak_mb"] = untimed["heap_peak_mb"]
            if not args.json:
                print()
            report["sizes"].append(summary)
        finally:
            stop_simulator(proc)

    if args.json:
        import orjson

        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_table(report)
    if any(s["problems"] for s in report["sizes"]):
        sys.exit(1)


TARGETS = ("targets: ratio >= 0.7, peak RSS < 100 MB, stall <= 50 ms, idle <= 4 requests"
           " and <= 5 ms CPU")


def print_table(report: dict) -> None:
    m = report["machine"]
    print(f"\n{m['cpus']} CPUs, {m['ram_gb']} GB RAM, Python {m['python']}, SQLite {m['sqlite']};"
          f" simulator page size {report['page_size']}; medians of"
          f" {report['sizes'][0]['runs']} runs\n")
    header = ("orders", "loader orders/s", "orders/s", "ratio", "loader CPU us/order",
              "CPU us/order (writer)", "peak RSS MB (writer)", "max stall ms", "idle requests",
              "idle ms", "idle CPU ms", "other load")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for s in report["sizes"]:
        print("| " + " | ".join([
            f"{s['orders']:,}", f"{s['loader_orders_per_s']:,.0f}", f"{s['orders_per_s']:,.0f}",
            f"{s['ratio']:.2f}", f"{s['loader_cpu_us_per_order']:.0f}",
            f"{s['cpu_us_per_order']:.0f} ({s['writer_cpu_us_per_order']:.0f})",
            f"{s['peak_rss_mb']:.0f} ({s['writer_peak_rss_mb']:.0f})",
            f"{s['max_stall_ms']:.0f}", f"{s['idle_requests']:.0f}",
            f"{s['idle_ms']:.1f}", f"{s['idle_cpu_ms']:.1f}", f"{s['other_cores']:.2f} cores",
        ]) + " |")
    print(f"\n{TARGETS}; 'ratio' is the median of each run's orders/s over that of the"
          " minimal loader run just before it; 'other load' is the CPU other processes used"
          " during the cold sync")
    for s in report["sizes"]:
        extra = f"; Python heap peak {s['heap_peak_mb']:.1f} MB" if s.get("heap_peak_mb") else ""
        print(f"\n{s['orders']:,} orders, {s['cold_requests']} requests: runs"
              f" {s['orders_per_s_all']} orders/s (loader {s['loader_orders_per_s_all']},"
              f" ratios {s['ratios']}; whole processes: loader {s['loader_process_s']:.1f} s,"
              f" ordersync {s['process_s']:.1f} s, ratio {s['process_ratio']:.2f}),"
              f" max stalls {s['max_stall_ms_all']} ms;"
              f" RSS {s['rss_before_mb']:.0f} MB before the sync; idle cycle of a new"
              f" process (sync --once): {s['fresh_idle_requests']:.0f} requests,"
              f" {s['fresh_idle_ms']:.0f} ms; ledger file"
              f" {s['ledger_mb']:.0f} MB, {s['items']:,} items; written during the cold sync"
              f" {s['written_mb']:.0f} MB (loader {s['loader_written_mb']:.0f} MB){extra}")
        for problem in s["problems"]:
            print(f"  PROBLEM: {problem}")


if __name__ == "__main__":
    main()
