"""One poll of one vendor instance: adapter pages -> pure mapping -> ledger, cursor beside.

Pages are written on the ledger's thread while the next page is fetched, so HTTP and SQLite
overlap and the event loop never waits on either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from .config import VendorConfig
from .contract import AdapterSpec
from .errors import TransientError
from .http import VendorHttp
from .ledger import AsyncLedger, LedgerAPI, LedgerView, PageResult
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
    skipped: int = 0
    requests: int = 0
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    retry_after_s: float | None = None
    actions: dict[str, int] = field(default_factory=dict)

    def add(self, result: PageResult, skipped: int) -> None:
        self.pages += 1
        self.new += result.new
        self.changed += result.changed
        self.unchanged += result.unchanged
        self.skipped += skipped

    def as_dict(self) -> dict:
        return {
            "vendor": self.vendor, "pages": self.pages, "new": self.new,
            "changed": self.changed, "unchanged": self.unchanged, "skipped": self.skipped,
            "requests": self.requests, "duration_s": round(self.duration_s, 3),
            "actions": self.actions,
        }


def map_and_apply(
    ledger: LedgerAPI, spec: AdapterSpec, instance: str, stream: str, raw_orders: list[dict],
    cursor: dict | None, now: float, source: str = "poll", read_at: float | None = None,
) -> tuple[PageResult, int]:
    """Map a page with the adapter's pure mapping and write it with its cursor (ledger thread).

    An order the mapping cannot read is skipped and counted, never a reason to lose the page.
    """
    mapped, skipped = [], 0
    map_order, keep = spec.map_order, mapped.append
    for raw in raw_orders:
        try:
            keep(map_order(raw))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            skipped += 1
            log.warning("order_unreadable", vendor=instance, error=str(exc))
    return ledger.apply_page(instance, spec.name, stream, mapped, cursor, now, source,
                             read_at), skipped


def build_adapter(config: VendorConfig, *, sleep=asyncio.sleep, clock=time.time):
    """(spec, http, adapter) for a vendor instance: its own session, throttle and retries."""
    spec = find_adapter(config.adapter)
    http = VendorHttp(
        config.name, config.base_url, rate_limit=config.rate_limit, retry=config.retry,
        timeout_s=config.timeout_s, sleep=sleep, clock=clock,
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

    async def poll(self) -> PollResult:
        """Pull every change since the stored cursor into the ledger."""
        started = time.perf_counter()
        now = self.clock()
        before = self.http.stats["requests"]
        result = PollResult(self.name)
        stream = self.adapter.stream
        cursor = await self.ledger.call(lambda ledger: ledger.cursor(self.name, stream))
        view = LedgerView(self.ledger, self.name)
        writing: asyncio.Future | None = None
        deadline = asyncio.timeout(self.config.poll_deadline_s)
        try:
            async with deadline:
                async for page in self.adapter.pull(cursor, view, now):
                    if writing is not None:
                        result.add(*await asyncio.shield(writing))
                    writing = self.ledger.submit(
                        map_and_apply, self.spec, self.name, stream, page.orders, page.cursor,
                        now, "poll", page.read_at if page.read_at is not None else self.clock(),
                    )
                    if self.stopping:
                        break  # every page is committed with its cursor: the next poll resumes
                if writing is not None:
                    result.add(*await asyncio.shield(writing))
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
            result.requests = self.http.stats["requests"] - before
            result.duration_s = time.perf_counter() - started
        return result

    async def close(self) -> None:
        await self.http.close()
