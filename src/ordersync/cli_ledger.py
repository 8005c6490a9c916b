"""The commands that read the ledger (``orders list|show``) and look after the outbox
(``actions list|show|retry|cancel``)."""

from __future__ import annotations

import time
from dataclasses import asdict

import orjson

from .cli_common import (
    EXIT_OK,
    UsageError,
    action_json,
    known_instance,
    open_ledger,
    parse_order_ref,
    print_json,
    say,
    table,
    waiting,
)
from .model import ActionState, State


def cmd_orders_list(args) -> int:
    config = args.config_obj
    if args.vendor:
        known_instance(config, args.vendor)
    if args.state and args.state not in {s.value for s in State}:
        raise UsageError(f"--state: unknown state {args.state!r}; one of: "
                         + ", ".join(s.value for s in State))
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit: must be at least 1")
    ledger = open_ledger(config)
    try:
        orders = [o.as_json() for o in ledger.orders(
            instance=args.vendor, state=args.state, limit=args.limit, flagged=args.flagged)]
    finally:
        ledger.close()
    if args.json:
        print_json(args, orders)
        return EXIT_OK
    # A flagged order's state ends in "!" (its problem: `orders show`).
    rows = [(f"{o['vendor']}:{o['id']}", o["state"] + ("!" if o["problem"] else ""),
             o["vendor_state"], o["reference"] or "", str(len(o["items"])), o["created"] or "",
             o["customer"] or "") for o in orders]
    table(("ORDER", "STATE", "VENDOR STATE", "REFERENCE", "ITEMS", "CREATED", "CUSTOMER"), rows)
    return EXIT_OK


def cmd_orders_show(args) -> int:
    config = args.config_obj
    instance, vendor_id = parse_order_ref(args.order)
    known_instance(config, instance)
    ledger = open_ledger(config)
    try:
        stored = ledger.order(instance, vendor_id)
    finally:
        ledger.close()
    if stored is None:
        raise UsageError(f"no order {args.order} in the ledger")
    order = stored.as_json()
    if args.json:
        print_json(args, order)
        return EXIT_OK
    for key in ("vendor", "id", "state", "vendor_state", "reference", "created", "modified",
                "expires", "customer", "comment", "url"):
        say(f"{key:>13}: {order[key] if order[key] is not None else ''}")
    if order["problem"]:
        say(f"{'FLAGGED':>13}: {order['problem']}")
    say(f"{'items':>13}:")
    for item in order["items"]:
        say(f"{'':>15}- {item['title']} ({item['key']})"
             + (f" [{item['status']}]" if item["status"] else ""))
    say(f"{'events':>13}:")
    for event in order["events"]:
        change = f"{event['from_state'] or '-'} -> {event['to_state']}"
        say(f"{'':>15}{event['at']} {event['kind']:<13} {change} ({event['source']})"
            + (f": {event['detail']}" if event["detail"] else ""))
    return EXIT_OK


def cmd_actions_list(args) -> int:
    config = args.config_obj
    if args.state and args.state not in {s.value for s in ActionState}:
        raise UsageError(f"--state: unknown state {args.state!r}; one of: "
                         + ", ".join(s.value for s in ActionState))
    if args.vendor:
        known_instance(config, args.vendor)
    ledger = open_ledger(config)
    try:
        actions = ledger.outbox.list(instance=args.vendor, state=args.state)
        reasons = waiting(ledger, actions)
    finally:
        ledger.close()
    if args.json:
        print_json(args, [action_json(a, reasons.get(a.id)) for a in actions])
        return EXIT_OK
    rows = [(f"#{a.id}", a.kind, a.target, a.state.value, str(a.attempts),
             a.updated_at or "", (reasons.get(a.id) or a.last_error or "")[:60])
            for a in actions]
    table(("ACTION", "KIND", "ORDER", "STATE", "TRIES", "UPDATED", "LAST ERROR"), rows,
           noun="actions")
    return EXIT_OK


def cmd_action(args) -> int:
    config = args.config_obj
    ledger = open_ledger(config)
    try:
        if args.verb == "retry":
            action = ledger.outbox.retry(args.id, time.time())
        elif args.verb == "cancel":
            action = ledger.outbox.cancel(args.id, time.time())
        else:
            action = ledger.outbox.get(args.id)
        attempts = [asdict(a) for a in ledger.outbox.attempts(args.id)]
        reason = waiting(ledger, [action]).get(action.id)
    finally:
        ledger.close()
    if args.json:
        print_json(args, {**action_json(action, reason), "attempts_log": attempts})
        return EXIT_OK
    if args.verb != "show":
        say(f"action #{action.id} is now {action.state.value}")
        return EXIT_OK
    for key, value in action_json(action, reason).items():
        say(f"{key:>18}: {orjson.dumps(value).decode() if isinstance(value, dict) else value}")
    say(f"{'attempts':>18}:")
    for attempt in attempts:
        say(f"{'':>20}#{attempt['number']} {attempt['at']} {attempt['request']}"
             f" -> {attempt['status'] or '-'} ({attempt['latency_ms']} ms)"
             + (f" {attempt['error']}" if attempt["error"] else ""))
    return EXIT_OK
