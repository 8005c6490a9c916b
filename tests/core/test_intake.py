"""intake.admit: every raw order becomes an Order to store, mapped or flagged, never an error.

Table-driven over both real adapters' mappings, and fuzzed: whatever JSON a vendor sends
(including numbers beyond 64 bits, U+FFFD and lone surrogates), admit returns an Order whose
raw form is JSON the ledger can read back.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.intake import UNREADABLE_STATE, Limits, admit, admit_row
from ordersync.model import State, order_row
from ordersync_adapters.fotoware import ADAPTER as FOTOWARE
from ordersync_adapters.pwinty import ADAPTER as PWINTY
from tests.strategies import json_values

SMALL = Limits(max_order_bytes=400, max_items=3, max_string_chars=50)
PWINTY_ORDER = {"id": 1042, "status": "Complete", "price": 1299,
                "photos": [{"id": 1, "type": "4x6", "copies": 2}]}
FOTOWARE_ORDER = {"href": "/fotoweb/orders/77", "state": "pending", "orderItems": []}


def pwinty(**changes) -> dict:
    return {**PWINTY_ORDER, **changes}


@pytest.mark.parametrize("raw, vendor_id, problem", [
    (pwinty(), "1042", None),
    (pwinty(price=2**64 - 1), "1042", "unreadable: number 18446744073709551615 does not fit"),
    (pwinty(price=1e30), "1042", "unreadable: number 1e+30 does not fit in 64 bits"),
    (pwinty(photos=[{"id": 1, "copies": "99999999999999999999"}]), "1042", "unreadable:"),
    (pwinty(photos=[{"id": n} for n in range(4)]), "1042",
     "4 entries in 'photos' (limit max_items = 3)"),
    (pwinty(recipientName="x" * 60), "1042",
     "a string of 60 characters (limit max_string_chars = 50)"),
    (pwinty(address1="y" * 500), "1042", "bytes of JSON (limit max_order_bytes = 400)"),
    (pwinty(recipientName="Zo\ufffd"), "1042", "bytes that are not UTF-8"),
    (pwinty(id=None), None, "unreadable: order without an id"),
])
def test_pwinty_orders(raw, vendor_id, problem):
    order = admit(raw, PWINTY.map_order, PWINTY.identify, SMALL)
    if problem is None:
        assert order.problem is None and order.vendor_id == vendor_id
        return
    assert problem in order.problem, order.problem
    if vendor_id is None:
        assert order.vendor_id.startswith("unidentified-")
    else:
        assert order.vendor_id == vendor_id
    if "not UTF-8" not in problem:     # mapped as usual otherwise
        assert (order.state, order.vendor_state, order.items) == (
            State.UNKNOWN, UNREADABLE_STATE, ())
    stored = orjson.loads(order.raw)
    if "truncated" in order.problem:
        assert stored["ordersync_truncated"] == {"bytes": len(orjson.dumps(raw)), "kept": 400}
        assert len(stored["head"]) <= 400
    else:
        assert stored == orjson.loads(orjson.dumps(raw))


def test_a_flagged_fotoware_order_keeps_its_href():
    raw = {**FOTOWARE_ORDER, "orderItems": [{}] * 4}
    order = admit(raw, FOTOWARE.map_order, FOTOWARE.identify, SMALL)
    assert (order.vendor_id, order.url) == ("77", "/fotoweb/orders/77")
    assert "orderItems" in order.problem


def test_a_lone_surrogate_is_flagged_and_stored_as_readable_json():
    raw = pwinty(recipientName="a\ud800b")
    order = admit(raw, PWINTY.map_order, PWINTY.identify, Limits())
    assert order.problem.startswith("unreadable:") and order.vendor_id == "1042"
    assert orjson.loads(order.raw)["recipientName"] == "a?b"


big_values = json_values | st.integers(2**63, 2**80) | st.just(1e300) | st.just("\ufffd")


@settings(max_examples=300, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(["id", "href", "status", "state", "photos",
                                            "orderItems", "price", "recipientName"]),
                           big_values, max_size=6),
       spec=st.sampled_from([PWINTY, FOTOWARE]))
def test_any_json_object_becomes_an_order_to_store(raw, spec):
    order = admit(raw, spec.map_order, spec.identify, SMALL)
    orjson.loads(order.raw)                           # the ledger can read it back
    assert order.vendor_id
    assert (order.problem is None) or order.problem


FOTOWARE_SHAPES = [
    FOTOWARE_ORDER,
    {**FOTOWARE_ORDER, "orderItems": [{}] * 4},                     # over max_items
    {**FOTOWARE_ORDER, "userComment": "z" * 60},                    # over max_string_chars
    {**FOTOWARE_ORDER, "orderData": [{"id": "a", "value": "y" * 45}] * 8},  # over the bytes
    {**FOTOWARE_ORDER, "userComment": "Zo\ufffd"},                  # not UTF-8, kept mapped
    {**FOTOWARE_ORDER, "href": "/fotoweb/orders/\ufffd"},           # ... with an unusable id
    {**FOTOWARE_ORDER, "href": None},                               # unreadable, unidentified
    {**FOTOWARE_ORDER, "created": 2**70},                            # beyond 64 bits
]


@pytest.mark.parametrize("raw", FOTOWARE_SHAPES)
def test_a_row_admitted_is_the_row_of_the_order_admitted(raw):
    """admit_row (the fast path of an adapter with map_row) and admit agree, flagged or not."""
    row = admit_row(raw, FOTOWARE.map_row, FOTOWARE.identify, SMALL)
    assert row == order_row(admit(raw, FOTOWARE.map_order, FOTOWARE.identify, SMALL))


@settings(max_examples=300, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(["href", "state", "orderItems", "orderData",
                                            "owner", "userComment", "created"]),
                           big_values, max_size=6))
def test_any_json_object_is_admitted_alike_as_a_row(raw):
    row = admit_row(raw, FOTOWARE.map_row, FOTOWARE.identify, SMALL)
    assert row == order_row(admit(raw, FOTOWARE.map_order, FOTOWARE.identify, SMALL))
