"""The ledger off the event loop: every call on one dedicated thread, in submission order,
so the loop never waits on the database and a read submitted after a write sees that write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .interface import LedgerAPI
from .records import OrderRef

T = TypeVar("T")


class AsyncLedger:
    """Runs a ledger on one dedicated thread; calls run in the order submitted."""

    def __init__(self, ledger: LedgerAPI) -> None:
        self.ledger = ledger
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``fn(ledger, *args)`` now; await the returned future for its result."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, fn, self.ledger, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    async def close(self) -> None:
        await self.call(lambda ledger: ledger.close())
        self._executor.shutdown(wait=True)


class LedgerView:
    """The read-only slice of the ledger an adapter may consult while it pulls."""

    def __init__(self, ledger: AsyncLedger, instance: str,
                 settle: Callable[[], Awaitable[None]] | None = None) -> None:
        self._ledger = ledger
        self.instance = instance
        self._settle = settle
        """Awaited before each read: until the poll's last page is written (pages.PageSink),
        wherever it is written, so that every read sees it."""

    async def _read(self, fn: Callable[[LedgerAPI], T]) -> T:
        if self._settle is not None:
            await self._settle()
        return await self._ledger.call(fn)

    async def known_modified(self, vendor_ids: Iterable[str]) -> dict[str, str | None]:
        ids = list(vendor_ids)
        return await self._read(lambda ledger: ledger.known_modified(self.instance, ids))

    async def in_vendor_state(self, vendor_state: str) -> list[OrderRef]:
        return await self._read(lambda ledger: ledger.in_vendor_state(self.instance, vendor_state))

    async def count_by_vendor_state(self) -> dict[str, int]:
        return await self._read(lambda ledger: ledger.count_by_vendor_state(self.instance))

    async def stored(self, vendor_id: str) -> dict | None:
        """The vendor's JSON for one order as the ledger last stored it, or None."""
        order = await self._read(lambda ledger: ledger.order(self.instance, vendor_id))
        return order.raw if order is not None else None

    async def flagged(self) -> list[OrderRef]:
        """Every flagged order that has a url."""
        return await self._read(lambda ledger: ledger.flagged(self.instance))
