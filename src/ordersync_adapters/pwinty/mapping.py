"""Pwinty v2.2 Order (with its photos) -> the common model. Pure: no session, no clock.

v2.x orders carry no created/modified time and no merchant reference, so those columns
stay empty; the order id is the reference people use.
"""

from __future__ import annotations

from typing import Any

import orjson

from ordersync.contract import identify_by
from ordersync.ledger.records import StoredOrder
from ordersync.model import Item, Order, State

STATES: dict[str, State] = {
    "NotYetSubmitted": State.DRAFT,
    "AwaitingPayment": State.SUBMITTED,
    "PaidAwaitingImageUpload": State.APPROVED,
    "Submitted": State.IN_PRODUCTION,
    "Complete": State.COMPLETED,
    "Cancelled": State.CANCELLED,
}
"""Every documented Pwinty v2.2/v2.3 order status and its place in the common lifecycle."""

FINAL_STATUSES = frozenset({"Complete", "Cancelled"})
"""Statuses after which an order no longer changes (the idle poll stops re-reading it)."""

ADDRESS_FIELDS = ("recipientName", "address1", "address2", "addressTownOrCity",
                  "stateOrCounty", "postalOrZipCode", "countryCode", "destinationCountryCode",
                  "mobileTelephone", "email")


identify = identify_by("id", "Orders/{id}")
"""(id, url) of an order, even one map_order cannot read; None without an id."""


def map_order(raw: dict) -> Order:
    """One Pwinty order as the ledger keeps it (``raw`` may carry ``submissionStatus``)."""
    if identify(raw) is None:
        raise ValueError("order without an id")
    order_id = raw["id"]
    status = raw.get("status")
    photos = raw.get("photos")
    items = tuple(_photo(position, photo) for position, photo in
                  enumerate(photos if isinstance(photos, list) else ()))
    shipping = raw.get("shippingInfo")
    if not isinstance(shipping, dict):
        shipping = {}
    data: dict[str, Any] = {
        "price_minor": _int(raw.get("price")),
        "shipping_minor": _int(shipping.get("price")),
        "payment": raw.get("payment"),
        "qualityLevel": raw.get("qualityLevel"),
        "address": {k: raw.get(k) for k in ADDRESS_FIELDS if raw.get(k) is not None},
    }
    shipments = shipping.get("shipments")
    if isinstance(shipments, list) and shipments:
        data["shipments"] = [
            {k: s.get(k) for k in ("shipmentId", "trackingNumber", "trackingUrl", "isTracked",
                                   "earliestEstimatedArrivalDate", "latestEstimatedArrivalDate")}
            for s in shipments if isinstance(s, dict)
        ]
    readiness = raw.get("submissionStatus")
    if isinstance(readiness, dict):
        photo_checks = readiness.get("photos")
        data["submission"] = {
            "isValid": readiness.get("isValid"),
            "generalErrors": readiness.get("generalErrors") or [],
            "photoErrors": {str(p.get("id")): p.get("errors")
                            for p in (photo_checks if isinstance(photo_checks, list) else [])
                            if isinstance(p, dict) and p.get("errors")},
        }
    if raw.get("errorMessage"):
        data["errorMessage"] = raw["errorMessage"]
    return Order(
        vendor_id=str(order_id),
        state=STATES.get(status, State.UNKNOWN) if isinstance(status, str) else State.UNKNOWN,
        vendor_state=status if isinstance(status, str) else orjson.dumps(status).decode(),
        reference=None,
        created=None,
        modified=None,
        raw=orjson.dumps(raw),
        items=items,
        url=f"Orders/{order_id}",
        customer=_text(raw.get("recipientName")) or _text(raw.get("email")),
        data={k: v for k, v in data.items() if v not in (None, {}, [])},
    )


def _photo(position: int, photo: Any) -> Item:
    if not isinstance(photo, dict):
        return Item(key=f"#{position}", title="(unreadable photo)", data={"raw": photo})
    copies = _int(photo.get("copies"))
    data = {k: photo.get(k) for k in ("url", "md5Hash", "sizing", "attributes", "previewUrl",
                                      "thumbnailUrl") if photo.get(k) not in (None, "", {})}
    for key in ("price", "priceToUser"):
        if _int(photo.get(key)) is not None:
            data[f"{key}_minor"] = _int(photo.get(key))
    return Item(
        key=str(photo.get("id", f"#{position}")),
        title=str(photo.get("type") or "photo"),
        quantity=copies if copies is not None and copies > 0 else 1,
        status=_text(photo.get("status")),
        data=data,
    )


def _int(value: Any) -> int | None:
    """Pwinty sends some numbers as strings ("copies": "4"); both are read.

    A whole number beyond 64 bits raises ValueError: the order is kept flagged (intake.py)
    rather than stored with a value SQLite and JSON cannot hold.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        return None
    if not -_INT64 <= number < _INT64:
        raise ValueError(f"number {value!r} does not fit in 64 bits")
    return number


_INT64 = 1 << 63


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


WAITING_STATES = {"NotYetSubmitted": "submission", "AwaitingPayment": "the recipient's payment"}
"""Where a Pwinty order waits for someone (the report's stuck orders)."""

PHOTO_PROBLEMS = frozenset({"FileNotFoundAtUrl", "Invalid"})
"""Photo statuses the lab cannot print from."""


def problems(order: StoredOrder) -> list[str]:
    """What blocks an order not yet in production: photos the lab cannot use, and what the
    stored SubmissionStatus says (``data.submission``). Pure."""
    found = [f"photo {item.key} ({item.title}): {item.status}" for item in order.items
             if item.status in PHOTO_PROBLEMS]
    submission = order.data.get("submission")
    if isinstance(submission, dict):
        found += [str(error) for error in submission.get("generalErrors") or []]
        for photo_id, errors in (submission.get("photoErrors") or {}).items():
            found += [f"photo {photo_id}: {error}" for error in errors or []]
    return list(dict.fromkeys(found))
