"""Exactly once under each fault class, one at a time, over loopback against both simulators.

Each test drives the real outbox (``Service.run_once`` on a fake clock) or the real
``VendorHttp`` and asserts on the simulator's own log of applied changes (``sim.effects``)
and of requests received. The fault-matrix crash test (tests/test_fault_matrix.py) throws
all of them at once under kill -9.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import aiohttp
import pytest

from ordersync.actions import enqueue
from ordersync.errors import AmbiguousError
from ordersync.ledger import Ledger, OutboxError
from ordersync.model import ActionState
from tests.conftest import fotoware_config, pwinty_config
from tests.outbox_support import open_ledger, read_action, synced_services

PHOTO = {"type": "4x6", "url": "https://img.example.com/p.jpg", "copies": 2, "sizing": "Crop"}
ANSWER_FAULTS = ["malformed", "mislabelled", "apply_then_cut", "apply_then_error"]


@pytest.fixture
async def site(fotoware, tmp_path, clock):
    async with synced_services(fotoware, fotoware_config, tmp_path / "ledger.db", clock,
                               orders=40, action_backoff_base_s=1.0) as make:
        yield make


@pytest.fixture
async def account(pwinty, tmp_path, clock):
    async with synced_services(pwinty, pwinty_config, tmp_path / "ledger.db", clock,
                               orders=30) as make:
        yield make


async def queue(config, clock, kind, order_id, params=None):
    instance = next(iter(config.vendors))
    [(action, _)] = await enqueue(config, kind, [(instance, order_id)], params or {},
                                  clock=clock)
    return action


def get(config, action_id):
    return read_action(config.ledger_path, action_id)[0]


def effects(sim):
    return [(e.verb, e.order_id) for e in sim.effects]


def pending_order(sim) -> str:
    return next(i for i in sim.order_ids() if sim.get_order(i)["state"] == "pending")


async def draft(sim, service, photos: int = 0) -> str:
    order_id = sim.add_order(status="NotYetSubmitted", photos=photos)
    await service.run_once()
    return order_id


async def verified_later(config, service, clock, action_id: int, after_s: float = 10) -> None:
    """A run ``after_s`` later finds the effect at the vendor: succeeded, nothing resent."""
    clock.advance(after_s)
    await service.run_once()
    done = get(config, action_id)
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is True, done


# ---- 1. an unreadable answer to a write is ambiguous: verified, never resent

@pytest.mark.parametrize("fault", ANSWER_FAULTS)
async def test_unreadable_answer_to_an_approve_is_verified_not_resent(site, clock, fault):
    sim, config, service = await site()
    target = pending_order(sim)
    queued = await queue(config, clock, "approve", target)
    sim.faults.add(fault, method="APPROVE")
    await service.run_once()
    waiting = get(config, queued.id)
    assert waiting.state is ActionState.PENDING and waiting.needs_verification
    await verified_later(config, service, clock, queued.id)
    assert effects(sim) == [("APPROVE", target)]
    assert [r.method for r in sim.requests].count("APPROVE") == 1
    # ... and the attempt log says so: one entry per request sent, a cut answer included
    _, attempts = read_action(config.ledger_path, queued.id)
    assert sum(a["request"].startswith("APPROVE ") for a in attempts) == 1, attempts


@pytest.mark.parametrize("fault", ANSWER_FAULTS)
async def test_unreadable_answer_to_a_pwinty_photo_is_verified_not_resent(account, clock, fault):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    queued = await queue(config, clock, "add_photo", order_id, {"photos": [PHOTO]})
    sim.faults.add(fault, method="POST", path_prefix=f"/v2.2/Orders/{order_id}/Photos")
    await service.run_once()
    assert get(config, queued.id).needs_verification
    await verified_later(config, service, clock, queued.id)
    assert effects(sim) == [("ADD_PHOTO", order_id)]


async def test_unreadable_answer_to_a_pwinty_create_is_uncertain_never_resent(account, clock):
    sim, config, service = await account()
    queued = await queue(config, clock, "create", None, {"fields": {
        "recipientName": "Ada", "countryCode": "GB", "qualityLevel": "Pro"}})
    sim.faults.add("malformed", method="POST", path_prefix="/v2.2/Orders")
    await service.run_once()
    clock.advance(10)
    await service.run_once()
    done = get(config, queued.id)
    assert done.state is ActionState.UNCERTAIN
    assert [verb for verb, _ in effects(sim)] == ["CREATE"]


async def test_a_write_must_say_how_its_answer_is_read(fotoware, clock):
    from ordersync.http import VendorHttp
    sim = await fotoware(orders=5)
    async with VendorHttp("fw", sim.base_url, sleep=clock.sleep, clock=clock) as http:
        with pytest.raises(TypeError, match="read="):
            await http.request("APPROVE", "/fotoweb/orders/1")
    assert sim.requests == []


# ---- 2. a write answered 2xx is done, whatever the read after it says

async def test_fotoware_submit_answered_then_read_failing_is_done_not_resent(site, clock):
    sim, config, service = await site()
    target = next(i for i in sim.order_ids() if sim.get_order(i)["state"] == "created")
    queued = await queue(config, clock, "submit", target)
    sim.faults.add("status", method="GET", path_prefix=f"/fotoweb/orders/{target}", status=503,
                   retry_after=None, times=20)
    await service.run_once()
    done = get(config, queued.id)
    assert done.state is ActionState.SUCCEEDED, done.last_error
    assert done.result["verified"] is False and "503" in done.result["read_after_failed"]
    assert effects(sim) == [("SUBMIT", target)]


@pytest.mark.parametrize("kind,params,verb", [
    ("cancel", {}, "STATUS"),
    ("update_address", {"fields": {"recipientName": "Grace Hopper"}}, "UPDATE"),
])
async def test_pwinty_write_answered_then_read_failing_is_done_not_resent(
        account, clock, kind, params, verb):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    queued = await queue(config, clock, kind, order_id, params)
    sim.faults.add("drop", method="GET", path_prefix=f"/v2.2/Orders/{order_id}", times=20)
    await service.run_once()
    done = get(config, queued.id)
    assert done.state is ActionState.SUCCEEDED, done.last_error
    assert [e.verb for e in sim.effects] == [verb]
    clock.advance(3600)
    await service.run_once()                     # the next poll learns the new state
    assert get(config, queued.id).state is ActionState.SUCCEEDED
    assert len(sim.effects) == 1


# ---- 3. a timed-out write the vendor applies later is verified only after it landed

async def test_a_timed_out_approve_applied_later_is_verified_after_it_landed(site, clock):
    sim, config, service = await site(timeout_s=0.3, action_verify_after_s=60.0)
    target = pending_order(sim)
    queued = await queue(config, clock, "approve", target)
    sim.faults.add("delay", method="APPROVE", delay_s=1.0)
    await service.run_once()
    waiting = get(config, queued.id)
    assert waiting.state is ActionState.PENDING and waiting.needs_verification
    assert "timed out" in waiting.last_error
    sent = len(sim.requests)
    clock.advance(30)                        # backoff is over, but the write may still land
    await service.run_once()
    assert not [r for r in sim.requests[sent:] if r.path.endswith(target)]
    give_up = time.monotonic() + 10
    while not sim.effects and time.monotonic() < give_up:
        await asyncio.sleep(0.02)            # the vendor finishes the request it was given
    await verified_later(config, service, clock, queued.id, after_s=30)
    assert effects(sim) == [("APPROVE", target)]


async def test_verify_after_shorter_than_the_request_timeout_is_refused(fotoware, tmp_path):
    from ordersync.errors import ConfigError
    sim = await fotoware(orders=1)
    with pytest.raises(ConfigError, match="action_verify_after_s: must be at least timeout_s"):
        fotoware_config(sim, tmp_path / "l.db", timeout_s=10.0, action_verify_after_s=5.0)


async def test_an_action_verified_absent_is_verified_again_before_its_resend(account, clock):
    sim, config, service = await account()
    order_id = await draft(sim, service)
    queued = await queue(config, clock, "add_photo", order_id, {"photos": [PHOTO]})
    photos = f"/v2.2/Orders/{order_id}/Photos"
    sim.faults.add("drop", method="POST", path_prefix=photos)     # lost before Pwinty acted
    await service.run_once()
    assert get(config, queued.id).needs_verification
    # the verification finds nothing, then the checkpoint read fails: no photo sent yet
    sim.faults.add("status", method="GET", path_prefix=f"/v2.2/Orders/{order_id}", status=503,
                   retry_after=None, times=6)
    clock.advance(10)
    await service.run_once()
    again = get(config, queued.id)
    assert again.state is ActionState.PENDING and again.needs_verification
    clock.advance(30)
    await service.run_once()
    assert get(config, queued.id).state is ActionState.SUCCEEDED
    assert effects(sim) == [("ADD_PHOTO", order_id)]


async def test_a_refusal_after_verifying_nothing_was_there_can_be_cancelled(site, clock):
    sim, config, service = await site()
    target = pending_order(sim)
    queued = await queue(config, clock, "approve", target)
    sim.faults.add("drop", method="APPROVE")                   # lost before FotoWeb acted
    await service.run_once()
    sim.set_state(target, "expired")                         # meanwhile: approve is refused
    clock.advance(10)
    await service.run_once()
    failed = get(config, queued.id)
    assert failed.state is ActionState.FAILED and not failed.needs_verification
    assert sim.effects == []
    with open_ledger(config.ledger_path) as ledger:
        assert ledger.outbox.cancel(queued.id, clock()).state is ActionState.CANCELLED


# ---- 4. aiohttp never resends a write by itself

@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_a_write_dropped_on_a_kept_alive_connection_is_sent_once(account, method):
    sim, config, service = await account()
    order_id = await draft(sim, service, photos=1)
    api = service.runners["prints"].adapter.actions.api
    await api.order(order_id)                          # the connection is kept alive
    path = f"/v2.2/Orders/{order_id}"
    sim.faults.add("drop", method=method, path_prefix=path)
    with pytest.raises(AmbiguousError, match="may have taken effect"):
        if method == "PUT":
            await api.update_order(order_id, {"recipientName": "Grace Hopper"})
        else:
            await api.delete_photo(order_id, sim.photo_ids(order_id)[0])
    assert [r.method for r in sim.requests].count(method) == 1
    assert sim.effects == []


# ---- 5. cancel decides and updates in one statement

async def test_cancel_refuses_an_action_whose_answer_was_lost_meanwhile(site, clock, tmp_path):
    sim, config, service = await site()
    queued = await queue(config, clock, "approve", pending_order(sim))
    ledger = Ledger(config.ledger_path)
    other = sqlite3.connect(config.ledger_path, isolation_level=None)

    def lose_the_answer_meanwhile(statement: str) -> None:
        # after cancel has read the action, before its transaction: another process's
        # attempt loses its answer, so the action may now have reached the vendor
        if statement.startswith("BEGIN"):
            other.execute("UPDATE actions SET needs_verification = 1 WHERE id = ?",
                          (queued.id,))

    ledger.db.conn.set_trace_callback(lose_the_answer_meanwhile)
    try:
        with pytest.raises(OutboxError, match="may already have reached the vendor"):
            ledger.outbox.cancel(queued.id, clock())
    finally:
        ledger.db.conn.set_trace_callback(None)
        ledger.close()
        other.close()
    assert get(config, queued.id).state is ActionState.PENDING


async def test_a_photo_add_cut_off_before_its_checkpoint_is_added_not_taken_for_done(account,
                                                                                     clock):
    """An add is queued; someone adds the same photo in Pwinty's dashboard; the add is killed
    after it went in flight, before its baseline was committed. No request of ours was sent,
    so the dashboard's photo is not its effect: it is performed, not taken for done."""
    sim, config, service = await account()
    order_id = await draft(sim, service)
    queued = await queue(config, clock, "add_photo", order_id, {"photos": [PHOTO]})
    async with aiohttp.ClientSession() as dashboard:     # another client of the same account
        async with dashboard.post(f"{sim.base_url}/Orders/{order_id}/Photos",
                                  data={k: str(v) for k, v in PHOTO.items()},
                                  headers={"X-Pwinty-MerchantId": sim.merchant_id,
                                           "X-Pwinty-REST-API-Key": sim.api_key}) as answer:
            assert answer.status == 200, await answer.text()
    instance = next(iter(config.vendors))
    with open_ledger(config.ledger_path) as ledger:      # the process dies right here
        ledger.outbox.start(queued.id, clock())
        ledger.outbox.recover_in_flight(instance, clock())
    clock.advance(10)
    await service.run_once()
    done = get(config, queued.id)
    assert done.state is ActionState.SUCCEEDED and done.result["verified"] is False, done
    assert effects(sim) == [("ADD_PHOTO", order_id)] * 2   # the dashboard's and ours
