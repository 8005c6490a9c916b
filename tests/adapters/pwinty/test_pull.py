"""The Pwinty adapter's pull side over loopback HTTP against the simulator."""

from __future__ import annotations

import pytest

from ordersync.daemon import Service
from ordersync.errors import AuthError, NetworkError
from ordersync.ledger import Ledger
from tests.conftest import pwinty_config

OPEN = ("NotYetSubmitted", "AwaitingPayment", "PaidAwaitingImageUpload", "Submitted")


@pytest.fixture
def prints(tmp_path, clock):
    """Open a Service over a Pwinty simulator: ``async with prints(sim) as service``."""

    def make(sim, **overrides) -> Service:
        config = pwinty_config(sim, tmp_path / "ledger.db", **overrides)
        return Service(config, sleep=clock.sleep, clock=clock, handle_signals=False)

    return make


@pytest.fixture
def ledger(tmp_path):
    opened = []

    def open_() -> Ledger:
        opened.append(Ledger(tmp_path / "ledger.db"))
        return opened[-1]

    yield open_
    for item in opened:
        item.close()


async def poll(service):
    [result] = await service.run_once()
    assert result.errors == []
    return result


def list_requests(sim, since=0):
    return [r for r in sim.requests[since:] if r.path.endswith("/Orders") and r.method == "GET"]


def readiness_requests(sim, since=0):
    return [r for r in sim.requests[since:] if r.path.endswith("/SubmissionStatus")]


async def test_cold_sync_reads_every_order_with_photos_and_readiness(pwinty, prints, ledger):
    sim = await pwinty(orders=230)
    async with prints(sim, page_size=50) as service:
        result = await poll(service)
    assert result.new == 230
    # five full pages, a short one, and the empty page that ends the list
    assert len(list_requests(sim)) == 6
    drafts = [i for i in sim.order_ids()
              if sim.get_order(i)["status"] in ("NotYetSubmitted", "AwaitingPayment")]
    assert {r.path.split("/")[-2] for r in readiness_requests(sim)} == set(drafts)
    stored = ledger()
    for order_id in sim.order_ids()[:40]:
        vendor = sim.get_order(order_id)
        mine = stored.order("prints", order_id)
        assert mine.vendor_state == vendor["status"]
        assert [i.key for i in mine.items] == [str(p["id"]) for p in vendor["photos"]]
        assert [i.status for i in mine.items] == [p["status"] for p in vendor["photos"]]
        assert mine.data.get("price_minor") == vendor["price"]
        if order_id in drafts:
            assert "isValid" in mine.data["submission"]


async def test_idle_poll_reads_only_down_to_the_oldest_open_order(pwinty, prints, ledger):
    sim = await pwinty(orders=1000)
    open_ids = [int(i) for i in sim.order_ids() if sim.get_order(i)["status"] in OPEN]
    newest = int(sim.order_ids()[0])
    async with prints(sim, page_size=50) as service:
        await poll(service)
        seen = len(sim.requests)
        before = service.ledger.ledger.totals()  # an idle poll writes no order or event
        result = await poll(service)
        assert service.ledger.ledger.totals() == before
    assert (result.new, result.changed) == (0, 0)
    window = newest - min(open_ids) + 1
    assert len(list_requests(sim, seen)) == -(-window // 50)
    assert len(list_requests(sim, seen)) < 1000 // 50 / 2, "far fewer pages than a full walk"
    assert readiness_requests(sim, seen) == [], "unchanged drafts reuse their readiness"


async def test_new_orders_and_status_progress_are_seen(pwinty, prints, ledger, clock):
    sim = await pwinty(orders=200, complete_after_s=30)
    submitted = next(i for i in sim.order_ids() if sim.get_order(i)["status"] == "Submitted")
    async with prints(sim) as service:
        await poll(service)
        new_id = sim.add_order(status="NotYetSubmitted")
        clock.advance(31)  # the lab finishes: Submitted -> Complete, with a shipment
        result = await poll(service)
    assert result.new == 1 and result.changed >= 1
    stored = ledger()
    assert stored.order("prints", new_id).state == "draft"
    done = stored.order("prints", submitted)
    assert (done.vendor_state, done.state) == ("Complete", "completed")
    assert done.data["shipments"][0]["trackingNumber"]
    assert done.events[-1].kind == "state_changed"


async def test_photo_statuses_are_tracked_to_ok_or_not_found(pwinty, prints, ledger, clock):
    sim = await pwinty(orders=20, download_delay_s=5)
    target = sim.add_order(status="NotYetSubmitted")
    async with prints(sim) as service:
        await poll(service)
        from ordersync.actions import enqueue
        await enqueue(service.config, "add_photos", [("prints", target)], {"photos": [
            {"type": "4x6", "url": "https://img.example.com/a.jpg", "copies": 1},
            {"type": "4x6", "url": "https://img.example.com/missing.jpg", "copies": 1},
        ]}, clock=clock)
        await service.run_once()
        statuses = [i.status for i in ledger().order("prints", target).items]
        assert statuses == ["NotYetDownloaded", "NotYetDownloaded"]
        clock.advance(6)
        await poll(service)
    statuses = [i.status for i in ledger().order("prints", target).items]
    assert statuses == ["Ok", "FileNotFoundAtUrl"]
    blocked = ledger().order("prints", target).data["submission"]
    assert blocked["isValid"] is False
    assert any("FileCouldNotBeDownloaded" in e for e in
               [x for errors in blocked["photoErrors"].values() for x in errors])


async def test_wrong_api_key_is_a_clear_auth_error_without_retries(pwinty, prints):
    sim = await pwinty(orders=10)
    async with prints(sim, api_key="wrong") as service:
        with pytest.raises(AuthError, match="merchant_id and the API key"):
            await service.runners["prints"].poll()
    assert [r.status for r in sim.requests] == [401]


async def test_crash_mid_scan_resumes_from_the_stored_offset(pwinty, prints, ledger):
    sim = await pwinty(orders=120)
    sim.faults.add("drop", times=6, path_prefix="/v2.2/Orders?count=20&offset=40")
    async with prints(sim, page_size=20, max_attempts=3) as service:
        with pytest.raises(NetworkError):
            await service.runners["prints"].poll()
    stored = ledger()
    assert len(stored.orders()) == 40
    assert stored.cursor("prints", "orders") == {"resume_offset": 40}
    async with prints(sim, page_size=20) as service:
        result = await poll(service)
    assert result.new == 80
    assert ledger().count_events("prints") == 120
    assert "max_id" in ledger().cursor("prints", "orders")


STILL = {"download_delay_s": 1e9, "complete_after_s": 1e9}   # nothing moves on its own


async def test_a_steady_idle_poll_hands_over_nothing_yet_every_change_is_seen(
        pwinty, prints, ledger, clock):
    sim = await pwinty(orders=300, **STILL)
    open_now = [i for i in sim.order_ids() if sim.get_order(i)["status"] in OPEN]
    submitted = next(i for i in open_now if sim.get_order(i)["status"] == "Submitted")
    shipped = open_now[-1]      # the oldest open order: on the last page of the window
    owed = sim.add_order(payment="InvoiceMe")  # a draft the account's balance will block
    async with prints(sim, page_size=10) as service:
        await poll(service)     # the cold sync
        await poll(service)     # the first poll remembers its whole window
        seen = len(sim.requests)
        idle = await poll(service)
        assert (idle.new, idle.changed, idle.unchanged) == (0, 0, 0), "nothing handed over"
        assert len(list_requests(sim, seen)) > 1, "the window is still read"
        sim.set_status(submitted, "Cancelled")
        sim.add_shipment(shipped)
        moved = await poll(service)     # two pages differ, the others are the same bytes
        sim.balance_insufficient = True     # SubmissionStatus changes, the order does not
        clock.advance(901)                  # ... and is read again after readiness_max_age_s
        blocked = await poll(service)
        new_id = sim.add_order(status="AwaitingPayment")    # every page moves down by one
        added = await poll(service)
        again = await poll(service)
    assert (moved.new, moved.changed, moved.unchanged) == (0, 2, 0)
    assert blocked.changed >= 1     # each InvoiceMe draft, ``owed`` among them
    assert (added.new, added.changed, added.unchanged) == (1, 0, 0)
    assert (again.new, again.changed, again.unchanged) == (0, 0, 0)
    stored = ledger()
    assert stored.order("prints", submitted).vendor_state == "Cancelled"
    assert len(stored.order("prints", shipped).data["shipments"]) == len(
        sim.get_order(shipped)["shippingInfo"]["shipments"])
    assert "AccountBalanceInsufficient" in stored.order("prints", owed).data["submission"][
        "generalErrors"]
    assert stored.order("prints", new_id).vendor_state == "AwaitingPayment"


async def test_the_poll_after_an_action_compares_every_order_with_the_ledger(
        pwinty, prints, ledger, clock):
    sim = await pwinty(orders=100, **STILL)
    draft = sim.add_order(recipientName="Ada Example")
    async with prints(sim) as service:
        await poll(service)
        await poll(service)
        from ordersync.actions import enqueue
        # the same name again: Pwinty's order does not change, the action stores its own copy
        await enqueue(service.config, "update_address", [("prints", draft)],
                      {"fields": {"recipientName": "Ada Example"}}, clock=clock)
        await service.run_once()
        assert "submission" not in ledger().order("prints", draft).data, "the action's copy"
        result = await poll(service)
    assert result.unchanged > 0, "every order of the window compared again"
    assert ledger().order("prints", draft).data["submission"]["isValid"] is False


async def test_a_walk_cut_short_leaves_nothing_remembered(pwinty, prints, ledger):
    sim = await pwinty(orders=300, **STILL)
    draft = sim.add_order()
    async with prints(sim, page_size=10, max_attempts=1) as service:
        await poll(service)
        await poll(service)     # the draft, as it is, is remembered
        sim.set_status(draft, "Cancelled")
        sim.faults.add("drop", path_prefix="/v2.2/Orders?count=10&offset=10")
        with pytest.raises(NetworkError):   # the draft's page is written, the walk cut short
            await service.runners["prints"].poll()
        assert ledger().order("prints", draft).vendor_state == "Cancelled"
        sim.set_status(draft, "NotYetSubmitted")    # back to the copy the last walk saw
        result = await poll(service)
    assert result.changed == 1
    assert ledger().order("prints", draft).vendor_state == "NotYetSubmitted"
