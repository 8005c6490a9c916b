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
from .contract import ActionSpec, validate
from .daemon import LedgerBusy, Service
from .errors import ActionRefused, ParameterError
from .intake import UNREADABLE_STATE
from .ledger import open_ledger
from .model import ACTION_END_STATES, NEW_ORDER, Action, ActionState
from .registry import adapter as adapter_spec
from .sync import build_adapter

Request = tuple[str, str | None, str, dict]
"""(instance, order id or None for a new order, kind, the parameters ``prepare`` takes)."""


def default_key(instance: str, vendor_id: str, kind: str, payload: dict) -> str:
    """The idempotency key of an action that was given none: same action, same key."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return f"{kind}:{instance}:{vendor_id}:{hashlib.blake2b(canonical, digest_size=8).hexdigest()}"


def new_order_id(key: str) -> str:
    """The stand-in id of the order an action will create, until it has (one per key)."""
    return NEW_ORDER + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def command_spec(config: Config, instance: str, path: tuple[str, ...]) -> ActionSpec:
    """The action an instance's adapter declares under a command path."""
    name = config.vendor(instance).adapter
    declared = adapter_spec(name).actions
    found = next((a for a in declared if a.path == path), None)
    if found is None:
        raise ActionRefused(f"{instance} ({name}) has no `{' '.join(path)}`; its commands: "
                            + ", ".join(" ".join(a.path) for a in declared if a.path))
    return found


async def enqueue_command(
    config: Config,
    path: tuple[str, ...],
    targets: list[tuple[str, str | None]],
    values: dict,
    *,
    key: str | None = None,
    clock: Callable[[], float] = time.time,
) -> list[tuple[Action, bool]]:
    """Queue what a command declared under ``path`` asks, for every target.

    Each target's instance decides the adapter, and so the declaration that checks
    ``values`` (:func:`~ordersync.contract.validate`) and the kind that is queued.
    """
    requests: list[Request] = []
    for instance, vendor_id in targets:
        spec = command_spec(config, instance, path)
        extra = sorted(set(values) - {p.name for p in spec.params})
        if extra:
            raise ParameterError(extra[0], f"{instance} ({config.vendor(instance).adapter})"
                                 f" {spec.kind} does not take it")
        kind, params = spec.queue_as(validate(spec, values))
        requests.append((instance, vendor_id, kind, params))
    return await enqueue_requests(config, requests, key=key, clock=clock)


async def enqueue_chain(
    config: Config,
    instance: str,
    vendor_id: str | None,
    steps: list[tuple[str, dict]],
    *,
    key: str | None = None,
    clock: Callable[[], float] = time.time,
) -> list[tuple[Action, bool]]:
    """Queue ``steps`` (kind, raw values) at one instance as one chain, all or nothing.

    The first step acts on ``vendor_id`` (None: it creates the order); each later step
    runs after the one before it succeeded, on the same order.
    """
    if not steps:
        raise ActionRefused("a chain needs at least one step")
    name = config.vendor(instance).adapter
    spec = adapter_spec(name)
    requests: list[Request] = []
    for number, (kind, values) in enumerate(steps, 1):
        declared = spec.action(kind)
        if declared is None:
            raise ActionRefused(f"step {number}: {instance} ({name}) has no action {kind!r};"
                                " it has " + ", ".join(a.kind for a in spec.actions))
        if number == 1 and declared.creates and vendor_id is not None:
            raise ActionRefused(f"step 1 ({kind}) creates an order; give none (not"
                                f" {instance}:{vendor_id})")
        try:
            queued_kind, params = declared.queue_as(validate(declared, values))
        except ParameterError as exc:
            raise ActionRefused(f"step {number} ({kind}): {exc}") from None
        requests.append((instance, vendor_id if number == 1 else None, queued_kind, params))
    return await enqueue_requests(config, requests, key=key, chain=True, clock=clock)


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
    return await enqueue_requests(config, [(i, v, kind, params) for i, v in targets],
                                  key=key, clock=clock)


async def enqueue_requests(
    config: Config,
    requests: list[Request],
    *,
    key: str | None = None,
    chain: bool = False,
    clock: Callable[[], float] = time.time,
) -> list[tuple[Action, bool]]:
    """Check every request with its adapter, then queue them all in one transaction.

    A ``chain`` is one intent: each request follows the one before it (it runs only after
    that one succeeded), and a request without an order id acts on the order the one
    before it acts on, or creates. ``key`` then names the chain (each link's key is
    derived from it).
    """
    if key is not None and len(requests) != 1 and not chain:
        raise ParameterError("key", "names one action: give exactly one order with it")
    ledger = open_ledger(config.ledger_url)
    try:
        prepared: list[tuple[str, str, str, dict, str]] = []
        adapters = {}
        try:
            for instance, vendor_id, kind, params in requests:
                link_key = None if key is None else key + (f"#{len(prepared)}" if prepared
                                                           else "")
                vendor = config.vendor(instance)
                if instance not in adapters:
                    adapters[instance] = build_adapter(vendor, clock=clock)
                _, _, adapter = adapters[instance]
                if kind not in adapter.action_kinds:
                    raise ActionRefused(f"{instance} ({vendor.adapter}) cannot {kind}; it can "
                                        + ", ".join(adapter.action_kinds))
                creates = _creates(vendor.adapter, kind)
                if vendor_id is None and not creates:
                    if not (chain and prepared):
                        raise ActionRefused(f"{kind} needs an order: give VENDOR:ID")
                    vendor_id = prepared[-1][1]  # a later link acts on the chain's order
                if vendor_id is None or vendor_id.startswith(NEW_ORDER):
                    # the action makes a new order, or acts on one an earlier link makes
                    payload = await adapter.prepare(kind, None, params)
                    vendor_id = vendor_id or new_order_id(
                        link_key or default_key(instance, "", kind, payload))
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
                prepared.append((instance, vendor_id, kind, payload,
                                 link_key or default_key(instance, vendor_id, kind, payload)))
        finally:
            for _, http, _ in adapters.values():
                await http.close()
        now = clock()
        queued: list[tuple[Action, bool]] = []
        with ledger.write():
            for instance, vendor_id, kind, payload, action_key in prepared:
                after = queued[-1][0].id if chain and queued else None
                queued.append(ledger.outbox.enqueue(instance, vendor_id, kind, payload,
                                                    action_key, now, after))
        return queued
    finally:
        ledger.close()


def _creates(adapter_name: str, kind: str) -> bool:
    declared = adapter_spec(adapter_name).action(kind)
    return declared is not None and declared.creates


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
            if all(map(_settled(actions), actions)) or time.monotonic() >= deadline:
                return actions
            await asyncio.sleep(_pause(actions, clock(), deadline - time.monotonic()))
    finally:
        if service is not None:
            await service.close()


def _settled(actions: list[Action]) -> Callable[[Action], bool]:
    """Whether an action will not move without a person: it ended, it is uncertain, or it
    is a chain's link waiting behind one that will not succeed by itself."""
    by_id = {a.id: a for a in actions}

    def settled(action: Action) -> bool:
        if action.state in ACTION_END_STATES or action.state is ActionState.UNCERTAIN:
            return True
        before = by_id.get(action.after) if action.after is not None else None
        return (action.state is ActionState.PENDING and before is not None
                and before.state is not ActionState.SUCCEEDED and settled(before))

    return settled


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
