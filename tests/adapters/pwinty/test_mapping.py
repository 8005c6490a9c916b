"""The pure Pwinty mapping: documented statuses, the notes' order shape, odd input."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.model import State
from ordersync_adapters.pwinty.mapping import STATES, map_order
from tests.strategies import json_values

# The order shape from vendor-notes.md section 2, with a photo from vendor-docs.
DOCUMENTED = {
    "id": 1065, "recipientName": "Jane Doe", "address1": "1 High St", "address2": None,
    "addressTownOrCity": "London", "stateOrCounty": None, "postalOrZipCode": "N1 1AA",
    "countryCode": "GB", "destinationCountryCode": "GB", "price": 1292,
    "shippingInfo": {"price": 12, "shipments": [{
        "shipmentId": "s1", "trackingNumber": "TRK1", "trackingUrl": "https://t/1",
        "isTracked": True, "earliestEstimatedArrivalDate": "2026-01-02",
        "latestEstimatedArrivalDate": "2026-01-05"}]},
    "status": "Complete", "payment": "InvoiceRecipient", "paymentUrl": None,
    "qualityLevel": "Pro", "errorMessage": None,
    "photos": [{
        "id": 3456, "type": "4x6", "url": "http://www.flickr.com/mytestphoto.jpg",
        "status": "NotYetDownloaded", "copies": "4", "sizing": "Crop", "priceToUser": 214,
        "price": 199, "md5Hash": "79054025255fb1a26e4bc422aef54eb4",
        "previewUrl": "http://s3.amazonaws.com/anexampleurl",
        "thumbnailUrl": "http://s3.amazonaws.com/anexamplethumbnailurl",
        "attributes": {"frame_colour": "silver"}}],
}


@pytest.mark.parametrize(("status", "state"), [
    ("NotYetSubmitted", State.DRAFT),
    ("AwaitingPayment", State.SUBMITTED),
    ("PaidAwaitingImageUpload", State.APPROVED),
    ("Submitted", State.IN_PRODUCTION),
    ("Complete", State.COMPLETED),
    ("Cancelled", State.CANCELLED),
    ("OnHold", State.UNKNOWN),
])
def test_every_documented_status_maps(status, state):
    order = map_order({**DOCUMENTED, "status": status})
    assert (order.state, order.vendor_state) == (state, status)


def test_states_table_covers_every_documented_status():
    assert set(STATES) == {"NotYetSubmitted", "AwaitingPayment", "PaidAwaitingImageUpload",
                           "Submitted", "Complete", "Cancelled"}


def test_documented_order_maps_prices_photos_and_tracking():
    order = map_order(DOCUMENTED)
    assert order.vendor_id == "1065" and order.url == "Orders/1065"
    assert order.customer == "Jane Doe"
    assert (order.created, order.modified, order.reference) == (None, None, None)
    assert order.data["price_minor"] == 1292 and order.data["shipping_minor"] == 12
    assert order.data["shipments"][0]["trackingNumber"] == "TRK1"
    assert order.data["address"]["postalOrZipCode"] == "N1 1AA"
    [photo] = order.items
    assert (photo.key, photo.title, photo.quantity, photo.status) == (
        "3456", "4x6", 4, "NotYetDownloaded")
    assert photo.data["price_minor"] == 199 and photo.data["priceToUser_minor"] == 214
    assert photo.data["md5Hash"] == "79054025255fb1a26e4bc422aef54eb4"
    assert orjson.loads(order.raw) == DOCUMENTED


def test_copies_as_integer_and_submission_status_are_read():
    raw = {**DOCUMENTED, "status": "NotYetSubmitted",
           "photos": [{**DOCUMENTED["photos"][0], "copies": 2, "status": "FileNotFoundAtUrl"}],
           "submissionStatus": {"id": 1065, "isValid": False,
                                "generalErrors": ["ItemsContainingErrors"],
                                "photos": [{"id": 3456, "errors": ["FileCouldNotBeDownloaded"],
                                            "warnings": []}]}}
    order = map_order(raw)
    assert order.items[0].quantity == 2 and order.items[0].status == "FileNotFoundAtUrl"
    assert order.data["submission"] == {"isValid": False,
                                        "generalErrors": ["ItemsContainingErrors"],
                                        "photoErrors": {"3456": ["FileCouldNotBeDownloaded"]}}


def test_order_without_id_is_refused():
    with pytest.raises(ValueError, match="id"):
        map_order({"status": "Complete"})


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.sampled_from(
    ["status", "price", "shippingInfo", "photos", "recipientName", "email", "payment",
     "submissionStatus", "errorMessage", "countryCode"]), json_values))
def test_mapping_never_crashes_on_odd_shapes(fields):
    order = map_order({"id": 7, **fields})
    assert order.vendor_id == "7" and isinstance(order.vendor_state, str)


@pytest.mark.parametrize("readiness", [{"photos": True}, {"photos": [1, None]}, {"isValid": 3}])
def test_odd_submission_status_shapes_are_tolerated(readiness):
    order = map_order({**DOCUMENTED, "submissionStatus": readiness})
    assert order.data["submission"]["photoErrors"] == {}
