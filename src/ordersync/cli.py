"""The ``ordersync`` command line: each command is a few library calls.

Exit codes (docs/operations.md says what an operator does about each)
    0  success
    1  a vendor could not be synced (the others were), a ``--wait``ed action did not
       succeed, or actions pushed by ``sync --once`` ended failed, dead or uncertain
    2  bad input: configuration, arguments, ids, an action refused when queued, a
       configuration file that is not UTF-8, a number out of range
    3  the ledger is busy: another ordersync process holds it, or it stayed locked past
       the busy timeout
    4  the ledger or another file ordersync needs is unusable (folder not writable,
       read-only file, not an SQLite file, truncated or corrupt, disk full): one line
       naming the file and what is wrong
   70  internal error (a bug in ordersync, nothing else: please report it)
  130  interrupted (SIGINT, or SIGTERM to a command other than run)
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
import shlex
import signal
import sys
from dataclasses import asdict
from pathlib import Path

import orjson

from . import __version__, logs
from .config import Config, load_config
from .daemon import LedgerBusy, Service
from .errors import ActionRefused, ConfigError, LedgerLocked, LedgerUnusable, VendorError
from .ledger import LedgerAPI, ledger_problem, open_ledger
from .model import ActionState, State
from .redaction import redact
from .text import columns, printable

EXIT_OK, EXIT_VENDOR, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_LEDGER = 4
EXIT_INTERNAL = 70
EXIT_OUTPUT_CLOSED = 141
DEFAULT_CONFIG = "config/ordersync.toml"
INT64_MAX = 2**63 - 1

EXIT_CODES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int], ...] = (
    ((LedgerBusy, LedgerLocked), EXIT_BUSY),
    (LedgerUnusable, EXIT_LEDGER),
    ((ConfigError, ActionRefused), EXIT_USAGE),
    (VendorError, EXIT_VENDOR),
)


class UsageError(ConfigError):
    """A command-line argument is wrong."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped a command; what was done so far is kept (exit 130)."""


def run_interruptible(main):
    """``asyncio.run(main)``, where SIGTERM, like Ctrl-C, cancels ``main`` so that its
    ``finally`` blocks run (the ledger lock is released, actions cut off mid-request are
    left for verification); then raises :class:`Interrupted`."""
    received: list[str] = []

    async def guarded():
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda s=signum: (
                received.append(signal.Signals(s).name), task.cancel()))
        try:
            return await main
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise

    return asyncio.run(guarded())


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def whole(minimum: int = -INT64_MAX - 1, maximum: int = INT64_MAX):
    """An argparse type: an integer from ``minimum`` to ``maximum`` (SQLite's range)."""

    def parse(text: str) -> int:
        value = int(text)  # a ValueError is argparse's "invalid int value"
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range (from {minimum} to {maximum})")
        return value

    parse.__name__ = "int"
    return parse


def build_parser() -> Parser:
    parser = Parser(
        prog="ordersync",
        description="Keep one SQLite ledger of orders held by Fotoware, Pwinty and reseller"
        " systems, and push decisions back exactly once.",
    )
    parser.add_argument("--version", action="version", version=f"ordersync {__version__}")
    _global_options(parser, {"config": None, "log_level": None, "log_format": "auto"})
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
    sync.add_argument("--json", action="store_true", help="print the result as JSON (and show"
                      " no progress)")
    sync.set_defaults(func=cmd_sync)

    order_commands = _group(commands, "orders", "list or show orders in the ledger",
                            "Read orders from the ledger.")
    listing = order_commands.add_parser("list", help="list orders, newest first",
                                        description="List orders in the ledger, newest first.")
    listing.add_argument("--vendor", metavar="V", help="only this vendor instance")
    listing.add_argument("--state", metavar="S", help="only this common state: "
                         + ", ".join(s.value for s in State))
    listing.add_argument("--limit", type=whole(), metavar="N", help="at most N orders")
    listing.add_argument("--flagged", action="store_true", help="only orders flagged with a"
                         " problem (unreadable, over a limit, not UTF-8)")
    listing.add_argument("--json", action="store_true", help="print JSON (an array of orders)")
    listing.set_defaults(func=cmd_orders_list)
    show = order_commands.add_parser("show", help="show one order with items and events",
                                     description="Show one order, its items, its events and"
                                     " the vendor's raw JSON.")
    show.add_argument("order", metavar="VENDOR:ID", help="vendor instance and order id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_orders_show)

    decisions = {
        "approve": "approve Fotoware orders (APPROVE), optionally with changes",
        "reject": "reject Fotoware orders (REJECT), optionally with changes",
        "update": "change Fotoware orders' comment, expiry or custom data (PATCH)",
        "submit": "submit orders: Fotoware created -> pending (SUBMIT); Pwinty for printing,"
                  " after its SubmissionStatus says the order is valid",
        "cancel": "cancel Pwinty print orders that are not yet submitted",
    }
    for kind, text in decisions.items():
        decide = commands.add_parser(kind, help=text, description=text[0].upper() + text[1:] + ". The"
                                     " action is checked, queued in the ledger's outbox and"
                                     " performed by the daemon or the next `sync --once`"
                                     " (or at once with --wait).")
        decide.add_argument("orders", nargs="+", metavar="VENDOR:ID", help="orders to act on")
        if kind not in ("submit", "cancel"):
            decide.add_argument("--comment", metavar="TEXT", help="administrator's comment")
            decide.add_argument("--expires", metavar="ISO",
                                help="expiry time (ISO 8601, e.g. 2027-01-31T12:00:00Z) or"
                                " 'never'")
            decide.add_argument("--data", action="append", default=[], metavar="FIELD=VALUE",
                                help="custom order data by field label or id; repeat for"
                                " several fields or for several values of a multi-value field")
            decide.add_argument("--item-data", action="append", default=[],
                                metavar="N:FIELD=VALUE",
                                help="custom data of item N (counted from 0); repeatable")
        decide.add_argument("--key", metavar="KEY",
                            help="idempotency key (default: derived from the action itself,"
                            " so repeating a command queues nothing new)")
        _wait_arguments(decide)
        decide.set_defaults(func=cmd_decide, kind=kind)

    photo_commands = _group(commands, "photos", "add or remove photos of a print order",
                            "Photos of Pwinty print orders (queued actions).")
    add = photo_commands.add_parser(
        "add", help="add photos by URL (several URLs go as one batch) or by uploading a file",
        description="Add photos to a draft print order: by URL (repeat --url for a batch) or by"
        " uploading a local JPEG (--file, sent with its md5 so Pwinty can check it).")
    add.add_argument("order", metavar="VENDOR:ID", help="the print order")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", action="append", metavar="URL",
                        help="where Pwinty downloads the photo; repeat for a batch")
    source.add_argument("--file", metavar="PATH", help="a local image file to upload")
    add.add_argument("--type", required=True, metavar="T",
                     help="catalogue item, e.g. 4x6, 8x10, 10x15_cm")
    add.add_argument("--copies", type=whole(), default=1, metavar="N",
                     help="copies (default: 1)")
    add.add_argument("--sizing", default="Crop", choices=["Crop", "ShrinkToFit",
                     "ShrinkToExactFit"], help="how the image is fitted (default: Crop)")
    add.add_argument("--price-to-user", type=whole(), metavar="MINOR",
                     help="price charged per copy, in pence/cents (InvoiceRecipient only)")
    add.add_argument("--key", metavar="KEY", help="idempotency key (default: derived)")
    _wait_arguments(add)
    add.set_defaults(func=cmd_photos_add)
    remove = photo_commands.add_parser("remove", help="remove a photo from a draft order",
                                       description="Remove a photo from a draft print order.")
    remove.add_argument("order", metavar="VENDOR:ID", help="the print order")
    remove.add_argument("photo", metavar="PHOTO", help="the photo's id")
    remove.add_argument("--key", metavar="KEY", help="idempotency key (default: derived)")
    _wait_arguments(remove)
    remove.set_defaults(func=cmd_photos_remove)

    print_commands = _group(commands, "print-order",
                            "create a print order or change its address", "Pwinty print orders.")
    create = print_commands.add_parser(
        "create", help="create a print order",
        description="Create a print order at a Pwinty instance, from options or from a JSON or"
        " TOML file of the same fields (options win). Pwinty v2.2 cannot find an order whose"
        " creation went unanswered: such an action becomes 'uncertain' for a person to check.")
    create.add_argument("vendor", metavar="VENDOR", help="the Pwinty instance")
    update = print_commands.add_parser("address", help="change a draft order's address",
                                       description="Change a draft print order's recipient"
                                       " address (only the fields given).")
    update.add_argument("order", metavar="VENDOR:ID", help="the print order")
    for sub in (create, update):
        sub.add_argument("--from", dest="from_file", metavar="FILE",
                         help="read the fields from a JSON or TOML file")
        for option, field_name in ADDRESS_OPTIONS.items():
            sub.add_argument(f"--{option}", dest=field_name, metavar="TEXT",
                             help=f"{field_name}")
        sub.add_argument("--key", metavar="KEY", help="idempotency key (default: derived)")
        _wait_arguments(sub)
    create.add_argument("--payment", choices=["InvoiceMe", "InvoiceRecipient"],
                        help="who pays (default: InvoiceMe)")
    create.add_argument("--quality", dest="qualityLevel", choices=["Pro", "Standard"],
                        help="print quality (required, here or in --from)")
    create.add_argument("--tracked", dest="useTrackedShipping", action="store_true",
                        default=None, help="use tracked shipping")
    create.set_defaults(func=cmd_print_create)
    update.set_defaults(func=cmd_print_address)

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
    simulate.add_argument("adapter", help="which vendor to simulate (e.g. fotoware)")
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
    _global_options_everywhere(parser)
    return parser


def _global_options(parser, defaults: dict) -> None:
    """--config, --log-level and --log-format: on the program with their defaults, and on
    every command with none (so that, given after the command, they override)."""
    parser.add_argument("--config", default=defaults["config"], help="configuration file"
                        f" (default: $ORDERSYNC_CONFIG, else {DEFAULT_CONFIG})")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        default=defaults["log_level"],
                        help="least important log level shown (default: info; warning for"
                        " demo, whose summary says what happened)")
    parser.add_argument("--log-format", choices=["auto", "json", "console"],
                        default=defaults["log_format"],
                        help="log format; auto: readable on a terminal, JSON lines otherwise")


def _global_options_everywhere(parser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _global_options(sub, dict.fromkeys(("config", "log_level", "log_format"),
                                                   argparse.SUPPRESS))
                _global_options_everywhere(sub)


def _group(commands, name: str, help_text: str, description: str):
    """A command made of subcommands (``orders list``, ``actions show`` ...)."""
    parser = commands.add_parser(name, help=help_text, description=description)
    group = parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND",
                                  parser_class=Parser)
    group.required = True
    return group


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command not in ("demo", "simulate"):
            args.config_obj = _load_config(args)
        level = args.log_level or ("warning" if args.command == "demo" else "info")
        logs.configure(level=level, fmt=args.log_format)
        return args.func(args)
    except Interrupted as exc:
        print(f"ordersync: interrupted by {exc}: what was done so far is kept; an action cut"
              " off mid-request is verified with the vendor before it is sent again",
              file=sys.stderr)
        return EXIT_INTERRUPTED
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
    _say(f"ordersync: error: {message}", file=sys.stderr)
    return code


def _load_config(args) -> Config:
    path = args.config or os.environ.get("ORDERSYNC_CONFIG") or DEFAULT_CONFIG
    return load_config(path, os.environ)


def _print_json(args, data, *, ok: bool = True) -> None:
    """Every ``--json`` prints one object: ``{"ok": exit code is 0, "command": "orders list",
    "data": ...}`` (docs/operations.md, "JSON output")."""
    command = " ".join(filter(None, (args.command, getattr(args, f"{args.command}_command",
                                                               None))))
    document = {"ok": ok, "command": command, "data": data}
    sys.stdout.write(redact(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
                     + "\n")


def _require_vendors(config: Config) -> None:
    if not config.vendors:
        raise UsageError(f"{config.source}: no vendors configured (add a [vendors.NAME] table):"
                         " nothing to sync")


def cmd_run(args) -> int:
    _require_vendors(args.config_obj)

    async def run() -> None:
        async with Service(args.config_obj) as service:
            await service.run()

    asyncio.run(run())
    return EXIT_OK


def cmd_sync(args) -> int:
    # Progress only for a person watching: not with --json or JSON logs, not when stderr is
    # a file or a pipe.
    progress = None
    if not args.json and args.log_format != "json" and sys.stderr.isatty():
        from .progress import TerminalProgress

        progress = TerminalProgress(sys.stderr)

    async def once():
        vendors = [args.vendor] if args.vendor else None  # only the secrets it needs
        async with Service(args.config_obj, handle_signals=False, vendors=vendors) as service:
            return await service.run_once(args.vendor, progress)

    _require_vendors(args.config_obj)
    try:
        results = run_interruptible(once())
    finally:
        if progress is not None:
            progress.close()
    failed = [r for r in results if r.errors]
    unsuccessful = [(r.vendor, state, r.actions[state]) for r in results
                    for state in UNSUCCESSFUL if r.actions.get(state)]
    if args.json:
        _print_json(args, [{**r.as_dict(), "errors": r.errors} for r in results],
                    ok=not (failed or unsuccessful))
    else:
        for r in results:
            if r.errors:
                _say(f"{r.vendor}: FAILED: {r.errors[0]}")
            else:
                done = ", ".join(f"{n} {state}" for state, n in sorted(r.actions.items()))
                _say(f"{r.vendor}: {r.new} new, {r.changed} changed, {r.unchanged} unchanged"
                     f" in {r.pages} pages, {r.requests} requests, {r.duration_s:.2f}s"
                     + (f"; {r.flagged} flagged (see `orders list --flagged`)"
                        if r.flagged else "")
                     + (f"; actions: {done}" if done else "")
                     + (f"; stopped early: {r.stopped}" if r.stopped else ""))
    for r in failed:
        _say(f"ordersync: error: {r.errors[0]}", file=sys.stderr)
    for vendor, state, count in unsuccessful:
        _say(f"ordersync: error: {vendor}: {count} action{'s' * (count != 1)} {state}"
             f" (see `ordersync actions list --state {state}`)", file=sys.stderr)
    return EXIT_VENDOR if failed or unsuccessful else EXIT_OK


UNSUCCESSFUL = (ActionState.FAILED.value, ActionState.DEAD.value, ActionState.UNCERTAIN.value)
"""Action outcomes that make ``sync --once`` (and ``--wait``) exit 1."""


def _open_ledger(config: Config) -> LedgerAPI:
    if not config.ledger_path.exists():
        raise ConfigError(f"{config.source}: ledger {config.ledger_path} does not exist yet"
                          " (run `ordersync sync --once` first)")
    return open_ledger(config.ledger_url)


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
        orders = [o.as_json() for o in ledger.orders(
            instance=args.vendor, state=args.state, limit=args.limit, flagged=args.flagged)]
    finally:
        ledger.close()
    if args.json:
        _print_json(args, orders)
        return EXIT_OK
    # A flagged order's state ends in "!" (its problem: `orders show`).
    rows = [(f"{o['vendor']}:{o['id']}", o["state"] + ("!" if o["problem"] else ""),
             o["vendor_state"], o["reference"] or "", str(len(o["items"])), o["created"] or "",
             o["customer"] or "") for o in orders]
    _table(("ORDER", "STATE", "VENDOR STATE", "REFERENCE", "ITEMS", "CREATED", "CUSTOMER"), rows)
    return EXIT_OK


def cmd_orders_show(args) -> int:
    config = args.config_obj
    instance, vendor_id = parse_order_ref(args.order)
    _known_instance(config, instance)
    ledger = _open_ledger(config)
    try:
        stored = ledger.order(instance, vendor_id)
    finally:
        ledger.close()
    if stored is None:
        raise UsageError(f"no order {args.order} in the ledger")
    order = stored.as_json()
    if args.json:
        _print_json(args, order)
        return EXIT_OK
    for key in ("vendor", "id", "state", "vendor_state", "reference", "created", "modified",
                "expires", "customer", "comment", "url"):
        _say(f"{key:>13}: {order[key] if order[key] is not None else ''}")
    if order["problem"]:
        _say(f"{'FLAGGED':>13}: {order['problem']}")
    _say(f"{'items':>13}:")
    for item in order["items"]:
        _say(f"{'':>15}- {item['title']} ({item['key']})"
             + (f" [{item['status']}]" if item["status"] else ""))
    _say(f"{'events':>13}:")
    for event in order["events"]:
        change = f"{event['from_state'] or '-'} -> {event['to_state']}"
        _say(f"{'':>15}{event['at']} {event['kind']:<13} {change} ({event['source']})"
             + (f": {event['detail']}" if event["detail"] else ""))
    return EXIT_OK


def parse_order_ref(text: str) -> tuple[str, str]:
    """``VENDOR:ID`` -> (instance, id), or a UsageError saying what is wrong."""
    instance, sep, vendor_id = text.partition(":")
    if not sep or not instance or not vendor_id:
        raise UsageError(f"{text!r} is not VENDOR:ID (for example fotoware-main:10042)")
    return instance, vendor_id


def _known_instance(config: Config, name: str) -> None:
    """A configuration with vendors must name the instance; one without (demo) reads any."""
    if config.vendors:
        config.vendor(name)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]], noun: str = "orders") -> None:
    for line in columns([headers, *rows]):
        print(line)
    print(f"({len(rows)} {noun})")


def _say(*parts: object, **options) -> None:
    """print() for people: vendor text in it cannot send the terminal escape sequences."""
    print(*(printable(redact(str(part))) for part in parts), **options)


ADDRESS_OPTIONS = {
    "recipient": "recipientName", "address1": "address1", "address2": "address2",
    "town": "addressTownOrCity", "state": "stateOrCounty", "postcode": "postalOrZipCode",
    "country": "countryCode", "destination-country": "destinationCountryCode",
    "phone": "mobileTelephone", "email": "email",
}


def _queue(args, kind: str, targets: list, params: dict) -> int:
    """Queue (and with --wait, see through) one kind of action; print what happened."""
    from .actions import enqueue

    if args.wait and args.timeout <= 0:
        raise UsageError("--timeout: must be greater than 0")
    queued = asyncio.run(enqueue(args.config_obj, kind, targets, params, key=args.key))
    if args.wait:
        return _wait_and_report(args.config_obj, [a.id for a, _ in queued], args)
    if args.json:
        _print_json(args, [{**_action_json(a), "queued": created} for a, created in queued])
    else:
        for action, created in queued:
            verb = "queued" if created else "already queued"
            _say(f"{verb} action #{action.id}: {action.kind} {action.target}"
                 f" ({action.state.value})")
    return EXIT_OK


def cmd_photos_add(args) -> int:
    target = parse_order_ref(args.order)
    common = {"type": args.type, "copies": args.copies, "sizing": args.sizing,
              "priceToUser": args.price_to_user}
    if args.file:
        return _queue(args, "add_photo", [target], {"photos": [{**common, "file": args.file}]})
    photos = [{**common, "url": url} for url in args.url]
    kind = "add_photo" if len(photos) == 1 else "add_photos"
    return _queue(args, kind, [target], {"photos": photos})


def cmd_photos_remove(args) -> int:
    return _queue(args, "delete_photo", [parse_order_ref(args.order)],
                  {"photo_id": args.photo})


def _order_fields(args, names) -> dict:
    fields: dict = {}
    if args.from_file:
        fields.update(_read_fields(Path(args.from_file)))
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    return fields


def _read_fields(path: Path) -> dict:
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--from {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"--from {path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else orjson.loads(text)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"--from {path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}"
                         f": {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--from {path}: expected an object of order fields")
    return data


def cmd_print_create(args) -> int:
    fields = _order_fields(args, [*ADDRESS_OPTIONS.values(), "payment", "qualityLevel",
                                  "useTrackedShipping"])
    _known_instance(args.config_obj, args.vendor)
    return _queue(args, "create", [(args.vendor, None)], {"fields": fields})


def cmd_print_address(args) -> int:
    fields = _order_fields(args, ADDRESS_OPTIONS.values())
    return _queue(args, "update_address", [parse_order_ref(args.order)], {"fields": fields})


def _wait_arguments(parser) -> None:
    parser.add_argument("--wait", action="store_true",
                        help="wait until the actions have ended and exit 0 only if all"
                        " succeeded; when no daemon runs, this command performs them (with"
                        " any other due actions of the same vendor)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="with --wait: give up waiting after S seconds (default: 60)")
    parser.add_argument("--json", action="store_true", help="print the actions as JSON")


def parse_assignments(values: list[str], option: str) -> dict:
    """``FIELD=VALUE`` pairs; a field given twice collects a list (multi-value fields)."""
    out: dict = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{option}: {text!r} is not FIELD=VALUE")
        name = name.strip()
        if name in out:
            out[name] = (out[name] if isinstance(out[name], list) else [out[name]]) + [value]
        else:
            out[name] = value
    return out


def parse_item_assignments(values: list[str]) -> dict[int, dict]:
    by_item: dict[int, list[str]] = {}
    for text in values:
        index, sep, rest = text.partition(":")
        if not sep or not index.strip().isdigit():
            raise UsageError(f"--item-data: {text!r} is not N:FIELD=VALUE")
        by_item.setdefault(int(index), []).append(rest)
    return {i: parse_assignments(v, "--item-data") for i, v in by_item.items()}


def cmd_decide(args) -> int:
    targets = [parse_order_ref(text) for text in args.orders]
    params = {}
    if args.kind not in ("submit", "cancel"):
        params = {"comment": args.comment, "expires": args.expires,
                  "data": parse_assignments(args.data, "--data"),
                  "item_data": parse_item_assignments(args.item_data)}
    return _queue(args, args.kind, targets, params)


def _wait_and_report(config: Config, ids: list[int], args) -> int:
    from .actions import wait_for

    try:
        actions = run_interruptible(wait_for(config, ids, timeout_s=args.timeout))
    except Interrupted:
        _report_left_behind(config, ids)
        raise
    succeeded = all(a.state is ActionState.SUCCEEDED for a in actions)
    if args.json:
        _print_json(args, [_action_json(a) for a in actions], ok=succeeded)
    else:
        for action in actions:
            detail = f": {action.last_error}" if action.last_error and (
                action.state is not ActionState.SUCCEEDED) else ""
            _say(f"action #{action.id}: {action.kind} {action.target} {action.state.value}"
                 f"{detail}")
    return EXIT_OK if succeeded else EXIT_VENDOR


def _report_left_behind(config: Config, ids: list[int]) -> None:
    """After an interrupted --wait: where each action stands, and who finishes it."""
    from .actions import _read

    for action in _read(config, ids):
        state = action.state
        if state is ActionState.IN_FLIGHT:
            fate = "being sent by the running daemon: it continues in the background"
        elif state is ActionState.PENDING and action.needs_verification:
            fate = ("may have reached the vendor: it stays queued, and the daemon or the next"
                    " `ordersync sync --once` asks the vendor before sending it again")
        elif state is ActionState.PENDING:
            fate = ("not sent yet: it stays queued for the daemon or the next"
                    " `ordersync sync --once`")
        else:
            fate = state.value
        _say(f"action #{action.id}: {action.kind} {action.target} {fate}", file=sys.stderr)


def _action_json(action) -> dict:
    return {
        "id": action.id, "vendor": action.instance, "order": action.vendor_id,
        "kind": action.kind, "payload": action.payload, "key": action.key,
        "state": action.state.value, "attempts": action.attempts,
        "next_attempt_at": action.next_attempt_at,
        "needs_verification": action.needs_verification, "last_error": action.last_error,
        "result": action.result, "created_at": action.created_at,
        "updated_at": action.updated_at,
    }


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
    finally:
        ledger.close()
    if args.json:
        _print_json(args, [_action_json(a) for a in actions])
        return EXIT_OK
    rows = [(f"#{a.id}", a.kind, a.target, a.state.value, str(a.attempts),
             a.updated_at or "", (a.last_error or "")[:60]) for a in actions]
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
        attempts = [asdict(a) for a in ledger.outbox.attempts(args.id)]
    finally:
        ledger.close()
    if args.json:
        _print_json(args, {**_action_json(action), "attempts_log": attempts})
        return EXIT_OK
    if args.verb != "show":
        _say(f"action #{action.id} is now {action.state.value}")
        return EXIT_OK
    for key, value in _action_json(action).items():
        _say(f"{key:>18}: {orjson.dumps(value).decode() if isinstance(value, dict) else value}")
    _say(f"{'attempts':>18}:")
    for attempt in attempts:
        _say(f"{'':>20}#{attempt['number']} {attempt['at']} {attempt['request']}"
             f" -> {attempt['status'] or '-'} ({attempt['latency_ms']} ms)"
             + (f" {attempt['error']}" if attempt["error"] else ""))
    return EXIT_OK


def cmd_demo(args) -> int:
    from .demo import run_demo

    if args.orders < 1:
        raise UsageError("--orders: must be at least 1")
    summary = run_interruptible(run_demo(Path(args.dir), orders=args.orders))
    if args.json:
        _print_json(args, summary)
    else:
        from .demo import print_summary

        print_summary(summary, program=_program())
    return EXIT_OK


def _program() -> str:
    """How to run this ordersync again from the same folder: the script as it was started
    (``.venv/bin/ordersync`` after the README's install), else ``python -m ordersync``."""
    if Path(sys.argv[0]).name == "ordersync":
        return shlex.quote(sys.argv[0])
    return f"{shlex.quote(sys.executable)} -m ordersync"


def cmd_simulate(args) -> int:
    from .simulate import run_simulator

    return asyncio.run(run_simulator(args.adapter, host=args.host, port=args.port,
                                     orders=args.orders, seed=args.seed, faults=args.faults,
                                     page_size=args.page_size))
