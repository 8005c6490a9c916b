"""``ordersync vendors list|pause|resume`` through the real command, with the daemon and
``sync --once`` against two Fotoware simulators: a paused instance's simulator receives no
request (no poll, no action pushed) until it is resumed, and the other goes on as before."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ordersync_adapters.fotoware.simulator import FotowareSimulator
from tests.cli_support import (  # noqa: F401  (fixtures)
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    fotoware_toml,
    json_data,
    one_error_line,
    start_cli,
    wait_for_log_event,
    write_config,
)
from tests.test_backup import until
from tests.test_cli import stop_daemon

ENV = {SECRET_ENV: SIM_SECRET}
A, B = "fw-a", "fw-b"


@pytest.fixture
async def two_sites(write_config, tmp_path  # noqa: F811
                    ) -> AsyncIterator[tuple[str, dict]]:
    """(config, {name: simulator}): two Fotoware instances polled every 0.1 s, synced once."""
    sims = {name: FotowareSimulator(orders=20, seed=seed, client_secret=SIM_SECRET)
            for seed, name in enumerate((A, B), start=1)}
    urls = {name: await sim.start() for name, sim in sims.items()}
    try:
        ledger = tmp_path / "ledger.db"
        extra = "poll_interval_s = 0.1\n"
        config = str(write_config(
            fotoware_toml(urls[A], ledger, name=A, extra=extra)
            + "\n" + fotoware_toml(urls[B], ledger, name=B, extra=extra).split("\n\n", 1)[1]))
        synced = await arun_cli("--config", config, "sync", "--once", env=ENV, cwd=tmp_path)
        assert synced.returncode == 0, synced
        yield config, sims
    finally:
        for sim in sims.values():
            await sim.stop()


def pending(sim: FotowareSimulator) -> list[str]:
    return sorted(o for o in sim.order_ids() if sim.get_order(o)["state"] == "pending")


async def cli(config: str, *args: str, cwd: Path):
    return await arun_cli("--config", config, *args, env=ENV, cwd=cwd)


async def test_a_paused_vendor_is_left_alone_by_the_daemon_until_resumed(two_sites, tmp_path):
    config, sims = two_sites
    daemon = await start_cli("--config", config, "run", env=ENV, cwd=tmp_path)
    seen: list[str] = []
    try:
        await wait_for_log_event(daemon, "started", seen)
        paused = await cli(config, "vendors", "pause", B, cwd=tmp_path)
        assert paused.returncode == 0, paused
        assert paused.stdout.startswith(f"{B}: paused: the daemon stops polling it"), paused
        event = await wait_for_log_event(daemon, "vendor_paused", seen)
        assert event["vendor"] == B

        async def cycles_of_a(n: int) -> None:   # the other vendor's polls mark the time
            target = len(sims[A].requests) + n
            await until(lambda: len(sims[A].requests) >= target, f"{n} polls of {A}")

        await cycles_of_a(3)   # a poll of B under way when the pause was read has ended
        quiet_from = len(sims[B].requests)
        order = pending(sims[B])[0]
        queued = await cli(config, "approve", f"{B}:{order}", cwd=tmp_path)
        assert queued.returncode == 0, queued
        other = pending(sims[A])[0]
        queued_a = await cli(config, "approve", f"{A}:{other}", cwd=tmp_path)
        assert queued_a.returncode == 0, queued_a
        await until(lambda: len(sims[A].effects) == 1, f"the approval of {A}")
        await cycles_of_a(20)   # many action checks (every 0.5 s) and polls of the daemon

        assert len(sims[B].requests) == quiet_from   # no poll, no push while paused
        assert sims[B].effects == []
        listed = json_data(await cli(config, "vendors", "list", "--json", cwd=tmp_path))
        assert [(v["vendor"], v["paused"]) for v in listed] == [(A, False), (B, True)]

        resumed = await cli(config, "vendors", "resume", B, "--json", cwd=tmp_path)
        assert json_data(resumed)["paused"] is False
        await until(lambda: [e.order_id for e in sims[B].effects] == [order],
                    f"the approval of {B} after the resume")
        await until(lambda: any(r.method == "GET" for r in sims[B].requests[quiet_from:]),
                    f"a poll of {B} after the resume")
    finally:
        code, err = await stop_daemon(daemon)
    assert code == 0, err
    events = [json.loads(line).get("event") for line in [*seen, *err.splitlines(True)]
              if line.startswith("{")]
    assert events.count("vendor_paused") == 1 and events.count("vendor_resumed") == 1, events


async def test_sync_once_skips_a_paused_vendor_and_vendors_list_shows_freshness_first(
        two_sites, tmp_path):
    config, sims = two_sites
    paused = json_data(await cli(config, "vendors", "pause", B, "--json", cwd=tmp_path))
    assert (paused["vendor"], paused["adapter"], paused["paused"]) == (B, "fotoware", True)
    before = len(sims[B].requests)

    synced = await cli(config, "sync", "--once", cwd=tmp_path)
    assert synced.returncode == 0, synced
    assert f"{B}: paused, not polled (`ordersync vendors resume {B}`)\n" in synced.stdout
    as_json = json_data(await cli(config, "sync", "--once", "--json", cwd=tmp_path))
    assert [(r["vendor"], r["paused"], r["requests"] > 0) for r in as_json] == [
        (A, False, True), (B, True, False)]
    assert len(sims[B].requests) == before

    listed = await cli(config, "vendors", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed
    header, row_a, row_b, count = listed.stdout.splitlines()
    assert header.split()[:3] == ["VENDOR", "FRESHNESS", "ADAPTER"]
    for row, name, is_paused in ((row_a, A, "no"), (row_b, B, "yes")):
        cells = row.split()   # the ages: seconds since the last success and the last poll
        assert cells[0] == name and cells[2] == "fotoware" and cells[4:] == ["0", is_paused]
        assert cells[1].endswith("s") and cells[3].endswith("s"), row
    assert count == "(2 vendors)"
    unknown = await cli(config, "vendors", "pause", "nope", cwd=tmp_path)
    one_error_line(unknown, 2, "no vendor instance 'nope'")
