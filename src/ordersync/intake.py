"""What a raw vendor order must pass to be mapped, and what is kept when it does not.

One bad order never costs the page, the poll or the daemon. An order the adapter's mapping
cannot read, that breaks a configured :class:`Limits`, or whose values SQLite cannot store
is kept all the same, *flagged*: under its vendor id (from the adapter's ``identify``, when
it can find one), in state ``unknown``, with its raw JSON (truncated to ``max_order_bytes``
and marked so) and a one-line ``problem``. An order that was read but held bytes that were
not UTF-8 (the HTTP layer replaces them with U+FFFD) is mapped as usual and flagged too.

Pure: no session, no clock, no vendor vocabulary.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .model import Order, OrderRow, State, order_row

UNREADABLE_STATE = "(unreadable)"
"""The vendor_state of an order the mapping could not read."""

REPLACEMENT = "\ufffd".encode()
"""U+FFFD in UTF-8: what the HTTP layer put where a vendor sent bytes that are not UTF-8."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How big one order may be (per vendor instance; see docs/states.md)."""

    max_order_bytes: int = 1_048_576
    """Raw JSON per order; a bigger order is flagged and its raw kept truncated to this."""
    max_items: int = 10_000
    """Entries of any list at the top level of an order (its items, photos ...)."""
    max_string_chars: int = 65_536
    """Characters of any one string in an order."""


def admit(raw: Any, map_order: Callable[[dict], Order],
          identify: Callable[[dict], tuple[str, str | None] | None] | None,
          limits: Limits) -> Order:
    """The order to store for one raw vendor order: mapped, or flagged with the reason.

    Runs for every order of every page, so the usual order pays for two length checks and
    one byte search beside its mapping. (A value SQLite cannot hold that the mapping passes
    on, such as a quantity beyond 64 bits, is caught when the page is written: pages.py.)
    """
    try:
        problem = _long_list(raw, limits.max_items)
        if problem is None:
            order = map_order(raw)
            problem, kept = _judged(raw, order.raw, order.vendor_id, limits)
            if problem is None:
                return order
            if kept:
                return replace(order, problem=problem)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        problem = f"unreadable: {exc}"[:500]
    return flagged(raw, problem, identify, limits)


def admit_row(raw: Any, map_row: Callable[[dict], OrderRow],
              identify: Callable[[dict], tuple[str, str | None] | None] | None,
              limits: Limits) -> OrderRow:
    """:func:`admit` for an adapter that maps straight to the ledger's row (``map_row``):
    the row, or a flagged order's."""
    try:
        problem = _long_list(raw, limits.max_items)
        if problem is None:
            row = map_row(raw)
            problem, kept = _judged(raw, row[4], row[0], limits)
            if problem is None:
                return row
            if kept:
                return (row[0], problem, *row[2:])
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        problem = f"unreadable: {exc}"[:500]
    return order_row(flagged(raw, problem, identify, limits))


def _judged(raw: Any, text: bytes, vendor_id: str, limits: Limits) -> tuple[str | None, bool]:
    """What is wrong with a mapped order's JSON ``text`` (None: nothing), and whether its
    mapping is kept all the same (flagged) rather than replaced by :func:`flagged`'s."""
    size = len(text)
    if size > limits.max_string_chars or size > limits.max_order_bytes:
        problem = _over_size(raw, size, limits)
        if problem is not None:
            return problem, False
    if b"\xef" in text and REPLACEMENT in text:     # memchr first: cheap
        return "bytes that are not UTF-8 (replaced with U+FFFD)", "\ufffd" not in vendor_id
    return None, True


def sound_text(raw: Any, limits: Limits) -> bytes | None:
    """The order's JSON as adapters keep it (``orjson.dumps``) if :func:`admit` would find
    nothing wrong with it short of its mapping; None otherwise (or when unsure)."""
    if _long_list(raw, limits.max_items) is not None:
        return None
    try:
        text = orjson.dumps(raw)
    except TypeError:
        return None
    if len(text) > min(limits.max_string_chars, limits.max_order_bytes) or REPLACEMENT in text:
        return None
    return text


def flagged(raw: Any, problem: str, identify, limits: Limits) -> Order:
    """A flagged order: its vendor id and url if they can be found, its raw JSON (bounded)."""
    try:
        text = orjson.dumps(raw)
    except TypeError:   # a number beyond 64 bits, a lone surrogate: JSON that stays readable
        text = json.dumps(raw, ensure_ascii=False, default=repr).encode("utf-8", "replace")
    found = None
    if identify is not None and isinstance(raw, dict):
        try:
            found = identify(raw)
        except (ValueError, TypeError, KeyError, AttributeError):
            found = None
    if found is not None and "\ufffd" in found[0]:
        found = None   # an id whose bytes were replaced is not one the vendor would know
    vendor_id, url = found or (
        "unidentified-" + hashlib.blake2b(text, digest_size=6).hexdigest(), None)
    if len(text) > limits.max_order_bytes:
        head = text[: limits.max_order_bytes].decode("utf-8", "ignore")
        problem += f"; raw kept truncated to {limits.max_order_bytes} of {len(text)} bytes"
        text = orjson.dumps({"ordersync_truncated": {"bytes": len(text),
                                                     "kept": limits.max_order_bytes},
                             "head": head})
    return Order(vendor_id, State.UNKNOWN, UNREADABLE_STATE, None, None, None, text, url=url,
                 problem=problem)


def _over_size(raw: Any, size: int, limits: Limits) -> str | None:
    if size > limits.max_order_bytes:
        return f"{size} bytes of JSON (limit max_order_bytes = {limits.max_order_bytes})"
    return _long_string(raw, limits.max_string_chars)


def _long_list(raw: Any, max_items: int) -> str | None:
    if type(raw) is not dict:
        return None             # the mapping says what is wrong with it
    for key, value in raw.items():
        if type(value) is list and len(value) > max_items:
            return f"{len(value)} entries in {key!r} (limit max_items = {max_items})"
    return None


def _long_string(value: Any, max_chars: int) -> str | None:
    """The first string (or key) longer than ``max_chars``, described; None if there is none."""
    stack = [value]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if len(value) > max_chars:
                return f"a string of {len(value)} characters (limit max_string_chars = {max_chars})"
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None
