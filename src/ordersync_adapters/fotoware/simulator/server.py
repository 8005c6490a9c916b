"""The FotoWeb simulator as a server: routes, the token endpoint, bearer checks, content
negotiation, the descriptor, paged order lists and the verbs that change an order."""

from __future__ import annotations

import base64
import secrets
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from ordersync.simkit import HttpError as _HttpError

from .account import (
    _LISTS,
    _PROFILES,
    _RENDITION_RE,
    CT_COUNT,
    CT_DESCRIPTOR,
    CT_ORDER,
    CT_ORDER_CONFIG,
    CT_ORDER_LIST,
    CT_ORDER_LIST_ALT,
    CT_ORDER_UPDATE,
    MUTATING,
    TOKEN_PATH,
    Account,
    iso,
    parse_iso,
)
from .orderdata import _validate_custom_data


class FotowareSimulator(Account):
    """An in-memory FotoWeb site with seeded orders, served by aiohttp (its state:
    :class:`.account.Account`)."""

    MUTATING = MUTATING
    GUARDED_PREFIXES = ("/fotoweb/oauth2",)     # faults only when a rule names the token path
    REDACT_HEADERS = {"authorization": "Bearer <redacted>"}
    MALFORMED_FALLBACK = (b'{"href": "/fotoweb/orders/", "state": "approved"}', CT_ORDER)
    PYTHON_PARSER = True                          # SUBMIT, APPROVE and REJECT

    # ------------------------------------------------------------------ HTTP plumbing
    def _routes(self, app: web.Application) -> None:
        route = app.router.add_route
        route("POST", TOKEN_PATH, self._token)
        route("GET", "/fotoweb/me/", self._descriptor)
        route("GET", "/fotoweb/order-config", self._order_config)
        for name, path in _LISTS.items():
            route("GET", path, self._list_handler(name))
        order_path = r"/fotoweb/orders/{order_id:\d+}"
        route("GET", order_path, self._get_order)
        route("PATCH", order_path, self._patch)
        route("SUBMIT", order_path, self._submit)
        route("APPROVE", order_path, self._decide)
        route("REJECT", order_path, self._decide)

    def _authorize(self, request: web.Request) -> None:
        if request.path == TOKEN_PATH:
            return
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or self._clock() >= expiry:
            raise _HttpError(401, None, {"WWW-Authenticate": 'Bearer realm="FotoWeb"'})

    def _require_admin(self) -> None:
        if not self.admin:
            raise _HttpError(403, "The request user does not have the Approve Orders permission")

    @staticmethod
    def _negotiate(request: web.Request, *offered: str) -> str:
        """The first media type in ``Accept`` that the endpoint offers, else 406."""
        for part in request.headers.get("Accept", "").split(","):
            media = part.split(";")[0].strip().lower()
            if media in offered:
                return media
        raise _HttpError(406, f"Accept must be one of: {', '.join(offered)}")

    # ------------------------------------------------------------------ handlers
    async def _token(self, request: web.Request) -> web.Response:
        """Non-interactive OAuth 2.0: client credentials in a form-encoded body."""
        if request.content_type != "application/x-www-form-urlencoded":
            return self._json(b'{"error":"invalid_request"}', status=400)
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return self._json(b'{"error":"unsupported_grant_type"}', status=400)
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id,
                                                                   self.client_secret):
            return self._json(b'{"error":"invalid_client"}', status=401)
        token, ttl = secrets.token_urlsafe(24), self.token_ttl_s
        self._tokens[token] = self._clock() + ttl
        body = {"access_token": token, "token_type": "bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else float(ttl)}
        response = self._json(orjson.dumps(body))
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _descriptor(self, request: web.Request) -> web.Response:
        content_type = self._negotiate(request, CT_DESCRIPTOR)
        admin: dict[str, Any] | None = None
        if self.admin:
            admin = {name: _LISTS[name] for name in ("approved", "history", "pending", "rejected")}
            admin["views"] = {"pending": "/fotoweb/views/orders/admin"}
        body = {"server": "FotoWeb 8.2 (ordersync simulator)",
                "user": {"userName": self.client_id, "fullName": "Order sync service",
                         "email": f"{self.client_id}@example.com", "isGuest": False,
                         "href": f"/fotoweb/users/{self.client_id}"},
                "archives": "/fotoweb/archives/", "taxonomies": "/fotoweb/taxonomies/",
                "order": {"admin": admin, "cart": "/fotoweb/me/cart",
                          "config": "/fotoweb/order-config", "history": "/fotoweb/me/orders/",
                          "views": {}}}
        return self._json(orjson.dumps(body), content_type)

    async def _order_config(self, request: web.Request) -> web.Response:
        return self._json(self._config_bytes, self._negotiate(request, CT_ORDER_CONFIG))

    def _list_handler(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        path = _LISTS[name]

        async def handle(request: web.Request) -> web.Response:
            """An order list (pages of ``page_size``, newest first) or its count."""
            self._require_admin()
            content_type = self._negotiate(request, CT_ORDER_LIST, CT_ORDER_LIST_ALT, CT_COUNT)
            ids = self._lists[name]
            if content_type == CT_COUNT:
                return self._json(orjson.dumps({"count": len(ids)}), content_type)
            page = self._page_index(name, request.query.get("p"))
            last = max(0, (len(ids) - 1) // self.page_size)
            end = len(ids) - page * self.page_size          # ids ascend; pages go newest first
            chunk = ids[max(0, end - self.page_size):max(0, end)][::-1]
            paging = b"null"
            if last > 0 or page > 0:
                def link(n: int) -> str:
                    return f"{path}?p={self._page_token(name, n)}"
                following = link(page + 1) if page < last else ""
                if self.endless_paging and page >= last:
                    self._nonce += 1
                    following = f"{path}?p={self._page_token(name, last, self._nonce)}"
                paging = orjson.dumps({"prev": link(page - 1) if page > 0 else "",
                                       "next": following,
                                       "first": link(0), "last": link(last)})
            data = b",".join(map(self._serialized, chunk))
            return self._json(b'{"data":[' + data + b'],"paging":' + paging + b"}", content_type)

        return handle

    @staticmethod
    def _page_token(name: str, page: int, nonce: int | None = None) -> str:
        text = f"{name}|{page}" + (f"|{nonce}" if nonce is not None else "")
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @staticmethod
    def _page_index(name: str, token: str | None) -> int:
        if token is None:
            return 0
        try:
            decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            list_name, page, *_ = decoded.split("|")
            if list_name == name and int(page) >= 0:
                return int(page)
        except ValueError:
            pass
        raise _HttpError(400, "Invalid paging token")

    def _lookup(self, request: web.Request) -> int:
        self._require_admin()
        oid = int(request.match_info["order_id"])
        if oid not in self._states:
            raise _HttpError(404, "Order not found")
        return oid

    def _require_state(self, oid: int, allowed: tuple[str, ...], action: str) -> None:
        if self._states[oid] not in allowed:
            raise _HttpError(400, f"Order is {self._states[oid]}; only {' or '.join(allowed)} "
                                  f"orders can be {action}")

    async def _get_order(self, request: web.Request) -> web.Response:
        oid = self._lookup(request)
        return self._json(self._serialized(oid), self._negotiate(request, CT_ORDER))

    async def _patch(self, request: web.Request) -> web.Response:
        """Replace items, custom data, comment and expiry of a pending or created order."""
        oid = self._lookup(request)
        update = await self._update_body(request, required=True)
        assert update is not None  # required=True answers 400 instead of returning None
        self._require_state(oid, ("pending", "created"), "updated")
        self._apply_update(oid, update)
        self._changed(oid)
        self._effect("PATCH", oid, update)
        return web.Response(status=204)

    async def _submit(self, request: web.Request) -> web.Response:
        oid = self._lookup(request)
        self._require_state(oid, ("created",), "submitted")
        self._changed(oid, "pending")
        self._effect("SUBMIT", oid, None)
        return web.Response(status=204)

    async def _decide(self, request: web.Request) -> web.Response:
        """APPROVE or REJECT, with an optional update body applied first."""
        oid = self._lookup(request)
        update = await self._update_body(request, required=False)
        self._require_state(oid, ("pending", "created", "rejected", "approved"),
                            "approved or rejected")
        if update is not None:
            self._apply_update(oid, update)
        self._changed(oid, "approved" if request.method == "APPROVE" else "rejected")
        self._effect(request.method, oid, update)
        return self._json(self._serialized(oid), CT_ORDER)

    async def _update_body(self, request: web.Request, required: bool) -> dict | None:
        raw = await request.read()
        if not raw.strip():
            if required:
                raise _HttpError(400, "An order update body is required")
            return None
        if request.content_type != CT_ORDER_UPDATE:
            raise _HttpError(415, f"Content-Type must be {CT_ORDER_UPDATE}")
        try:
            update = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _HttpError(400, "Request body is not valid JSON") from None
        if not isinstance(update, dict):
            raise _HttpError(400, "Request body must be a JSON object")
        return update

    def _apply_update(self, oid: int, update: dict) -> None:
        """Validate an order-update body completely, then apply it (all or nothing)."""
        order = self._order(oid)
        raw_items = update.get("orderItems", [])       # left out = cleared: the documented trap
        if not isinstance(raw_items, list):
            raise _HttpError(400, "orderItems: must be a list")
        old_items = {item["rendition"]["href"]: item for item in order["orderItems"]}
        items = []
        for i, raw in enumerate(raw_items):
            where = f"orderItems[{i}]"
            href = raw.get("rendition") if isinstance(raw, dict) else None
            if not isinstance(href, str):
                raise _HttpError(400, f"{where}.rendition: a rendition href is required")
            match = _RENDITION_RE.match(href)
            if match is None:
                raise _HttpError(400, f"{where}.rendition: unknown rendition {href!r}")
            expires = self._expiry(raw, "expires", f"{where}.expires", None)
            item_data = _validate_custom_data(
                raw.get("itemData", []), self._item_fields, f"{where}.itemData",
                old_items.get(href, {}).get("itemData", []), "itemData" in raw)
            items.append({
                "adminComment": self._text(raw, "adminComment", f"{where}.adminComment", ""),
                "asset": href.split("#")[0], "expires": expires,
                "expired": expires is not None and parse_iso(expires) <= self._clock(),
                "itemData": item_data,
                "rendition": {"name": _PROFILES[match.group(1)], "href": href, "download": None}})
        order_data = _validate_custom_data(update.get("orderData", []), self._order_fields,
                                           "orderData", order["orderData"], "orderData" in update)
        admin_comment = self._text(update, "adminComment", "adminComment", order["adminComment"])
        expires = self._expiry(update, "expires", "expires", order["expires"])
        order.update(orderItems=items, orderData=order_data, adminComment=admin_comment,
                     expires=expires)

    @staticmethod
    def _text(body: dict, key: str, where: str, default: str) -> str:
        value = body.get(key, default)
        if value is not None and not isinstance(value, str):
            raise _HttpError(400, f"{where}: must be a string")
        return value or ""

    @staticmethod
    def _expiry(body: dict, key: str, where: str, default: str | None) -> str | None:
        if key not in body:
            return default
        if body[key] is None:
            return None
        try:
            return iso(parse_iso(body[key]))
        except (TypeError, ValueError, AttributeError):
            raise _HttpError(400, f"{where}: not an ISO 8601 date/time") from None
