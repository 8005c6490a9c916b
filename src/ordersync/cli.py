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
  141  the reader of the output went away (``ordersync orders list | head``, or the
       output closed: ``>&-``): ordersync stops quietly, as a program killed by SIGPIPE
       would (128 + 13)

Every error is one line on stderr. Secrets (configured ones and every access token) are
redacted from everything printed (see :mod:`ordersync.redaction`); a vendor's secrets are
read only by a command that talks to that vendor.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import io
import os
import shlex
import sqlite3
import sys
from pathlib import Path

from . import __version__, logs
from .cli_actions import add_action_commands, add_chain_command
from .cli_backup import add_backup_commands
from .cli_common import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LEDGER,
    EXIT_OK,
    EXIT_OUTPUT_CLOSED,
    EXIT_USAGE,
    Interrupted,
    Parser,
    UsageError,
    run_interruptible,
    whole,
)
from .cli_common import group as _group
from .cli_common import print_json as _print_json
from .cli_common import say as _say
from .cli_health import add_check_command
from .cli_ledger import cmd_action, cmd_actions_list, cmd_orders_list, cmd_orders_show
from .cli_report import add_report_commands
from .cli_vendors import add_vendor_commands
from .config import Config, load_config
from .daemon import LedgerBusy, Service
from .errors import ActionRefused, ConfigError, LedgerLocked, LedgerUnusable, VendorError
from .ledger import ledger_problem
from .model import ActionState, State

DEFAULT_CONFIG = "config/ordersync.toml"

EXIT_CODES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int], ...] = (
    ((LedgerBusy, LedgerLocked), EXIT_BUSY),
    (LedgerUnusable, EXIT_LEDGER),
    ((ConfigError, ActionRefused), EXIT_USAGE),
    (VendorError, EXIT_FAILED),
)


def build_parser() -> Parser:
    parser = Parser(
        prog="ordersync",
        description="Keep one SQLite ledger of the orders held by vendor systems, and push"
        " decisions back exactly once.",
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

    add_action_commands(commands)
    add_chain_command(commands)
    add_report_commands(commands)
    add_check_command(commands)

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
        description = text[0].upper() + text[1:] + "."
        sub = action_commands.add_parser(name, help=text, description=description)
        sub.add_argument("id", type=whole(), metavar="ID", help="the action's number")
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.set_defaults(func=cmd_action, verb=name)

    add_vendor_commands(commands)
    add_backup_commands(commands)

    demo = commands.add_parser("demo", help="run every simulator, sync them, print the report",
                               description="Start the built-in vendor simulators on loopback"
                               " with seeded data, backfill them into a fresh ledger, push"
                               " sample actions, make one vendor fail, print the morning report"
                               " and write it as HTML. Needs no configuration and no accounts.")
    demo.add_argument("--orders", type=whole(1, 100_000), default=120, metavar="N",
                      help="orders per simulator (default: 120, at most 100000)")
    demo.add_argument("--dir", default="var/demo", metavar="PATH",
                      help="where the demo ledger and config go (default: var/demo)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument("--keep-running", action="store_true", help="then keep the simulators,"
                      " the daemon and its status server running until Ctrl-C (exit 0)")
    demo.add_argument("--port", type=whole(0, 65535), default=0, help="the status server's"
                      " port with --keep-running (default: 0, any free port; on 127.0.0.1)")
    demo.set_defaults(func=cmd_demo)

    simulate = commands.add_parser("simulate", help="run one vendor simulator on loopback",
                                   description="Run a vendor simulator until interrupted.")
    simulate.add_argument("adapter", help="which vendor to simulate (an installed adapter's name)")
    simulate.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    simulate.add_argument("--port", type=whole(0, 65535), default=8081,
                          help="port (default: 8081; 0: any free port)")
    simulate.add_argument("--orders", type=whole(0, 1_000_000), default=60, metavar="N",
                          help="seeded orders (default: 60, at most 1000000)")
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


def main(argv: list[str] | None = None) -> int:
    args = None
    _mind_a_closed_stdout()
    try:
        args = build_parser().parse_args(argv)
        if args.command not in ("demo", "simulate"):
            args.config_obj = _load_config(args)
        level = args.log_level or ("warning" if args.command == "demo" else "info")
        logs.configure(level=level, fmt=args.log_format)
        code = args.func(args)
        sys.stdout.flush()   # the end of the output fails here, not silently at exit
        return code
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
    if isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS:   # stdout: /dev/full, EIO
        return f"cannot write the output: {exc.strerror or exc}", EXIT_LEDGER
    return None


def _ledger_path(args) -> Path | None:
    config = getattr(args, "config_obj", None)
    if config is not None:
        return config.ledger_path
    if getattr(args, "command", None) == "demo":
        return Path(args.dir) / "ordersync.db"
    return None


OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT})
"""Write errors of an output that is not a pipe (a full disk or device, a failing one)."""


def _output_closed() -> int:
    """Whoever read our output went away (``| head``): stop quietly, no traceback."""
    try:  # what is still buffered goes nowhere, instead of failing again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OUTPUT_CLOSED


class _ClosedOutput(io.TextIOBase):
    """stdout for a command started with it closed (``ordersync orders list >&-``): what it
    writes goes to no reader, as into a pipe whose reader has gone (exit 141)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "the output is closed")


def _mind_a_closed_stdout() -> None:
    """Started with descriptor 1 closed, Python sets ``sys.stdout`` to None (print() then
    writes nothing, anything else fails as a bug). Hold descriptor 1 on /dev/null, so that
    no file opened later (the ledger) becomes it, and make writing the output exit 141."""
    if sys.stdout is not None:
        return
    fd = os.open(os.devnull, os.O_WRONLY)
    if fd != 1:
        os.dup2(fd, 1)
        os.close(fd)
    sys.stdout = _ClosedOutput()


def _fail(message: str, code: int) -> int:
    _say(f"ordersync: error: {message}", file=sys.stderr)
    return code


def _load_config(args) -> Config:
    path = args.config or os.environ.get("ORDERSYNC_CONFIG") or DEFAULT_CONFIG
    return load_config(path, os.environ)


def _require_vendors(config: Config) -> None:
    if not config.vendors:
        raise UsageError(f"{config.source}: no vendors configured (add a [vendors.NAME] table):"
                         " nothing to sync")


def cmd_run(args) -> int:
    _require_vendors(args.config_obj)

    async def run() -> None:
        settings = args.config_obj.server
        if settings is None:
            async with Service(args.config_obj) as service:
                await service.run()
            return
        from .metrics import Metrics
        from .server import status_server

        metrics = Metrics()
        async with (Service(args.config_obj, observer=metrics) as service,
                    status_server(service, settings, metrics)):
            await service.run()

    asyncio.run(run())
    return EXIT_OK


def _terminal_progress(args):
    """Progress only for a person watching: not with --json or JSON logs, not when stderr
    is a file or a pipe."""
    if args.json or args.log_format == "json" or not sys.stderr.isatty():
        return None
    from .progress import TerminalProgress

    return TerminalProgress(sys.stderr)


def cmd_sync(args) -> int:
    progress = _terminal_progress(args)

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
            elif r.paused:
                _say(f"{r.vendor}: paused, not polled (`ordersync vendors resume {r.vendor}`)")
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
    return EXIT_FAILED if failed or unsuccessful else EXIT_OK


UNSUCCESSFUL = (ActionState.FAILED.value, ActionState.DEAD.value, ActionState.UNCERTAIN.value)
"""Action outcomes that make ``sync --once`` (and ``--wait``) exit 1."""


def cmd_demo(args) -> int:
    from .demo import run_demo

    if args.orders < 1:
        raise UsageError("--orders: must be at least 1")
    if args.port and not args.keep_running:
        raise UsageError("--port: the status server runs only with --keep-running")
    if args.json:
        say, ready = None, lambda summary: _print_json(args, summary)
    else:
        from .demo import print_ready

        def say(line: str) -> None:
            _say(line, flush=True)

        def ready(summary: dict) -> None:
            print_ready(summary, program=_program())

    # Ctrl-C while the daemon runs stops it as it stops `run` (exit 0); before, exit 130
    run_interruptible(run_demo(Path(args.dir), orders=args.orders, ready=ready,
                               progress=_terminal_progress(args),
                               keep_running=args.keep_running, port=args.port, say=say))
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
