"""The rate limit: never more than ``requests`` requests in any ``per_s`` window, as the
vendor counts them.

The vendor counts a request when it arrives, and a request released on time may arrive late
(a busy event loop, a slow network). A window dated by release lets the last request of one
window and the first of the next reach the vendor less than a window apart. So each request
holds its place from its release until a full window after its answer (or its failure):
the answer never comes before the vendor saw the request, so whatever arrives in one window,
all of it held a place at once, and at most ``requests`` places exist. A request still in
flight keeps its place however long it takes.

Why not asyncio-throttle (issue 9 asked for its public API only): ``Throttler``'s public
API is ``acquire()``, which waits until fewer than ``rate_limit`` releases fall in the last
``period`` and then logs the current time, plus ``flush()`` and the three settings. A log
entry can be neither re-dated to the answer nor held while a request is in flight, and
nothing public reads the log; its only hook would be overriding ``acquire``, i.e. writing
the window anyway. The earlier ``AnswerDatedThrottler`` therefore re-dated entries in the
private ``Throttler._task_logs`` (and lost the place of a request in flight longer than a
window, flushed before its answer). What the window needs is exactly an
:class:`asyncio.Semaphore` of ``requests`` places, each given back ``period_s`` after the
answer: that is this module, and asyncio-throttle is no longer a dependency.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AnswerDatedWindow:
    """At most ``requests`` requests hold a place; each place is free again ``period_s``
    after the request it held was answered (or failed, or was cancelled)."""

    def __init__(self, requests: int, period_s: float) -> None:
        self.requests = requests
        self.period_s = period_s
        self._places = asyncio.Semaphore(requests)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a place for one request; it is given back a window after the block ends."""
        await self._places.acquire()
        try:
            yield
        finally:
            asyncio.get_running_loop().call_later(self.period_s, self._places.release)
