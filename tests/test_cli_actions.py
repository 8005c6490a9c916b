"""The outbox through the real command line: approve, reject, submit, update and actions.

Every command runs as a subprocess against a Fotoware simulator on loopback (served by the
test's event loop), over a ledger filled by a real ``sync --once``. What each command did is
checked three ways: its exit code and output, the ledger (``actions list --json``), and the
simulator's own log of applied changes (``sim.effects``).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ordersync_adapters.fotoware.simulator import MUTATING, FotowareSimulator
from tests.cli_support import (
    SECRET_ENV,
    SIM_SECRET,
    CliResult,
    arun_cli,
    fotoware_toml,
    json_data,
    start_cli,
    wait_for_log_event,
)

V = "fotoware-main"
QUEUED = re.compile(r"^(queued|already queued) action #(\d+): (\w+) (\S+) \((\w+)\)$")


@dataclass
class Site:
    """A synced ledger over a running simulator, and a way to run commands against it."""

    sim: FotowareSimulator
    config: Path
    tmp: Path

    async def cli(self, *args: str, timeout: float = 30.0) -> CliResult:
        return await arun_cli("--config", str(self.config), *args,
                              env={SECRET_ENV: SIM_SECRET}, cwd=self.tmp, timeout=timeout)

    async def start_daemon(self) -> tuple[asyncio.subprocess.Process, list[str]]:
        proc = await start_cli("--config", str(self.config), "run",
                               env={SECRET_ENV: SIM_SECRET}, cwd=self.tmp)
        seen: list[str] = []
        try:
            await wait_for_log_event(proc, "started", seen)
        except BaseException:
            proc.kill()
            await proc.wait()
            raise
        return proc, seen

    async def actions(self, *options: str) -> list[dict]:
        result = await self.cli("actions", "list", "--json", *options)
        assert result.returncode == 0, result
        return json_data(result)

    def ids(self, state: str) -> list[str]:
        """Orders the simulator holds in ``state``, oldest first."""
        return sorted(o for o in self.sim.order_ids() if self.sim.get_order(o)["state"] == state)

    def effects(self) -> list[tuple[str, str]]:
        return [(e.verb, e.order_id) for e in self.sim.effects]

    def verbs_sent(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.sim.requests if r.method in MUTATING]


async def make_site(sim: FotowareSimulator, write_config, tmp_path: Path, extra: str = "") -> Site:
    config = write_config(fotoware_toml(sim.base_url, tmp_path / "ledger.db", name=V,
                                        extra=extra))
    site = Site(sim, config, tmp_path)
    synced = await site.cli("sync", "--once")
    assert synced.returncode == 0, synced
    return site


@pytest.fixture
async def site(fotoware_sim, write_config, tmp_path) -> Site:  # noqa: F811
    return await make_site(fotoware_sim, write_config, tmp_path)


def ref(oid: str) -> str:
    return f"{V}:{oid}"


def queued_lines(result: CliResult) -> list[tuple[str, int, str, str, str]]:
    """(verb, id, kind, order, state) of every line a decision command printed."""
    lines = result.stdout.splitlines()
    parsed = [QUEUED.match(line) for line in lines]
    assert lines and all(parsed), result
    return [(m[1], int(m[2]), m[3], m[4], m[5]) for m in parsed]


def one_error_line(result: CliResult, code: int, *fragments: str) -> str:
    """Exit ``code``, and stderr is one line "ordersync: error: ..." holding each fragment."""
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert len(result.stderr_lines) == 1, result
    line = result.stderr_lines[0]
    assert line.startswith("ordersync: error: "), result
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


async def stop_daemon(proc: asyncio.subprocess.Process, seen: list[str]) -> list[dict]:
    """SIGTERM; the daemon must exit 0 within 5 s. Returns every JSON log record it wrote."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 5)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("ordersync run did not stop within 5 s of SIGTERM") from None
    text = "".join(seen) + err.decode()
    assert proc.returncode == 0, text
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------ queueing

async def test_each_decision_is_queued_once_and_performed_by_nobody_yet(site):
    pending, created = site.ids("pending"), site.ids("created")
    commands = [
        ("approve", ref(pending[0])),
        ("reject", ref(pending[1]), "--comment", "Model release missing"),
        ("submit", ref(created[0])),
        ("update", ref(pending[2]), "--comment", "Checked", "--data", "Channel=Web",
         "--item-data", "0:Caption=Harbour"),
    ]
    first = {}
    results = await asyncio.gather(*(site.cli(*a) for a in commands))
    for args, result in zip(commands, results, strict=True):
        assert result.returncode == 0, result
        [(verb, number, kind, target, state)] = queued_lines(result)
        assert (verb, kind, target, state) == ("queued", args[0], args[1], "pending"), result
        first[args] = number
    assert sorted(first.values()) == [1, 2, 3, 4]

    # The same command again queues nothing new: the key is derived from the action itself.
    again = await asyncio.gather(*(site.cli(*args) for args in commands))
    for args, result in zip(commands, again, strict=True):
        assert result.returncode == 0, result
        [(verb, number, kind, target, state)] = queued_lines(result)
        assert (verb, number, kind, target, state) == (
            "already queued", first[args], args[0], args[1], "pending"), result

    listed = await site.actions()
    assert [(a["id"], a["kind"], a["vendor"] + ":" + a["order"], a["state"], a["attempts"])
            for a in listed] == sorted((first[args], args[0], args[1], "pending", 0)
                                       for args in commands)
    payloads = {a["kind"]: a["payload"] for a in listed}
    assert payloads["reject"]["comment"] == "Model release missing"
    update = payloads["update"]
    assert update["comment"] == "Checked"
    channel = next(f["id"] for f in site.sim.config["orderFields"] if f["label"] == "Channel")
    caption = next(f["id"] for f in site.sim.config["itemFields"] if f["label"] == "Caption")
    assert update["orderData"] == {channel: "Web"}           # labels resolved to field ids
    assert update["itemData"] == {"0": {caption: "Harbour"}}

    # A different comment is a different action; an explicit key is honoured, once.
    # (Action numbers are not contiguous: a repeated command may use one up.)
    other = await site.cli("approve", ref(pending[0]), "--comment", "With a comment")
    [(verb, fifth, *_)] = queued_lines(other)
    assert verb == "queued" and fifth > 4, other
    keyed = await site.cli("approve", ref(pending[3]), "--key", "ticket-4711")
    [(verb, sixth, *_)] = queued_lines(keyed)
    assert verb == "queued" and sixth > fifth, keyed
    reused = await site.cli("approve", ref(pending[3]), "--key", "ticket-4711")
    assert queued_lines(reused)[0][:2] == ("already queued", sixth), reused
    clash = await site.cli("reject", ref(pending[4]), "--key", "ticket-4711")
    one_error_line(clash, 2, f"idempotency key 'ticket-4711' already names action #{sixth}"
                             f" (approve {ref(pending[3])}), a different action")
    json_out = await site.cli("approve", ref(pending[3]), "--key", "ticket-4711", "--json")
    assert json_out.returncode == 0, json_out
    [record] = json_data(json_out)
    assert (record["id"], record["queued"], record["key"]) == (sixth, False, "ticket-4711")

    assert len(await site.actions()) == 6
    assert site.effects() == [] and site.verbs_sent() == []   # queued, not performed


REFUSALS = [
    # (id, args with {p} pending, {p2} another pending, {c} created, {x} expired, fragments)
    ("key-with-two-orders", ["approve", "{p}", "{p2}", "--key", "k"],
     ["--key: names one action: give exactly one order with it"]),
    ("unknown-order", ["approve", f"{V}:99999"],
     [f"no order {V}:99999 in the ledger"]),
    ("submit-pending", ["submit", "{p}"],
     ["{p} is pending; submit needs an order that is created"]),
    ("approve-expired", ["approve", "{x}"],
     ["{x} is expired; approve needs an order that is pending or created"]),
    ("batch-is-all-or-nothing", ["approve", "{p}", "{x}"], ["{x} is expired"]),
    ("project-code-regex", ["approve", "{p}", "--data", "Project code=abc"],
     ["Project code: 'abc' does not match ^[A-Z]{3}-\\d{4}$",
      "Three capitals, a dash and four digits"]),
    ("unknown-field", ["approve", "{p}", "--data", "Colour=red"],
     ["unknown order field 'Colour'", "'Project code', 'Budget', 'Rush', 'Channel'"]),
    ("checkbox", ["approve", "{p}", "--data", "Rush=maybe"],
     ["Rush: a checkbox takes true or false, got 'maybe'"]),
    ("budget-maximum", ["update", "{p}", "--data", "Budget=9000"],
     ["Budget: 9000 is above the maximum 5000"]),
    ("not-writable", ["update", "{p}", "--data", "Internal note=hello"],
     ["Internal note: the field is not writable"]),
    ("item-out-of-range", ["approve", "{p}", "--item-data", "99:Caption=x"],
     ["--item-data: the order has items 0 to", "not 99"]),
    ("item-caption-too-long", ["update", "{p}", "--item-data", "0:Caption=" + "x" * 41],
     ["Caption: 41 characters, at most 40 allowed"]),
    ("bad-expiry", ["update", "{p}", "--expires", "soon"],
     ["--expires: 'soon' is not an ISO 8601 time"]),
    ("update-nothing", ["update", "{p}"],
     ["update needs something to change: comment, expires, data or item_data"]),
    ("wait-timeout-zero", ["approve", "{p}", "--wait", "--timeout", "0"],
     ["argument --timeout: 0 is out of range (above 0, at most 86400)"]),
]


async def test_refusals_exit_2_with_one_line_and_queue_nothing(site):
    pending, created, expired = site.ids("pending"), site.ids("created"), site.ids("expired")
    names = {"p": ref(pending[0]), "p2": ref(pending[1]), "c": ref(created[0]),
             "x": ref(expired[0])}

    def fill(text: str) -> str:
        for key, value in names.items():
            text = text.replace("{%s}" % key, value)
        return text

    results = await asyncio.gather(*(site.cli(*map(fill, args)) for _, args, _ in REFUSALS))
    failures = []
    for (case, _, fragments), result in zip(REFUSALS, results, strict=True):
        try:
            one_error_line(result, 2, *map(fill, fragments))
            assert result.stdout == "", result
        except AssertionError as exc:
            failures.append(f"[{case}] {exc}")
    assert not failures, "\n\n".join(failures)
    assert await site.actions() == []
    assert site.effects() == [] and site.verbs_sent() == []


# ------------------------------------------------------------------ --wait

async def test_wait_without_a_daemon_performs_the_action_itself(site):
    pending, created = site.ids("pending"), site.ids("created")
    before = site.sim.get_order(pending[0])
    result = await site.cli("approve", ref(pending[0]), "--comment", "Cleared for print",
                            "--wait")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [f"action #1: approve {ref(pending[0])} succeeded"]
    assert site.effects() == [("APPROVE", pending[0])]
    after = site.sim.get_order(pending[0])
    assert (after["state"], after["adminComment"]) == ("approved", "Cleared for print")
    assert after["orderItems"] and len(after["orderItems"]) == len(before["orderItems"])
    assert after["orderData"] == before["orderData"]        # the body did not clear them

    submitted = await site.cli("submit", ref(created[0]), "--wait", "--json")
    assert submitted.returncode == 0, submitted
    [record] = json_data(submitted)
    assert (record["kind"], record["state"], record["attempts"]) == ("submit", "succeeded", 1)
    assert record["result"] == {"verb": "SUBMIT", "verified": False}
    assert site.effects()[1:] == [("SUBMIT", created[0])]

    # the ledger learnt each result from the action itself, without a poll
    shown = await site.cli("orders", "show", ref(pending[0]), "--json")
    order = json_data(shown)
    assert (order["vendor_state"], order["comment"]) == ("approved", "Cleared for print")
    assert order["events"][-1]["source"] == "action"
    listed = await site.cli("orders", "list", "--json")
    states = {o["id"]: o["vendor_state"] for o in json_data(listed)}
    assert (states[pending[0]], states[created[0]]) == ("approved", "pending")

    # done is done: the same command again performs nothing
    again = await site.cli("approve", ref(pending[0]), "--comment", "Cleared for print",
                           "--wait")
    assert again.returncode == 0, again
    assert len(site.sim.effects) == 2


async def test_wait_with_a_daemon_running_lets_the_daemon_do_it(site):
    pending = site.ids("pending")
    proc, seen = await site.start_daemon()
    try:
        result = await site.cli("approve", ref(pending[0]), "--wait", "--timeout", "20")
        assert result.returncode == 0, result
        assert result.stdout.splitlines() == [f"action #1: approve {ref(pending[0])} succeeded"]
        [effect] = site.sim.effects
        assert (effect.verb, effect.order_id) == ("APPROVE", pending[0])
        done = await wait_for_log_event(proc, "action_succeeded", seen)
        assert (done["action"], done["order"]) == (1, ref(pending[0]))
    finally:
        records = await stop_daemon(proc, seen)
    # the daemon performed it, the waiting command only watched
    assert "action_succeeded" not in result.stderr
    assert [r["action"] for r in records if r["event"] == "action_succeeded"] == [1]


async def test_an_action_queued_while_the_daemon_runs_is_picked_up_between_polls(site):
    # the daemon polls hourly here: each action is performed long before its next poll
    pending, created = site.ids("pending"), site.ids("created")
    proc, seen = await site.start_daemon()
    try:
        for args in (("reject", ref(pending[0])), ("submit", ref(created[0]))):
            count = len(site.sim.effects)
            result = await site.cli(*args)
            assert queued_lines(result)[0][0] == "queued", result
            give_up = time.monotonic() + 30   # a bound for a broken build, not a speed test
            while len(site.sim.effects) == count and time.monotonic() < give_up:
                await asyncio.sleep(0.01)
            assert len(site.sim.effects) == count + 1, "the daemon did not pick it up"
        await wait_for_log_event(proc, "action_succeeded", seen)
    finally:
        records = await stop_daemon(proc, seen)
    assert site.effects() == [("REJECT", pending[0]), ("SUBMIT", created[0])]
    assert sorted(r["action"] for r in records if r["event"] == "action_succeeded") == [1, 2]
    listed = await site.actions()
    assert [a["state"] for a in listed] == ["succeeded", "succeeded"]


async def test_wait_on_an_action_the_vendor_refuses_exits_1_with_its_message(site):
    created = site.ids("created")
    site.sim.set_state(created[0], "pending")     # submitted elsewhere, behind the ledger's back
    result = await site.cli("submit", ref(created[0]), "--wait")
    assert result.returncode == 1, result
    assert result.stdout.splitlines() == [
        f"action #1: submit {ref(created[0])} failed: HTTP 400: Order is pending; only created"
        " orders can be submitted"], result
    assert site.effects() == []
    [action] = await site.actions("--state", "failed")
    assert action["last_error"] == ("HTTP 400: Order is pending; only created orders can be"
                                    " submitted")
    assert action["attempts"] == 1


# ------------------------------------------------------------------ actions list/show/retry/cancel

async def test_actions_list_show_retry_and_cancel(site):
    pending, created = site.ids("pending"), site.ids("created")
    done = await site.cli("approve", ref(pending[0]), "--wait")               # 1 succeeded
    assert done.returncode == 0, done
    site.sim.set_state(created[0], "pending")
    refused = await site.cli("submit", ref(created[0]), "--wait")             # 2 failed
    assert refused.returncode == 1, refused
    queued = await site.cli("reject", ref(pending[1]))                        # 3 pending
    assert queued.returncode == 0, queued

    (text, shown, failed, shown_text, by_state, bad_state, unknown_show, not_a_number
     ) = await asyncio.gather(
        site.cli("actions", "list"),
        site.cli("actions", "show", "1", "--json"),
        site.cli("actions", "show", "2", "--json"),
        site.cli("actions", "show", "1"),
        asyncio.gather(*(site.actions("--state", state)
                         for state in ("pending", "failed", "dead", "succeeded"))),
        site.cli("actions", "list", "--state", "finished"),
        site.cli("actions", "show", "99"),
        site.cli("actions", "show", "one"),
    )
    assert text.returncode == 0, text
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["ACTION", "KIND", "ORDER", "STATE", "TRIES", "UPDATED", "LAST",
                                "ERROR"]
    assert [line.split()[:5] for line in lines[1:4]] == [
        ["#1", "approve", ref(pending[0]), "succeeded", "1"],
        ["#2", "submit", ref(created[0]), "failed", "1"],
        ["#3", "reject", ref(pending[1]), "pending", "0"]]
    assert "HTTP 400: Order is pending" in lines[2]
    assert lines[-1] == "(3 actions)"
    assert [[a["id"] for a in found] for found in by_state] == [[3], [2], [], [1]]
    one_error_line(bad_state, 2, "--state: unknown state 'finished'; one of: pending, in_flight")
    one_error_line(unknown_show, 2, "no action #99")
    one_error_line(not_a_number, 2, "invalid int value: 'one'")

    assert shown.returncode == 0, shown
    action = json_data(shown)
    assert (action["id"], action["kind"], action["state"]) == (1, "approve", "succeeded")
    assert action["result"] == {"verb": "APPROVE", "verified": False}
    # every request of the attempt (this process's token request, then the verb)
    assert [(a["number"], a["request"], a["status"], a["error"]) for a in action["attempts_log"]
            if not a["request"].startswith("POST /fotoweb/oauth2/token")] \
        == [(1, f"APPROVE /fotoweb/orders/{pending[0]}", 200, None)]
    assert all(a["latency_ms"] >= 0 and a["at"] for a in action["attempts_log"])
    failed = json_data(failed)
    assert [(a["request"], a["status"], a["error"]) for a in failed["attempts_log"]
            if a["request"].split()[0] != "POST"] == [
        (f"SUBMIT /fotoweb/orders/{created[0]}", 400,
         "Order is pending; only created orders can be submitted")]
    assert shown_text.returncode == 0, shown_text
    assert "state: succeeded" in shown_text.stdout
    assert "#1 " in shown_text.stdout
    assert f"APPROVE /fotoweb/orders/{pending[0]} -> 200" in shown_text.stdout

    # retry: only dead, failed or uncertain; cancel: never a succeeded action
    retry_done, retry_pending, cancel_done, retry_unknown, cancel_unknown = await asyncio.gather(
        site.cli("actions", "retry", "1"), site.cli("actions", "retry", "3"),
        site.cli("actions", "cancel", "1"), site.cli("actions", "retry", "99"),
        site.cli("actions", "cancel", "99"))
    for number, state, result in (("1", "succeeded", retry_done), ("3", "pending", retry_pending)):
        one_error_line(result, 2, f"action #{number} is {state}; only dead, failed or uncertain"
                                  " actions can be retried")
    one_error_line(cancel_done, 2, "action #1 is succeeded; only pending, dead, failed or"
                                   " uncertain actions can be cancelled")
    one_error_line(retry_unknown, 2, "no action #99")
    one_error_line(cancel_unknown, 2, "no action #99")
    cancelled = await site.cli("actions", "cancel", "3")
    assert (cancelled.returncode, cancelled.stdout) == (
        0, "action #3 is now cancelled\n"), cancelled
    again = await site.cli("actions", "cancel", "3")
    one_error_line(again, 2, "action #3 is cancelled")

    # the failed submit, retried once the order is back in a state that allows it
    site.sim.set_state(created[0], "created")
    retried = await site.cli("actions", "retry", "2", "--json")
    assert retried.returncode == 0, retried
    record = json_data(retried)
    assert (record["state"], record["attempts"]) == ("pending", 0)
    synced = await site.cli("sync", "--once")
    assert synced.returncode == 0, synced
    assert {a["id"]: a["state"] for a in await site.actions()} == {
        1: "succeeded", 2: "succeeded", 3: "cancelled"}
    # the cancelled rejection never reached the vendor
    assert site.effects() == [("APPROVE", pending[0]), ("SUBMIT", created[0])]


async def test_retry_brings_back_dead_and_uncertain_actions(
    fotoware_sim, write_config, tmp_path  # noqa: F811
):
    site = await make_site(fotoware_sim, write_config, tmp_path,
                           extra="max_attempts = 1\naction_max_attempts = 1\n")
    sim, pending = site.sim, site.ids("pending")

    # uncertain: the APPROVE's answer is a 503 (not applied): it may have taken effect
    sim.faults.add("status", method="APPROVE", status=503, retry_after=None)
    result = await site.cli("approve", ref(pending[0]), "--wait")
    assert result.returncode == 1, result
    assert result.stdout.startswith(f"action #1: approve {ref(pending[0])} uncertain: gave up"
                                    " after 1 attempts; the last may have taken effect"), result
    # dead: the GET an approval with a comment needs keeps failing (503 is transient)
    sim.faults.add("status", method="GET", path_prefix=f"/fotoweb/orders/{pending[1]}",
                   status=503, retry_after=None)
    result = await site.cli("approve", ref(pending[1]), "--comment", "ok", "--wait")
    assert result.returncode == 1, result
    assert result.stdout.startswith(f"action #2: approve {ref(pending[1])} dead: gave up after"
                                    " 1 attempts: HTTP 503"), result
    assert [(a["id"], a["state"]) for a in await site.actions()] == [(1, "uncertain"),
                                                                    (2, "dead")]
    assert site.effects() == []

    for number in ("1", "2"):
        retried = await site.cli("actions", "retry", number)
        assert (retried.returncode, retried.stdout) == (
            0, f"action #{number} is now pending\n"), retried
    synced = await site.cli("sync", "--once")
    assert synced.returncode == 0, synced
    assert [(a["id"], a["state"]) for a in await site.actions()] == [(1, "succeeded"),
                                                                    (2, "succeeded")]
    assert site.effects() == [("APPROVE", pending[0]), ("APPROVE", pending[1])]
    assert sim.get_order(pending[1])["adminComment"] == "ok"


async def test_cancel_never_withdraws_an_action_that_may_have_taken_effect(site):
    pending = site.ids("pending")
    queued = await site.cli("approve", ref(pending[0]))
    assert queued.returncode == 0, queued
    # the APPROVE is applied, then the connection drops: the answer is lost
    site.sim.faults.add("apply_then_drop", method="APPROVE")
    synced = await site.cli("sync", "--once")
    assert synced.returncode == 0, synced
    [action] = await site.actions()
    assert (action["state"], action["needs_verification"]) == ("pending", True)
    assert site.effects() == [("APPROVE", pending[0])]

    cancelled = await site.cli("actions", "cancel", str(action["id"]))
    one_error_line(cancelled, 2, f"action #{action['id']} may already have reached the vendor")
    [action] = await site.actions()
    assert action["state"] == "pending"
    # its next attempt (after backoff) reads the order, finds the approval and sends nothing
    waited = await site.cli("approve", ref(pending[0]), "--wait")
    assert waited.returncode == 0, waited
    [action] = await site.actions()
    assert (action["state"], action["result"]) == ("succeeded", {"verified": True})
    assert site.effects() == [("APPROVE", pending[0])]
