"""The ``ordersync`` command line: each command is a few library calls.

Exit codes
    0  success
    1  a vendor could not be synced (the others were)
    2  bad input: configuration, arguments or ids
    3  another ordersync process holds the ledger
  130  interrupted
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import orjson

from . import __version__, logs
from .config import Config, load_config
from .daemon import LedgerBusy, Service
from .errors import ConfigError, VendorError
from .ledger import Ledger
from .model import State

EXIT_OK, EXIT_VENDOR, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_CONFIG = "config/ordersync.toml"


class UsageError(ConfigError):
    """A command-line argument is wrong."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> Parser:
    parser = Parser(
        prog="ordersync",
        description="Keep one SQLite ledger of orders held by Fotoware, Pwinty and reseller"
        " systems, and push decisions back exactly once.",
    )
    parser.add_argument("--version", action="version", version=f"ordersync {__version__}")
    parser.add_argument(
        "--config", help=f"configuration file (default: $ORDERSYNC_CONFIG, else {DEFAULT_CONFIG})"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="least important log level shown (default: info)")
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

    orders = commands.add_parser("orders", help="list or show orders in the ledger",
                                 description="Read orders from the ledger.")
    order_commands = orders.add_subparsers(dest="orders_command", metavar="SUBCOMMAND",
                                           parser_class=Parser)
    order_commands.required = True
    listing = order_commands.add_parser("list", help="list orders, newest first",
                                        description="List orders in the ledger, newest first.")
    listing.add_argument("--vendor", metavar="V", help="only this vendor instance")
    listing.add_argument("--state", metavar="S", help="only this common state: "
                         + ", ".join(s.value for s in State))
    listing.add_argument("--limit", type=int, metavar="N", help="at most N orders")
    listing.add_argument("--json", action="store_true", help="print JSON (an array of orders)")
    listing.set_defaults(func=cmd_orders_list)
    show = order_commands.add_parser("show", help="show one order with items and events",
                                     description="Show one order, its items, its events and"
                                     " the vendor's raw JSON.")
    show.add_argument("order", metavar="VENDOR:ID", help="vendor instance and order id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_orders_show)

    demo = commands.add_parser("demo", help="run every simulator, sync them, print a summary",
                               description="Start the built-in vendor simulators on loopback"
                               " with seeded data, sync them into a fresh ledger and report."
                               " Needs no configuration and no accounts.")
    demo.add_argument("--orders", type=int, default=120, metavar="N",
                      help="orders per simulator (default: 120)")
    demo.add_argument("--dir", default="var/demo", metavar="PATH",
                      help="where the demo ledger and config go (default: var/demo)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(func=cmd_demo)

    simulate = commands.add_parser("simulate", help="run one vendor simulator on loopback",
                                   description="Run a vendor simulator until interrupted.")
    simulate.add_argument("adapter", help="which vendor to simulate (e.g. fotoware)")
    simulate.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    simulate.add_argument("--port", type=int, default=8081, help="port (default: 8081)")
    simulate.add_argument("--orders", type=int, default=60, metavar="N",
                          help="seeded orders (default: 60)")
    simulate.add_argument("--seed", type=int, default=1, help="data seed (default: 1)")
    simulate.add_argument("--page-size", type=int, metavar="N", help="orders per list page")
    simulate.add_argument("--faults", metavar="SPEC",
                          help="random faults, e.g. 429:0.1,503:0.05,drop:0.02")
    simulate.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command not in ("demo", "simulate"):
            args.config_obj = _load_config(args)
            secrets = args.config_obj.secret_values()
        else:
            secrets = []
        logs.configure(level=args.log_level, fmt=args.log_format, secrets=secrets)
        return args.func(args)
    except LedgerBusy as exc:
        return _fail(str(exc), EXIT_BUSY)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except VendorError as exc:
        return _fail(str(exc), EXIT_VENDOR)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _fail(message: str, code: int) -> int:
    print(f"ordersync: error: {message}", file=sys.stderr)
    return code


def _load_config(args) -> Config:
    path = args.config or os.environ.get("ORDERSYNC_CONFIG") or DEFAULT_CONFIG
    return load_config(path, os.environ)


def _print_json(value) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def cmd_run(args) -> int:
    async def run() -> None:
        async with Service(args.config_obj) as service:
            await service.run()

    asyncio.run(run())
    return EXIT_OK


def cmd_sync(args) -> int:
    async def once():
        async with Service(args.config_obj, handle_signals=False) as service:
            return await service.run_once(args.vendor)

    results = asyncio.run(once())
    failed = [r for r in results if r.errors]
    if args.json:
        _print_json([{**r.as_dict(), "errors": r.errors} for r in results])
    else:
        for r in results:
            if r.errors:
                print(f"{r.vendor}: FAILED: {r.errors[0]}")
            else:
                print(f"{r.vendor}: {r.new} new, {r.changed} changed, {r.unchanged} unchanged"
                      f" in {r.pages} pages, {r.requests} requests, {r.duration_s:.2f}s")
    for r in failed:
        print(f"ordersync: error: {r.errors[0]}", file=sys.stderr)
    return EXIT_VENDOR if failed else EXIT_OK


def _open_ledger(config: Config) -> Ledger:
    if not config.ledger_path.exists():
        raise ConfigError(f"{config.source}: ledger {config.ledger_path} does not exist yet"
                          " (run `ordersync sync --once` first)")
    return Ledger(config.ledger_path)


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


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"({len(rows)} orders)")


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
