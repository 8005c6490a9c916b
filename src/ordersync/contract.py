"""The narrow contract between the core and a vendor adapter.

An adapter package exposes one :class:`AdapterSpec` under the entry point group
``ordersync.adapters``. The core never imports a vendor by name: it asks the registry for a
spec, builds the vendor's :class:`~ordersync.http.VendorHttp`, and then only

* iterates ``adapter.pull(cursor, view, now)`` for pages of raw vendor orders, each with the
  cursor to store beside it, and
* maps each raw order with the spec's pure ``map_order``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .ledger.records import OrderRef, StoredOrder
from .model import Action, Order


@dataclass(frozen=True, slots=True)
class Option:
    """One adapter-specific configuration key: its type, whether required, its default."""

    type: type
    required: bool = False
    default: Any = None
    secret: bool = False
    help: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    """Raw vendor orders and the cursor to commit with them (None keeps the stored one).

    ``read_at`` is when the vendor answered with these orders (the adapter's clock). The
    ledger never replaces a copy read later with one read earlier: a poll that read an
    order just before an action changed it must not write back the old copy.
    """

    orders: list[dict]
    cursor: dict | None = None
    read_at: float | None = None
    stopped: str | None = None
    """Why the adapter ended its walk early (a vendor repeating pages); the poll reports it."""


class LedgerReader(Protocol):
    """What an adapter may ask the ledger while it pulls (see ledger.LedgerView)."""

    async def known_modified(self, vendor_ids) -> dict[str, str | None]: ...

    async def in_vendor_state(self, vendor_state: str) -> list[OrderRef]:
        """Id, url and expiry of every stored order in that vendor state."""
        ...

    async def count_by_vendor_state(self) -> dict[str, int]: ...

    async def stored(self, vendor_id: str) -> dict | None:
        """The vendor's JSON for one order as last stored (to mark it gone, not forget it)."""
    async def flagged(self) -> list[OrderRef]:
        """Every stored order flagged with a problem that has a url (to read it again)."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What performing or verifying an action found out.

    ``done``: the effect is there (True), is not there (False), or cannot be told (None).
    ``order`` is a fresh copy of the vendor's order, when the call returned or read one, so
    the ledger learns the result at once (source "action").
    """

    done: bool | None
    result: dict | None = None
    order: dict | None = None
    reason: str = ""
    read_at: float | None = None
    """When ``order`` was read (set by the executor when the adapter leaves it empty)."""


class Adapter(Protocol):
    """A configured vendor instance."""

    stream: str
    action_kinds: Mapping[str, str]
    """Action kinds this adapter performs, each with a one-line description."""

    def pull(self, cursor: dict | None, view: LedgerReader, now: float) -> AsyncIterator[Page]:
        """Pages of orders changed since ``cursor``; nothing at all when nothing changed."""
        ...

    async def prepare(self, kind: str, order: StoredOrder | None, params: dict) -> dict:
        """Check an action before it is queued and return its payload.

        ``order`` is the ledger's copy (with ``raw``). Raises ActionRefused naming the rule
        broken; may ask the vendor (e.g. for a field configuration).
        """
        ...

    async def perform(self, action: Action) -> Outcome:
        """Do the action at the vendor. Vendor errors propagate as the error tree."""
        ...

    # Optional: ``async def checkpoint(self, action) -> dict | None``. Called before each
    # perform; what it returns is committed to the action's ``notes`` before the request is
    # sent, so that verify can compare against the vendor's state just before the request.

    async def verify(self, action: Action) -> Outcome:
        """Read the vendor to learn whether the action's effect already happened."""
        ...


class Simulator(Protocol):
    """A vendor simulator: a real HTTP server on loopback."""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """Everything the core needs to know about one adapter."""

    name: str
    options: Mapping[str, Option]
    create: Callable[..., Adapter]
    """``create(vendor_config, http, clock=...)`` -> Adapter; may set ``http.auth``."""
    map_order: Callable[[dict], Order]
    """Pure: one raw vendor order to the common model."""
    identify: Callable[[dict], tuple[str, str | None] | None] | None = None
    """Pure: (vendor id, url) of a raw order, even one map_order cannot read; None if absent."""
    simulator: Callable[..., Simulator] | None = None
    """``simulator(orders=N, seed=S)`` -> a simulator with seeded data."""
    demo_settings: Callable[[Simulator, str], dict] | None = None
    """Settings (including secret values) that point an instance at a running simulator."""
    demo_actions: Callable[[list[StoredOrder]], list[tuple[str, str | None, dict]]] | None = None
    """Sample actions for the demo, from the ledger's orders: (kind, order id or None, params)."""
    base_path: str = ""
    """Path under a simulator's address where the API lives (Pwinty's ``/v2.2``)."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of the core's per-vendor defaults (poll_interval_s, rate_limit ...)."""
