"""FotoWeb's order-management API over :class:`ordersync.http.VendorHttp`.

OAuth 2.0 client credentials through the core's :class:`~ordersync.oauth.OAuth2Token` (no
refresh tokens: a new token shortly before expiry and once more on a 401), declared on the
spec (:data:`HTTP`); discovery of the order URLs through the full API descriptor, order
lists followed through ``paging.next``, counts, and single orders.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from ordersync.errors import AuthError, BadResponse
from ordersync.http import HttpBehaviour, VendorHttp
from ordersync.http_answers import Response
from ordersync.oauth import ClientSecret, OAuth2Grant, OAuth2Token

TOKEN_PATH = "/fotoweb/oauth2/token"
DESCRIPTOR_PATH = "/fotoweb/me/"
DESCRIPTOR = "application/vnd.fotoware.full-api-descriptor+json"
ORDER_LIST = "application/vnd.fotoware.orderlist+json"
ORDER_LIST_ALT = "application/vnd.fotoware.order-list+json"
COUNT = "application/vnd.fotoware.count+json"
ORDER = "application/vnd.fotoware.order+json"
ORDER_CONFIG = "application/vnd.fotoware.order-config+json"
ORDER_UPDATE = "application/vnd.fotoware.order-update+json"

ADMIN_LISTS = ("history", "pending", "approved", "rejected")


GRANT = OAuth2Grant(TOKEN_PATH, hint="check client_id and the client secret")


def client_credentials(client_id: str, client_secret: str,
                       clock: Callable[[], float] = time.time) -> OAuth2Token:
    """Bearer tokens from the client-credentials grant, the client's id and secret in the form."""
    return OAuth2Token(GRANT, ClientSecret(client_id, client_secret), clock=clock)


def authenticator(settings: Mapping[str, Any], secrets: Mapping[str, str],
                  clock: Callable[[], float]) -> OAuth2Token:
    return client_credentials(settings["client_id"], secrets["client_secret"], clock=clock)


HTTP = HttpBehaviour(auth=authenticator)
"""OAuth 2.0 client credentials; FotoWeb's statuses mean what HTTP says."""


class FotowareApi:
    """The calls ordersync makes to one FotoWeb site."""

    def __init__(self, http: VendorHttp) -> None:
        self.http = http
        self._admin: dict[str, str] | None = None
        self._config_url: str | None = None

    async def admin_urls(self) -> dict[str, str]:
        """The order-admin list URLs from the full API descriptor (read once, then kept)."""
        if self._admin is None:
            descriptor = await self.http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
            order = descriptor.get("order") if isinstance(descriptor, dict) else None
            if not isinstance(order, dict):
                raise AuthError(
                    "the API descriptor has no order section: order management is not"
                    " available to this client", vendor=self.http.vendor,
                )
            admin = order.get("admin")
            if not isinstance(admin, dict):
                raise AuthError(
                    "the API client lacks the 'Approve Orders' permission (order.admin is null"
                    " in the API descriptor): grant it to the client's user in FotoWeb",
                    vendor=self.http.vendor,
                )
            missing = [name for name in ADMIN_LISTS if not isinstance(admin.get(name), str)]
            if missing:
                raise AuthError(f"the API descriptor has no order.admin.{missing[0]} URL",
                                vendor=self.http.vendor)
            self._admin = {name: admin[name] for name in ADMIN_LISTS}
            self._config_url = order.get("config") if isinstance(order.get("config"), str) else None
        return self._admin

    async def count(self, list_name: str) -> int:
        url = (await self.admin_urls())[list_name]
        body = await self._admin_call(self.http.get_json(url, accept=COUNT))
        count = body.get("count") if isinstance(body, dict) else body
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise BadResponse(f"count of {list_name} orders is not a number: {body!r}"[:200],
                              vendor=self.http.vendor, url=self.http.url(url))
        return count

    async def pages(
        self, list_name: str, start: str | None = None
    ) -> AsyncIterator[tuple[list[dict], str | None]]:
        """(orders, next URL) per page of a list, from ``start`` or the list's first page.

        Follows ``next`` for as long as the vendor gives one: the pull (``FotowarePull._pages``)
        is the one place that ends a list repeating itself, and says why.
        """
        url: str | None = start or (await self.admin_urls())[list_name]
        while url:
            body = await self._admin_call(
                self.http.get_json(url, accept=f"{ORDER_LIST}, {ORDER_LIST_ALT};q=0.9")
            )
            orders, next_url = parse_order_list(body)
            yield orders, next_url
            url = next_url

    async def order(self, href: str) -> dict:
        body = await self._admin_call(self.http.get_json(href, accept=ORDER))
        if not isinstance(body, dict):
            raise BadResponse("order answer is not an object", vendor=self.http.vendor,
                              url=self.http.url(href))
        return body

    async def order_config(self) -> dict:
        """The site's custom order field configuration (orderFields, itemFields)."""
        await self.admin_urls()
        if not self._config_url:
            return {"orderFields": [], "itemFields": []}
        body = await self.http.get_json(self._config_url, accept=ORDER_CONFIG)
        if not isinstance(body, dict):
            raise BadResponse("order configuration is not an object", vendor=self.http.vendor,
                              url=self.http.url(self._config_url))
        return {"orderFields": body.get("orderFields") or [],
                "itemFields": body.get("itemFields") or []}

    async def change(self, verb: str, href: str, body: dict | None = None) -> dict | None:
        """PATCH, SUBMIT, APPROVE or REJECT an order; the Order it answers with, if any.

        These requests are never repeated by the HTTP layer once they may have reached
        FotoWeb: a lost answer raises AmbiguousError for the outbox to verify.
        """
        headers = {"Accept": ORDER}
        data = None
        if body is not None:
            headers["Content-Type"] = ORDER_UPDATE
            data = orjson.dumps(body)
        return await self._admin_call(
            self.http.request(verb, href, headers=headers, data=data, safe=False,
                              read=_changed_order)
        )

    async def _admin_call(self, call):
        try:
            return await call
        except AuthError as exc:
            if exc.status == 403:
                raise AuthError(
                    "forbidden: the API client lacks the 'Approve Orders' permission"
                    f" ({exc.message})", vendor=exc.vendor, method=exc.method, url=exc.url,
                    status=403,
                ) from None
            raise


def _changed_order(response: Response) -> dict | None:
    """The Order a verb answers with, None when it answers without one; a body that is not
    an Order is unreadable (and the write ambiguous)."""
    if not response.body:
        return None
    order = response.json()
    if not isinstance(order, dict) or not order.get("href"):
        raise BadResponse("answer is not an Order", method=response.method, url=response.url,
                          status=response.status)
    return order


def parse_order_list(body: Any) -> tuple[list[dict], str | None]:
    """The orders of one Order List page and the next page's URL (None on the last page)."""
    if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
        raise BadResponse("order list answer has no data array")
    orders = [order for order in body.get("data") or [] if isinstance(order, dict)]
    paging = body.get("paging")
    next_url = paging.get("next") if isinstance(paging, dict) else None
    return orders, next_url if isinstance(next_url, str) and next_url else None
