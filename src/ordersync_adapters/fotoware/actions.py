"""Fotoware decisions pushed back: approve, reject, update (PATCH) and submit.

The documented trap: an update, approve or reject *body* replaces the order's items and
its custom order data, and leaving them out clears them. So an action that changes only a
comment, an expiry or one custom field is sent with the order's current items and data,
taken from a fresh read just before the request (:func:`update_body`). A plain approve or
reject (nothing to change) is sent without a body and so cannot clear anything.

None of these verbs is idempotent in its effects (each APPROVE or REJECT mails the
customer), and FotoWeb has no idempotency keys, so a request whose answer was lost is
verified by reading the order (:func:`effect_present`) before it is ever repeated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ordersync.contract import ActionSpec, Outcome, Param, ParamType
from ordersync.errors import ActionRefused, ParameterError
from ordersync.http import path_segment
from ordersync.ledger.records import StoredOrder
from ordersync.model import Action

from . import customdata
from .client import FotowareApi

CHANGE_PARAMS = (
    Param("comment", metavar="TEXT", help="administrator's comment"),
    Param("expires", metavar="ISO",
          help="expiry time (ISO 8601, e.g. 2027-01-31T12:00:00Z) or 'never'"),
    Param("data", ParamType.ASSIGNMENTS, repeatable=True, metavar="FIELD=VALUE",
          help="custom order data by field label or id; repeat for several fields or for"
          " several values of a multi-value field"),
    Param("item_data", ParamType.ITEM_ASSIGNMENTS, repeatable=True, metavar="N:FIELD=VALUE",
          help="custom data of item N (counted from 0); repeatable"),
)

ACTIONS = (
    ActionSpec("approve", "approve Fotoware orders (APPROVE), optionally with changes",
               CHANGE_PARAMS, many=True),
    ActionSpec("reject", "reject Fotoware orders (REJECT), optionally with changes",
               CHANGE_PARAMS, many=True),
    ActionSpec("update", "change Fotoware orders' comment, expiry or custom data (PATCH)",
               CHANGE_PARAMS, many=True),
    ActionSpec("submit", "submit created Fotoware orders for approval (SUBMIT)", many=True),
)
KINDS = {spec.kind: spec.description for spec in ACTIONS}

VERBS = {"approve": "APPROVE", "reject": "REJECT", "update": "PATCH", "submit": "SUBMIT"}
TARGET_STATE = {"approve": "approved", "reject": "rejected"}

ALLOWED_FROM = {
    "approve": ("pending", "created", "rejected", "approved"),
    "reject": ("pending", "created", "rejected", "approved"),
    "update": ("pending", "created"),
    "submit": ("created",),
}
"""The states FotoWeb accepts each verb in (vendor docs); anything else answers 400."""

CHANGES = ("comment", "expires", "orderData", "itemData")


def check_state(kind: str, vendor_state: str | None, target: str) -> None:
    allowed = ALLOWED_FROM[kind]
    if vendor_state not in allowed:
        raise ActionRefused(f"{target} is {vendor_state}; {kind} needs an order that is "
                            + " or ".join(allowed))


def parse_expiry(text: str | None) -> str | None:
    """An ISO 8601 time as FotoWeb writes it (UTC, seconds, Z); "never" clears the expiry."""
    if text is None or text.strip().lower() in ("never", "none", ""):
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParameterError("expires", f"{text!r} is not an ISO 8601 time"
                             " (e.g. 2027-01-31T12:00:00Z) or 'never'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def has_changes(payload: dict) -> bool:
    return any(key in payload for key in CHANGES)


def update_body(current: dict, payload: dict) -> dict:
    """The update body for ``payload`` that keeps everything else of ``current`` as it is."""
    item_changes = payload.get("itemData", {})
    items = []
    for position, item in enumerate(current.get("orderItems") or []):
        rendition = item.get("rendition") or {}
        data = customdata.as_dict(item.get("itemData"))
        data.update(item_changes.get(str(position), {}))
        items.append({
            "rendition": rendition.get("href"),
            "itemData": customdata.as_list(data),
            "adminComment": item.get("adminComment") or "",
            "expires": item.get("expires"),
        })
    order_data = customdata.as_dict(current.get("orderData"))
    order_data.update(payload.get("orderData", {}))
    return {
        "orderItems": items,
        "orderData": customdata.as_list(order_data),
        "adminComment": payload["comment"] if "comment" in payload
        else current.get("adminComment") or "",
        "expires": payload["expires"] if "expires" in payload else current.get("expires"),
    }


def effect_present(kind: str, current: dict, payload: dict) -> bool:
    """Whether ``current`` (a fresh read) already shows the action's effect."""
    state = current.get("state")
    if kind == "submit":
        return state not in ("created", "cart")
    if kind in TARGET_STATE and state != TARGET_STATE[kind]:
        return False
    if "comment" in payload and (current.get("adminComment") or "") != payload["comment"]:
        return False
    if "expires" in payload and not _same_time(current.get("expires"), payload["expires"]):
        return False
    order_data = customdata.as_dict(current.get("orderData"))
    if any(order_data.get(k) != v for k, v in payload.get("orderData", {}).items()):
        return False
    items = current.get("orderItems") or []
    for position, changes in payload.get("itemData", {}).items():
        index = int(position)
        if index >= len(items):
            return False
        data = customdata.as_dict(items[index].get("itemData"))
        if any(data.get(k) != v for k, v in changes.items()):
            return False
    return True


def _same_time(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return a == b


class FotowareActions:
    """Prepare, perform and verify Fotoware actions for one site."""

    def __init__(self, api: FotowareApi) -> None:
        self.api = api

    async def prepare(self, kind: str, order: StoredOrder | None, params: dict) -> dict:
        """Check an action against the ledger's copy and the site's field configuration."""
        if kind not in KINDS:
            raise ActionRefused(f"fotoware cannot {kind}; it can {', '.join(KINDS)}")
        if order is None:  # Fotoware creates no orders, so every action needs a stored one
            raise ActionRefused(f"fotoware can {kind} only an order the ledger holds")
        target = order.target
        check_state(kind, order.vendor_state, target)
        payload: dict[str, Any] = {}
        if params.get("comment") is not None:
            payload["comment"] = params["comment"]
        if params.get("expires") is not None:
            payload["expires"] = parse_expiry(params["expires"])
        if kind == "submit" and (payload or params.get("data") or params.get("item_data")):
            raise ActionRefused("submit takes no comment, expiry or custom data")
        if kind == "update" and not (payload or params.get("data") or params.get("item_data")):
            raise ActionRefused("update needs something to change: comment, expires, data"
                                " or item_data")
        if params.get("data") or params.get("item_data"):
            payload.update(await self._custom_data(order, params))
        payload["href"] = order.url
        return payload

    async def _custom_data(self, order: StoredOrder, params: dict) -> dict:
        config = await self.api.order_config()
        payload: dict[str, Any] = {}
        raw = order.raw or {}
        if params.get("data"):
            changes = customdata.check(config["orderFields"], params["data"], "order")
            merged = {**customdata.as_dict(raw.get("orderData")), **changes}
            customdata.check_required(config["orderFields"], merged, "order")
            payload["orderData"] = changes
        if params.get("item_data"):
            items = raw.get("orderItems") or []
            payload["itemData"] = {}
            for position, values in sorted(params["item_data"].items()):
                if not 0 <= position < len(items):
                    raise ParameterError("item_data", f"the order has items 0 to"
                                         f" {len(items) - 1}, not {position}")
                changes = customdata.check(config["itemFields"], values, "item")
                merged = {**customdata.as_dict(items[position].get("itemData")), **changes}
                customdata.check_required(config["itemFields"], merged, "item")
                payload["itemData"][str(position)] = changes
        return payload

    async def perform(self, action: Action) -> Outcome:
        href = _href(action)
        verb = VERBS[action.kind]
        if action.kind in TARGET_STATE and not has_changes(action.payload):
            order = await self.api.change(verb, href)
            return Outcome(True, {"verb": verb}, order or await self.api.order(href))
        if action.kind == "submit":
            await self.api.change(verb, href)
            return Outcome(True, {"verb": verb}, await self.api.order(href))
        current = await self.api.order(href)
        check_state(action.kind, current.get("state"), action.target)
        order = await self.api.change(verb, href, update_body(current, action.payload))
        if order is None:
            order = await self.api.order(href)
        return Outcome(True, {"verb": verb, "with_body": True}, order)

    async def verify(self, action: Action) -> Outcome:
        current = await self.api.order(_href(action))
        done = effect_present(action.kind, current, action.payload)
        return Outcome(done, {"verified": True}, current,
                       reason="the order already shows it" if done else "not on the order")


def _href(action: Action) -> str:
    href = action.payload.get("href")
    return href if isinstance(href, str) else f"/fotoweb/orders/{path_segment(action.vendor_id)}"
