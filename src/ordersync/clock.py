"""Time as the ledger writes it. Everything else takes ``now`` as a float from its caller."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float) -> str:
    """A POSIX timestamp as ISO 8601 UTC with a Z, to the millisecond."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
