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
        self._readiness: dict[str, tuple[bytes, float, dict]] = {}

    async def pull(self, cursor: dict | None, view: LedgerReader,
                   now: float) -> AsyncGenerator[Page, None]:
        cursor = dict(cursor or {})
        resume = cursor.get("resume_offset")
        known_max = cursor.get("max_id")
        full_scan = known_max is None or resume is not None
        oldest_open = await self._oldest_open(view)
        offset = resume or 0
        highest = known_max or 0
        lowest: int | None = None
        stopped = None
        while True:
            orders = await self.api.orders_page(self.page_size, offset)
            read_at = self.clock()
            if not orders:
                break
            ids = [_int_id(o) for o in orders]
            if lowest is not None and min(ids) >= lowest:
                stopped = (f"the order list repeats itself at offset {offset} (nothing below"
                           f" id {lowest}): the vendor ignores offset; the walk ends there")
                log.warning("paging_repeats", vendor=self.api.http.vendor, offset=offset)
                break
            lowest = min(ids)
            highest = max([highest, *ids])
            offset += len(orders)
            await self._add_readiness(orders, now)
            progress = {"resume_offset": offset} if full_scan else None
            yield Page(orders, progress, read_at)
            # No page size is trusted to mark the end (the server may cap ``count``):
            # only an empty page does, or, when polling, having passed both marks.
            if not full_scan and min(ids) <= (known_max or 0) and (
                oldest_open is None or min(ids) <= oldest_open
            ):
                break
        yield Page([], {"max_id": highest}, stopped=stopped)

    async def _oldest_open(self, view: LedgerReader) -> int | None:
        ids = [order.vendor_id for status in OPEN_STATUSES
               for order in await view.in_vendor_state(status)]
        ids += [order.vendor_id for order in await view.flagged()]
        numbers = [int(i) for i in ids if str(i).isdigit()]
        return min(numbers) if numbers else None

    async def _add_readiness(self, orders: list[dict], now: float) -> None:
        """Attach SubmissionStatus to orders not yet submitted (re-read only when needed)."""
        for order in orders:
            if order.get("status") not in NEEDS_READINESS or not _int_id(order):
                continue        # an order without an id is stored flagged, not asked about
            key = str(order.get("id"))
            fingerprint = hashlib.blake2b(_canonical(order), digest_size=16).digest()
            cached = self._readiness.get(key)
            if cached and cached[0] == fingerprint and now - cached[1] < self.readiness_max_age_s:
                readiness = cached[2]
            else:
                readiness = await self.api.submission_status(key)
                self._readiness[key] = (fingerprint, now, readiness)
            order["submissionStatus"] = readiness


def _int_id(order: dict) -> int:
    ident: Any = order.get("id")  # None or anything else: the TypeError below
    try:
        return int(ident)
    except (TypeError, ValueError):
        return 0


def _canonical(order: dict) -> bytes:
    """The order's JSON with sorted keys, also for one orjson cannot write (a number beyond 64
    bits: the order is stored flagged, and must not stop the page on its way there)."""
    try:
        return orjson.dumps(order, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(order, sort_keys=True, default=repr).encode()
