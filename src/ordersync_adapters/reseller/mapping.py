"""Reseller API V3 order (with what the pull attaches) -> the common model. Pure.

The pull attaches to each order its ``items`` (each with its ``characteristics``), its
``customFields`` and, for confirmed orders, its ``executionStatus``; a draft the vendor
deleted at its expiry carries ``ordersyncExpired`` (when ordersync saw it gone) instead.
"""

from __future__ import annotations

from typing import Any

import orjson

from ordersync.contract import identify_by
from ordersync.ledger.records import StoredOrder
from ordersync.model import Item, Order, State

STATES: dict[str, State] = {
    "Draft": State.DRAFT,
    "Reseller Pending Approval": State.SUBMITTED,
    "Submitted": State.IN_PRODUCTION,
    "Executed": State.COMPLETED,
    "Canceled": State.CANCELLED,
    "Cancelled by Reseller": State.REJECTED,
}
"""Every status the vendor documents; an organisation's own statuses are stored verbatim
as ``unknown``."""

EXECUTION_STATES: dict[str, State] = {
    "InProgress": State.IN_PRODUCTION,
    "Completed": State.COMPLETED,
    "Failed": State.FAILED,
}
"""A Submitted order's execution status decides its place in the lifecycle."""

DRAFT = "Draft"
EXPIRED_DRAFT = "Draft (expired)"
"""The vendor state of a draft the vendor deleted at its expiry (ordersync's own words:
the vendor has no status for an order it no longer has)."""

UNCONFIRMED = frozenset({"Draft", "Reseller Pending Approval", "Cancelled by Reseller"})
"""Statuses the vendor does not call confirmed (no execution status to read)."""

FINAL_STATUSES = frozenset({"Executed", "Canceled", "Cancelled by Reseller"})
FINAL_EXECUTIONS = frozenset({"Completed", "Failed"})

ORDER_DATA = ("accountId", "accountName", "currency", "paymentMethod", "totalAmount",
              "orderDate")
ITEM_DATA = ("productId", "billingPlanId", "subscriptionId", "unitPrice", "total")


identify = identify_by("id", "/api/orders/{id}")
"""(id, url) of an order, even one map_order cannot read; None without an id."""


def map_order(raw: dict) -> Order:
    """One reseller order as the ledger keeps it."""
    if identify(raw) is None:
        raise ValueError("order without an id")
    order_id = raw["id"]
    status = raw.get("status")
    vendor_state = status if isinstance(status, str) else orjson.dumps(status).decode()
    execution = raw.get("executionStatus")
    if not isinstance(execution, dict):
        execution = {}
    if raw.get("ordersyncExpired"):
        state, vendor_state = State.EXPIRED, EXPIRED_DRAFT
    elif status == "Submitted" and str(execution.get("status")) in EXECUTION_STATES:
        state = EXECUTION_STATES[str(execution["status"])]
    else:
        state = STATES.get(vendor_state, State.UNKNOWN)
    data: dict[str, Any] = {k: raw.get(k) for k in ORDER_DATA if raw.get(k) is not None}
    fields = raw.get("customFields")
    if isinstance(fields, list):
        data["customFields"] = {str(f.get("name")): f.get("value") for f in fields
                                if isinstance(f, dict)}
    if execution:
        data["execution"] = {k: execution.get(k) for k in ("status", "message")
                             if execution.get(k) is not None}
    if raw.get("ordersyncExpired"):
        data["gone_since"] = raw["ordersyncExpired"]
    items = raw.get("items")
    expires = raw.get("expirationDate") if status == DRAFT else None
    return Order(
        vendor_id=str(order_id),
        state=state,
        vendor_state=vendor_state,
        reference=_text(raw.get("code")),
        created=_text(raw.get("createdAt")) or _text(raw.get("orderDate")),
        modified=_text(raw.get("updatedAt")),
        raw=orjson.dumps(raw),
        items=tuple(_item(position, item) for position, item in
                    enumerate(items if isinstance(items, list) else ())),
        url=f"/api/orders/{order_id}",
        customer=_text(raw.get("accountName")) or _text(str(raw.get("accountId") or "")),
        expires=_text(expires),
        data=data,
    )


def _item(position: int, item: Any) -> Item:
    if not isinstance(item, dict):
        return Item(key=f"#{position}", title="(unreadable item)", data={"raw": item})
    data = {k: item.get(k) for k in ITEM_DATA if item.get(k) is not None}
    characteristics = item.get("characteristics")
    if isinstance(characteristics, list):
        data["characteristics"] = {str(c.get("code") or c.get("name")): c.get("value")
                                   for c in characteristics if isinstance(c, dict)}
    quantity = item.get("quantity")
    return Item(
        key=str(item.get("id", f"#{position}")),
        title=_text(item.get("productName")) or str(item.get("productId") or "item"),
        quantity=quantity if isinstance(quantity, int) and not isinstance(quantity, bool)
        and quantity > 0 else 1,
        status=_text(item.get("deliveryStatus")),
        data=data,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


WAITING_STATES = {"Reseller Pending Approval": "the reseller's approval"}
"""Where a reseller order waits for someone (the report's stuck orders)."""


def problems(order: StoredOrder) -> list[str]:
    """A submitted order whose execution failed, with the vendor's message. Pure."""
    execution = order.data.get("execution")
    if isinstance(execution, dict) and execution.get("status") == "Failed":
        return [f"execution failed: {execution.get('message') or 'no message'}"]
    return []
