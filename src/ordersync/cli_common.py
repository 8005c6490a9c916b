"""What every ``ordersync`` command module shares: the parser class, argument types, order
references and output (JSON and tables, secrets redacted)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from . import ledger as ledgers
from .config import Config
from .errors import ConfigError, UsageError
from .ledger import LedgerAPI
from .model import Action
from .redaction import redact
from .text import columns, printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY, EXIT_LEDGER = 0, 1, 2, 3, 4
EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED = 70, 130, 141
"""Every exit code of every command, here once (cli.py's docstring and docs/operations.md
say what each means). 1 is a failure the command reports: a vendor, an action, drift, an
unhealthy daemon."""

INT64_MAX = 2**63 - 1


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


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0, at most a day."""
    value = float(text)  # a ValueError is argparse's "invalid seconds value"
    if not 0 < value <= 86_400:   # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text} is out of range (above 0, at most 86400)")
    return value


def group(commands, name: str, help_text: str, description: str):
    """A command made of subcommands (``orders list``, ``actions show`` ...)."""
    parser = commands.add_parser(name, help=help_text, description=description)
    subcommands = parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND",
                                        parser_class=Parser)
    subcommands.required = True
    return subcommands


def parse_order_ref(text: str) -> tuple[str, str]:
    """``VENDOR:ID`` -> (instance, id), or a UsageError saying what is wrong."""
    instance, sep, vendor_id = text.partition(":")
    if not sep or not instance or not vendor_id:
        raise UsageError(f"{text!r} is not VENDOR:ID (for example shop-main:10042)")
    return instance, vendor_id


def known_instance(config: Config, name: str) -> None:
    """A configuration with vendors must name the instance; one without (demo) reads any."""
    if config.vendors:
        config.vendor(name)


def open_ledger(config: Config) -> LedgerAPI:
    if not config.ledger_path.exists():
        raise ConfigError(f"{config.source}: ledger {config.ledger_path} does not exist yet"
                          " (run `ordersync sync --once` first)")
    return ledgers.open_ledger(config.ledger_url)


def refuse_own_files(config: Config, path: Path, role: str) -> None:
    """What a command writes at ``path`` must not replace a file ordersync runs on: the
    ledger or its side files, the configuration, or a secret file it names (followed through
    links and relative paths). A UsageError naming which, before anything is written."""
    if ledgers.is_ledger_file(config.ledger_path, path):
        raise UsageError(f"{role} may not be {path}: that is the ledger or one of its own"
                         " files")
    own = {os.path.realpath(secret): f"a secret file named in {config.source}"
           for secret in config.secret_files()}
    own[os.path.realpath(config.source)] = "the configuration"
    what = own.get(os.path.realpath(path))
    if what:
        raise UsageError(f"{role} may not be {path}: that is {what}; nothing was written")


def print_json(args, data, *, ok: bool = True) -> None:
    """Every ``--json`` prints one object: ``{"ok": exit code is 0, "command": "orders list",
    "data": ...}`` (docs/operations.md, "JSON output")."""
    command = " ".join(filter(None, (args.command, getattr(args, f"{args.command}_command",
                                                               None))))
    document = {"ok": ok, "command": command, "data": data}
    sys.stdout.write(redact(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
                     + "\n")


def say(*parts: object, **options) -> None:
    """print() for people: vendor text in it cannot send the terminal escape sequences."""
    print(*(printable(redact(str(part))) for part in parts), **options)


def table(headers: Sequence[object], rows: Sequence[Sequence[object]],
          noun: str = "orders") -> None:
    for line in columns([headers, *rows]):
        print(line)
    print(f"({len(rows)} {noun})")


def waiting(ledger: LedgerAPI, actions: list[Action]) -> dict[int, str]:
    """Why each pending link of a chain waits: the earlier action it follows has not
    succeeded (it is pending, in flight, failed, dead, cancelled or uncertain)."""
    reasons = {}
    for action in actions:
        before = ledger.outbox.blocking(action)
        if before is not None:
            reasons[action.id] = f"waits for #{before.id} ({before.kind}, {before.state.value})"
    return reasons


def action_json(action: Action, waiting: str | None = None) -> dict:
    return {
        "id": action.id, "vendor": action.instance, "order": action.vendor_id,
        "kind": action.kind, "payload": action.payload, "key": action.key,
        "state": action.state.value, "attempts": action.attempts,
        "next_attempt_at": action.next_attempt_at,
        "needs_verification": action.needs_verification, "last_error": action.last_error,
        "result": action.result, "created_at": action.created_at,
        "updated_at": action.updated_at, "after": action.after, "waiting": waiting,
    }
