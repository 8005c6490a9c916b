"""Pwinty actions: create an order, update its address, add photos (by URL, by upload, in a
batch), delete a photo, submit, cancel.

None of these requests is idempotent at Pwinty and v2.2 has no idempotency keys, so each
kind says how a lost answer is verified by reading the order (:func:`effect_present`).
One cannot be: an order created without an answer carries no merchant reference to find
it by, so that action becomes ``uncertain`` and is reported, never repeated blindly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ordersync.contract import ActionSpec, Outcome, Param, ParamType
from ordersync.errors import ActionRefused, FileUnreadable, NotFound, ParameterError
from ordersync.files import read_bytes
from ordersync.ledger.records import StoredOrder
from ordersync.model import Action

from .client import PwintyApi
from .mapping import ADDRESS_FIELDS

SIZINGS = ("Crop", "ShrinkToFit", "ShrinkToExactFit")
PAYMENTS = ("InvoiceMe", "InvoiceRecipient")
QUALITY_LEVELS = ("Pro", "Standard")
PHOTOS_ALLOWED = ("NotYetSubmitted", "AwaitingPayment")
DRAFT_ONLY = ("NotYetSubmitted",)
ALLOWED_FROM = {
    "update_address": DRAFT_ONLY,
    "add_photo": PHOTOS_ALLOWED,
    "add_photos": PHOTOS_ALLOWED,
    "delete_photo": DRAFT_ONLY,
    "submit": ("NotYetSubmitted", "AwaitingPayment"),
    "cancel": ("NotYetSubmitted", "AwaitingPayment"),
}
CREATE_FIELDS = (*ADDRESS_FIELDS, "useTrackedShipping", "payment", "qualityLevel")
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
PHOTO_ADDS = ("add_photo", "add_photos")

ADDRESS_PARAMS = {
    "recipient": "recipientName", "address1": "address1", "address2": "address2",
    "town": "addressTownOrCity", "state": "stateOrCounty", "postcode": "postalOrZipCode",
    "country": "countryCode", "destination_country": "destinationCountryCode",
    "phone": "mobileTelephone", "email": "email",
}
"""Address parameters and the order fields they set."""
ORDER_PARAMS = {**ADDRESS_PARAMS, "payment": "payment", "quality": "qualityLevel",
                "tracked": "useTrackedShipping"}

FROM = Param("from", ParamType.FILE, metavar="FILE",
             help="read the fields from a JSON or TOML file (options win)")
ADDRESS = tuple(Param(name, metavar="TEXT", help=field) for name, field in ADDRESS_PARAMS.items())
PHOTO_PARAMS = (
    Param("url", repeatable=True, metavar="URL",
          help="where Pwinty downloads the photo; repeat for a batch"),
    Param("file", ParamType.PATH, metavar="PATH", help="a local image file to upload"),
    Param("type", required=True, metavar="T", help="catalogue item, e.g. 4x6, 8x10, 10x15_cm"),
    Param("copies", ParamType.INT, default=1, minimum=1, metavar="N", help="copies (default: 1)"),
    Param("sizing", choices=SIZINGS, default="Crop",
          help="how the image is fitted (default: Crop)"),
    Param("price_to_user", ParamType.INT, minimum=0, metavar="MINOR",
          help="price charged per copy, in pence/cents (InvoiceRecipient only)"),
)


def _fields(values: dict, names: dict[str, str]) -> dict:
    """A file's fields, then the options given (options win), as Pwinty names them."""
    given = {field: values[name] for name, field in names.items() if name in values}
    return {**values.get("from", {}), **given}


def _photos(values: dict) -> tuple[str, dict]:
    """Several URLs are one batch (add_photos); one URL or a file is one add_photo."""
    common = {"type": values["type"], "copies": values["copies"], "sizing": values["sizing"],
              "priceToUser": values.get("price_to_user")}
    if "file" in values:
        return "add_photo", {"photos": [{**common, "file": values["file"]}]}
    photos = [{**common, "url": url} for url in values["url"]]
    return ("add_photo" if len(photos) == 1 else "add_photos"), {"photos": photos}


ACTIONS = (
    ActionSpec("create", "create a print order at a Pwinty instance, from options or from a"
               " JSON or TOML file of the same fields (options win)",
               (FROM, *ADDRESS,
                Param("payment", choices=PAYMENTS, help="who pays (default: InvoiceMe)"),
                Param("quality", choices=QUALITY_LEVELS,
                      help="print quality (required, here or in --from)"),
                Param("tracked", ParamType.BOOL, help="use tracked shipping")),
               command=("print-order", "create"), creates=True,
               build=lambda v: ("create", {"fields": _fields(v, ORDER_PARAMS)})),
    ActionSpec("update_address", "change a draft print order's recipient address (only the"
               " fields given)", (FROM, *ADDRESS), command=("print-order", "address"),
               after=("create",),
               build=lambda v: ("update_address", {"fields": _fields(v, ADDRESS_PARAMS)})),
    ActionSpec("add_photo", "add photos to a draft print order: by URL (repeat --url for a"
               " batch) or by uploading a local JPEG (sent with its md5 so Pwinty can check it)",
               PHOTO_PARAMS, command=("photos", "add"), after=("create",),
               one_of=(("url", "file"),), build=_photos),
    ActionSpec("add_photos", "add several photos by URL in one batch", PHOTO_PARAMS,
               command=(), after=("create",), build=_photos),
    ActionSpec("delete_photo", "remove a photo from a draft print order",
               (Param("photo", required=True, positional=True, metavar="PHOTO",
                      help="the photo's id"),),
               command=("photos", "remove"),
               build=lambda v: ("delete_photo", {"photo_id": v["photo"]})),
    ActionSpec("submit", "submit Pwinty print orders once their SubmissionStatus says they"
               " are valid", many=True, after=("create", "add_photo", "add_photos")),
    ActionSpec("cancel", "cancel Pwinty print orders that are not yet submitted", many=True),
)
KINDS = {spec.kind: spec.description for spec in ACTIONS}


def photo_matches(photo: dict, wanted: dict) -> bool:
    """The same picture (URL or md5), the same product type and the same number of copies."""
    same_source = (wanted.get("url") and photo.get("url") == wanted["url"]) or (
        wanted.get("md5Hash") and photo.get("md5Hash") == wanted["md5Hash"])
    return bool(same_source) and photo.get("type") == wanted["type"] and str(
        photo.get("copies")) == str(wanted["copies"])


def count_matching(order: dict, wanted: dict) -> int:
    return sum(1 for photo in order.get("photos") or [] if photo_matches(photo, wanted))


def effect_present(kind: str, order: dict, payload: dict, notes: dict | None = None
                   ) -> bool | None:
    """Whether a fresh read of the order already shows the action's effect.

    Photos count as added when the order holds more photos with the same URL or md5, type
    and copies than it held just before the request (``notes["baselines"]``, counted and
    committed by :meth:`PwintyActions.checkpoint`; the count when queued otherwise), so
    adding the same photo twice on purpose still works.
    """
    notes = notes or {}
    status = order.get("status")
    if kind == "create":
        return None
    if kind == "update_address":
        return all(order.get(k) == v for k, v in payload["fields"].items())
    if kind in ("add_photo", "add_photos"):
        baselines = notes.get("baselines") or [p["baseline"] for p in payload["photos"]]
        return all(count_matching(order, photo) > baseline
                   for photo, baseline in zip(payload["photos"], baselines, strict=True))
    if kind == "delete_photo":
        return all(str(p.get("id")) != payload["photo_id"] for p in order.get("photos") or [])
    if kind == "submit":
        return status not in ("NotYetSubmitted", "AwaitingPayment")
    if kind == "cancel":
        return status == "Cancelled"
    raise ValueError(kind)


def readiness_problems(readiness: dict) -> list[str]:
    """What SubmissionStatus says blocks an order, as readable phrases."""
    problems = [str(e) for e in readiness.get("generalErrors") or []]
    for photo in readiness.get("photos") or []:
        for error in photo.get("errors") or []:
            problems.append(f"photo {photo.get('id')}: {error}")
    return problems


class PwintyActions:
    """Prepare, perform and verify Pwinty actions for one account."""

    def __init__(self, api: PwintyApi) -> None:
        self.api = api

    # -- prepare: checked when queued, against the ledger's copy ------------------------

    async def prepare(self, kind: str, order: StoredOrder | None, params: dict) -> dict:
        if kind not in KINDS:
            raise ActionRefused(f"pwinty cannot {kind}; it can {', '.join(KINDS)}")
        if kind == "create":
            return self._prepare_create(params)
        # order None: a later link of a chain, whose order an earlier link creates
        target = order.target if order else "the new order"
        status = order.vendor_state if order else "NotYetSubmitted"
        if status not in ALLOWED_FROM[kind]:
            verb = kind.replace("_", " ")
            raise ActionRefused(f"{target} is {status}; {verb} needs an order that is "
                                + " or ".join(ALLOWED_FROM[kind]))
        raw = (order.raw or {}) if order else {}
        if kind == "update_address":
            fields = {k: v for k, v in params.get("fields", {}).items() if v is not None}
            unknown = set(fields) - set(ADDRESS_FIELDS)
            if unknown:
                raise ActionRefused(f"not an address field: {sorted(unknown)[0]}")
            if not fields:
                raise ActionRefused("update address needs at least one field to change")
            return {"fields": fields}
        if kind in ("add_photo", "add_photos"):
            photos = [await self._photo(raw, photo) for photo in params["photos"]]
            if kind == "add_photos" and any(p.get("file") for p in photos):
                raise ActionRefused("a batch adds photos by URL only; upload files one by one")
            return {"photos": photos}
        if kind == "delete_photo":
            photo_id = str(params["photo_id"])
            if all(str(p.get("id")) != photo_id for p in raw.get("photos") or []):
                raise ActionRefused(f"{target} has no photo {photo_id}")
            return {"photo_id": photo_id}
        return {}

    def _prepare_create(self, params: dict) -> dict:
        fields = {k: v for k, v in params.get("fields", {}).items() if v not in (None, "")}
        unknown = set(fields) - set(CREATE_FIELDS)
        if unknown:
            raise ActionRefused(f"not an order field: {sorted(unknown)[0]}; fields: "
                                + ", ".join(CREATE_FIELDS))
        for required in ("recipientName", "countryCode", "qualityLevel"):
            if not fields.get(required):
                raise ActionRefused(f"a print order needs {required}")
        fields.setdefault("destinationCountryCode", fields["countryCode"])
        fields.setdefault("payment", "InvoiceMe")
        if fields["payment"] not in PAYMENTS:
            raise ActionRefused(f"payment must be {' or '.join(PAYMENTS)}")
        if fields["qualityLevel"] not in QUALITY_LEVELS:
            raise ActionRefused(f"qualityLevel must be {' or '.join(QUALITY_LEVELS)}")
        return {"fields": fields}

    async def _photo(self, raw: dict, photo: dict) -> dict:
        wanted: dict[str, Any] = {
            "type": photo.get("type"),
            "copies": photo.get("copies", 1),
            "sizing": photo.get("sizing", "Crop"),
        }
        if not wanted["type"]:
            raise ParameterError("type", "is required (a catalogue item such as 4x6)")
        if not isinstance(wanted["copies"], int) or wanted["copies"] < 1:
            raise ParameterError("copies", f"must be a whole number of at least 1,"
                                 f" got {wanted['copies']!r}")
        if wanted["sizing"] not in SIZINGS:
            raise ParameterError("sizing", f"must be one of {', '.join(SIZINGS)}")
        await self._check_type(raw, wanted["type"])
        if photo.get("priceToUser") is not None:
            wanted["priceToUser"] = photo["priceToUser"]
        if photo.get("url"):
            wanted["url"] = photo["url"]
            if not str(photo["url"]).startswith(("http://", "https://")):
                raise ParameterError("url", f"must be an http(s) URL, got {photo['url']!r}")
        elif photo.get("file"):
            wanted.update(_file_facts(Path(photo["file"])))
        else:
            raise ParameterError("url", "a photo needs a url or a file")
        wanted["baseline"] = count_matching(raw, wanted)
        return wanted

    async def _check_type(self, raw: dict, photo_type: str) -> None:
        country, quality = raw.get("countryCode"), raw.get("qualityLevel")
        if not (country and quality):
            return
        catalogue = await self.api.catalogue(country, quality)
        names = [i.get("name") for i in catalogue.get("items") or [] if isinstance(i, dict)]
        if names and photo_type not in names:
            raise ActionRefused(f"photo type {photo_type!r} is not in the {country}"
                                f" {quality} catalogue; it has {', '.join(map(str, names))}")

    # -- perform and verify -------------------------------------------------------------

    async def perform(self, action: Action) -> Outcome:
        order_id, payload, kind = action.vendor_id, action.payload, action.kind
        if kind == "create":
            order = await self.api.create_order(payload["fields"])
            return Outcome(True, {"order_id": str(order.get("id"))}, order)
        if kind == "update_address":
            await self.api.update_order(order_id, payload["fields"])
        elif kind == "add_photo":
            [photo] = payload["photos"]
            await self._add_one(order_id, photo)
        elif kind == "add_photos":
            answer = await self.api.add_photos(order_id, [_photo_fields(p) for p in
                                                          payload["photos"]])
            if answer.get("errorMessage"):
                raise ActionRefused(f"Pwinty refused the batch: {answer['errorMessage']}")
        elif kind == "delete_photo":
            try:
                await self.api.delete_photo(order_id, payload["photo_id"])
            except NotFound:
                return await self.verify(action)  # an earlier, unanswered delete did it
        elif kind == "submit":
            readiness = await self.api.submission_status(order_id)
            if not readiness.get("isValid"):
                problems = readiness_problems(readiness) or ["no reason given"]
                raise ActionRefused("Pwinty says the order cannot be submitted: "
                                    + "; ".join(problems))
            await self.api.set_status(order_id, "Submitted")
        elif kind == "cancel":
            await self.api.set_status(order_id, "Cancelled")
        return Outcome(True, {"kind": kind}, await self.api.order(order_id))

    async def _add_one(self, order_id: str, photo: dict) -> None:
        fields = _photo_fields(photo)
        if photo.get("file"):
            content = Path(photo["file"]).read_bytes() if Path(photo["file"]).is_file() else None
            if content is None or hashlib.md5(content).hexdigest() != photo["md5Hash"]:
                raise ActionRefused(f"{photo['file']} is gone or changed since it was queued")
            await self.api.upload_photo(order_id, fields, content, Path(photo["file"]).name)
        else:
            await self.api.add_photo(order_id, fields)

    async def checkpoint(self, action: Action) -> dict | None:
        """Before photos are sent: how many matching photos the order holds right now.

        The outbox sends one order's actions one at a time, so nothing of ours changes the
        order between this read and the request; the count is committed before the request.
        """
        if action.kind not in ("add_photo", "add_photos"):
            return None
        order = await self.api.order(action.vendor_id)
        return {"baselines": [count_matching(order, p) for p in action.payload["photos"]]}

    async def verify(self, action: Action) -> Outcome:
        if action.kind == "create":
            return Outcome(None, reason="Pwinty v2.2 orders carry no merchant reference, so an"
                           " order created without an answer cannot be found: look in the"
                           " Pwinty dashboard, then `actions cancel` (it exists) or"
                           " `actions retry` (it does not)")
        order = await self.api.order(action.vendor_id)
        if action.kind in PHOTO_ADDS and not (action.notes or {}).get("baselines"):
            # the baseline is committed before any photo request: without it none was sent,
            # and photos like this one on the order are someone else's
            return Outcome(False, {"verified": True}, order,
                           reason="no request was sent (cut off before its checkpoint)")
        done = effect_present(action.kind, order, action.payload, action.notes)
        return Outcome(done, {"verified": True}, order,
                       reason="the order already shows it" if done else "not on the order")


def _photo_fields(photo: dict) -> dict:
    return {k: photo[k] for k in ("type", "url", "copies", "sizing", "priceToUser", "md5Hash")
            if photo.get(k) is not None}


def _file_facts(path: Path) -> dict:
    try:
        content = read_bytes(path, MAX_UPLOAD_BYTES, "an upload")   # /dev/zero's size says 0
    except FileUnreadable as exc:
        raise ParameterError("file", str(exc)) from None
    return {"file": str(path.resolve()), "md5Hash": hashlib.md5(content).hexdigest(),
            "size": len(content)}
