"""Fotoware actions through the outbox, over loopback HTTP against the simulator."""

from __future__ import annotations

import time

import pytest

from ordersync.actions import enqueue
from ordersync.daemon import Service
from ordersync.errors import ActionRefused, AmbiguousError
from ordersync.model import ActionState
from tests.conftest import fotoware_config
from tests.outbox_support import read_action, read_orders, synced_services


@pytest.fixture
async def site(fotoware, tmp_path, clock):
    """A synced simulator: (sim, config, service) with the service open on a fake clock."""
    async with synced_services(fotoware, fotoware_config, tmp_path / "ledger.db", clock,
                               orders=40, action_backoff_base_s=1.0) as make:
        yield make


def in_state(sim, state: str) -> list[str]:
    return [i for i in sim.order_ids() if sim.get_order(i)["state"] == state]


async def queue(config, clock, kind, order_id, **params):
    [(action, created)] = await enqueue(config, kind, [("fw", order_id)], params, clock=clock)
    assert created
    return action


def action(config, action_id):
    return read_action(config.ledger_path, action_id)


def stored(config, order_id):
    return read_orders(config.ledger_path, "fw", [order_id])[order_id]


def verb_requests(sim, verb: str) -> list:
    return [r for r in sim.requests if r.method == verb]


async def test_plain_approve_sends_no_body_and_the_ledger_learns_at_once(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target)
    await service.run_once()
    done, attempts = action(config, queued.id)
    assert done.state is ActionState.SUCCEEDED and done.attempts == 1
    [request] = verb_requests(sim, "APPROVE")
    assert request.body == b"" and request.path == f"/fotoweb/orders/{target}"
    assert [(e.verb, e.order_id) for e in sim.effects] == [("APPROVE", target)]
    assert [(a["request"], a["status"]) for a in attempts] == [
        (f"APPROVE /fotoweb/orders/{target}", 200)]
    order = stored(config, target)
    assert order["vendor_state"] == "approved"
    assert (order["events"][-1]["source"], order["events"][-1]["to_state"]) == (
        "action", "approved")


async def test_approve_with_a_comment_carries_every_current_item_and_field(site, clock):
    sim, config, service = await site()
    target = max(in_state(sim, "pending"), key=lambda i: len(sim.get_order(i)["orderItems"]))
    before = sim.get_order(target)
    queued = await queue(config, clock, "approve", target, comment="Cleared by legal",
                         expires="2027-03-01T12:00:00+01:00")
    await service.run_once()
    assert action(config, queued.id)[0].state is ActionState.SUCCEEDED
    [effect] = sim.effects
    body = effect.body
    assert [i["rendition"] for i in body["orderItems"]] == [
        i["rendition"]["href"] for i in before["orderItems"]]
    assert body["orderData"] == before["orderData"]
    assert (body["adminComment"], body["expires"]) == ("Cleared by legal", "2027-03-01T11:00:00Z")
    after = sim.get_order(target)
    assert len(after["orderItems"]) == len(before["orderItems"]) > 0
    assert [i["itemData"] for i in after["orderItems"]] == [
        i["itemData"] for i in before["orderItems"]]
    assert after["state"] == "approved" and after["adminComment"] == "Cleared by legal"
    # the fresh read came first, then the decision
    assert [r.method for r in sim.requests[-2:]] == ["GET", "APPROVE"]


async def test_update_patches_one_field_and_keeps_the_rest(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    before = sim.get_order(target)
    queued = await queue(config, clock, "update", target, data={"Channel": "Broadcast"})
    await service.run_once()
    assert action(config, queued.id)[0].state is ActionState.SUCCEEDED
    after = sim.get_order(target)
    channel = next(f["id"] for f in sim.config["orderFields"] if f["label"] == "Channel")
    values = {d["id"]: d["value"] for d in after["orderData"]}
    assert values[channel] == "Broadcast"
    kept = {d["id"]: d["value"] for d in before["orderData"] if d["id"] != channel}
    assert {k: v for k, v in values.items() if k != channel} == kept
    assert after["orderItems"] == before["orderItems"]
    assert [e.verb for e in sim.effects] == ["PATCH"]
    assert stored(config, target)["data"]["orderData"][channel] == "Broadcast"


async def test_submit_moves_a_created_order_to_pending(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "created")[0]
    queued = await queue(config, clock, "submit", target)
    await service.run_once()
    assert action(config, queued.id)[0].state is ActionState.SUCCEEDED
    assert sim.get_order(target)["state"] == "pending"
    assert stored(config, target)["state"] == "submitted"


@pytest.mark.parametrize(("kind", "state", "message"), [
    ("submit", "pending", "is pending; submit needs an order that is created"),
    ("update", "approved", "update needs an order that is pending or created"),
    ("approve", "expired", "approve needs an order that is pending or created or rejected"),
])
async def test_wrong_state_in_the_ledger_is_refused_when_queued(site, clock, kind, state,
                                                                  message):
    sim, config, service = await site()
    target = in_state(sim, state)[0]
    params = {"comment": "x"} if kind == "update" else {}
    with pytest.raises(ActionRefused, match=message):
        await queue(config, clock, kind, target, **params)
    assert service.ledger.ledger.outbox.list() == []


async def test_vendor_400_for_a_state_changed_behind_our_back_fails_with_its_message(
    site, clock
):
    sim, config, service = await site()
    target = in_state(sim, "created")[0]
    queued = await queue(config, clock, "submit", target)
    sim.set_state(target, "approved")
    await service.run_once()
    failed, _ = action(config, queued.id)
    assert failed.state is ActionState.FAILED
    assert failed.last_error.startswith("HTTP 400: ")
    assert sim.effects == [] and len(verb_requests(sim, "SUBMIT")) == 1


async def test_vendor_404_fails_the_action(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target)
    ledger = service.ledger.ledger
    ledger.db.execute("UPDATE actions SET payload = ? WHERE id = ?",
                      ('{"href": "/fotoweb/orders/999999"}', queued.id))
    ledger.db.conn.commit()
    await service.run_once()
    failed, _ = action(config, queued.id)
    assert failed.state is ActionState.FAILED
    assert failed.last_error.startswith("HTTP 404")


async def test_403_keeps_the_action_pending_without_spending_an_attempt(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target)
    sim.admin = False
    await service.run_once()
    waiting, _ = action(config, queued.id)
    assert waiting.state is ActionState.PENDING and waiting.attempts == 0
    assert "Approve Orders" in waiting.last_error
    sim.admin = True
    await service.run_once()
    assert action(config, queued.id)[0].state is ActionState.PENDING, "waits out its pause"
    clock.advance(301)
    await service.run_once()
    assert action(config, queued.id)[0].state is ActionState.SUCCEEDED
    assert [e.verb for e in sim.effects] == ["APPROVE"]


CUSTOM_DATA_REFUSALS = [
    ({"data": {"Project code": "abc"}},
     r"Project code: 'abc' does not match \^\[A-Z\]\{3\}-\\d\{4\}\$ \(Three capitals"),
    ({"data": {"Project code": "ABCD-12345"}}, "Project code: 10 characters, at most 8"),
    ({"data": {"Project code": ""}}, "Project code: a value is required"),
    ({"data": {"Budget": "lots"}}, "Budget: 'lots' is not a number"),
    ({"data": {"Budget": "9000"}}, "Budget: 9000 is above the maximum 5000"),
    ({"data": {"Budget": "-1"}}, "Budget: -1 is below the minimum 0"),
    ({"data": {"Rush": "maybe"}}, "Rush: a checkbox takes true or false"),
    ({"data": {"Channel": "Radio"}}, "Channel: 'Radio' is not one of Print, Web, Broadcast"),
    ({"data": {"Channel": ["Print", "Web"]}}, "Channel: takes one value, got 2"),
    ({"data": {"Internal note": "x"}}, "Internal note: the field is not writable"),
    ({"data": {"Colour": "red"}}, "unknown order field 'Colour'; the site's order fields:"
                                  " 'Project code'"),
    ({"item_data": {0: {"Caption": "x" * 41}}}, "Caption: 41 characters, at most 40"),
    ({"item_data": {0: {"Usage": ["Editorial", "Billboards"]}}},
     "Usage: 'Billboards' is not one of Editorial"),
    ({"item_data": {99: {"Caption": "x"}}}, "item_data: the order has items 0 to"),
]


@pytest.mark.parametrize(("params", "message"), CUSTOM_DATA_REFUSALS)
async def test_custom_data_is_refused_when_queued_naming_field_and_rule(site, clock, params,
                                                                         message):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    with pytest.raises(ActionRefused, match=message):
        await queue(config, clock, "approve", target, **params)
    assert service.ledger.ledger.outbox.list() == []
    assert verb_requests(sim, "APPROVE") == []


async def test_valid_custom_data_by_label_reaches_the_vendor(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target,
                         data={"project code": "MKT-0042", "Rush": "yes"},
                         item_data={0: {"Usage": ["Editorial", "Internal"]}})
    await service.run_once()
    assert action(config, queued.id)[0].state is ActionState.SUCCEEDED
    fields = {f["label"]: f["id"] for f in sim.config["orderFields"] + sim.config["itemFields"]}
    after = sim.get_order(target)
    values = {d["id"]: d["value"] for d in after["orderData"]}
    assert values[fields["Project code"]] == "MKT-0042" and values[fields["Rush"]] is True
    item = {d["id"]: d["value"] for d in after["orderItems"][0]["itemData"]}
    assert item[fields["Usage"]] == ["Editorial", "Internal"]


async def test_the_vendors_own_validation_400_is_still_handled(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target, data={"Channel": "Web"})
    channel = next(f for f in sim.config["orderFields"] if f["label"] == "Channel")
    channel["validation"]["values"] = ["Print"]  # the site's rules changed meanwhile
    await service.run_once()
    failed, _ = action(config, queued.id)
    assert failed.state is ActionState.FAILED
    assert failed.last_error == "HTTP 400: Channel: 'Web' is not one of Print"
    assert sim.effects == []


async def test_lost_answer_after_the_change_is_verified_not_repeated(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target)
    sim.faults.add("apply_then_drop", method="APPROVE")
    await service.run_once()
    waiting, _ = action(config, queued.id)
    assert waiting.state is ActionState.PENDING and waiting.needs_verification
    clock.advance(10)
    await service.run_once()
    done, attempts = action(config, queued.id)
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is True
    assert [(e.verb, e.order_id) for e in sim.effects] == [("APPROVE", target)]
    assert len(verb_requests(sim, "APPROVE")) == 1
    assert [a["request"].split()[0] for a in attempts] == ["APPROVE", "GET"]


@pytest.mark.parametrize("fault", [
    {"kind": "drop"},
    {"kind": "status", "status": 503, "retry_after": None},
    {"kind": "status", "status": 504, "retry_after": None},
])
async def test_lost_request_is_verified_then_performed_once(site, clock, fault):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "reject", target, comment="No licence")
    sim.faults.add(method="REJECT", **fault)
    await service.run_once()
    assert action(config, queued.id)[0].needs_verification
    clock.advance(10)
    await service.run_once()
    done, _ = action(config, queued.id)
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is False
    assert [(e.verb, e.order_id) for e in sim.effects] == [("REJECT", target)]
    assert sim.get_order(target)["adminComment"] == "No licence"


async def test_action_left_in_flight_by_a_dead_process_is_verified_first(site, clock, tmp_path):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target)
    sim.faults.add("apply_then_drop", method="APPROVE")
    # what a process that died mid-request leaves behind: the action marked in flight...
    service.ledger.ledger.outbox.start(queued.id, clock())
    # ... and the vendor, which did act, though its answer never arrived
    with pytest.raises(AmbiguousError):
        await service.runners["fw"].adapter.actions.api.change(
            "APPROVE", f"/fotoweb/orders/{target}")
    await service.close()
    restarted = Service(config, sleep=clock.sleep, clock=clock, handle_signals=False)
    async with restarted:
        await restarted.run_once()
        # a request the dead process left at the vendor may still land: verified only after
        # the request timeout
        waiting, attempts = action(config, queued.id)
        assert waiting.state is ActionState.PENDING and waiting.needs_verification
        clock.advance(5)
        await restarted.run_once()
    done, _ = action(config, queued.id)
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is True
    assert len(sim.effects) == 1


async def test_rate_limited_action_never_undercuts_retry_after(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target)
    sim.faults.add("status", status=429, retry_after="7", method="APPROVE", times=2)
    await service.run_once()
    assert action(config, queued.id)[0].state is ActionState.SUCCEEDED
    assert len(clock.sleeps) == 2 and all(s >= 7 for s in clock.sleeps)
    assert sim.early_retries == 0
    assert len(sim.effects) == 1


async def test_transient_failures_end_dead_then_a_person_retries(site, clock):
    sim, config, service = await site(max_attempts=1, action_max_attempts=3)
    target = in_state(sim, "pending")[0]
    queued = await queue(config, clock, "approve", target)
    sim.faults.add("status", status=429, retry_after="1", method="APPROVE", times=3)
    for _ in range(3):
        await service.run_once()
        clock.advance(60)
    dead, attempts = action(config, queued.id)
    assert dead.state is ActionState.DEAD and dead.attempts == 3
    assert "gave up after 3 attempts" in dead.last_error
    assert [a["status"] for a in attempts] == [429, 429, 429]
    service.ledger.ledger.outbox.retry(queued.id, clock())
    await service.run_once()
    assert action(config, queued.id)[0].state is ActionState.SUCCEEDED
    assert len(sim.effects) == 1


async def test_actions_on_one_order_reach_the_vendor_in_order(site, clock):
    sim, config, service = await site()
    target = in_state(sim, "pending")[0]
    await queue(config, clock, "update", target, comment="first")
    await queue(config, clock, "approve", target, comment="second")
    sim.faults.add("status", status=503, retry_after=None, method="PATCH")
    await service.run_once()
    assert sim.effects == [], "the approve waits for the update"
    clock.advance(10)
    await service.run_once()
    assert [e.verb for e in sim.effects] == ["PATCH", "APPROVE"]
    assert sim.get_order(target)["adminComment"] == "second"


async def test_the_configured_rate_is_never_exceeded(fotoware, tmp_path):
    sim = await fotoware(orders=120, clock=time.time)
    sim.rate_limit = (20, 1.0)
    config = fotoware_config(sim, tmp_path / "ledger.db", rate_limit={"requests": 20, "per_s": 1})
    async with Service(config, handle_signals=False) as service:
        await service.run_once()
        targets = [("fw", i) for i in in_state(sim, "pending")[:30]]
        await enqueue(config, "approve", targets, {})
        [result] = await service.run_once()
    assert result.actions == {"succeeded": 30}
    assert sim.max_requests_in_window(1.0) <= 20
    assert sim.rate_limited == 0
