"""The Pwinty simulator's fixed data: statuses, enums, the catalogue and its countries,
shipping bands, the empty items errors answer with, and what a photo's download gives."""

from __future__ import annotations

import calendar
import hashlib
import time
from urllib.parse import urlsplit

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

