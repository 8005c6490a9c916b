"""A faithful Pwinty REST API v2.2 server for tests, benchmarks and the CLI.

It speaks the wire protocol of vendor-docs/pwinty-v2.2-photos.txt and vendor-notes.md
section 2, the awkward parts included:

* every path under ``/v2.2``; the two headers ``X-Pwinty-MerchantId`` and
  ``X-Pwinty-REST-API-Key`` (names case-insensitive) or 401
  ``{"Message": "Authorization has been denied for this request."}``;
* bodies as ``application/json`` or ``application/x-www-form-urlencoded`` (field names
  case-insensitive, as ASP.NET binds them; ``attributes[name]=value`` or
  ``attributes.name=value`` in forms), photo uploads as ``multipart/form-data`` with a
  ``file`` field; anything else with a body is 415;
* bare objects and arrays, no envelope; ``GET /Orders?count&offset`` newest first, ``count``
  100 when absent and capped at 250, an empty array past the end;
* errors as "an empty version of the expected item, with an errorMessage parameter" (e.g. an
  Order with every field null), 400 bad input, 403 not allowed in the current state, 404;
* ``copies`` accepted as a number or a string and answered as a string; prices are integers
  in pence, recomputed from the photos (catalogue price x copies) plus shipping.

Time-driven behaviour, evaluated lazily by the simulator clock whenever an order is read or
listed:

* **Photo downloads.** A photo added with a ``url`` is ``NotYetDownloaded`` for
  ``download_delay_s``; then it becomes ``FileNotFoundAtUrl`` when the url contains
  "missing" (a url that returns nothing), ``Invalid`` when the url's path ends in ".txt"
  (something that is not a JPEG), and ``Ok`` otherwise. An uploaded file is ``Ok`` at once
  if it starts with the JPEG magic bytes FF D8 FF, else ``Invalid``; its md5 is computed and
  a given ``md5Hash`` that differs is a 400. No url and no file: ``AwaitingUrlOrData``.
  ``previewUrl``/``thumbnailUrl`` are set once a photo is ``Ok``; ``md5Hash`` is reported
  when known (given by the client, computed from an upload, or after a download).
* **The lab.** A ``Submitted`` order becomes ``Complete`` ``complete_after_s`` later, with a
  shipment (tracking number and url). A ``PaidAwaitingImageUpload`` order (v2.3) is
  submitted by itself once all of its photos are ``Ok``.

Choices where the documentation is silent (vendor-notes.md says a simulator may pick one):
``type``, ``copies`` and ``sizing`` are required for a photo (the docs mark only url,
priceToUser, md5Hash, file and attributes optional); enum values (payment, qualityLevel,
sizing, status, photo type, country codes) match case-insensitively and are answered in
their canonical spelling; an item with attributes (``frame_8x10``) needs all of them;
``priceToUser`` on an InvoiceMe order is a 400; a url that is not absolute http(s) is a
400; giving both a url and a file is a 400. ``PUT /Orders/{id}`` changes the address fields
(recipientName, address1, address2, addressTownOrCity, stateOrCounty, postalOrZipCode,
destinationCountryCode) of a NotYetSubmitted order; id, countryCode, payment, qualityLevel
and useTrackedShipping may be sent back unchanged (as the Java client does) but not changed
(400); mobileTelephone and email are accepted and not shown (the v2.2 Order has no such
fields). Status changes: Submitted from NotYetSubmitted, AwaitingPayment or
PaidAwaitingImageUpload, only when SubmissionStatus is valid (else 400 listing the reasons);
Cancelled from those three (Submitted, Complete or an already Cancelled order: 403);
AwaitingPayment from NotYetSubmitted for InvoiceRecipient orders only (403 otherwise), without
a validity check (v2.3's PaidAwaitingImageUpload exists because recipients may pay before the
images are in). ``POST .../Status`` and ``DELETE .../Photos/{id}`` answer 200 with an empty
body. A photo with errors gets no warnings; ``CroppingWillOccur`` is warned for an ``Ok``
photo sized ``Crop``; ``AccountBalanceInsufficient`` (``sim.balance_insufficient``) applies to
InvoiceMe orders only, as InvoiceRecipient orders are paid by the recipient;
``PostalAddressNotSet`` (recipientName, address1, addressTownOrCity and postalOrZipCode all
needed) is only a general error. Shipping costs the band rate (tracked or not) once for
every catalogue shipping band present in the order; the merchant is billed in GBP. Shipments
appear only when an order is complete. The recorded request headers show the API key as
``<redacted>``.

Only the standard library, aiohttp, orjson and ``ordersync.simkit`` are used.
"""

from __future__ import annotations

import calendar
import email.message
import hashlib
import math
import random
import time
from typing import Any, Callable, Literal, overload
from urllib.parse import parse_qsl, urlsplit

import orjson
from aiohttp import web

from ordersync.simkit import (
    FAULT_KINDS,
    Effect,
    FaultPlan,
    HttpError,
    RequestRecord,
    SeededOrders,
    SimulatorBase,
    parse_faults,
)

BASE_PATH = "/v2.2"
FIRST_ID = 1001
BASE_TIME = calendar.timegm((2026, 6, 1, 0, 0, 0))   # the newest seeded order's creation
ORDER_GAP_S = 2400                                  # seeded orders are this far apart
DAY = 86400

STATUSES = ("NotYetSubmitted", "AwaitingPayment", "PaidAwaitingImageUpload", "Submitted",
            "Complete", "Cancelled")
PHOTO_STATUSES = ("AwaitingUrlOrData", "NotYetDownloaded", "Ok", "FileNotFoundAtUrl", "Invalid")
PAYMENTS = ("InvoiceMe", "InvoiceRecipient")
QUALITY_LEVELS = ("Pro", "Standard")
SIZINGS = ("Crop", "ShrinkToFit", "ShrinkToExactFit")
SETTABLE_STATUSES = ("Submitted", "Cancelled", "AwaitingPayment")
PHOTOS_ADDABLE = ("NotYetSubmitted", "AwaitingPayment")
SUBMITTABLE = ("NotYetSubmitted", "AwaitingPayment", "PaidAwaitingImageUpload")
ADDRESS_FIELDS = ("recipientName", "address1", "address2", "addressTownOrCity", "stateOrCounty",
                  "postalOrZipCode")
POSTAL_ADDRESS = ("recipientName", "address1", "addressTownOrCity", "postalOrZipCode")
ORDER_KEYS = ("id", "recipientName", "address1", "address2", "addressTownOrCity",
              "stateOrCounty", "postalOrZipCode", "countryCode", "destinationCountryCode",
              "price", "shippingInfo", "status", "payment", "paymentUrl", "qualityLevel",
              "photos", "errorMessage")
PHOTO_KEYS = ("id", "type", "url", "status", "copies", "sizing", "priceToUser", "price",
              "md5Hash", "previewUrl", "thumbnailUrl", "attributes")
CREATE_FIELDS = (*ADDRESS_FIELDS, "countryCode", "destinationCountryCode", "mobileTelephone",
                 "email", "useTrackedShipping", "payment", "qualityLevel", "id")
PHOTO_FIELDS = ("type", "url", "copies", "sizing", "priceToUser", "md5Hash", "attributes")
JPEG_MAGIC = b"\xff\xd8\xff"

# "An empty version of the expected item, with an errorMessage parameter."
EMPTY_ORDER = dict.fromkeys(ORDER_KEYS)
EMPTY_PHOTO = {**dict.fromkeys(PHOTO_KEYS), "errorMessage": None}
EMPTY_SUBMISSION = dict.fromkeys(("id", "isValid", "generalErrors", "photos", "errorMessage"))
EMPTY_BATCH = {"errorMessage": None, "items": None}
EMPTY_CATALOGUE = dict.fromkeys(("country", "countryCode", "qualityLevel", "items",
                                 "shippingRates", "errorMessage"))
AUTH = "auth"
ORDER_NOT_FOUND = "The order with the specified id was not found"
PHOTO_NOT_FOUND = "The photo with the specified id was not found"
PHOTOS_NOT_ADDABLE = "The order is in a state where photos cannot be added"

COUNTRIES = (  # (countryCode, name, hasProducts)
    ("AU", "Australia", True), ("BR", "Brazil", False), ("CA", "Canada", True),
    ("DK", "Denmark", False), ("FR", "France", True), ("DE", "Germany", True),
    ("IE", "Ireland", True), ("IT", "Italy", True), ("JP", "Japan", False),
    ("NL", "Netherlands", True), ("NO", "Norway", False), ("ES", "Spain", True),
    ("SE", "Sweden", True), ("CH", "Switzerland", False), ("GB", "United Kingdom", True),
    ("US", "United States", True))
_COUNTRY = {code: (name, has) for code, name, has in COUNTRIES}

# name: (description, Standard priceGBP, priceUSD, width, height, units, px w, px h, band)
_ITEMS = {
    "4x6": ("4x6 inch print (10x15 cm)", 69, 99, 4, 6, "inches", 1200, 1800, "Prints"),
    "5x7": ("5x7 inch print", 129, 179, 5, 7, "inches", 1500, 2100, "Prints"),
    "8x10": ("8x10 inch print", 299, 399, 8, 10, "inches", 2400, 3000, "Prints"),
    "8x12": ("8x12 inch print", 349, 469, 8, 12, "inches", 2400, 3600, "Prints"),
    "10x15_cm": ("10x15 cm print", 69, 99, 10, 15, "cm", 1181, 1772, "Prints"),
    "13x18_cm": ("13x18 cm print", 129, 179, 13, 18, "cm", 1535, 2126, "Prints"),
    "A4": ("A4 print (21x29.7 cm)", 449, 599, 21, 29.7, "cm", 2480, 3508, "LargePrints"),
    "frame_8x10": ("8x10 inch print in a wooden frame", 1999, 2699, 8, 10, "inches", 2400,
                   3000, "Frames"),
}
_ATTRIBUTES = {"frame_8x10": [{"name": "frame_colour", "validValues": ["silver", "black",
                                                                        "white"]}]}
_PRO_FACTOR = 1.3
# band: ((untracked GBP, USD), (tracked GBP, USD))
_SHIPPING = {"Prints": ((150, 250), (450, 650)), "LargePrints": ((350, 500), (750, 1000)),
             "Frames": ((795, 1100), (1195, 1600))}

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


def _day(ts: float) -> str:
    """An estimated arrival date: ISO 8601, midnight UTC."""
    return time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(ts))


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def download_outcome(url: str) -> str:
    """What downloading ``url`` gives: FileNotFoundAtUrl, Invalid or Ok (see the docstring)."""
    if "missing" in url.lower():
        return "FileNotFoundAtUrl"
    if urlsplit(url).path.lower().endswith(".txt"):
        return "Invalid"
    return "Ok"


def catalogue_item(name: str, quality: str) -> dict:
    description, gbp, usd, width, height, units, px_w, px_h, band = _ITEMS[name]
    factor = _PRO_FACTOR if quality == "Pro" else 1.0
    return {"name": name, "description": description, "priceGBP": round(gbp * factor),
            "priceUSD": round(usd * factor), "imageHorizontalSize": width,
            "imageVerticalSize": height, "sizeUnits": units,
            "recommendedHorizontalResolution": px_w, "recommendedVerticalResolution": px_h,
            "shippingBand": band, "attributes": _ATTRIBUTES.get(name, [])}


def build_catalogue(country: str, quality: str) -> dict:
    """``GET /Catalogue/{country}/{quality}`` for a known country (no items if it has none)."""
    name, has_products = _COUNTRY[country]
    rates = []
    if has_products:
        for band, prices in _SHIPPING.items():
            for tracked, (gbp, usd) in enumerate(prices):
                rates.append({"band": band, "description": f"{band}, "
                              f"{'tracked' if tracked else 'standard'} shipping",
                              "isTracked": bool(tracked), "priceGBP": gbp, "priceUSD": usd})
    return {"country": name, "countryCode": country, "qualityLevel": quality,
            "items": [catalogue_item(n, quality) for n in _ITEMS] if has_products else [],
            "shippingRates": rates}


def _fold(options: tuple[str, ...]) -> dict[str, str]:
    return {option.lower(): option for option in options}


_PAYMENTS, _QUALITIES, _SIZINGS = _fold(PAYMENTS), _fold(QUALITY_LEVELS), _fold(SIZINGS)
_SETTABLE, _TYPES = _fold(SETTABLE_STATUSES), _fold(tuple(_ITEMS))
_COUNTRY_CODES = _fold(tuple(_COUNTRY))


# --------------------------------------------------------------------------- request bodies

def _canonical(fields: dict, known: tuple[str, ...]) -> dict:
    """Field names matched case-insensitively; ``attributes[x]``/``attributes.x`` folded."""
    names = _fold(known)
    out: dict[str, Any] = {}
    for key, value in fields.items():
        lower = str(key).lower()
        for prefix, closing in (("attributes[", "]"), ("attributes.", "")):
            if lower.startswith(prefix) and lower.endswith(closing) and len(lower) > len(prefix):
                attribute = str(key)[len(prefix):len(key) - len(closing)]
                attributes = out.setdefault("attributes", {})
                if isinstance(attributes, dict):
                    attributes[attribute] = value
                break
        else:
            out[names.get(lower, key)] = value
    return out


def _parse_multipart(raw: bytes, content_type: str) -> tuple[dict, tuple[str, bytes] | None]:
    """Split a multipart/form-data body exactly (bytes kept as sent)."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise HttpError(400, "multipart/form-data without a boundary")
    fields: dict[str, Any] = {}
    upload = None
    for chunk in raw.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        body = body.removesuffix(b"\r\n")
        part = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                part[name.strip()] = value.strip()
        field = part.get_param("name", header="content-disposition")
        if not isinstance(field, str):
            continue
        if field.lower() == "file":
            upload = (part.get_filename() or "", body)
        else:
            fields[field] = body.decode("utf-8", "replace")
    return fields, upload


def _text(value: Any, name: str, empty: dict) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise HttpError(400, f"{name} must be a string", payload=empty)


@overload
def _choice(value: Any, options: dict[str, str], name: str, empty: dict,
            required: Literal[True]) -> str: ...
@overload
def _choice(value: Any, options: dict[str, str], name: str, empty: dict,
            required: bool = False) -> str | None: ...
def _choice(value: Any, options: dict[str, str], name: str, empty: dict,
            required: bool = False) -> str | None:
    text = _text(value, name, empty)
    if text is None:
        if required:
            raise HttpError(400, f"{name} is required", payload=empty)
        return None
    canonical = options.get(text.strip().lower())
    if canonical is None:
        raise HttpError(400, f"{name} {text!r} is not one of "
                             f"{', '.join(options.values())}", payload=empty)
    return canonical


def _boolean(value: Any, name: str, empty: dict) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise HttpError(400, f"{name} must be true or false", payload=empty)


def _whole(value: Any, name: str, empty: dict, minimum: int) -> int:
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or number < minimum:
        raise HttpError(400, f"{name} must be a whole number of at least {minimum}",
                        payload=empty)
    return number


# --------------------------------------------------------------------------- the server

class PwintySimulator(SimulatorBase):
    """An in-memory Pwinty merchant account with seeded orders, served by aiohttp.

    Seeded orders (ids from 1001, ascending = older) are generated deterministically from
    (seed, id) on first use and cached as serialised bytes; a changed order is kept as a
    live dict and its bytes rebuilt on the next read. The older ``1 - open_share`` of them
    are all final (Complete with shipments, Cancelled); the newest ``open_share`` mix open
    orders (NotYetSubmitted with photos in every status, AwaitingPayment,
    PaidAwaitingImageUpload, Submitted) with some final ones. Time-driven changes are kept
    per order as a due time and applied when the order is next read or listed.
    """

    REDACT_HEADERS = {"x-pwinty-rest-api-key": "<redacted>"}
    MALFORMED_FALLBACK = (b'{"id": 1001, "status": "Complete", "errorMessage": null}',
                          "application/json")

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

    def _new_photo_id(self) -> int:
        self._next_photo_id += 1
        return self._next_photo_id

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

    @staticmethod
    def _json(body: bytes, content_type: str = "application/json", status: int = 200):
        return web.Response(status=status, body=body, content_type=content_type,
                            charset="utf-8")

    @staticmethod
    def _empty() -> web.Response:
        return web.Response(status=200)

    async def _body(self, request: web.Request, empty: dict, *, allow_file: bool = False,
                    array: bool = False) -> tuple[Any, tuple[str, bytes] | None]:
        """The request's fields (JSON or form; multipart when ``allow_file``) and upload."""
        raw = await request.read()
        if not raw.strip():
            if array:
                raise HttpError(400, "A JSON array of photos is required", payload=empty)
            return {}, None
        content_type = request.content_type
        if content_type == "application/json":
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise HttpError(400, "The request body is not valid JSON", payload=empty) from None
            if array and not isinstance(data, list):
                raise HttpError(400, "The request body must be a JSON array of photos",
                                payload=empty)
            if not array and not isinstance(data, dict):
                raise HttpError(400, "The request body must be a JSON object", payload=empty)
            return data, None
        if array:
            raise HttpError(415, "A batch must be sent as application/json", payload=empty)
        if content_type == "application/x-www-form-urlencoded":
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise HttpError(400, "The form body is not UTF-8", payload=empty) from None
            return dict(parse_qsl(text, keep_blank_values=True)), None
        if content_type == "multipart/form-data" and allow_file:
            return _parse_multipart(raw, request.headers.get("Content-Type", ""))
        raise HttpError(415, f"The request entity's media type '{content_type}' is not "
                             f"supported for this resource", payload=empty)

    def _order_id(self, request: web.Request, empty: dict = EMPTY_ORDER) -> int:
        text = request.match_info["order_id"]
        if text.isdigit() and self._exists(int(text)):
            return int(text)
        raise HttpError(404, ORDER_NOT_FOUND, payload=empty)

    @staticmethod
    def _find_photo(order: dict, request: web.Request) -> dict:
        text = request.match_info["photo_id"]
        for photo in order["photos"]:
            if text.isdigit() and photo["id"] == int(text):
                return photo
        raise HttpError(404, PHOTO_NOT_FOUND, payload=EMPTY_PHOTO)

    # ------------------------------------------------------------------ orders
    async def _list(self, request: web.Request) -> web.Response:
        """A bare array, newest first: ``count`` (100 when absent, at most 250) from ``offset``."""
        query = {k.lower(): v for k, v in request.query.items()}
        empty = {"errorMessage": None}
        count = min(250, _whole(query.get("count", "100"), "count", empty, 0))
        offset = 0 if self.ignore_offset else _whole(query.get("offset", "0"), "offset", empty, 0)
        end = self._last_id - offset
        now = self._clock()
        ids = range(end, max(FIRST_ID - 1, end - count), -1)
        return self._json(b"[" + b",".join(self._serialized(i, now) for i in ids) + b"]")

    async def _get_order(self, request: web.Request) -> web.Response:
        return self._json(self._serialized(self._order_id(request)))

    async def _create(self, request: web.Request) -> web.Response:
        raw, _ = await self._body(request, EMPTY_ORDER)
        fields = _canonical(raw, CREATE_FIELDS)
        e = EMPTY_ORDER
        country = _choice(fields.get("countryCode"), _COUNTRY_CODES, "countryCode", e, True)
        if not _COUNTRY[country][1]:
            raise HttpError(400, f"countryCode {country!r}: Pwinty has no products in "
                                 f"{_COUNTRY[country][0]}", payload=e)
        quality = _choice(fields.get("qualityLevel"), _QUALITIES, "qualityLevel", e, True)
        payment = _choice(fields.get("payment"), _PAYMENTS, "payment", e) or "InvoiceMe"
        destination = _choice(fields.get("destinationCountryCode"), _COUNTRY_CODES,
                              "destinationCountryCode", e) or country
        tracked = _boolean(fields.get("useTrackedShipping"), "useTrackedShipping", e)
        address = {name: _text(fields.get(name), name, e) for name in ADDRESS_FIELDS}
        for name in ("mobileTelephone", "email"):
            _text(fields.get(name), name, e)
        oid = self._last_id + 1
        self._last_id = oid
        order: dict[str, Any] = {"id": oid, **address, "countryCode": country,
                 "destinationCountryCode": destination, "price": 0,
                 "shippingInfo": {"price": 0, "shipments": []}, "status": "NotYetSubmitted",
                 "payment": payment, "paymentUrl": self._payment_url(oid, payment),
                 "qualityLevel": quality, "photos": [], "errorMessage": None}
        self._tracked[oid] = tracked
        self._store.live[oid] = order
        self._changed(oid, order)
        self._effect("CREATE", oid, fields)
        return self._json(self._serialized(oid))

    async def _update(self, request: web.Request) -> web.Response:
        """Address fields of a NotYetSubmitted order; others only sent back unchanged."""
        oid = self._order_id(request)
        raw, _ = await self._body(request, EMPTY_ORDER)
        fields = _canonical(raw, (*CREATE_FIELDS, "destinationCountryCode"))
        order = self._live(oid)
        e = EMPTY_ORDER
        if order["status"] != "NotYetSubmitted":
            raise HttpError(403, f"The order is {order['status']}; only NotYetSubmitted orders "
                                 f"can be updated", payload=e)
        fixed = {"countryCode": _choice(fields.get("countryCode"), _COUNTRY_CODES,
                                        "countryCode", e),
                 "payment": _choice(fields.get("payment"), _PAYMENTS, "payment", e),
                 "qualityLevel": _choice(fields.get("qualityLevel"), _QUALITIES,
                                         "qualityLevel", e)}
        for name, value in fixed.items():
            if value is not None and value != order[name]:
                raise HttpError(400, f"{name} cannot be changed once the order is created",
                                payload=e)
        if fields.get("id") not in (None, "") and str(fields["id"]) != str(oid):
            raise HttpError(400, "id does not match the order in the url", payload=e)
        if "useTrackedShipping" in fields and fields["useTrackedShipping"] not in (None, ""):
            if _boolean(fields["useTrackedShipping"], "useTrackedShipping", e) != \
                    self._tracked.get(oid, False):
                raise HttpError(400, "useTrackedShipping cannot be changed once the order is "
                                     "created", payload=e)
        changes: dict[str, Any] = {}
        for name in ADDRESS_FIELDS:
            if name in fields:
                changes[name] = _text(fields[name], name, e)
        if "destinationCountryCode" in fields:
            changes["destinationCountryCode"] = _choice(
                fields["destinationCountryCode"], _COUNTRY_CODES, "destinationCountryCode",
                e) or order["countryCode"]
        for name in ("mobileTelephone", "email"):
            _text(fields.get(name), name, e)
        order.update(changes)
        self._changed(oid, order)
        self._effect("UPDATE", oid, fields)
        return self._json(self._serialized(oid))

    def _submission(self, oid: int, order: dict) -> dict:
        """SubmissionStatus: what stops the order from being submitted."""
        general, photos = [], []
        if not order["photos"]:
            general.append("NoItemsInOrder")
        if any(not order[name] for name in POSTAL_ADDRESS):
            general.append("PostalAddressNotSet")
        for photo in order["photos"]:
            errors, warnings = [], []
            status = photo["status"]
            if status == "FileNotFoundAtUrl":
                errors.append("FileCouldNotBeDownloaded")
            elif status in ("AwaitingUrlOrData", "NotYetDownloaded"):
                errors.append("NoImageFile")
            elif status == "Invalid":
                errors.append("InvalidImagefile")
            elif status == "Ok" and photo["sizing"] == "Crop":
                warnings.append("CroppingWillOccur")
            photos.append({"id": photo["id"], "errors": errors, "warnings": warnings})
        if any(p["errors"] for p in photos):
            general.append("ItemsContainingErrors")
        if self.balance_insufficient and order["payment"] == "InvoiceMe":
            general.append("AccountBalanceInsufficient")
        return {"id": oid, "isValid": not general, "generalErrors": general, "photos": photos}

    async def _submission_status(self, request: web.Request) -> web.Response:
        oid = self._order_id(request, EMPTY_SUBMISSION)
        return self._json(orjson.dumps(self._submission(oid, self._live(oid))))

    async def _set_status(self, request: web.Request) -> web.Response:
        oid = self._order_id(request)
        raw, _ = await self._body(request, EMPTY_ORDER)
        fields = _canonical(raw, ("status",))
        e = EMPTY_ORDER
        wanted = _choice(fields.get("status"), _SETTABLE, "status", e, True)
        order = self._live(oid)
        current = order["status"]
        if wanted == "Submitted":
            if current not in SUBMITTABLE:
                raise HttpError(403, f"The order is {current} and cannot be submitted",
                                payload=e)
            readiness = self._submission(oid, order)
            if not readiness["isValid"]:
                reasons = list(readiness["generalErrors"])
                reasons += [f"photo {p['id']}: {', '.join(p['errors'])}"
                            for p in readiness["photos"] if p["errors"]]
                raise HttpError(400, "The order cannot be submitted: " + "; ".join(reasons),
                                payload=e)
            self._submitted_at[oid] = self._clock()
        elif wanted == "Cancelled":
            if current not in SUBMITTABLE:
                raise HttpError(403, f"The order is {current} and cannot be cancelled",
                                payload=e)
        else:
            if order["payment"] != "InvoiceRecipient":
                raise HttpError(403, "Only orders with payment InvoiceRecipient can await "
                                     "payment", payload=e)
            if current != "NotYetSubmitted":
                raise HttpError(403, f"The order is {current}; only NotYetSubmitted orders can "
                                     f"await payment", payload=e)
        order["status"] = wanted
        self._changed(oid, order)
        self._effect("STATUS", oid, {"status": wanted})
        return self._empty()

    # ------------------------------------------------------------------ photos
    async def _photos(self, request: web.Request) -> web.Response:
        oid = self._order_id(request)
        return self._json(orjson.dumps(orjson.loads(self._serialized(oid))["photos"]))

    async def _get_photo(self, request: web.Request) -> web.Response:
        oid = self._order_id(request, EMPTY_PHOTO)
        return self._json(orjson.dumps(self._find_photo(self._live(oid), request)))

    def _photo_fields(self, order: dict, raw: Any, empty: dict, where: str = "") -> dict:
        """Validate one photo's fields (not the file); canonical values."""
        if not isinstance(raw, dict):
            raise HttpError(400, f"{where}each photo must be an object", payload=empty)
        fields = _canonical(raw, PHOTO_FIELDS)

        def fail(message: str) -> HttpError:
            return HttpError(400, where + message, payload=empty)

        out: dict[str, Any] = {}
        try:
            kind = _choice(fields.get("type"), _TYPES, "type", empty, True)
        except HttpError as err:
            raise fail(f"{err.message} (a catalogue item name such as 4x6)") from None
        if not _COUNTRY[order["countryCode"]][1]:
            raise fail(f"type {kind!r} is not in the catalogue for {order['countryCode']}")
        out["type"] = kind
        try:
            if fields.get("copies") in (None, ""):
                raise HttpError(400, "copies is required")
            out["copies"] = _whole(fields.get("copies"), "copies", empty, 1)
            out["sizing"] = _choice(fields.get("sizing"), _SIZINGS, "sizing", empty, True)
            url = _text(fields.get("url"), "url", empty)
            md5 = _text(fields.get("md5Hash"), "md5Hash", empty)
        except HttpError as err:
            raise fail(err.message or "bad photo") from None
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise fail(f"url {url!r} is not an absolute http(s) url")
        out["url"] = url
        if md5 is not None:
            if len(md5) != 32 or any(c not in "0123456789abcdefABCDEF" for c in md5):
                raise fail("md5Hash must be 32 hexadecimal digits")
            md5 = md5.lower()
        out["md5Hash"] = md5
        if fields.get("priceToUser") not in (None, ""):
            if order["payment"] != "InvoiceRecipient":
                raise fail("priceToUser is only available when payment is InvoiceRecipient")
            try:
                out["priceToUser"] = _whole(fields["priceToUser"], "priceToUser", empty, 0)
            except HttpError as err:
                raise fail(err.message or "bad priceToUser") from None
        attributes = fields.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise fail("attributes must be an object")
        valid = {a["name"]: a["validValues"] for a in _ATTRIBUTES.get(kind, [])}
        for name, value in attributes.items():
            if name not in valid:
                raise fail(f"attribute {name!r} is not valid for {kind}")
            if value not in valid[name]:
                raise fail(f"attribute {name} must be one of {', '.join(valid[name])}")
        for name, values in valid.items():
            if name not in attributes:
                raise fail(f"attribute {name} is required for {kind} "
                           f"(one of {', '.join(values)})")
        out["attributes"] = dict(attributes)
        return out

    def _add(self, oid: int, order: dict, fields: dict,
             upload: tuple[str, bytes] | None) -> dict:
        """Create the photo (fields validated) and schedule its download if any."""
        photo_id = self._new_photo_id()
        if upload is not None:
            fields = {**fields, "md5Hash": _md5(upload[1])}
            photo = self._photo(photo_id, order, fields, "Ok")
            photo["url"] = None
            self._downloaded(oid, photo, "Ok" if upload[1].startswith(JPEG_MAGIC) else "Invalid")
        elif fields["url"] is not None:
            photo = self._photo(photo_id, order, fields, "NotYetDownloaded")
            ready = self._clock() + self.download_delay_s
            self._pending.setdefault(oid, {})[photo_id] = (ready, download_outcome(fields["url"]))
        else:
            photo = self._photo(photo_id, order, fields, "AwaitingUrlOrData")
        order["photos"].append(photo)
        return photo

    def _photo_order(self, request: web.Request, empty: dict) -> tuple[int, dict]:
        oid = self._order_id(request, empty)
        order = self._live(oid)
        if order["status"] not in PHOTOS_ADDABLE:
            raise HttpError(403, PHOTOS_NOT_ADDABLE, payload=empty)
        return oid, order

    async def _add_photo(self, request: web.Request) -> web.Response:
        oid, order = self._photo_order(request, EMPTY_PHOTO)
        raw, upload = await self._body(request, EMPTY_PHOTO, allow_file=True)
        fields = self._photo_fields(order, raw, EMPTY_PHOTO)
        if upload is not None:
            if fields["url"] is not None:
                raise HttpError(400, "Give either a url or a file, not both", payload=EMPTY_PHOTO)
            actual = _md5(upload[1])
            if fields["md5Hash"] is not None and fields["md5Hash"] != actual:
                raise HttpError(400, f"md5Hash {fields['md5Hash']} does not match the uploaded "
                                     f"file (md5 {actual})", payload=EMPTY_PHOTO)
        photo = self._add(oid, order, fields, upload)
        self._reprice(oid, order)
        self._changed(oid, order)
        body = dict(fields)
        if upload is not None:
            body["file"] = {"filename": upload[0], "size": len(upload[1]),
                            "md5": _md5(upload[1])}
        self._effect("ADD_PHOTO", oid, body)
        return self._json(orjson.dumps(photo))

    async def _add_batch(self, request: web.Request) -> web.Response:
        """A JSON array of photos by url, all validated before any is added."""
        oid, order = self._photo_order(request, EMPTY_BATCH)
        raw, _ = await self._body(request, EMPTY_BATCH, array=True)
        if not raw:
            raise HttpError(400, "The batch holds no photos", payload=EMPTY_BATCH)
        batch = []
        for index, item in enumerate(raw):
            fields = self._photo_fields(order, item, EMPTY_BATCH, f"photo {index + 1}: ")
            if fields["url"] is None:
                raise HttpError(400, f"photo {index + 1}: url is required (a batch adds photos "
                                     f"by url only)", payload=EMPTY_BATCH)
            batch.append(fields)
        items = [self._add(oid, order, fields, None) for fields in batch]
        self._reprice(oid, order)
        self._changed(oid, order)
        self._effect("ADD_PHOTOS", oid, batch)
        return self._json(orjson.dumps({"errorMessage": None, "items": items}))

    async def _delete_photo(self, request: web.Request) -> web.Response:
        oid = self._order_id(request, EMPTY_PHOTO)
        order = self._live(oid)
        photo = self._find_photo(order, request)
        if order["status"] != "NotYetSubmitted":
            raise HttpError(403, f"The order is {order['status']}; photos can only be removed "
                                 f"while it is NotYetSubmitted", payload=EMPTY_PHOTO)
        order["photos"].remove(photo)
        self._pending.get(oid, {}).pop(photo["id"], None)
        self._reprice(oid, order)
        self._changed(oid, order)
        self._effect("DELETE_PHOTO", oid, {"photoId": photo["id"]})
        return self._empty()

    # ------------------------------------------------------------------ reference data
    async def _catalogue(self, request: web.Request) -> web.Response:
        e = EMPTY_CATALOGUE
        country = _choice(request.match_info["country"], _COUNTRY_CODES, "countryCode", e, True)
        quality = _choice(request.match_info["quality"], _QUALITIES, "qualityLevel", e, True)
        return self._json(orjson.dumps(build_catalogue(country, quality)))

    async def _countries(self, request: web.Request) -> web.Response:
        return self._json(self._countries_bytes)


async def serve(host: str, port: int, **kwargs: Any) -> None:
    """Run a simulator on ``host:port`` until cancelled."""
    await PwintySimulator.serve(host, port, **kwargs)


__all__ = ["BASE_PATH", "COUNTRIES", "FAULT_KINDS", "FIRST_ID", "PHOTO_STATUSES", "STATUSES",
           "Effect", "FaultPlan", "PwintySimulator", "RequestRecord", "build_catalogue",
           "catalogue_item", "download_outcome", "parse_faults", "serve"]
