"""What a vendor's answer means: its body read as JSON (leniently where orjson refuses), its
Retry-After, and its status (with the vendor's own meanings and body-aware reading) turned
into the error tree of :mod:`ordersync.errors`. Pure functions; :mod:`ordersync.http` sends
the requests and applies them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from .errors import (
    AmbiguousError,
    AuthError,
    BadResponse,
    LinkRefused,
    NotFound,
    RateLimited,
    Rejected,
    VendorError,
    VendorUnavailable,
)

Classifier = Callable[[int, Mapping[str, str], bytes], "type[VendorError] | None"]
"""A vendor's pure reading of an error answer ``(status, headers, body)`` by its body (e.g.
a 403 that says "rate limit"): the class to raise, or None to leave it to :func:`classify`."""


@dataclass(frozen=True, slots=True)
class Response:
    """A vendor's answer, read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    method: str
    url: str

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON (or not labelled JSON) is a
        :class:`BadResponse`.

        What orjson refuses but is still JSON is read leniently (:func:`lenient_json`): bytes
        that are not UTF-8 and lone surrogates (``"\\ud800"``) become U+FFFD, integers beyond
        64 bits are kept as Python integers, so that one bad order does not cost a whole page:
        intake.py flags it.
        """
        content_type = self.headers.get("Content-Type", "")
        if content_type and "json" not in content_type.lower():
            raise BadResponse(f"answer is {content_type.split(';')[0]}, not JSON",
                              method=self.method, url=self.url, status=self.status)
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            try:
                return lenient_json(self.body)
            except ValueError:
                raise BadResponse(
                    f"answer is not valid JSON ({exc})", method=self.method, url=self.url,
                    status=self.status,
                ) from None


def lenient_json(body: bytes) -> Any:
    """JSON that orjson refuses but a reader can keep: a ValueError if it is not JSON at all.

    Only the rare page orjson cannot read comes here. Strings come back as valid Unicode
    (undecodable bytes and lone surrogates as U+FFFD); NaN and Infinity are not JSON.
    """
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        tree = json.loads(body.decode("utf-8", "replace"), parse_constant=no_constants)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return _valid_unicode(tree)


def _valid_unicode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:   # a lone surrogate: U+FFFD, as for bytes that are not UTF-8
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, list):
        return [_valid_unicode(item) for item in value]
    if isinstance(value, dict):
        return {_valid_unicode(key): _valid_unicode(item) for key, item in value.items()}
    return value


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def vendor_message(body: bytes) -> str:
    """The vendor's own words from an error body: a message field, or the text itself."""
    text = body[:2000].decode("utf-8", "replace").strip()
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return text
    if isinstance(parsed, dict):
        for key in ("message", "Message", "errorMessage", "error_description", "error"):
            if isinstance(parsed.get(key), str) and parsed[key]:
                return parsed[key]
    return text


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    safe: bool,
    now: float,
    overrides: Mapping[int, type[VendorError]] | None = None,
) -> type[VendorError] | None:
    """Which error class an HTTP status means, or None when it is a success.

    ``overrides`` carries a vendor's own meanings (Pwinty's 403 is "not in this state",
    a refusal, not a permission problem).
    """
    if 300 <= status < 400:
        return LinkRefused if safe else AmbiguousError  # redirects are never followed
    if status < 400:
        return None
    if overrides and status in overrides:
        return overrides[status]
    if status == 429:
        return RateLimited
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFound
    if status in (502, 503, 504):
        return VendorUnavailable if safe else AmbiguousError
    if status >= 500:
        return VendorUnavailable if safe else AmbiguousError
    return Rejected


def error_for(
    response: Response, *, safe: bool, now: float, vendor: str,
    overrides: Mapping[int, type[VendorError]] | None = None,
    classifier: Classifier | None = None,
) -> VendorError | None:
    """The exception to raise for a response, or None when the response is a success."""
    cls = None
    if classifier is not None and response.status >= 400:
        cls = classifier(response.status, response.headers, response.body)
    cls = cls or classify(response.status, response.headers, response.body, safe=safe, now=now,
                          overrides=overrides)
    if cls is None:
        return None
    message = vendor_message(response.body) or f"HTTP {response.status}"
    if 300 <= response.status < 400:
        message = (f"redirected to {response.headers.get('Location', '(nowhere)')}; ordersync"
                   " follows no redirects")
    where: dict[str, Any] = dict(vendor=vendor, method=response.method, url=response.url,
                                 status=response.status)
    if cls in (RateLimited, VendorUnavailable):
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        return cls(message, retry_after_s=retry_after, **where)
    return cls(message, **where)
