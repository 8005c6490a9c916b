"""Reseller API V3 (interworks.cloud white-label resellers): drafts, items, checkout and
the execution of confirmed orders.

Registered as the ``reseller`` adapter through the ``ordersync.adapters`` entry point.
"""

from __future__ import annotations

import time

from ordersync.contract import AdapterSpec, Option, Prices
from ordersync.ledger.records import StoredOrder

from .actions import ACTIONS
from .adapter import ResellerAdapter
from .client import HTTP, ResellerApi, password_grant
from .mapping import DRAFT, WAITING_STATES, identify, map_order, problems

OPTIONS = {
    "client_key": Option(str, required=True, help="OAuth client key of the API application"),
    "client_secret": Option(str, required=True, secret=True, help="OAuth client secret"),
    "username": Option(str, required=True, help="the reseller API user's name"),
    "password": Option(str, required=True, secret=True, help="the reseller API user's password"),
    "page_size": Option(int, default=100, help="orders per list request (pageSize)"),
}


def create(config, http, *, clock=time.time) -> ResellerAdapter:
    return ResellerAdapter(ResellerApi(http), page_size=config.settings["page_size"],
                           clock=clock)


def simulator(*, orders: int = 60, seed: int = 1, **kwargs):
    from .simulator import ResellerSimulator

    return ResellerSimulator(orders=orders, seed=seed, **kwargs)


def demo_settings(sim, base_url: str) -> dict:
    return {"client_key": sim.client_key, "client_secret": sim.client_secret,
            "username": sim.username, "password": sim.password}


def demo_actions(orders: list[StoredOrder]) -> list[tuple[str, str | None, dict]]:
    """Create a draft for an account, and check out an existing draft."""
    actions: list[tuple[str, str | None, dict]] = [("create_draft", None,
                                                    {"account_id": "ACC-1001"})]
    drafts = [o for o in orders if o.vendor_state == DRAFT]
    if drafts:
        actions.append(("checkout", drafts[0].vendor_id, {}))
    return actions


DEMO_CHAIN: tuple[tuple[str, dict], ...] = (("create_draft", {"account_id": "ACC-1002"}),
              ("add_item", {"product_id": "MS-365-BB", "quantity": 5}),
              ("add_item", {"product_id": "ACR-BACKUP"}),
              ("checkout", {}))
"""Create a draft, add two items, check it out: one intent."""

ADAPTER = AdapterSpec(
    name="reseller",
    options=OPTIONS,
    create=create,
    map_order=map_order,
    identify=identify,
    simulator=simulator,
    demo_settings=demo_settings,
    demo_actions=demo_actions,
    http=HTTP,
    actions=ACTIONS,
    waiting_states=WAITING_STATES,
    problem_states=frozenset({"Submitted"}),
    problems=problems,
    prices=Prices("totalAmount", "currency"),
    demo_chain=DEMO_CHAIN,
)

__all__ = ["ADAPTER", "password_grant", "ResellerAdapter", "ResellerApi", "map_order"]
