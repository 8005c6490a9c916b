"""The ``ordersync`` command line: each command is a few library calls.

Exit codes
    0  success
    1  a vendor could not be synced (the others were), or a ``--wait``ed action did not
       succeed
    2  bad input: configuration, arguments, ids, an action refused when queued, a
       configuration file that is not UTF-8, a number out of range
    3  the ledger is busy: another ordersync process holds it, or it stayed locked past
       the busy timeout
    4  the ledger or another file ordersync needs is unusable (folder not writable,
       read-only file, not an SQLite file, truncated or corrupt, disk full): one line
       naming the file and what is wrong
   70  internal error (a bug in ordersync, nothing else: please report it)
  130  interrupted
  141  the reader of the output went away (``ordersync orders list | head``): ordersync
       stops quietly, as a program killed by SIGPIPE would (128 + 13)

Every error is one line on stderr. Secrets (configured ones and every access token) are
redacted from everything printed (see :mod:`ordersync.redaction`); a vendor's secrets are
read only by a command that talks to that vendor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import orjson

from . import __version__, logs
from .cli_actions import add_action_commands, add_chain_command
from .cli_common import Parser, UsageError, parse_order_ref, waiting, whole
from .cli_common import action_json as _action_json
from .cli_common import group as _group
from .cli_common import known_instance as _known_instance
from .cli_common import open_ledger as _open_ledger
from .cli_common import print_json as _print_json
from .cli_common import table as _table
from .config import Config, load_config
from .daemon import LedgerBusy, Service
from .errors import ActionRefused, ConfigError, LedgerLocked, LedgerUnusable, VendorError
from .ledger import ledger_problem
from .model import ActionState, State
from .redaction import redact

EXIT_OK, EXIT_VENDOR, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_LEDGER = 4
EXIT_INTERNAL = 70
EXIT_OUTPUT_CLOSED = 141
DEFAULT_CONFIG = "config/ordersync.toml"

EXIT_CODES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int], ...] = (
    ((LedgerBusy, LedgerLocked), EXIT_BUSY),
    (LedgerUnusable, EXIT_LEDGER),
    ((ConfigError, ActionRefused), EXIT_USAGE),
    (VendorError, EXIT_VENDOR),
)


def build_parser() -> Parser:
    parser = Parser(
        prog="ordersync",
        description="Keep one SQLite ledger of the orders held by vendor systems, and push"
        " decisions back exactly once.",
    )
    parser.add_argument("--version", action="version", version=f"ordersync {__version__}")
    parser.add_argument(
        "--config", help=f"configuration file (default: $ORDERSYNC_CONFIG, else {DEFAULT_CONFIG})"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="least important log level shown (default: info; warning for"
                        " demo, whose summary says what happened)")
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"],
                        help="log format; auto: readable on a terminal, JSON lines otherwise")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    run = commands.add_parser("run", help="the daemon: poll every vendor until SIGTERM/SIGINT",
                              description="Poll every configured vendor on its interval until"
                              " SIGTERM or SIGINT; stops gracefully.")
    run.set_defaults(func=cmd_run)

    sync = commands.add_parser("sync", help="one pull of every (or one) vendor",
                               description="Pull every change from every (or one) vendor into"
                               " the ledger once, then exit.")
    sync.add_argument("--once", action="store_true", required=True,
                      help="run once and exit (the only mode; the daemon is `ordersync run`)")
    sync.add_argument("--vendor", metavar="V", help="only this vendor instance")
    sync.add_argument("--json", action="store_true", help="print the result as JSON")
    sync.set_defaults(func=cmd_sync)

    order_commands = _group(commands, "orders", "list or show orders in the ledger",
                            "Read orders from the ledger.")
    listing = order_commands.add_parser("list", help="list orders, newest first",
                                        description="List orders in the ledger, newest first.")
    listing.add_argument("--vendor", metavar="V", help="only this vendor instance")
    listing.add_argument("--state", metavar="S", help="only this common state: "
                         + ", ".join(s.value for s in State))
    listing.add_argument("--limit", type=whole(), metavar="N", help="at most N orders")
    listing.add_argument("--json", action="store_true", help="print JSON (an array of orders)")
    listing.set_defaults(func=cmd_orders_list)
    show = order_commands.add_parser("show", help="show one order with items and events",
                                     description="Show one order, its items, its events and"
                                     " the vendor's raw JSON.")
    show.add_argument("order", metavar="VENDOR:ID", help="vendor instance and order id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_orders_show)

    add_action_commands(commands)
    add_chain_command(commands)

    action_commands = _group(commands, "actions", "list, show, retry or cancel queued actions",
                             "The outbox: every push to a vendor.")
    alist = action_commands.add_parser("list", help="list actions, oldest first",
                                       description="List the outbox's actions, oldest first.")
    alist.add_argument("--state", metavar="S", help="only this state: "
                       + ", ".join(s.value for s in ActionState))
    alist.add_argument("--vendor", metavar="V", help="only this vendor instance")
    alist.add_argument("--json", action="store_true", help="print JSON (an array of actions)")
    alist.set_defaults(func=cmd_actions_list)
    for name, text in (("show", "show one action and every HTTP attempt it made"),
                       ("retry", "try a dead, failed or uncertain action again"),
                       ("cancel", "withdraw a pending, dead, failed or uncertain action")):
        sub = action_commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("id", type=whole(), metavar="ID", help="the action's number")
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.set_defaults(func=cmd_action, verb=name)

    demo = commands.add_parser("demo", help="run every simulator, sync them, print a summary",
                               description="Start the built-in vendor simulators on loopback"
                               " with seeded data, sync them into a fresh ledger and report."
                               " Needs no configuration and no accounts.")
    demo.add_argument("--orders", type=whole(), default=120, metavar="N",
                      help="orders per simulator (default: 120)")
    demo.add_argument("--dir", default="var/demo", metavar="PATH",
                      help="where the demo ledger and config go (default: var/demo)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(func=cmd_demo)

    simulate = commands.add_parser("simulate", help="run one vendor simulator on loopback",
                                   description="Run a vendor simulator until interrupted.")
    simulate.add_argument("adapter", help="which vendor to simulate (an installed adapter's name)")
    simulate.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    simulate.add_argument("--port", type=whole(0, 65535), default=8081,
                          help="port (default: 8081; 0: any free port)")
    simulate.add_argument("--orders", type=whole(), default=60, metavar="N",
                          help="seeded orders (default: 60)")
    simulate.add_argument("--seed", type=whole(), default=1, help="data seed (default: 1)")
    simulate.add_argument("--page-size", type=whole(), metavar="N", help="orders per list page")
    simulate.add_argument("--faults", metavar="SPEC",
                          help="random faults, e.g. 429:0.1,503:0.05,drop:0.02")
    simulate.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        if args.command not in ("demo", "simulate"):
            args.config_obj = _load_config(args)
        level = args.log_level or ("warning" if args.command == "demo" else "info")
        logs.configure(level=level, fmt=args.log_format)
        return args.func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _output_closed()
    except Exception as exc:
        known = _known_problem(exc, args)
        if known is not None:
            return _fail(*known)
        # a bug: one line, the traceback only when asked for
        if "--log-level" in (argv or sys.argv) and "debug" in (argv or sys.argv):
            import traceback

            traceback.print_exc()
        return _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with"
                     " --log-level debug for the traceback, and please report it)", EXIT_INTERNAL)


def _known_problem(exc: Exception, args) -> tuple[str, int] | None:
    """(message, exit code) for a problem that is not a bug in ordersync, else None."""
    ledger_path = _ledger_path(args)
    if isinstance(exc, sqlite3.Error) and ledger_path is not None:
        exc = ledger_problem(ledger_path, exc) or exc
    for kinds, code in EXIT_CODES:
        if isinstance(exc, kinds):
            return str(exc), code
    if isinstance(exc, OSError) and exc.filename:  # a file ordersync needs, e.g. demo's
        return f"{exc.filename}: {exc.strerror or exc}", EXIT_LEDGER
    return None


def _ledger_path(args) -> Path | None:
    config = getattr(args, "config_obj", None)
    if config is not None:
        return config.ledger_path
    if getattr(args, "command", None) == "demo":
        return Path(args.dir) / "ordersync.db"
    return None


def _output_closed() -> int:
    """Whoever read our output went away (``| head``): stop quietly, no traceback."""
    try:  # what is still buffered goes nowhere, instead of failing again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OUTPUT_CLOSED


def _fail(message: str, code: int) -> int:
    print(f"ordersync: error: {redact(message)}", file=sys.stderr)
    return code


def _load_config(args) -> Config:
    path = args.config or os.environ.get("ORDERSYNC_CONFIG") or DEFAULT_CONFIG
    return load_config(path, os.environ)


def cmd_run(args) -> int:
    async def run() -> None:
        async with Service(args.config_obj) as service:
            await service.run()

    asyncio.run(run())
    return EXIT_OK


def cmd_sync(args) -> int:
    async def once():
        vendors = [args.vendor] if args.vendor else None  # only the secrets it needs
        async with Service(args.config_obj, handle_signals=False, vendors=vendors) as service:
            return await service.run_once(args.vendor)

    results = asyncio.run(once())
    failed = [r for r in results if r.errors]
    if args.json:
        _print_json([{**r.as_dict(), "errors": r.errors} for r in results])
    else:
        for r in results:
            if r.errors:
                print(redact(f"{r.vendor}: FAILED: {r.errors[0]}"))
            else:
                done = ", ".join(f"{n} {state}" for state, n in sorted(r.actions.items()))
                print(f"{r.vendor}: {r.new} new, {r.changed} changed, {r.unchanged} unchanged"
                      f" in {r.pages} pages, {r.requests} requests, {r.duration_s:.2f}s"
                      + (f"; actions: {done}" if done else ""))
    for r in failed:
        _fail(r.errors[0], EXIT_VENDOR)
    return EXIT_VENDOR if failed else EXIT_OK


def cmd_orders_list(args) -> int:
    config = args.config_obj
    if args.vendor:
        _known_instance(config, args.vendor)
    if args.state and args.state not in {s.value for s in State}:
        raise UsageError(f"--state: unknown state {args.state!r}; one of: "
                         + ", ".join(s.value for s in State))
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit: must be at least 1")
    ledger = _open_ledger(config)
    try:
        orders = ledger.orders(instance=args.vendor, state=args.state, limit=args.limit)
    finally:
        ledger.close()
    if args.json:
        _print_json(orders)
        return EXIT_OK
    rows = [(f"{o['vendor']}:{o['id']}", o["state"], o["vendor_state"], o["reference"] or "",
             str(len(o["items"])), o["created"] or "", o["customer"] or "") for o in orders]
    _table(("ORDER", "STATE", "VENDOR STATE", "REFERENCE", "ITEMS", "CREATED", "CUSTOMER"), rows)
    return EXIT_OK


def cmd_orders_show(args) -> int:
    config = args.config_obj
    instance, vendor_id = parse_order_ref(args.order)
    _known_instance(config, instance)
    ledger = _open_ledger(config)
    try:
        order = ledger.order(instance, vendor_id)
    finally:
        ledger.close()
    if order is None:
        raise UsageError(f"no order {args.order} in the ledger")
    if args.json:
        _print_json(order)
        return EXIT_OK
    for key in ("vendor", "id", "state", "vendor_state", "reference", "created", "modified",
                "expires", "customer", "comment", "url"):
        print(f"{key:>13}: {order[key] if order[key] is not None else ''}")
    print(f"{'items':>13}:")
    for item in order["items"]:
        print(f"{'':>15}- {item['title']} ({item['key']})"
              + (f" [{item['status']}]" if item["status"] else ""))
    print(f"{'events':>13}:")
    for event in order["events"]:
        change = f"{event['from_state'] or '-'} -> {event['to_state']}"
        print(f"{'':>15}{event['at']} {event['kind']:<13} {change} ({event['source']})")
    return EXIT_OK


def cmd_actions_list(args) -> int:
    config = args.config_obj
    if args.state and args.state not in {s.value for s in ActionState}:
        raise UsageError(f"--state: unknown state {args.state!r}; one of: "
                         + ", ".join(s.value for s in ActionState))
    if args.vendor:
        _known_instance(config, args.vendor)
    ledger = _open_ledger(config)
    try:
        actions = ledger.outbox.list(instance=args.vendor, state=args.state)
        reasons = waiting(ledger, actions)
    finally:
        ledger.close()
    if args.json:
        _print_json([_action_json(a, reasons.get(a.id)) for a in actions])
        return EXIT_OK
    rows = [(f"#{a.id}", a.kind, a.target, a.state.value, str(a.attempts),
             a.updated_at or "", (reasons.get(a.id) or a.last_error or "")[:60])
            for a in actions]
    _table(("ACTION", "KIND", "ORDER", "STATE", "TRIES", "UPDATED", "LAST ERROR"), rows,
           noun="actions")
    return EXIT_OK


def cmd_action(args) -> int:
    import time

    config = args.config_obj
    ledger = _open_ledger(config)
    try:
        if args.verb == "retry":
            action = ledger.outbox.retry(args.id, time.time())
        elif args.verb == "cancel":
            action = ledger.outbox.cancel(args.id, time.time())
        else:
            action = ledger.outbox.get(args.id)
        attempts = ledger.outbox.attempts(args.id)
        reason = waiting(ledger, [action]).get(action.id)
    finally:
        ledger.close()
    if args.json:
        _print_json({**_action_json(action, reason), "attempts_log": attempts})
        return EXIT_OK
    if args.verb != "show":
        print(f"action #{action.id} is now {action.state.value}")
        return EXIT_OK
    for key, value in _action_json(action, reason).items():
        print(f"{key:>18}: {orjson.dumps(value).decode() if isinstance(value, dict) else value}")
    print(f"{'attempts':>18}:")
    for attempt in attempts:
        print(f"{'':>20}#{attempt['number']} {attempt['at']} {attempt['request']}"
              f" -> {attempt['status'] or '-'} ({attempt['latency_ms']} ms)"
              + (f" {attempt['error']}" if attempt["error"] else ""))
    return EXIT_OK


def cmd_demo(args) -> int:
    from .demo import run_demo

    if args.orders < 1:
        raise UsageError("--orders: must be at least 1")
    summary = asyncio.run(run_demo(Path(args.dir), orders=args.orders))
    if args.json:
        _print_json(summary)
    else:
        from .demo import print_summary

        print_summary(summary)
    return EXIT_OK


def cmd_simulate(args) -> int:
    from .simulate import run_simulator

    return asyncio.run(run_simulator(args.adapter, host=args.host, port=args.port,
                                     orders=args.orders, seed=args.seed, faults=args.faults,
                                     page_size=args.page_size))
