"""Pwinty's REST API v2.2 over :class:`ordersync.http.VendorHttp`.

Two headers authenticate every call (their names are case-insensitive); bodies go out
form-encoded like most Pwinty clients send them, batches as JSON, uploads as multipart.
A 403 from Pwinty means "not valid in the order's current state": a refusal, not a
permission problem, so it is classified as :class:`~ordersync.errors.Rejected`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiohttp

from ordersync.errors import AuthError, BadResponse, Rejected
from ordersync.http import HttpBehaviour, VendorHttp, path_segment
from ordersync.http_answers import Response

JSON = "application/json"


class PwintyHeaders:
    """The merchant id and API key headers; nothing to renew, so a 401 is final."""

    renews = False

    def __init__(self, merchant_id: str, api_key: str) -> None:
        self._headers = {"X-Pwinty-MerchantId": merchant_id, "X-Pwinty-REST-API-Key": api_key}

    async def headers(self, http: VendorHttp) -> Mapping[str, str]:
        return self._headers

    def invalidate(self) -> None:
        pass


def authenticator(settings: Mapping[str, Any], secrets: Mapping[str, str],
                  clock: Callable[[], float]) -> PwintyHeaders:
    return PwintyHeaders(settings["merchant_id"], secrets["api_key"])


HTTP = HttpBehaviour(status_errors={403: Rejected}, auth=authenticator)
"""Two headers on every call; a 403 is a refusal in the order's state (see the docstring)."""


def form(fields: Mapping[str, Any]) -> dict[str, str]:
    """Fields as Pwinty's form bodies carry them (booleans as true/false, no None)."""
    out = {}
    for key, value in fields.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class PwintyApi:
    """The calls ordersync makes to Pwinty."""

    def __init__(self, http: VendorHttp) -> None:
        self.http = http
        self._wrong_credentials_hint = "check merchant_id and the API key"

    async def _write(self, method: str, path: str, what: str | None = None, **kw) -> Any:
        """A write; its answer is read through the core, so anything unreadable (or not the
        ``what`` object expected) is ambiguous there, never a reason to send it again."""

        def read(response: Response) -> Any:
            body = response.json() if response.body or what else None
            return body if what is None else _object(body, what, self.http)

        with self._credentials_hint():
            return await self.http.request(method, path, headers={"Accept": JSON}, read=read,
                                           **kw)

    async def orders_page(self, count: int, offset: int,
                          known: bytes | None = None) -> tuple[bytes, list[dict] | None]:
        """A page of the order list: its body's fingerprint, and its orders, or None (not
        even decoded) when the fingerprint is ``known``, a body already read."""

        def read(response: Response) -> tuple[bytes, Any]:
            fingerprint = hashlib.sha256(response.body).digest()
            return fingerprint, None if fingerprint == known else response.json()

        with self._credentials_hint():
            fingerprint, body = await self.http.request(
                "GET", "Orders", headers={"Accept": JSON}, read=read,
                params={"count": str(count), "offset": str(offset)})
        if fingerprint == known:
            return fingerprint, None
        if not isinstance(body, list):
            raise BadResponse("order list is not an array", vendor=self.http.vendor,
                              url=self.http.url("Orders"))
        return fingerprint, [o for o in body if isinstance(o, dict)]

    async def http_get(self, path: str, params=None) -> Any:
        with self._credentials_hint():
            return await self.http.get_json(path, accept=JSON, params=params)

    @contextmanager
    def _credentials_hint(self) -> Iterator[None]:
        """A 401 says which settings to check."""
        try:
            yield
        except AuthError as exc:
            raise AuthError(f"{exc.message} ({self._wrong_credentials_hint})", vendor=exc.vendor,
                            method=exc.method, url=exc.url, status=exc.status) from None

    async def order(self, order_id: str) -> dict:
        return _object(await self.http_get(_order(order_id)), "order", self.http)

    async def submission_status(self, order_id: str) -> dict:
        return _object(await self.http_get(_order(order_id, "SubmissionStatus")),
                       "submission status", self.http)

    async def catalogue(self, country: str, quality: str) -> dict:
        path = f"Catalogue/{path_segment(country)}/{path_segment(quality)}"
        return _object(await self.http_get(path), "catalogue", self.http)

    async def create_order(self, fields: Mapping[str, Any]) -> dict:
        return await self._write("POST", "Orders", "order", data=form(fields))

    async def update_order(self, order_id: str, fields: Mapping[str, Any]) -> dict | None:
        return await self._write("PUT", _order(order_id), data=form(fields))

    async def add_photo(self, order_id: str, fields: Mapping[str, Any]) -> dict:
        return await self._write("POST", _order(order_id, "Photos"), "photo", data=form(fields))

    async def upload_photo(self, order_id: str, fields: Mapping[str, Any], content: bytes,
                           filename: str) -> dict:
        body = aiohttp.FormData()
        for key, value in form(fields).items():
            body.add_field(key, value)
        body.add_field("file", content, filename=filename, content_type="image/jpeg")
        return await self._write("POST", _order(order_id, "Photos"), "photo", data=body)

    async def add_photos(self, order_id: str, photos: list[dict]) -> dict:
        return await self._write("POST", _order(order_id, "Photos/Batch"), "batch answer",
                                 json=photos)

    async def delete_photo(self, order_id: str, photo_id: str) -> None:
        await self._write("DELETE", _order(order_id, "Photos", path_segment(photo_id)))

    async def set_status(self, order_id: str, status: str) -> None:
        await self._write("POST", _order(order_id, "Status"), data=form({"status": status}))


def _order(order_id: str, *rest: str) -> str:
    """The path of an order (or of something under it), the id encoded as one segment."""
    return "/".join(["Orders", path_segment(order_id), *rest])


def _object(body: Any, what: str, http: VendorHttp) -> dict:
    if not isinstance(body, dict):
        raise BadResponse(f"{what} answer is not an object", vendor=http.vendor)
    return body
