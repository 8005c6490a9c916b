"""The one backoff: exponential, capped, jittered by what is passed in, never below Retry-After."""

from __future__ import annotations

import pytest

from ordersync.backoff import backoff_s


@pytest.mark.parametrize(("attempt", "jitter", "retry_after_s", "expected"), [
    (1, 0.0, None, 0.5),         # the first wait is the base
    (2, 0.0, None, 1.0),
    (4, 0.0, None, 4.0),
    (3, 0.5, None, 2.25),        # jitter adds up to one base
    (7, 0.0, None, 30.0),        # capped
    (7, 0.99, None, 30.495),     # the cap, then the jitter
    (2, 0.0, 12.0, 12.0),        # never sooner than the vendor asked
    (6, 0.0, 3.0, 16.0),         # a shorter Retry-After does not shorten the backoff
    (0, 0.0, None, 0.5),         # no attempt yet counts as the first
    (10_000, 0.0, None, 30.0),   # a daemon failing for weeks still waits the cap
])
def test_backoff(attempt, jitter, retry_after_s, expected):
    assert backoff_s(attempt, 0.5, 30.0, retry_after_s=retry_after_s,
                     jitter=jitter) == pytest.approx(expected)
