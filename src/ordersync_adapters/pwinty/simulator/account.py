"""The Pwinty simulator's account: its orders and photos as state, without HTTP.

Seeded orders are generated from (seed, id) when first read; prices, shipments, photo
downloads and the lab's progress follow from the simulator's clock, applied lazily when an
order is read (see the package docstring for the rules).
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable

import orjson
from aiohttp import web

from ordersync.simkit import HttpError, SeededOrders, SimulatorBase

from .catalogue import (
    _ATTRIBUTES,
    _ITEMS,
    _SHIPPING,
    BASE_TIME,
    COUNTRIES,
    DAY,
    EMPTY_ORDER,
    FIRST_ID,
    ORDER_GAP_S,
    ORDER_NOT_FOUND,
    _day,
    _md5,
    catalogue_item,
    download_outcome,
)

_SEED_RECENT = {"NotYetSubmitted": 40, "AwaitingPayment": 8, "PaidAwaitingImageUpload": 4,
                "Submitted": 22, "Complete": 18, "Cancelled": 8}
_SEED_OLD = {"Complete": 86, "Cancelled": 14}
_DRAFT_PHOTOS = (("Ok", 0.62), ("NotYetDownloaded", 0.76), ("AwaitingUrlOrData", 0.86),
                 ("FileNotFoundAtUrl", 0.94), ("Invalid", 1.0))
_TYPE_WEIGHTS = (("4x6", 0.34), ("5x7", 0.48), ("8x10", 0.6), ("8x12", 0.7), ("10x15_cm", 0.8),
                 ("13x18_cm", 0.87), ("A4", 0.95), ("frame_8x10", 1.0))
_FIRST = ("Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Mia", "Leo", "Grace", "Arthur",
          "Emily", "Jack", "Sophie", "Harry", "Chloe", "Lucas")
_LAST = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Davies", "Evans",
         "Thomas", "Johnson", "Roberts", "Walker", "Wright", "Robinson")
_STREETS = ("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane",
            "Park Avenue", "Queen Street", "Oak Drive", "Main Street", "Elm Road")
_PLACES = {  # destination: ((town, state), ...), postal code pattern, lab country
    "GB": ((("London", "Greater London"), ("Manchester", "Greater Manchester"),
            ("Leeds", "West Yorkshire"), ("Bristol", "Bristol"), ("Glasgow", "Lanarkshire"),
            ("Cardiff", "South Glamorgan")), "gb", "GB"),
    "US": ((("Portland", "OR"), ("Austin", "TX"), ("Springfield", "IL"), ("Denver", "CO"),
            ("Boston", "MA"), ("Madison", "WI")), "us", "US"),
    "DE": ((("Berlin", "Berlin"), ("München", "Bayern"), ("Hamburg", "Hamburg"),
            ("Köln", "Nordrhein-Westfalen")), "de", "DE"),
    "FR": ((("Paris", "Île-de-France"), ("Lyon", "Auvergne-Rhône-Alpes"),
            ("Nantes", "Pays de la Loire")), "de", "FR"),
    "IE": ((("Dublin", "Co. Dublin"), ("Cork", "Co. Cork"), ("Galway", "Co. Galway")), "ie",
           "GB"),
    "NL": ((("Amsterdam", "Noord-Holland"), ("Utrecht", "Utrecht")), "nl", "GB"),
}
_DESTINATIONS = (("GB", 0.45), ("US", 0.72), ("DE", 0.8), ("FR", 0.87), ("IE", 0.94),
                 ("NL", 1.0))


class Account(SimulatorBase):
    """One merchant's orders and photos as state: seeded, priced, changed by time, read.

    Seeded orders (ids from 1001, ascending = older) are generated deterministically from
    (seed, id) on first use and cached as serialised bytes; a changed order is kept as a
    live dict and its bytes rebuilt on the next read. The older ``1 - open_share`` of them
    are all final (Complete with shipments, Cancelled); the newest ``open_share`` mix open
    orders (NotYetSubmitted with photos in every status, AwaitingPayment,
    PaidAwaitingImageUpload, Submitted) with some final ones. Time-driven changes are kept
    per order as a due time and applied when the order is next read or listed.
    """

    def __init__(self, *, orders: int = 60, seed: int = 1, merchant_id: str = "sim-merchant",
                 api_key: str = "sim-api-key", clock: Callable[[], float] = time.time,
                 download_delay_s: float = 5.0, complete_after_s: float = 30.0,
                 open_share: float = 0.15, **base_kwargs: Any):
        super().__init__(clock=clock, **base_kwargs)
        if orders < 0:
            raise ValueError("orders must not be negative")
        if not 0.0 <= open_share <= 1.0:
            raise ValueError("open_share must be between 0 and 1")
        self.seed, self.merchant_id, self.api_key = seed, merchant_id, api_key
        self.download_delay_s, self.complete_after_s = download_delay_s, complete_after_s
        self.open_share = open_share
        self.balance_insufficient = False
        self.ignore_offset = False               # a fault: every list page starts at the top
        self._t0 = clock()                       # seeded timers count from here
        self._seeded_last = FIRST_ID + orders - 1
        self._last_id = self._seeded_last        # ids are contiguous: no order is ever deleted
        self._recent_from = self._seeded_last - math.ceil(orders * open_share) + 1
        self._next_photo_id = (self._seeded_last + 1) * 10   # seeded photos are id * 10 + n
        self._store = SeededOrders(self._generate)  # generated when first read
        self._tracked: dict[int, bool] = {}      # useTrackedShipping (not in the v2.2 Order)
        self._pending: dict[int, dict[int, tuple[float, str]]] = {}  # photo -> (ready, status)
        self._submitted_at: dict[int, float] = {}
        self._due: dict[int, float] = {}         # when an order next changes by itself
        self._countries_bytes = orjson.dumps([{"countryCode": c, "name": n, "hasProducts": h}
                                              for c, n, h in COUNTRIES])
        self.app = self._build_app()

    # ------------------------------------------------------------------ seeded orders
    def _generate(self, oid: int, status: str | None = None, photos: int | None = None,
                  now: float | None = None) -> dict:
        """Build an order from (seed, id); registers its timers. Draws only ``random()``."""
        rnd = random.Random(self.seed * 1_000_003 + oid).random
        ref = self._t0 if now is None else now

        def pick(options: tuple) -> Any:
            return options[int(rnd() * len(options))]

        def weighted(table: tuple) -> Any:
            draw = rnd()
            return next(value for value, bound in table if draw < bound)

        if status is None:
            weights = _SEED_RECENT if oid >= self._recent_from else _SEED_OLD
            draw, total = rnd() * sum(weights.values()), 0
            for candidate, weight in weights.items():
                total += weight
                status = candidate
                if draw < total:
                    break
        else:
            rnd()
        destination = weighted(_DESTINATIONS)
        places, postal, lab = _PLACES[destination]
        town, state = pick(places)
        first, last = pick(_FIRST), pick(_LAST)
        payment = ("InvoiceRecipient" if status in ("AwaitingPayment", "PaidAwaitingImageUpload")
                   or rnd() < 0.3 else "InvoiceMe")
        quality = "Pro" if rnd() < 0.6 else "Standard"
        self._tracked[oid] = rnd() < 0.3
        order: dict[str, Any] = {
            "id": oid, "recipientName": f"{first} {last}",
            "address1": f"{1 + int(rnd() * 240)} {pick(_STREETS)}",
            "address2": f"Flat {1 + int(rnd() * 30)}" if rnd() < 0.25 else None,
            "addressTownOrCity": town, "stateOrCounty": state,
            "postalOrZipCode": self._postal(postal, rnd), "countryCode": lab,
            "destinationCountryCode": destination, "price": 0,
            "shippingInfo": {"price": 0, "shipments": []}, "status": status,
            "payment": payment, "paymentUrl": self._payment_url(oid, payment),
            "qualityLevel": quality, "photos": [], "errorMessage": None}
        draft = status in ("NotYetSubmitted", "AwaitingPayment")
        if photos is None:
            if status == "NotYetSubmitted" and rnd() < 0.05:
                photos = 0
            else:
                draw = rnd()
                photos = 1 if draw < 0.35 else 2 if draw < 0.75 else 3 if draw < 0.93 else 4
            if status == "NotYetSubmitted" and rnd() < 0.05:
                order["address1"] = order["postalOrZipCode"] = None
            seeded_drafts = status == "NotYetSubmitted"
        else:
            seeded_drafts = False
        user = f"{first}.{last}".lower()
        for index in range(photos):
            if status == "PaidAwaitingImageUpload":
                photo_status = "NotYetDownloaded" if index == 0 or rnd() < 0.5 else "Ok"
            elif seeded_drafts:
                photo_status = weighted(_DRAFT_PHOTOS)
            else:
                photo_status = "Ok"
            number = 1 + int(rnd() * 9999)
            url: str | None = f"https://photos.example.com/{user}/IMG_{number:04d}.jpg"
            if photo_status == "FileNotFoundAtUrl" or (photo_status == "NotYetDownloaded"
                                                      and draft and rnd() < 0.2):
                url = f"https://photos.example.com/{user}/missing/IMG_{number:04d}.jpg"
            elif photo_status == "Invalid":
                url = f"https://photos.example.com/{user}/notes_{number:04d}.txt"
            elif photo_status == "AwaitingUrlOrData":
                url = None
            kind = weighted(_TYPE_WEIGHTS)
            fields = {"type": kind, "url": url,
                      "copies": 1 if rnd() < 0.7 else 2 + int(rnd() * 3),
                      "sizing": weighted((("Crop", 0.7), ("ShrinkToFit", 0.9),
                                          ("ShrinkToExactFit", 1.0)))}
            if payment == "InvoiceRecipient":
                fields["priceToUser"] = round(self._unit_price(kind, quality) * 1.8)
            if kind in _ATTRIBUTES:
                fields["attributes"] = {"frame_colour": pick(("silver", "black", "white"))}
            photo = self._photo(oid * 10 + index, order, fields, photo_status)
            if photo_status == "NotYetDownloaded" and url is not None:  # it always has one
                ready = ref + self.download_delay_s * (0.2 + 0.8 * rnd())
                self._pending.setdefault(oid, {})[photo["id"]] = (ready, download_outcome(url))
            elif photo_status == "Ok" and url is not None:
                self._downloaded(oid, photo, "Ok")
            order["photos"].append(photo)
        self._reprice(oid, order)
        if status == "Submitted":
            self._submitted_at[oid] = ref - self.complete_after_s * 0.9 * rnd()
        elif status == "Complete":
            created = BASE_TIME - (self._seeded_last - oid) * ORDER_GAP_S
            shipped = created + DAY * (1 + int(rnd() * 3))
            for index in range(2 if len(order["photos"]) > 1 and rnd() < 0.1 else 1):
                order["shippingInfo"]["shipments"].append(
                    self._shipment(oid, order, index + 1, shipped + index * DAY))
        self._reschedule(oid, order, ref)
        return order

    @staticmethod
    def _postal(pattern: str, rnd: Callable[[], float]) -> str:
        def digits(n: int) -> str:
            return "".join(str(int(rnd() * 10)) for _ in range(n))

        def letters(n: int) -> str:
            return "".join(chr(65 + int(rnd() * 26)) for _ in range(n))

        if pattern == "gb":
            return f"{letters(2)}{digits(1)} {digits(1)}{letters(2)}"
        if pattern == "us":
            return digits(5)
        if pattern == "ie":
            return f"D{digits(2)} {letters(1)}{digits(1)}{letters(2)}"
        if pattern == "nl":
            return f"{digits(4)} {letters(2)}"
        return digits(5)

    @staticmethod
    def _payment_url(oid: int, payment: str) -> str | None:
        if payment != "InvoiceRecipient":
            return None
        return f"https://checkout.pwinty-sim.invalid/pay/{oid}"

    @staticmethod
    def _unit_price(kind: str, quality: str) -> int:
        return catalogue_item(kind, quality)["priceGBP"]

    def _photo(self, photo_id: int, order: dict, fields: dict, status: str) -> dict:
        """A Photo in the documented key order; ``fields`` are already validated."""
        return {"id": photo_id, "type": fields["type"], "url": fields.get("url"),
                "status": status, "copies": str(fields["copies"]), "sizing": fields["sizing"],
                "priceToUser": fields.get("priceToUser"),
                "price": self._unit_price(fields["type"], order["qualityLevel"]),
                "md5Hash": fields.get("md5Hash"), "previewUrl": None, "thumbnailUrl": None,
                "attributes": fields.get("attributes") or {}}

    @staticmethod
    def _downloaded(oid: int, photo: dict, status: str) -> None:
        """A photo's image arrived (or did not): its final status and what comes with it."""
        photo["status"] = status
        if status == "Ok":
            if photo["md5Hash"] is None and photo["url"]:
                photo["md5Hash"] = _md5(photo["url"].encode())
            base = f"https://images.pwinty-sim.invalid/{oid}/{photo['id']}"
            photo["previewUrl"], photo["thumbnailUrl"] = f"{base}/preview.jpg", f"{base}/thumb.jpg"

    def _reprice(self, oid: int, order: dict) -> None:
        tracked = int(self._tracked.get(oid, False))
        items = sum(p["price"] * int(p["copies"]) for p in order["photos"])
        bands = {_ITEMS[p["type"]][8] for p in order["photos"]}
        shipping = sum(_SHIPPING[band][tracked][0] for band in bands)
        order["shippingInfo"]["price"] = shipping
        order["price"] = items + shipping

    def _shipment(self, oid: int, order: dict, index: int, shipped: float) -> dict:
        tracked = self._tracked.get(oid, False)
        serial = (oid * 7919 + index * 104729) % 10**9
        lab = order["countryCode"]
        if lab == "US":
            number = f"9400{serial:018d}"
            url = f"https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"
        elif lab in ("DE", "FR"):
            number = f"00340{serial:013d}"
            url = ("https://www.dhl.de/en/privatkunden/dhl-sendungsverfolgung.html"
                   f"?piececode={number}")
        else:
            number = f"{'TT' if tracked else 'LB'}{serial:09d}GB"
            url = f"https://www.royalmail.com/track-your-item#/tracking-results/{number}"
        return {"shipmentId": str(oid * 100 + index), "trackingNumber": number,
                "trackingUrl": url, "isTracked": tracked,
                "earliestEstimatedArrivalDate": _day(shipped + 2 * DAY),
                "latestEstimatedArrivalDate": _day(shipped + 5 * DAY)}

    # ------------------------------------------------------------------ lazy time
    def _reschedule(self, oid: int, order: dict, now: float | None = None) -> None:
        """Record when the order will next change by itself (if ever)."""
        times = [ready for ready, _ in self._pending.get(oid, {}).values()]
        status = order["status"]
        if status == "Submitted" and oid in self._submitted_at:
            times.append(self._submitted_at[oid] + self.complete_after_s)
        elif (status == "PaidAwaitingImageUpload" and order["photos"] and not times
              and all(p["status"] == "Ok" for p in order["photos"])):
            times.append(self._clock() if now is None else now)
        if times:
            self._due[oid] = min(times)
        else:
            self._due.pop(oid, None)

    def _settle(self, oid: int, order: dict, now: float) -> bool:
        """Apply every time-driven change due by ``now``; True if something changed."""
        due = self._due.get(oid)
        if due is None or now < due:
            return False
        pending = self._pending.get(oid, {})
        last_ready = None
        for photo in order["photos"]:
            entry = pending.get(photo["id"])
            if entry is not None and entry[0] <= now:
                self._downloaded(oid, photo, entry[1])
                del pending[photo["id"]]
                last_ready = max(entry[0], last_ready or entry[0])
        if not pending:
            self._pending.pop(oid, None)
        if (order["status"] == "PaidAwaitingImageUpload" and not pending and order["photos"]
                and all(p["status"] == "Ok" for p in order["photos"])):
            order["status"] = "Submitted"
            self._submitted_at[oid] = last_ready if last_ready is not None else due
        at = self._submitted_at.get(oid)
        if order["status"] == "Submitted" and at is not None and \
                at + self.complete_after_s <= now:
            self._complete(oid, order, at + self.complete_after_s)
        self._reschedule(oid, order, now)
        self._store.changed(oid)
        return True

    def _complete(self, oid: int, order: dict, at: float) -> None:
        order["status"] = "Complete"
        self._submitted_at.pop(oid, None)
        shipments = order["shippingInfo"]["shipments"]
        if not shipments:
            shipments.append(self._shipment(oid, order, 1, at))

    # ------------------------------------------------------------------ order access
    def _exists(self, oid: int) -> bool:
        return FIRST_ID <= oid <= self._last_id

    def _serialized(self, oid: int, now: float | None = None) -> bytes:
        """The order's current JSON (time-driven changes applied first), or what is planted."""
        if self.planted and oid in self.planted:
            return self.planted[oid]
        store = self._store
        data = store.bytes.get(oid)
        if data is not None:
            due = self._due.get(oid)
            if due is None or (self._clock() if now is None else now) < due:
                return data
        order = store.live.get(oid)
        if order is None:
            order = orjson.loads(data) if data is not None else self._generate(oid)
            if data is not None or oid in self._due:
                store.live[oid] = order            # it will change: keep it live
        self._settle(oid, order, self._clock() if now is None else now)
        data = store.bytes[oid] = orjson.dumps(order)
        return data

    def _live(self, oid: int) -> dict:
        """The changeable representation of an order, time-driven changes applied."""
        order = self._store.order(oid)
        self._settle(oid, order, self._clock())
        return order

    def _changed(self, oid: int, order: dict) -> None:
        self._reschedule(oid, order)
        self._store.changed(oid)

    def _known(self, order_id: str | int) -> int:
        oid = int(order_id)
        if not self._exists(oid):
            raise KeyError(order_id)
        return oid

    def _new_photo_id(self) -> int:
        self._next_photo_id += 1
        return self._next_photo_id

    def _order_id(self, request: web.Request, empty: dict = EMPTY_ORDER) -> int:
        text = request.match_info["order_id"]
        if text.isdigit() and self._exists(int(text)):
            return int(text)
        raise HttpError(404, ORDER_NOT_FOUND, payload=empty)

