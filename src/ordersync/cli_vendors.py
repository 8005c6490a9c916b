"""``ordersync vendors list|pause|resume``: each vendor instance's health, freshness first,
and stopping or restarting its polls and pushes without stopping the daemon."""

from __future__ import annotations

import time
from datetime import datetime

from .cli_common import EXIT_OK, group, open_ledger, print_json, say, table
from .ledger import VendorHealth


def add_vendor_commands(commands) -> None:
    vendors = group(commands, "vendors", "list, pause or resume vendor instances",
                    "Each vendor instance's health, and pausing or resuming it.")
    listing = vendors.add_parser("list", help="each instance's health, freshness first",
                                 description="List every vendor instance: how old its last"
                                 " successful poll is, its adapter, its last poll, failures in"
                                 " a row, the last error and whether it is paused.")
    listing.add_argument("--json", action="store_true", help="print JSON (an array)")
    listing.set_defaults(func=cmd_vendors_list)
    for verb, text in (("pause", "stop polling an instance and pushing its actions"),
                       ("resume", "poll an instance and push its actions again")):
        sub = vendors.add_parser(verb, help=text, description=text[0].upper() + text[1:]
                                 + ": the daemon and `sync --once` follow within one poll"
                                 " interval; the pause is kept in the ledger.")
        sub.add_argument("name", metavar="NAME", help="the vendor instance")
        sub.add_argument("--json", action="store_true", help="print the instance as JSON")
        sub.set_defaults(func=cmd_vendors_pause, paused=verb == "pause")


def cmd_vendors_list(args) -> int:
    config, now = args.config_obj, time.time()
    ledger = open_ledger(config)
    try:
        health = {h.instance: h for h in ledger.vendor_health()}
    finally:
        ledger.close()
    names = [*config.vendors, *(name for name in health if name not in config.vendors)]
    rows = [vendor_json(name, _adapter(config, name), health.get(name), now) for name in names]
    if args.json:
        print_json(args, rows)
        return EXIT_OK
    table(("VENDOR", "FRESHNESS", "ADAPTER", "LAST POLL", "FAILURES", "PAUSED", "LAST ERROR"),
          [(r["vendor"], age(r["freshness_s"]), r["adapter"], age(r["last_poll_age_s"]),
            str(r["failures"]), "yes" if r["paused"] else "no",
            (f"{r['error_class']}: {r['error']}" if r["error_class"] else "")[:60])
           for r in rows], noun="vendors")
    return EXIT_OK


def cmd_vendors_pause(args) -> int:
    config = args.config_obj
    vendor = config.vendor(args.name)
    ledger = open_ledger(config)
    try:
        ledger.set_paused(vendor.name, args.paused)
        [health] = ledger.vendor_health(vendor.name)
    finally:
        ledger.close()
    if args.json:
        print_json(args, vendor_json(vendor.name, vendor.adapter, health, time.time()))
    elif args.paused:
        say(f"{vendor.name}: paused: the daemon stops polling it and pushing its actions from"
            f" its next cycle (`ordersync vendors resume {vendor.name}` to undo)")
    else:
        say(f"{vendor.name}: resumed: the daemon polls it again within one poll interval")
    return EXIT_OK


def vendor_json(name: str, adapter: str, health: VendorHealth | None, now: float) -> dict:
    """One instance's health; ages in seconds (None: never)."""
    h = health or VendorHealth(name, None, None, None, None, 0, False)  # never polled
    return {
        "vendor": name, "adapter": adapter,
        "freshness_s": _age_s(h.last_success_at, now), "last_success": h.last_success_at,
        "last_poll": h.last_poll_at, "last_poll_age_s": _age_s(h.last_poll_at, now),
        "failures": h.consecutive_failures, "error_class": h.last_error_class,
        "error": h.last_error, "paused": h.paused,
    }


def _adapter(config, name: str) -> str:
    vendor = config.vendors.get(name)
    return vendor.adapter if vendor else "(not configured)"


def _age_s(at: str | None, now: float) -> float | None:
    if not at:
        return None
    return round(max(0.0, now - datetime.fromisoformat(at).timestamp()), 3)


def age(seconds: float | None) -> str:
    """``42s``, ``7m``, ``3h``, ``2d``, or ``never``."""
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
