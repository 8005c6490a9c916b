"""The Fotoware adapter's pull side, driven over loopback HTTP against the simulator."""

from __future__ import annotations

import math
import sqlite3
from email.utils import formatdate

import pytest

from ordersync.errors import AuthError, NetworkError, VendorUnavailable
from ordersync.ledger.schema import DEFERRED_INDEXES

LIST_PATHS = ("/fotoweb/orders/", "/fotoweb/orders/pending/", "/fotoweb/orders/approved/",
              "/fotoweb/orders/rejected/")


def paths(sim, since: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in sim.requests[since:]]


def token_requests(sim) -> int:
    return sum(1 for r in sim.requests if r.path == "/fotoweb/oauth2/token")


async def poll(service):
    [result] = await service.run_once()
    return result


async def test_cold_sync_follows_paging_across_many_pages(fotoware, service_for, read_ledger,
                                                          tmp_path):
    sim = await fotoware(orders=500, page_size=7)
    async with service_for(sim) as service:
        result = await poll(service)
        # a backfill into an empty ledger builds its read indexes when it ends
        with sqlite3.connect(tmp_path / "ledger.db") as conn:
            assert set(DEFERRED_INDEXES) <= {name for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert result.errors == []
    assert result.new == 500
    pages = math.ceil(500 / 7)
    page_requests = [r for r in sim.requests if r.path == "/fotoweb/orders/"
                     and "count" not in r.headers.get("accept", "")]
    assert len(page_requests) == pages
    ledger = read_ledger()
    assert sorted(o.vendor_id for o in ledger.orders()) == sorted(sim.order_ids())
    assert ledger.count_events() == 500
    raw = ledger.order("fw", sim.order_ids()[123]).raw
    assert raw == sim.get_order(sim.order_ids()[123])


async def test_every_order_field_lands_in_the_ledger(fotoware, service_for, read_ledger):
    sim = await fotoware(orders=40)
    async with service_for(sim) as service:
        await poll(service)
    ledger = read_ledger()
    for order_id in sim.order_ids():
        vendor = sim.get_order(order_id)
        stored = ledger.order("fw", order_id)
        assert stored.vendor_state == vendor["state"]
        assert stored.reference == vendor["orderReference"]
        assert stored.created == vendor["created"]
        assert stored.modified == vendor["modified"]
        assert stored.expires == vendor["expires"]
        assert [i.key for i in stored.items] == [
            i["rendition"]["href"] for i in vendor["orderItems"]
        ]
        assert stored.customer == vendor["owner"]["email"]


async def test_repoll_of_unchanged_data_writes_nothing_and_costs_four_requests(
    fotoware, service_for, read_ledger
):
    sim = await fotoware(orders=200, page_size=50)
    async with service_for(sim) as service:
        await poll(service)
        ledger = service.ledger.ledger  # an idle poll writes no order, item or event
        before = ledger.totals()
        seen = len(sim.requests)
        result = await poll(service)
        second = await poll(service)
        assert ledger.totals() == before
    assert (result.new, result.changed, second.new, second.changed) == (0, 0, 0, 0)
    assert paths(sim, seen) == ["GET " + p for p in LIST_PATHS] * 2
    assert result.requests == 4
    assert read_ledger().count_events() == 200


async def test_new_order_is_found_at_the_head_of_history(fotoware, service_for, read_ledger):
    sim = await fotoware(orders=300, page_size=40)
    async with service_for(sim) as service:
        await poll(service)
        new_id = sim.add_order("pending")
        seen = len(sim.requests)
        result = await poll(service)
    assert result.new == 1 and result.changed == 0
    # four counts and the first page of history
    assert len(sim.requests) - seen == 5
    stored = read_ledger().order("fw", new_id)
    assert stored.state == "submitted"
    assert [e.kind for e in stored.events] == ["appeared"]


async def test_approval_elsewhere_is_seen_as_a_state_change(fotoware, service_for, read_ledger):
    sim = await fotoware(orders=300, page_size=40)
    pending = [i for i in sim.order_ids() if sim.get_order(i)["state"] == "pending"]
    old_pending = pending[-1]
    async with service_for(sim) as service:
        await poll(service)
        sim.set_state(old_pending, "approved")
        seen = len(sim.requests)
        result = await poll(service)
    assert result.changed == 1 and result.new == 0
    pending_pages = math.ceil((len(pending) - 1) / 40)
    # counts, the unchanged first page of history, the pending list, the order itself
    assert len(sim.requests) - seen == 4 + 1 + pending_pages + 1
    events = read_ledger().order("fw", old_pending).events
    assert events[-1].kind == "state_changed"
    assert (events[-1].from_state, events[-1].to_state) == ("submitted", "approved")
    assert (events[-1].from_vendor_state, events[-1].to_vendor_state) == (
        "pending", "approved")


async def test_rejection_of_an_approved_order_is_found_by_walking_its_list(
    fotoware, service_for, read_ledger
):
    sim = await fotoware(orders=120, page_size=25)
    approved = [i for i in sim.order_ids() if sim.get_order(i)["state"] == "approved"
                and not sim.get_order(i)["expires"]]
    async with service_for(sim) as service:
        await poll(service)
        sim.set_state(approved[-1], "rejected")
        result = await poll(service)
    assert result.changed >= 1
    assert read_ledger().order("fw", approved[-1]).vendor_state == "rejected"
    assert read_ledger().count_by_vendor_state("fw") == {
        state: sum(1 for i in sim.order_ids() if sim.get_order(i)["state"] == state)
        for state in read_ledger().count_by_vendor_state("fw")
    }


async def test_count_preserving_edit_is_caught_by_the_periodic_full_scan(
    fotoware, service_for, read_ledger, clock
):
    sim = await fotoware(orders=60)
    target = sim.order_ids()[30]
    async with service_for(sim, full_scan_interval_s=3600) as service:
        await poll(service)
        sim.touch(target, adminComment="checked by legal")
        quiet = await poll(service)
        clock.advance(3601)
        full = await poll(service)
    assert quiet.changed == 0
    assert full.changed == 1
    stored = read_ledger().order("fw", target)
    assert stored.comment == "checked by legal"
    assert stored.events[-1].kind == "updated"


async def test_token_is_reused_then_renewed_before_expiry(fotoware, service_for, clock):
    sim = await fotoware(orders=10, token_ttl_s=100)
    async with service_for(sim) as service:
        await poll(service)
        await poll(service)
        assert token_requests(sim) == 1
        clock.advance(95)  # inside the renewal margin (a tenth of the lifetime)
        await poll(service)
        assert token_requests(sim) == 2
    assert all(r.status != 401 for r in sim.requests)


async def test_401_renews_the_token_once_and_carries_on(fotoware, service_for):
    sim = await fotoware(orders=10)
    async with service_for(sim) as service:
        await poll(service)
        sim.revoke_tokens()
        result = await poll(service)
    assert result.errors == []
    assert token_requests(sim) == 2
    assert [r.status for r in sim.requests].count(401) == 1


async def test_wrong_client_secret_is_a_clear_auth_error(fotoware, service_for):
    sim = await fotoware(orders=10)
    async with service_for(sim, secret="not-the-secret") as service:
        with pytest.raises(AuthError, match="token request refused.*client_id"):
            await service.runners["fw"].poll()
    assert token_requests(sim) == 1


async def test_missing_approve_orders_permission_is_a_configuration_error(
    fotoware, service_for
):
    sim = await fotoware(orders=10, admin=False)
    async with service_for(sim) as service:
        with pytest.raises(AuthError, match="Approve Orders"):
            await service.runners["fw"].poll()
    # discovered from the descriptor: no list was even asked for, nothing retried
    assert paths(sim) == ["POST /fotoweb/oauth2/token", "GET /fotoweb/me/"]


async def test_403_from_a_list_is_not_retried(fotoware, service_for):
    sim = await fotoware(orders=10)
    async with service_for(sim) as service:
        await poll(service)
        sim.admin = False
        seen = len(sim.requests)
        with pytest.raises(AuthError, match="Approve Orders"):
            await service.runners["fw"].poll()
    assert [r.status for r in sim.requests[seen:]] == [403]


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds_is_honoured(fotoware, service_for, clock, status):
    sim = await fotoware(orders=10)
    sim.faults.add("status", status=status, retry_after="7", times=2,
                   path_prefix="/fotoweb/orders/")
    async with service_for(sim, backoff_base_s=0.1) as service:
        result = await poll(service)
    assert result.errors == []
    assert [r.status for r in sim.requests].count(status) == 2
    assert len(clock.sleeps) == 2 and all(s >= 7 for s in clock.sleeps)
    assert sim.early_retries == 0


async def test_retry_after_http_date_is_honoured(fotoware, service_for, clock):
    sim = await fotoware(orders=10)
    sim.faults.add("status", status=503, retry_after=formatdate(clock.now + 22, usegmt=True),
                   path_prefix="/fotoweb/orders/")
    async with service_for(sim, backoff_base_s=0.1) as service:
        result = await poll(service)
    assert result.errors == []
    assert len(clock.sleeps) == 1 and 21 <= clock.sleeps[0] <= 23
    assert sim.early_retries == 0


async def test_backoff_grows_exponentially_with_jitter_without_retry_after(
    fotoware, service_for, clock
):
    sim = await fotoware(orders=10)
    sim.faults.add("status", status=502, retry_after=None, times=3,
                   path_prefix="/fotoweb/orders/")
    async with service_for(sim, backoff_base_s=1.0, max_attempts=5) as service:
        result = await poll(service)
    assert result.errors == []
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps, start=1):
        base = min(2 ** (attempt - 1), 30)
        assert base <= slept <= base + 1.0


async def test_persistent_503_gives_up_after_the_configured_attempts(
    fotoware, service_for, clock
):
    sim = await fotoware(orders=10)
    sim.faults.add("status", status=503, times=100, path_prefix="/fotoweb/orders/")
    async with service_for(sim, max_attempts=3) as service:
        with pytest.raises(VendorUnavailable):
            await service.runners["fw"].poll()
        [result] = await service.run_once()
    assert [r.status for r in sim.requests].count(503) == 6
    assert "503" in result.errors[0]
    assert service.healthy["fw"] is False


async def test_retry_after_longer_than_backoff_allows_is_not_waited_out(
    fotoware, service_for, clock
):
    sim = await fotoware(orders=10)
    sim.faults.add("status", status=429, retry_after="3600", path_prefix="/fotoweb/orders/")
    async with service_for(sim) as service:
        result = await poll(service)
    assert clock.sleeps == []
    assert "429" in result.errors[0]


async def test_malformed_and_dropped_answers_are_retried(fotoware, service_for, clock):
    sim = await fotoware(orders=100, page_size=10)
    sim.faults.add("malformed", path_prefix="/fotoweb/orders/")
    # aiohttp's own repeat on a dropped connection is off: each drop is retried by our loop
    sim.faults.add("drop", times=2, path_prefix="/fotoweb/orders/")
    async with service_for(sim) as service:
        result = await poll(service)
    assert result.errors == [] and result.new == 100
    assert [r.status for r in sim.requests].count(0) == 2
    assert len(clock.sleeps) == 3


async def test_crash_between_pages_leaves_cursor_consistent_and_resumes(
    fotoware, service_for, read_ledger
):
    sim = await fotoware(orders=100, page_size=10)
    # the second page of the cold scan fails for good: three attempts, each dropped
    sim.faults.add("drop", times=3, path_prefix="/fotoweb/orders/?p=")
    async with service_for(sim, max_attempts=3) as service:
        with pytest.raises(NetworkError):
            await service.runners["fw"].poll()
    ledger = read_ledger()
    stored = {o.vendor_id for o in ledger.orders()}
    cursor = ledger.cursor("fw", "orders")
    assert len(stored) == 10, "only the first page was committed"
    assert stored == set(sim.order_ids()[:10])
    assert "counts" not in cursor, "counts are only stored once a scan completes"
    assert cursor["resume"]["next"].startswith("/fotoweb/orders/?p=")
    seen = len(sim.requests)
    async with service_for(sim) as service:
        result = await poll(service)
    assert result.new == 90
    first_page_after_restart = [r for r in sim.requests[seen:] if r.query]
    assert f"{first_page_after_restart[0].path}?{first_page_after_restart[0].query}" == (
        cursor["resume"]["next"])
    ledger = read_ledger()
    assert {o.vendor_id for o in ledger.orders()} == set(sim.order_ids())
    assert ledger.count_events() == 100
    assert "resume" not in ledger.cursor("fw", "orders")


async def test_unknown_vendor_state_is_stored_not_fatal(fotoware, service_for, read_ledger):
    sim = await fotoware(orders=20)
    target = sim.order_ids()[0]
    async with service_for(sim) as service:
        await poll(service)
        sim.touch(target, adminComment="x")
        sim._order(int(target))["state"] = "on-hold"  # a state no doc mentions
        sim._store.changed(int(target))
        service.runners["fw"].adapter.puller.full_scan_interval_s = 0
        result = await poll(service)
    assert result.errors == []
    stored = read_ledger().order("fw", target)
    assert (stored.state, stored.vendor_state) == ("unknown", "on-hold")


