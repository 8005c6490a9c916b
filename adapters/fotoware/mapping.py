"""Fotoware Order representation -> the common model. Pure: no session, no clock."""

from __future__ import annotations

from typing import Any

import orjson

from ordersync.model import Item, Order, State

STATES: dict[str, State] = {
    "cart": State.DRAFT,
    "created": State.DRAFT,
    "pending": State.SUBMITTED,
    "approved": State.APPROVED,
    "rejected": State.REJECTED,
    "expired": State.EXPIRED,
}
"""Every documented Fotoware order state and its place in the common lifecycle."""


def order_id(href: str) -> str:
    """The order's id for ``INSTANCE:ID``: the last segment of its href.

    ``/fotoweb/orders/12345`` -> ``12345``. The href stays the identity towards Fotoware.
    """
    segment = href.rstrip("/").rsplit("/", 1)[-1]
    if not segment:
        raise ValueError(f"order href {href!r} has no id")
    return segment


def map_state(vendor_state: Any) -> State:
    return STATES.get(vendor_state, State.UNKNOWN) if isinstance(vendor_state, str) else State.UNKNOWN


def map_order(raw: dict) -> Order:
    """One Order representation as the ledger keeps it.

    Tolerant of what the docs leave open (null lists, missing comments, owner without
    email); only an order without an href cannot be kept, and raises ValueError.
    """
    href = raw.get("href")
    if not isinstance(href, str) or not href:
        raise ValueError("order without an href")
    vendor_state = raw.get("state")
    raw_items = raw.get("orderItems")
    items = tuple(_item(position, item) for position, item in
                  enumerate(raw_items if isinstance(raw_items, list) else ()))
    owner = raw.get("owner") if isinstance(raw.get("owner"), dict) else {}
    data: dict[str, Any] = {}
    if raw.get("orderData"):
        data["orderData"] = _custom_data(raw["orderData"])
    if raw.get("userComment"):
        data["userComment"] = raw["userComment"]
    if raw.get("checkoutPageLocation"):
        data["checkoutPageLocation"] = raw["checkoutPageLocation"]
    return Order(
        vendor_id=order_id(href),
        state=map_state(vendor_state),
        vendor_state=vendor_state if isinstance(vendor_state, str) else orjson.dumps(vendor_state).decode(),
        reference=_text(raw.get("orderReference")),
        created=_text(raw.get("created")),
        modified=_text(raw.get("modified")),
        raw=orjson.dumps(raw),
        items=items,
        url=href,
        customer=_text(owner.get("email") or owner.get("userName") or owner.get("fullName")),
        expires=_text(raw.get("expires")),
        comment=_text(raw.get("adminComment")) or None,
        data=data,
    )


def _item(position: int, item: Any) -> Item:
    if not isinstance(item, dict):
        return Item(key=f"#{position}", title="(unreadable item)", data={"raw": item})
    rendition = item.get("rendition")
    if not isinstance(rendition, dict):
        rendition = {}
    asset = _text(item.get("asset"))
    data: dict[str, Any] = {}
    if asset:
        data["asset"] = asset
    if rendition.get("download"):
        data["download"] = rendition["download"]
    if item.get("itemData"):
        data["itemData"] = _custom_data(item["itemData"])
    if item.get("adminComment"):
        data["adminComment"] = item["adminComment"]
    return Item(
        key=_text(rendition.get("href")) or asset or f"#{position}",
        title=str(rendition.get("name") or asset or f"item {position + 1}"),
        quantity=1,
        status="expired" if item.get("expired") else None,
        expires=_text(item.get("expires")),
        data=data,
    )


def _custom_data(entries: Any) -> dict[str, Any]:
    """Custom order data as {field id: value}; entries without an id are kept under '?'."""
    try:
        out = {entry["id"]: entry.get("value") for entry in entries}
    except (TypeError, KeyError, AttributeError):
        pass
    else:
        if all(type(key) is str for key in out):
            return out
    if not isinstance(entries, list):
        return {"?": entries}
    out = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            out[entry["id"]] = entry.get("value")
        else:
            out.setdefault("?", []).append(entry)
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
