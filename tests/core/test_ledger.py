"""The ledger on its own: migrations, page writes, the outbox's rules."""

from __future__ import annotations

import pytest

from ordersync.ledger import Ledger, Outbox, OutboxError, migrations
from ordersync.model import ActionState, Item, Order, State


def order(vendor_id: str, state=State.SUBMITTED, vendor_state="pending", raw=b"{}") -> Order:
    return Order(vendor_id=vendor_id, state=state, vendor_state=vendor_state, reference=None,
                 created="2026-01-01T00:00:00Z", modified=None, raw=raw,
                 items=(Item(key="k", title="t"),))


def test_migrations_are_recorded_once(tmp_path):
    Ledger(tmp_path / "l.db").close()
    ledger = Ledger(tmp_path / "l.db")
    applied = [r["name"] for r in ledger.db["_sqlite_migrations"].rows]
    assert migrations.pending(ledger.db) == []
    ledger.close()
    assert applied == ["m001_orders_items_events_sync_state", "m002_outbox", "m003_orders_read_at", "m004_action_notes",
                       "m005_orders_problem", "m006_action_chains"]


def test_page_and_cursor_commit_together_and_repeat_writes_nothing():
    ledger = Ledger(memory=True)
    result = ledger.apply_page("fw", "fotoware", "orders", [order("1"), order("2")],
                               {"at": 1}, now=10.0)
    assert (result.new, result.changed) == (2, 0)
    changes = ledger.db.conn.total_changes
    again = ledger.apply_page("fw", "fotoware", "orders", [order("1"), order("2")],
                              {"at": 1}, now=11.0)
    assert (again.new, again.changed, again.unchanged) == (0, 0, 2)
    assert ledger.db.conn.total_changes == changes
    moved = ledger.apply_page("fw", "fotoware", "orders",
                              [order("1", State.APPROVED, "approved", b'{"x":1}')], None, 12.0)
    assert moved.changed == 1
    events = ledger.order("fw", "1")["events"]
    assert [(e["kind"], e["from_state"], e["to_state"]) for e in events] == [
        ("appeared", None, "submitted"), ("state_changed", "submitted", "approved")]
    assert ledger.cursor("fw", "orders") == {"at": 1}


def test_a_failing_page_rolls_back_with_its_cursor():
    ledger = Ledger(memory=True)
    bad = order("1")
    object.__setattr__(bad, "raw", b"\xff\xfe")  # not UTF-8: the write fails half way
    with pytest.raises(UnicodeDecodeError):
        ledger.apply_page("fw", "fotoware", "orders", [order("0"), bad], {"page": 2}, 1.0)
    assert ledger.orders() == []
    assert ledger.cursor("fw", "orders") is None


def test_same_key_is_one_action_and_a_reused_key_is_refused():
    outbox = Outbox(Ledger(memory=True))
    first, created = outbox.enqueue("fw", "1", "approve", {"comment": "ok"}, "k", 1.0)
    again, created_again = outbox.enqueue("fw", "1", "approve", {"comment": "ok"}, "k", 2.0)
    assert created and not created_again and first.id == again.id
    with pytest.raises(OutboxError, match="already names action #1"):
        outbox.enqueue("fw", "1", "reject", {}, "k", 3.0)
    assert len(outbox.list()) == 1


def test_one_order_sees_its_actions_in_order():
    outbox = Outbox(Ledger(memory=True))
    a, _ = outbox.enqueue("fw", "1", "update", {}, "a", 1.0)
    b, _ = outbox.enqueue("fw", "1", "approve", {}, "b", 1.0)
    c, _ = outbox.enqueue("fw", "2", "approve", {}, "c", 1.0)
    assert [x.id for x in outbox.due("fw", 5.0)] == [a.id, c.id]
    started = outbox.start(a.id, 5.0)
    assert started.state is ActionState.IN_FLIGHT and started.attempts == 1
    assert outbox.start(a.id, 5.0) is None, "an in-flight action cannot be started twice"
    assert [x.id for x in outbox.due("fw", 5.0)] == [c.id]
    outbox.finish(started, ActionState.SUCCEEDED, 6.0, result={"ok": True},
                  http_log=[{"request": "APPROVE /x", "status": 200, "latency_ms": 3.0}])
    assert [x.id for x in outbox.due("fw", 6.0)] == [b.id, c.id]
    assert outbox.attempts(a.id)[0]["status"] == 200


def test_recovery_retry_and_cancel_rules():
    outbox = Outbox(Ledger(memory=True))
    a, _ = outbox.enqueue("fw", "1", "approve", {}, "a", 1.0)
    outbox.start(a.id, 2.0)
    assert outbox.recover_in_flight("fw", 3.0) == 1
    recovered = outbox.get(a.id)
    assert recovered.state is ActionState.PENDING and recovered.needs_verification
    with pytest.raises(OutboxError, match="only dead, failed or uncertain"):
        outbox.retry(a.id, 4.0)
    started = outbox.start(a.id, 4.0)
    outbox.finish(started, ActionState.UNCERTAIN, 5.0, error="cannot tell")
    retried = outbox.retry(a.id, 6.0)
    assert retried.state is ActionState.PENDING and not retried.needs_verification
    assert outbox.cancel(a.id, 7.0).state is ActionState.CANCELLED
    with pytest.raises(OutboxError, match="no action #99"):
        outbox.get(99)
