"""The ledger on its own: migrations, page writes, the outbox's rules."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from ordersync.errors import ConfigError
from ordersync.ledger import (
    Ledger,
    Outbox,
    OutboxError,
    StoredOrder,
    ledger_location,
    migrations,
    schema,
)
from ordersync.ledger.schema import DEFERRED_INDEXES
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
    assert applied == ["m001_orders_items_events_sync_state", "m002_outbox",
                       "m003_orders_read_at", "m004_action_notes", "m005_orders_problem",
                       "m006_action_chains", "m007_vendor_health", "m008_exceptions",
                       "m009_items_packed"]


def test_a_ledger_made_by_the_m007_schema_upgrades_in_place(tmp_path):
    """A ledger made by the schema before m009: its items move to the packed table."""
    path = tmp_path / "old.db"
    old = Migrations("ordersync")
    for name in ("m001_orders_items_events_sync_state", "m002_outbox", "m003_orders_read_at",
                 "m004_action_notes", "m005_orders_problem", "m006_action_chains",
                 "m007_vendor_health"):
        old()(getattr(schema, name))
    db = Database(path)
    old.apply(db)
    db.execute("INSERT INTO orders (instance, vendor_id, adapter, state, vendor_state, raw,"
               " digest, first_seen, updated_at) VALUES ('fw', '1', 'fotoware', 'submitted',"
               " 'pending', '{}', x'00', 't', 't')")
    db.conn.executemany(
        "INSERT INTO items (instance, vendor_id, position, key, title, quantity, data)"
        " VALUES ('fw', '1', ?, ?, 'photo', ?, '{\"a\": 1}')", [(0, "k0", 2), (1, "k1", 1)])
    db.conn.commit()
    db.close()

    ledger = Ledger(path)
    try:
        assert migrations.pending(ledger.db) == []
        items = ledger.order("fw", "1").items
        assert [(i.key, i.quantity, i.data) for i in items] == [("k0", 2, {"a": 1}),
                                                                 ("k1", 1, {"a": 1})]
        sql = ledger.db.execute("SELECT sql FROM sqlite_master WHERE name = 'items'").fetchone()
        assert "WITHOUT ROWID" not in sql[0]
        with pytest.raises(sqlite3.IntegrityError):      # still one item per position
            ledger.db.execute("INSERT INTO items (instance, vendor_id, position, key, title,"
                              " quantity) VALUES ('fw', '1', 0, 'again', 't', 1)")
    finally:
        ledger.close()


def test_a_backfill_into_an_empty_ledger_builds_the_read_indexes_at_its_end(tmp_path):
    def present(ledger) -> set[str]:
        return {name for (name,) in ledger.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")} & set(DEFERRED_INDEXES)

    ledger = Ledger(tmp_path / "l.db")
    assert present(ledger) == set(DEFERRED_INDEXES)
    assert ledger.defer_indexes() is True
    assert present(ledger) == set()
    ledger.apply_page("fw", "fotoware", "orders", [order("1")], {"page": 1}, now=1.0)
    ledger.close()                      # as if killed before the backfill ended
    ledger = Ledger(tmp_path / "l.db")  # ... the next opening builds them
    assert present(ledger) == set(DEFERRED_INDEXES)
    assert ledger.defer_indexes() is False          # never once an order is stored
    assert present(ledger) == set(DEFERRED_INDEXES)
    ledger.close()


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
    events = ledger.order("fw", "1").events
    assert [(e.kind, e.from_state, e.to_state) for e in events] == [
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
    assert outbox.attempts(a.id)[0].status == 200


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


def test_reads_are_typed_records_named_like_the_write_side():
    ledger = Ledger(memory=True)
    written = Order(vendor_id="7", state=State.APPROVED, vendor_state="approved", reference="R",
                    created="2026-01-02T00:00:00Z", modified=None, raw=b'{"id": "7"}',
                    items=(Item(key="k", title="t", quantity=2, data={"a": 1}),),
                    url="/o/7", customer="C", data={"x": 1})
    ledger.apply_page("fw", "fotoware", "orders", [written], None, 1.0)
    stored = ledger.order("fw", "7")
    assert isinstance(stored, StoredOrder) and stored.target == "fw:7"
    same = ("vendor_id", "state", "vendor_state", "reference", "created", "modified", "items",
            "url", "customer", "expires", "comment", "data")
    assert {f: getattr(stored, f) for f in same} == {f: getattr(written, f) for f in same}
    assert stored.raw == {"id": "7"}
    listed = ledger.orders()
    assert [o.vendor_id for o in listed] == ["7"] and listed[0].raw is None
    assert ledger.in_vendor_state("fw", "approved")[0].url == "/o/7"
    assert [(c.instance, c.state, c.orders) for c in ledger.summary()] == [
        ("fw", State.APPROVED, 1)]


def test_vendor_health_counts_failures_in_a_row_and_redacts_the_error():
    from ordersync.redaction import register

    register("hunter2-secret")
    ledger = Ledger(memory=True)
    assert ledger.vendor_health() == []
    ledger.record_poll("fw", 100.0, error_class="AuthError", error="401 for hunter2-secret")
    ledger.record_poll("fw", 160.0, error_class="VendorUnavailable", error="503")
    failing = ledger.vendor_health("fw")[0]
    assert (failing.consecutive_failures, failing.last_success_at, failing.last_error_class,
            failing.last_error, failing.healthy) == (2, None, "VendorUnavailable", "503", False)
    ledger.record_poll("fw", 100.0, error_class="AuthError", error="401 for hunter2-secret")
    assert "hunter2" not in ledger.vendor_health("fw")[0].last_error
    ledger.record_poll("fw", 220.0)
    ledger.set_paused("fw", True)
    healthy = ledger.vendor_health("fw")[0]
    assert (healthy.consecutive_failures, healthy.healthy, healthy.paused) == (0, True, True)
    assert healthy.last_success_at == healthy.last_poll_at
    assert healthy.last_error_class == "AuthError", "the last error stays on record"


@pytest.mark.parametrize("url, path", [
    ("sqlite:///var/x.db", "var/x.db"), ("sqlite:////srv/x.db", "/srv/x.db"),
    ("var/y.db", "var/y.db"), ("/abs/z.db", "/abs/z.db")])
def test_ledger_url_names_an_sqlite_file(url, path):
    assert str(ledger_location(url)) == path


def test_another_backend_is_a_clear_error_that_never_shows_the_url():
    with pytest.raises(ConfigError) as caught:
        ledger_location("postgresql://app:s3cret@db.example.com/ledger")
    assert "'postgresql' ledger is not available yet" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="names no ledger file"):
        ledger_location("sqlite:///")
