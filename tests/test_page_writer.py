"""A big poll's pages written by the page writer process (pages.PageSink): the very ledger a
poll writes in process, nothing lost or doubled when the writer dies in the middle, and no
writer left behind by a ``sync`` stopped or killed with -9.

Each backfill here reads its history pages slowly (a delay on each list page) so that the
writer, started at the poll's first page (``page_writer_after_orders = 0``), is ready while
most pages are still to come.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest
from structlog.testing import capture_logs

from ordersync.daemon import Service
from ordersync.ledger import Ledger
from tests.conftest import SECRET_ENV, fotoware_config
from tests.core.test_pagewriter import alive
from tests.test_crash_sync import write_config

ORDERS, PAGE = 300, 10


async def slow_history(fotoware):
    sim = await fotoware(orders=ORDERS, page_size=PAGE, clock=time.time)
    sim.faults.add("delay", delay_s=0.03, times=10_000, path_prefix="/fotoweb/orders/?")
    return sim


async def backfill(config, progress=None):
    async with Service(config, handle_signals=False) as service:
        [result] = await service.run_once(progress=progress)
    assert not result.errors, result
    return result


def contents(path) -> tuple:
    """Every order with its items and data, every event, and the cursor; times left out
    (each ledger was written at its own time)."""
    ledger = Ledger(path)
    try:
        orders = [(o.vendor_id, o.state, o.vendor_state, o.reference, o.created, o.modified,
                   o.expires, o.customer, o.url, o.data, o.items, o.problem)
                  for o in ledger.orders(instance="fw")]
        events = ledger.db.execute(
            "SELECT vendor_id, kind, from_state, to_state, detail FROM events ORDER BY id"
        ).fetchall()
        raw = ledger.db.execute("SELECT vendor_id, raw, digest FROM orders ORDER BY vendor_id"
                                ).fetchall()
        cursor = ledger.cursor("fw", "orders")
        cursor.pop("full_scan_at", None)
        return orders, events, raw, cursor
    finally:
        ledger.close()


def logged(logs: list[dict], event: str) -> list[dict]:
    return [entry for entry in logs if entry["event"] == event]


async def test_a_backfill_through_the_page_writer_stores_what_one_in_process_does(
        fotoware, tmp_path):
    sim = await slow_history(fotoware)
    elsewhere = tmp_path / "writer.db"
    with capture_logs() as logs:
        await backfill(fotoware_config(sim, elsewhere, page_writer_after_orders=0))
    [ended] = logged(logs, "page_writer_ended")
    assert ended["pages"] >= ORDERS // PAGE // 2, ended     # most pages, not just a few
    here = tmp_path / "here.db"
    with capture_logs() as logs:
        await backfill(fotoware_config(sim, here))      # 300 orders: under the default 1000
    assert logged(logs, "page_writer_started") == []
    stored = contents(elsewhere)
    assert stored == contents(here)
    assert len(stored[0]) == ORDERS and len(stored[1]) == ORDERS


async def test_a_page_writer_killed_mid_backfill_loses_and_doubles_nothing(fotoware, tmp_path):
    sim = await slow_history(fotoware)
    path = tmp_path / "ledger.db"
    killed: list[int] = []

    def kill_the_writer(result) -> None:
        started = logged(logs, "page_writer_started")
        if started and not killed and result.pages >= 12:
            killed.append(started[0]["pid"])
            os.kill(started[0]["pid"], signal.SIGKILL)

    with capture_logs() as logs:
        result = await backfill(fotoware_config(sim, path, page_writer_after_orders=0),
                                kill_the_writer)
    assert killed and logged(logs, "page_writer_gone"), logs
    assert result.pages == ORDERS // PAGE + 1               # and the counts' page
    ledger = Ledger(path)
    try:
        totals = ledger.totals()
        assert (totals.orders, totals.appeared, totals.events) == (ORDERS, ORDERS, ORDERS)
        assert sorted(o.vendor_id for o in ledger.orders()) == sorted(sim.order_ids())
        assert "resume" not in ledger.cursor("fw", "orders")
    finally:
        ledger.close()


def writer_of(pid: int) -> int | None:
    """The page writer process ``pid`` started, if there is one."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if ppid == pid and b"ordersync.ledger.pagewriter" in command:
            return int(entry)
    return None


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGKILL, -signal.SIGKILL),
                                             (signal.SIGTERM, 130)])
async def test_sync_stopped_or_killed_takes_its_page_writer_along(fotoware, tmp_path, stop,
                                                                   code):
    """kill -9 (Linux kills the writer with it) or SIGTERM (sync stops, exit 130, and ends
    the writer it no longer needs): no writer is left, and the next sync completes."""
    sim = await slow_history(fotoware)
    ledger_path = tmp_path / "ledger.db"
    config = tmp_path / "ordersync.toml"
    write_config(config, sim, ledger_path)
    with config.open("a", encoding="utf-8") as toml:
        toml.write("page_writer_after_orders = 0\n")       # in [vendors.fw], the last table
    env = {**os.environ, SECRET_ENV: sim.client_secret}

    async def sync_once():
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ordersync", "--config", str(config), "sync", "--once",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)

    proc = await sync_once()
    deadline = time.monotonic() + 30
    while (writer := writer_of(proc.pid)) is None:
        assert time.monotonic() < deadline and proc.returncode is None, "no page writer"
        await asyncio.sleep(0.01)
    listed = sum(1 for r in sim.requests if r.query.startswith("p="))
    while sum(1 for r in sim.requests if r.query.startswith("p=")) < listed + 8:
        await asyncio.sleep(0.01)                       # the writer has pages by now
    proc.send_signal(stop)
    assert await asyncio.wait_for(proc.wait(), 30) == code
    while alive(writer):
        assert time.monotonic() < deadline + 10, "the page writer outlived sync"
        await asyncio.sleep(0.01)

    again = await sync_once()
    assert await again.wait() == 0
    ledger = Ledger(ledger_path)
    try:
        totals = ledger.totals()
        assert (totals.orders, totals.appeared, totals.events) == (ORDERS, ORDERS, ORDERS)
        assert "resume" not in ledger.cursor("fw", "orders")
    finally:
        ledger.close()
