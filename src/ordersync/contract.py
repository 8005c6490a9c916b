"""The narrow contract between the core and a vendor adapter.

An adapter package exposes one :class:`AdapterSpec` under the entry point group
``ordersync.adapters``. The core never imports a vendor by name: it asks the registry for a
spec, builds the vendor's :class:`~ordersync.http.VendorHttp`, and then only

* iterates ``adapter.pull(cursor, view, now)`` for pages of raw vendor orders, each with the
  cursor to store beside it, and
* maps each raw order with the spec's pure ``map_order``.

Actions are declared, not discovered: each kind an adapter performs is an :class:`ActionSpec`
with typed :class:`Param` s. The front doors (the CLI today; the HTTP API and rules later)
build themselves from these declarations and check what they are given with one function,
:func:`validate`, whose errors name parameters (``copies: must be at least 1``), never a
front door's spelling of them (the CLI prints ``--copies``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .errors import ParameterError
from .http import HttpBehaviour
from .ledger.records import OrderRef, StoredOrder
from .model import Action, Order, OrderRow


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

    def pull(self, cursor: dict | None, view: LedgerReader,
             now: float) -> AsyncGenerator[Page, None]:
        """Pages of orders changed since ``cursor``; nothing at all when nothing changed.

        An async generator: the core closes it (``aclose``) when it stops before the end."""
        ...

    async def prepare(self, kind: str, order: StoredOrder | None, params: dict) -> dict:
        """Check an action before it is queued and return its payload (JSON).

        ``params`` are what the kind's :class:`ActionSpec` built from checked values.
        ``order`` is the ledger's copy (with ``raw``), or None when the action creates the
        order or follows, in a chain, an action that creates it (then only what can be
        told without the order is checked). Raises ActionRefused naming the rule broken
        (ParameterError naming the parameter); may ask the vendor (e.g. for a field
        configuration).
        """
        ...

    async def perform(self, action: Action) -> Outcome:
        """Do the action at the vendor. Vendor errors propagate as the error tree.

        An action that creates an order returns its id as ``result["order_id"]``: the
        later links of its chain act on it (without one, the action becomes uncertain).
        """
        ...

    async def checkpoint(self, action: Action) -> dict | None:
        """What to remember before ``perform`` sends anything, or None (nothing to keep).

        Called before each perform; what it returns is committed to the action's ``notes``
        before the request is sent, so that verify can compare against the vendor's state
        just before the request. An adapter with nothing to remember returns None
        (:class:`AdapterBase` does).
        """
        ...

    async def verify(self, action: Action) -> Outcome:
        """Read the vendor to learn whether the action's effect already happened."""
        ...


class AdapterBase:
    """The default behaviour of the contract's optional members, for adapters to inherit."""

    async def checkpoint(self, action: Action) -> dict | None:
        return None


class ParamType(StrEnum):
    """What a parameter's value is, after :func:`validate`."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    PATH = "path"
    """A local file's path (the adapter reads the file, e.g. to upload it)."""
    FILE = "file"
    """An object of fields: a JSON or TOML file on the command line, an object over HTTP."""
    ASSIGNMENTS = "assignments"
    """``NAME=VALUE`` pairs -> ``{NAME: VALUE}``; a name given twice collects a list."""
    ITEM_ASSIGNMENTS = "item_assignments"
    """``N:NAME=VALUE`` -> ``{N: {NAME: VALUE}}`` (items counted from 0)."""


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of an action kind.

    ``flag`` is its name on the command line when that differs from ``name`` (an example:
    a print order's ``recipient_name`` is ``--recipient``); ``positional`` parameters are
    given without a flag, in declaration order, after the target.
    """

    name: str
    type: ParamType = ParamType.STR
    help: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()
    repeatable: bool = False
    positional: bool = False
    default: Any = None
    minimum: float | None = None
    secret: bool = False
    flag: str | None = None
    metavar: str | None = None

    @property
    def option(self) -> str:
        return "--" + (self.flag or self.name.replace("_", "-"))


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action kind an adapter performs, as every front door sees it.

    ``command`` is its command path (``("photos", "add")``; the kind itself by default;
    empty: no command of its own). ``creates``: the action makes a new order at an instance
    (its target is ``VENDOR``, not ``VENDOR:ID``); otherwise ``many`` says whether one
    command may name several orders. ``after`` names the kinds it may follow in a chain.
    ``one_of`` lists groups of parameters of which exactly one is given. ``build`` turns
    the checked values into the kind to queue and the parameters ``prepare`` takes
    (default: this kind, the values as they are): a vendor's shaping lives there.
    """

    kind: str
    description: str
    params: tuple[Param, ...] = ()
    command: tuple[str, ...] | None = None
    creates: bool = False
    many: bool = False
    after: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    build: Callable[[dict], tuple[str, dict]] | None = None

    @property
    def path(self) -> tuple[str, ...]:
        return (self.kind,) if self.command is None else self.command

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def queue_as(self, values: dict) -> tuple[str, dict]:
        """The kind and ``prepare`` parameters for checked values."""
        return self.build(values) if self.build else (self.kind, values)


def validate(spec: ActionSpec, values: Mapping[str, Any]) -> dict:
    """Raw values (from argv, JSON or a rule) -> the typed, checked values of ``spec``.

    A value left out or None is absent (its default applies). Raises ParameterError
    naming the parameter.
    """
    unknown = sorted(set(values) - {p.name for p in spec.params})
    if unknown:
        raise ParameterError(unknown[0], f"{spec.kind} takes no such parameter")
    out: dict[str, Any] = {}
    for param in spec.params:
        raw = values.get(param.name)
        if raw is None or (param.repeatable and raw == []):
            if param.required:
                raise ParameterError(param.name, "is required")
            if param.default is not None:
                out[param.name] = param.default
            continue
        if param.repeatable and param.type not in _COLLECTING:
            items = raw if isinstance(raw, list) else [raw]
            out[param.name] = [_typed(param, item) for item in items]
        else:
            out[param.name] = _typed(param, raw)
    for group in spec.one_of:
        given = [name for name in group if name in out]
        if len(given) != 1:
            raise ParameterError(group[0], "give exactly one of " + ", ".join(group)
                                 + (f" (got {', '.join(given)})" if given else ""))
    return out


_COLLECTING = (ParamType.ASSIGNMENTS, ParamType.ITEM_ASSIGNMENTS)


def _typed(param: Param, raw: Any) -> Any:
    kind = param.type
    if kind in (ParamType.STR, ParamType.PATH):
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise ParameterError(param.name, f"must be text, got {raw!r}")
        value: Any = str(raw)
    elif kind in (ParamType.INT, ParamType.FLOAT):
        value = _number(param, raw)
    elif kind is ParamType.BOOL:
        value = _boolean(param, raw)
    elif kind is ParamType.FILE:
        if not isinstance(raw, dict):
            raise ParameterError(param.name, "expected an object of fields")
        value = raw
    elif kind is ParamType.ASSIGNMENTS:
        value = raw if isinstance(raw, dict) else assignments(param.name, raw)
    else:
        value = raw if isinstance(raw, dict) else item_assignments(param.name, raw)
    if param.choices and value not in param.choices:
        raise ParameterError(param.name, f"{value!r} is not one of {', '.join(param.choices)}")
    return value


def _number(param: Param, raw: Any) -> int | float:
    cast = int if param.type is ParamType.INT else float
    try:
        if isinstance(raw, bool) or (cast is int and isinstance(raw, float)):
            raise ValueError
        value = cast(raw)
    except (TypeError, ValueError):
        raise ParameterError(param.name, f"{raw!r} is not a whole number" if cast is int
                             else f"{raw!r} is not a number") from None
    if param.minimum is not None and value < param.minimum:
        raise ParameterError(param.name, f"must be at least {param.minimum:g}, got {value}")
    if cast is int and not -(2**63) <= value < 2**63:
        raise ParameterError(param.name, f"{value} is out of range")
    return value


def _boolean(param: Param, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ParameterError(param.name, f"takes true or false, got {raw!r}")


def assignments(name: str, texts: Any) -> dict:
    """``NAME=VALUE`` pairs; a name given twice collects a list (multi-value fields)."""
    out: dict = {}
    for text in texts if isinstance(texts, list) else [texts]:
        key, sep, value = str(text).partition("=")
        if not sep or not key.strip():
            raise ParameterError(name, f"{text!r} is not NAME=VALUE")
        key = key.strip()
        if key in out:
            out[key] = (out[key] if isinstance(out[key], list) else [out[key]]) + [value]
        else:
            out[key] = value
    return out


def item_assignments(name: str, texts: Any) -> dict[int, dict]:
    """``N:NAME=VALUE`` pairs -> the assignments of each item N."""
    by_item: dict[int, list[str]] = {}
    for text in texts if isinstance(texts, list) else [texts]:
        index, sep, rest = str(text).partition(":")
        if not sep or not index.strip().isdigit():
            raise ParameterError(name, f"{text!r} is not N:NAME=VALUE")
        by_item.setdefault(int(index), []).append(rest)
    return {i: assignments(name, v) for i, v in by_item.items()}


def identify_by(key: str, url: str) -> Callable[[dict], tuple[str, str] | None]:
    """An ``identify`` for orders that carry their id under ``key`` (a number or a non-empty
    string) and live at ``url`` with ``{id}`` replaced, e.g. ``identify_by("id",
    "orders/{id}")``; None for an order without such an id."""

    def identify(raw: dict) -> tuple[str, str] | None:
        order_id = raw.get(key)
        if isinstance(order_id, bool) or not isinstance(order_id, (int, str)) or order_id == "":
            return None
        return str(order_id), url.format(id=order_id)

    return identify


class Faults(Protocol):
    """What ``ordersync simulate --faults`` asks of a simulator's fault plan
    (:class:`ordersync.simfaults.FaultPlan` is one)."""

    def random(self, spec: str, seed: int = 0) -> None: ...
@dataclass(frozen=True, slots=True)
class Prices:
    """Where an adapter's mapping keeps an order's value (keys of ``Order.data``), so that
    the report can total it per currency without knowing the vendor."""

    amount: str
    currency: str | None = None
    """The key holding the currency code; None: the vendor's orders state none."""
    minor_units: bool = False
    """The amount is in minor units (pence, cents): the report divides it by 100."""


class Simulator(Protocol):
    """A vendor simulator: a real HTTP server on loopback."""

    faults: Faults | None
    """Its fault plan, or None when it takes no faults (every ``SimulatorBase`` has one)."""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """Everything the core needs to know about one adapter."""

    name: str
    options: Mapping[str, Option]
    create: Callable[..., Adapter]
    """``create(vendor_config, http, clock=...)`` -> Adapter. ``http`` is built from
    :attr:`http` and is the core's: the adapter only sends requests through it."""
    map_order: Callable[[dict], Order]
    """Pure: one raw vendor order to the common model."""
    map_row: Callable[[dict], OrderRow] | None = None
    """Optional, pure: the same mapping straight to the row the ledger writes (no ``Order``
    or ``Item`` objects: a third less CPU per order in a backfill). ``map_order`` must equal
    ``order_from_row(map_row(raw))``; ``ordersync.model.order_from_row`` gives one from the
    other (Fotoware's mapping is written so)."""
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
    http: HttpBehaviour = HttpBehaviour()
    """The vendor's HTTP: default headers, status meanings, a body-aware classifier, auth."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of the core's per-vendor defaults (poll_interval_s, rate_limit ...)."""
    actions: tuple[ActionSpec, ...] = ()
    """Every action kind the adapter performs (its ``action_kinds``), declared."""
    demo_chain: tuple[tuple[str, dict], ...] = ()
    """A sample chain for the demo, starting with a create: (kind, declared values) each."""
    waiting_states: Mapping[str, str] = field(default_factory=dict)
    """Vendor states in which an order waits for someone, each with what it waits for
    (``{"pending": "approval"}``): past the report's ``stuck_after_s`` it is stuck."""
    problem_states: frozenset[str] = frozenset()
    """The vendor states whose orders :attr:`problems` is asked about (and only those)."""
    problems: Callable[[StoredOrder], list[str]] | None = None
    """Pure: what blocks an order (a photo the vendor cannot use, a submission error), one
    line each; [] for none. The report shows each order with problems as an exception."""
    prices: Prices | None = None
    """Where the order's value is, for the report's totals per currency; None: no prices."""

    def action(self, kind: str) -> ActionSpec | None:
        return next((a for a in self.actions if a.kind == kind), None)
