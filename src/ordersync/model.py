"""The common order model every adapter maps its vendor's orders into."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import orjson


class State(StrEnum):
    """The common lifecycle: draft -> submitted -> approved -> in_production -> completed.

    rejected, cancelled, expired and failed are ends. unknown marks a vendor status no
    mapping knows yet: it is stored and reported, never a reason to stop a poll.
    """

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    IN_PRODUCTION = "in_production"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class Item:
    """One line of an order: what was ordered, how many, and the vendor's own record of it.

    A value, as :class:`Order` is, though not frozen for the same reason.
    """

    key: str
    title: str
    quantity: int = 1
    status: str | None = None
    expires: str | None = None
    data: dict = field(default_factory=dict)


@dataclass(slots=True)
class Order:
    """An order as the ledger keeps it: normalised columns beside the vendor's raw JSON.

    ``vendor_id`` is the id used on the command line as ``INSTANCE:ID``; ``raw`` is the
    vendor's JSON for the order exactly as received (bytes). ``problem`` says why an order
    is flagged (unreadable, over a limit, not UTF-8: see intake.py); None for a sound one.

    A value: nothing changes one once made (``dataclasses.replace`` makes another). It is
    not frozen only because a frozen dataclass sets each field through
    ``object.__setattr__``: with its items, 3.5 µs of an order's 15 µs of mapping in a
    backfill (docs/performance.md).
    """

    vendor_id: str
    state: State
    vendor_state: str
    reference: str | None
    created: str | None
    modified: str | None
    raw: bytes
    items: tuple[Item, ...] = ()
    url: str | None = None
    customer: str | None = None
    expires: str | None = None
    comment: str | None = None
    data: dict = field(default_factory=dict)
    problem: str | None = None


OrderRow = tuple
"""An order as the ledger writes it, in plain values (cheap to build, pickle and bind):
``(vendor_id, problem, state, vendor_state, raw, (reference, created, modified, expires,
customer, comment, url, data), items)`` where ``state`` is the :class:`State`'s value,
``raw`` the vendor's JSON (bytes), ``data`` JSON text (keys sorted, ``"{}"`` for none) and
``items`` a list of ``(key, title, quantity, status, expires, data)``, ``data`` again JSON
text. :func:`order_row` and :func:`order_from_row` convert; an adapter may map straight to
one (``AdapterSpec.map_row``)."""


def data_json(data: dict) -> str:
    """Custom data as an :data:`OrderRow` holds it: JSON, keys sorted, ``"{}"`` for none.
    Data orjson cannot serialise raises TypeError."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode() if data else "{}"


def order_row(order: Order) -> OrderRow:
    """An :class:`Order` as an :data:`OrderRow` (see :func:`data_json`)."""
    return (order.vendor_id, order.problem, order.state._value_, order.vendor_state, order.raw,
            (order.reference, order.created, order.modified, order.expires, order.customer,
             order.comment, order.url, data_json(order.data)),
            [(item.key, item.title, item.quantity, item.status, item.expires,
              data_json(item.data))
             for item in order.items])


def order_from_row(row: OrderRow) -> Order:
    """The :class:`Order` an :data:`OrderRow` holds."""
    vendor_id, problem, state, vendor_state, raw, columns, items = row
    reference, created, modified, expires, customer, comment, url, data = columns
    loads = orjson.loads
    return Order(vendor_id, State(state), vendor_state, reference, created, modified, raw,
                 tuple([Item(key, title, quantity, status, item_expires, loads(item_data))
                        for key, title, quantity, status, item_expires, item_data in items]),
                 url, customer, expires, comment, loads(data), problem)


class ActionState(StrEnum):
    """Where an outbox action stands.

    pending -> in_flight -> succeeded | failed | dead, or back to pending for a retry;
    uncertain when it may have taken effect and nothing can tell; cancelled by a person.
    """

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    UNCERTAIN = "uncertain"
    CANCELLED = "cancelled"


NEW_ORDER = "new-"
"""How the id of an order an action will create starts, until that action succeeded."""

ACTION_END_STATES = frozenset(
    {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.DEAD, ActionState.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class Action:
    """One push to a vendor, as the outbox holds it."""

    id: int
    instance: str
    vendor_id: str
    kind: str
    payload: dict
    key: str
    state: ActionState
    attempts: int
    next_attempt_at: float
    needs_verification: bool
    last_error: str | None = None
    result: dict | None = None
    created_at: str | None = None
    updated_at: str | None = None
    notes: dict = field(default_factory=dict)
    """What the adapter wrote down just before the request (e.g. a count to verify against)."""
    after: int | None = None
    """The action this one follows in a chain: it runs only once that one succeeded."""

    @property
    def target(self) -> str:
        return f"{self.instance}:{self.vendor_id}"
