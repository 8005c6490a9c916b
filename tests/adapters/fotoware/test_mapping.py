"""The pure Fotoware mapping: documented states, captured shapes, and fuzzed input."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.model import State
from ordersync_adapters.fotoware.mapping import STATES, map_order, order_id
from tests.strategies import json_values

# The documented example (vendor-docs/fotoware-order-representation.txt) with values filled in.
DOCUMENTED = {
    "href": "/fotoweb/orders/12345",
    "created": "2016-01-01T00:00:00Z",
    "modified": "2016-01-02T00:00:00Z",
    "state": "approved",
    "expires": "2016-02-01T00:00:00Z",
    "orderItems": [
        {
            "adminComment": "cropped",
            "asset": "/fotoweb/archives/5000-Example/sub/folder/image.jpg.info",
            "expires": None,
            "expired": False,
            "itemData": [{"id": "F1", "value": "foo"}, {"id": "F2", "value": True}],
            "rendition": {"name": "Original", "href": "/fotoweb/archives/5000-Example/"
                          "sub/folder/image.jpg.info#original", "download": "/dl/1"},
        }
    ],
    "orderData": [{"id": "ID1", "value": "foo"}, {"id": "ID3", "value": True}],
    "orderReference": "ORD-12345",
    "checkoutPageLocation": None,
    "adminComment": "ok",
    "userComment": "please hurry",
    "owner": {"userName": "jdoe", "fullName": "J Doe", "email": "jdoe@example.com"},
}


@pytest.mark.parametrize(
    ("vendor_state", "state"),
    [
        ("cart", State.DRAFT),
        ("created", State.DRAFT),
        ("pending", State.SUBMITTED),
        ("approved", State.APPROVED),
        ("rejected", State.REJECTED),
        ("expired", State.EXPIRED),
        ("on-hold", State.UNKNOWN),
        ("", State.UNKNOWN),
    ],
)
def test_every_documented_state_maps(vendor_state, state):
    order = map_order({**DOCUMENTED, "state": vendor_state})
    assert order.state is state
    assert order.vendor_state == vendor_state


def test_states_table_covers_the_documented_states():
    assert set(STATES) == {"cart", "created", "pending", "approved", "rejected", "expired"}


def test_documented_order_maps_every_field():
    order = map_order(DOCUMENTED)
    assert order.vendor_id == "12345"
    assert order.url == "/fotoweb/orders/12345"
    assert (order.reference, order.created, order.modified, order.expires) == (
        "ORD-12345", "2016-01-01T00:00:00Z", "2016-01-02T00:00:00Z", "2016-02-01T00:00:00Z")
    assert order.customer == "jdoe@example.com"
    assert order.comment == "ok"
    assert order.data == {"orderData": {"ID1": "foo", "ID3": True}, "userComment": "please hurry"}
    [item] = order.items
    assert item.key.endswith("#original") and item.title == "Original"
    assert item.data == {
        "asset": "/fotoweb/archives/5000-Example/sub/folder/image.jpg.info",
        "download": "/dl/1", "itemData": {"F1": "foo", "F2": True}, "adminComment": "cropped",
    }
    assert orjson.loads(order.raw) == DOCUMENTED


def test_expired_item_and_missing_optional_parts():
    order = map_order({"href": "/fotoweb/orders/7", "state": "approved", "orderItems": [
        {"expired": True, "rendition": None, "asset": "/a.jpg.info"}], "owner": None,
        "orderData": None})
    [item] = order.items
    assert (item.status, item.key, item.title) == ("expired", "/a.jpg.info", "/a.jpg.info")
    assert order.customer is None and order.reference is None


def test_order_without_href_is_refused():
    with pytest.raises(ValueError, match="href"):
        map_order({"state": "pending"})


@pytest.mark.parametrize(("href", "expected"), [
    ("/fotoweb/orders/12345", "12345"), ("/fotoweb/orders/12345/", "12345"),
    ("https://dam.example.com/fotoweb/orders/9", "9"),
])
def test_order_id_is_the_last_segment(href, expected):
    assert order_id(href) == expected


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["created", "modified", "state", "expires", "orderItems", "orderData",
                         "orderReference", "adminComment", "userComment", "owner"]),
        json_values,
    ),
    items=st.lists(st.dictionaries(
        st.sampled_from(["asset", "rendition", "itemData", "expires", "expired",
                         "adminComment"]), json_values), max_size=3),
)
def test_mapping_never_crashes_on_odd_shapes(fields, items):
    raw = {"href": "/fotoweb/orders/1", **fields}
    if "orderItems" not in fields:
        raw["orderItems"] = items
    try:
        order = map_order(raw)
    except ValueError:
        return
    assert order.vendor_id == "1"
    assert isinstance(order.vendor_state, str)
    assert order.state in set(State)
