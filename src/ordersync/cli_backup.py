"""``ordersync backup PATH`` and ``ordersync restore BACKUP``: a copy of the ledger taken
while the daemon runs, and putting one back (docs/operations.md, "Backing up")."""

from __future__ import annotations

import time
from pathlib import Path

from .cli_common import EXIT_OK, print_json, refuse_own_files, say
from .daemon import LedgerLock
from .ledger.backup import backup, restore


def add_backup_commands(commands) -> None:
    copy = commands.add_parser(
        "backup", help="copy the ledger, safely while the daemon runs",
        description="Copy the ledger through SQLite's online backup API: one consistent"
        " snapshot, checked with PRAGMA integrity_check, written private (0600) and renamed"
        " into place. Safe while the daemon runs; takes no lock.")
    copy.add_argument("path", metavar="PATH", help="the backup file to write, or a folder to"
                      " write ordersync-<UTC time>.db into")
    copy.add_argument("--force", action="store_true", help="replace PATH if it exists")
    copy.add_argument("--json", action="store_true", help="print what was written as JSON")
    copy.set_defaults(func=cmd_backup)

    back = commands.add_parser(
        "restore", help="put a backup in place of the ledger (the daemon stopped)",
        description="Replace the ledger with a checked copy of BACKUP, keeping the current"
        " ledger as <ledger>.before-restore-<UTC time>. Refused while the daemon or another"
        " ordersync process holds the ledger.")
    back.add_argument("backup", metavar="BACKUP", help="a file written by `ordersync backup`")
    back.add_argument("--json", action="store_true", help="print what was done as JSON")
    back.set_defaults(func=cmd_restore)


def cmd_backup(args) -> int:
    ledger = args.config_obj.ledger_path
    refuse_own_files(args.config_obj, Path(args.path), "the backup")  # --force would replace it
    copy = backup(ledger, Path(args.path), now=time.time(), force=args.force)
    if args.json:
        print_json(args, {"path": str(copy.path), "bytes": copy.bytes, "orders": copy.orders,
                          "ledger": str(ledger)})
    else:
        say(f"wrote {copy.path}: {copy.bytes} bytes, {copy.orders} orders"
            f" (a checked copy of {ledger})")
    return EXIT_OK


def cmd_restore(args) -> int:
    ledger = args.config_obj.ledger_path
    lock = LedgerLock(ledger)
    lock.acquire()  # LedgerBusy (exit 3) while the daemon or a sync holds the ledger
    try:
        done = restore(ledger, Path(args.backup), now=time.time())
    finally:
        lock.release()
    if args.json:
        print_json(args, {"ledger": str(ledger), "from": args.backup, "bytes": done.ledger.bytes,
                          "orders": done.ledger.orders,
                          "kept": str(done.kept) if done.kept else None,
                          "actions_to_verify": done.to_verify})
    else:
        say(f"restored {ledger} from {args.backup}: {done.ledger.orders} orders"
            + (f"; the ledger it replaced is kept as {done.kept}" if done.kept else ""))
        if done.to_verify:
            say(f"{done.to_verify} queued actions may have been performed since the backup:"
                " each is verified with its vendor before it is sent")
    return EXIT_OK
