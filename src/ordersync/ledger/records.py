"""What the ledger gives back: typed, read-only records.

Fields carry the names of the write side (:class:`~ordersync.model.Order`,
:class:`~ordersync.model.Item`, :class:`~ordersync.model.Action`): an order read back has
``vendor_id``, ``state``, ``vendor_state`` and ``items`` as it was written, plus what the
ledger adds (``instance``, ``adapter``, ``first_seen``, ``updated_at``, ``events``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..model import Item, State


@dataclass(frozen=True, slots=True)
class PageResult:
    """What one page did to the ledger."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    flagged: int = 0
    """Orders of the page stored flagged (see intake.py)."""
    flips: tuple[tuple[str, str | None], ...] = ()
    """(vendor id, problem) of each order whose flag came or (problem None) went."""


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One real change to an order, as the ledger recorded it."""

    at: str
    source: str
    kind: str
    from_state: str | None
    to_state: str | None
    from_vendor_state: str | None
    to_vendor_state: str | None
    detail: str | None = None
    """The problem of a ``flagged`` (or flagged ``appeared``) event."""


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An order as the ledger holds it (see :class:`~ordersync.model.Order`).

    ``raw`` is the vendor's JSON, parsed, and ``events`` its history: both only on an order
    read alone (``Ledger.order``); lists of orders leave them empty.
    """

    instance: str
    vendor_id: str
    adapter: str
    state: State
    vendor_state: str
    reference: str | None
    created: str | None
    modified: str | None
    expires: str | None
    customer: str | None
    comment: str | None
    url: str | None
    data: dict
    first_seen: str
    updated_at: str
    problem: str | None = None
    """Why the order is flagged (unreadable, over a limit, not UTF-8); None for a sound one."""
    items: tuple[Item, ...] = ()
    raw: dict | None = None
    events: tuple[OrderEvent, ...] = ()

    @property
    def target(self) -> str:
        return f"{self.instance}:{self.vendor_id}"

    def as_json(self) -> dict:
        """The order as ``orders list/show --json`` print it (``vendor`` and ``id`` name it)."""
        shown = {
            "vendor": self.instance, "id": self.vendor_id, "adapter": self.adapter,
            "state": self.state.value, "vendor_state": self.vendor_state,
            "reference": self.reference, "created": self.created, "modified": self.modified,
            "expires": self.expires, "customer": self.customer, "comment": self.comment,
            "url": self.url, "data": self.data, "first_seen": self.first_seen,
            "updated_at": self.updated_at, "problem": self.problem,
            "items": [asdict(item) for item in self.items],
        }
        if self.raw is not None:
            shown["raw"] = self.raw
            shown["events"] = [asdict(event) for event in self.events]
        return shown


@dataclass(frozen=True, slots=True)
class OrderRef:
    """Where to find an order again: its id, the vendor's link to it, when it expires."""

    vendor_id: str
    url: str | None
    expires: str | None


@dataclass(frozen=True, slots=True)
class StateCount:
    """How many orders of one vendor instance are in one common state."""

    instance: str
    state: State
    orders: int


@dataclass(frozen=True, slots=True)
class Totals:
    """How much the ledger holds: for checks that a sync wrote what it should, and no more."""

    orders: int
    items: int
    events: int
    appeared: int
    """``appeared`` events: one per order ever seen."""
    without_raw: int
    """Orders whose vendor JSON is missing (always 0 unless something is wrong)."""
    last_updated: str | None
    """When an order was last written."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP request sent for an action, with what came back (secrets redacted)."""

    number: int
    at: str
    request: str
    status: int | None
    latency_ms: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class VendorHealth:
    """How a vendor instance's polls went; the error text is stored redacted."""

    instance: str
    last_poll_at: str | None
    last_success_at: str | None
    last_error_class: str | None
    last_error: str | None
    consecutive_failures: int
    paused: bool

    @property
    def healthy(self) -> bool:
        return self.consecutive_failures == 0


@dataclass(frozen=True, slots=True)
class Finding:
    """One exception as detection finds it now (what ``refresh_exceptions`` is given).

    ``key`` is stable across reports (``stuck:<instance>:<vendor id>``,
    ``action_dead:<action id>``, ``vendor_down:<instance>``): the same cause found again is
    the same exception. ``detail`` is what else is known (JSON), e.g. an uncertain action's
    attempts and last error.
    """

    key: str
    kind: str
    instance: str
    reason: str
    vendor_id: str | None = None
    action_id: int | None = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    """An exception as the ledger keeps it: open while ``resolved_at`` is None.

    A resolved exception whose cause comes back is opened again under its key as a new
    occurrence: ``first_seen`` becomes the time it came back (docs/reports.md).
    """

    key: str
    kind: str
    instance: str
    vendor_id: str | None
    action_id: int | None
    reason: str
    detail: dict
    first_seen: str
    last_seen: str
    resolved_at: str | None = None


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What one ``refresh_exceptions`` changed: keys new, still open, and cleared."""

    new: tuple[str, ...] = ()
    persisting: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WaitingOrder:
    """An order in a vendor state, and since when the ledger has seen it in that state."""

    vendor_id: str
    vendor_state: str
    since: str
    customer: str | None = None
    modified: str | None = None
    """The vendor's last change of an order that was already in this state when the ledger
    first saw it (None otherwise): it has waited since then at least."""


@dataclass(frozen=True, slots=True)
class Expiring:
    """An order that expires, or has items that expire, inside a window."""

    instance: str
    vendor_id: str
    state: State
    expires: str | None
    """The order's own expiry, when it is inside the window."""
    items: tuple[tuple[str, str], ...] = ()
    """(title, expires) of each item expiring inside the window."""
