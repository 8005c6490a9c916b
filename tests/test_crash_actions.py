"""kill -9, again and again, while the outbox drains: every action takes effect exactly once.

A real ``ordersync run`` process drains a queue of Fotoware actions (plain approvals and
rejections, approvals that carry a comment, submissions, updates followed by a rejection of
the same order) against the simulator, with faults switched on that hit the verbs: "apply
the change, then drop the connection without answering" (the answer is lost, the effect is
not), plain dropped connections, 503 and 429. The process is killed with SIGKILL at random
moments (most often a few milliseconds after the simulator saw its n-th verb, so that an
action is in flight) and started again, round after round, then one last run drains the rest
and stops on SIGTERM.

The proof comes from the simulator's own log of applied changes (``sim.effects``): every
action took effect exactly once and in the order given, no order without an action was
touched, every action ended ``succeeded`` (none pending, in flight, uncertain, dead or
failed), each order ends as asked with its items and custom data intact, and the ledger's
copy of each order is the simulator's.

Short by default (CI); longer on demand::

    ORDERSYNC_CRASH_ACTIONS=500 ORDERSYNC_CRASH_ROUNDS=100 pytest tests/test_crash_actions.py

``ORDERSYNC_CRASH_SEED`` changes the seeded choices (orders, faults, kill points); the kill
timing is random by nature, and the assertions hold whatever it is.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ordersync.actions import enqueue
from ordersync.adapters.fotoware import customdata
from ordersync.adapters.fotoware.simulator import MUTATING
from ordersync.daemon import Service
from ordersync.ledger import Ledger
from ordersync.model import ActionState

from tests.cli_support import CLI, SECRET_ENV, arun_cli, cli_env, fotoware_toml
from tests.conftest import fotoware_config

ACTIONS = int(os.environ.get("ORDERSYNC_CRASH_ACTIONS", "120"))
ROUNDS = int(os.environ.get("ORDERSYNC_CRASH_ROUNDS", "10"))
SEED = int(os.environ.get("ORDERSYNC_CRASH_SEED", "20260601"))

VENDOR = "fw"
COMMENT_APPROVE = "Approved by the crash test, with a comment"
COMMENT_UPDATE = "Updated by the crash test before its rejection"
BUDGET = "1234"          # seeded budgets are multiples of 50: this one can only come from us
FAULTS = "apply_then_drop:0.3,drop:0.07"
UNTOUCHED = 12           # pending and created orders no action names: nothing may touch them

DAEMON_SETTINGS = """\
poll_interval_s = 3600
max_attempts = 3
action_max_attempts = 50
action_backoff_base_s = 0.05
action_backoff_max_s = 0.5
"""


@dataclass
class Plan:
    """Which orders get which actions, and what each must look like at the end."""

    approve: list[str] = field(default_factory=list)          # APPROVE, no body
    reject: list[str] = field(default_factory=list)           # REJECT, no body
    approve_comment: list[str] = field(default_factory=list)  # GET + APPROVE with a body
    submit: list[str] = field(default_factory=list)           # SUBMIT (created orders)
    update_reject: list[str] = field(default_factory=list)    # GET + PATCH, then REJECT
    untouched: list[str] = field(default_factory=list)

    def expected_verbs(self) -> dict[str, list[str]]:
        verbs: dict[str, list[str]] = {}
        verbs.update({oid: ["APPROVE"] for oid in self.approve + self.approve_comment})
        verbs.update({oid: ["REJECT"] for oid in self.reject})
        verbs.update({oid: ["SUBMIT"] for oid in self.submit})
        verbs.update({oid: ["PATCH", "REJECT"] for oid in self.update_reject})
        return verbs

    def expected_state(self, oid: str) -> str:
        if oid in self.submit:
            return "pending"
        if oid in self.approve or oid in self.approve_comment:
            return "approved"
        return "rejected"

    @property
    def action_count(self) -> int:
        return sum(len(v) for v in self.expected_verbs().values())


def make_plan(sim, actions: int, rng: random.Random) -> Plan:
    states = {oid: sim.get_order(oid)["state"] for oid in sim.order_ids()}
    pending = sorted(oid for oid, state in states.items() if state == "pending")
    created = sorted(oid for oid, state in states.items() if state == "created")
    rng.shuffle(pending)
    rng.shuffle(created)
    plan = Plan()
    pairs = max(2, actions // 12)
    rest = actions - 2 * pairs
    n_submit = max(2, rest * 15 // 100)
    n_comment = max(2, rest * 15 // 100)
    n_reject = max(2, rest * 20 // 100)
    n_approve = rest - n_submit - n_comment - n_reject
    need_pending = pairs + n_comment + n_reject + n_approve + UNTOUCHED
    assert len(pending) >= need_pending and len(created) >= n_submit + UNTOUCHED, (
        "the simulator has too few pending or created orders for this many actions")
    take = iter(pending)
    plan.update_reject = [next(take) for _ in range(pairs)]
    plan.approve_comment = [next(take) for _ in range(n_comment)]
    plan.reject = [next(take) for _ in range(n_reject)]
    plan.approve = [next(take) for _ in range(n_approve)]
    plan.untouched = [next(take) for _ in range(UNTOUCHED)] + created[n_submit:][:UNTOUCHED]
    plan.submit = created[:n_submit]
    assert plan.action_count == actions
    return plan


class VerbCount:
    """How many verb requests (PATCH, SUBMIT, APPROVE, REJECT) the simulator has seen so far;
    cheap enough to ask every millisecond (only new records are looked at)."""

    def __init__(self, sim) -> None:
        self.sim, self.seen, self.count = sim, 0, 0

    def __call__(self) -> int:
        new = self.sim.requests[self.seen:]
        self.seen += len(new)
        self.count += sum(1 for r in new if r.method in MUTATING)
        return self.count


def read_actions(path: Path):
    ledger = Ledger(path)
    try:
        return ledger.outbox.list()
    finally:
        ledger.close()


def items_and_data(order: dict) -> tuple:
    """What an update must keep: each item's rendition, custom data, comment and expiry."""
    items = [(item["rendition"]["href"], customdata.as_dict(item.get("itemData")),
              item.get("adminComment") or "", item.get("expires"))
             for item in order.get("orderItems") or []]
    return items, customdata.as_dict(order.get("orderData"))


async def start_daemon(config: Path, env: dict, log: Path):
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *CLI, "--config", str(config), "--log-format", "json", "run",
            env=cli_env(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )


async def wait_started(proc, log: Path, timeout: float = 20.0) -> None:
    """Until the daemon has logged ``started`` (its SIGTERM handler is in place by then)."""
    give_up = time.monotonic() + timeout
    while '"started"' not in log.read_text(errors="replace"):
        assert proc.returncode is None, f"the daemon exited ({proc.returncode}):\n{tail(log)}"
        assert time.monotonic() < give_up, f"the daemon did not start:\n{tail(log)}"
        await asyncio.sleep(0.02)


def tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(text[-lines:])


async def test_kill_9_while_draining_the_outbox_every_action_exactly_once(fotoware, tmp_path):
    started = time.monotonic()
    rng = random.Random(SEED)
    sim = await fotoware(orders=max(400, 4 * ACTIONS + 100), clock=time.time)
    ledger_path = tmp_path / "ledger.db"
    config = tmp_path / "ordersync.toml"
    config.write_text(fotoware_toml(sim.base_url, ledger_path, name=VENDOR,
                                    extra=DAEMON_SETTINGS), encoding="utf-8")
    env = {SECRET_ENV: sim.client_secret}

    # ---- setup: one sync, then the whole queue in a few CLI calls (faults still off)
    result = await arun_cli("--config", str(config), "sync", "--once", env=env, timeout=60)
    assert result.returncode == 0, result
    plan = make_plan(sim, ACTIONS, rng)
    before = {oid: sim.get_order(oid) for oid in plan.expected_verbs()}
    ref = lambda ids: [f"{VENDOR}:{oid}" for oid in ids]  # noqa: E731
    commands = [
        ("update", plan.update_reject, ["--comment", COMMENT_UPDATE, "--data", f"Budget={BUDGET}"]),
        ("approve", plan.approve, []),
        ("reject", plan.reject + plan.update_reject, []),   # after each order's update
        ("approve", plan.approve_comment, ["--comment", COMMENT_APPROVE]),
        ("submit", plan.submit, []),
    ]
    for kind, ids, options in commands:
        result = await arun_cli("--config", str(config), kind, *ref(ids), *options, env=env,
                                timeout=60)
        assert result.returncode == 0, result
        queued = [line for line in result.stdout.splitlines() if line.startswith("queued action #")]
        assert len(queued) == len(ids), result
    queue = read_actions(ledger_path)
    assert len(queue) == ACTIONS and {a.state for a in queue} == {ActionState.PENDING}

    # ---- faults that hit the verbs: answers lost after the change, drops, 503, 429
    sim.faults.random(FAULTS, seed=SEED)
    for verb in ("APPROVE", "REJECT", "SUBMIT", "PATCH"):
        sim.faults.add("status", status=503, method=verb, times=2, retry_after=None)
    sim.faults.add("status", status=429, method="APPROVE", times=2, retry_after="0")

    # ---- kill -9 at random moments, restart, until drained or out of rounds
    verb_requests = VerbCount(sim)
    span = max(2, round(2.4 * ACTIONS / max(1, ROUNDS)))
    rounds: list[dict] = []
    for number in range(ROUNDS):
        left = [a for a in read_actions(ledger_path) if a.state is not ActionState.SUCCEEDED]
        if not left:
            break
        log = tmp_path / f"daemon-{number:03d}.log"
        tries_before = {a.id: a.attempts for a in left}
        verbs_before = verb_requests()
        proc = await start_daemon(config, env, log)
        if rng.random() < 0.75:
            target = rng.randint(1, span)
            how = f"{target} verbs in"
            # ... or sooner when the verbs stop coming (the queue is nearly drained)
            seen, quiet_since, quiet_s = 0, time.monotonic(), 3.0
            while seen < target and proc.returncode is None:
                now_seen = verb_requests() - verbs_before
                if now_seen != seen:
                    seen, quiet_since, quiet_s = now_seen, time.monotonic(), 1.0
                elif time.monotonic() - quiet_since > quiet_s:
                    break
                await asyncio.sleep(0.001)
            await asyncio.sleep(rng.uniform(0, 0.006))
        else:
            pause = rng.uniform(0.1, 0.8)
            how = f"{pause:.2f}s in"
            await asyncio.sleep(pause)
        assert proc.returncode is None, f"round {number}: the daemon exited on its own " \
            f"({proc.returncode}):\n{tail(log)}"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        after = read_actions(ledger_path)
        rounds.append({
            "how": how, "verbs": verb_requests() - verbs_before,
            # in flight at the kill, started by this very process (not left from before)
            "in_flight": sum(a.state is ActionState.IN_FLIGHT
                             and a.attempts > tries_before.get(a.id, 0) for a in after),
            "succeeded": sum(a.state is ActionState.SUCCEEDED for a in after),
        })

    # ---- one last, undisturbed run drains the rest and stops cleanly on SIGTERM
    log = tmp_path / "daemon-final.log"
    proc = await start_daemon(config, env, log)
    await wait_started(proc, log)
    deadline = time.monotonic() + 30 + 0.1 * ACTIONS
    while time.monotonic() < deadline and proc.returncode is None:
        states = Counter(a.state for a in read_actions(ledger_path))
        if not (states[ActionState.PENDING] or states[ActionState.IN_FLIGHT]):
            break
        await asyncio.sleep(0.1)
    assert proc.returncode is None, f"the final run exited on its own:\n{tail(log)}"
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 15)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"the daemon did not stop on SIGTERM:\n{tail(log)}") from None
    assert proc.returncode == 0, tail(log)
    sim.faults.clear()

    # ---- the outbox: every action succeeded, none open, none given up on
    ledger = Ledger(ledger_path)
    try:
        actions = ledger.outbox.list()
        attempts = {a.id: ledger.outbox.attempts(a.id) for a in actions}
        copies = {oid: ledger.order(VENDOR, oid)
                  for oid in [*plan.expected_verbs(), *plan.untouched]}
    finally:
        ledger.close()
    states = Counter(a.state.value for a in actions)
    report = (f"{ACTIONS} actions, {len(rounds)} kill rounds {rounds}, final states {dict(states)},"
              f" {len(sim.effects)} effects")
    assert states == {"succeeded": ACTIONS}, report + "\n" + "\n".join(
        f"#{a.id} {a.kind} {a.target} {a.state.value} after {a.attempts}: {a.last_error}"
        for a in actions if a.state is not ActionState.SUCCEEDED)

    # ---- the simulator's log: each action's verb exactly once, in order, nothing else
    expected = plan.expected_verbs()
    effects: dict[str, list[str]] = defaultdict(list)
    for effect in sim.effects:
        effects[effect.order_id].append(effect.verb)
    wrong = {oid: (effects.get(oid, []), verbs) for oid, verbs in expected.items()
             if effects.get(oid, []) != verbs}
    assert not wrong, f"orders whose effects (seen, asked) differ: {wrong}\n{report}"
    stray = sorted(set(effects) - set(expected))
    assert not stray, f"effects on orders no action named: {stray}"
    assert len(sim.effects) == ACTIONS
    by_order = {(a.vendor_id, a.kind) for a in actions}
    assert len(by_order) == ACTIONS  # one action per (order, kind): the log maps onto them

    # ---- each order ends as asked, items and custom data kept, the ledger agrees
    problems = []
    for oid in expected:
        now_ = sim.get_order(oid)
        if now_["state"] != plan.expected_state(oid):
            problems.append(f"{oid}: {now_['state']}, asked {plan.expected_state(oid)}")
        items, data = items_and_data(now_)
        old_items, old_data = items_and_data(before[oid])
        if oid in plan.update_reject:
            budget = next(f["id"] for f in sim.config["orderFields"] if f["label"] == "Budget")
            old_data = {**old_data, budget: BUDGET}
            if now_["adminComment"] != COMMENT_UPDATE:
                problems.append(f"{oid}: comment {now_['adminComment']!r}")
        if oid in plan.approve_comment and now_["adminComment"] != COMMENT_APPROVE:
            problems.append(f"{oid}: comment {now_['adminComment']!r}")
        if (items, data) != (old_items, old_data):
            problems.append(f"{oid}: items or custom data changed: {before[oid]} -> {now_}")
    for oid in plan.untouched:
        if sim.get_order(oid) != copies[oid]["raw"]:
            problems.append(f"{oid}: untouched, but the ledger or the simulator changed it")
    for oid, copy in copies.items():
        vendor = sim.get_order(oid)
        if copy["vendor_state"] != vendor["state"] or copy["raw"] != vendor:
            problems.append(f"{oid}: the ledger holds {copy['vendor_state']} modified"
                            f" {copy['raw']['modified']}, the simulator {vendor['state']}"
                            f" modified {vendor['modified']}")
    assert not problems, "\n".join(problems)

    # ---- and the run really was crashy: kills mid-action, lost answers, verified retries
    kills_in_flight = sum(1 for r in rounds if r["in_flight"])
    lost = [r for r in sim.requests if r.method in MUTATING and r.status == 0]
    verified = [a for a in actions if (a.result or {}).get("verified")]
    retried = [a for a in actions if a.attempts > 1]
    logged_twice = [i for i, rows in attempts.items() if len({r["number"] for r in rows}) > 1]
    assert len(rounds) >= min(ROUNDS, 3), report
    assert kills_in_flight >= max(1, len(rounds) // 4), report
    assert lost and verified and retried and logged_twice, report
    # every HTTP attempt the ledger kept is a real request the simulator saw
    assert all(row["request"].split()[0] in {"GET", *MUTATING}
               for rows in attempts.values() for row in rows)
    assert time.monotonic() - started < 60 + 2 * ROUNDS + 0.3 * ACTIONS, report
    print(report + f"; {kills_in_flight} kills left an action in flight, {len(lost)} verb"
          f" answers lost, {len(verified)} actions confirmed by verification,"
          f" {time.monotonic() - started:.1f}s")


# ------------------------------------------------------------------ pull beside push

async def test_a_poll_beside_an_action_never_writes_back_an_older_copy(fotoware, tmp_path):
    """The daemon polls and pushes at once: the ledger must end with the vendor's last word."""
    sim = await fotoware(orders=200, clock=time.time)
    config = fotoware_config(sim, tmp_path / "ledger.db", poll_interval_s=3600)
    async with Service(config, handle_signals=False) as service:
        await service.run_once()
    # Eight old pending orders are rejected behind the ledger's back: the next poll finds
    # them gone from the pending list and reads each one (slowly, here) to learn its state.
    departed = [oid for oid in sim.order_ids() if sim.get_order(oid)["state"] == "pending"][-8:]
    for oid in departed:
        sim.set_state(oid, "rejected")
    sim.faults.add("delay", method="GET", path_prefix="/fotoweb/orders/1", delay_s=0.3, times=50)
    service = Service(config, handle_signals=False)
    await service.open()
    daemon = asyncio.create_task(service.run())
    try:
        read = lambda: [r.path.rsplit("/", 1)[-1] for r in sim.requests  # noqa: E731
                        if r.method == "GET" and r.path.rsplit("/", 1)[-1] in departed]
        give_up = time.monotonic() + 10
        while not read() and time.monotonic() < give_up:
            await asyncio.sleep(0.005)
        if not read():
            pytest.fail("set-up: the poll never read the departed orders")
        target = read()[0]   # the poll holds its copy ("rejected") while it reads the others
        [(action, _)] = await enqueue(config, "approve", [(VENDOR, target)], {})
        give_up = time.monotonic() + 10
        while time.monotonic() < give_up and (len(read()) < len(departed) or not sim.effects):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)                # the poll's page is written
    finally:
        service.stop()
        await daemon
        await service.close()
    # (set-up checks fail with pytest.fail, not AssertionError: only the last two may xfail)
    ledger = Ledger(tmp_path / "ledger.db")
    try:
        outcome = ledger.outbox.get(action.id).state
        order = ledger.order(VENDOR, target)
    finally:
        ledger.close()
    if [(e.verb, e.order_id) for e in sim.effects] != [("APPROVE", target)] or (
            outcome is not ActionState.SUCCEEDED):
        pytest.fail(f"set-up: the approval did not go through once ({outcome}, {sim.effects})")
    moves = [(e["source"], e["from_vendor_state"], e["to_vendor_state"]) for e in order["events"]]
    assert order["vendor_state"] == sim.get_order(target)["state"] == "approved", moves
    assert ("poll", "approved", "rejected") not in moves
