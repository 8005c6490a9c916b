"""One poll of one vendor instance: adapter pages -> pure mapping -> ledger, cursor beside.

Pages are written on the ledger's thread while the next page is fetched, so HTTP and SQLite
overlap and the event loop never waits on either. A poll reads at most ``max_pages_per_poll``
pages and says why it stopped early (``PollResult.stopped``); every page is committed with its
cursor, so the next poll resumes where this one stopped. An order that cannot be read is
stored flagged (intake.py), never a reason to lose the page.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial

import structlog

from .config import VendorConfig
from .contract import AdapterSpec
from .errors import TransientError
from .http import VendorHttp
from .intake import Limits, admit, flagged, sound_text
from .ledger import AsyncLedger, LedgerAPI, LedgerView, PageResult, digest
from .registry import adapter as find_adapter

DEFAULT_LIMITS = Limits()  # one shared default, as the default argument was

log = structlog.get_logger("ordersync.sync")

UNSTORABLE = (OverflowError, TypeError, ValueError)
"""What SQLite or orjson raise for a value they cannot hold (an int beyond 64 bits, a lone
surrogate): a mapped order the ledger cannot write is stored flagged instead."""


@dataclass
class PollResult:
    """What one poll did."""

    vendor: str
    pages: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    flagged: int = 0
    requests: int = 0
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    retry_after_s: float | None = None
    actions: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None
    """Why the poll ended before the vendor's list did (a page limit, a repeating vendor)."""
    paused: bool = False
    """An operator paused the instance (``ordersync vendors pause``): it was not polled."""

    @property
    def orders(self) -> int:
        return self.new + self.changed + self.unchanged

    def add(self, result: PageResult) -> None:
        self.pages += 1
        self.new += result.new
        self.changed += result.changed
        self.unchanged += result.unchanged
        self.flagged += result.flagged

    def as_dict(self) -> dict:
        return {
            "vendor": self.vendor, "pages": self.pages, "new": self.new,
            "changed": self.changed, "unchanged": self.unchanged, "flagged": self.flagged,
            "requests": self.requests, "duration_s": round(self.duration_s, 3),
            "actions": self.actions, "stopped": self.stopped, "paused": self.paused,
        }


def map_and_apply(
    ledger: LedgerAPI, spec: AdapterSpec, instance: str, stream: str, raw_orders: list[dict],
    cursor: dict | None, now: float, source: str = "poll", read_at: float | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> PageResult:
    """Map a page with the adapter's pure mapping and write it with its cursor (ledger thread).

    An order the mapping cannot read, or over a limit, is stored flagged (intake.py). An
    order whose JSON is the very copy the ledger holds unflagged is not mapped at all: the
    mapping is pure, so it would give what is stored.
    """
    map_order, identify = spec.map_order, spec.identify
    raw_orders, same = _without_stored_copies(ledger, instance, identify, raw_orders, limits)
    if not raw_orders and cursor is None:
        return PageResult(unchanged=same)       # nothing to write: no transaction either
    mapped = [admit(raw, map_order, identify, limits) for raw in raw_orders]
    write = partial(ledger.apply_page, instance, spec.name, stream, now=now, source=source,
                    read_at=read_at)
    try:
        result = _logged(instance, write(mapped, cursor))
        return replace(result, unchanged=result.unchanged + same) if same else result
    except UNSTORABLE:
        pass
    # The page held a value the ledger cannot store: write it order by order (each in its
    # own savepoint of one transaction), keeping any such order flagged, then the cursor.
    total: Counter = Counter()
    flips: list = []
    with ledger.write():
        for raw, order in zip(raw_orders, mapped, strict=True):
            try:
                part = write([order], None)
            except UNSTORABLE as exc:
                problem = f"not storable: {exc}"[:500]
                try:
                    part = write([flagged(raw, problem, identify, limits)], None)
                except UNSTORABLE:      # the vendor id itself cannot be stored
                    part = write([flagged(raw, problem, None, limits)], None)
            flips += _logged(instance, part).flips
            total.update(new=part.new, changed=part.changed, unchanged=part.unchanged,
                         flagged=part.flagged)
        write([], cursor)
    total.update(unchanged=same)
    return PageResult(**total, flips=tuple(flips))


def _without_stored_copies(ledger: LedgerAPI, instance: str, identify, raw_orders: list,
                           limits: Limits) -> tuple[list, int]:
    """The orders of a page but those whose JSON the ledger holds, unflagged, byte for byte
    (an idle poll maps nothing and builds no row), and how many those were.

    An order the ledger has none of (a cold sync) costs its ``identify`` and a share of one
    query; the comparison is of ``digest(orjson.dumps(raw))``, what every adapter keeps.
    """
    if identify is None:
        return raw_orders, 0
    ids = [_identity(identify, raw) for raw in raw_orders]
    stored = ledger.sound_digests(instance, [i for i in ids if i is not None])
    if not stored:
        return raw_orders, 0
    kept = []
    for raw, vendor_id in zip(raw_orders, ids, strict=True):
        before = stored.get(vendor_id) if vendor_id is not None else None
        if before is not None:
            text = sound_text(raw, limits)
            if text is not None and digest(text) == before:
                continue
        kept.append(raw)
    return kept, len(raw_orders) - len(kept)


def _identity(identify, raw) -> str | None:
    try:
        found = identify(raw) if isinstance(raw, dict) else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return found[0] if found else None


def _logged(instance: str, result: PageResult) -> PageResult:
    """Log each order whose flag came or went on this page (transitions, not every poll)."""
    for vendor_id, problem in result.flips:
        if problem is None:
            log.info("order_cleared", vendor=instance, order=vendor_id)
        else:
            log.warning("order_flagged", vendor=instance, order=vendor_id, problem=problem)
    return result


def build_adapter(config: VendorConfig, *, sleep=asyncio.sleep, clock=time.time):
    """(spec, http, adapter) for a vendor instance: its own session, throttle and retries."""
    spec = find_adapter(config.adapter)
    declared = spec.http
    http = VendorHttp(
        config.name, config.base_url, rate_limit=config.rate_limit, retry=config.retry,
        timeout_s=config.timeout_s, sleep=sleep, clock=clock, behaviour=declared,
        auth=declared.auth(config.settings, config.secrets, clock) if declared.auth else None,
    )
    return spec, http, spec.create(config, http, clock=clock)


class VendorRunner:
    """A configured vendor instance: its HTTP client, its adapter, its polls."""

    def __init__(
        self,
        config: VendorConfig,
        ledger: AsyncLedger,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.name = config.name
        self.ledger = ledger
        self.clock = clock
        self.spec, self.http, self.adapter = build_adapter(config, sleep=sleep, clock=clock)
        self.stopping = False

    async def poll(self, progress: Callable[[PollResult], None] | None = None) -> PollResult:
        """Pull every change since the stored cursor into the ledger.

        ``progress(result)`` is called after each page is written, with the counts so far.
        """
        started = time.perf_counter()
        now = self.clock()
        before = self.http.stats["requests"]
        result = PollResult(self.name)
        stream = self.adapter.stream
        cursor = await self.ledger.call(lambda ledger: ledger.cursor(self.name, stream))
        view = LedgerView(self.ledger, self.name)
        # Into an empty ledger (a backfill), the read-only indexes are built once at the end.
        deferred = await self.ledger.call(lambda ledger: ledger.defer_indexes())
        writing: asyncio.Future | None = None
        max_pages, limits = self.config.max_pages_per_poll, self.config.limits
        pages = self.adapter.pull(cursor, view, now)
        handed = 0
        deadline = asyncio.timeout(self.config.poll_deadline_s)
        try:
            async with deadline:
                async for page in pages:
                    if handed == max_pages:     # a page beyond the limit: left for the next poll
                        result.stopped = (f"page limit reached ({max_pages} pages,"
                                          " max_pages_per_poll); the next poll resumes")
                        break
                    handed += 1
                    if writing is not None:
                        self._added(result, await asyncio.shield(writing), progress)
                    writing = self.ledger.submit(
                        map_and_apply, self.spec, self.name, stream, page.orders, page.cursor,
                        now, "poll", page.read_at if page.read_at is not None else self.clock(),
                        limits,
                    )
                    if page.stopped:
                        result.stopped = page.stopped
                    if self.stopping:
                        break  # every page is committed with its cursor: the next poll resumes
                if writing is not None:
                    self._added(result, await asyncio.shield(writing), progress)
                    writing = None
        except TimeoutError:
            if not deadline.expired():
                raise
            raise TransientError(
                f"poll_deadline_s ({self.config.poll_deadline_s:g} s) reached: the poll stopped;"
                " the pages written so far are kept and the next poll carries on",
                vendor=self.name) from None
        finally:
            if writing is not None:
                # Let a page already handed to the ledger finish: its data and cursor
                # belong together and were consistent when it was queued.
                await asyncio.shield(writing)
            if deferred:
                await asyncio.shield(self.ledger.call(lambda ledger: ledger.build_indexes()))
            await pages.aclose()
            result.requests = self.http.stats["requests"] - before
            result.duration_s = time.perf_counter() - started
        if result.stopped:
            log.warning("poll_stopped_early", vendor=self.name, reason=result.stopped)
        return result

    @staticmethod
    def _added(result: PollResult, page: PageResult, progress) -> None:
        result.add(page)
        if progress is not None:
            progress(result)

    async def close(self) -> None:
        await self.http.close()
