"""The Pwinty simulator's wire: request bodies as ASP.NET binds them (JSON, forms with
case-insensitive names, multipart uploads), field values checked and made canonical, and the
plain JSON answers."""

from __future__ import annotations

import email.message
from typing import Any, Literal, overload
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from ordersync.simkit import HttpError

from .catalogue import _fold


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


async def read_body(request: web.Request, empty: dict, *, allow_file: bool = False,
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


def json_response(body: bytes, content_type: str = "application/json",
                  status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type=content_type, charset="utf-8")


def empty_response() -> web.Response:
    return web.Response(status=200)
