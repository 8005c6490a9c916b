"""The HTTP layer's boundaries through the real command line.

* A dead vendor fails fast with one line: nothing listening, a host name that does not
  resolve, a server that accepts and never answers (bounded by ``call_deadline_s`` and
  ``poll_deadline_s``). Each test counts the connections or attempts, never the seconds.
* A vendor naming a link on another host (paging, descriptor, an order's href) gets that
  link refused: a second loopback server stands for the other host and receives nothing.
* An action's attempt log holds every request sent for it, token requests included.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ordersync_adapters.fotoware.simulator import MUTATING
from tests.cli_support import (
    SECRET_ENV,
    SIM_SECRET,
    CliResult,
    arun_cli,
    closed_port,
    fotoware_toml,
    json_data,
    one_error_line,
    pwinty_toml,
)
from tests.http_support import RewritingFotoware

V = "fotoware-main"


@pytest.fixture
def rewriting(fotoware):
    """``await rewriting(rewrites)``: a running Fotoware simulator that rewrites its answers."""
    return lambda rewrites: fotoware(simulator=RewritingFotoware, orders=40,
                                     client_secret=SIM_SECRET, rewrites=rewrites)


async def cli(config: Path, *args: str) -> CliResult:
    return await arun_cli("--config", str(config), "--log-format", "json", *args,
                          env={SECRET_ENV: SIM_SECRET, "ORDERSYNC_TEST_PWINTY_KEY": "k"},
                          cwd=config.parent, timeout=60.0)


def retries_logged(result: CliResult) -> int:
    events = [json.loads(line) for line in result.stderr_lines if line.startswith("{")]
    return sum(1 for e in events if e.get("event") == "retrying")


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ordersync.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ a dead vendor, fast

@pytest.mark.parametrize("base_url", [
    pytest.param(f"http://127.0.0.1:{closed_port()}/v2.2", id="nothing-listening"),
    pytest.param("http://nonexistent.invalid/v2.2", id="unresolvable-host"),
])
async def test_sync_gives_up_on_an_unreachable_vendor_after_three_attempts(tmp_path, base_url):
    config = config_file(tmp_path, pwinty_toml(base_url, tmp_path / "l.db",
                                               extra="max_attempts = 10\n"))
    result = await cli(config, "sync", "--once")
    one_error_line(result, 1, "prints: GET ", "/v2.2/Orders", "cannot connect",
                   "(gave up after 3 attempts)")
    assert retries_logged(result) == 2                 # three attempts, not ten, not 25
    assert result.stdout.startswith("prints: FAILED: "), result


async def test_a_dead_vendor_costs_one_actions_attempts_not_every_actions(tmp_path, rewriting):
    sim = await rewriting([])
    pending = [o for o in sim.order_ids() if sim.get_order(o)["state"] == "pending"][:3]
    ledger = tmp_path / "l.db"
    config = config_file(tmp_path, fotoware_toml(sim.base_url, ledger, name=V))
    assert (await cli(config, "sync", "--once")).returncode == 0
    queued = await cli(config, "approve", *(f"{V}:{o}" for o in pending))
    assert queued.returncode == 0, queued
    (tmp_path / "dead").mkdir()
    dead = config_file(tmp_path / "dead", fotoware_toml(
        f"http://127.0.0.1:{closed_port()}", ledger, name=V, extra="max_attempts = 10\n"))
    result = await cli(dead, "sync", "--once")
    assert result.returncode == 1, result
    listed = json_data(await cli(config, "actions", "list", "--json"))
    # the first action met the dead vendor (3 connection attempts); the drain stopped there,
    # and the others wait, untried, for the next drain
    assert [(a["state"], a["attempts"]) for a in listed] == [
        ("pending", 1), ("pending", 0), ("pending", 0)], listed
    again = await cli(config, "sync", "--once")   # the vendor is back
    assert again.returncode == 0, again
    # the two untried actions go at once; the tried one after its backoff
    assert sorted(e.order_id for e in sim.effects) == sorted(pending[1:])


async def test_a_vendor_that_never_answers_is_given_up_at_the_call_deadline(tmp_path, silent):
    config = config_file(tmp_path, fotoware_toml(
        silent.base_url, tmp_path / "l.db", extra="timeout_s = 30\ncall_deadline_s = 1\n"))
    result = await cli(config, "sync", "--once")
    one_error_line(result, 1, f"{V}: POST {silent.base_url}/fotoweb/oauth2/token",
                   "timed out at the call deadline (call_deadline_s = 1 s)")
    assert silent.connections == 1                     # the deadline cut the only attempt short
    assert b"POST /fotoweb/oauth2/token" in silent.received


async def test_a_vendor_that_never_answers_is_tried_max_attempts_times(tmp_path, silent):
    config = config_file(tmp_path, fotoware_toml(
        silent.base_url, tmp_path / "l.db", extra="timeout_s = 0.5\nmax_attempts = 2\n"))
    result = await cli(config, "sync", "--once")
    one_error_line(result, 1, "timed out after 0.5 s (gave up after 2 attempts)")
    assert silent.connections == 2                     # the token request is not retried apart


async def test_a_poll_ends_at_its_deadline(tmp_path, silent):
    config = config_file(tmp_path, fotoware_toml(
        silent.base_url, tmp_path / "l.db", extra="timeout_s = 30\npoll_deadline_s = 1\n"))
    result = await cli(config, "sync", "--once")
    one_error_line(result, 1, f"{V}: poll_deadline_s (1 s) reached")
    assert silent.connections == 1


# ------------------------------------------------------------------ links to another host

def _next(target: str) -> tuple[bytes, bytes]:
    return b'"next":"/fotoweb/orders/?p=', f'"next":"{target}/fotoweb/orders/?p='.encode()


LINKS_ELSEWHERE = {
    "paging-next-on-another-host": lambda foreign: [_next(foreign)],
    "paging-next-scheme-relative": lambda foreign: [_next(foreign.removeprefix("http:"))],
    "descriptor-list-on-another-host": lambda foreign: [(
        b'"history":"/fotoweb/orders/"', f'"history":"{foreign}/fotoweb/orders/"'.encode())],
}


@pytest.mark.parametrize("rewrites", LINKS_ELSEWHERE.values(), ids=LINKS_ELSEWHERE.keys())
async def test_sync_refuses_a_link_to_another_host(tmp_path, rewriting, silent, rewrites):  # noqa: F811
    sim = await rewriting(rewrites(silent.base_url))
    config = config_file(tmp_path, fotoware_toml(sim.base_url, tmp_path / "l.db"))
    result = await cli(config, "sync", "--once")
    one_error_line(result, 1, f"{V}: GET ", silent.base_url[7:], "not on the configured origin",
                   "refused, not followed")
    assert silent.connections == 0 and silent.received == b""
    assert sim.requests and all(r.path.startswith("/fotoweb/") for r in sim.requests)


async def test_an_action_on_an_order_whose_href_is_elsewhere_fails_and_sends_nothing(
        tmp_path, rewriting, silent):
    sim = await rewriting([])
    target = next(o for o in sim.order_ids() if sim.get_order(o)["state"] == "pending")
    href = f"/fotoweb/orders/{target}"
    sim.rewrites.append((f'"href":"{href}"'.encode(), f'"href":"{silent.base_url}{href}"'.encode()))
    config = config_file(tmp_path, fotoware_toml(sim.base_url, tmp_path / "l.db", name=V))
    synced = await cli(config, "sync", "--once")
    assert synced.returncode == 0, synced
    before = len(sim.requests)

    approved = await cli(config, "approve", f"{V}:{target}", "--wait")
    assert approved.returncode == 1, approved
    [line] = approved.stdout.splitlines()
    assert line.startswith(f"action #1: approve {V}:{target} failed: ") and (
        "not on the configured origin" in line), approved
    assert silent.connections == 0
    assert not [r for r in sim.requests[before:] if r.method in MUTATING] and sim.effects == []
    shown = await cli(config, "actions", "show", "1", "--json")
    assert json_data(shown)["attempts_log"] == []   # nothing was sent for it


# ------------------------------------------------------------------ the attempt log

async def test_the_attempt_log_holds_every_request_sent_token_requests_included(
        tmp_path, rewriting):
    sim = await rewriting([])
    target = next(o for o in sim.order_ids() if sim.get_order(o)["state"] == "pending")
    config = config_file(tmp_path, fotoware_toml(sim.base_url, tmp_path / "l.db", name=V))
    synced = await cli(config, "sync", "--once")
    assert synced.returncode == 0, synced
    before = len(sim.requests)
    sim.faults.add("status", status=503, path_prefix="/fotoweb/oauth2/token", times=2,
                   retry_after=None)

    approved = await cli(config, "approve", f"{V}:{target}", "--wait")
    assert approved.returncode == 0, approved
    sent = [(r.method, r.path, r.status) for r in sim.requests[before:]]
    assert sent[:3] == [("POST", "/fotoweb/oauth2/token", 503)] * 2 + [
        ("POST", "/fotoweb/oauth2/token", 200)]
    assert ("APPROVE", f"/fotoweb/orders/{target}", 200) in sent
    shown = await cli(config, "actions", "show", "1", "--json")
    logged = [(a["request"], a["status"]) for a in json_data(shown)["attempts_log"]]
    assert logged == [(f"{method} {path}", status) for method, path, status in sent]
