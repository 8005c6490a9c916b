"""A faithful FotoWeb order-management server for tests, benchmarks and the CLI.

It speaks the wire protocol of vendor-docs/fotoware-*.txt and vendor-notes.md section 1,
the awkward parts included:

* client-credentials OAuth with a form-encoded body and short-lived bearer tokens
  (401 with an empty body for a missing, expired or revoked token);
* discovery through the full API descriptor (``GET /fotoweb/me/``); ``order.admin`` is
  null without the "Approve Orders" permission, and the admin endpoints then answer 403;
* vendor media types chosen by ``Accept`` (406 for anything else, ``*/*`` included);
* order lists newest first in pages of an odd size, linked by opaque ``paging.next`` URLs
  (``""`` on the last page, ``paging: null`` when one page holds everything). The token
  encodes a page *index*, as on a real server, so a list that shrinks while it is paged
  (approving shrinks ``pending``) makes a naive client skip orders;
* the custom verbs ``SUBMIT``, ``APPROVE`` and ``REJECT``; an update body *replaces*
  ``orderItems`` and ``orderData`` (leaving them out clears them);
* custom order data validated against the order configuration (400 ``{"message"}``).

Choices where the documentation is silent: ``adminComment`` and ``expires`` left out of an
update stay unchanged; a non-writable field may be sent back with its current value (so an
order read with GET can be echoed back); orders never expire by themselves; carts have
order ids (the two highest seeded ids) but never appear in lists and refuse every verb
(400). ``modified`` is written with milliseconds after a change and always moves forward,
even with a frozen clock.

Recording, faults, the rate limit, early-retry counting and the server lifecycle come from
``ordersync.simkit`` (vendor-agnostic); otherwise only the standard library, aiohttp and
orjson are used.
"""

from __future__ import annotations

import base64
import bisect
import calendar
import collections
import math
import random
import re
import secrets
import time
import uuid
from datetime import datetime
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from ordersync.simkit import (
    FAULT_KINDS,
    Effect,
    FaultPlan,
    RequestRecord,
    SeededOrders,
    SimulatorBase,
    parse_faults,
)
from ordersync.simkit import (
    HttpError as _HttpError,
)

TOKEN_PATH = "/fotoweb/oauth2/token"
CT_DESCRIPTOR = "application/vnd.fotoware.full-api-descriptor+json"
CT_ORDER_LIST = "application/vnd.fotoware.orderlist+json"
CT_ORDER_LIST_ALT = "application/vnd.fotoware.order-list+json"
CT_COUNT = "application/vnd.fotoware.count+json"
CT_ORDER = "application/vnd.fotoware.order+json"
CT_ORDER_UPDATE = "application/vnd.fotoware.order-update+json"
CT_ORDER_CONFIG = "application/vnd.fotoware.order-config+json"

STATES = ("created", "pending", "approved", "rejected", "expired", "cart")
MUTATING = frozenset({"PATCH", "SUBMIT", "APPROVE", "REJECT"})
BASE_TIME = calendar.timegm((2026, 6, 1, 0, 0, 0))     # created time of the newest seeded id
FIRST_ID = 10001
_SEED_WEIGHTS = {"created": 15, "pending": 30, "approved": 35, "rejected": 12, "expired": 8}
_CARTS = 2
_LISTS = {"history": "/fotoweb/orders/", "pending": "/fotoweb/orders/pending/",
          "approved": "/fotoweb/orders/approved/", "rejected": "/fotoweb/orders/rejected/"}

_ARCHIVES = ("5000-Images", "5001-Editorial", "5002-Marketing")
_FOLDERS = ("Folder", "Events/2026", "Products/Spring", "People/Staff")
_PROFILES = {"original": "Original", "preview-1024": "Web 1024px",
             "print-3000": "Print 3000px", "social-1080": "Social 1080px"}
_PROFILE_KEYS = tuple(_PROFILES)
_RENDITION_RE = re.compile(r"^/fotoweb/archives/(?:%s)/(?:%s)/IMG_\d{4}\.jpg\.info#(%s)$" % tuple(
    "|".join(map(re.escape, names)) for names in (_ARCHIVES, _FOLDERS, _PROFILES)))
_FIRST = ("Kari", "Ola", "Ingrid", "Lars", "Sofia", "Jonas", "Emma", "Henrik", "Nora", "Anders")
_LAST = ("Nordmann", "Berg", "Hansen", "Larsen", "Johansen", "Dahl", "Lie", "Strand")
_USER_COMMENTS = (
    "Needed for the spring campaign landing page and the printed brochure, thanks!",
    "Please include the high-resolution originals; the printer asked for 300 dpi files.",
    "For the annual report. Deadline is Friday, so a quick approval would be great.",
    "Social media series for the product launch week, credits will be given as usual.",
    "Replacement for images that expired last quarter, same usage as before.")
_ADMIN_COMMENTS = (
    "Approved for the stated usage only; contact the photo desk before any reuse.",
    "Rejected: the model release for two of these images does not cover advertising.",
    "Checked against the licence register, editorial and web use are fine.",
    "Please resubmit with a valid project code so that the cost can be allocated.")
_CAPTIONS = ("Harbour at dawn", "Team offsite, day two", "Spring collection flatlay",
             "CEO portrait, studio", "Product detail, brushed steel", "Crowd at the expo")


def iso(ts: float) -> str:
    """Format a POSIX time as ISO 8601 UTC with a "Z" suffix, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def iso_ms(millis: int) -> str:
    """Format milliseconds since the epoch as ISO 8601 UTC with milliseconds."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000))
    return f"{seconds}.{millis % 1000:03d}Z"


def parse_iso(text: str) -> float:
    """Parse an ISO 8601 date/time (a naive one counts as UTC) into a POSIX time."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return calendar.timegm(parsed.timetuple()) + parsed.microsecond / 1e6
    return parsed.timestamp()


# --------------------------------------------------------------------------- custom order data

def _field(rng: random.Random, label: str, type_: str, **opts: Any) -> dict:
    """One order-config field with every documented attribute present."""
    return {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "type": type_,
            "label": label, "writable": opts.get("writable", True),
            "required": opts.get("required", False),
            "multiValue": opts.get("multiValue", False), "multiLine": opts.get("multiLine", False),
            "validation": {key: opts.get(key, [] if key == "values" else None) for key in (
                "maxLength", "max", "min", "regex", "taxonomy", "values", "helpText")}}


def build_order_config(seed: int) -> dict:
    """The site's custom order field configuration; field ids are fixed by ``seed``."""
    rng = random.Random(f"fotoware-order-config-{seed}")
    return {
        "orderFields": [
            _field(rng, "Project code", "text", required=True, regex=r"^[A-Z]{3}-\d{4}$",
                   maxLength=8, helpText="Three capitals, a dash and four digits: MKT-0042"),
            _field(rng, "Budget", "text", min=0, max=5000, helpText="Budget in EUR (0 to 5000)"),
            _field(rng, "Rush", "checkbox"),
            _field(rng, "Channel", "dropdown", values=["Print", "Web", "Broadcast"]),
            _field(rng, "Internal note", "text", writable=False, multiLine=True),
        ],
        "itemFields": [
            _field(rng, "Usage", "dropdown", multiValue=True,
                   values=["Editorial", "Advertising", "Social media", "Internal"],
                   taxonomy={"href": "/fotoweb/taxonomies/usage", "strict": False}),
            _field(rng, "Caption", "text", maxLength=40),
        ],
    }


def _validate_custom_data(data: Any, fields: dict[str, dict], where: str,
                          current: list[dict], check_required: bool) -> list[dict]:
    """Check ``orderData``/``itemData`` against the field configuration.

    Returns the normalised list or raises 400 with ``"<label>: <what is wrong>"``.
    ``current`` is the stored data, against which non-writable fields are compared.
    """
    if not isinstance(data, list):
        raise _HttpError(400, f'{where}: must be a list of {{"id", "value"}} objects')
    stored = {d["id"]: d["value"] for d in current}
    seen: dict[str, Any] = {}
    for i, entry in enumerate(data):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), str) and "value" in entry):
            raise _HttpError(400, f'{where}[{i}]: each entry needs an "id" and a "value"')
        field = fields.get(entry["id"])
        if field is None:
            raise _HttpError(400, f"{where}[{i}]: unknown field id {entry['id']!r}")
        label, value = field["label"], entry["value"]
        if entry["id"] in seen:
            raise _HttpError(400, f"{label}: given more than once")
        if not field["writable"] and stored.get(entry["id"], object()) != value:
            raise _HttpError(400, f"{label}: field is not writable")
        if field["type"] == "checkbox":
            if type(value) is not bool:
                raise _HttpError(400, f"{label}: value must be true or false")
        elif field["multiValue"]:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _HttpError(400, f"{label}: value must be a list of strings (multi-value)")
            for text in value:
                _check_text(label, text, field["validation"])
        elif isinstance(value, str):
            _check_text(label, value, field["validation"])
        else:
            raise _HttpError(400, f"{label}: value must be a string")
        seen[entry["id"]] = value
    if check_required:
        for field in fields.values():
            if field["required"] and seen.get(field["id"]) in (None, "", []):
                raise _HttpError(400, f"{field['label']}: a value is required")
    return [{"id": key, "value": value} for key, value in seen.items()]


def _check_text(label: str, text: str, rules: dict) -> None:
    """Validate one string: against the value list if any, else length, range and regex."""
    if rules["values"]:
        if text not in rules["values"]:
            raise _HttpError(400, f"{label}: {text!r} is not one of {', '.join(rules['values'])}")
        return  # "Other validation settings are ignored."
    if rules["maxLength"] is not None and len(text) > rules["maxLength"]:
        raise _HttpError(400, f"{label}: longer than {rules['maxLength']} characters")
    if rules["min"] is not None or rules["max"] is not None:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _HttpError(400, f"{label}: {text!r} is not a number")
        if rules["min"] is not None and number < rules["min"]:
            raise _HttpError(400, f"{label}: must be at least {rules['min']}")
        if rules["max"] is not None and number > rules["max"]:
            raise _HttpError(400, f"{label}: must be at most {rules['max']}")
    if rules["regex"] is not None and not re.search(rules["regex"], text):
        hint = f" ({rules['helpText']})" if rules["helpText"] else ""
        raise _HttpError(400, f"{label}: {text!r} does not match {rules['regex']}{hint}")


# --------------------------------------------------------------------------- the server

class FotowareSimulator(SimulatorBase):
    """An in-memory FotoWeb site with seeded orders, served by aiohttp.

    Seeded orders exist as (id, created, state) from the start; their bodies are generated
    deterministically from (seed, id) on first use (about 20 us each; ``warm()`` does all)
    and cached as serialised bytes, from which list pages are joined. A changed order is
    also kept as a live dict and its bytes are rebuilt on the next read.
    """

    MUTATING = MUTATING
    GUARDED_PREFIXES = ("/fotoweb/oauth2",)     # faults only when a rule names the token path
    REDACT_HEADERS = {"authorization": "Bearer <redacted>"}
    MALFORMED_FALLBACK = (b'{"href": "/fotoweb/orders/", "state": "approved"}', CT_ORDER)
    PYTHON_PARSER = True                          # SUBMIT, APPROVE and REJECT

    def __init__(self, *, orders: int = 60, seed: int = 1, page_size: int = 37,
                 client_id: str = "ordersync", client_secret: str = "sim-secret",
                 token_ttl_s: float = 300.0, admin: bool = True,
                 clock: Callable[[], float] = time.time):
        super().__init__(clock=clock)
        self.seed, self.page_size = seed, page_size
        self.client_id, self.client_secret = client_id, client_secret
        self.token_ttl_s, self.admin = token_ttl_s, admin
        self.endless_paging = False   # a fault: the last page links to itself, new link each time
        self._nonce = 0
        self._tokens: dict[str, float] = {}  # token -> expiry (simulator clock)
        self.config = build_order_config(seed)
        self._config_bytes = orjson.dumps(self.config)
        self._order_fields = {f["id"]: f for f in self.config["orderFields"]}
        self._item_fields = {f["id"]: f for f in self.config["itemFields"]}
        self._seed_orders(orders)
        self.app = self._build_app()

    # ------------------------------------------------------------------ order state
    def _seed_orders(self, count: int) -> None:
        """Ids, created times (spaced back from BASE_TIME) and states; carts come last."""
        rng = random.Random(self.seed)
        self._ids = list(range(FIRST_ID, FIRST_ID + count + _CARTS))   # ascending = oldest first
        self._created: dict[int, int] = {}
        t = BASE_TIME
        for oid in reversed(self._ids):
            self._created[oid] = t
            t -= rng.randint(300, 5400)
        states = rng.choices(list(_SEED_WEIGHTS), list(_SEED_WEIGHTS.values()), k=count)
        self._states = dict(zip(self._ids, states + ["cart"] * _CARTS, strict=True))
        # Ascending ids per state and for "history" (all but carts), kept sorted with bisect.
        self._lists: dict[str, list[int]] = collections.defaultdict(list)
        for oid, state in self._states.items():
            self._lists[state].append(oid)
        self._lists["history"] = self._ids[:count]
        self._store = SeededOrders(self._generate)

    def _order(self, oid: int) -> dict:
        """The live, changeable representation of an order."""
        return self._store.order(oid)

    def _generate(self, oid: int) -> dict:
        """Build a seeded order, drawing only ``random()`` (much faster than ``choice``)."""
        state, created = self._states[oid], self._created[oid]
        rnd = random.Random(self.seed * 1_000_003 + oid).random

        def pick(options: tuple | list) -> Any:
            return options[int(rnd() * len(options))]

        fields = self.config["orderFields"]
        order_data = [
            {"id": fields[0]["id"], "value": f"{pick(('MKT', 'EDT', 'WEB', 'PRS'))}-"
                                             f"{int(rnd() * 10000):04d}"},
            {"id": fields[1]["id"], "value": str(50 * int(rnd() * 101))},
            {"id": fields[2]["id"], "value": rnd() < 0.2},
            {"id": fields[3]["id"], "value": pick(("Print", "Web", "Broadcast"))}]
        if rnd() < 0.3:
            order_data.append({"id": fields[4]["id"], "value": "Invoice via cost centre 4410."})
        expires = None
        if state == "expired":
            expires = iso(created + 7 * 86400)
        elif state == "approved" and rnd() < 0.6:
            expires = iso(created + 90 * 86400)
        usage, caption = self.config["itemFields"]
        uses = usage["validation"]["values"]
        items, draw = [], rnd()
        for index in range(1 if draw < 0.56 else 2 if draw < 0.85 else 3 if draw < 0.95 else 4):
            profile = pick(_PROFILE_KEYS)
            asset = (f"/fotoweb/archives/{pick(_ARCHIVES)}/{pick(_FOLDERS)}/"
                     f"IMG_{1 + int(rnd() * 9999):04d}.jpg.info")
            use = int(rnd() * len(uses))
            item_data = [{"id": usage["id"], "value": [uses[use]] if rnd() < 0.5
                          else [uses[use], uses[(use + 1) % len(uses)]]}]
            if rnd() < 0.5:
                item_data.append({"id": caption["id"], "value": pick(_CAPTIONS)})
            items.append({
                "adminComment": "Cleared for editorial use only." if rnd() < 0.2 else "",
                "asset": asset, "expires": expires, "expired": state == "expired",
                "itemData": item_data,
                "rendition": {"name": _PROFILES[profile], "href": f"{asset}#{profile}",
                              "download": self._download(oid, index, state)}})
        decided = state in ("approved", "rejected", "expired")
        modified = min(created + int(rnd() * 3 * 86400), max(created, BASE_TIME))
        first, last = pick(_FIRST), pick(_LAST)
        user = f"{first}.{last}".lower()
        return {
            "href": f"/fotoweb/orders/{oid}", "created": iso(created),
            "modified": iso(modified if decided else created), "state": state,
            "expires": expires, "orderItems": items, "orderData": order_data,
            "orderReference": f"ORD-{oid}",
            "checkoutPageLocation": (f"https://shop.example.com/checkout/ORD-{oid}"
                                     if rnd() < 0.5 else None),
            "adminComment": pick(_ADMIN_COMMENTS) if decided else "",
            "userComment": pick(_USER_COMMENTS),
            "owner": {"userName": user, "fullName": f"{first} {last}",
                      "email": f"{user}@example.com", "href": f"/fotoweb/users/{user}"}}

    @staticmethod
    def _download(oid: int, index: int, state: str) -> str | None:
        """An item's download link: only approved orders have one."""
        return f"/fotoweb/me/orders/{oid}/items/{index}/download" if state == "approved" else None

    def _serialized(self, oid: int) -> bytes:
        if self.planted and oid in self.planted:
            return self.planted[oid]
        return self._store.serialized(oid)

    def _changed(self, oid: int, state: str | None = None) -> None:
        """After a change: a later ``modified``, no cached bytes, and the state's lists."""
        order = self._order(oid)
        previous = round(parse_iso(order["modified"]) * 1000)
        order["modified"] = iso_ms(max(math.floor(self._clock() * 1000), previous + 1))
        self._store.changed(oid)
        old = self._states[oid]
        if state is None or state == old:
            return
        self._move(oid, old, state)
        if state == "cart":
            self._move(oid, "history", None)
        elif old == "cart":
            self._move(oid, None, "history")
        self._states[oid] = order["state"] = state
        for index, item in enumerate(order["orderItems"]):
            item["rendition"]["download"] = self._download(oid, index, state)

    def _move(self, oid: int, source: str | None, target: str | None) -> None:
        """Move an id from one sorted id list to another."""
        if source is not None:
            ids = self._lists[source]
            del ids[bisect.bisect_left(ids, oid)]
        if target is not None:
            bisect.insort(self._lists[target], oid)

    def _known(self, order_id: str | int) -> int:
        oid = int(order_id)
        if oid not in self._states:
            raise KeyError(order_id)
        return oid

    # ------------------------------------------------------------------ test helpers
    def order_ids(self) -> list[str]:
        """Ids of the orders in the history list (carts excluded), newest first."""
        return [str(i) for i in reversed(self._lists["history"])]

    def cart_ids(self) -> list[str]:
        return [str(i) for i in reversed(self._lists["cart"])]

    def get_order(self, order_id: str) -> dict:
        """A copy of an order's current representation (KeyError when unknown)."""
        return orjson.loads(self._serialized(self._known(order_id)))

    def add_order(self, state: str = "pending") -> str:
        """Add a new newest order (created now, or just after the newest); returns its id."""
        oid = self._ids[-1] + 1
        self._created[oid] = max(int(self._clock()), self._created[self._ids[-1]] + 1)
        self._ids.append(oid)
        self._states[oid] = state
        self._move(oid, None, state)
        if state != "cart":
            self._move(oid, None, "history")
        order = self._order(oid)
        order["modified"] = order["created"]
        return str(oid)

    def set_state(self, order_id: str, state: str) -> None:
        """Any string goes: a state no doc mentions (e.g. "on-hold") shows in history only."""
        self._changed(self._known(order_id), state)

    def touch(self, order_id: str, **changes: Any) -> None:
        """Change top-level fields of an order, e.g. ``touch(id, adminComment="x")``."""
        oid = self._known(order_id)
        order = self._order(oid)
        for key, value in changes.items():
            if key not in order or key in ("href", "created", "modified", "state"):
                raise ValueError(f"touch() cannot change {key!r}")
            order[key] = value
        self._changed(oid)

    def warm(self) -> None:
        """Generate and serialise every order now (about 40 us each), e.g. before a benchmark."""
        for oid in self._ids:
            self._serialized(oid)

    def revoke_tokens(self) -> None:
        self._tokens.clear()

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

async def serve(host: str, port: int, **kwargs: Any) -> None:
    """Run a simulator on ``host:port`` until cancelled."""
    await FotowareSimulator.serve(host, port, **kwargs)


__all__ = ["CT_COUNT", "CT_DESCRIPTOR", "CT_ORDER", "CT_ORDER_CONFIG", "CT_ORDER_LIST",
           "CT_ORDER_LIST_ALT", "CT_ORDER_UPDATE", "FAULT_KINDS", "MUTATING", "TOKEN_PATH",
           "Effect", "FaultPlan", "FotowareSimulator", "RequestRecord", "build_order_config",
           "iso", "iso_ms", "parse_faults", "parse_iso", "serve"]
