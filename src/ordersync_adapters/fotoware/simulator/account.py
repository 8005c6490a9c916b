"""The FotoWeb simulator's site as state: media types and constants, seeded orders (generated
from (seed, id) when first read), the state lists they are paged from, their changes, and
the controls tests and benchmarks use."""

from __future__ import annotations

import bisect
import calendar
import collections
import math
import random
import re
import time
from datetime import datetime
from typing import Any, Callable

import orjson

from ordersync.simkit import SeededOrders, SimulatorBase

from .orderdata import build_order_config

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


class Account(SimulatorBase):
    """An in-memory FotoWeb site with seeded orders, as state (no HTTP here).

    Seeded orders exist as (id, created, state) from the start; their bodies are generated
    deterministically from (seed, id) on first use (about 20 us each; ``warm()`` does all)
    and cached as serialised bytes, from which list pages are joined. A changed order is
    also kept as a live dict and its bytes are rebuilt on the next read.
    """

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
