"""The pure reseller mapping: every documented status, executions, expiry, odd input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.model import State
from ordersync_adapters.reseller.mapping import map_order
from tests.strategies import json_values

# The order shape of vendor-notes.md section 3, with what the pull attaches.
DOCUMENTED = {
    "id": 5001, "code": "ORD-5001", "accountId": "ACC-1002", "accountName": "Contoso Ltd",
    "status": "Draft", "orderDate": "2026-09-21T10:00:00+00:00",
    "expirationDate": "2026-09-28T10:00:00+00:00", "currency": "EUR",
    "paymentMethod": "Invoice", "totalAmount": 110.0,
    "createdAt": "2026-09-21T10:00:00+00:00", "updatedAt": "2026-09-21T11:30:00+00:00",
    "items": [{"id": 90001, "orderId": 5001, "productId": "MS-365-BP",
               "productName": "Microsoft 365 Business Premium", "billingPlanId": "MS-365-BP-M",
               "quantity": 5, "subscriptionId": None, "unitPrice": 22.0, "total": 110.0,
               "deliveryStatus": "Pending",
               "characteristics": [{"id": 11, "code": "domain", "name": "Domain",
                                    "value": "contoso.example", "externalId": "ext-11",
                                    "valueExternal": None}]}],
    "customFields": [{"id": 1, "name": "PO Number", "value": "PO-77"}],
}


@pytest.mark.parametrize(("status", "execution", "state"), [
    ("Draft", None, State.DRAFT),
    ("Reseller Pending Approval", None, State.SUBMITTED),
    ("Submitted", None, State.IN_PRODUCTION),
    ("Submitted", "InProgress", State.IN_PRODUCTION),
    ("Submitted", "Completed", State.COMPLETED),
    ("Submitted", "Failed", State.FAILED),
    ("Executed", "Completed", State.COMPLETED),
    ("Canceled", None, State.CANCELLED),
    ("Cancelled by Reseller", None, State.REJECTED),
    ("Awaiting Credit Check", None, State.UNKNOWN),
    ("Awaiting Credit Check", "Failed", State.UNKNOWN),
])
def test_every_status_has_its_place(status, execution, state):
    raw = {**DOCUMENTED, "status": status}
    if execution:
        raw["executionStatus"] = {"orderId": 5001, "status": execution, "message": None}
    order = map_order(raw)
    assert (order.state, order.vendor_state) == (state, status)   # the status verbatim
    assert order.expires == (DOCUMENTED["expirationDate"] if status == "Draft" else None)


def test_the_documented_order_with_its_details():
    order = map_order(DOCUMENTED)
    assert (order.vendor_id, order.reference, order.customer) == ("5001", "ORD-5001",
                                                                  "Contoso Ltd")
    assert (order.created, order.modified) == (DOCUMENTED["createdAt"], DOCUMENTED["updatedAt"])
    assert order.url == "/api/orders/5001"
    assert order.data["customFields"] == {"PO Number": "PO-77"}
    assert order.data["accountId"] == "ACC-1002" and order.data["totalAmount"] == 110.0
    [item] = order.items
    assert (item.key, item.title, item.quantity, item.status) == (
        "90001", "Microsoft 365 Business Premium", 5, "Pending")
    assert item.data["characteristics"] == {"domain": "contoso.example"}
    assert item.data["billingPlanId"] == "MS-365-BP-M"


def test_a_draft_the_vendor_deleted_is_expired_and_keeps_its_details():
    order = map_order({**DOCUMENTED, "ordersyncExpired": "2026-09-28T10:05:00.000Z"})
    assert (order.state, order.vendor_state) == (State.EXPIRED, "Draft (expired)")
    assert order.data["gone_since"] == "2026-09-28T10:05:00.000Z" and len(order.items) == 1


def test_an_order_without_an_id_is_refused():
    with pytest.raises(ValueError, match="id"):
        map_order({"status": "Draft"})


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.sampled_from(
    ["status", "items", "customFields", "executionStatus", "expirationDate", "code",
     "accountName", "accountId", "updatedAt", "ordersyncExpired"]), json_values))
def test_mapping_never_crashes_on_odd_shapes(fields):
    order = map_order({"id": 7, **fields})
    assert order.vendor_id == "7" and isinstance(order.vendor_state, str)
