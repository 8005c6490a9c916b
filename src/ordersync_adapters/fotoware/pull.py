"""How ordersync learns what changed on a FotoWeb site without re-reading every order.

FotoWeb offers no "modified since" filter and no change feed, but it counts each admin list
cheaply. The ledger can count the same things. So a poll is:

1. **Counts** of history, pending, approved and rejected: four requests. Equal to the counts
   stored at the end of the last poll means nothing that changes a count happened: the poll
   ends there and writes nothing.
2. **Head of history.** Lists are newest first, so new orders are on the first pages: read
   pages until one holds an order the ledger already has.
3. **Lists that disagree with the ledger.** For pending, approved and rejected, compare the
   vendor's count with the ledger's count of orders in that state. Where they differ, first
   re-read the orders the ledger holds in that state whose ``expires`` has passed (the usual
   reason an approved order leaves its list), then, if the counts still differ, walk the list
   and re-read each order the ledger holds in that state that the list no longer has.
4. **Full scan** of history when the ledger holds fewer orders than history counts, on the
   first poll, and every ``full_scan_interval_s``: this catches edits that change no count
   (a PATCH of a pending order's comment, say). A full scan stores a resume point with every
   page, so a crash in the middle resumes there instead of starting over.

Orders stored flagged (unreadable, over a limit) are read again on every poll until they
can be read. A list that repeats itself (a ``next`` link already followed, or a page with
the same orders as one already listed in the same walk) ends the walk there, as if the list had
ended, and the poll says why: a full scan finishes instead of resuming the same endless walk.

See docs/fotoware.md for what this costs and where it is blind.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from ordersync.contract import LedgerReader, Page
from ordersync.errors import NotFound
from ordersync.ledger.records import OrderRef

from .client import FotowareApi
from .mapping import order_id

RECONCILED_LISTS = ("pending", "approved", "rejected")

log = structlog.get_logger("ordersync_adapters.fotoware")


class FotowarePull:
    """Pulls a FotoWeb site's orders: counts first, pages only where something changed."""

    def __init__(self, api: FotowareApi, *, full_scan_interval_s: float = 86400.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.full_scan_interval_s = full_scan_interval_s
        self.clock = clock
        self._stopped: str | None = None

    async def pull(
        self, cursor: dict | None, view: LedgerReader, now: float
    ) -> AsyncGenerator[Page, None]:
        cursor = dict(cursor or {})
        self._stopped = None
        counts = {name: await self.api.count(name) for name in ("history", *RECONCILED_LISTS)}
        resume = cursor.get("resume")
        full_scan_at = cursor.get("full_scan_at", 0.0)
        if resume or "counts" not in cursor or now - full_scan_at >= self.full_scan_interval_s:
            async for page in self._full_scan(cursor, resume):
                yield page
            yield Page([], {"counts": counts, "full_scan_at": now}, stopped=self._stopped)
            return
        async for page in self._read(await view.flagged()):
            yield page
        if counts == cursor["counts"]:
            return
        async for page in self._head_of_history(view):
            yield page
        for list_name in RECONCILED_LISTS:
            async for page in self._reconcile(list_name, counts[list_name], view, now):
                yield page
        stored = sum((await view.count_by_vendor_state()).values())
        if stored < counts["history"]:
            # Orders we never saw, beyond the head: only a full scan finds them.
            async for page in self._full_scan(cursor, None):
                yield page
            full_scan_at = now
        yield Page([], {"counts": counts, "full_scan_at": full_scan_at}, stopped=self._stopped)

    async def _pages(self, list_name: str,
                     start: str | None = None) -> AsyncIterator[tuple[list[dict], str | None]]:
        """``api.pages``, ended (with the reason kept) where the list repeats itself."""
        followed: set[str | None] = {start or (await self.api.admin_urls())[list_name]}
        listed: set[int] = set()      # a fingerprint per page: ids of every order cost MBs
        async for orders, next_url in self.api.pages(list_name, start):
            page = _fingerprint(orders)
            if orders and page in listed:
                self._repeats(list_name, "a page already listed, the same orders again")
                return
            listed.add(page)
            if next_url in followed:
                self._repeats(list_name, "a next link already followed")
                next_url = None
            followed.add(next_url)
            yield orders, next_url
            if next_url is None:
                return

    def _repeats(self, list_name: str, what: str) -> None:
        self._stopped = f"the {list_name} list repeats itself ({what}); the walk ends there"
        log.warning("paging_repeats", vendor=self.api.http.vendor, list=list_name, what=what)

    async def _full_scan(self, cursor: dict, resume: dict | None) -> AsyncIterator[Page]:
        kept = {k: v for k, v in cursor.items() if k != "resume"}
        start = resume.get("next") if isinstance(resume, dict) else None
        async for orders, next_url in self._pages("history", start):
            progress = {**kept, "resume": {"next": next_url}} if next_url else kept
            yield Page(orders, progress, self.clock())

    async def _head_of_history(self, view: LedgerReader) -> AsyncIterator[Page]:
        """New orders come first; the first order the ledger already has ends the walk."""
        async for orders, _ in self._pages("history"):
            read_at = self.clock()
            known = await view.known_modified(_ids(orders))
            if any(known.get(_id(o), "\0") != o.get("modified") for o in orders):
                yield Page(orders, read_at=read_at)
            if known:
                return

    async def _reconcile(
        self, list_name: str, vendor_count: int, view: LedgerReader, now: float
    ) -> AsyncIterator[Page]:
        if await self._stored_count(view, list_name) == vendor_count:
            return
        stored = await view.in_vendor_state(list_name)
        lapsed = [o for o in stored if _has_lapsed(o.expires, now)]
        if lapsed:
            async for page in self._read(lapsed):
                yield page
            if await self._stored_count(view, list_name) == vendor_count:
                return
            stored = await view.in_vendor_state(list_name)
        listed: set[str] = set()
        async for orders, _ in self._pages(list_name):
            listed.update(_ids(orders))
            yield Page(orders, read_at=self.clock())
        departed = [o for o in stored if o.vendor_id not in listed]
        async for page in self._read(departed):
            yield page

    async def _read(self, stored: list[OrderRef]) -> AsyncIterator[Page]:
        """Fresh copies of stored orders, each its own page stamped with its read time; one
        the site no longer has is logged and skipped."""
        for order in stored:
            if order.url is None:  # every order read from Fotoware has its href; never asked
                log.warning("order_without_url", vendor=self.api.http.vendor,
                            order=order.vendor_id)
                continue
            try:
                fresh = await self.api.order(order.url)
            except NotFound:
                log.warning("order_gone", vendor=self.api.http.vendor, order=order.vendor_id)
                continue
            yield Page([fresh], read_at=self.clock())

    @staticmethod
    async def _stored_count(view: LedgerReader, vendor_state: str) -> int:
        return (await view.count_by_vendor_state()).get(vendor_state, 0)


def _id(order: dict[str, Any]) -> str:
    href = order.get("href")
    return order_id(href) if isinstance(href, str) and href else ""


def _fingerprint(orders: list) -> int:
    """A page's orders, as one number: their hrefs (not their ids: no href parsed)."""
    try:
        return hash(tuple([o.get("href") if type(o) is dict else None for o in orders]))
    except TypeError:           # an href that is a list or an object: no order of ours
        return hash(tuple(_ids(orders)))


def _ids(orders: list[dict]) -> list[str]:
    return [i for i in map(_id, orders) if i]


def _has_lapsed(expires: str | None, now: float) -> bool:
    if not expires:
        return False
    try:
        when = datetime.fromisoformat(expires)
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() <= now
