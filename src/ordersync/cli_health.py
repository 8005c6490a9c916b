"""``ordersync check``: is the running daemon healthy? Answers by its exit code.

0: the heartbeat is fresh (the daemon's loops make progress), its process is alive, and
every unpaused vendor instance polled successfully within its allowance. 1: not, with one
line per problem (no daemon, a stale heartbeat: stopped or wedged, a heartbeat file that is
not this user's alone, a vendor down or stale).
2 for a bad configuration and 4 for an unusable ledger or heartbeat file, as elsewhere;
with ``--json``, the exit-4 (and exit-3) answer also prints the one document, unhealthy,
with the error line as its problem, so that a monitor reading it always gets one.
"""

from __future__ import annotations

import sqlite3
import time

from .cli_common import EXIT_FAILED, EXIT_OK, print_json, say
from .errors import LedgerLocked, LedgerUnusable
from .health import UntrustedHeartbeat, daemon_problems, read_heartbeat, vendor_problems
from .ledger import ledger_problem, open_ledger


def add_check_command(commands) -> None:
    check = commands.add_parser(
        "check", help="is the running daemon healthy? exit 0 if so, 1 saying why not",
        description="Check the running daemon: its heartbeat is fresh (its loops make"
        " progress), its process is alive, and every unpaused vendor instance polled"
        " successfully within 3 poll intervals plus a call deadline. Exit 0 when healthy,"
        " 1 with one line per problem.")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=cmd_check)


def cmd_check(args) -> int:
    config = args.config_obj
    now = time.time()
    try:
        heartbeat, problems, vendors = _examine(config, now)
    except (LedgerUnusable, LedgerLocked) as exc:
        if args.json:  # a monitor reading --json gets its document on every outcome
            _print_check(args, None, [str(exc)], dict.fromkeys(config.vendors, "not checked"),
                         now)
        raise  # and the one error line on stderr, exit 4 (3 for a locked ledger)
    if args.json:
        _print_check(args, heartbeat, problems, vendors, now)
    elif problems:
        for problem in problems:
            say(f"unhealthy: {problem}")
    else:
        assert heartbeat is not None  # no heartbeat is a problem
        say(f"healthy: daemon pid {heartbeat['pid']}, heartbeat {now - heartbeat['time']:.1f}s"
            f" old, {len(vendors)} vendor instance{'s' * (len(vendors) != 1)} ready")
    return EXIT_FAILED if problems else EXIT_OK


def _examine(config, now: float) -> tuple[dict | None, list[str], dict[str, str | None]]:
    """The heartbeat, every problem found, and each vendor's problem (None: ready)."""
    path = config.heartbeat_path
    try:
        heartbeat = read_heartbeat(path)
    except UntrustedHeartbeat as exc:   # unhealthy: nothing says the daemon is well
        heartbeat, untrusted = None, [str(exc)]
    except ValueError as exc:
        raise LedgerUnusable(str(exc)) from None
    except OSError as exc:
        raise LedgerUnusable(f"cannot read the heartbeat {path}: {exc.strerror}") from None
    else:
        untrusted = []
    problems = untrusted or daemon_problems(heartbeat, path, now,
                                            config.heartbeat.stale_after_s)
    vendors: dict[str, str | None] = dict.fromkeys(config.vendors)
    if config.ledger_path.exists():
        try:
            ledger = open_ledger(config.ledger_url)
            try:
                health = ledger.vendor_health()
            finally:
                ledger.close()
        except sqlite3.Error as exc:
            raise ledger_problem(config.ledger_path, exc) or exc from None
        vendors.update(vendor_problems(config.vendors.values(), health, now))
    else:
        problems.append(f"no ledger at {config.ledger_path} yet (the daemon never ran)")
    problems += [f"vendor {name} not ready: {why}" for name, why in vendors.items() if why]
    return heartbeat, problems, vendors


def _print_check(args, heartbeat: dict | None, problems: list[str],
                 vendors: dict[str, str | None], now: float) -> None:
    print_json(args, {
        "healthy": not problems, "problems": problems,
        "pid": heartbeat["pid"] if heartbeat else None,
        "heartbeat_age_s": round(now - heartbeat["time"], 3) if heartbeat else None,
        "vendors": vendors,
    }, ok=not problems)
