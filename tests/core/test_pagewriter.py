"""The page writer (ledger/pagewriter.py): a real child process writing pages into a real
ledger file, asked as a poll asks it, and compared with the same pages written in process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import orjson
import pytest

from ordersync.ledger import Ledger
from ordersync.ledger.orders import page_rows
from ordersync.ledger.pagewriter import PageWriter, Skipped, Unstorable, payload
from ordersync.model import Item, Order, State

NOW = 1_790_000_000.0


def order(n: int, **changes) -> Order:
    fields = dict(vendor_id=str(n), state=State.SUBMITTED, vendor_state="pending",
                  reference=f"R{n}", created="2026-01-01T00:00:00Z", modified=None,
                  raw=orjson.dumps({"id": n, **{k: str(v) for k, v in changes.items()}}),
                  items=(Item(f"k{n}", "print", 2, data={"size": "A4"}),), url=f"/o/{n}",
                  data={"note": f"order {n}"})
    return Order(**{**fields, **changes})


def page(orders: list[Order], cursor: dict | None) -> bytes:
    return payload("fw", "fotoware", "orders", page_rows(orders), cursor, NOW, "poll", NOW)


def ready(writer: PageWriter, timeout_s: float = 30.0) -> PageWriter:
    deadline = time.monotonic() + timeout_s
    while not writer.ready:
        assert time.monotonic() < deadline, "the page writer did not open the ledger"
        time.sleep(0.02)
    return writer


def contents(ledger: Ledger) -> tuple:
    orders = ledger.orders(instance="fw")
    events = [(o.vendor_id, [(e.kind, e.to_state, e.detail) for e in ledger.order(
        "fw", o.vendor_id).events]) for o in orders]
    return orders, events, ledger.cursor("fw", "orders")


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(tmp_path / "ledger.db")
    yield opened
    opened.close()


def test_pages_written_by_the_writer_are_those_written_in_process(ledger, tmp_path):
    first = [order(n) for n in range(1, 6)]
    second = [order(3, vendor_state="approved", state=State.APPROVED), order(6)]
    writer = ready(PageWriter.start(ledger.path))
    try:
        writer.send(page(first, {"page": 1}))
        one = writer.receive()
        writer.send(page(second, {"page": 2}))
        two = writer.receive()
        writer.send(page(first[3:], {"page": 3}))       # the same orders again: nothing new
        three = writer.receive()
    finally:
        writer.close()
    assert (one.new, two.new, two.changed, three.unchanged) == (5, 1, 1, 2)

    here = Ledger(tmp_path / "here.db")
    try:
        for orders, n in ((first, 1), (second, 2), (first[3:], 3)):
            here.apply_page("fw", "fotoware", "orders", orders, {"page": n}, NOW, "poll", NOW)
        assert contents(ledger) == contents(here)
    finally:
        here.close()
    assert contents(ledger)[2] == {"page": 3}
    assert [kind for kind, _, _ in dict(contents(ledger)[1])["3"]] == ["appeared",
                                                                        "state_changed"]


def test_a_page_the_ledger_cannot_store_comes_back_rolled_back_and_stops_the_next(ledger):
    """Two pages with the writer, the first with a value SQLite cannot hold: it is rolled
    back, the second is not applied (its parent writes the first one first), and nothing is
    applied until the parent resumes the writer."""
    writer = ready(PageWriter.start(ledger.path))
    try:
        writer.send(page([order(1), order(2, modified=2**64 - 1)], {"page": 1}))
        writer.send(page([order(3)], {"page": 2}))
        with pytest.raises(Unstorable):
            writer.receive()
        with pytest.raises(Skipped):
            writer.receive()
        writer.send(page([order(4)], {"page": 3}))
        with pytest.raises(Skipped):
            writer.receive()
        assert (ledger.totals().orders, ledger.cursor("fw", "orders")) == (0, None)
        writer.resume()
        writer.send(page([order(1)], {"page": 1}))
        assert writer.receive().new == 1
    finally:
        writer.close()
    assert (ledger.totals().orders, ledger.cursor("fw", "orders")) == (1, {"page": 1})


def test_an_sqlite_error_comes_back_as_the_same_exception(ledger):
    writer = ready(PageWriter.start(ledger.path))
    ledger.db.execute("ALTER TABLE events RENAME TO events_gone")
    try:
        writer.send(page([order(1)], {"page": 1}))
        with pytest.raises(sqlite3.OperationalError, match="no such table: events") as caught:
            writer.receive()
        assert caught.value.sqlite_errorname == "SQLITE_ERROR"
    finally:
        writer.close()
    assert ledger.db.execute("SELECT count(*) FROM orders").fetchone() == (0,)


def test_the_writer_does_not_outlive_its_parent(ledger):
    """kill -9 of the process that started it: Linux kills the writer too (PR_SET_PDEATHSIG),
    in the middle of whatever it was doing, so no half-page is ever committed by an orphan."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path;"
         " from ordersync.ledger.pagewriter import PageWriter;"
         " w = PageWriter.start(Path(sys.argv[1])); print(w.pid, flush=True); time.sleep(60)",
         str(ledger.path)],
        stdout=subprocess.PIPE, text=True)
    try:
        writer_pid = int(parent.stdout.readline())
        assert alive(writer_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(writer_pid):
            assert time.monotonic() < deadline, "the page writer outlived its parent"
            time.sleep(0.02)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped by init, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigint_and_sigterm_leave_the_writer_to_its_parent(ledger):
    """Ctrl-C reaches the whole process group and systemd's stop signal the whole unit: the
    writer finishes its page and waits for its parent to close its input."""
    writer = ready(PageWriter.start(ledger.path))
    try:
        os.kill(writer.pid, signal.SIGINT)
        os.kill(writer.pid, signal.SIGTERM)
        writer.send(page([order(1)], None))
        assert writer.receive().new == 1
    finally:
        writer.close()
    assert not alive(writer.pid)
