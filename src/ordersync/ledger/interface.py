"""What callers may ask of a ledger, whatever its backend.

:class:`LedgerAPI` is the whole surface: the SQLite ledger
(:class:`~ordersync.ledger.sqlite.Ledger`) provides it, and so must any other backend (see
docs/architecture.md, "Adding a ledger backend"). Reads return the typed records of
:mod:`ordersync.ledger.records`; no caller sees a row, a cursor object or SQL.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from ..model import Action, ActionState, Order
from .orders import PageRows
from .records import (
    Attempt,
    ExceptionRecord,
    Expiring,
    Finding,
    OrderRef,
    PageResult,
    Refreshed,
    StateCount,
    StoredOrder,
    Totals,
    VendorHealth,
    WaitingOrder,
)


class OutboxAPI(Protocol):
    """The actions and their attempts."""

    def enqueue(self, instance: str, vendor_id: str, kind: str, payload: dict, key: str,
                now: float, after: int | None = None) -> tuple[Action, bool]: ...

    def get(self, action_id: int) -> Action: ...

    def attempts(self, action_id: int) -> list[Attempt]: ...

    def list(self, *, instance: str | None = None, state: str | None = None,
             limit: int | None = None) -> list[Action]: ...

    def counts(self, instance: str | None = None) -> dict[str, int]: ...

    def due(self, instance: str, now: float, limit: int = 100) -> builtins.list[Action]: ...

    def start(self, action_id: int, now: float) -> Action | None: ...

    def finish(self, action: Action, state: ActionState, now: float, *,
               error: str | None = None, result: dict | None = None,
               next_attempt_at: float | None = None, needs_verification: bool | None = None,
               refund_attempt: bool = False, http_log: Sequence[dict] = ()) -> None: ...

    def blocking(self, action: Action) -> Action | None: ...

    def note(self, action_id: int, notes: dict, now: float) -> None: ...

    def recover_in_flight(self, instance: str, now: float, verify_at: float | None = None
                          ) -> int: ...

    def retry(self, action_id: int, now: float) -> Action: ...

    def cancel(self, action_id: int, now: float) -> Action: ...


class LedgerAPI(Protocol):
    """Orders and events, sync state and vendor health, exceptions, and the outbox, in one
    ledger."""

    path: Path | None
    """The ledger's file, if a second process may open it to write pages (pagewriter.py)."""

    @property
    def outbox(self) -> OutboxAPI:
        """The actions and their attempts (read-only here, so a subtype may be given)."""
        ...

    def write(self) -> AbstractContextManager[None]:
        """One transaction; calls made inside it (nested too) commit or roll back together."""
        ...

    def close(self) -> None: ...

    def defer_indexes(self) -> bool:
        """Before a backfill: drop the secondary indexes if no order is stored yet."""
        ...

    def build_indexes(self) -> None:
        """After a backfill: build the secondary indexes ``defer_indexes`` dropped."""
        ...

    def apply_page(self, instance: str, adapter: str, stream: str, orders: Sequence[Order],
                   cursor: dict | None, now: float, source: str = "poll",
                   read_at: float | None = None) -> PageResult: ...

    def write_rows(self, instance: str, adapter: str, stream: str, rows: PageRows,
                   cursor: dict | None, now: float, source: str = "poll",
                   read_at: float | None = None) -> PageResult:
        """``apply_page`` for a page already turned into rows (``orders.page_rows``)."""
        ...

    def sound_digests(self, instance: str, vendor_ids: list[str]) -> dict[str, bytes]:
        """The digest of each given order the ledger holds unflagged."""
        ...

    def known_modified(self, instance: str, vendor_ids: Iterable[str]
                       ) -> dict[str, str | None]: ...

    def in_vendor_state(self, instance: str, vendor_state: str) -> list[OrderRef]: ...

    def flagged(self, instance: str) -> list[OrderRef]: ...

    def count_by_vendor_state(self, instance: str) -> dict[str, int]: ...

    def orders(self, *, instance: str | None = None, state: str | None = None,
               limit: int | None = None, flagged: bool = False) -> list[StoredOrder]: ...

    def order(self, instance: str, vendor_id: str) -> StoredOrder | None: ...

    def summary(self) -> list[StateCount]: ...

    def count_events(self, instance: str | None = None) -> int: ...

    def totals(self) -> Totals: ...

    def cursor(self, instance: str, stream: str) -> dict | None: ...

    def record_poll(self, instance: str, now: float, *, error_class: str | None = None,
                    error: str | None = None) -> None: ...

    def set_paused(self, instance: str, paused: bool) -> None: ...

    def vendor_health(self, instance: str | None = None) -> list[VendorHealth]: ...

    # -- the report: exceptions as state (ledger/exceptions.py) and its reads (reports.py)

    def refresh_exceptions(self, findings: Sequence[Finding], now: float, *,
                           kinds: Collection[str], instances: Collection[str]) -> Refreshed: ...

    def exceptions(self, *, instance: str | None = None, resolved_since: str | None = None
                   ) -> builtins.list[ExceptionRecord]: ...

    def record_reconcile(self, instance: str, counts: dict[str, int],
                         differences: Sequence[Finding], now: float) -> Refreshed: ...

    def reconciled(self, instance: str) -> dict | None: ...

    def waiting_orders(self, instance: str, vendor_states: Collection[str]
                       ) -> builtins.list[WaitingOrder]: ...

    def expiring(self, after: str, before: str) -> builtins.list[Expiring]: ...

    def orders_in_vendor_states(self, instance: str, vendor_states: Collection[str]
                                ) -> builtins.list[StoredOrder]: ...

    def fingerprints(self, instance: str, vendor_ids: Collection[str]
                     ) -> dict[str, tuple[bytes, str, str, str | None]]: ...

    def unseen(self, instance: str, seen: Collection[str]
               ) -> builtins.list[tuple[str, str, str]]: ...

    def changes_since(self, since: str) -> dict[str, dict[str, int]]: ...

    def values(self, instance: str, amount: str, currency: str | None
               ) -> dict[str | None, tuple[int, float]]: ...
