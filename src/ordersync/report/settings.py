"""The report's thresholds (the ``[report]`` configuration section) and ``--since WHEN``.

Read once, checked with one-line errors naming the key; every threshold has a default, so a
configuration without ``[report]`` reports all the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError

HOUR_S, DAY_S = 3600.0, 86400.0
DEFAULT_SINCE = "24h"


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """When something counts as an exception (seconds, or polls in a row)."""

    stale_after_s: float = HOUR_S
    """A vendor whose last successful poll is older than this is stale."""
    down_after_failures: int = 3
    """A vendor whose polls failed this many times in a row is down."""
    stuck_after_s: float = DAY_S
    """An order waiting in one of its adapter's waiting states longer than this is stuck."""
    expiring_within_s: float = 3 * DAY_S
    """An order (or an item) expiring within this is expiring soon."""
    action_pending_after_s: float = HOUR_S
    """A pending action older than this has waited too long."""
    refresh_interval_s: float = 60.0
    """The daemon refreshes the exceptions this often, so that when each was first seen
    and when it cleared follow the vendors, not the times someone looked."""


def parse_report_settings(table: Any, source: str) -> ReportSettings:
    """``[report]`` -> ReportSettings; a ConfigError names ``report.KEY`` and the problem."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: report: expected a table")
    known = {f.name: f for f in fields(ReportSettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{source}: report.{key}: unknown key (known: "
                              + ", ".join(known) + ")")
        integer = key == "down_after_failures"
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            raise ConfigError(f"{source}: report.{key}: expected "
                              f"{'an integer' if integer else 'a number of seconds'},"
                              f" got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{source}: report.{key}: must be greater than 0")
        values[key] = value if integer else float(value)
    return ReportSettings(**values)


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": HOUR_S, "d": DAY_S, "w": 7 * DAY_S}


def parse_since(text: str, now: float) -> float:
    """``--since WHEN`` -> a POSIX time: ``24h``, ``7d``, ``90m``, ``2w`` before ``now``, or an
    ISO 8601 time (UTC unless it says otherwise). ValueError with a one-line reason."""
    match = _RELATIVE.match(text)
    try:
        if match:
            since = now - float(match[1]) * _UNIT_S[match[2]]
        else:
            when = datetime.fromisoformat(text.strip())
            since = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
        datetime.fromtimestamp(since, UTC)    # the report shows it as an ISO 8601 time
    except ValueError:
        if match:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
        raise ValueError(f"{text!r} is neither a time like 24h, 7d, 90m nor an ISO 8601 time"
                         " (2026-11-30T06:00:00Z) between the years 1 and 9999") from None
    except OverflowError:
        raise ValueError(f"{text!r} reaches back before the year 1") from None
    if since > now:
        raise ValueError(f"{text!r} is in the future: nothing can be new since then")
    return since


def as_mapping(settings: ReportSettings) -> Mapping[str, float | int]:
    """The thresholds as the report's JSON shows them."""
    return {f.name: getattr(settings, f.name) for f in fields(ReportSettings)}
