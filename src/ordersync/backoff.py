"""The one backoff of ordersync: HTTP retries, action retries and failed polls all wait so.

Pure: the attempt, the bounds and the jitter are passed in, so a test names the exact wait.
"""

from __future__ import annotations

MAX_DOUBLINGS = 60
"""Beyond this the cap has long been reached; it keeps ``2 ** n`` a float."""


def backoff_s(attempt: int, base_s: float, max_s: float, *, retry_after_s: float | None = None,
              jitter: float = 0.0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    ``base_s * 2 ** (attempt - 1)`` capped at ``max_s``, plus ``jitter * base_s`` (``jitter``
    in [0, 1), e.g. ``random.random()``), and never below the vendor's Retry-After.
    """
    doublings = min(max(0, attempt - 1), MAX_DOUBLINGS)
    return max(min(max_s, base_s * 2 ** doublings) + jitter * base_s, retry_after_s or 0.0)
