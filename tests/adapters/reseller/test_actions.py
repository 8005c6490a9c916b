"""Reseller actions through the outbox, over loopback HTTP against the simulator."""

from __future__ import annotations

import pytest

from ordersync.actions import enqueue
from ordersync.errors import ActionRefused
from ordersync.model import ActionState
from ordersync_adapters.reseller.simulator import DAY
from tests.adapters.reseller.conftest import reseller_config
from tests.outbox_support import open_ledger, read_action, read_orders, synced_services

ACCOUNT = "ACC-1003"


@pytest.fixture
async def organisation(reseller, tmp_path, clock):
    """A synced reseller simulator: (sim, config, service), the service on a fake clock."""
    async with synced_services(reseller, reseller_config, tmp_path / "ledger.db", clock,
                               orders=0) as make:
        yield make


async def queue(config, clock, kind, order_id, params=None):
    [(action, _)] = await enqueue(config, kind, [("rs", order_id)], params or {}, clock=clock)
    return action


def get(config, action_id):
    return read_action(config.ledger_path, action_id)[0]


async def answer_lost(sim, config, service, clock, action, method="POST", path_prefix=None,
                      meanwhile=None):
    """The vendor applies the action's request but the answer is lost; a run 10 s later
    verifies (after ``meanwhile()``, if given). Returns the action as it ended."""
    sim.faults.add("apply_then_drop", method=method, path_prefix=path_prefix)
    await service.run_once()
    assert get(config, action.id).needs_verification or method == "DELETE"
    if meanwhile is not None:
        meanwhile()
    clock.advance(10)
    await service.run_once()
    return get(config, action.id)


def verbs(sim):
    return [e.verb for e in sim.effects]


async def draft(sim, service, clock, items=1, **kwargs) -> str:
    oid = sim.add_order(status="Draft", items=items, **kwargs)
    clock.advance(5)
    await service.run_once()
    return str(oid)


async def test_create_draft_add_items_set_fields_and_check_out(organisation, clock):
    sim, config, service = await organisation()
    created = await queue(config, clock, "create_draft", None, {"account_id": ACCOUNT})
    await service.run_once()
    done = get(config, created.id)
    assert done.state is ActionState.SUCCEEDED
    oid = done.result["order_id"]
    assert sim.orders[int(oid)]["accountId"] == ACCOUNT
    added = await queue(config, clock, "add_item", oid,
                        {"product_id": "MS-365-BP", "billing_plan_id": "MS-365-BP-Y",
                         "quantity": 5})
    await service.run_once()
    item_id = get(config, added.id).result["item_id"]
    [item] = sim.items[int(oid)].values()
    assert (str(item["id"]), item["quantity"], item["billingPlanId"]) == (
        item_id, 5, "MS-365-BP-Y")
    fields = await queue(config, clock, "set_custom_fields", oid,
                         {"fields": {"PO Number": "PO-77"}})
    chars = await queue(config, clock, "set_characteristics", oid,
                        {"item_id": item_id, "values": {"domain": "contoso.example"}})
    await service.run_once()
    assert {get(config, a.id).state for a in (fields, chars)} == {ActionState.SUCCEEDED}
    assert sim.custom_fields[int(oid)][0]["value"] == "PO-77"
    assert item["characteristics"][0]["value"] == "contoso.example"
    checkout = await queue(config, clock, "checkout", oid)
    await service.run_once()
    assert get(config, checkout.id).state is ActionState.SUCCEEDED
    assert verbs(sim) == ["CREATE", "ADD_ITEM", "SET_FIELDS", "SET_CHARACTERISTICS", "CHECKOUT"]
    stored = read_orders(config.ledger_path, "rs", [oid])[oid]
    assert (stored["state"], stored["vendor_state"]) == ("in_production", "Submitted")
    assert stored["data"]["customFields"]["PO Number"] == "PO-77"


@pytest.mark.parametrize("kind,params", [
    ("add_item", {"product_id": "MS-365-BB"}),
    ("delete_item", {"item_id": "first"}),
    ("checkout", {}),
    ("set_custom_fields", {"fields": {"PO Number": "x"}}),
    ("set_characteristics", {"item_id": "first", "values": {"domain": "x"}}),
])
@pytest.mark.parametrize("status", ["Submitted", "Executed", "Reseller Pending Approval",
                                    "Awaiting Legal Review"])
async def test_every_write_to_an_order_that_is_not_a_draft_is_refused(organisation, clock,
                                                                      kind, params, status):
    sim, config, service = await organisation()
    oid = sim.add_order(status=status, items=1)
    await draft(sim, service, clock, items=0)
    params = {k: (str(next(iter(sim.items[oid]))) if v == "first" else v)
              for k, v in params.items()}
    with pytest.raises(ActionRefused, match=f"rs:{oid} is {status}; .* needs a Draft order"):
        await queue(config, clock, kind, str(oid), params)
    assert sim.effects == []


async def test_empty_draft_and_one_about_to_expire_are_not_checked_out(organisation, clock):
    sim, config, service = await organisation()
    empty = await draft(sim, service, clock, items=0)
    with pytest.raises(ActionRefused, match=f"order {empty} has no items; an empty draft"):
        await queue(config, clock, "checkout", empty)
    expiring = await draft(sim, service, clock, items=1, at=clock.now - 7 * DAY + 120)
    with pytest.raises(ActionRefused, match=f"rs:{expiring} expires at .*, before a checkout"):
        await queue(config, clock, "checkout", expiring)
    assert sim.effects == []


async def test_checkout_queued_in_time_fails_when_the_draft_expires_first(organisation, clock):
    sim, config, service = await organisation()
    oid = await draft(sim, service, clock, items=1, at=clock.now - 7 * DAY + 3600)
    action = await queue(config, clock, "checkout", oid)
    clock.advance(3600 - 300)          # the daemon was down; 5 minutes are left
    await service.run_once()
    failed = get(config, action.id)
    assert failed.state is ActionState.FAILED and "before a checkout could run" in failed.last_error
    assert sim.effects == []


async def test_bad_parameters_are_refused_when_queued(organisation, clock):
    sim, config, service = await organisation()
    oid = await draft(sim, service, clock, items=1)
    cases = [
        ("create_draft", None, {}, "account_id: is required"),
        ("add_item", oid, {"product_id": "X", "quantity": 0}, "quantity: must be a whole"),
        ("delete_item", oid, {"item_id": "nope"}, f"order {oid} has no item nope"),
        ("set_custom_fields", oid, {"fields": {"Colour": "red"}},
         "no custom field 'Colour'; it has PO Number, Cost Centre"),
        ("set_characteristics", oid, {"item_id": next(iter(sim.items[int(oid)])),
                                      "values": {"size": "L"}}, "no characteristic 'size'"),
        ("checkout", None, {}, "checkout needs an order: give VENDOR:ID"),
    ]
    for kind, target, params, message in cases:
        with pytest.raises(ActionRefused, match=message):
            await queue(config, clock, kind, target, params)


async def test_free_edition_refusals_are_reported_as_permission_errors(organisation, clock):
    sim, config, service = await organisation()
    oid = await draft(sim, service, clock, items=1)
    sim.edition = "Free"
    action = await queue(config, clock, "checkout", oid)
    created = await queue(config, clock, "create_draft", None, {"account_id": ACCOUNT})
    await service.run_once()
    for queued in (action, created):
        failed = get(config, queued.id)
        assert failed.state is ActionState.FAILED
        assert failed.last_error.startswith("HTTP 403: permission denied: The Free Edition")
        assert failed.attempts == 1
    assert sim.effects == []


async def test_draft_created_without_an_answer_is_found_not_made_twice(organisation, clock):
    sim, config, service = await organisation()
    created = await queue(config, clock, "create_draft", None, {"account_id": ACCOUNT})
    done = await answer_lost(sim, config, service, clock, created, path_prefix="/api/orders")
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is True
    assert verbs(sim) == ["CREATE"] and done.result["order_id"] == str(max(sim.orders))


async def test_two_new_drafts_for_the_account_make_a_lost_create_uncertain(organisation,
                                                                           clock):
    sim, config, service = await organisation()
    created = await queue(config, clock, "create_draft", None, {"account_id": ACCOUNT})
    unsure = await answer_lost(sim, config, service, clock, created, path_prefix="/api/orders",
                               # someone in the portal makes a draft for the same account
                               meanwhile=lambda: sim.add_order(status="Draft", account=2))
    assert unsure.state is ActionState.UNCERTAIN and "2 new drafts for account" in unsure.last_error
    assert verbs(sim) == ["CREATE"]


async def test_item_added_without_an_answer_is_verified_not_added_twice(organisation, clock):
    sim, config, service = await organisation()
    oid = await draft(sim, service, clock, items=1)       # already one MS-365-BP
    added = await queue(config, clock, "add_item", oid, {"product_id": "MS-365-BP"})
    done = await answer_lost(sim, config, service, clock, added,
                             path_prefix=f"/api/orders/{oid}/items")
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is True
    assert verbs(sim) == ["ADD_ITEM"] and len(sim.items[int(oid)]) == 2


async def test_item_add_cut_off_before_its_checkpoint_is_added_not_taken_for_done(
        organisation, clock):
    """Killed after the action was marked in flight, before its baseline was committed: no
    request was sent, so an existing item with the same product is not its effect."""
    sim, config, service = await organisation()
    oid = await draft(sim, service, clock, items=1)       # already one MS-365-BP
    added = await queue(config, clock, "add_item", oid, {"product_id": "MS-365-BP"})
    with open_ledger(config.ledger_path) as ledger:      # the process dies right here
        ledger.outbox.start(added.id, clock())
        ledger.outbox.recover_in_flight("rs", clock())
    await service.run_once()
    done = get(config, added.id)
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is False
    assert verbs(sim) == ["ADD_ITEM"] and len(sim.items[int(oid)]) == 2


async def test_checkout_without_an_answer_counts_once_the_order_left_draft(organisation, clock):
    sim, config, service = await organisation()
    oid = await draft(sim, service, clock, items=2)
    action = await queue(config, clock, "checkout", oid)
    done = await answer_lost(sim, config, service, clock, action,
                             path_prefix=f"/api/orders/{oid}/checkout")
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is True
    assert verbs(sim) == ["CHECKOUT"]


async def test_deleting_an_item_twice_over_a_lost_answer_is_one_delete(organisation, clock):
    sim, config, service = await organisation()
    oid = await draft(sim, service, clock, items=2)
    first = str(next(iter(sim.items[int(oid)])))
    action = await queue(config, clock, "delete_item", oid, {"item_id": first})
    done = await answer_lost(sim, config, service, clock, action, method="DELETE")
    # the DELETE is sent once (never again by aiohttp on the dropped connection); the lost
    # answer is settled by reading the order, which no longer has the item
    assert [r.status for r in sim.requests if r.method == "DELETE"] == [0]
    assert done.state is ActionState.SUCCEEDED
    assert verbs(sim) == ["DELETE_ITEM"] and len(sim.items[int(oid)]) == 1


async def test_a_second_create_waits_until_a_lost_first_one_is_settled(organisation, clock):
    """Two drafts for one account, the first one's answer lost: the second is not sent until
    the first is verified, so each create claims its own draft and no draft is claimed twice."""
    sim, config, service = await organisation()
    queued = [action for number in (1, 2) for action, _ in await enqueue(
        config, "create_draft", [("rs", None)], {"account_id": ACCOUNT},
        key=f"draft {number}", clock=clock)]
    sim.faults.add("apply_then_drop", method="POST", path_prefix="/api/orders", times=1)
    await service.run_once()
    first, second = (get(config, a.id) for a in queued)
    assert first.state is ActionState.PENDING and first.needs_verification
    assert (second.state, second.attempts) == (ActionState.PENDING, 0)   # waits, unsent
    clock.advance(10)
    await service.run_once()
    first, second = (get(config, a.id) for a in queued)
    assert first.state is second.state is ActionState.SUCCEEDED, (first, second)
    made = [first.result["order_id"], second.result["order_id"]]
    assert len(set(made)) == 2 and verbs(sim) == ["CREATE", "CREATE"], made
