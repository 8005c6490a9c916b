"""The fast Fotoware mapping gives exactly what the plain field-by-field version gives.

``reference_map_order`` below is the mapping as first written (one helper per field, the
custom data read with a dict comprehension); mapping.py is the same rules written for speed.
Every simulator order, the documented example and fuzzed odd shapes must map to equal
Orders (same field values and types) or fail alike.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.model import Item, Order, order_row
from ordersync_adapters.fotoware.mapping import map_order, map_row, map_state, order_id
from ordersync_adapters.fotoware.simulator import FotowareSimulator

from .test_mapping import DOCUMENTED

# --------------------------------------------------------------------------- the reference

def reference_map_order(raw: dict) -> Order:
    """The Fotoware mapping as first written: one plain step per field."""
    href = raw.get("href")
    if not isinstance(href, str) or not href:
        raise ValueError("order without an href")
    vendor_state = raw.get("state")
    raw_items = raw.get("orderItems")
    items = tuple(_ref_item(position, item) for position, item in
                  enumerate(raw_items if isinstance(raw_items, list) else ()))
    owner = raw.get("owner") if isinstance(raw.get("owner"), dict) else {}
    data: dict[str, Any] = {}
    if raw.get("orderData"):
        data["orderData"] = _ref_custom_data(raw["orderData"])
    if raw.get("userComment"):
        data["userComment"] = raw["userComment"]
    if raw.get("checkoutPageLocation"):
        data["checkoutPageLocation"] = raw["checkoutPageLocation"]
    return Order(
        vendor_id=order_id(href),
        state=map_state(vendor_state),
        vendor_state=(vendor_state if isinstance(vendor_state, str)
                      else orjson.dumps(vendor_state).decode()),
        reference=_ref_text(raw.get("orderReference")),
        created=_ref_text(raw.get("created")),
        modified=_ref_text(raw.get("modified")),
        raw=orjson.dumps(raw),
        items=items,
        url=href,
        customer=_ref_text(owner.get("email") or owner.get("userName") or owner.get("fullName")),
        expires=_ref_text(raw.get("expires")),
        comment=_ref_text(raw.get("adminComment")) or None,
        data=data,
    )


def _ref_item(position: int, item: Any) -> Item:
    if not isinstance(item, dict):
        return Item(key=f"#{position}", title="(unreadable item)", data={"raw": item})
    rendition = item.get("rendition")
    if not isinstance(rendition, dict):
        rendition = {}
    asset = _ref_text(item.get("asset"))
    data: dict[str, Any] = {}
    if asset:
        data["asset"] = asset
    if rendition.get("download"):
        data["download"] = rendition["download"]
    if item.get("itemData"):
        data["itemData"] = _ref_custom_data(item["itemData"])
    if item.get("adminComment"):
        data["adminComment"] = item["adminComment"]
    return Item(
        key=_ref_text(rendition.get("href")) or asset or f"#{position}",
        title=str(rendition.get("name") or asset or f"item {position + 1}"),
        quantity=1,
        status="expired" if item.get("expired") else None,
        expires=_ref_text(item.get("expires")),
        data=data,
    )


def _ref_custom_data(entries: Any) -> dict[str, Any]:
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


def _ref_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- the comparison

def outcome(mapping, raw: dict):
    """The mapping's Order (as comparable values) or the type of error it raised."""
    raw = orjson.loads(orjson.dumps(raw))   # a copy: a mapping may not change its input
    try:
        order = mapping(raw)
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return type(exc)
    return (order, type(order.state), [(item, type(item.title)) for item in order.items])


def row_outcome(mapping, raw: dict):
    """The row the mapping gives, or the type of error it raised."""
    try:
        return mapping(orjson.loads(orjson.dumps(raw)))
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return type(exc)


def assert_same(raw: dict) -> None:
    assert outcome(map_order, raw) == outcome(reference_map_order, raw), raw
    assert row_outcome(map_row, raw) == row_outcome(
        lambda r: order_row(reference_map_order(r)), raw), raw


def test_every_simulated_order_maps_as_the_reference_does():
    sim = FotowareSimulator(orders=600, seed=7)
    for order in sim.order_ids() + sim.cart_ids():
        assert_same(sim.get_order(order))


@pytest.mark.parametrize("raw", [
    DOCUMENTED,
    {"href": "/fotoweb/orders/1/", "state": None, "owner": {"userName": "u"}, "orderItems": None},
    {"href": "/", "state": "pending"},
    {"href": "/fotoweb/orders/2", "state": ["x"], "orderData": [{"id": 1, "value": 2}]},
    {"href": "/fotoweb/orders/3", "orderData": [{"id": "?", "value": 1}, "odd"]},
    {"href": "/fotoweb/orders/4", "orderData": {"id": "a"}, "orderItems": [5, {"itemData": "x"}]},
    {"href": "/fotoweb/orders/5", "adminComment": "", "orderItems": [
        {"rendition": {"href": "", "name": 0}, "asset": "", "expired": 1, "expires": 7}]},
])
def test_odd_shapes_map_as_the_reference_does(raw):
    assert_same(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5)
    | st.sampled_from(["id", "value", "?", "approved"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["id", "value", "?", "name", "href", "download"])
                      | st.text(max_size=3), children, max_size=3),
    max_leaves=12,
)
custom_data = st.lists(st.fixed_dictionaries({"id": json_values, "value": json_values})
                       | json_values, max_size=4)


@settings(max_examples=400, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["created", "modified", "state", "expires", "orderReference",
                         "adminComment", "userComment", "owner", "checkoutPageLocation"]),
        json_values,
    ),
    order_data=custom_data | json_values,
    items=st.lists(st.dictionaries(
        st.sampled_from(["asset", "rendition", "itemData", "expires", "expired",
                         "adminComment"]), json_values | custom_data), max_size=3) | json_values,
    href=st.sampled_from(["/fotoweb/orders/1", "/", "", None, 5]),
)
def test_fuzzed_orders_map_as_the_reference_does(fields, order_data, items, href):
    raw = {**fields, "orderData": order_data, "orderItems": items}
    if href is not None:
        raw["href"] = href
    assert_same(raw)
