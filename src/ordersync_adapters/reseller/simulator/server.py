"""The reseller simulator as a server: routes, the password-grant token endpoint, the
API-version and bearer checks, the Free Edition, the rate limit's 403, and the endpoints."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import orjson
from aiohttp import web

from ordersync.simkit import HttpError, _Fault

from .account import ACCOUNTS, FIELDS, TOKEN_PATH, UNCONFIRMED, Account
from .query import _sort_key, parse_filter

ORDER = "/api/orders/{oid}"
ROUTES = (  # (method, path, handler)
    ("POST", TOKEN_PATH, "_token"), ("GET", "/api/orders", "_list"),
    ("POST", "/api/orders", "_create"), ("GET", ORDER, "_get"),
    ("GET", ORDER + "/items", "_get_items"), ("POST", ORDER + "/items", "_post_item"),
    ("GET", ORDER + "/items/{iid}", "_get_item"),
    ("DELETE", ORDER + "/items/{iid}", "_delete_item"),
    ("POST", ORDER + "/checkout", "_checkout"), ("GET", ORDER + "/execute/status", "_execution"),
    ("GET", ORDER + "/customfields", "_get_fields"),
    ("PUT", ORDER + "/customfields", "_put_fields"),
    ("GET", ORDER + "/items/{iid}/characteristics", "_get_chars"),
    ("PUT", ORDER + "/items/{iid}/characteristics", "_put_chars"),
)
DENIED = "Authorization has been denied for this request."
RATE_LIMITED = "Rate limit exceeded"


class ResellerSimulator(Account):
    """One organisation with seeded orders, served by aiohttp; ``.orders`` keyed by int id
    (the state: :class:`.account.Account`)."""

    GUARDED_PREFIXES = (TOKEN_PATH,)
    REDACT_HEADERS = {"authorization": "<redacted>"}

    # ------------------------------------------------------------------ plumbing
    def _routes(self, app: web.Application) -> None:
        for method, path, handler in ROUTES:
            app.router.add_route(method, path, getattr(self, handler))

    def _authorize(self, request: web.Request) -> None:
        if not request.path.startswith("/api/"):
            return
        if request.headers.get("X-Api-Version") != "3.0":
            raise HttpError(400, "This organisation answers API v1 without X-Api-Version: 3.0")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self.tokens.get(token, -1.0) <= self._clock():
            raise HttpError(401, DENIED)
        if self.edition == "Free" and request.method != "GET":
            raise HttpError(403, "The Free Edition may not perform this action")
        self.advance()

    def _rate_fault(self, at: float) -> _Fault:
        return _Fault("status", status=403, retry_after=None)

    def _fault_body(self, status: int) -> bytes:
        if status == 403:
            return orjson.dumps({"message": RATE_LIMITED})
        return super()._fault_body(status)

    def _ok(self, body: Any, status: int = 200) -> web.Response:
        return self._json(orjson.dumps(body), status=status)

    async def _body(self, request: web.Request) -> Any:
        try:
            return orjson.loads(await request.read() or b"null")
        except orjson.JSONDecodeError:
            raise HttpError(400, "The request body is not valid JSON") from None

    def _order(self, request: web.Request, *, draft: bool = False) -> int:
        try:
            oid = int(request.match_info["oid"])
        except ValueError:
            raise HttpError(404, "Order not found") from None
        if oid not in self.orders:
            raise HttpError(404, "Order not found")
        if draft and self.orders[oid]["status"] != "Draft":
            raise HttpError(400, f"Order {oid} is {self.orders[oid]['status']}: only Draft"
                                 " orders can be changed")
        return oid

    def _item(self, request: web.Request, oid: int) -> dict:
        item = self.items[oid].get(int(request.match_info["iid"])
                                   if request.match_info["iid"].isdigit() else -1)
        if item is None:
            raise HttpError(404, "Order item not found")
        return item

    # ------------------------------------------------------------------ endpoints
    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if "client_secret" in form or "client_id" in form:
            raise HttpError(400, "invalid_client: send the client key and secret as Basic auth")
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            key, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            key = secret = ""
        if scheme.lower() != "basic" or (key, secret) != (self.client_key, self.client_secret):
            raise HttpError(401, "invalid_client")
        if form.get("grant_type") != "password" or (form.get("username"), form.get("password")) \
                != (self.username, self.password):
            raise HttpError(400, "invalid_grant: the user name or password is incorrect")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self._clock() + self.token_lifetime_s
        self.tokens_issued += 1
        return self._ok({"access_token": token, "token_type": "bearer",
                         "expires_in": int(self.token_lifetime_s)})

    async def _list(self, request: web.Request) -> web.Response:
        query = request.query
        stage = query.get("stage", "Confirmed")
        if stage not in ("Confirmed", "Draft", "All"):
            raise HttpError(400, f"Unknown stage {stage}: Confirmed, Draft or All")
        try:
            index = int(query.get("pageIndex", "1"))
            size = min(int(query.get("pageSize", "25")), self.max_page_size)
            keep = parse_filter(query["$filter"]) if query.get("$filter") else None
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        if index < 1 or size < 1:
            raise HttpError(400, "pageIndex and pageSize must be at least 1")
        orders = [self.order_view(oid) for oid in sorted(self.orders)]
        if stage == "Draft":
            orders = [o for o in orders if o["status"] == "Draft"]
        elif stage == "Confirmed":
            orders = [o for o in orders if o["status"] not in UNCONFIRMED]
        if keep is not None:
            orders = [o for o in orders if keep(o)]
        if query.get("$orderby"):
            field, _, direction = query["$orderby"].strip().partition(" ")
            if field not in FIELDS or direction.strip() not in ("", "asc", "desc"):
                raise HttpError(400, f"Unsupported $orderby: {query['$orderby']}")
            orders.sort(key=lambda o: _sort_key(o.get(field), field),
                        reverse=direction.strip() == "desc")
        page = orders[(index - 1) * size:index * size]
        return self._ok({"data": page, "pageIndex": index, "pageSize": size,
                         "totalCount": len(orders)})

    async def _create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict) or not body.get("accountId"):
            raise HttpError(400, "AccountId is required")
        account = next((n for n, (aid, _) in enumerate(ACCOUNTS) if aid == body["accountId"]),
                       None)
        if account is None:
            raise HttpError(400, f"Account {body['accountId']} not found")
        oid = self.add_order(status="Draft", account=account)
        self._effect("CREATE", oid, body)
        return self._ok(self.order_view(oid), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        return self._ok(self.order_view(self._order(request)))

    def _item_view(self, item: dict) -> dict:
        return {k: v for k, v in item.items() if k != "characteristics"}

    async def _get_items(self, request: web.Request) -> web.Response:
        oid = self._order(request)
        return self._ok([self._item_view(i) for i in self.items[oid].values()])

    async def _get_item(self, request: web.Request) -> web.Response:
        oid = self._order(request)
        return self._ok(self._item_view(self._item(request, oid)))

    async def _post_item(self, request: web.Request) -> web.Response:
        oid = self._order(request, draft=True)
        body = await self._body(request)
        if not isinstance(body, dict) or not body.get("productId"):
            raise HttpError(400, "ProductId is required")
        quantity = body.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise HttpError(400, "Quantity must be a positive whole number")
        item = self._add_item(oid, {**body, "quantity": quantity})
        self._touch(oid)
        self._effect("ADD_ITEM", oid, body)
        return self._ok(self._item_view(item), status=201)

    async def _delete_item(self, request: web.Request) -> web.Response:
        oid = self._order(request, draft=True)
        item = self._item(request, oid)
        del self.items[oid][item["id"]]
        self._touch(oid)
        self._effect("DELETE_ITEM", oid, item["id"])
        return web.Response(status=204)

    async def _checkout(self, request: web.Request) -> web.Response:
        oid = self._order(request, draft=True)
        if not self.items[oid]:
            raise HttpError(400, "The order has no items and cannot be executed")
        order = self.orders[oid]
        order.update(status="Submitted", expirationDate=None)
        self._execute(oid, self._clock(), fail=oid in self.fail_execution)
        self._touch(oid)
        self._effect("CHECKOUT", oid, None)
        return self._ok({"orderId": oid, "status": "InProgress"})

    async def _execution(self, request: web.Request) -> web.Response:
        oid = self._order(request)
        if self.orders[oid]["status"] in UNCONFIRMED:
            raise HttpError(400, "The execution status is available for confirmed orders only")
        execution = self.executions.get(oid, {"status": "Completed", "message": None})
        return self._ok({"orderId": oid, "status": execution["status"],
                         "message": execution["message"]})

    async def _get_fields(self, request: web.Request) -> web.Response:
        return self._ok(self.custom_fields[self._order(request)])

    async def _put_fields(self, request: web.Request) -> web.Response:
        oid = self._order(request, draft=True)
        body = await self._body(request)
        fields = {f["id"]: f for f in self.custom_fields[oid]}
        if not isinstance(body, list) or not all(
                isinstance(f, dict) and f.get("id") in fields for f in body):
            raise HttpError(400, "Expected a list of {id, value} of this order's custom fields")
        for entry in body:
            fields[entry["id"]]["value"] = entry.get("value")
        self._touch(oid)
        self._effect("SET_FIELDS", oid, body)
        return self._ok(self.custom_fields[oid])

    async def _get_chars(self, request: web.Request) -> web.Response:
        oid = self._order(request)
        return self._ok(self._item(request, oid)["characteristics"])

    async def _put_chars(self, request: web.Request) -> web.Response:
        oid = self._order(request, draft=True)
        item = self._item(request, oid)
        body = await self._body(request)
        known = {c["code"]: c for c in item["characteristics"]}
        if not isinstance(body, list) or not all(
                isinstance(c, dict) and c.get("code") in known for c in body):
            raise HttpError(400, "Expected a list of {code, value} of this item's"
                                 " characteristics")
        for entry in body:
            known[entry["code"]]["value"] = entry.get("value")
        self._touch(oid)
        self._effect("SET_CHARACTERISTICS", oid, body)
        return self._ok(item["characteristics"])
