"""One poll of one vendor instance: adapter pages -> pure mapping -> ledger, cursor beside.

Pages are staged and written off the event loop (pages.py: on the ledger's thread, and for a
big poll by a page writer process) while the next page is fetched, so HTTP, mapping and SQLite
overlap and the event loop never waits on them. A poll reads at most ``max_pages_per_poll``
pages and says why it stopped early (``PollResult.stopped``); every page is committed with its
cursor, so the next poll resumes where this one stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from .config import VendorConfig
from .errors import TransientError
from .http import VendorHttp
from .ledger import AsyncLedger, LedgerView, PageResult
from .pages import PageSink
from .registry import adapter as find_adapter

log = structlog.get_logger("ordersync.sync")


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
        # Into an empty ledger (a backfill), the read-only indexes are built once at the end.
        deferred = await self.ledger.call(lambda ledger: ledger.defer_indexes())
        sink = PageSink(self.ledger, self.spec, self.name, stream, self.config.limits,
                        self.config.page_writer_after_orders, backfill=deferred)
        view = LedgerView(self.ledger, self.name, settle=sink.settled)
        max_pages = self.config.max_pages_per_poll
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
                    read_at = page.read_at if page.read_at is not None else self.clock()
                    self._added(result, await sink.put(page, now, read_at), progress)
                    if page.stopped:
                        result.stopped = page.stopped
                    if self.stopping:
                        break  # every page is committed with its cursor: the next poll resumes
                self._added(result, await sink.finish(), progress)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise TransientError(
                f"poll_deadline_s ({self.config.poll_deadline_s:g} s) reached: the poll stopped;"
                " the pages written so far are kept and the next poll carries on",
                vendor=self.name) from None
        finally:
            # A page already handed on finishes: its data and cursor belong together and
            # were consistent when it was queued.
            await asyncio.shield(sink.close())
            if deferred:
                await asyncio.shield(self.ledger.call(lambda ledger: ledger.build_indexes()))
            await pages.aclose()
            result.requests = self.http.stats["requests"] - before
            result.duration_s = time.perf_counter() - started
        if result.stopped:
            log.warning("poll_stopped_early", vendor=self.name, reason=result.stopped)
        return result

    @staticmethod
    def _added(result: PollResult, pages: list[PageResult], progress) -> None:
        for page in pages:
            result.add(page)
            if progress is not None:
                progress(result)

    async def close(self) -> None:
        await self.http.close()
