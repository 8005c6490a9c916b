"""``ordersync demo``: every adapter's simulator, synced into a fresh ledger, summarised.

The demo configures itself through the same checks as a real configuration file: each
simulator's settings become a ``[vendors.NAME]`` table whose secrets come from an
environment mapping, never from a file.

The demo replaces only what it made: its ledger is marked by a file beside it
(``ordersync.db.demo``, which also records the ledger file as the demo left it: a ledger
synced or acted on since is no longer the demo's) and its configuration by its first line.
Anything else in the way
(a real ledger, its WAL, a configuration someone wrote) is refused with one line, and a
ledger another process holds is never touched (its lock is taken first).
"""

from __future__ import annotations

import shlex
from dataclasses import asdict
from pathlib import Path

import orjson

from .actions import enqueue, enqueue_chain
from .config import Config, parse_config
from .daemon import LedgerLock, Service
from .errors import ConfigError
from .ledger import open_ledger, private_folder
from .registry import adapters
from .text import columns, printable

CONFIG_HEADER = "# Written by `ordersync demo`: reads the demo ledger (the simulators are gone).\n"
MARKER_TEXT = "Made by `ordersync demo`: the next demo run may replace this ledger.\n"


def _clear_previous_demo(directory: Path, ledger_path: Path, config_path: Path) -> None:
    """Remove the ledger of an earlier demo run; refuse anything the demo did not make."""
    marker = Path(f"{ledger_path}.demo")
    lock = LedgerLock(ledger_path)
    lock.acquire()  # LedgerBusy (exit 3) if a daemon or command is using it
    try:
        files = [Path(f"{ledger_path}{suffix}") for suffix in ("", "-wal", "-shm")]
        if any(f.exists() for f in files) and not marker.is_file():
            raise ConfigError(f"--dir {directory}: {ledger_path} is not a ledger the demo made;"
                              " the demo never replaces it (choose another --dir)")
        if marker.is_file() and _fingerprint(ledger_path) != _read_marker(marker):
            raise ConfigError(f"--dir {directory}: {ledger_path} has been used since the demo"
                              " made it (synced or acted on); the demo never replaces it"
                              " (choose another --dir)")
        if config_path.exists() and not _written_by_demo(config_path):
            raise ConfigError(f"--dir {directory}: {config_path} is not a configuration the"
                              " demo wrote; the demo never replaces it (choose another --dir)")
        marker.write_text(orjson.dumps({"note": MARKER_TEXT.strip()}).decode(), encoding="utf-8")
        for f in files:
            f.unlink(missing_ok=True)
    finally:
        lock.release()


def _fingerprint(ledger_path: Path) -> dict:
    """What the ledger file looked like when the demo left it: any later write (a sync, an
    action queued through another configuration) changes it or leaves a WAL beside it."""
    try:
        stat = ledger_path.stat()
    except FileNotFoundError:
        return {"note": MARKER_TEXT.strip()}
    wal = Path(f"{ledger_path}-wal")
    return {"note": MARKER_TEXT.strip(), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0}


def _read_marker(marker: Path) -> dict | None:
    try:
        value = orjson.loads(marker.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _written_by_demo(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline() == CONFIG_HEADER
    except (OSError, UnicodeDecodeError):
        return False


async def run_demo(directory: Path, *, orders: int) -> dict:
    """Run the demo and return its summary (see print_summary)."""
    ledger_path = directory / "ordersync.db"
    config_path = directory / "ordersync.toml"
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--dir {directory}: not a folder")
    try:
        private_folder(directory)   # it will hold a ledger of (sample) customer data
        _clear_previous_demo(directory, ledger_path, config_path)
    except OSError as exc:
        raise ConfigError(f"--dir {directory}: cannot use it as the demo's folder"
                          f" ({exc.strerror})") from None
    simulators, tables, environ = {}, {}, {}
    try:
        for name, spec in sorted(adapters().items()):
            if spec.simulator is None or spec.demo_settings is None:
                continue
            sim = spec.simulator(orders=orders, seed=1)
            base_url = await sim.start("127.0.0.1", 0)
            simulators[name] = sim
            table = {"adapter": name, "base_url": base_url + spec.base_path,
                     "rate_limit": {"requests": 50, "per_s": 1.0}}
            for key, value in spec.demo_settings(sim, base_url).items():
                if spec.options[key].secret:
                    variable = f"ORDERSYNC_DEMO_{name.upper()}_{key.upper()}"
                    environ[variable] = value
                    table[f"{key}_env"] = variable
                else:
                    table[key] = value
            tables[name] = table
        config = parse_config(
            {"ledger": {"path": str(ledger_path)}, "vendors": tables},
            source="demo", environ=environ, base_dir=directory,
        )
        first, idle, actions = await _sync_act_and_repoll(config)
    finally:
        for sim in simulators.values():
            await sim.stop()
    # an absolute path, as a TOML string (JSON's escapes are TOML's): the configuration
    # works from any folder, whatever characters the folder's name holds
    config_path.write_text(f"{CONFIG_HEADER}[ledger]\npath = "
                           f"{orjson.dumps(str(ledger_path.resolve())).decode()}\n",
                           encoding="utf-8")
    ledger = open_ledger(ledger_path)
    try:
        states = ledger.summary()
        sample = [o for name in tables for o in ledger.orders(instance=name, limit=3)]
        events = ledger.count_events()
    finally:
        ledger.close()
    marker = Path(f"{ledger_path}.demo")
    marker.write_text(orjson.dumps(_fingerprint(ledger_path)).decode(), encoding="utf-8")
    return {
        "ledger": str(ledger_path),
        "config": str(config_path),
        "first_sync": [r.as_dict() for r in first],
        "idle_sync": [r.as_dict() for r in idle],
        "actions": [{"id": a.id, "kind": a.kind, "order": a.target, "state": a.state.value,
                     "error": a.last_error,
                     "created_order": (a.result or {}).get("order_id")} for a in actions],
        "errors": [e for r in (*first, *idle) for e in r.errors],
        "states": [asdict(count) for count in states],
        "events": events,
        "sample": [
            {k: o.as_json()[k] for k in ("vendor", "id", "state", "vendor_state", "reference",
                                         "created")}
            for o in sample
        ],
    }


async def _sync_act_and_repoll(config: Config):
    """Sync, check that an idle re-poll is cheap, queue each adapter's sample actions,
    then let a further sync push them."""
    async with Service(config, handle_signals=False) as service:
        first = await service.run_once()
        idle = await service.run_once()
        ledger = service.ledger
        assert ledger is not None  # open inside the async with
        queued = []
        for name, vendor in config.vendors.items():
            spec = adapters()[vendor.adapter]
            if spec.demo_actions is None:
                continue
            orders = await ledger.call(lambda ledger, n=name: ledger.orders(instance=n))
            for kind, order_id, params in spec.demo_actions(orders):
                queued += await enqueue(config, kind, [(name, order_id)], params)
            if spec.demo_chain:
                queued += await enqueue_chain(config, name, None, list(spec.demo_chain))
        await service.run_once()
        ids = [action.id for action, _ in queued]
        done = [ledger.ledger.outbox.get(i) for i in ids]
    return first, idle, done


def print_summary(summary: dict, program: str = "ordersync") -> None:
    """The summary for a person; ``program`` is how to run ordersync again from here."""

    def table(title: str, rows: list[tuple], right: tuple[int, ...] = ()) -> None:
        print(f"  {title}:")
        for line in columns(rows, right=right):
            print(f"    {line}")
        print()

    print("ordersync demo: simulators on loopback, synced into", printable(summary["ledger"]))
    print()
    table("syncs", [("SYNC", "VENDOR", "NEW", "CHANGED", "PAGES", "REQUESTS", "SECONDS"),
                    *((label, r["vendor"], r["new"], r["changed"], r["pages"], r["requests"],
                       f"{r['duration_s']:.2f}")
                      for label, results in (("first", summary["first_sync"]),
                                             ("idle re-poll", summary["idle_sync"]))
                      for r in results)], right=(2, 3, 4, 5, 6))
    table("sample actions pushed through the outbox",
          [("ACTION", "KIND", "ORDER", "STATE", "DETAIL"),
           *((f"#{a['id']}", a["kind"], a["order"], a["state"],
              f"made order {a['created_order']}" if a["created_order"]
              else (a["error"] or "") if a["state"] != "succeeded" else "")
             for a in summary["actions"])])
    table("orders by state", [("VENDOR", "STATE", "ORDERS"),
                              *((r["instance"], r["state"], r["orders"])
                                for r in summary["states"])], right=(2,))
    print(f"  events recorded: {summary['events']}")
    print()
    table("newest orders of each vendor",
          [("ORDER", "STATE", "VENDOR STATE", "REFERENCE"),
           *((f"{o['vendor']}:{o['id']}", o["state"], o["vendor_state"], o["reference"])
             for o in summary["sample"])])
    for error in summary["errors"]:
        print(f"  ERROR: {printable(error)}")
    print("Explore the ledger:")
    config = f"{program} --config {shlex.quote(summary['config'])}"
    print(f"  {config} orders list")
    print(f"  {config} actions list")
    if summary["sample"]:
        first = summary["sample"][0]
        print(f"  {config} orders show {printable(first['vendor'])}:{printable(first['id'])}")
