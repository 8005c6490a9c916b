"""``ordersync demo``: every adapter's simulator, synced into a fresh ledger, summarised.

The demo configures itself through the same checks as a real configuration file: each
simulator's settings become a ``[vendors.NAME]`` table whose secrets come from an
environment mapping, never from a file.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .config import Config, parse_config
from .actions import enqueue
from .daemon import Service
from .ledger import open_ledger
from .registry import adapters


async def run_demo(directory: Path, *, orders: int) -> dict:
    """Run the demo and return its summary (see print_summary)."""
    directory.mkdir(parents=True, exist_ok=True)
    ledger_path = directory / "ordersync.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ledger_path}{suffix}").unlink(missing_ok=True)
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
    config_path = directory / "ordersync.toml"
    config_path.write_text(
        "# Written by `ordersync demo`: reads the demo ledger (the simulators are gone).\n"
        f'[ledger]\npath = "{ledger_path}"\n',
        encoding="utf-8",
    )
    ledger = open_ledger(ledger_path)
    try:
        states = ledger.summary()
        sample = [o for name in tables for o in ledger.orders(instance=name, limit=3)]
        events = ledger.count_events()
    finally:
        ledger.close()
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
        queued = []
        for name, vendor in config.vendors.items():
            spec = adapters()[vendor.adapter]
            if spec.demo_actions is None:
                continue
            orders = await service.ledger.call(lambda ledger, n=name: ledger.orders(instance=n))
            for kind, order_id, params in spec.demo_actions(orders):
                queued += await enqueue(config, kind, [(name, order_id)], params)
        await service.run_once()
        ids = [action.id for action, _ in queued]
        done = [service.ledger.ledger.outbox.get(i) for i in ids]
    return first, idle, done


def print_summary(summary: dict) -> None:
    print("ordersync demo: simulators on loopback, synced into", summary["ledger"])
    print()
    for result in summary["first_sync"]:
        print(f"  first sync  {result['vendor']:<12} {result['new']:>5} new orders,"
              f" {result['pages']} pages, {result['requests']} requests,"
              f" {result['duration_s']:.2f}s")
    for result in summary["idle_sync"]:
        print(f"  idle re-poll {result['vendor']:<11} {result['new'] + result['changed']:>5}"
              f" changes, {result['requests']} requests")
    print()
    print("  sample actions pushed through the outbox:")
    for action in summary["actions"]:
        made = f" (order {action['created_order']})" if action["created_order"] else ""
        print(f"    #{action['id']:<3} {action['kind']:<12} {action['order']:<28}"
              f" {action['state']}{made}" + (f": {action['error']}" if action["error"] and
                                             action["state"] != "succeeded" else ""))
    print()
    print("  orders by state:")
    for row in summary["states"]:
        print(f"    {row['instance']:<12} {row['state']:<14} {row['orders']:>5}")
    print(f"  events recorded: {summary['events']}")
    print()
    print("  newest orders of each vendor:")
    for order in summary["sample"]:
        print(f"    {order['vendor']}:{order['id']:<8} {order['state']:<10}"
              f" {order['vendor_state']:<10} {order['reference'] or ''}")
    for error in summary["errors"]:
        print(f"  ERROR: {error}")
    print()
    print("Explore the ledger:")
    print(f"  ordersync --config {summary['config']} orders list")
    print(f"  ordersync --config {summary['config']} actions list")
    if summary["sample"]:
        first = summary["sample"][0]
        print(f"  ordersync --config {summary['config']} orders show"
              f" {first['vendor']}:{first['id']}")
