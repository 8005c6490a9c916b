"""``ordersync reconcile``: re-read a vendor in full and compare every order with the ledger.

The adapter's own pull walks everything when it is given no cursor and a ledger that knows
nothing (:class:`BlindView`), through the instance's ``VendorHttp`` (its throttle, retries
and deadlines). Each order is mapped as a poll maps it (intake.py) and its digest compared
with the stored one:

    matched      the same copy
    mismatched   the vendor's copy differs from the ledger's (changed behind its back)
    unexpected   the vendor has an order the ledger does not (never synced)
    missing      the ledger has an order the vendor no longer lists (vanished); expired
                 orders (a vendor may delete them) are not counted

A reconcile reports, it does not repair: each difference becomes a ``drift`` exception and,
the first time it is seen, a ``drift`` event on the order; the orders themselves are left
as they are for the next sync to bring up to date (a full scan, ``sync --once``), so that a
drift stays visible until a sync really fixes it. The walk is bounded like a poll
(``max_pages_per_poll``, ``poll_deadline_s``); a walk cut short counts nothing as missing
and resolves no drift of an order it did not reach.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..config import VendorConfig
from ..contract import LedgerReader
from ..intake import admit
from ..ledger import Finding, LedgerAPI, OrderRef, digest
from ..ledger.exceptions import DRIFT
from ..model import State
from ..sync import build_adapter

COUNTS = ("matched", "missing", "unexpected", "mismatched")


@dataclass
class Reconciled:
    """What one reconcile of one instance found."""

    vendor: str
    matched: int = 0
    missing: int = 0
    unexpected: int = 0
    mismatched: int = 0
    differences: list[Finding] = field(default_factory=list)
    incomplete: str | None = None
    """Why the walk ended before the vendor's list did (then nothing counts as missing)."""
    requests: int = 0

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTS}

    def as_dict(self) -> dict:
        return {"vendor": self.vendor, **self.counts(), "incomplete": self.incomplete,
                "requests": self.requests,
                "differences": [{"order": d.vendor_id, "reason": d.reason}
                                for d in self.differences]}


class BlindView(LedgerReader):
    """A ledger that knows nothing: the adapter's pull then reads every order."""

    async def known_modified(self, vendor_ids) -> dict[str, str | None]:
        return {}

    async def in_vendor_state(self, vendor_state: str) -> list[OrderRef]:
        return []

    async def count_by_vendor_state(self) -> dict[str, int]:
        return {}

    async def stored(self, vendor_id: str) -> dict | None:
        return None

    async def flagged(self) -> list[OrderRef]:
        return []


async def reconcile(config: VendorConfig, ledger: LedgerAPI, *,
                    clock: Callable[[], float] = time.time,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Reconciled:
    """Walk ``config``'s vendor in full, compare, and record the differences at the end."""
    spec, http, adapter = build_adapter(config, sleep=sleep, clock=clock)
    name, now = config.name, clock()
    result = Reconciled(name)
    seen: set[str] = set()
    pages = adapter.pull(None, BlindView(), now)
    try:
        async with asyncio.timeout(config.poll_deadline_s):
            handed = 0
            async for page in pages:
                handed += 1
                if handed > config.max_pages_per_poll:
                    result.incomplete = (f"page limit reached ({config.max_pages_per_poll}"
                                         " pages, max_pages_per_poll)")
                    break
                result.incomplete = result.incomplete or page.stopped
                fresh = {}
                for raw in page.orders:
                    order = admit(raw, spec.map_order, spec.identify, config.limits)
                    if order.vendor_id not in seen:
                        seen.add(order.vendor_id)
                        fresh[order.vendor_id] = (digest(order.raw), order.vendor_state,
                                                  order.problem)
                stored = ledger.fingerprints(name, fresh)
                for vendor_id, copy in fresh.items():
                    _compare(result, name, vendor_id, stored.get(vendor_id), copy)
    except TimeoutError:
        result.incomplete = f"poll_deadline_s ({config.poll_deadline_s:g} s) reached"
    finally:
        await pages.aclose()
        result.requests = http.stats["requests"]
        await http.close()
    unseen: list[Finding] = []      # a walk cut short resolves no drift it did not look at
    if result.incomplete is None:
        for vendor_id, state, vendor_state in ledger.unseen(name, seen):
            if state != State.EXPIRED.value:
                result.missing += 1
                result.differences.append(_drift(
                    name, vendor_id, f"missing: the vendor no longer lists it ({vendor_state}"
                    " in the ledger)"))
    else:
        unseen = [_drift(name, e.vendor_id, e.reason) for e in ledger.exceptions(instance=name)
                  if e.kind == DRIFT and e.resolved_at is None and e.vendor_id is not None
                  and e.vendor_id not in seen]
    ledger.record_reconcile(name, result.counts(), [*result.differences, *unseen], clock())
    return result


def _compare(result: Reconciled, name: str, vendor_id: str,
             stored: tuple[bytes, str, str, str | None] | None,
             fresh: tuple[bytes, str, str | None]) -> None:
    if stored is None:
        result.unexpected += 1
        result.differences.append(_drift(name, vendor_id, f"unexpected: the vendor has it"
                                         f" ({fresh[1]}), the ledger does not"))
    elif (stored[0], stored[3]) == (fresh[0], fresh[2]):
        result.matched += 1
    else:
        result.mismatched += 1
        what = (f"state {stored[2]} -> {fresh[1]}" if stored[2] != fresh[1]
                else "the vendor's copy differs from the ledger's")
        result.differences.append(_drift(name, vendor_id, f"changed: {what}"))


def _drift(name: str, vendor_id: str, reason: str) -> Finding:
    return Finding(f"{DRIFT}:{name}:{vendor_id}", DRIFT, name, reason, vendor_id)
