"""Fotoware Order representation -> the common model. Pure: no session, no clock."""

from __future__ import annotations

from typing import Any

import orjson

from ordersync.model import Order, OrderRow, State, data_json, order_from_row

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


def map_row(raw: dict) -> OrderRow:
    """One Order representation as the ledger writes it (an :data:`OrderRow`).

    Tolerant of what the docs leave open (null lists, missing comments, owner without
    email); only an order without an href cannot be kept, and raises ValueError.

    This runs for every order of every full scan, so it is written for speed: straight to
    the row (no ``Order`` or ``Item`` objects), local lookups, no helper call per field, and
    a fast path for the usual shapes of custom data that falls back to the general code for
    anything else. Its result is that of the plain field-by-field version kept in
    tests/adapters/fotoware/test_mapping_reference.py.
    """
    get = raw.get
    href = get("href")
    if not isinstance(href, str) or not href:
        raise ValueError("order without an href")
    dumps = orjson.dumps
    vendor_state = get("state")
    raw_items = get("orderItems")
    items: list[tuple] = []
    if type(raw_items) is list:
        for position, item in enumerate(raw_items):
            if type(item) is not dict:
                items.append((f"#{position}", "(unreadable item)", 1, None, None,
                              data_json({"raw": item})))
                continue
            item_get = item.get
            rendition = item_get("rendition")
            if type(rendition) is not dict:
                rendition = _EMPTY
            asset = item_get("asset")
            if type(asset) is not str:
                asset = None
            data: dict[str, Any] = {}
            if asset:
                data["asset"] = asset
            value = rendition.get("download")
            if value:
                data["download"] = value
            value = item_get("itemData")
            if value:
                data["itemData"] = _custom_data(value)
            value = item_get("adminComment")
            if value:
                data["adminComment"] = value
            key, expires = rendition.get("href"), item_get("expires")
            items.append((
                key if type(key) is str and key else asset or f"#{position}",
                str(rendition.get("name") or asset or f"item {position + 1}"),
                1,
                "expired" if item_get("expired") else None,
                expires if type(expires) is str else None,
                data_json(data),
            ))
    owner = get("owner")
    if type(owner) is not dict:
        owner = _EMPTY
    data = {}
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
    if type(vendor_state) is str:
        state = _STATE_VALUES.get(vendor_state, _UNKNOWN)
    else:
        state = _UNKNOWN
        vendor_state = dumps(vendor_state).decode()
    reference, created, modified = get("orderReference"), get("created"), get("modified")
    customer = owner.get("email") or owner.get("userName") or owner.get("fullName")
    expires, comment = get("expires"), get("adminComment")
    return (vendor_id, None, state, vendor_state, dumps(raw), (
        reference if type(reference) is str else None,
        created if type(created) is str else None,
        modified if type(modified) is str else None,
        expires if type(expires) is str else None,
        customer if type(customer) is str else None,
        comment if type(comment) is str and comment else None,
        href,
        data_json(data),
    ), items)


def map_order(raw: dict) -> Order:
    """One Order representation as the common model: :func:`map_row`'s, as an ``Order``."""
    return order_from_row(map_row(raw))


_EMPTY: dict[str, Any] = {}
_STATE_VALUES = {name: state._value_ for name, state in STATES.items()}
_UNKNOWN = State.UNKNOWN._value_


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
