"""The reseller adapter's pull side over loopback HTTP against the simulator."""

from __future__ import annotations

from urllib.parse import parse_qs

from ordersync_adapters.reseller.simulator import DAY


async def poll(svc):
    """One poll that must not fail."""
    [result] = await svc.run_once()
    assert result.errors == [], result.errors
    return result


def lists(sim, since=0):
    return [parse_qs(r.query) for r in sim.requests[since:] if r.path == "/api/orders"]


async def test_cold_sync_lists_all_stages_with_items_fields_and_executions(reseller, service,
                                                                           read_ledger):
    sim = await reseller(orders=40)
    sim.set_status(sorted(sim.orders)[0], "Awaiting Legal Review")   # the organisation's own
    async with service(sim, page_size=15) as svc:
        result = await poll(svc)
    assert result.new == len(sim.orders) and result.pages >= 3
    assert all(q["stage"] == ["All"] for q in lists(sim))
    assert [q["pageIndex"] for q in lists(sim)] == [["1"], ["2"], ["3"]]
    stored = read_ledger().orders(instance="rs")
    drafts = [o for o in stored if o.vendor_state == "Draft"]
    assert drafts and all(o.state == "draft" and o.expires for o in drafts)
    [own] = [o for o in stored if o.vendor_state == "Awaiting Legal Review"]
    assert own.state == "unknown"
    some = stored[0]
    assert [i.key for i in some.items] == [str(i) for i in sim.items[int(some.vendor_id)]]
    assert set(some.items[0].data["characteristics"]) == {"domain", "tenant"}
    assert set(some.data["customFields"]) == {"PO Number", "Cost Centre"}
    executed = [o for o in stored if o.vendor_state == "Submitted"]
    assert all(o.data["execution"]["status"] in ("Completed", "Failed") for o in executed)


async def test_idle_poll_costs_one_list_request_whatever_the_ledger_size(reseller, service):
    sim = await reseller(orders=120)
    async with service(sim, page_size=50) as svc:
        await poll(svc)
        before = len(sim.requests)
        idle = await poll(svc)
    assert idle.requests == 1 and idle.new == idle.changed == 0
    [query] = lists(sim, before)
    assert query["stage"] == ["All"] and query["$orderby"] == ["updatedAt asc"]
    assert query["$filter"][0].startswith("updatedAt gt datetime'")


async def test_a_changed_order_is_read_again_with_its_details(reseller, service, read_ledger,
                                                              clock):
    sim = await reseller(orders=20)
    async with service(sim) as svc:
        await poll(svc)
        clock.advance(3600)
        target = sorted(sim.orders)[3]
        sim.set_status(target, "Awaiting Legal Review")
        new = sim.add_order(status="Draft", items=2)
        before = len(sim.requests)
        result = await poll(svc)
    assert (result.new, result.changed) == (1, 1)
    read = {r.path for r in sim.requests[before:]}
    assert f"/api/orders/{target}/customfields" in read and f"/api/orders/{new}/items" in read
    changed = read_ledger().order("rs", str(target))
    assert (changed.state, changed.vendor_state) == ("unknown", "Awaiting Legal Review")


async def test_drafts_expire_on_the_simulators_clock_and_stay_as_expired(reseller, service,
                                                                         read_ledger, clock):
    sim = await reseller(orders=0)
    soon = sim.add_order(status="Draft", items=1, at=clock.now - 6 * DAY)
    later = sim.add_order(status="Draft", items=1)
    clock.advance(10)
    async with service(sim) as svc:
        await poll(svc)
        clock.advance(DAY + 1)                # soon's 7 days are over: the vendor deletes it
        before = len(sim.requests)
        result = await poll(svc)
        assert result.changed == 1
        assert soon not in sim.orders and sim.deleted == [soon]
        assert [r.path for r in sim.requests[before:]
                if r.path not in ("/api/orders", "/oauth/token")] == [
            f"/api/orders/{soon}"]            # one read of the lapsed draft, answered 404
        again = await poll(svc)
    gone = read_ledger().order("rs", str(soon))
    assert (gone.state, gone.vendor_state) == ("expired", "Draft (expired)")
    assert gone.items and gone.data["gone_since"]
    assert [e.kind for e in gone.events] == ["appeared", "state_changed"]
    assert read_ledger().order("rs", str(later)).state == "draft"
    assert again.requests == 1              # an expired draft costs nothing afterwards


async def test_execution_is_tracked_to_completed_and_to_failed(reseller, service, read_ledger,
                                                              clock):
    sim = await reseller(orders=0, execution_s=600)
    ok = sim.add_order(status="Draft", items=1)
    bad = sim.add_order(status="Draft", items=2)
    sim.fail_execution.add(bad)
    async with service(sim) as svc:
        await poll(svc)
        for oid in (ok, bad):
            await svc.runners["rs"].adapter.api.checkout(str(oid))
        clock.advance(60)
        await poll(svc)
        states = {read_ledger().order("rs", str(o)).state for o in (ok, bad)}
        assert states == {"in_production"}
        clock.advance(600)
        await poll(svc)
        before = len(sim.requests)
        idle = await poll(svc)
    done, failed = read_ledger().order("rs", str(ok)), read_ledger().order("rs", str(bad))
    assert (done.state, done.vendor_state) == ("completed", "Executed")
    assert (failed.state, failed.vendor_state) == ("failed", "Submitted")
    assert failed.data["execution"] == {"status": "Failed",
                                           "message": "Provisioning failed at the vendor"}
    assert idle.requests == 1 and len(sim.requests) == before + 1   # Failed is not re-read


async def test_first_sync_resumes_from_the_stored_page(reseller, service, read_ledger):
    sim = await reseller(orders=30)
    async with service(sim, page_size=10) as svc:
        sim.faults.add("status", status=500, times=10, method="GET",
                       path_prefix="/api/orders?stage=All&$orderby=id+asc&pageIndex=3")
        [failed] = await svc.run_once()
        assert failed.errors
        assert read_ledger().cursor("rs", "orders")["resume_page"] == 3
        sim.faults.clear()
        before = len(sim.requests)
        await poll(svc)
    assert [q["pageIndex"] for q in lists(sim, before)][0] == ["3"]
    assert len(read_ledger().orders(instance="rs")) == 30


async def test_an_order_with_an_odd_id_is_stored_without_requests_on_its_id(reseller, service,
                                                                            read_ledger):
    sim = await reseller(orders=5)
    odd = sorted(sim.orders)[2]
    sim.orders[odd]["id"] = "../../oauth/token"
    async with service(sim) as svc:
        result = await poll(svc)
    assert result.new == 5
    assert not any(".." in r.path or r.path.count("/oauth/token") and r.method == "GET"
                   for r in sim.requests)
    assert read_ledger().order("rs", "../../oauth/token").items == ()
