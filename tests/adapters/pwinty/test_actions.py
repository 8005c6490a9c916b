"""Pwinty actions through the outbox, over loopback HTTP against the simulator."""

from __future__ import annotations

import hashlib

import pytest

from ordersync.actions import enqueue
from ordersync.errors import ActionRefused
from ordersync.model import ActionState
from tests.conftest import pwinty_config
from tests.outbox_support import read_action, synced_services

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2048


@pytest.fixture
async def account(pwinty, tmp_path, clock):
    """A synced Pwinty simulator: (sim, config, service), the service open on a fake clock."""
    async with synced_services(pwinty, pwinty_config, tmp_path / "ledger.db", clock,
                               orders=30) as make:
        yield make


async def draft(sim, service) -> str:
    order_id = sim.add_order(status="NotYetSubmitted")
    await service.run_once()
    return order_id


async def queue(config, clock, kind, order_id, params):
    [(action, _)] = await enqueue(config, kind, [("prints", order_id)], params, clock=clock)
    return action


def get(config, action_id):
    return read_action(config.ledger_path, action_id)[0]


def effects(sim, verb=None):
    return [e for e in sim.effects if verb is None or e.verb == verb]


async def answer_lost(sim, config, service, clock, path_prefix=None, *, method="POST",
                      queued=None):
    """Pwinty applies the next ``method`` request (to ``path_prefix``) but its answer is lost;
    a run 10 s later verifies. ``queued``, if given, must await verification in between."""
    sim.faults.add("apply_then_drop", method=method, path_prefix=path_prefix)
    await service.run_once()
    if queued is not None:
        assert get(config, queued.id).needs_verification
    clock.advance(10)
    await service.run_once()


def photo(url="https://img.example.com/p.jpg", **extra):
    return {"type": "4x6", "url": url, "copies": 2, "sizing": "Crop", **extra}


async def test_create_order_then_photos_then_submit(account, clock):
    sim, config, service = await account()
    [(created, _)] = await enqueue(config, "create", [("prints", None)], {"fields": {
        "recipientName": "Ada Lovelace", "address1": "12 St James's Square",
        "addressTownOrCity": "London", "postalOrZipCode": "SW1Y 4JH", "countryCode": "GB",
        "qualityLevel": "Pro"}}, clock=clock)
    await service.run_once()
    done = get(config, created.id)
    assert done.state is ActionState.SUCCEEDED
    order_id = done.result["order_id"]
    assert sim.get_order(order_id)["recipientName"] == "Ada Lovelace"
    added = await queue(config, clock, "add_photos", order_id,
                        {"photos": [photo("https://img.example.com/1.jpg"),
                                    photo("https://img.example.com/2.jpg")]})
    await service.run_once()
    assert get(config, added.id).state is ActionState.SUCCEEDED
    [batch] = effects(sim, "ADD_PHOTOS")
    assert [p["url"] for p in sim.get_order(order_id)["photos"]] == [
        "https://img.example.com/1.jpg", "https://img.example.com/2.jpg"]
    clock.advance(60)  # the photos are downloaded
    await service.run_once()
    submitted = await queue(config, clock, "submit", order_id, {})
    await service.run_once()
    assert get(config, submitted.id).state is ActionState.SUCCEEDED
    assert sim.get_order(order_id)["status"] == "Submitted"
    assert [r.path.rsplit("/", 1)[-1] for r in sim.requests if order_id in r.path][-3:] == [
        "SubmissionStatus", "Status", order_id]


async def test_submit_of_an_invalid_order_is_refused_locally_with_the_reasons(account, clock):
    sim, config, service = await account()
    order_id = await draft(sim, service)  # no photos: NoItemsInOrder
    queued = await queue(config, clock, "submit", order_id, {})
    await service.run_once()
    failed = get(config, queued.id)
    assert failed.state is ActionState.FAILED
    assert "Pwinty says the order cannot be submitted: NoItemsInOrder" in failed.last_error
    assert effects(sim, "STATUS") == []
    assert [r for r in sim.requests if r.path.endswith("/Status")] == []


async def test_photo_upload_sends_the_file_with_its_md5(account, clock, tmp_path):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    image = tmp_path / "holiday.jpg"
    image.write_bytes(JPEG)
    queued = await queue(config, clock, "add_photo", order_id,
                         {"photos": [{"type": "4x6", "copies": 1, "file": str(image)}]})
    await service.run_once()
    assert get(config, queued.id).state is ActionState.SUCCEEDED
    [upload] = [r for r in sim.requests if r.method == "POST" and r.path.endswith("/Photos")]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert hashlib.md5(JPEG).hexdigest().encode() in upload.body
    [stored] = sim.get_order(order_id)["photos"]
    assert stored["md5Hash"] == hashlib.md5(JPEG).hexdigest() and stored["status"] == "Ok"


async def test_a_file_changed_after_queueing_is_not_uploaded(account, clock, tmp_path):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    image = tmp_path / "holiday.jpg"
    image.write_bytes(JPEG)
    queued = await queue(config, clock, "add_photo", order_id,
                         {"photos": [{"type": "4x6", "copies": 1, "file": str(image)}]})
    image.write_bytes(JPEG + b"edited")
    await service.run_once()
    failed = get(config, queued.id)
    assert failed.state is ActionState.FAILED and "changed since it was queued" in failed.last_error
    assert effects(sim) == []


@pytest.mark.parametrize(("status", "kind", "params", "message"), [
    ("Submitted", "add_photo", {"photos": [photo()]},
     "is Submitted; add photo needs an order that is NotYetSubmitted or AwaitingPayment"),
    ("Complete", "delete_photo", {"photo_id": "1"},
     "is Complete; delete photo needs an order that is NotYetSubmitted"),
    ("Submitted", "submit", {}, "is Submitted; submit needs"),
    ("Submitted", "cancel", {}, "is Submitted; cancel needs"),
])
async def test_refused_when_queued_for_the_orders_status(account, clock, status, kind, params,
                                                          message):
    sim, config, service = await account()
    order_id = next(i for i in sim.order_ids() if sim.get_order(i)["status"] == status)
    with pytest.raises(ActionRefused, match=message):
        await queue(config, clock, kind, order_id, params)


@pytest.mark.parametrize(("params", "message"), [
    ({"photos": [photo(type="poster_9x9")]},
     "photo type 'poster_9x9' is not in the [A-Z]{2} (Pro|Standard) catalogue; it has 4x6"),
    ({"photos": [photo(copies=0)]}, "copies: must be a whole number of at least 1"),
    ({"photos": [photo(sizing="Stretch")]}, "sizing: must be one of Crop"),
    ({"photos": [photo(url="ftp://x/y.jpg")]}, "url: must be an http"),
    ({"photos": [{"type": "4x6", "copies": 1, "file": "/nonexistent/p.jpg"}]},
     "file: /nonexistent/p.jpg: cannot read it"),
])
async def test_bad_photos_are_refused_when_queued(account, clock, params, message):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    with pytest.raises(ActionRefused, match=message):
        await queue(config, clock, "add_photo", order_id, params)


async def test_vendor_403_when_the_order_moved_on_fails_with_its_message(account, clock):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    queued = await queue(config, clock, "add_photo", order_id, {"photos": [photo()]})
    sim.set_status(order_id, "Submitted")
    await service.run_once()
    failed = get(config, queued.id)
    assert failed.state is ActionState.FAILED
    assert failed.last_error.startswith("HTTP 403: ")
    assert effects(sim, "ADD_PHOTO") == []


async def test_photo_added_but_unanswered_is_verified_never_added_twice(account, clock):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    queued = await queue(config, clock, "add_photo", order_id, {"photos": [photo()]})
    await answer_lost(sim, config, service, clock, f"/v2.2/Orders/{order_id}/Photos",
                      queued=queued)
    done = get(config, queued.id)
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is True
    assert len(effects(sim, "ADD_PHOTO")) == 1 and len(sim.get_order(order_id)["photos"]) == 1


async def test_the_same_photo_twice_on_purpose_is_two_photos(account, clock):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    await queue(config, clock, "add_photo", order_id, {"photos": [photo()]})
    await service.run_once()
    [(second, created)] = await enqueue(config, "add_photo", [("prints", order_id)],
                                        {"photos": [photo()]}, key="second copy", clock=clock)
    assert created
    await answer_lost(sim, config, service, clock, f"/v2.2/Orders/{order_id}/Photos")
    assert get(config, second.id).state is ActionState.SUCCEEDED
    assert len(sim.get_order(order_id)["photos"]) == 2
    assert len(effects(sim, "ADD_PHOTO")) == 2


async def test_lost_submit_is_verified_by_the_status_moving_on(account, clock):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    await queue(config, clock, "add_photo", order_id, {"photos": [photo()]})
    await service.run_once()
    clock.advance(60)  # downloaded: the order is now valid
    queued = await queue(config, clock, "submit", order_id, {})
    await answer_lost(sim, config, service, clock, f"/v2.2/Orders/{order_id}/Status",
                      queued=queued)
    done = get(config, queued.id)
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is True
    assert len(effects(sim, "STATUS")) == 1
    assert sim.get_order(order_id)["status"] == "Submitted"


async def test_unanswered_create_becomes_uncertain_and_is_not_repeated(account, clock):
    sim, config, service = await account()
    [(queued, _)] = await enqueue(config, "create", [("prints", None)], {"fields": {
        "recipientName": "B", "countryCode": "GB", "qualityLevel": "Standard"}}, clock=clock)
    await answer_lost(sim, config, service, clock, "/v2.2/Orders")
    clock.advance(100)
    await service.run_once()
    stuck = get(config, queued.id)
    assert stuck.state is ActionState.UNCERTAIN
    assert "no merchant reference" in stuck.last_error
    assert len(effects(sim, "CREATE")) == 1


async def test_delete_photo_lost_answer_then_404_counts_as_done(account, clock):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    await queue(config, clock, "add_photo", order_id, {"photos": [photo()]})
    await service.run_once()
    [photo_id] = [str(p["id"]) for p in sim.get_order(order_id)["photos"]]
    queued = await queue(config, clock, "delete_photo", order_id, {"photo_id": photo_id})
    await answer_lost(sim, config, service, clock, method="DELETE")
    assert get(config, queued.id).state is ActionState.SUCCEEDED
    assert sim.get_order(order_id)["photos"] == []
    assert len(effects(sim, "DELETE_PHOTO")) == 1


async def test_address_update_and_cancel(account, clock):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    moved = await queue(config, clock, "update_address", order_id,
                        {"fields": {"address1": "221B Baker Street", "postalOrZipCode": "NW1"}})
    cancelled = await queue(config, clock, "cancel", order_id, {})
    await service.run_once()
    assert get(config, moved.id).state is ActionState.SUCCEEDED
    assert get(config, cancelled.id).state is ActionState.SUCCEEDED
    order = sim.get_order(order_id)
    assert (order["address1"], order["status"]) == ("221B Baker Street", "Cancelled")
    assert [e.verb for e in effects(sim)][-2:] == ["UPDATE", "STATUS"]


async def test_missing_order_gives_404_with_the_vendors_message(account, clock):
    sim, config, service = await account()
    api = service.runners["prints"].adapter.api
    from ordersync.errors import NotFound
    with pytest.raises(NotFound, match="The order with the specified id was not found"):
        await api.order("999999")
    assert [r.status for r in sim.requests[-1:]] == [404]
