"""A reseller API V3 server (interworks.cloud white-label resellers) for tests, benchmarks
and the CLI, speaking vendor-docs/reseller-api-v3-orders.txt and vendor-notes.md section 3:

* ``POST /oauth/token``: the password grant, the client key and secret only as HTTP Basic
  auth (in the form they are a 400 ``invalid_client``), ``expires_in`` = ``token_lifetime_s``;
  every ``/api/`` call needs ``Authorization: Bearer`` with a live token (else 401) and
  ``X-Api-Version: 3.0`` (else 400: this organisation would answer as API v1).
* ``GET /api/orders``: ``stage`` Confirmed (the default), Draft or All; ``pageIndex``
  (from 1) and ``pageSize`` (25 by default, at most ``max_page_size``) ->
  ``{"data", "pageIndex", "pageSize", "totalCount"}``; ``$filter`` (``f eq 'x'``,
  ``f eq 1``, ``f gt datetime'yyyy-MM-dd'``, ``contains(f,'x')``, joined by ``and``) and
  ``$orderby=f asc|desc``; anything else is a 400.
* orders, items, ``checkout``, ``execute/status``, ``customfields`` and item
  ``characteristics`` as the page lists them (characteristics are written with ``PUT``).
  Writes to an order that is not a Draft, a create without ``accountId`` and a checkout of
  an empty draft are 400 ``{"message"}``; ``execute/status`` of an unconfirmed order is 400.
* **Free Edition** (``edition="Free"``): every write is 403.
* **Rate limit** (``rate_limit=(n, per_s)``): 403 ``{"message": "Rate limit exceeded"}``
  without Retry-After, as this vendor does; an injected ``403`` fault answers the same.

Time-driven behaviour on the simulator clock, applied whenever a request arrives:

* a draft is deleted once its ``expirationDate`` (``orderDate`` + 7 days) has passed;
* a checkout makes the order Submitted with an execution InProgress; ``execution_s`` later
  the execution is Completed and the order Executed, or, for an order in
  ``fail_execution``, Failed with a message and the order stays Submitted (and its
  ``updatedAt`` does not move: a poller must read the execution to learn it).

Only the standard library, aiohttp, orjson and ``ordersync.simkit`` are used.
"""

from __future__ import annotations

import base64
import math
import random
import re
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
from aiohttp import web

from ordersync.simkit import HttpError, SimulatorBase, _Fault

DAY = 86400
DRAFT_LIFETIME_S = 7 * DAY
TOKEN_PATH = "/oauth/token"
STATUSES = ("Draft", "Submitted", "Executed", "Canceled", "Reseller Pending Approval",
            "Cancelled by Reseller")
UNCONFIRMED = ("Draft", "Reseller Pending Approval", "Cancelled by Reseller")
CUSTOM_STATUS = "Awaiting Credit Check"   # an organisation's own status in the seeded data
FIELDS = ("id", "code", "accountId", "accountName", "status", "orderDate", "expirationDate",
          "currency", "paymentMethod", "totalAmount", "createdAt", "updatedAt")
PRODUCTS = (("MS-365-BP", "Microsoft 365 Business Premium", 22.0),
            ("MS-365-BB", "Microsoft 365 Business Basic", 6.0),
            ("ACR-BACKUP", "Acronis Cyber Backup", 9.5),
            ("AZ-PLAN", "Azure plan", 0.0))
ACCOUNTS = (("ACC-1001", "Northwind Traders"), ("ACC-1002", "Contoso Ltd"),
            ("ACC-1003", "Fabrikam Inc"), ("ACC-1004", "Adventure Works"))
CUSTOM_FIELDS = ((1, "PO Number"), (2, "Cost Centre"))
CHARACTERISTICS = ((11, "domain", "Domain"), (12, "tenant", "Tenant name"))
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
FILTER_TERM = re.compile(
    r"^\s*(?:(?P<field>\w+)\s+(?P<op>eq|gt)\s+"
    r"(?P<value>datetime'[^']*'|'(?:[^']|'')*'|-?\d+(?:\.\d+)?)"
    r"|contains\((?P<cfield>\w+)\s*,\s*'(?P<needle>(?:[^']|'')*)'\))\s*$")


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _when(text: str) -> float:
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def _sort_key(value: Any, field: str) -> tuple:
    """Nulls first, then dates and numbers by value, then anything else as text."""
    if value is None:
        return (0, 0.0, "")
    if field.endswith(("At", "Date")) and isinstance(value, str):
        return (1, _when(value), "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def parse_filter(expression: str) -> Callable[[dict], bool]:
    """The OData subset the vendor documents, as a predicate; a ValueError otherwise."""
    tests = []
    for term in re.split(r"\s+and\s+", expression.strip()):
        match = FILTER_TERM.match(term)
        if not match:
            raise ValueError(f"unsupported $filter term: {term}")
        if match["cfield"]:
            field, needle = match["cfield"], match["needle"].replace("''", "'")
            tests.append(lambda o, f=field, n=needle: n.lower() in str(o.get(f) or "").lower())
            continue
        field, op, value = match["field"], match["op"], match["value"]
        wanted: Any
        get: Callable[[dict], Any]
        if value.startswith("datetime'"):
            wanted = _when(value[9:-1])

            def get(o: dict, f: str = field) -> Any:
                return _when(o[f]) if o.get(f) else None
        elif value.startswith("'"):
            wanted = value[1:-1].replace("''", "'")

            def get(o: dict, f: str = field) -> Any:
                return str(o.get(f))
        else:
            wanted = float(value)

            def get(o: dict, f: str = field) -> Any:
                return o.get(f)
        if op == "eq":
            tests.append(lambda o, g=get, w=wanted: g(o) == w)
        else:
            tests.append(lambda o, g=get, w=wanted: g(o) is not None and g(o) > w)
    return lambda order: all(test(order) for test in tests)


class ResellerSimulator(SimulatorBase):
    """One organisation with seeded orders; ``.orders`` keyed by int id."""

    GUARDED_PREFIXES = (TOKEN_PATH,)
    REDACT_HEADERS = {"authorization": "<redacted>"}

    def __init__(self, *, orders: int = 60, seed: int = 1, clock: Callable[[], float] = time.time,
                 edition: str = "Standard", client_key: str = "sim-client-key",
                 client_secret: str = "sim-client-secret", username: str = "api@reseller.example",
                 password: str = "sim-password", token_lifetime_s: float = 3600.0,
                 execution_s: float = 300.0, max_page_size: int = 100,
                 rate_limit: tuple[int, float] | None = None) -> None:
        super().__init__(clock=clock, rate_limit=rate_limit)
        self.edition = edition
        self.client_key, self.client_secret = client_key, client_secret
        self.username, self.password = username, password
        self.token_lifetime_s = token_lifetime_s
        self.execution_s = execution_s
        self.max_page_size = max_page_size
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.orders: dict[int, dict] = {}
        self.items: dict[int, dict[int, dict]] = {}
        self.custom_fields: dict[int, list[dict]] = {}
        self.executions: dict[int, dict] = {}
        self.fail_execution: set[int] = set()
        self.deleted: list[int] = []
        self._next_due = math.inf
        self._next_id, self._next_item = 5001, 90001
        self._rnd = random.Random(seed)
        now = self._clock()
        for n in range(orders):
            self._seed(now - (orders - n) * 3600)
        self.app = self._build_app()

    # ------------------------------------------------------------------ data
    def _seed(self, created: float) -> None:
        rnd = self._rnd
        status = rnd.choices(STATUSES + (CUSTOM_STATUS,), (20, 15, 40, 8, 8, 4, 5))[0]
        if status == "Draft":
            created = self._clock() - rnd.uniform(0, 5 * DAY)
        oid = self.add_order(status=status, items=rnd.randint(1, 3), at=created,
                             account=rnd.randrange(len(ACCOUNTS)))
        self._touch(oid, created)
        if status == "Submitted":
            self._execute(oid, created, fail=rnd.random() < 0.25)

    def add_order(self, *, status: str = "Draft", items: int = 0, at: float | None = None,
                  account: int = 0) -> int:
        """A new order (by the portal, not the API) dated ``at`` (its orderDate; the
        default is now) and stamped updated now: its id."""
        at = self._clock() if at is None else at
        oid, self._next_id = self._next_id, self._next_id + 1
        account_id, name = ACCOUNTS[account % len(ACCOUNTS)]
        self.orders[oid] = {
            "id": oid, "code": f"ORD-{oid}", "accountId": account_id, "accountName": name,
            "status": status, "orderDate": stamp(at),
            "expirationDate": stamp(at + DRAFT_LIFETIME_S) if status == "Draft" else None,
            "currency": "EUR", "paymentMethod": "Invoice", "totalAmount": 0.0,
            "createdAt": stamp(at), "updatedAt": stamp(at),
        }
        if status == "Draft":
            self._due(at + DRAFT_LIFETIME_S)
        self.items[oid] = {}
        self.custom_fields[oid] = [{"id": fid, "name": name, "value": None}
                                   for fid, name in CUSTOM_FIELDS]
        for n in range(items):
            self._add_item(oid, {"productId": PRODUCTS[n % len(PRODUCTS)][0], "quantity": n + 1})
        self._touch(oid)
        return oid

    def _add_item(self, oid: int, fields: dict) -> dict:
        product = next((p for p in PRODUCTS if p[0] == fields["productId"]),
                       (fields["productId"], str(fields["productId"]), 1.0))
        iid, self._next_item = self._next_item, self._next_item + 1
        quantity = fields.get("quantity", 1)
        item = {"id": iid, "orderId": oid, "productId": product[0], "productName": product[1],
                "billingPlanId": fields.get("billingPlanId", f"{product[0]}-M"),
                "quantity": quantity, "subscriptionId": None, "unitPrice": product[2],
                "total": round(product[2] * quantity, 2), "deliveryStatus": "Pending",
                "characteristics": [{"id": cid, "code": code, "name": name, "value": None,
                                     "externalId": f"ext-{cid}", "valueExternal": None}
                                    for cid, code, name in CHARACTERISTICS]}
        self.items[oid][iid] = item
        return item

    def _execute(self, oid: int, at: float, *, fail: bool) -> None:
        self.executions[oid] = {"status": "InProgress", "due": at + self.execution_s,
                                "fail": fail, "message": None}
        self._due(at + self.execution_s)

    def _touch(self, oid: int, at: float | None = None) -> None:
        order = self.orders[oid]
        order["totalAmount"] = round(sum(i["total"] for i in self.items[oid].values()), 2)
        order["updatedAt"] = stamp(self._clock() if at is None else at)

    def set_status(self, order_id: int | str, status: str) -> None:
        """Someone changes an order's status in the portal (custom statuses included)."""
        oid = int(order_id)
        self.orders[oid]["status"] = status
        self._touch(oid)

    def _due(self, at: float) -> None:
        """Something happens at ``at`` (a draft expires, an execution ends)."""
        self._next_due = min(self._next_due, at)

    def advance(self) -> None:
        """Apply what the clock says happened: expired drafts deleted, executions done."""
        now = self._clock()
        if now < self._next_due:
            return
        self._next_due = math.inf
        for oid, order in list(self.orders.items()):
            if order["status"] != "Draft":
                continue
            if _when(order["expirationDate"]) > now:
                self._due(_when(order["expirationDate"]))
                continue
            del self.orders[oid]
            self.deleted.append(oid)
            self._effect("EXPIRE", oid, None)
        for oid, execution in self.executions.items():
            if execution["status"] != "InProgress" or oid not in self.orders:
                continue
            if execution["due"] > now:
                self._due(execution["due"])
                continue
            if execution["fail"]:
                execution.update(status="Failed", message="Provisioning failed at the vendor")
            else:
                execution["status"] = "Completed"
                self.orders[oid]["status"] = "Executed"
                self._touch(oid, execution["due"])

    def order_view(self, oid: int) -> dict:
        return {k: self.orders[oid].get(k) for k in FIELDS}

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


__all__ = ["ResellerSimulator", "parse_filter", "stamp"]
