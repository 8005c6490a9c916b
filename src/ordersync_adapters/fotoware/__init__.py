"""Fotoware (FotoWeb) order management: customers order renditions, admins decide.

Registered as the ``fotoware`` adapter through the ``ordersync.adapters`` entry point.
"""

from __future__ import annotations

import time

from ordersync.contract import AdapterSpec, Option
from ordersync.ledger.records import StoredOrder

from .actions import ACTIONS
from .adapter import FotowareAdapter
from .client import HTTP, FotowareApi, client_credentials
from .mapping import WAITING_STATES, identify, map_order, map_row

OPTIONS = {
    "client_id": Option(str, required=True, help="OAuth client id of the API client"),
    "client_secret": Option(str, required=True, secret=True, help="OAuth client secret"),
    "full_scan_interval_s": Option(float, default=86400.0,
                                   help="how often to re-read every order to catch edits"),
}


def create(config, http, *, clock=time.time) -> FotowareAdapter:
    return FotowareAdapter(
        FotowareApi(http), full_scan_interval_s=config.settings["full_scan_interval_s"],
        clock=clock,
    )


def simulator(*, orders: int = 60, seed: int = 1, **kwargs):
    from .simulator import FotowareSimulator

    return FotowareSimulator(orders=orders, seed=seed, **kwargs)


def demo_settings(sim, base_url: str) -> dict:
    return {"client_id": sim.client_id, "client_secret": sim.client_secret}


def demo_actions(orders: list[StoredOrder]) -> list[tuple[str, str | None, dict]]:
    """Approve two pending orders (one with a comment), reject one, submit a created one."""
    pending = [o.vendor_id for o in orders if o.vendor_state == "pending"]
    created = [o.vendor_id for o in orders if o.vendor_state == "created"]
    actions: list[tuple[str, str | None, dict]] = []
    if len(pending) >= 3:
        actions += [("approve", pending[0], {}),
                    ("approve", pending[1], {"comment": "Approved for the spring campaign"}),
                    ("reject", pending[2], {"comment": "No model release for this use"})]
    if created:
        actions.append(("submit", created[0], {}))
    return actions


ADAPTER = AdapterSpec(
    name="fotoware",
    options=OPTIONS,
    create=create,
    map_order=map_order,
    map_row=map_row,
    identify=identify,
    simulator=simulator,
    demo_settings=demo_settings,
    demo_actions=demo_actions,
    http=HTTP,
    actions=ACTIONS,
    waiting_states=WAITING_STATES,
)

__all__ = ["ADAPTER", "FotowareAdapter", "FotowareApi", "client_credentials", "map_order"]
