"""Pwinty REST API v2.2: print orders, their photos, and their submission.

Registered as the ``pwinty`` adapter through the ``ordersync.adapters`` entry point.
"""

from __future__ import annotations

import time

from ordersync.contract import AdapterSpec, Option, Prices
from ordersync.ledger.records import StoredOrder

from .actions import ACTIONS
from .adapter import PwintyAdapter
from .client import HTTP, PwintyApi
from .mapping import WAITING_STATES, identify, map_order, problems

OPTIONS = {
    "merchant_id": Option(str, required=True, help="Pwinty merchant id"),
    "api_key": Option(str, required=True, secret=True, help="Pwinty REST API key"),
    "page_size": Option(int, default=100, help="orders per list request (count)"),
    "readiness_max_age_s": Option(float, default=900.0,
                                  help="re-read SubmissionStatus of unchanged drafts this often"),
}


def create(config, http, *, clock=time.time) -> PwintyAdapter:
    api = PwintyApi(http)
    return PwintyAdapter(api, page_size=config.settings["page_size"],
                         readiness_max_age_s=config.settings["readiness_max_age_s"],
                         clock=clock)


def simulator(*, orders: int = 60, seed: int = 1, **kwargs):
    from .simulator import PwintySimulator

    return PwintySimulator(orders=orders, seed=seed, **kwargs)


def demo_settings(sim, base_url: str) -> dict:
    return {"merchant_id": sim.merchant_id, "api_key": sim.api_key}


def demo_actions(orders: list[StoredOrder]) -> list[tuple[str, str | None, dict]]:
    """Create a print order, and add a photo to an existing draft."""
    actions: list[tuple[str, str | None, dict]] = [("create", None, {"fields": {
        "recipientName": "Demo Customer", "address1": "1 Example Street",
        "addressTownOrCity": "London", "postalOrZipCode": "N1 1AA", "countryCode": "GB",
        "qualityLevel": "Pro"}})]
    drafts = [o for o in orders if o.vendor_state == "NotYetSubmitted"]
    if drafts:
        actions.append(("add_photo", drafts[0].vendor_id, {"photos": [{
            "type": "4x6", "url": "https://images.example.com/demo.jpg", "copies": 2}]}))
    return actions


ADAPTER = AdapterSpec(
    name="pwinty",
    options=OPTIONS,
    create=create,
    map_order=map_order,
    identify=identify,
    simulator=simulator,
    demo_settings=demo_settings,
    demo_actions=demo_actions,
    http=HTTP,
    base_path="/v2.2",
    actions=ACTIONS,
    waiting_states=WAITING_STATES,
    problem_states=frozenset(WAITING_STATES) | {"PaidAwaitingImageUpload"},
    problems=problems,
    prices=Prices("price_minor", minor_units=True),
    demo_chain=(  # create a print order, add three photos in one batch
        ("create", {"recipient": "Chain Customer", "address1": "2 Example Street",
                    "town": "Leeds", "postcode": "LS1 1AA", "country": "GB",
                    "quality": "Standard"}),
        ("add_photo", {"url": [f"https://images.example.com/chain-{n}.jpg" for n in (1, 2, 3)],
                       "type": "4x6"}),
    ),
)

__all__ = ["ADAPTER", "PwintyAdapter", "PwintyApi", "map_order"]
