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

The package, by job: ``catalogue`` (fixed data: enums, catalogue, shipping, error items),
``wire`` (request bodies and field values), ``account`` (the orders as state: seeding,
prices, lazy time), ``orders`` and ``photos`` (the endpoints), ``server`` (routes, auth,
error bodies, reference data, and the controls tests use). Only the standard library,
aiohttp, orjson and ``ordersync.simkit`` are used.
"""

from __future__ import annotations

from typing import Any

from ordersync.simkit import FAULT_KINDS, Effect, FaultPlan, RequestRecord, parse_faults

from .catalogue import (
    BASE_PATH,
    COUNTRIES,
    FIRST_ID,
    PHOTO_STATUSES,
    POSTAL_ADDRESS,
    STATUSES,
    build_catalogue,
    catalogue_item,
    download_outcome,
)
from .server import PwintySimulator


async def serve(host: str, port: int, **kwargs: Any) -> None:
    """Run a simulator on ``host:port`` until cancelled."""
    await PwintySimulator.serve(host, port, **kwargs)


__all__ = ["BASE_PATH", "COUNTRIES", "FAULT_KINDS", "FIRST_ID", "PHOTO_STATUSES",
           "POSTAL_ADDRESS", "STATUSES", "Effect", "FaultPlan", "PwintySimulator",
           "RequestRecord", "build_catalogue", "catalogue_item", "download_outcome",
           "parse_faults", "serve"]
