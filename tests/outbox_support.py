"""Helpers for tests of the outbox: read the ledger file between runs, open synced services.

Each reader opens its own synchronous ``Ledger`` on the file and closes it again, so that it
sees what a service (in this process or another) has committed by then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from pathlib import Path

from ordersync.daemon import Service
from ordersync.ledger import Ledger


@contextmanager
def open_ledger(path: Path) -> Iterator[Ledger]:
    """A synchronous ``Ledger`` on ``path``, closed when the block ends."""
    ledger = Ledger(path)
    try:
        yield ledger
    finally:
        ledger.close()


def read_actions(path: Path) -> list:
    """Every action in the outbox of the ledger at ``path``."""
    with open_ledger(path) as ledger:
        return ledger.outbox.list()


def read_action(path: Path, action_id: int) -> tuple:
    """One action and the HTTP attempts the ledger logged for it: ``(action, attempts)``."""
    with open_ledger(path) as ledger:
        return ledger.outbox.get(action_id), _shown(ledger.outbox.attempts(action_id))


def read_outbox(path: Path) -> tuple[list, dict[int, list[dict]]]:
    """Every action, and every action's logged attempts by its id: ``(actions, attempts)``."""
    with open_ledger(path) as ledger:
        actions = ledger.outbox.list()
        return actions, {a.id: _shown(ledger.outbox.attempts(a.id)) for a in actions}


def read_orders(path: Path, instance: str, ids: Iterable[str]) -> dict[str, dict | None]:
    """The ledger's copy of each order of ``instance`` named in ``ids`` (None if it has none),
    as ``orders show --json`` prints it."""
    with open_ledger(path) as ledger:
        orders = {oid: ledger.order(instance, oid) for oid in ids}
    return {oid: order.as_json() if order else None for oid, order in orders.items()}


def _shown(attempts: list) -> list[dict]:
    """Attempts as ``actions show --json`` prints them (``attempts_log``)."""
    return [asdict(attempt) for attempt in attempts]


@asynccontextmanager
async def synced_services(start_sim: Callable, make_config: Callable, ledger_path: Path, clock,
                          *, orders: int, **defaults) -> AsyncIterator[Callable]:
    """``make(orders=orders, **overrides)`` -> ``(sim, config, service)``: a simulator from
    ``start_sim``, a configuration from ``make_config(sim, ledger_path, **defaults,
    **overrides)``, and a Service on it, open on the fake ``clock`` and synced once. Every
    service made is closed when the block ends."""
    opened: list[Service] = []

    async def make(orders: int = orders, **overrides):
        sim = await start_sim(orders=orders)
        config = make_config(sim, ledger_path, **{**defaults, **overrides})
        service = Service(config, sleep=clock.sleep, clock=clock, handle_signals=False)
        await service.open()
        opened.append(service)
        await service.run_once()
        return sim, config, service

    try:
        yield make
    finally:
        for service in opened:
            await service.close()
