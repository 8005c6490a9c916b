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


def identify(raw: dict) -> tuple[str, str] | None:
    """(id, href) of an order, even one map_order cannot read; None without an href."""
    href = raw.get("href")
    if not isinstance(href, str) or not href.rstrip("/").rsplit("/", 1)[-1]:
        return None
    return order_id(href), href


def map_state(vendor_state: Any) -> State:
    if not isinstance(vendor_state, str):
        return State.UNKNOWN
    return STATES.get(vendor_state, State.UNKNOWN)


def map_order(raw: dict) -> Order:
    """One Order representation as the ledger keeps it.

    Tolerant of what the docs leave open (null lists, missing comments, owner without
    email); only an order without an href cannot be kept, and raises ValueError.

    This runs for every order of every full scan, so it is written for speed: local
    lookups, no helper call per field, and a fast path for the usual shapes of custom data
    that falls back to the general code for anything else. Its output is that of the plain
    field-by-field version kept in tests/adapters/fotoware/test_mapping_reference.py.
    """
    get = raw.get
    href = get("href")
    if not isinstance(href, str) or not href:
        raise ValueError("order without an href")
    vendor_state = get("state")
    raw_items = get("orderItems")
    items = (tuple([_item(position, item) for position, item in enumerate(raw_items)])
             if isinstance(raw_items, list) else ())
    owner = get("owner")
    if not isinstance(owner, dict):
        owner = _EMPTY
    data: dict[str, Any] = {}
    value = get("orderData")
    if value:
        data["orderData"] = _custom_data(value)
    value = get("userComment")
    if value:
        data["userComment"] = value
    value = get("checkoutPageLocation")
    if value:
        data["checkoutPageLocation"] = value
    vendor_id = order_id(href)
    if isinstance(vendor_state, str):
        state = STATES.get(vendor_state, State.UNKNOWN)
    else:
        state = State.UNKNOWN
        vendor_state = orjson.dumps(vendor_state).decode()
    reference, created, modified = get("orderReference"), get("created"), get("modified")
    customer = owner.get("email") or owner.get("userName") or owner.get("fullName")
    expires, comment = get("expires"), get("adminComment")
    return Order(
        vendor_id,
        state,
        vendor_state,
        reference if isinstance(reference, str) else None,
        created if isinstance(created, str) else None,
        modified if isinstance(modified, str) else None,
        orjson.dumps(raw),
        items,
        href,
        customer if isinstance(customer, str) else None,
        expires if isinstance(expires, str) else None,
        comment if isinstance(comment, str) and comment else None,
        data,
    )


_EMPTY: dict[str, Any] = {}


def _item(position: int, item: Any) -> Item:
    if not isinstance(item, dict):
        return Item(key=f"#{position}", title="(unreadable item)", data={"raw": item})
    get = item.get
    rendition = get("rendition")
    if not isinstance(rendition, dict):
        rendition = _EMPTY
    asset = get("asset")
    if not isinstance(asset, str):
        asset = None
    data: dict[str, Any] = {}
    if asset:
        data["asset"] = asset
    value = rendition.get("download")
    if value:
        data["download"] = value
    value = get("itemData")
    if value:
        data["itemData"] = _custom_data(value)
    value = get("adminComment")
    if value:
        data["adminComment"] = value
    key, expires = rendition.get("href"), get("expires")
    return Item(
        key if isinstance(key, str) and key else asset or f"#{position}",
        str(rendition.get("name") or asset or f"item {position + 1}"),
        1,
        "expired" if get("expired") else None,
        expires if isinstance(expires, str) else None,
        data,
    )


def _custom_data(entries: Any) -> dict[str, Any]:
    """Custom order data as {field id: value}; entries without an id are kept under '?'."""
    if type(entries) is list:
        out = {}
        for entry in entries:
            if type(entry) is not dict:
                break
            key = entry.get("id")
            if type(key) is not str:
                break
            out[key] = entry.get("value")
        else:
            return out
    return _custom_data_general(entries)


def _custom_data_general(entries: Any) -> dict[str, Any]:
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


WAITING_STATES = {"pending": "approval"}
"""Where a Fotoware order waits for an administrator (the report's stuck orders); expiry
comes from the order's and its items' ``expires``."""
