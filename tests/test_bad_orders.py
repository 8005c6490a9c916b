"""One bad order never stops anything: the real ``sync --once`` and daemon against simulators
serving planted orders (beyond 64 bits, unreadable, not UTF-8, over the size limits).

Each bad order must be kept flagged with its reason and raw form, visible in ``orders list``
and ``orders show``, the page's other orders stored, the cursor where it belongs, and the
flag must clear itself once the vendor serves the order readably again.
"""

from __future__ import annotations

import asyncio
import signal
import time

import orjson
import pytest

from ordersync_adapters.pwinty.simulator import PwintySimulator
from tests.cli_support import (
    KEY_ENV,
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    fotoware_sim,
    fotoware_toml,
    json_data,
    pwinty_toml,
    start_cli,
    wait_for_log_event,
)
from tests.outbox_support import open_ledger, read_orders

__all__ = ["fotoware_sim"]

V = "prints"
LIMITS = "max_items = 20\nmax_string_chars = 2000\nmax_order_bytes = 8000\n"


def flagged_listing(result) -> dict[str, str]:
    assert result.returncode == 0, result
    return {o["id"]: o["problem"] for o in json_data(result)}


@pytest.fixture
async def prints(tmp_path):
    sim = PwintySimulator(orders=30, seed=3, clock=time.time)
    base = await sim.start()
    config = tmp_path / "ordersync.toml"
    config.write_text(pwinty_toml(base + "/v2.2", tmp_path / "ledger.db", extra=LIMITS),
                      encoding="utf-8")

    async def cli(*args: str):
        return await arun_cli("--config", str(config), *args, env={KEY_ENV: "sim-api-key"},
                              cwd=tmp_path, timeout=30)

    try:
        yield sim, cli, tmp_path / "ledger.db"
    finally:
        await sim.stop()


def plant_bad_orders(sim: PwintySimulator) -> dict[str, str]:
    """Plant one order of each kind among old (Complete/Cancelled) orders; id -> what."""
    ids = sim.order_ids()[-8:]          # the oldest: final orders an idle poll never re-reads
    bad: dict[str, str] = {}

    def plant(oid: str, what: str, body: bytes) -> None:
        sim.plant(oid, body)
        bad[oid] = what

    order = sim.get_order(ids[0])
    order["price"] = 2**64 - 1                                    # u64: SQLite cannot hold it
    plant(ids[0], "does not fit in 64 bits", orjson.dumps(order))
    text = orjson.dumps(sim.get_order(ids[1])).replace(b'"photos":[',
                                                       b'"price":1e30,"photos":[', 1)
    plant(ids[1], "does not fit in 64 bits", text)
    order = sim.get_order(ids[2])
    recipient = order["recipientName"].encode()
    plant(ids[2], "not UTF-8",
          orjson.dumps(order).replace(recipient, recipient + b"\xff\xfe", 1))
    order = sim.get_order(ids[3])
    order["photos"] = [order["photos"][0]] * 25 if order["photos"] else [{"id": 1}] * 25
    plant(ids[3], "max_items = 20", orjson.dumps(order))
    order = sim.get_order(ids[4])
    order["recipientName"] = "x" * 3000                               # raw < 8000 bytes
    plant(ids[4], "max_string_chars = 2000", orjson.dumps(order))
    order = sim.get_order(ids[5])
    order["address2"] = "y" * 50_000                                 # raw > 8000 bytes
    plant(ids[5], "raw kept truncated to 8000 of", orjson.dumps(order))
    return bad


async def test_bad_orders_are_kept_flagged_and_clear_when_fixed(prints):
    sim, cli, ledger_path = prints
    bad = plant_bad_orders(sim)

    synced = await cli("sync", "--once", "--json")
    assert synced.returncode == 0, synced
    assert "Traceback" not in synced.stderr
    [result] = json_data(synced)
    assert (result["new"], result["flagged"], result["errors"]) == (30, len(bad), [])

    listing = await cli("orders", "list", "--json")
    assert [o["id"] for o in json_data(listing)] == sim.order_ids()  # none missing
    flagged = flagged_listing(await cli("orders", "list", "--flagged", "--json"))
    assert set(flagged) == set(bad)
    for oid, what in bad.items():
        assert what in flagged[oid], (oid, flagged[oid])
    with open_ledger(ledger_path) as ledger:
        assert ledger.cursor(V, "orders") == {"max_id": int(sim.order_ids()[0])}
    table = await cli("orders", "list")
    marked = {line.split()[0].split(":")[1] for line in table.stdout.splitlines()
              if len(line.split()) > 1 and line.split()[1].endswith("!")}
    assert marked == set(bad), table

    shown = await cli("orders", "show", f"{V}:{list(bad)[2]}")
    assert shown.returncode == 0, shown
    assert "FLAGGED: bytes that are not UTF-8" in shown.stdout, shown
    truncated = read_orders(ledger_path, V, [list(bad)[5]])[list(bad)[5]]
    assert truncated["raw"]["ordersync_truncated"]["kept"] == 8000
    assert truncated["state"] == "unknown"
    big = read_orders(ledger_path, V, [list(bad)[0]])[list(bad)[0]]
    assert big["raw"]["price"] == 2**64 - 1 and big["problem"].startswith("unreadable:")
    assert [e["kind"] for e in big["events"]] == ["appeared"]
    refused = await cli("cancel", f"{V}:{list(bad)[0]}")
    assert refused.returncode == 2, refused
    assert refused.error_lines == [f"ordersync: error: order {V}:{list(bad)[0]} could not be"
                                   f" read ({big['problem']}): nothing can be done to it until"
                                   " it can"], refused

    for oid in bad:
        sim.plant(oid, None)                                  # the vendor fixes its orders
    again = await cli("sync", "--once", "--json")
    assert again.returncode == 0, again
    assert flagged_listing(await cli("orders", "list", "--flagged", "--json")) == {}
    fixed = read_orders(ledger_path, V, list(bad))
    for oid, order in fixed.items():
        vendor = sim.get_order(oid)
        assert (order["problem"], order["vendor_state"]) == (None, vendor["status"]), oid
        assert order["events"][-1]["kind"] == "cleared", order["events"]
        assert len(order["items"]) == len(vendor["photos"])


async def test_orders_without_a_usable_id_are_kept_under_a_digest(prints):
    sim, cli, ledger_path = prints
    order = sim.get_order(sim.order_ids()[3])
    del order["id"]
    sim.plant(sim.order_ids()[3], orjson.dumps(order))
    # an id with a lone surrogate: JSON allows it; read as U+FFFD, it is no id the vendor knows
    order = sim.get_order(sim.order_ids()[4])
    sim.plant(sim.order_ids()[4], orjson.dumps(order).replace(
        b'"id":%s' % sim.order_ids()[4].encode(), b'"id":"\\ud800"', 1))
    synced = await cli("sync", "--once")
    assert synced.returncode == 0, synced
    assert "2 flagged" in synced.stdout, synced
    flagged = flagged_listing(await cli("orders", "list", "--flagged", "--json"))
    assert all(oid.startswith("unidentified-") for oid in flagged), flagged
    assert sorted(p.split(":")[0] for p in flagged.values()) == [
        "bytes that are not UTF-8 (replaced with U+FFFD)", "unreadable"]
    listing = json_data(await cli("orders", "list", "--json"))
    assert len(listing) == 30
    for oid in flagged:
        shown = await cli("orders", "show", f"{V}:{oid}", "--json")
        assert shown.returncode == 0, shown
    with open_ledger(ledger_path) as ledger:
        assert ledger.cursor(V, "orders") == {"max_id": int(sim.order_ids()[0])}


async def test_the_daemon_keeps_running_past_a_bad_order(fotoware_sim, tmp_path):
    sim = fotoware_sim
    victim = sim.order_ids()[5]
    order = sim.get_order(victim)
    order["orderItems"] = order["orderItems"] * 30 or [{}] * 30
    sim.plant(victim, orjson.dumps(order))
    config = tmp_path / "ordersync.toml"
    config.write_text(fotoware_toml(sim.base_url, tmp_path / "ledger.db",
                                    extra=LIMITS + "poll_interval_s = 0.2\n"), encoding="utf-8")
    env = {SECRET_ENV: SIM_SECRET}
    proc = await start_cli("--config", str(config), "--log-format", "json", "run", env=env,
                           cwd=tmp_path)
    seen: list[str] = []
    try:
        event = await wait_for_log_event(proc, "order_flagged", seen)
        assert event["order"] == victim and "max_items = 20" in event["problem"]
        await wait_for_log_event(proc, "synced", seen)
        def reads() -> int:
            return len([r for r in sim.requests if r.path.endswith(f"/{victim}")])

        async def two_more_reads(start: int) -> None:     # two more polls read it again
            while reads() < start + 2:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(two_more_reads(reads()), 10)
        sim.plant(victim, None)
        # counts are unchanged, yet the flagged order is read again on the next poll
        cleared = await wait_for_log_event(proc, "order_cleared", seen)
        assert cleared["order"] == victim
        event = await wait_for_log_event(proc, "synced", seen)
        assert event["changed"] == 1, event
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    assert proc.returncode == 0, "".join(seen)
    with open_ledger(tmp_path / "ledger.db") as ledger:
        assert len(ledger.orders(instance="fotoware-main")) == len(sim.order_ids())
        assert ledger.orders(flagged=True) == []
    assert not any("Traceback" in line for line in seen)
    assert sum('"order_flagged"' in line for line in seen) == 1      # logged once, not per poll


async def test_json_only_python_can_read_is_kept_flagged_not_a_crash(prints):
    """A lone surrogate escape and a 30-digit number are JSON that orjson refuses: the page
    is read leniently and only those orders are flagged, even drafts whose readiness is read."""
    sim, cli, _ = prints
    drafts = [o for o in sim.order_ids() if sim.get_order(o)["status"] == "NotYetSubmitted"]
    surrogate, huge = drafts[0], drafts[1]
    order = orjson.dumps(sim.get_order(surrogate))
    sim.plant(surrogate, order.replace(b'"recipientName":"', b'"recipientName":"\\ud800', 1))
    order = orjson.dumps(sim.get_order(huge))
    sim.plant(huge, order.replace(b'"photos":[', b'"price":' + b"9" * 30 + b',"photos":[', 1))

    synced = await cli("sync", "--once", "--json")
    assert synced.returncode == 0, synced
    assert "Traceback" not in synced.stderr
    listing = await cli("orders", "list", "--json")
    assert sorted(o["id"] for o in json_data(listing)) == sorted(sim.order_ids())
    flagged = flagged_listing(await cli("orders", "list", "--flagged", "--json"))
    assert set(flagged) == {surrogate, huge}, flagged
    assert "not UTF-8" in flagged[surrogate] and "64 bits" in flagged[huge], flagged
