"""Progress of a long sync on a terminal: one line of counts per vendor, rewritten in place.

The poll reports pure counts (a :class:`~ordersync.sync.PollResult` after each page); this
only renders them. The CLI uses it when stderr is a terminal and ``--json`` is not given, so
scripts and logs never see it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from .sync import PollResult


def progress_line(latest: dict[str, PollResult], elapsed_s: float) -> str:
    """``prints: 12,300 orders in 123 pages, 2,150/s | fw: ...`` (orders written so far)."""
    parts = []
    for name, result in latest.items():
        rate = f", {result.orders / elapsed_s:,.0f}/s" if elapsed_s > 0 else ""
        flagged = f", {result.flagged:,} flagged" if result.flagged else ""
        parts.append(f"{name}: {result.orders:,} orders in {result.pages:,} pages{rate}{flagged}")
    return " | ".join(parts)


class TerminalProgress:
    """A progress callback that rewrites one line (``\\r``) at most every ``interval_s``."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic,
                 interval_s: float = 0.1) -> None:
        self.stream = stream
        self.clock = clock
        self.interval_s = interval_s
        self.started = clock()
        self.shown_at: float | None = None
        self.latest: dict[str, PollResult] = {}

    def __call__(self, result: PollResult) -> None:
        self.latest[result.vendor] = result
        now = self.clock()
        if self.shown_at is not None and now - self.shown_at < self.interval_s:
            return
        self.shown_at = now
        self.stream.write("\r" + progress_line(self.latest, now - self.started) + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        """Clear the line, so that the summary printed next starts clean."""
        if self.shown_at is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
