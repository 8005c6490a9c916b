"""The Pwinty simulator as a server: its routes, authentication, error bodies, reference
data, and the controls tests and benchmarks use (add orders, change them, warm the cache)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ordersync.simkit import HttpError

from .catalogue import (
    _COUNTRY_CODES,
    _QUALITIES,
    AUTH,
    BASE_PATH,
    EMPTY_CATALOGUE,
    FIRST_ID,
    ORDER_KEYS,
    build_catalogue,
)
from .orders import OrderRoutes
from .photos import PhotoRoutes
from .wire import _choice, json_response


class PwintySimulator(OrderRoutes, PhotoRoutes):
    """An in-memory Pwinty merchant account with seeded orders, served by aiohttp
    (the state and its seeding: :class:`.account.Account`)."""

    REDACT_HEADERS = {"x-pwinty-rest-api-key": "<redacted>"}
    MALFORMED_FALLBACK = (b'{"id": 1001, "status": "Complete", "errorMessage": null}',
                          "application/json")

    # ------------------------------------------------------------------ test helpers
    def order_ids(self) -> list[str]:
        """Every order id, newest first."""
        return [str(i) for i in range(self._last_id, FIRST_ID - 1, -1)]

    def get_order(self, order_id: str | int) -> dict:
        """A copy of an order's current representation (KeyError when unknown)."""
        return orjson.loads(self._serialized(self._known(order_id)))

    def photo_ids(self, order_id: str | int) -> list[str]:
        return [str(p["id"]) for p in self.get_order(order_id)["photos"]]

    def add_order(self, status: str = "NotYetSubmitted", *, photos: int | None = None,
                  **fields: Any) -> str:
        """Add a new newest order; returns its id.

        A NotYetSubmitted order starts without photos, any other with one ``Ok`` photo (a
        PaidAwaitingImageUpload one with a photo still downloading); ``photos=N`` overrides.
        ``fields`` set Order fields (e.g. ``payment="InvoiceRecipient"``) or
        ``useTrackedShipping``. A Submitted order completes ``complete_after_s`` from now.
        """
        oid = self._last_id + 1
        self._last_id = oid
        now = self._clock()
        count = photos if photos is not None else 0 if status == "NotYetSubmitted" else 1
        order = self._generate(oid, status, count, now=now)
        for photo in order["photos"]:           # photo ids from the counter, not id * 10 + n
            new_id = self._new_photo_id()
            pending = self._pending.get(oid, {})
            if photo["id"] in pending:
                pending[new_id] = pending.pop(photo["id"])
            photo["id"] = new_id
            if photo["previewUrl"]:
                self._downloaded(oid, photo, "Ok")
        if status == "Submitted":
            self._submitted_at[oid] = now
        elif status == "Complete":
            order["shippingInfo"]["shipments"] = [self._shipment(oid, order, 1, now)]
        for key, value in fields.items():
            if key == "useTrackedShipping":
                self._tracked[oid] = bool(value)
            elif key in ORDER_KEYS and key not in ("id", "photos", "price", "shippingInfo",
                                                   "errorMessage", "status"):
                order[key] = value
            else:
                raise ValueError(f"add_order() cannot set {key!r}")
        if "payment" in fields:
            if "paymentUrl" not in fields:
                order["paymentUrl"] = self._payment_url(oid, order["payment"])
            for photo in order["photos"]:
                photo["priceToUser"] = (round(photo["price"] * 1.8)
                                        if order["payment"] == "InvoiceRecipient" else None)
        self._reprice(oid, order)
        self._store.live[oid] = order
        self._changed(oid, order)
        return str(oid)

    def set_status(self, order_id: str | int, status: str) -> None:
        """Any status, no rules checked. Submitted completes ``complete_after_s`` from now;
        Complete adds a shipment when there is none."""
        oid = self._known(order_id)
        order = self._live(oid)
        now = self._clock()
        order["status"] = status
        self._submitted_at.pop(oid, None)
        if status == "Submitted":
            self._submitted_at[oid] = now
        elif status == "Complete":
            self._complete(oid, order, now)
        self._changed(oid, order)

    def add_shipment(self, order_id: str | int) -> dict:
        """Add one more shipment (shipped now); returns a copy of it."""
        oid = self._known(order_id)
        order = self._live(oid)
        shipments = order["shippingInfo"]["shipments"]
        shipments.append(self._shipment(oid, order, len(shipments) + 1, self._clock()))
        self._changed(oid, order)
        return dict(shipments[-1])

    def warm(self) -> None:
        """Generate and serialise every order now, e.g. before a benchmark."""
        now = self._clock()
        for oid in range(FIRST_ID, self._last_id + 1):
            self._serialized(oid, now)

    # ------------------------------------------------------------------ HTTP plumbing
    def _routes(self, app: web.Application) -> None:
        route, base = app.router.add_route, BASE_PATH
        route("GET", f"{base}/Orders", self._list)
        route("POST", f"{base}/Orders", self._create)
        route("GET", f"{base}/Orders/{{order_id}}", self._get_order)
        route("PUT", f"{base}/Orders/{{order_id}}", self._update)
        route("GET", f"{base}/Orders/{{order_id}}/SubmissionStatus", self._submission_status)
        route("POST", f"{base}/Orders/{{order_id}}/Status", self._set_status)
        route("GET", f"{base}/Orders/{{order_id}}/Photos", self._photos)
        route("POST", f"{base}/Orders/{{order_id}}/Photos", self._add_photo)
        route("POST", f"{base}/Orders/{{order_id}}/Photos/Batch", self._add_batch)
        route("GET", f"{base}/Orders/{{order_id}}/Photos/{{photo_id}}", self._get_photo)
        route("DELETE", f"{base}/Orders/{{order_id}}/Photos/{{photo_id}}", self._delete_photo)
        route("GET", f"{base}/Catalogue/{{country}}/{{quality}}", self._catalogue)
        route("GET", f"{base}/Country", self._countries)

    def _authorize(self, request: web.Request) -> None:
        headers = request.headers              # case-insensitive names
        if (headers.get("X-Pwinty-MerchantId") != self.merchant_id
                or headers.get("X-Pwinty-REST-API-Key") != self.api_key):
            raise HttpError(401, "Authorization has been denied for this request.",
                            payload=AUTH)

    def _error_response(self, err: HttpError) -> web.Response:
        if err.payload == AUTH:
            body: dict = {"Message": err.message}
        elif isinstance(err.payload, dict):
            body = {**err.payload, "errorMessage": err.message}
        else:
            body = {"errorMessage": err.message}
        return web.Response(status=err.status, body=orjson.dumps(body), headers=err.headers,
                            content_type="application/json", charset="utf-8")

    def _fault_body(self, status: int) -> bytes:
        return orjson.dumps({"errorMessage": f"Simulated fault: HTTP {status}"})

    # ------------------------------------------------------------------ reference data
    async def _catalogue(self, request: web.Request) -> web.Response:
        e = EMPTY_CATALOGUE
        country = _choice(request.match_info["country"], _COUNTRY_CODES, "countryCode", e, True)
        quality = _choice(request.match_info["quality"], _QUALITIES, "qualityLevel", e, True)
        return json_response(orjson.dumps(build_catalogue(country, quality)))

    async def _countries(self, request: web.Request) -> web.Response:
        return json_response(self._countries_bytes)
