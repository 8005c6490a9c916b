"""The fault matrix for the reseller API V3: kill -9 while drafts are created, filled and
checked out under every fault class at once, the vendor's 403 rate limit included: no
draft, item, field, characteristic or checkout doubled or lost.

The fault-matrix crash test (tests/test_crash_actions.py) extended to the reseller. Existing
drafts get items added and deleted, custom fields and item characteristics set; new drafts
are created for two accounts (several for each). A real ``ordersync run`` drains the queue
against the simulator with every fault class of crash_support.FAULTS switched on together,
plus 403 "Rate limit exceeded" answers (at random and from the simulator's own sliding
window), and is killed with SIGKILL at random moments, round after round; an undisturbed
run drains what is left and stops on SIGTERM. That happens twice: in the second phase the
drafts created in the first get items and custom fields, and some of the first phase's
drafts are checked out (an action is checked against the ledger's copy when queued, so an
item or a draft must be known before an action can name it). A ``sync --once`` without
faults follows.

Actions are queued by :func:`queue_steps`, one order's steps in order through the
``enqueue`` API (the reseller has no commands yet); it is the one place to change when the
command line can queue a chain "create draft -> add items -> check out".

What the adapter promises (docs/actions.md, "Reseller API V3"): a create is ``uncertain``
only when two or more new drafts for its account appeared since its checkpoint. Creates for
one account wait for each other in the outbox (they share the placeholder order id), and
nobody else creates drafts here, so every action must end ``succeeded``.

The proof comes from the simulator's own log of applied changes (``sim.effects``): each
action took effect exactly once and in order, each create made exactly one draft (the one
its result names), no other order was touched, each order ends with the items, fields,
characteristics and status asked for, and the ledger's copy of each agrees.

Short by default (CI); longer on demand::

    ORDERSYNC_CRASH_ACTIONS=150 ORDERSYNC_CRASH_ROUNDS=40 pytest tests/test_crash_reseller.py

``ORDERSYNC_CRASH_SEED`` changes the seeded choices (orders, values, faults, kill points).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ordersync.actions import enqueue
from ordersync.config import load_config
from ordersync.model import ActionState
from ordersync.simkit import WRITE_METHODS
from ordersync_adapters.reseller.simulator import ACCOUNTS, PRODUCTS, ResellerSimulator
from tests.cli_support import toml_str
from tests.crash_support import (
    DAEMON_SETTINGS,
    FAULTS,
    ROUNDS,
    SEED,
    SLOW_S,
    CrashRun,
    RequestCount,
    assert_effects_as_asked,
    read_after_failed,
    switch_faults_on,
)
from tests.outbox_support import read_actions, read_orders, read_outbox
from tests.simulator_support import loopback_simulators

ACTIONS = int(os.environ.get("ORDERSYNC_CRASH_ACTIONS", "24"))

VENDOR = "rs"
SECRET_ENV, PASSWORD_ENV = "ORDERSYNC_TEST_RS_SECRET", "ORDERSYNC_TEST_RS_PASSWORD"
CREATE_ACCOUNTS = (0, 1)         # new drafts for two accounts, several for each
CREATES = max(2, ACTIONS // 8)
UNTOUCHED = 3                    # drafts with items that no action names
RATE_LIMIT = (30, 1.0)           # while faults are on: 403 beyond 30 requests a second
SETTINGS = DAEMON_SETTINGS.replace("\nmax_attempts = 2\n", "\nmax_attempts = 4\n")
"""The other crash tests' settings, but a read is tried four times, not twice: an action here
reads the order, its items, each item's characteristics and its custom fields (five to eight
requests where Fotoware and Pwinty need one or two)."""
RESELLER_FAULTS = ",".join(f"{name}:{float(p) / 2:g}" for name, p in
                           (entry.split(":") for entry in (FAULTS + ",403:0.06").split(",")))
"""Every fault class of the other crash tests and the vendor's 403 rate limit, each at half
the rate per request: an action makes several times as many requests here."""
DRAIN_S_PER_ACTION = 1.5         # several reads an action, each under faults and a rate limit
VERBS = {"add_item": "ADD_ITEM", "delete_item": "DELETE_ITEM", "checkout": "CHECKOUT",
         "set_custom_fields": "SET_FIELDS", "set_characteristics": "SET_CHARACTERISTICS",
         "create_draft": "CREATE"}

# phase 1 steps on an existing draft with two items, and whether phase 2 checks it out
SHAPES = {
    "add+checkout": (("add",), True),
    "fields+chars": (("fields", "chars"), False),
    "delete+add+checkout": (("delete", "add"), True),
    "chars+delete+fields+checkout": (("chars", "delete", "fields"), True),
    "add+add": (("add", "add"), False),
}


@dataclass
class Step:
    kind: str
    params: dict


@dataclass
class Plan:
    """One order's actions and what the order must look like afterwards."""

    oid: str
    shape: str
    steps: list[Step] = field(default_factory=list)    # every phase's, in order
    items: Counter = field(default_factory=Counter)    # (productId, quantity) expected
    fields: dict = field(default_factory=dict)         # custom field name -> value
    chars: dict = field(default_factory=dict)          # (item id, code) -> value
    checkout: bool = False

    def effects(self) -> list[str]:
        return [VERBS[s.kind] for s in self.steps]


def fill(plan: Plan, step_names, sim: ResellerSimulator, rng: random.Random,
         tag: str) -> list[Step]:
    """Steps for ``plan``'s order from names (add, delete, fields, chars); the plan learns
    what the order must hold after them."""
    oid = int(plan.oid)
    item_ids = sorted(sim.items[oid])
    steps = []
    for number, name in enumerate(step_names):
        value = f"{tag}-{plan.oid}-{number}-{rng.randrange(10**6)}"
        if name == "add":
            product, quantity = rng.choice(PRODUCTS)[0], rng.randint(1, 4)
            plan.items[(product, quantity)] += 1
            steps.append(Step("add_item", {"product_id": product, "quantity": quantity}))
        elif name == "delete":   # the last item; characteristics are set on the first
            item = sim.items[oid][item_ids[-1]]
            plan.items[(item["productId"], item["quantity"])] -= 1
            steps.append(Step("delete_item", {"item_id": str(item_ids[-1])}))
        elif name == "fields":
            field_name = rng.choice(("PO Number", "Cost Centre"))
            plan.fields[field_name] = value
            steps.append(Step("set_custom_fields", {"fields": {field_name: value}}))
        else:
            codes = rng.sample(["domain", "tenant"], rng.randint(1, 2))
            values = {code: f"{value}-{code}" for code in codes}
            plan.chars.update({(item_ids[0], c): v for c, v in values.items()})
            steps.append(Step("set_characteristics",
                              {"item_id": str(item_ids[0]), "values": values}))
    plan.steps += steps
    return steps


async def queue_steps(config, vendor_id: str | None, steps: list[Step], tag: str) -> list:
    """Queue one order's steps in order (``vendor_id`` None: a new draft); the actions.

    The one place that queues: when the command line can queue a chain (create draft ->
    add items -> check out), this becomes one call of it.
    """
    queued = []
    for number, step in enumerate(steps):
        [(action, new)] = await enqueue(config, step.kind, [(VENDOR, vendor_id)], step.params,
                                        key=f"crash-{tag}-{number}")
        assert new, (tag, step)
        queued.append(action)
    return queued


def reseller_toml(sim: ResellerSimulator, ledger) -> str:
    return (f"[ledger]\npath = {toml_str(ledger)}\n\n"
            f"[vendors.{VENDOR}]\nadapter = \"reseller\"\n"
            f"base_url = {toml_str(sim.base_url)}\n"
            f"client_key = \"{sim.client_key}\"\n"
            f"client_secret_env = \"{SECRET_ENV}\"\n"
            f"username = \"{sim.username}\"\n"
            f"password_env = \"{PASSWORD_ENV}\"\n"
            "rate_limit = { requests = 1000, per_s = 1 }\nbackoff_base_s = 0.05\n"
            + SETTINGS)


def state_problems(plan: Plan, sim: ResellerSimulator) -> list[str]:
    """How the simulator's order differs from what ``plan`` asked for."""
    oid = int(plan.oid)
    order, items = sim.orders.get(oid), sim.items.get(oid, {})
    if order is None:
        return [f"{plan.oid}: gone from the simulator"]
    problems = []
    held = Counter((i["productId"], i["quantity"]) for i in items.values())
    if held != +plan.items:
        problems.append(f"{plan.oid} ({plan.shape}): items {dict(held)}, asked {dict(+plan.items)}")
    values = {f["name"]: f["value"] for f in sim.custom_fields[oid]}
    wrong = {k: (values.get(k), v) for k, v in plan.fields.items() if values.get(k) != v}
    for (iid, code), value in plan.chars.items():
        have = {c["code"]: c["value"] for c in items.get(iid, {}).get("characteristics", [])}
        if have.get(code) != value:
            wrong[f"{iid}/{code}"] = (have.get(code), value)
    if wrong:
        problems.append(f"{plan.oid} ({plan.shape}): (held, asked) {wrong}")
    status = "Submitted" if plan.checkout else "Draft"
    if order["status"] != status:
        problems.append(f"{plan.oid} ({plan.shape}): {order['status']}, asked {status}")
    return problems


def disagreements(copies: dict[str, dict | None], sim: ResellerSimulator) -> list[str]:
    """Orders whose ledger copy differs from the simulator in status or items."""
    problems = []
    for oid, copy in copies.items():
        held = copy and (copy["vendor_state"], sorted(i["key"] for i in copy["items"]))
        truth = (sim.orders[int(oid)]["status"], sorted(str(i) for i in sim.items[int(oid)]))
        if held != truth:
            problems.append(f"{oid}: the ledger holds {held}, the simulator {truth}")
    return problems


async def test_kill_9_while_drafts_are_made_filled_and_checked_out_each_exactly_once(tmp_path):
    started = time.monotonic()
    rng = random.Random(SEED)
    async with loopback_simulators(ResellerSimulator, time.time) as start:
        sim = await start(orders=12, seed=SEED % 1000)
        untouched = [str(sim.add_order(items=2, account=n)) for n in range(UNTOUCHED)]
        plans: list[Plan] = []
        while sum(len(SHAPES[p.shape][0]) + SHAPES[p.shape][1] for p in plans) \
                < ACTIONS - 2 * CREATES:
            shape = list(SHAPES)[len(plans) % len(SHAPES)]
            oid = str(sim.add_order(items=2, account=len(plans)))
            plan = Plan(oid, shape, checkout=SHAPES[shape][1])
            plan.items.update((i["productId"], i["quantity"]) for i in sim.items[int(oid)].values())
            plans.append(plan)
        ledger = tmp_path / "ledger.db"
        config_path = tmp_path / "ordersync.toml"
        config_path.write_text(reseller_toml(sim, ledger), encoding="utf-8")
        env = {SECRET_ENV: sim.client_secret, PASSWORD_ENV: sim.password}
        config = load_config(config_path, env)
        crash = CrashRun(config_path, env, tmp_path, rng, RequestCount(sim, WRITE_METHODS),
                         "writes", ACTIONS, drain_s_per_action=DRAIN_S_PER_ACTION)
        untouched_before = {oid: (dict(sim.orders[int(oid)]), repr(sim.items[int(oid)]))
                            for oid in untouched}

        async def run_phase(phase: int, rounds: int) -> Counter:
            seen = len(sim.requests)
            switch_faults_on(sim, SEED + phase, WRITE_METHODS)
            sim.faults.random(RESELLER_FAULTS, seed=SEED + phase, delay_s=SLOW_S)
            for method in WRITE_METHODS:   # and on the first writes, whatever the draw:
                sim.faults.add("status", status=403, method=method, times=1)
                sim.faults.add("apply_then_drop", method=method, times=1)   # a lost answer
            sim.rate_limit = RATE_LIMIT
            await crash.kill_rounds(rounds, phase)
            await crash.drain(phase)
            sim.faults.clear()
            sim.rate_limit = None
            not_done = [a for a in read_actions(ledger) if a.state is not ActionState.SUCCEEDED]
            assert not not_done, f"phase {phase}: " + "\n".join(
                f"#{a.id} {a.kind} {a.target} {a.state.value} after {a.attempts}: {a.last_error}"
                for a in not_done) + f"\nrounds: {crash.rounds}"
            return Counter(r.fault for r in sim.requests[seen:] if r.fault)

        # ---- phase 1: items added and deleted, fields and characteristics set, new drafts
        await crash.cli("sync", "--once")
        for plan in plans:
            await queue_steps(config, plan.oid, fill(plan, SHAPES[plan.shape][0], sim, rng, "p1"),
                              f"p1-{plan.oid}")
        accounts = [ACCOUNTS[CREATE_ACCOUNTS[n % len(CREATE_ACCOUNTS)]][0] for n in range(CREATES)]
        creates = []
        for number, account in enumerate(accounts):
            creates += await queue_steps(config, None, [Step("create_draft",
                                                             {"account_id": account})],
                                         f"create-{number}")
        assert {a.state for a in read_actions(ledger)} == {ActionState.PENDING}
        faults = await run_phase(1, ROUNDS // 2)

        # ---- phase 2: the new drafts get items and fields; some drafts are checked out
        await crash.cli("sync", "--once")
        done = {a.id: a for a in read_actions(ledger)}
        made = [Plan(done[a.id].result["order_id"], "created") for a in creates]
        for plan in made:
            await queue_steps(config, plan.oid, fill(plan, ("add", "fields"), sim, rng, "p2"),
                              f"p2-{plan.oid}")
        for plan in plans:
            if plan.checkout:
                plan.steps.append(Step("checkout", {}))
                await queue_steps(config, plan.oid, [Step("checkout", {})], f"co-{plan.oid}")
        faults.update(await run_phase(2, ROUNDS - ROUNDS // 2))
        await crash.cli("sync", "--once")

    # ---- the outbox: every action succeeded
    actions, attempts = read_outbox(ledger)
    rounds = crash.rounds
    states = Counter(a.state.value for a in actions)
    report = (f"{len(actions)} actions ({CREATES} creates) on {len(plans) + len(made)} orders,"
              f" {len(rounds)} kill rounds {rounds}, final states {dict(states)},"
              f" {len(sim.effects)} effects, faults {dict(faults)},"
              f" {sim.rate_limited} rate limited by the window")
    assert states == {"succeeded": len(actions)}, report

    # ---- each create made exactly one draft, the one its result names; no other was made
    made_by_sim = [e for e in sim.effects if e.verb == "CREATE"]
    assert sorted(str(e.order_id) for e in made_by_sim) == sorted(p.oid for p in made), report
    assert Counter(e.body["accountId"] for e in made_by_sim) == Counter(accounts), report
    assert len({p.oid for p in made}) == CREATES, report

    # ---- the simulator's log: each action's effect exactly once, in order, nothing else
    effects: dict[str, list[str]] = defaultdict(list)
    for effect in sim.effects:
        if effect.verb != "CREATE":
            effects[str(effect.order_id)].append(effect.verb)
    everyone = {p.oid: p for p in [*plans, *made]}
    assert_effects_as_asked(effects, {oid: p.effects() for oid, p in everyone.items()}, report)

    # ---- each order as asked, untouched ones untouched, the ledger agrees
    problems = [line for p in everyone.values() for line in state_problems(p, sim)]
    for oid in untouched:
        if (sim.orders[int(oid)], repr(sim.items[int(oid)])) != untouched_before[oid]:
            problems.append(f"{oid}: untouched, but the simulator changed it")
    problems += disagreements(read_orders(ledger, VENDOR, [*everyone, *untouched]), sim)
    assert not problems, "\n".join(problems) + "\n" + report

    # ---- and the run really was crashy, rate limits included
    kills_in_flight, lost, verified = crash.assert_crashy(sim, actions, attempts,
                                                          min(ROUNDS, 4), report)
    limited = [r for r in sim.requests if r.status == 403]
    assert limited, report
    elapsed = time.monotonic() - started
    print(report + f"; {kills_in_flight} kills left an action in flight, {len(lost)} write"
          f" answers lost, {len(limited)} answered 403 rate limited, {len(verified)} actions"
          f" confirmed by verification ({dict(Counter(a.kind for a in verified))}),"
          f" {read_after_failed(actions)} done though the read after the write failed,"
          f" {elapsed:.1f}s")
