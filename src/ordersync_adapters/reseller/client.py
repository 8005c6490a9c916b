"""The reseller API V3 (interworks.cloud white-label resellers) over :class:`VendorHttp`.

* **Auth**: the OAuth 2.0 *password* grant; the client key and secret travel only as HTTP
  Basic auth on ``POST /oauth/token`` (never in the form), the API user's name and password
  in the form. Tokens are renewed shortly before they expire and once more on a 401 (the
  core's :class:`~ordersync.oauth.OAuth2Token` with this grant).
* **Version**: ``X-Api-Version: 3.0`` on every request, the token request included (without
  it an older organisation answers as API v1).
* **Errors**: this vendor says "rate limited" with a 403 whose body says so (no
  Retry-After): :func:`classify`, declared on the spec (:data:`HTTP`), makes it
  :class:`RateLimited`, retried after backing off.
  Any other 403 is a missing right (a Free Edition user writing): a permission error,
  never retried; on a write it fails the action with that reason (:meth:`ResellerApi._write`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ordersync.errors import AuthError, BadResponse, RateLimited, Rejected, VendorError
from ordersync.http import HttpBehaviour, VendorHttp, path_segment
from ordersync.http_answers import Response, vendor_message
from ordersync.oauth import ClientSecret, OAuth2Grant, OAuth2Token

TOKEN_PATH = "/oauth/token"
API_VERSION = "3.0"
JSON = "application/json"
MAX_PAGES = 10_000


GRANT = OAuth2Grant(TOKEN_PATH, grant_type="password", client_auth="basic",
                    hint="check client_key, client_secret, username and password")


def password_grant(client_key: str, client_secret: str, username: str, password: str,
                   clock: Callable[[], float] = time.time) -> OAuth2Token:
    """Bearer tokens from the password grant, the client key and secret as Basic auth."""
    return OAuth2Token(GRANT, ClientSecret(client_key, client_secret,
                                           {"username": username, "password": password}),
                       clock=clock)


def classify(status: int, headers: Mapping[str, str], body: bytes) -> type[VendorError] | None:
    """A 403 whose body speaks of a rate limit is one; other answers keep their class."""
    if status == 403 and "rate limit" in vendor_message(body).lower():
        return RateLimited
    return None


def authenticator(settings: Mapping[str, Any], secrets: Mapping[str, str],
                  clock: Callable[[], float]) -> OAuth2Token:
    return password_grant(settings["client_key"], secrets["client_secret"],
                          settings["username"], secrets["password"], clock=clock)


HTTP = HttpBehaviour(headers={"X-Api-Version": API_VERSION}, classify=classify,
                     auth=authenticator)
"""The version header on every request, a 403 read by its body, the password grant."""


def filter_expression(**conditions: str) -> str:
    """``$filter`` text: ``field eq 'value'`` joined by ``and`` (quotes doubled)."""
    return " and ".join(f"{field} eq '{value.replace(chr(39), chr(39) * 2)}'"
                        for field, value in conditions.items())


class ResellerApi:
    """The calls ordersync makes to one organisation's reseller API."""

    def __init__(self, http: VendorHttp) -> None:
        self.http = http

    # -- reads ----------------------------------------------------------------------------

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await self.http.get_json(path, accept=JSON, params=params)

    async def list_page(self, params: Mapping[str, str], page_index: int,
                        page_size: int) -> tuple[list[dict], int]:
        """One page of ``GET /api/orders``: its orders and the total the vendor reports."""
        body = await self._get("/api/orders", {**params, "pageIndex": str(page_index),
                                               "pageSize": str(page_size)})
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise BadResponse("order list answer has no data array", vendor=self.http.vendor,
                              url=self.http.url("/api/orders"))
        total = body.get("totalCount")
        total = total if isinstance(total, int) and not isinstance(total, bool) else 0
        return [o for o in body["data"] if isinstance(o, dict)], total

    async def pages(self, params: Mapping[str, str], page_size: int,
                    first_page: int = 1) -> AsyncIterator[list[dict]]:
        """The orders of each page of a listing, from ``first_page`` until a short page or
        the total the vendor reports."""
        for page_index in range(first_page, MAX_PAGES):
            orders, total = await self.list_page(params, page_index, page_size)
            if orders:
                yield orders
            if len(orders) < page_size or page_index * page_size >= total:
                return

    async def order(self, order_id: str) -> dict:
        return _object(await self._get(_order(order_id)), "order", self.http)

    async def items(self, order_id: str) -> list[dict]:
        return _array(await self._get(_order(order_id, "items")), "items", self.http)

    async def custom_fields(self, order_id: str) -> list[dict]:
        return _array(await self._get(_order(order_id, "customfields")), "custom fields",
                      self.http)

    async def characteristics(self, order_id: str, item_id: str) -> list[dict]:
        return _array(await self._get(_order(order_id, "items", item_id, "characteristics")),
                      "characteristics", self.http)

    async def execution(self, order_id: str) -> dict:
        return _object(await self._get(_order(order_id, "execute", "status")),
                       "execution status", self.http)

    # -- writes (never repeated once they may have reached the vendor) ---------------------

    async def _write(self, method: str, path: str, body: Any = None) -> Any:
        def read(response: Response) -> Any:
            return response.json() if response.body else None  # unreadable: ambiguous

        try:
            return await self.http.request(method, path, headers={"Accept": JSON},
                                           json=body, safe=False, read=read)
        except AuthError as exc:
            if exc.status != 403:
                raise
            raise Rejected(f"permission denied: {exc.message} (this API user may only read;"
                           " the Free Edition cannot write orders)", vendor=exc.vendor,
                           method=exc.method, url=exc.url, status=403) from None

    async def create_order(self, fields: Mapping[str, Any]) -> dict | None:
        return await self._write("POST", "/api/orders", dict(fields))

    async def add_item(self, order_id: str, fields: Mapping[str, Any]) -> dict | None:
        return await self._write("POST", _order(order_id, "items"), dict(fields))

    async def delete_item(self, order_id: str, item_id: str) -> None:
        await self._write("DELETE", _order(order_id, "items", item_id))

    async def checkout(self, order_id: str) -> None:
        await self._write("POST", _order(order_id, "checkout"))

    async def set_custom_fields(self, order_id: str, fields: list[dict]) -> None:
        await self._write("PUT", _order(order_id, "customfields"), fields)

    async def set_characteristics(self, order_id: str, item_id: str, values: list[dict]) -> None:
        await self._write("PUT", _order(order_id, "items", item_id, "characteristics"),
                          values)


def _order(order_id: str, *rest: str) -> str:
    """The path of an order (or of something under it), each id encoded as one segment."""
    return "/".join(["/api/orders", *(path_segment(part) for part in (order_id, *rest))])


def _object(body: Any, what: str, http: VendorHttp) -> dict:
    if not isinstance(body, dict):
        raise BadResponse(f"{what} answer is not an object", vendor=http.vendor)
    return body


def _array(body: Any, what: str, http: VendorHttp) -> list[dict]:
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body = body["data"]
    if not isinstance(body, list):
        raise BadResponse(f"{what} answer is not an array", vendor=http.vendor)
    return [entry for entry in body if isinstance(entry, dict)]
