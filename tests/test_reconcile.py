"""``ordersync reconcile``: a vendor re-read in full against the ledger; each difference
(changed, vanished, unknown to the ledger) recorded as a drift event and exception, counted,
shown by the report, and resolved once a sync brings the ledger back in step."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace

from ordersync.daemon import LedgerLock
from ordersync.report.reconcile import reconcile
from tests.cli_support import arun_cli, json_data, one_error_line, start_cli
from tests.report_support import DAY, ENV, report_site


async def test_drift_is_counted_recorded_reported_and_cleared_by_a_sync(tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        fw = site.fw
        approved = [i for i in fw.order_ids() if fw.get_order(i)["state"] == "approved"]
        changed, vanished = approved[0], approved[1]
        fw.touch(changed, adminComment="edited behind the ledger's back")
        fw.set_state(vanished, "cart")                 # carts are in no admin list
        unknown = fw.add_order("approved")
        ledger = site.ledger()
        try:
            events_before = ledger.count_events("fw")
            found = await reconcile(site.config.vendor("fw"), ledger, clock=clock,
                                    sleep=clock.sleep)
            assert found.counts() == {"matched": 28, "missing": 1, "unexpected": 1,
                                      "mismatched": 1}
            reasons = {d.vendor_id: d.reason for d in found.differences}
            assert reasons == {
                changed: "changed: the vendor's copy differs from the ledger's",
                vanished: "missing: the vendor no longer lists it (approved in the ledger)",
                unknown: "unexpected: the vendor has it (approved), the ledger does not"}
            assert ledger.count_events("fw") == events_before + 3
            drift = ledger.order("fw", changed).events[-1]
            assert (drift.kind, drift.source, drift.detail) == (
                "drift", "reconcile", reasons[changed])
            assert (drift.from_state, drift.to_state, drift.to_vendor_state) == (
                "approved", "approved", "approved")          # as stored: nothing changed
            stored = ledger.order("fw", changed)
            assert stored.comment != "edited behind the ledger's back"   # reported, not fixed
            again = await reconcile(site.config.vendor("fw"), ledger, clock=clock,
                                    sleep=clock.sleep)
            assert again.counts() == found.counts()
            assert ledger.count_events("fw") == events_before + 3   # no event twice
        finally:
            ledger.close()

        report = site.report()
        [counts] = [d for d in report["drift"]["vendors"] if d["vendor"] == "fw"]
        assert {k: counts[k] for k in found.counts()} == found.counts()
        rows = {e["order"]: e for e in report["drift"]["rows"]}
        assert {o: e["reason"] for o, e in rows.items()} == reasons
        assert all(e["key"] == f"drift:fw:{o}" and e["resolved"] is None
                   for o, e in rows.items())

        # the CLI: the same counts, exit 1 while anything differs
        result = await arun_cli("--config", str(site.config_path), "reconcile", "--vendor",
                                "fw", "--json", env=ENV)
        assert result.returncode == 1, result
        [data] = json_data(result)["vendors"]
        assert {k: data[k] for k in found.counts()} == found.counts()

        # back in step: the vanished order is listed again, a full scan reads the rest
        fw.set_state(vanished, "approved")
        clock.advance(DAY + 1)
        await site.sync()
        result = await arun_cli("--config", str(site.config_path), "reconcile", "--vendor",
                                "fw", env=ENV)
        assert result.returncode == 0, result
        assert result.stdout.startswith("fw: 31 matched, 0 missing, 0 unexpected,"
                                        " 0 mismatched"), result
        cleared = {e["order"]: e for e in site.report(since=clock() - 60)["drift"]["rows"]}
        assert set(cleared) == set(reasons)
        assert all(e["status"] == "resolved" for e in cleared.values())


async def test_reconcile_fails_with_one_line_and_report_runs_beside_the_daemon(
        tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        await site.gone_down()
        for _ in range(3):
            await site.sync()           # gone is down: three failed polls in a row
        result = await arun_cli("--config", str(site.config_path), "reconcile", "--vendor",
                                "gone", env=ENV)
        assert one_error_line(result, 1, "gone: ", "cannot connect").count("gone: ") == 1
        unknown = await arun_cli("--config", str(site.config_path), "reconcile", "--vendor",
                                 "nope", env=ENV)
        one_error_line(unknown, 2, "no vendor instance 'nope'")
        lock = LedgerLock(site.config.ledger_path)      # as a running daemon holds it
        lock.acquire()
        try:
            busy = await arun_cli("--config", str(site.config_path), "reconcile", env=ENV)
            beside = await arun_cli("--config", str(site.config_path), "report", "--format",
                                    "csv", env=ENV)
        finally:
            lock.release()
        one_error_line(busy, 3, "another ordersync process")
        assert beside.returncode == 0 and "vendor_down:gone" in beside.stdout, beside


async def test_a_walk_cut_short_resolves_no_drift_it_did_not_look_at(tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        fw = site.fw
        approved = sorted((i for i in fw.order_ids() if fw.get_order(i)["state"] == "approved"),
                          key=int)
        changed, vanished = approved[0], approved[1]     # the oldest: on the last pages
        fw.touch(changed, adminComment="edited behind the ledger's back")
        fw.set_state(vanished, "cart")
        ledger = site.ledger()
        try:
            found = await reconcile(site.config.vendor("fw"), ledger, clock=clock,
                                    sleep=clock.sleep)
            assert (found.missing, found.mismatched) == (1, 1)
            fw.page_size = 5
            cut = await reconcile(replace(site.config.vendor("fw"), max_pages_per_poll=1),
                                  ledger, clock=clock, sleep=clock.sleep)
        finally:
            ledger.close()
        assert cut.incomplete and cut.missing == 0
        assert {changed, vanished}.isdisjoint(d.vendor_id for d in cut.differences)
        rows = {e["order"]: e for e in site.report()["drift"]["rows"]}
        assert all(rows[o]["resolved"] is None for o in (changed, vanished)), rows


async def test_an_interrupted_reconcile_records_nothing_of_the_vendor_it_was_reading(
        tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        site.fw.set_state(site.fw.order_ids()[0], "cart")            # fw drifts: recorded
        unknown = site.prints.add_order("NotYetSubmitted")   # drift at prints: never recorded
        ledger = site.ledger()
        try:
            events = ledger.count_events("prints")
        finally:
            ledger.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            site.prints.faults.add("delay", times=1000, method="GET", path_prefix="/v2.2/Orders",
                                   delay_s=3.0)   # the signal comes first
            proc = await start_cli("--config", str(site.config_path), "reconcile", env=ENV)
            while not any(r.fault == "delay" for r in site.prints.requests):
                await asyncio.sleep(0.05)
            proc.send_signal(signum)
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            site.prints.faults.clear()
            assert proc.returncode == 130, (signum, out, err)
            assert err.decode().startswith(f"ordersync: interrupted by {signum.name}"), err
            site.prints.requests.clear()
        report = site.report()
        at = {d["vendor"]: d["at"] for d in report["drift"]["vendors"]}
        assert at["fw"] is not None and at["gone"] is not None and at["prints"] is None
        assert {e["vendor"] for e in report["drift"]["rows"]} == {"fw"}
        ledger = site.ledger()
        try:
            assert ledger.count_events("prints") == events
        finally:
            ledger.close()
        lock = LedgerLock(site.config.ledger_path)      # released on the way out
        lock.acquire()
        lock.release()
        assert unknown not in {e["order"] for e in report["exceptions"]}
