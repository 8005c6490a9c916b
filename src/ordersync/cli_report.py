"""``ordersync report`` (the morning report) and ``ordersync reconcile`` (drift).

``report`` reads the ledger (no lock: it works while the daemon runs) apart from one short
write, the exceptions refresh. ``reconcile`` talks to vendors and writes drift, so it takes
the ledger lock as ``sync --once`` does.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

from .cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    known_instance,
    open_ledger,
    print_json,
    refuse_own_files,
    run_interruptible,
    say,
)
from .config import Config
from .daemon import LedgerLock
from .errors import ConfigError, LedgerUnusable, VendorError
from .redaction import redact
from .registry import adapter as find_adapter
from .report import build_report, parse_since, render_html
from .report.reconcile import Reconciled, reconcile
from .report.settings import DEFAULT_SINCE
from .report.text import render_csv, render_table

FORMATS = ("table", "csv", "json", "html")


def add_report_commands(commands) -> None:
    report = commands.add_parser(
        "report", help="the morning report: vendor health, exceptions, summary, drift",
        description="Vendor health (freshness first), what needs a person, every exception"
        " (new, persisting, resolved since WHEN), orders per state and value, and drift."
        " Reads the ledger while the daemon runs; thresholds are in [report].")
    report.add_argument("--format", choices=FORMATS, metavar="FORMAT",
                        help="table (default; fits 80 columns), csv (one row per exception),"
                        " json (the shape in docs/reports.md) or html (one self-contained"
                        " file)")
    report.add_argument("--out", metavar="FILE", help="write the report to FILE (replaced"
                        " atomically, readable by you only) instead of printing it")
    report.add_argument("--vendor", metavar="V", help="only this vendor instance")
    report.add_argument("--since", metavar="WHEN", default=DEFAULT_SINCE,
                        help="what is new or resolved since WHEN: 24h, 7d, 90m or an ISO 8601"
                        f" time (default: {DEFAULT_SINCE})")
    report.add_argument("--json", action="store_true", help="print the report as the one JSON"
                        " shape of every command (its data is what --format json prints)")
    report.set_defaults(func=cmd_report)

    rec = commands.add_parser(
        "reconcile", help="re-read vendors in full and record drift from the ledger",
        description="Read every order of every (or one) vendor again and compare it with the"
        " ledger: matched, missing (vanished), unexpected (unknown to the ledger) and"
        " mismatched (changed) orders; each difference is recorded as a drift event and"
        " exception, the orders are left for the next sync. Exit 1 when any differs.")
    rec.add_argument("--vendor", metavar="V", help="only this vendor instance")
    rec.add_argument("--json", action="store_true", help="print the counts as JSON")
    rec.set_defaults(func=cmd_reconcile)


def _specs(config: Config) -> dict:
    if not config.vendors:
        raise UsageError(f"{config.source}: no vendors configured (add a [vendors.NAME]"
                         " table): nothing to report on")
    return {name: find_adapter(v.adapter) for name, v in config.vendors.items()}


def cmd_report(args) -> int:
    config = args.config_obj
    specs = _specs(config)
    if args.vendor:
        known_instance(config, args.vendor)
    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json prints JSON: leave out --format {args.format}")
    fmt = args.format or ("json" if args.json else "table")
    now = time.time()
    try:
        since = parse_since(args.since, now)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    if args.out:
        refuse_own_files(config, Path(args.out), "--out")
    ledger = open_ledger(config)
    try:
        report = build_report(ledger, specs, now, config.report, vendor=args.vendor,
                              since=since)
    finally:
        ledger.close()
    register_available_secrets(config)
    report = redact_strings(report)
    if args.out:
        write_atomically(Path(args.out), render(report, fmt))
        if args.json:
            print_json(args, {"out": args.out, "format": fmt, "counts": report["counts"]})
        else:
            say(f"report written to {args.out} ({fmt}; {report['counts']['open']} open"
                " exceptions)")
    elif args.json:
        print_json(args, report)
    else:
        sys.stdout.write(render(report, fmt))
    return EXIT_OK


def register_available_secrets(config: Config) -> None:
    """Read every configured secret this process can read, so that vendor text repeating
    one is redacted although the report talks to no vendor; one not set here is skipped."""
    for vendor in config.vendors.values():
        for key in vendor.secrets:
            try:
                vendor.secrets[key]
            except ConfigError:
                continue


def redact_strings(value):
    """``value`` (the report dict) with every string redacted before any format escapes
    it: an escaped spelling (``&amp;``, ``\\"``, ``""``) cannot slip past :func:`redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_strings(k): redact_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_strings(v) for v in value]
    return value


def render(report: dict, fmt: str) -> str:
    """The report in ``fmt``, every secret ordersync knows redacted (as all its output).

    ``--format json`` is one compact line, for scripts (``--json`` prints it indented)."""
    if fmt == "json":
        text = orjson.dumps(report).decode() + "\n"
    elif fmt == "csv":
        text = render_csv(report)
    elif fmt == "html":
        text = render_html(report)
    else:
        text = render_table(report)
    return redact(text)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a private temporary file renamed over it: a reader
    sees the old file or the whole new one, and nobody else may read it (customer data).
    A device or a pipe (``/dev/stdout``, a FIFO, also through a link) is written into, never
    replaced by a file."""
    folder = path.parent if str(path.parent) else Path(".")
    temp = None
    try:
        if path.exists() and not (path.is_file() or path.is_dir()):
            with path.open("w", encoding="utf-8") as out:
                out.write(text)
            return
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        raise LedgerUnusable(f"--out {path}: cannot write the report there:"
                             f" {exc.strerror or exc}") from None
    finally:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)


def cmd_reconcile(args) -> int:
    config = args.config_obj
    _specs(config)
    names = [config.vendor(args.vendor).name] if args.vendor else sorted(config.vendors)
    for name in names:          # a missing secret stops us before anything is touched
        config.vendor(name).secrets.load()
    ledger = open_ledger(config)
    lock = LedgerLock(config.ledger_path)
    results: list[Reconciled] = []
    errors: list[str] = []

    async def walk() -> None:
        for name in names:
            try:
                results.append(await reconcile(config.vendor(name), ledger))
            except VendorError as exc:      # its text may name the vendor already
                text = str(exc)
                errors.append(text if text.startswith(f"{name}: ") else f"{name}: {text}")

    try:
        lock.acquire()
        run_interruptible(walk())
    finally:
        lock.release()
        ledger.close()
    differ = any(r.differences or r.incomplete for r in results) or bool(errors)
    if args.json:
        print_json(args, {"vendors": [r.as_dict() for r in results], "errors": errors},
                   ok=not differ)
    else:
        for r in results:
            say(f"{r.vendor}: {r.matched} matched, {r.missing} missing, {r.unexpected}"
                f" unexpected, {r.mismatched} mismatched ({r.requests} requests)"
                + (f"; incomplete: {r.incomplete}" if r.incomplete else ""))
            for d in r.differences:
                say(f"  drift {r.vendor}:{d.vendor_id}: {d.reason}")
    for error in errors:
        say(f"ordersync: error: {error}", file=sys.stderr)
    return EXIT_FAILED if differ else EXIT_OK
