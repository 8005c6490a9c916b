"""The morning report over a ledger built by real syncs of three simulators, with one cause
of every kind planted through the vendors' own controls (tests/report_support.py): each is
reported with its order, age and reason, and each resolves when its cause clears."""

from __future__ import annotations

from ordersync.clock import iso
from ordersync.model import ActionState
from ordersync.report.detect import seconds
from tests.report_support import DAY, plant_everything, report_site


def by_key(report: dict) -> dict[str, dict]:
    return {e["key"]: e for e in report["exceptions"]}


async def test_every_planted_exception_is_reported_then_resolves_when_its_cause_clears(
        tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        keys = await plant_everything(site)
        clock.advance(2 * DAY)
        await site.sync()
        first = site.report()
        found = by_key(first)
        assert set(keys.values()) <= set(found), sorted(found)
        for kind, key in keys.items():
            assert found[key]["kind"] == kind
            assert (found[key]["status"], found[key]["resolved"]) == ("new", None)
            assert found[key]["first_seen"] == iso(clock())

        # needs a person: the uncertain action first, with what is known
        assert first["exceptions"][0]["key"] == keys["uncertain"]
        uncertain = found[keys["uncertain"]]
        assert uncertain["needs_person"] and uncertain["action"] is not None
        assert uncertain["order"] == first["exceptions"][0]["order"]
        assert "may or may not have taken effect" in uncertain["reason"]
        [attempt] = uncertain["detail"]["attempts_log"]
        assert (attempt["status"], attempt["request"].split()[0]) == (503, "APPROVE")
        assert "HTTP 503" in uncertain["detail"]["last_error"]
        assert first["counts"]["needs_person"] == 1

        stuck = found[keys["stuck"]]
        assert stuck["order"] == site.planted["stuck_order"]
        assert stuck["reason"].startswith("pending (waits for approval), customer ")
        assert stuck["age_s"] >= 2 * DAY                  # how long the order has waited
        expires = site.resell.orders[int(site.planted["draft"])]["expirationDate"]
        assert found[keys["expiring"]]["reason"] == f"order expires {expires}"
        assert found[keys["expiring"]]["detail"]["expires"] == expires
        problem = found[keys["problem"]]["reason"]
        assert "FileNotFoundAtUrl" in problem and "photo " in problem
        assert "gave up" in found[keys["action_dead"]]["reason"]
        assert "64 bits" in found[keys["unreadable"]]["reason"]
        down = found[keys["vendor_down"]]
        assert down["vendor"] == "gone" and "polls failed in a row" in down["reason"]

        # vendor health first, freshness the first thing in it
        vendors = {v["vendor"]: v for v in first["vendors"]}
        assert list(first)[:4] == ["generated_at", "since", "thresholds", "vendors"]
        assert list(vendors["fw"])[0] == "freshness_s"
        assert vendors["fw"]["status"] == "ok" and 0 <= vendors["fw"]["freshness_s"] < 60
        assert vendors["gone"]["status"] == "down"
        assert vendors["gone"]["freshness_s"] >= 2 * DAY
        assert vendors["gone"]["error"]["class"] == "CannotConnect"

        # the summary: orders per instance and state, changes, value per currency
        summary = first["summary"]
        assert summary["total_orders"]["fw"] == 30
        assert sum(summary["orders"]["prints"].values()) == summary["total_orders"]["prints"]
        assert summary["changes"]["prints"].get("state_changed", 0) >= 1
        currencies = {(v["vendor"], v["currency"]) for v in summary["values"]}
        assert ("resell", "EUR") in currencies and ("prints", None) in currencies

        # a second report with nothing changed: the same exceptions persist
        clock.advance(60)
        again = by_key(site.report(since=clock() - 30))
        assert again[keys["stuck"]]["status"] == "persisting"
        assert again[keys["stuck"]]["first_seen"] == iso(clock() - 60)

        # every cause clears
        site.fw.set_state(site.planted["stuck_order"], "approved")
        site.resell.set_status(site.planted["draft"], "Canceled")
        site.prints.set_status(site.planted["photo_order"], "Cancelled")
        site.prints.plant(site.planted["unreadable_order"], None)  # the vendor fixes it
        ledger = site.ledger()
        try:
            for key in ("uncertain", "action_dead"):   # a person decides about both
                action_id = int(keys[key].split(":")[1])
                assert ledger.outbox.cancel(action_id, clock()).state is ActionState.CANCELLED
        finally:
            ledger.close()
        await site.gone_back()
        clock.advance(3600)
        cleared_at = clock()
        await site.sync()
        after = site.report(since=cleared_at - 60)
        resolved = by_key(after)
        for kind, key in keys.items():
            assert resolved[key]["status"] == "resolved", (kind, resolved[key])
            assert resolved[key]["resolved"] == iso(cleared_at)
        assert after["counts"]["needs_person"] == 0
        assert {v["vendor"]: v["status"] for v in after["vendors"]}["gone"] == "ok"

        # resolved earlier than --since: no longer listed
        later = by_key(site.report(since=clock() + 1))
        assert not set(keys.values()) & set(later)


async def test_one_vendor_only(tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        report = site.report(vendor="fw")
        assert [v["vendor"] for v in report["vendors"]] == ["fw"]
        assert {e["vendor"] for e in report["exceptions"]} <= {"fw"}
        assert list(report["summary"]["orders"]) == ["fw"]


async def test_an_order_already_waiting_when_first_synced_is_stuck_since_its_last_change(
        tmp_path, clock):
    """A fresh ledger still reports an order that has waited for days at the vendor: its wait
    counts from the vendor's last change of it, not from the ledger's first sight."""
    async with report_site(tmp_path, clock) as site:
        ledger = site.ledger()
        try:
            waiting = {o.vendor_id: o.modified for o in ledger.orders(instance="fw")
                       if o.vendor_state == "pending"}
        finally:
            ledger.close()
        long_ago = {i: m for i, m in waiting.items()
                    if m and seconds(m) < clock() - site.config.report.stuck_after_s}
        assert long_ago, waiting       # the seeded history holds some
        found = by_key(site.report())  # no time has passed since the ledger first saw them
        for order_id, modified in long_ago.items():
            stuck = found[f"stuck:fw:{order_id}"]
            assert stuck["age_s"] >= clock() - seconds(modified) - 1
        for order_id in set(waiting) - set(long_ago):
            assert f"stuck:fw:{order_id}" not in found
