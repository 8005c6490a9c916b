"""How ordersync learns what changed at Pwinty, whose v2.x orders carry no modified time.

Orders are listed newest first (``GET /Orders?count&offset``) and ids only grow. Orders in
a final status (Complete, Cancelled) never change again, and open orders are nearly always
among the newest. So a poll walks the list from the top only as far as it must:

* past every order newer than the highest id the ledger has (new orders), and
* down to the oldest order the ledger holds in an open status (orders that can change),

and stops at the first page below both (orders stored flagged count as open: they are read
again until they can be read). Each walked order is written through the ledger,
which compares it with the stored copy and writes nothing for unchanged ones. The first
poll walks the whole list, storing a resume offset with every page.

An idle poll does not hand the ledger what it already holds: the pull remembers the
fingerprint of each order its last walk handed over (or found unchanged), and the next
walk hands over only the orders whose fingerprint differs; a page whose body is the one
the last walk read at the same offset is not even decoded. That memory is trusted only
when it cannot be stale: the last walk reached its end, the last order it handed over is
the ledger's copy (so every page before it was written too), no action has since stored a
copy of its own, and no order it remembers is flagged. Otherwise, and in a full walk,
every order is compared by the ledger as before.

For orders not yet submitted, Pwinty's SubmissionStatus (what blocks submitting) is read
and kept beside the order as ``submissionStatus``; it is read again only when the order
itself changed or the copy is older than ``readiness_max_age_s``.

A page that brings no order below the previous page's lowest id means Pwinty ignored
``offset``: the walk ends there as if the list had ended (the page says why), so that a
first sync finishes instead of resuming the same endless walk on every poll.

See docs/pwinty.md for the costs and the blind spots.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from ordersync.contract import LedgerReader, Page

from .client import PwintyApi
from .mapping import FINAL_STATUSES, STATES

OPEN_STATUSES = tuple(s for s in STATES if s not in FINAL_STATUSES)
NEEDS_READINESS = ("NotYetSubmitted", "AwaitingPayment")

log = structlog.get_logger("ordersync_adapters.pwinty")


class PwintyPull:
    """Pulls a Pwinty account's orders."""

    def __init__(self, api: PwintyApi, *, page_size: int = 100,
                 readiness_max_age_s: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.clock = clock
        self.page_size = page_size
        self.readiness_max_age_s = readiness_max_age_s
        self._readiness: dict[str, tuple[bytes, float, dict, bytes]] = {}
        self._last_walk: _Walk | None = None
        self._actions = 0

    def action_done(self) -> None:
        """An action ran: it may have stored a copy of an order the last walk remembers, so
        the next poll compares every order with the ledger again."""
        self._actions += 1

    async def pull(self, cursor: dict | None, view: LedgerReader,
                   now: float) -> AsyncGenerator[Page, None]:
        cursor = dict(cursor or {})
        resume = cursor.get("resume_offset")
        known_max = cursor.get("max_id")
        full_scan = known_max is None or resume is not None
        oldest_open, flagged = await self._open_orders(view)
        last_walk, self._last_walk = self._last_walk, None   # a walk that does not end: none
        trusted = None if full_scan else await self._trusted(last_walk, view)
        known = trusted.marks_but(flagged) if trusted else {}
        walk = _Walk(self._actions)
        offset = resume or 0
        highest = known_max or 0
        lowest: int | None = None
        stopped = None
        while True:
            same = trusted.pages.get(offset) if trusted else None
            if same is not None and not self._unchanged(same, known, now):
                same = None
            body, orders = await self.api.orders_page(self.page_size, offset,
                                                      same.body if same else None)
            read_at = self.clock()
            same = same if orders is None else None     # the body the last walk read here
            listed = orders or []
            if same is None and not listed:
                break
            ids = same.ids if same is not None else [_int_id(o) for o in listed]
            if lowest is not None and min(ids) >= lowest:
                stopped = (f"the order list repeats itself at offset {offset} (nothing below"
                           f" id {lowest}): the vendor ignores offset; the walk ends there")
                log.warning("paging_repeats", vendor=self.api.http.vendor, offset=offset)
                break
            lowest = min(ids)
            highest = max([highest, *ids])
            if same is not None:    # not even decoded: nothing on it to hand over
                walk.pages[offset] = same
                walk.marks.update(same.marks)
                handed: list[dict] = []
            else:
                # A full walk remembers only the orders that can change: its memory stays small.
                marks = await self._add_readiness(listed, ids, now, final_too=not full_scan)
                handed = walk.changed(listed, ids, marks, known)
                walk.read(offset, body, ids, listed, marks)
            offset += len(ids)
            progress = {"resume_offset": offset} if full_scan else None
            yield Page(handed, progress, read_at)
            # No page size is trusted to mark the end (the server may cap ``count``):
            # only an empty page does, or, when polling, having passed both marks.
            if not full_scan and min(ids) <= (known_max or 0) and (
                oldest_open is None or min(ids) <= oldest_open
            ):
                break
        yield Page([], {"max_id": highest}, stopped=stopped)
        self._last_walk = walk      # it reached its end: the next poll may trust it

    async def _open_orders(self, view: LedgerReader) -> tuple[int | None, set[str]]:
        """The oldest order that can still change, and the ids of the flagged orders."""
        ids = [order.vendor_id for status in OPEN_STATUSES
               for order in await view.in_vendor_state(status)]
        flagged = {order.vendor_id for order in await view.flagged()}
        numbers = [int(i) for i in [*ids, *flagged] if str(i).isdigit()]
        return (min(numbers) if numbers else None), flagged

    async def _trusted(self, walk: _Walk | None, view: LedgerReader) -> _Walk | None:
        """The last walk if the ledger surely holds every order as that walk saw it: no
        action ran since it began, and the last order it handed over is the ledger's copy
        (pages are written in order, so every one before it was too)."""
        if walk is None or walk.actions != self._actions:
            return None
        if walk.last_handed is not None:
            vendor_id, order = walk.last_handed
            stored = await view.stored(vendor_id)
            if stored is None or _fingerprint(stored) != _fingerprint(order):
                return None
        return walk

    def _unchanged(self, page: _PageSeen, known: dict[str, bytes], now: float) -> bool:
        """Whether that page, read again byte for byte, would hand nothing over: each of its
        orders is known as it was, and no readiness on it is due to be read again."""
        if any(known.get(key) != mark for key, mark in page.marks.items()):
            return False
        for key in page.drafts:
            cached = self._readiness.get(key)
            if not (cached and now - cached[1] < self.readiness_max_age_s
                    and cached[0] + cached[3] == page.marks[key]):
                return False
        return True

    async def _add_readiness(self, orders: list[dict], ids: list[int], now: float, *,
                             final_too: bool) -> list[bytes | None]:
        """Attach SubmissionStatus to orders not yet submitted (re-read only when needed).

        Each order's mark: the fingerprint of the order as listed, then of its readiness;
        None for an order without an id, and for a final one unless ``final_too``."""
        marks: list[bytes | None] = []
        for order, order_id in zip(orders, ids, strict=True):
            status = order.get("status")
            if not order_id or not (final_too or status not in FINAL_STATUSES):
                marks.append(None)  # an order without an id is stored flagged, not asked about
                continue
            fingerprint = _fingerprint(order)
            if status not in NEEDS_READINESS:
                marks.append(fingerprint)
                continue
            key = str(order["id"])
            cached = self._readiness.get(key)
            if not (cached and cached[0] == fingerprint
                    and now - cached[1] < self.readiness_max_age_s):
                readiness = await self.api.submission_status(key)
                cached = (fingerprint, now, readiness, _fingerprint(readiness))
                self._readiness[key] = cached
            order["submissionStatus"] = cached[2]
            marks.append(fingerprint + cached[3])
        return marks


@dataclass(frozen=True, slots=True)
class _PageSeen:
    """A page a walk read and remembered in full: its body's fingerprint, ids and marks."""

    body: bytes
    ids: list[int]
    marks: dict[str, bytes]
    drafts: tuple[str, ...]
    """The orders on it that carry a SubmissionStatus."""


class _Walk:
    """One walk's memory: the mark of each order it handed to the ledger or found unchanged,
    and the pages whose every order it remembers."""

    def __init__(self, actions: int) -> None:
        self.actions = actions
        """How many actions had run when the walk began."""
        self.marks: dict[str, bytes] = {}
        self.pages: dict[int, _PageSeen] = {}
        self.last_handed: tuple[str, dict] | None = None
        """The last order handed to the ledger (as handed) and its id."""

    def marks_but(self, flagged: set[str]) -> dict[str, bytes]:
        return {key: mark for key, mark in self.marks.items() if key not in flagged}

    def changed(self, orders: list[dict], ids: list[int], marks: list[bytes | None],
                known: dict[str, bytes]) -> list[dict]:
        """The orders whose mark is not the one ``known`` for them; remembers each mark."""
        handed = []
        for order, order_id, mark in zip(orders, ids, marks, strict=True):
            key = str(order["id"]) if order_id else None
            if key is not None and mark is not None and known.get(key) == mark:
                self.marks[key] = mark
                continue
            handed.append(order)
            if key is None:
                continue
            self.last_handed = (key, order)
            if mark is None:
                self.marks.pop(key, None)
            else:
                self.marks[key] = mark
        return handed

    def read(self, offset: int, body: bytes, ids: list[int], orders: list[dict],
             marks: list[bytes | None]) -> None:
        """Remember a page read at ``offset`` if every order on it is remembered."""
        if all(ids) and None not in marks:
            keys = [str(order["id"]) for order in orders]
            self.pages[offset] = _PageSeen(
                body, ids,
                {key: mark for key, mark in zip(keys, marks, strict=True) if mark is not None},
                tuple(key for key, order in zip(keys, orders, strict=True)
                      if order.get("status") in NEEDS_READINESS))


def _int_id(order: dict) -> int:
    ident: Any = order.get("id")  # None or anything else: the TypeError below
    try:
        return int(ident)
    except (TypeError, ValueError):
        return 0


def _fingerprint(order: dict) -> bytes:
    """A short fingerprint of the order's JSON, also of one orjson cannot write (a number
    beyond 64 bits: the order is stored flagged, and must not stop the page on its way)."""
    try:
        text = orjson.dumps(order)
    except TypeError:
        text = json.dumps(order, sort_keys=True, default=repr).encode()
    return hashlib.blake2b(text, digest_size=16).digest()
