"""How ordersync learns what changed at a reseller API V3 organisation.

* **Orders that changed.** ``GET /api/orders?stage=All`` (the default stage lists only
  confirmed orders: drafts, and so their expiry, would never be seen), paged. The first
  poll lists everything by id (a resume page index stored with every page); later polls
  ask only for ``$filter=updatedAt gt datetime'D'`` with ``$orderby=updatedAt asc``, where D
  is the day before the newest ``updatedAt`` seen (the vendor's dates have no time of day),
  so an idle poll re-lists a day or two of changes, not the ledger. Orders whose
  ``updatedAt`` equals the stored one cost nothing more (unless stamped within a second
  of the previous poll, when a second change could carry the same stamp); each changed
  order is read with its
  items, each item's characteristics, its custom fields and, if confirmed and not final, its
  execution status.
* **Executions.** A Submitted order's execution (InProgress -> Completed or Failed) is read
  each poll while it is in progress; Completed and Failed are remembered and not read again
  unless the order changes (after a restart, once more).
* **Drafts that expire.** The vendor deletes a draft 7 days after ``orderDate``; it then
  vanishes from every list. A draft the ledger holds whose ``expirationDate`` has passed is
  read once (``GET /api/orders/{id}``): a 404 marks the stored copy expired (kept, never
  forgotten); anything else is stored as read. No request is spent on drafts not yet due.

See docs/reseller.md for the costs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from datetime import datetime, timedelta, timezone

import structlog

from ordersync.clock import iso
from ordersync.contract import LedgerReader, Page
from ordersync.errors import NotFound, Rejected

from .client import ResellerApi
from .mapping import DRAFT, FINAL_EXECUTIONS, FINAL_STATUSES, UNCONFIRMED

log = structlog.get_logger("ordersync_adapters.reseller")

EXPIRY_WARNING_S = 86400.0


class ResellerPull:
    """Pulls one organisation's orders."""

    def __init__(self, api: ResellerApi, *, page_size: int = 100,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.page_size = page_size
        self.clock = clock
        self._executions: dict[str, dict] = {}
        self._fresh: set[str] = set()   # orders read in full during the current poll
        self._warned: set[str] = set()

    async def pull(self, cursor: dict | None, view: LedgerReader,
                   now: float) -> AsyncGenerator[Page, None]:
        cursor = dict(cursor or {})
        since = cursor.get("since")
        newest = since
        if since is None or cursor.get("resume_page") is not None:
            params = {"stage": "All", "$orderby": "id asc"}
            first_page, full_scan = cursor.get("resume_page", 1), True
        else:
            day = _parse(since).date() - timedelta(days=1)
            params = {"stage": "All", "$filter": f"updatedAt gt datetime'{day.isoformat()}'",
                      "$orderby": "updatedAt asc"}
            first_page, full_scan = 1, False
        # updatedAt has whole seconds: a change in the second of the last poll's read may
        # carry the stamp already stored, so orders stamped since then are read again.
        recent = _sort_key(cursor.get("polled_at") or "") - 1 if cursor.get("polled_at") \
            else float("inf")
        page_index, self._fresh = first_page, set()
        async for orders in self.api.pages(params, self.page_size, first_page):
            page_index += 1
            known = await view.known_modified(str(o.get("id")) for o in orders)
            changed = [o for o in orders if str(o.get("id")) not in known
                       or known[str(o.get("id"))] != o.get("updatedAt")
                       or _sort_key(_stamp(o)) >= recent]
            for order in changed:
                if _path_id(order.get("id")):
                    await self._complete(order)   # an order without a usable id is skipped
            newest = max([newest or "", *(_stamp(o) for o in orders)], key=_sort_key) or None
            progress = {"resume_page": page_index, "since": since or newest} if full_scan else None
            yield Page(changed, progress, self.clock())
        executions = await self._executions_due(view)
        if executions:
            yield Page(executions, None, self.clock())
        expired = await self._lapsed_drafts(view, now)
        if expired:
            yield Page(expired, None, self.clock())
        yield Page([], {"since": newest, "polled_at": iso(now)} if newest else {})

    async def _complete(self, order: dict, execution: dict | None = None) -> None:
        """Attach items (with characteristics), custom fields and the execution status
        (``execution`` when it was just read)."""
        order_id = str(order.get("id"))
        self._fresh.add(order_id)
        items = await self.api.items(order_id)
        for item in items:
            if _path_id(item.get("id")):
                item["characteristics"] = await self.api.characteristics(order_id,
                                                                         str(item["id"]))
        order["items"] = items
        order["customFields"] = await self.api.custom_fields(order_id)
        status = order.get("status")
        if status not in UNCONFIRMED and status not in FINAL_STATUSES:
            execution = execution or await self._execution(order_id)
            if execution is not None:
                order["executionStatus"] = execution

    async def _execution(self, order_id: str) -> dict | None:
        """The execution status (None for a status the vendor keeps none for), remembered."""
        try:
            execution = await self.api.execution(order_id)
        except Rejected:  # an organisation's own status the vendor does not call confirmed
            return None
        self._executions[order_id] = execution
        return execution

    async def read_order(self, order_id: str, execution: dict | None = None) -> dict:
        """One order with everything the pull attaches (what an action's outcome carries)."""
        order = await self.api.order(order_id)
        await self._complete(order, execution)
        return order

    async def _executions_due(self, view: LedgerReader) -> list[dict]:
        """Orders whose execution is in progress (or unknown since a restart), read again."""
        due: list[dict] = []
        for status in await view.count_by_vendor_state():
            if status in UNCONFIRMED or status in FINAL_STATUSES or status.startswith(DRAFT):
                continue
            for stored in await view.in_vendor_state(status):
                order_id = stored.vendor_id
                if order_id in self._fresh or not _path_id(order_id):
                    continue
                known = self._executions.get(order_id)
                if known is None:  # not read since start-up: what the ledger holds
                    raw = await view.stored(order_id) or {}
                    known = raw.get("executionStatus")
                if isinstance(known, dict) and str(known.get("status")) in FINAL_EXECUTIONS:
                    self._executions[order_id] = known
                    continue
                execution = await self._execution(order_id)
                if execution is not None and execution != known:
                    due.append(await self.read_order(order_id, execution))
        return due

    async def _lapsed_drafts(self, view: LedgerReader, now: float) -> list[dict]:
        """Drafts past their expirationDate: read once; gone (404) -> marked expired."""
        marked: list[dict] = []
        for stored in await view.in_vendor_state(DRAFT):
            expires = timestamp(stored.expires)
            if expires is None or not _path_id(stored.vendor_id):
                continue
            left_s = expires - now
            if left_s > 0:
                if left_s < EXPIRY_WARNING_S and stored.vendor_id not in self._warned:
                    self._warned.add(stored.vendor_id)
                    log.warning("draft_expires_soon", order=stored.vendor_id,
                                expires=stored.expires)
                continue
            try:
                marked.append(await self.read_order(stored.vendor_id))
            except NotFound:
                raw = await view.stored(stored.vendor_id)
                if raw is not None:
                    marked.append({**raw, "ordersyncExpired": iso(now)})
        return marked


def _parse(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def timestamp(value: object) -> float | None:
    """Seconds since the epoch of a vendor's ISO time, or None when it is not one."""
    try:
        return _parse(value).timestamp() if isinstance(value, str) and value else None
    except ValueError:
        return None


def _path_id(value: object) -> bool:
    """An id that can go into a request path: the vendor's ids are whole numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value >= 0
    return isinstance(value, str) and value.isascii() and value.isdigit()


def _stamp(order: dict) -> str:
    value = order.get("updatedAt")
    return value if isinstance(value, str) else ""


def _sort_key(value: str) -> float:
    return timestamp(value) or 0.0
