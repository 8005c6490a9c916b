"""Exceptions as state in the ledger: stable keys, first seen, persisting, resolved, reopened;
and a reconcile's counts and drift events (ledger/exceptions.py)."""

from __future__ import annotations

from ordersync.clock import iso
from ordersync.ledger import Finding, Ledger

T0 = 1_790_000_000.0


def stuck(order: str, reason: str = "pending for 2d") -> Finding:
    return Finding(f"stuck:fw:{order}", "stuck", "fw", reason, order, detail={"n": order})


def test_refresh_inserts_touches_resolves_and_reopens() -> None:
    ledger = Ledger(memory=True)
    first = ledger.refresh_exceptions([stuck("1"), stuck("2")], T0, kinds=("stuck",),
                                      instances=("fw",))
    assert first.new == ("stuck:fw:1", "stuck:fw:2") and not first.resolved

    second = ledger.refresh_exceptions([stuck("2", "pending for 3d")], T0 + 60,
                                       kinds=("stuck",), instances=("fw",))
    assert (second.new, second.persisting, second.resolved) == (
        (), ("stuck:fw:2",), ("stuck:fw:1",))
    rows = {e.key: e for e in ledger.exceptions(resolved_since=iso(T0))}
    assert rows["stuck:fw:1"].resolved_at == iso(T0 + 60)
    assert rows["stuck:fw:2"].first_seen == iso(T0)       # persisting keeps its first seen
    assert rows["stuck:fw:2"].last_seen == iso(T0 + 60)
    assert rows["stuck:fw:2"].reason == "pending for 3d"  # the latest reason
    assert rows["stuck:fw:2"].detail == {"n": "2"}
    assert [e.key for e in ledger.exceptions()] == ["stuck:fw:2"]   # open only

    third = ledger.refresh_exceptions([stuck("1"), stuck("2")], T0 + 120, kinds=("stuck",),
                                      instances=("fw",))
    assert third.new == ("stuck:fw:1",)                   # a cleared one that came back
    reopened = {e.key: e for e in ledger.exceptions()}["stuck:fw:1"]
    assert (reopened.first_seen, reopened.resolved_at) == (iso(T0 + 120), None)


def test_refresh_resolves_only_inside_its_scope() -> None:
    ledger = Ledger(memory=True)
    other = Finding("vendor_down:prints", "vendor_down", "prints", "3 polls failed")
    ledger.refresh_exceptions([stuck("1"), other], T0, kinds=("stuck", "vendor_down"),
                              instances=("fw", "prints"))
    done = ledger.refresh_exceptions([], T0 + 1, kinds=("stuck",), instances=("fw",))
    assert done.resolved == ("stuck:fw:1",)
    assert [e.key for e in ledger.exceptions()] == ["vendor_down:prints"]
    assert [e.key for e in ledger.exceptions(instance="fw")] == []


def test_a_reconcile_keeps_its_counts_and_one_event_per_new_difference() -> None:
    ledger = Ledger(memory=True)
    drift = Finding("drift:fw:7", "drift", "fw", "changed: state pending -> approved", "7")
    counts = {"matched": 9, "missing": 0, "unexpected": 0, "mismatched": 1}
    assert ledger.record_reconcile("fw", counts, [drift], T0).new == ("drift:fw:7",)
    ledger.record_reconcile("fw", counts, [drift], T0 + 5)        # the same difference again
    assert ledger.reconciled("fw") == {**counts, "at": iso(T0 + 5)}
    assert ledger.count_events("fw") == 1
    cleared = ledger.record_reconcile("fw", {**counts, "mismatched": 0}, [], T0 + 9)
    assert cleared.resolved == ("drift:fw:7",)
    assert ledger.reconciled("other") is None
