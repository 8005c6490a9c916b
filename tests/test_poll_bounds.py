"""A poll always ends: a page limit, and vendors whose paging repeats itself.

Each case runs real services (or the real command) against a simulator with the fault
switched on, and checks why the poll stopped, the orders stored and the cursor: the next
poll must resume or move on, never walk the same endless list again.
"""

from __future__ import annotations

from ordersync.daemon import Service
from ordersync.ledger import Ledger
from tests.cli_support import KEY_ENV, arun_cli, json_data, pwinty_toml
from tests.conftest import fotoware_config, pwinty_config


def service(config, clock) -> Service:
    return Service(config, sleep=clock.sleep, clock=clock, handle_signals=False)


def stored(path) -> tuple[int, dict | None]:
    ledger = Ledger(path)
    try:
        stream = "orders"
        return len(ledger.orders()), ledger.cursor(ledger.orders()[0].instance, stream)
    finally:
        ledger.close()


async def test_a_page_limit_ends_the_poll_and_the_next_poll_resumes(fotoware, tmp_path, clock):
    sim = await fotoware(orders=40, page_size=5)            # 8 pages of history
    config = fotoware_config(sim, tmp_path / "ledger.db", max_pages_per_poll=3)
    polls = []
    for _ in range(6):
        async with service(config, clock) as svc:
            [result] = await svc.run_once()
        assert not result.errors, result
        polls.append((result.pages, result.stopped))
        if not result.stopped:
            break
        count, cursor = stored(tmp_path / "ledger.db")
        assert count == 5 * 3 * len(polls)                   # every page kept with its cursor
        assert "resume" in cursor, cursor
    assert [p for p, _ in polls] == [3, 3, 3]                # 8 history pages and the counts
    assert all("page limit reached (3 pages" in s for _, s in polls[:-1]), polls
    assert polls[-1][1] is None
    count, cursor = stored(tmp_path / "ledger.db")
    assert count == 40 and "resume" not in cursor and "counts" in cursor


async def test_fotoware_next_link_that_always_changes(fotoware, tmp_path, clock):
    sim = await fotoware(orders=40, page_size=15)
    sim.endless_paging = True                               # the last page links to itself
    config = fotoware_config(sim, tmp_path / "ledger.db")
    async with service(config, clock) as svc:
        [result] = await svc.run_once()
        assert not result.errors and result.new == 40, result
        assert "history list repeats itself" in result.stopped
        listed = sum(1 for r in sim.requests if "/orders" in r.path and "p=" in r.query)
        assert listed == 3                                  # pages 2 and 3, then its repeat
        _, cursor = stored(tmp_path / "ledger.db")
        assert "resume" not in cursor and "counts" in cursor
        [idle] = await svc.run_once()                       # counts unchanged: nothing walked
        assert (idle.pages, idle.stopped, idle.errors) == (0, None, [])


async def test_pwinty_list_that_ignores_offset(pwinty, tmp_path, clock):
    sim = await pwinty(orders=50)
    sim.ignore_offset = True
    config = pwinty_config(sim, tmp_path / "ledger.db", page_size=20)
    async with service(config, clock) as svc:
        [result] = await svc.run_once()
    assert not result.errors, result
    assert "repeats itself at offset 20" in result.stopped and result.new == 20
    count, cursor = stored(tmp_path / "ledger.db")
    assert (count, cursor) == (20, {"max_id": int(sim.order_ids()[0])})   # the scan ended
    sim.add_order("NotYetSubmitted")
    async with service(config, clock) as svc:
        [again] = await svc.run_once()
    assert not again.errors and again.new == 1, again
    _, cursor = stored(tmp_path / "ledger.db")
    assert cursor == {"max_id": int(sim.order_ids()[0])}


async def test_sync_once_says_why_a_poll_stopped(pwinty, tmp_path):
    sim = await pwinty(orders=30)
    sim.ignore_offset = True
    config = tmp_path / "ordersync.toml"
    config.write_text(pwinty_toml(sim.base_url, tmp_path / "ledger.db",
                                  extra="page_size = 10\n"), encoding="utf-8")
    text = await arun_cli("--config", str(config), "sync", "--once",
                          env={KEY_ENV: sim.api_key}, cwd=tmp_path)
    assert text.returncode == 0, text
    assert "stopped early: the order list repeats itself at offset 10" in text.stdout, text
    as_json = await arun_cli("--config", str(config), "sync", "--once", "--json",
                             env={KEY_ENV: sim.api_key}, cwd=tmp_path)
    assert as_json.returncode == 0, as_json
    [result] = json_data(as_json)
    assert result["stopped"] is None and result["errors"] == []   # known orders: one page
