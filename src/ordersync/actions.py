"""Queueing actions (the outbox's front door) and waiting for them.

Every action is checked by its adapter before it is queued (``prepare``: the order exists
in the ledger, the vendor accepts the verb in the order's state, custom data passes the
site's rules); a batch is queued all or nothing, in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

import orjson

from .config import Config
from .daemon import LedgerBusy, Service
from .errors import ActionRefused
from .intake import UNREADABLE_STATE
from .ledger import open_ledger
from .model import ACTION_END_STATES, Action, ActionState
from .sync import build_adapter


def default_key(instance: str, vendor_id: str, kind: str, payload: dict) -> str:
    """The idempotency key of an action that was given none: same action, same key."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return f"{kind}:{instance}:{vendor_id}:{hashlib.blake2b(canonical, digest_size=8).hexdigest()}"


async def enqueue(
    config: Config,
    kind: str,
    targets: list[tuple[str, str | None]],
    params: dict,
    *,
    key: str | None = None,
    clock: Callable[[], float] = time.time,
) -> list[tuple[Action, bool]]:
    """Check and queue ``kind`` for every target; returns (action, newly queued) each.

    A target ``(instance, None)`` is an action that makes a new order at that instance.
    """
    if key is not None and len(targets) != 1:
        raise ActionRefused("--key names one action: give exactly one order with it")
    ledger = open_ledger(config.ledger_url)
    try:
        prepared = []
        adapters = {}
        try:
            for instance, vendor_id in targets:
                vendor = config.vendor(instance)
                if instance not in adapters:
                    adapters[instance] = build_adapter(vendor, clock=clock)
                _, _, adapter = adapters[instance]
                if kind not in adapter.action_kinds:
                    raise ActionRefused(f"{instance} ({vendor.adapter}) cannot {kind}; it can "
                                        + ", ".join(adapter.action_kinds))
                if vendor_id is None:  # the action makes a new order (Pwinty's create)
                    payload = await adapter.prepare(kind, None, params)
                    vendor_id = "new-" + default_key(instance, "", kind, payload)[-16:]
                else:
                    order = ledger.order(instance, vendor_id)
                    if order is None:
                        raise ActionRefused(f"no order {instance}:{vendor_id} in the ledger"
                                            " (is the id right? `ordersync sync --once` fetches"
                                            " new orders)")
                    if order.vendor_state == UNREADABLE_STATE:
                        raise ActionRefused(f"order {instance}:{vendor_id} could not be read"
                                            f" ({order.problem}): nothing can be done to it"
                                            " until it can")
                    payload = await adapter.prepare(kind, order, params)
                prepared.append((instance, vendor_id, payload))
        finally:
            for _, http, _ in adapters.values():
                await http.close()
        now = clock()
        with ledger.write():
            return [
                ledger.outbox.enqueue(instance, vendor_id, kind, payload,
                                      key or default_key(instance, vendor_id, kind, payload), now)
                for instance, vendor_id, payload in prepared
            ]
    finally:
        ledger.close()


async def wait_for(
    config: Config, action_ids: list[int], *, timeout_s: float,
    clock: Callable[[], float] = time.time,
) -> list[Action]:
    """Wait until every action has ended (or the timeout passes) and return them.

    Without a daemon, this process takes the ledger and runs the actions itself; with one
    running, it watches the ledger while the daemon works.
    """
    deadline = time.monotonic() + timeout_s
    instances = sorted({a.instance for a in _read(config, action_ids)})
    try:
        service = Service(config, clock=clock, handle_signals=False, vendors=instances)
        await service.open()
    except LedgerBusy:
        service = None
    try:
        while True:
            if service is not None:
                for instance in instances:
                    await service.drain_actions(instance, recover=True)
            actions = _read(config, action_ids)
            if all(a.state in ACTION_END_STATES or a.state is ActionState.UNCERTAIN
                   for a in actions) or time.monotonic() >= deadline:
                return actions
            await asyncio.sleep(_pause(actions, clock(), deadline - time.monotonic()))
    finally:
        if service is not None:
            await service.close()


def _pause(actions: list[Action], now: float, left_s: float) -> float:
    waiting = [a.next_attempt_at - now for a in actions if a.state is ActionState.PENDING]
    return max(0.05, min([0.2 if not waiting else max(min(waiting), 0.05), left_s]))


def _read(config: Config, action_ids: list[int]) -> list[Action]:
    """The actions as the ledger has them now (one connection for all of them)."""
    ledger = open_ledger(config.ledger_url)
    try:
        return [ledger.outbox.get(i) for i in action_ids]
    finally:
        ledger.close()
