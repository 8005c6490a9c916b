"""The fault matrix for Pwinty: kill -9 while photo additions and submissions drain under
every fault class at once: no photo added twice, no submit lost.

The fault-matrix crash test (tests/test_crash_actions.py) extended to Pwinty. Draft print orders
get photos through the real command line (``photos add`` by one URL, by a batch of URLs, by
uploading a JPEG), some are then cancelled, and once every photo is in and downloaded, some
lose a photo (``photos remove``) and are submitted (``submit``). A real ``ordersync run``
drains the queue against the simulator with every fault class of crash_support.FAULTS
switched on together (answers lost, cut short or a 502 page after the change, garbled
answers, dropped connections, 503 and 429 with Retry-After, slow writes that land after the
client gave up, reads after a write that fail for good). The process is killed with SIGKILL at
random moments (most often a few milliseconds after the simulator saw its n-th write, so that an
action is in flight) and started again, round after round; an undisturbed run then drains
what is left and stops on SIGTERM, and a ``sync --once`` without faults follows. That
happens twice: once for the photos and
cancellations, once for the removals and submissions.

Submissions are queued in the second phase on purpose: Pwinty refuses to submit an order
whose photos are not downloaded yet (SubmissionStatus says NoImageFile), and the submit
action asks SubmissionStatus first and fails rather than send a doomed request.

The proof comes from the simulator's own log of applied changes (``sim.effects``): every
action took effect exactly once and in the order given (each photo action added its photos
once, each submission and cancellation changed the status once), no order without an action
was touched, every action ended ``succeeded`` (none pending, in flight, uncertain, dead or
failed), each order ends with exactly the photos asked for and in the status asked for, and
the ledger's copy of each order agrees with the simulator.

Short by default (CI); longer on demand::

    ORDERSYNC_CRASH_ACTIONS=300 ORDERSYNC_CRASH_ROUNDS=60 pytest tests/test_crash_pwinty.py

``ORDERSYNC_CRASH_SEED`` changes the seeded choices (orders, photos, faults, kill points);
the kill timing is random by nature, and the assertions hold whatever it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ordersync.actions import enqueue
from ordersync.daemon import Service
from ordersync.model import ActionState
from ordersync.simkit import WRITE_METHODS
from ordersync_adapters.pwinty.simulator import POSTAL_ADDRESS
from tests.cli_support import KEY_ENV, pwinty_toml
from tests.conftest import pwinty_config
from tests.crash_support import (
    DAEMON_SETTINGS,
    ROUNDS,
    SEED,
    CrashRun,
    RequestCount,
    assert_effects_as_asked,
    fault_counts,
    read_after_failed,
    service_running,
    switch_faults_on,
)
from tests.outbox_support import open_ledger, read_actions, read_orders, read_outbox

ACTIONS = int(os.environ.get("ORDERSYNC_CRASH_ACTIONS", "32"))

VENDOR = "prints"
TYPES = ("4x6", "5x7", "8x10", "10x15_cm")
JPEG_MAGIC = b"\xff\xd8\xff\xe0"
UNTOUCHED = 6            # drafts with photos that no action names: nothing may touch them
DOWNLOAD_DELAY_S = 0.2
ENQUEUE_AT_ONCE = 6      # CLI enqueue commands run side by side (start-up dominates each)
CREATES = max(2, ACTIONS // 8)   # new print orders: an unanswered one may end uncertain

# shape: (photo commands, cancelled in phase 1, a photo removed in phase 2, submitted)
SHAPES = {
    "url+submit": (("url",), False, False, True),
    "batch+remove+submit": (("batch",), False, True, True),
    "upload+url+submit": (("file", "url"), False, False, True),
    "batch+upload+cancel": (("batch", "file"), True, False, False),
    "cancel": ((), True, False, False),
    "batch+remove": (("batch",), False, True, False),
}


@dataclass
class Photo:
    """What one photo must look like at Pwinty: its url (or the md5 of its upload)."""

    source: str
    type: str
    copies: int


@dataclass
class PhotoCommand:
    verb: str                 # the effect it must cause: ADD_PHOTO or ADD_PHOTOS
    args: list[str]           # ``ordersync photos add ...`` after the order reference
    photos: list[Photo]


@dataclass
class OrderPlan:
    oid: str
    shape: str
    commands: list[PhotoCommand] = field(default_factory=list)
    removed: Photo | None = None       # chosen in phase 2

    @property
    def cancel(self) -> bool:
        return SHAPES[self.shape][1]

    @property
    def remove(self) -> bool:
        return SHAPES[self.shape][2]

    @property
    def submit(self) -> bool:
        return SHAPES[self.shape][3]

    @property
    def action_count(self) -> int:
        return len(self.commands) + self.cancel + self.remove + self.submit

    def expected_effects(self) -> list[str]:
        effects = [c.verb for c in self.commands]
        effects += ["STATUS Cancelled"] * self.cancel + ["DELETE_PHOTO"] * self.remove
        return effects + ["STATUS Submitted"] * self.submit

    def expected_photos(self) -> Counter:
        photos = Counter((p.source, p.type, p.copies) for c in self.commands for p in c.photos)
        if self.removed is not None:
            photos[(self.removed.source, self.removed.type, self.removed.copies)] -= 1
        return +photos

    def expected_status(self) -> tuple[str, ...]:
        if self.cancel:
            return ("Cancelled",)
        return ("Submitted", "Complete") if self.submit else ("NotYetSubmitted",)


def make_plan(sim, actions: int, rng: random.Random, folder: Path) -> list[OrderPlan]:
    """New draft orders, each with a shape, cycling through the shapes until ``actions``."""
    plans: list[OrderPlan] = []
    shapes = list(SHAPES)
    while sum(p.action_count for p in plans) < actions:
        shape = shapes[len(plans) % len(shapes)]
        oid = sim.add_order("NotYetSubmitted")
        order = sim.get_order(oid)
        assert all(order[name] for name in POSTAL_ADDRESS), order   # a complete address
        plan = OrderPlan(oid, shape)
        for number, source in enumerate(SHAPES[shape][0]):
            kind, copies = rng.choice(TYPES), rng.randint(1, 3)
            options = ["--type", kind, "--copies", str(copies)]
            if source == "file":
                image = folder / f"photo-{oid}-{number}.jpg"
                content = JPEG_MAGIC + rng.randbytes(rng.randint(200, 3000))
                image.write_bytes(content)
                photo = Photo(hashlib.md5(content).hexdigest(), kind, copies)
                plan.commands.append(PhotoCommand("ADD_PHOTO", ["--file", str(image), *options],
                                                  [photo]))
                continue
            count = 1 if source == "url" else rng.randint(2, 3)
            urls = [f"https://photos.example.com/crash/{oid}/{number}-{n}-{rng.randrange(10**6)}"
                    ".jpg" for n in range(count)]
            plan.commands.append(PhotoCommand(
                "ADD_PHOTO" if count == 1 else "ADD_PHOTOS",
                [arg for url in urls for arg in ("--url", url)] + options,
                [Photo(url, kind, copies) for url in urls]))
        plans.append(plan)
    return plans


def open_create(action) -> bool:
    """A create left uncertain: Pwinty v2.2 cannot tell whether an unanswered one landed."""
    return action.kind == "create" and action.state is ActionState.UNCERTAIN


def photo_key(photo: dict) -> tuple[str, str, int]:
    return (photo["url"] or photo["md5Hash"], photo["type"], int(photo["copies"]))


def disagreements(copies: dict[str, dict], sim) -> list[str]:
    """Orders whose ledger copy differs from the simulator in status or photos."""
    problems = []
    for oid, copy in copies.items():
        vendor = sim.get_order(oid)
        held = copy and (copy["vendor_state"], [i["key"] for i in copy["items"]])
        truth = (vendor["status"], [str(p["id"]) for p in vendor["photos"]])
        if held != truth:
            problems.append(f"{oid}: the ledger holds {held}, the simulator {truth}")
    return problems


async def test_kill_9_while_photos_and_submissions_drain_each_exactly_once(pwinty, tmp_path):
    started = time.monotonic()
    rng = random.Random(SEED)
    sim = await pwinty(orders=20, clock=time.time, download_delay_s=DOWNLOAD_DELAY_S,
                       complete_after_s=3600, seed=SEED % 1000)
    untouched = [sim.add_order("NotYetSubmitted", photos=1) for _ in range(UNTOUCHED // 2)]
    plans = make_plan(sim, ACTIONS, rng, tmp_path)
    untouched += [sim.add_order("NotYetSubmitted", photos=1) for _ in range(UNTOUCHED // 2)]
    by_id = {p.oid: p for p in plans}
    total = sum(p.action_count for p in plans)
    ledger_path = tmp_path / "ledger.db"
    config = tmp_path / "ordersync.toml"
    config.write_text(pwinty_toml(sim.base_url, ledger_path, extra=DAEMON_SETTINGS),
                      encoding="utf-8")
    crash = CrashRun(config, {KEY_ENV: sim.api_key}, tmp_path, rng,
                     RequestCount(sim, WRITE_METHODS), "writes", total)
    untouched_before = {oid: sim.get_order(oid) for oid in untouched}
    limit = asyncio.Semaphore(ENQUEUE_AT_ONCE)

    async def queue_in_order(commands: list[list[str]]) -> None:
        """One order's commands, one after the other (the outbox keeps their order)."""
        for args in commands:
            async with limit:
                result = await crash.cli(*args)
            queued = [line for line in result.stdout.splitlines()
                      if line.startswith("queued action #")]
            assert len(queued) == 1, result

    async def drain(phase: int) -> None:
        """One undisturbed run drains the rest; every action has succeeded by then."""
        await crash.drain(phase)
        not_done = [a for a in read_actions(ledger_path)
                    if a.state is not ActionState.SUCCEEDED and not open_create(a)]
        assert not not_done, f"phase {phase}: " + "\n".join(
            f"#{a.id} {a.kind} {a.target} {a.state.value} after {a.attempts}: {a.last_error}"
            for a in not_done) + f"\nrounds: {crash.rounds}"

    # ---- phase 1: new print orders, photos by url, by batch and by upload, cancellations
    await crash.cli("sync", "--once")
    recipients = [f"Fault Matrix {n}" for n in range(CREATES)]
    await asyncio.gather(*(queue_in_order([
        ["photos", "add", f"{VENDOR}:{p.oid}", *c.args] for c in p.commands]) for p in plans),
        *(queue_in_order([["print-order", "create", VENDOR, "--recipient", name, "--address1",
                           "1 Test Street", "--town", "London", "--postcode", "SW1A 1AA",
                           "--country", "GB", "--quality", "Pro"]]) for name in recipients))
    cancels = [f"{VENDOR}:{p.oid}" for p in plans if p.cancel]
    result = await crash.cli("cancel", *cancels)
    assert result.stdout.count("queued action #") == len(cancels), result
    queue = read_actions(ledger_path)
    phase1 = sum(len(p.commands) + p.cancel for p in plans) + CREATES
    assert len(queue) == phase1 and {a.state for a in queue} == {ActionState.PENDING}
    assert Counter(a.kind for a in queue) == Counter(
        [{"ADD_PHOTO": "add_photo", "ADD_PHOTOS": "add_photos"}[c.verb]
         for p in plans for c in p.commands] + ["cancel"] * len(cancels) + ["create"] * CREATES)

    switch_faults_on(sim, SEED, ("POST", "DELETE"))
    await crash.kill_rounds(ROUNDS // 2, 1)
    await drain(1)
    faults = Counter(fault_counts(sim))
    sim.faults.clear()

    # ---- between the phases: every photo is in and downloaded
    await asyncio.sleep(DOWNLOAD_DELAY_S)
    stale_after_phase1 = disagreements(read_orders(ledger_path, VENDOR, by_id), sim)
    await crash.cli("sync", "--once")
    assert not disagreements(read_orders(ledger_path, VENDOR, by_id), sim)
    for plan in plans:
        photos = sim.get_order(plan.oid)["photos"]
        assert all(p["status"] == "Ok" for p in photos), (plan.oid, photos)

    # ---- phase 2: remove a photo from some orders, then submit some
    removals = []
    for plan in plans:
        if plan.remove:
            copy = read_orders(ledger_path, VENDOR, [plan.oid])[plan.oid]
            item = rng.choice(copy["items"])
            [photo] = [p for p in sim.get_order(plan.oid)["photos"] if str(p["id"]) == item["key"]]
            plan.removed = Photo(*photo_key(photo))
            removals.append(["photos", "remove", f"{VENDOR}:{plan.oid}", item["key"]])
    await asyncio.gather(*(queue_in_order([args]) for args in removals))
    submits = [f"{VENDOR}:{p.oid}" for p in plans if p.submit]
    result = await crash.cli("submit", *submits)
    assert result.stdout.count("queued action #") == len(submits), result
    assert len(read_actions(ledger_path)) == total + CREATES

    seen = len(sim.requests)
    switch_faults_on(sim, SEED + 1, ("POST", "DELETE"))
    await crash.kill_rounds(ROUNDS - ROUNDS // 2, 2)
    await drain(2)
    faults.update(r.fault for r in sim.requests[seen:] if r.fault)
    sim.faults.clear()
    await crash.cli("sync", "--once")   # the orders whose read after the write failed

    # ---- the outbox: every action succeeded, none open, none given up on, except creates
    # whose answer was lost: those are uncertain (Pwinty v2.2 cannot find them)
    actions, attempts = read_outbox(ledger_path)
    rounds = crash.rounds
    created = {a.payload["fields"]["recipientName"]: a for a in actions if a.kind == "create"}
    made = {e.body["recipientName"]: e.order_id for e in sim.effects if e.verb == "CREATE"}
    copies = read_orders(ledger_path, VENDOR, [*by_id, *untouched, *made.values()])
    states = Counter(a.state.value for a in actions)
    report = (f"{total + CREATES} actions ({CREATES} creates) on {len(plans)} orders,"
              f" {len(rounds)} kill rounds {rounds}, final states {dict(states)},"
              f" {len(sim.effects)} effects, faults {dict(faults)}")
    assert not [a for a in actions if a.state is not ActionState.SUCCEEDED
                and not open_create(a)], report
    assert all("cannot be verified" in a.last_error for a in actions if open_create(a)), report

    # ---- each create made its order at most once, a succeeded one exactly once
    creates = Counter(e.body["recipientName"] for e in sim.effects if e.verb == "CREATE")
    assert set(creates) <= set(recipients) and max(creates.values(), default=1) == 1, creates
    for name, action in created.items():
        if action.state is ActionState.SUCCEEDED:
            assert made.get(name) == action.result["order_id"], (name, action, made)

    # ---- the simulator's log: each action's effect exactly once, in order, nothing else
    effects: dict[str, list[str]] = defaultdict(list)
    added: dict[str, Counter] = defaultdict(Counter)
    for effect in sim.effects:
        if effect.verb == "CREATE":
            continue    # checked above
        verb = effect.verb
        if verb == "STATUS":
            verb += " " + effect.body["status"]
        effects[effect.order_id].append(verb)
        if effect.verb in ("ADD_PHOTO", "ADD_PHOTOS"):
            for photo in effect.body if effect.verb == "ADD_PHOTOS" else [effect.body]:
                source = photo["url"] or photo["file"]["md5"]
                added[effect.order_id][(source, photo["type"], int(photo["copies"]))] += 1
    assert_effects_as_asked(effects, {oid: p.expected_effects() for oid, p in by_id.items()},
                            report)
    assert len(sim.effects) == total + len(made), report
    twice = {oid: [k for k, n in counts.items() if n > 1] for oid, counts in added.items()
             if max(counts.values()) > 1}
    assert not twice, f"photos added more than once: {twice}"

    # ---- each order ends with the photos and the status asked for; the ledger agrees
    problems = []
    for oid, plan in by_id.items():
        order = sim.get_order(oid)
        photos = Counter(photo_key(p) for p in order["photos"])
        if photos != plan.expected_photos():
            problems.append(f"{oid} ({plan.shape}): photos {dict(photos)}, asked"
                            f" {dict(plan.expected_photos())}")
        if order["status"] not in plan.expected_status():
            problems.append(f"{oid} ({plan.shape}): {order['status']}, asked"
                            f" {plan.expected_status()}")
    for oid in untouched:
        if sim.get_order(oid) != untouched_before[oid]:
            problems.append(f"{oid}: untouched, but the simulator changed it")
        if copies[oid]["raw"]["photos"] != untouched_before[oid]["photos"]:
            problems.append(f"{oid}: untouched, but the ledger's copy changed")
    problems += disagreements(copies, sim)
    assert not problems, "\n".join(problems) + "\n" + report

    # ---- and the run really was crashy: kills mid-action, lost answers, verified retries
    kills_in_flight, lost, verified = crash.assert_crashy(sim, actions, attempts,
                                                          min(ROUNDS, 4), report)
    assert {a.kind for a in verified} & {"add_photo", "add_photos"}, report
    elapsed = time.monotonic() - started
    print(report + f"; {kills_in_flight} kills left an action in flight, {len(lost)} write"
          f" answers lost, {len(verified)} actions confirmed by verification"
          f" ({dict(Counter(a.kind for a in verified))}), {read_after_failed(actions)} done"
          f" though the read after the write failed, ledger stale after phase 1:"
          f" {len(stale_after_phase1)} orders, {elapsed:.1f}s")


# ------------------------------------------------------------------ pull beside push

async def test_a_poll_beside_an_action_never_writes_back_an_older_copy(pwinty, tmp_path):
    """The daemon polls and pushes at once: the ledger must end with the vendor's last word.

    A Pwinty poll lists a page of orders, then reads SubmissionStatus for every draft on it
    (one request each, slow here) before the page is written: an action performed in that
    window has already recorded the vendor's newer copy when the page arrives.
    """
    sim = await pwinty(orders=10, clock=time.time)
    drafts = [sim.add_order("NotYetSubmitted", photos=1) for _ in range(4)]
    target = drafts[-1]      # the newest: first on the page, first to have its status read
    config = pwinty_config(sim, tmp_path / "ledger.db", poll_interval_s=3600)
    async with Service(config, handle_signals=False) as service:
        await service.run_once()
    listed = len(sim.requests)
    sim.faults.add("delay", method="GET", path_prefix="/v2.2/Orders/", delay_s=0.4, times=4)
    async with service_running(config):
        give_up = time.monotonic() + 10
        while not any(r.path == "/v2.2/Orders" for r in sim.requests[listed:]):
            if time.monotonic() > give_up:
                pytest.fail("set-up: the poll never listed the orders")
            await asyncio.sleep(0.005)
        # the poll holds its copy (NotYetSubmitted) while it reads SubmissionStatus (1.6 s)
        [(action, _)] = await enqueue(config, "cancel", [(VENDOR, target)], {})
        give_up = time.monotonic() + 10
        while len([r for r in sim.requests[listed:] if r.path.endswith("/SubmissionStatus")]) < 4:
            if time.monotonic() > give_up:
                pytest.fail("set-up: the poll did not read every draft's SubmissionStatus")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.6)                 # the last read, then the poll's page is written
    # (set-up checks fail with pytest.fail, not AssertionError: only the last two may fail)
    with open_ledger(tmp_path / "ledger.db") as ledger:
        outcome = ledger.outbox.get(action.id).state
        order = ledger.order(VENDOR, target)
    seen = sim.requests[listed:]
    list_at = min(r.at for r in seen if r.path == "/v2.2/Orders")
    last_read_at = max(r.at for r in seen if r.path.endswith("/SubmissionStatus"))
    posts = [r.at for r in seen if r.path == f"/v2.2/Orders/{target}/Status"]
    if [(e.verb, e.order_id) for e in sim.effects] != [("STATUS", target)] or (
            outcome is not ActionState.SUCCEEDED) or not (
            len(posts) == 1 and list_at < posts[0] < last_read_at):
        pytest.fail(f"set-up: the cancellation did not go through once, during the poll"
                    f" ({outcome}, {sim.effects}, {list_at=}, {posts=}, {last_read_at=})")
    moves = [(e.source, e.from_vendor_state, e.to_vendor_state) for e in order.events]
    assert order.vendor_state == sim.get_order(target)["status"] == "Cancelled", moves
    assert ("poll", "Cancelled", "NotYetSubmitted") not in moves


# ------------------------------------------------------------------ the same photo twice

async def test_the_same_photo_twice_on_purpose_queued_together_survives_a_lost_request(
        pwinty, tmp_path):
    sim = await pwinty(orders=10, clock=time.time)
    oid = sim.add_order("NotYetSubmitted")
    config = pwinty_config(sim, tmp_path / "ledger.db", poll_interval_s=3600, timeout_s=1.0,
                           action_backoff_base_s=0.01, action_backoff_max_s=0.05)
    async with Service(config, handle_signals=False) as service:
        await service.run_once()
    photo = {"type": "4x6", "url": "https://photos.example.com/twice/p.jpg", "copies": 1}
    [(first, _)] = await enqueue(config, "add_photo", [(VENDOR, oid)], {"photos": [photo]})
    [(second, created)] = await enqueue(config, "add_photo", [(VENDOR, oid)],
                                        {"photos": [photo]}, key="the second print")
    if not created or first.id == second.id:
        pytest.fail("set-up: the second photo was not queued as its own action")
    # the first request goes through; the second is dropped before Pwinty acts on it
    photos_path = f"/v2.2/Orders/{oid}/Photos"
    sim.faults.add("delay", method="POST", path_prefix=photos_path, delay_s=0.0, times=1)
    sim.faults.add("drop", method="POST", path_prefix=photos_path, times=1)
    async with Service(config, handle_signals=False) as service:
        for _ in range(60):    # the lost one is verified a request timeout (1 s) later
            await service.run_once()
            states = {a.state for a in read_actions(tmp_path / "ledger.db")}
            if states <= {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.UNCERTAIN}:
                break
            await asyncio.sleep(0.05)
    lost = [r for r in sim.requests if r.method == "POST" and r.path == photos_path
            and r.status == 0]
    if len(lost) != 1:
        pytest.fail(f"set-up: the second request was not the one dropped ({sim.requests})")
    actions = {a.id: a for a in read_actions(tmp_path / "ledger.db")}
    assert {a.state for a in actions.values()} == {ActionState.SUCCEEDED}, actions
    assert len(sim.get_order(oid)["photos"]) == 2, (
        f"Pwinty holds {len(sim.get_order(oid)['photos'])} photo(s); the second action says"
        f" {actions[second.id].state.value} {actions[second.id].result}")
    assert [e.verb for e in sim.effects] == ["ADD_PHOTO", "ADD_PHOTO"]
