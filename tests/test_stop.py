"""Stopping promptly whatever the vendors do: ``run``, ``sync --once`` and ``--wait``.

A vendor that never answers is a loopback server that accepts connections and reads
requests but never replies; a vendor that is down is a closed port. Each test queues an
action over a ledger synced from the Fotoware simulator, points the command at the silent
or absent vendor, stops it by signal, and checks the exit code, the line printed, and that
the action was neither lost nor doubled: a later ``sync --once`` against the simulator
performs it exactly once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ordersync.ledger import Ledger
from tests.cli_support import (
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    closed_port,
    fotoware_toml,
    start_cli,
    wait_for_log_event,
)
from tests.test_cli import stop_daemon

V = "fotoware-main"
ENV = {SECRET_ENV: SIM_SECRET}
# Generous: the daemon's own bound is a few seconds; this only keeps a broken build from
# hanging the suite.
STOP_BOUND_S = 20.0


class SilentVendor(str):
    """``http://127.0.0.1:PORT`` of a server that reads every request and never answers."""

    asked: asyncio.Event


@pytest.fixture
async def silent_vendor() -> AsyncIterator[SilentVendor]:
    held: list[asyncio.StreamWriter] = []
    asked = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            asked.set()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    url = SilentVendor(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    url.asked = asked
    try:
        yield url
    finally:
        server.close()
        for writer in held:
            writer.close()


async def synced_with_one_action(sim, write_config, tmp_path: Path) -> tuple[Path, str]:
    """A ledger synced from ``sim`` with one approve queued: (its config, the order id)."""
    config = write_config(fotoware_toml(sim.base_url, tmp_path / "ledger.db", name=V))
    synced = await arun_cli("--config", str(config), "sync", "--once", env=ENV, cwd=tmp_path)
    assert synced.returncode == 0, synced
    order = sorted(o for o in sim.order_ids() if sim.get_order(o)["state"] == "pending")[0]
    queued = await arun_cli("--config", str(config), "approve", f"{V}:{order}", env=ENV,
                            cwd=tmp_path)
    assert queued.returncode == 0, queued
    return config, order


CUT_TIMEOUT_S = 6.0
"""The request timeout where the vendor never answers: longer than the test takes to send
its signal, and short, because an action cut off mid-request is verified only this long
after (the vendor may still apply it meanwhile)."""


def elsewhere(write_config, tmp_path: Path, base_url: str) -> Path:
    """The same instance and ledger, with the vendor at ``base_url``."""
    return write_config(fotoware_toml(base_url, tmp_path / "ledger.db", name=V,
                                      extra=f"timeout_s = {CUT_TIMEOUT_S}\n"),
                        name="elsewhere.toml")


def action_one(tmp_path: Path):
    ledger = Ledger(tmp_path / "ledger.db")
    try:
        return ledger.outbox.get(1)
    finally:
        ledger.close()


async def until_in_flight(tmp_path: Path) -> None:
    for _ in range(400):
        if action_one(tmp_path).state.value == "in_flight":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"action #1 never went in flight: {action_one(tmp_path)}")


async def performed_once_afterwards(sim, config: Path, tmp_path: Path, order: str) -> None:
    """The action survived: the next sync --once against the vendor, once the action is due
    (a request cut off is verified only after the request timeout), performs it once."""
    due_in_s = action_one(tmp_path).next_attempt_at - time.time()
    assert due_in_s <= CUT_TIMEOUT_S + 1, action_one(tmp_path)
    await asyncio.sleep(max(0.0, due_in_s))
    again = await arun_cli("--config", str(config), "sync", "--once", env=ENV, cwd=tmp_path)
    assert again.returncode == 0, again
    assert "actions: 1 succeeded" in again.stdout, again
    assert [(e.verb, e.order_id) for e in sim.effects] == [("APPROVE", order)]


@pytest.mark.parametrize("vendor", ["silent", "down"])
async def test_run_stops_within_seconds_of_sigterm_whatever_the_vendor_does(
    vendor, fotoware_sim, silent_vendor, write_config, tmp_path  # noqa: F811
):
    config, order = await synced_with_one_action(fotoware_sim, write_config, tmp_path)
    url = silent_vendor if vendor == "silent" else f"http://127.0.0.1:{closed_port()}"
    proc = await start_cli("--config", str(elsewhere(write_config, tmp_path, url)), "run",
                           env=ENV, cwd=tmp_path)
    seen: list[str] = []
    try:
        await wait_for_log_event(proc, "started", seen)
        if vendor == "silent":
            await until_in_flight(tmp_path)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    code, err = await stop_daemon(proc, signal.SIGTERM, STOP_BOUND_S)
    assert code == 0, "".join(seen) + err
    records = [json.loads(line) for line in ("".join(seen) + err).splitlines()
               if line.startswith("{")]
    events = [r["event"] for r in records]
    assert "Traceback" not in err
    assert "stopping" in events and "stopped" in events, events
    action = action_one(tmp_path)
    assert action.state.value == "pending", action
    if vendor == "silent":
        # cut off mid-request: left for verification, and the log says so
        assert events[events.index("stopping"):].count("cancelling") == 1, events
        [left] = [r for r in records if r["event"] == "actions_recovered"]
        assert left["in_flight"] == 1
        assert action.needs_verification and action.attempts == 1, action
    await performed_once_afterwards(fotoware_sim, config, tmp_path, order)


async def test_sigterm_to_sync_once_stuck_in_its_poll_exits_130_and_keeps_the_action(
    fotoware_sim, silent_vendor, write_config, tmp_path  # noqa: F811
):
    config, order = await synced_with_one_action(fotoware_sim, write_config, tmp_path)
    proc = await start_cli("--config", str(elsewhere(write_config, tmp_path, silent_vendor)),
                           "sync", "--once", env=ENV, cwd=tmp_path)
    await asyncio.wait_for(silent_vendor.asked.wait(), STOP_BOUND_S)   # the poll is waiting
    code, err = await stop_daemon(proc, signal.SIGTERM, STOP_BOUND_S)
    assert code == 130, err
    [line] = [line for line in err.splitlines() if line.startswith("ordersync:")]
    assert line.startswith("ordersync: interrupted by SIGTERM: what was done so far is kept"), err
    assert "Traceback" not in err
    action = action_one(tmp_path)
    assert (action.state.value, action.attempts) == ("pending", 0), action   # never sent
    await performed_once_afterwards(fotoware_sim, config, tmp_path, order)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
async def test_interrupted_wait_says_where_the_action_stands(
    signum, fotoware_sim, silent_vendor, write_config, tmp_path  # noqa: F811
):
    config, order = await synced_with_one_action(fotoware_sim, write_config, tmp_path)
    proc = await start_cli("--config", str(elsewhere(write_config, tmp_path, silent_vendor)),
                           "approve", f"{V}:{order}", "--wait", env=ENV, cwd=tmp_path)
    await until_in_flight(tmp_path)
    code, err = await stop_daemon(proc, signum, STOP_BOUND_S)
    assert code == 130, err
    lines = [line for line in err.splitlines() if not line.startswith("{")]
    assert lines == [
        f"action #1: approve {V}:{order} may have reached the vendor: it stays queued, and the"
        " daemon or the next `ordersync sync --once` asks the vendor before sending it again",
        f"ordersync: interrupted by {signal.Signals(signum).name}: what was done so far is kept;"
        " an action cut off mid-request is verified with the vendor before it is sent again",
    ], err
    action = action_one(tmp_path)
    assert (action.state.value, action.needs_verification) == ("pending", True), action
    await performed_once_afterwards(fotoware_sim, config, tmp_path, order)
