"""The Pwinty simulator's photo endpoints: list, read, add one (by url or upload), add a
batch by url, and delete, with the rules of the package docstring."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from ordersync.simkit import HttpError

from .account import Account
from .catalogue import (
    _ATTRIBUTES,
    _COUNTRY,
    _SIZINGS,
    _TYPES,
    EMPTY_BATCH,
    EMPTY_PHOTO,
    JPEG_MAGIC,
    PHOTO_FIELDS,
    PHOTO_NOT_FOUND,
    PHOTOS_ADDABLE,
    PHOTOS_NOT_ADDABLE,
    _md5,
    download_outcome,
)
from .wire import _canonical, _choice, _text, _whole, empty_response, json_response, read_body


class PhotoRoutes(Account):
    """``/Orders/{id}/Photos``, ``.../Photos/Batch`` and ``.../Photos/{photo_id}``."""

    @staticmethod
    def _find_photo(order: dict, request: web.Request) -> dict:
        text = request.match_info["photo_id"]
        for photo in order["photos"]:
            if text.isdigit() and photo["id"] == int(text):
                return photo
        raise HttpError(404, PHOTO_NOT_FOUND, payload=EMPTY_PHOTO)

    async def _photos(self, request: web.Request) -> web.Response:
        oid = self._order_id(request)
        return json_response(orjson.dumps(orjson.loads(self._serialized(oid))["photos"]))

    async def _get_photo(self, request: web.Request) -> web.Response:
        oid = self._order_id(request, EMPTY_PHOTO)
        return json_response(orjson.dumps(self._find_photo(self._live(oid), request)))

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
        raw, upload = await read_body(request, EMPTY_PHOTO, allow_file=True)
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
        return json_response(orjson.dumps(photo))

    async def _add_batch(self, request: web.Request) -> web.Response:
        """A JSON array of photos by url, all validated before any is added."""
        oid, order = self._photo_order(request, EMPTY_BATCH)
        raw, _ = await read_body(request, EMPTY_BATCH, array=True)
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
        return json_response(orjson.dumps({"errorMessage": None, "items": items}))

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
        return empty_response()

