"""The Pwinty simulator's order endpoints: list, read, create, update, submission status
and status changes, with the rules of the package docstring."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ordersync.simkit import HttpError

from .account import Account
from .catalogue import (
    _COUNTRY,
    _COUNTRY_CODES,
    _PAYMENTS,
    _QUALITIES,
    _SETTABLE,
    ADDRESS_FIELDS,
    CREATE_FIELDS,
    EMPTY_ORDER,
    EMPTY_SUBMISSION,
    FIRST_ID,
    POSTAL_ADDRESS,
    SUBMITTABLE,
)
from .wire import (
    _boolean,
    _canonical,
    _choice,
    _text,
    _whole,
    empty_response,
    json_response,
    read_body,
)


class OrderRoutes(Account):
    """``/Orders``, ``/Orders/{id}``, ``.../SubmissionStatus`` and ``.../Status``."""

    async def _list(self, request: web.Request) -> web.Response:
        """A bare array, newest first: ``count`` (100 when absent, at most 250) from ``offset``."""
        query = {k.lower(): v for k, v in request.query.items()}
        empty = {"errorMessage": None}
        count = min(250, _whole(query.get("count", "100"), "count", empty, 0))
        offset = 0 if self.ignore_offset else _whole(query.get("offset", "0"), "offset", empty, 0)
        end = self._last_id - offset
        now = self._clock()
        ids = range(end, max(FIRST_ID - 1, end - count), -1)
        return json_response(b"[" + b",".join(self._serialized(i, now) for i in ids) + b"]")

    async def _get_order(self, request: web.Request) -> web.Response:
        return json_response(self._serialized(self._order_id(request)))

    async def _create(self, request: web.Request) -> web.Response:
        raw, _ = await read_body(request, EMPTY_ORDER)
        fields = _canonical(raw, CREATE_FIELDS)
        e = EMPTY_ORDER
        country = _choice(fields.get("countryCode"), _COUNTRY_CODES, "countryCode", e, True)
        if not _COUNTRY[country][1]:
            raise HttpError(400, f"countryCode {country!r}: Pwinty has no products in "
                                 f"{_COUNTRY[country][0]}", payload=e)
        quality = _choice(fields.get("qualityLevel"), _QUALITIES, "qualityLevel", e, True)
        payment = _choice(fields.get("payment"), _PAYMENTS, "payment", e) or "InvoiceMe"
        destination = _choice(fields.get("destinationCountryCode"), _COUNTRY_CODES,
                              "destinationCountryCode", e) or country
        tracked = _boolean(fields.get("useTrackedShipping"), "useTrackedShipping", e)
        address = {name: _text(fields.get(name), name, e) for name in ADDRESS_FIELDS}
        for name in ("mobileTelephone", "email"):
            _text(fields.get(name), name, e)
        oid = self._last_id + 1
        self._last_id = oid
        order: dict[str, Any] = {"id": oid, **address, "countryCode": country,
                 "destinationCountryCode": destination, "price": 0,
                 "shippingInfo": {"price": 0, "shipments": []}, "status": "NotYetSubmitted",
                 "payment": payment, "paymentUrl": self._payment_url(oid, payment),
                 "qualityLevel": quality, "photos": [], "errorMessage": None}
        self._tracked[oid] = tracked
        self._store.live[oid] = order
        self._changed(oid, order)
        self._effect("CREATE", oid, fields)
        return json_response(self._serialized(oid))

    async def _update(self, request: web.Request) -> web.Response:
        """Address fields of a NotYetSubmitted order; others only sent back unchanged."""
        oid = self._order_id(request)
        raw, _ = await read_body(request, EMPTY_ORDER)
        fields = _canonical(raw, (*CREATE_FIELDS, "destinationCountryCode"))
        order = self._live(oid)
        e = EMPTY_ORDER
        if order["status"] != "NotYetSubmitted":
            raise HttpError(403, f"The order is {order['status']}; only NotYetSubmitted orders "
                                 f"can be updated", payload=e)
        fixed = {"countryCode": _choice(fields.get("countryCode"), _COUNTRY_CODES,
                                        "countryCode", e),
                 "payment": _choice(fields.get("payment"), _PAYMENTS, "payment", e),
                 "qualityLevel": _choice(fields.get("qualityLevel"), _QUALITIES,
                                         "qualityLevel", e)}
        for name, value in fixed.items():
            if value is not None and value != order[name]:
                raise HttpError(400, f"{name} cannot be changed once the order is created",
                                payload=e)
        if fields.get("id") not in (None, "") and str(fields["id"]) != str(oid):
            raise HttpError(400, "id does not match the order in the url", payload=e)
        if "useTrackedShipping" in fields and fields["useTrackedShipping"] not in (None, ""):
            if _boolean(fields["useTrackedShipping"], "useTrackedShipping", e) != \
                    self._tracked.get(oid, False):
                raise HttpError(400, "useTrackedShipping cannot be changed once the order is "
                                     "created", payload=e)
        changes: dict[str, Any] = {}
        for name in ADDRESS_FIELDS:
            if name in fields:
                changes[name] = _text(fields[name], name, e)
        if "destinationCountryCode" in fields:
            changes["destinationCountryCode"] = _choice(
                fields["destinationCountryCode"], _COUNTRY_CODES, "destinationCountryCode",
                e) or order["countryCode"]
        for name in ("mobileTelephone", "email"):
            _text(fields.get(name), name, e)
        order.update(changes)
        self._changed(oid, order)
        self._effect("UPDATE", oid, fields)
        return json_response(self._serialized(oid))

    def _submission(self, oid: int, order: dict) -> dict:
        """SubmissionStatus: what stops the order from being submitted."""
        general, photos = [], []
        if not order["photos"]:
            general.append("NoItemsInOrder")
        if any(not order[name] for name in POSTAL_ADDRESS):
            general.append("PostalAddressNotSet")
        for photo in order["photos"]:
            errors, warnings = [], []
            status = photo["status"]
            if status == "FileNotFoundAtUrl":
                errors.append("FileCouldNotBeDownloaded")
            elif status in ("AwaitingUrlOrData", "NotYetDownloaded"):
                errors.append("NoImageFile")
            elif status == "Invalid":
                errors.append("InvalidImagefile")
            elif status == "Ok" and photo["sizing"] == "Crop":
                warnings.append("CroppingWillOccur")
            photos.append({"id": photo["id"], "errors": errors, "warnings": warnings})
        if any(p["errors"] for p in photos):
            general.append("ItemsContainingErrors")
        if self.balance_insufficient and order["payment"] == "InvoiceMe":
            general.append("AccountBalanceInsufficient")
        return {"id": oid, "isValid": not general, "generalErrors": general, "photos": photos}

    async def _submission_status(self, request: web.Request) -> web.Response:
        oid = self._order_id(request, EMPTY_SUBMISSION)
        return json_response(orjson.dumps(self._submission(oid, self._live(oid))))

    async def _set_status(self, request: web.Request) -> web.Response:
        oid = self._order_id(request)
        raw, _ = await read_body(request, EMPTY_ORDER)
        fields = _canonical(raw, ("status",))
        e = EMPTY_ORDER
        wanted = _choice(fields.get("status"), _SETTABLE, "status", e, True)
        order = self._live(oid)
        current = order["status"]
        if wanted == "Submitted":
            if current not in SUBMITTABLE:
                raise HttpError(403, f"The order is {current} and cannot be submitted",
                                payload=e)
            readiness = self._submission(oid, order)
            if not readiness["isValid"]:
                reasons = list(readiness["generalErrors"])
                reasons += [f"photo {p['id']}: {', '.join(p['errors'])}"
                            for p in readiness["photos"] if p["errors"]]
                raise HttpError(400, "The order cannot be submitted: " + "; ".join(reasons),
                                payload=e)
            self._submitted_at[oid] = self._clock()
        elif wanted == "Cancelled":
            if current not in SUBMITTABLE:
                raise HttpError(403, f"The order is {current} and cannot be cancelled",
                                payload=e)
        else:
            if order["payment"] != "InvoiceRecipient":
                raise HttpError(403, "Only orders with payment InvoiceRecipient can await "
                                     "payment", payload=e)
            if current != "NotYetSubmitted":
                raise HttpError(403, f"The order is {current}; only NotYetSubmitted orders can "
                                     f"await payment", payload=e)
        order["status"] = wanted
        self._changed(oid, order)
        self._effect("STATUS", oid, {"status": wanted})
        return empty_response()

