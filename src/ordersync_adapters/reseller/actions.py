"""Reseller API V3 actions: create a draft, add or delete an item, check out, set custom
fields, set an item's characteristics.

Each kind's parameters are checked in one function (:data:`PARAMETERS`), so that the
checks can become a declaration. The vendor accepts writes to Draft orders only, so every
write to an existing order is refused when queued unless the ledger holds it as a Draft;
a checkout is also refused for a draft without items or one that expires before it could
run. None of these requests is idempotent at the vendor and there are no idempotency keys:
each kind says in :meth:`ResellerActions.verify` how a lost answer is settled by reading
(docs/actions.md, "Reseller API V3").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ordersync.contract import ActionSpec, Outcome, Param, ParamType
from ordersync.errors import ActionRefused, NotFound, ParameterError, VendorError
from ordersync.ledger.records import StoredOrder
from ordersync.model import Action

from .client import ResellerApi, filter_expression
from .mapping import DRAFT
from .pull import ResellerPull, timestamp

ITEM = Param("item_id", required=True, positional=True, metavar="ITEM",
             help="the item's id (see `orders show`)")

ACTIONS = (
    ActionSpec("create_draft", "create a Draft order for an account (the reseller's or an end"
               " customer's)", (Param("account_id", required=True, flag="account",
                                      metavar="ID", help="the account the order is for"),),
               command=("draft", "create"), creates=True),
    ActionSpec("add_item", "add an item (product, billing plan, quantity) to a Draft order",
               (Param("product_id", required=True, flag="product", metavar="P",
                      help="the product's id"),
                Param("quantity", ParamType.INT, default=1, minimum=1, metavar="N",
                      help="how many (default: 1)"),
                Param("billing_plan_id", flag="billing-plan", metavar="B",
                      help="the billing plan's id (default: the product's)")),
               command=("items", "add"), after=("create_draft",)),
    ActionSpec("delete_item", "remove an item from a Draft order", (ITEM,),
               command=("items", "remove")),
    ActionSpec("checkout", "send a Draft order with items for execution",
               after=("create_draft", "add_item")),
    ActionSpec("set_custom_fields", "set a Draft order's custom fields (by name or id)",
               (Param("fields", ParamType.ASSIGNMENTS, required=True, repeatable=True,
                      positional=True, metavar="NAME=VALUE", help="a field and its value"),),
               command=("fields", "set"), after=("create_draft",)),
    ActionSpec("set_characteristics", "set the characteristics of an item of a Draft order"
               " (by code)", (ITEM, Param("values", ParamType.ASSIGNMENTS, required=True,
                                          repeatable=True, positional=True,
                                          metavar="CODE=VALUE",
                                          help="a characteristic's code and its value")),
               command=("characteristics", "set")),
)
KINDS = {spec.kind: spec.description for spec in ACTIONS}

CHECKOUT_MARGIN_S = 600.0
"""A checkout is refused for a draft that expires sooner than this: it could not run."""


def _required(params: dict, name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise ParameterError(name, "is required")
    return value


def _item_of(raw: dict, item_id: Any) -> dict:
    for item in raw.get("items") or []:
        if str(item.get("id")) == str(item_id):
            return item
    raise ActionRefused(f"order {raw.get('id')} has no item {item_id}")


def _create_draft(params: dict, raw: dict) -> dict:
    account = _required(params, "account_id")
    return {"fields": {"accountId": account}}


def _add_item(params: dict, raw: dict) -> dict:
    quantity = params.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ParameterError("quantity", f"must be a whole number of at least 1, got {quantity!r}")
    fields = {"productId": _required(params, "product_id"), "quantity": quantity}
    if params.get("billing_plan_id") not in (None, ""):
        fields["billingPlanId"] = params["billing_plan_id"]
    return {"fields": fields}


def _delete_item(params: dict, raw: dict) -> dict:
    item = _item_of(raw, _required(params, "item_id"))
    return {"item_id": str(item.get("id"))}


def _checkout(params: dict, raw: dict) -> dict:
    if not raw.get("items"):
        raise ActionRefused(f"order {raw.get('id')} has no items; an empty draft cannot be"
                            " checked out")
    return {}


def _set_custom_fields(params: dict, raw: dict) -> dict:
    wanted = params.get("fields")
    if not isinstance(wanted, dict) or not wanted:
        raise ParameterError("fields", "give at least one NAME=VALUE")
    known = [f for f in raw.get("customFields") or [] if isinstance(f, dict)]
    fields = []
    for key, value in wanted.items():
        match = [f for f in known if str(f.get("name")) == str(key) or str(f.get("id")) == str(key)]
        if not match:
            names = ", ".join(str(f.get("name")) for f in known) or "none"
            raise ActionRefused(f"order {raw.get('id')} has no custom field {key!r}; it has"
                                f" {names}")
        fields.append({"id": match[0].get("id"), "name": match[0].get("name"), "value": value})
    return {"fields": fields}


def _set_characteristics(params: dict, raw: dict) -> dict:
    item = _item_of(raw, _required(params, "item_id"))
    wanted = params.get("values")
    if not isinstance(wanted, dict) or not wanted:
        raise ParameterError("values", "give at least one CODE=VALUE")
    known = {str(c.get("code")): c for c in item.get("characteristics") or []
             if isinstance(c, dict)}
    unknown = [code for code in wanted if str(code) not in known]
    if unknown:
        raise ActionRefused(f"item {item.get('id')} has no characteristic {unknown[0]!r}; it"
                            f" has {', '.join(known) or 'none'}")
    return {"item_id": str(item.get("id")),
            "values": [{"id": known[str(c)].get("id"), "code": str(c), "value": v}
                       for c, v in wanted.items()]}


PARAMETERS: dict[str, Callable[[dict, dict], dict]] = {
    "create_draft": _create_draft,
    "add_item": _add_item,
    "delete_item": _delete_item,
    "checkout": _checkout,
    "set_custom_fields": _set_custom_fields,
    "set_characteristics": _set_characteristics,
}
"""Each kind's parameter checks, in one place: (params, the ledger's raw order) -> payload."""


BASELINES = {"create_draft": "drafts", "add_item": "items"}
"""The kinds whose checkpoint commits a baseline before the request, and its key in notes."""


def _new_matching_items(order: dict, fields: dict, baseline: list[str]) -> list[dict]:
    return [i for i in order.get("items") or [] if str(i.get("id")) not in baseline
            and all(str(i.get(k)) == str(v) for k, v in fields.items())]


def effect_present(kind: str, order: dict, payload: dict, notes: dict) -> bool:
    """Whether a fresh read of the order (with its items) shows the action's effect."""
    if kind == "add_item":
        return bool(_new_matching_items(order, payload["fields"], notes["items"]))
    if kind == "delete_item":
        return all(str(i.get("id")) != payload["item_id"] for i in order.get("items") or [])
    if kind == "checkout":
        return order.get("status") != DRAFT
    if kind == "set_custom_fields":
        have = {str(f.get("id")): f.get("value") for f in order.get("customFields") or []}
        return all(have.get(str(f["id"])) == f["value"] for f in payload["fields"])
    if kind == "set_characteristics":
        item: dict = next((i for i in order.get("items") or []
                     if str(i.get("id")) == payload["item_id"]), {})
        have = {str(c.get("code")): c.get("value") for c in item.get("characteristics") or []}
        return all(have.get(v["code"]) == v["value"] for v in payload["values"])
    raise ValueError(kind)


class ResellerActions:
    """Prepare, perform and verify actions for one organisation."""

    def __init__(self, api: ResellerApi, reader: ResellerPull, *, page_size: int = 100,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.reader = reader
        self.page_size = page_size
        self.clock = clock

    # -- prepare: checked when queued, against the ledger's copy ---------------------------

    async def prepare(self, kind: str, order: StoredOrder | None, params: dict) -> dict:
        if kind not in KINDS:
            raise ActionRefused(f"the reseller API cannot {kind}; it can {', '.join(KINDS)}")
        if kind == "create_draft" and order is not None:
            raise ActionRefused("create draft makes a new order: give no order id")
        if order is None:  # a create, or a later link of a chain whose create makes the order
            return {} if kind == "checkout" else PARAMETERS[kind](params, {"id": "(new)"})
        status = order.vendor_state
        target = order.target
        if status != DRAFT:
            raise ActionRefused(f"{target} is {status}; {kind.replace('_', ' ')} needs a Draft"
                                " order (the vendor accepts writes to drafts only)")
        if kind == "checkout":
            self._check_time_left(target, order.expires)
        return PARAMETERS[kind](params, order.raw or {})

    def _check_time_left(self, target: str, expires: str | None) -> None:
        when = timestamp(expires)
        if when is None:
            return
        left_s = when - self.clock()
        if left_s < CHECKOUT_MARGIN_S:
            raise ActionRefused(f"{target} expires at {expires}, before a checkout could run"
                                f" (it needs {CHECKOUT_MARGIN_S:.0f} s)")

    # -- perform and verify ----------------------------------------------------------------

    async def checkpoint(self, action: Action) -> dict | None:
        """Before a create or an add: what exists now, so a lost answer can be settled.

        Committed before the request; the outbox sends one order's actions one at a time.
        """
        if action.kind == "create_draft":
            return {"drafts": await self._draft_ids(action.payload["fields"]["accountId"])}
        if action.kind == "add_item":
            return {"items": [str(i.get("id")) for i in await self.api.items(action.vendor_id)]}
        return None

    async def _draft_ids(self, account_id: Any) -> list[str]:
        params = {"stage": "Draft", "$filter": filter_expression(accountId=str(account_id))}
        return [str(o.get("id")) async for page in self.api.pages(params, self.page_size)
                for o in page]

    async def perform(self, action: Action) -> Outcome:
        kind, order_id, payload = action.kind, action.vendor_id, action.payload
        if kind == "create_draft":
            created = await self.api.create_order(payload["fields"])
            if not isinstance(created, dict) or created.get("id") is None:
                return await self.verify(action)  # answered without the order: look for it
            try:
                return await self._done({"order_id": str(created["id"])}, str(created["id"]))
            except VendorError:  # made, and its id known: the ledger reads it at the next poll
                return Outcome(True, {"order_id": str(created["id"])})
        if kind == "checkout":
            await self._check_fresh(order_id)
            await self.api.checkout(order_id)
        elif kind == "add_item":
            added = await self.api.add_item(order_id, payload["fields"])
            item_id = added.get("id") if isinstance(added, dict) else None
            return await self._done({"item_id": None if item_id is None else str(item_id)},
                                    order_id)
        elif kind == "delete_item":
            try:
                await self.api.delete_item(order_id, payload["item_id"])
            except NotFound:
                return await self.verify(action)  # an earlier, unanswered delete did it
        elif kind == "set_custom_fields":
            await self.api.set_custom_fields(order_id, [{"id": f["id"], "value": f["value"]}
                                                        for f in payload["fields"]])
        elif kind == "set_characteristics":
            await self.api.set_characteristics(order_id, payload["item_id"], payload["values"])
        return await self._done({"kind": kind}, order_id)

    async def _check_fresh(self, order_id: str) -> None:
        order = await self.api.order(order_id)
        if order.get("status") == DRAFT:
            self._check_time_left(order_id, order.get("expirationDate"))

    async def _done(self, result: dict, order_id: str) -> Outcome:
        return Outcome(True, result, await self.reader.read_order(order_id))

    async def verify(self, action: Action) -> Outcome:
        baseline = BASELINES.get(action.kind)
        if baseline is not None and baseline not in action.notes:
            # the baseline is committed before the request: without it nothing was sent
            # (and what exists, e.g. an item of the same product, is not our effect)
            return Outcome(False, reason="no request was sent")
        if action.kind == "create_draft":
            return await self._verify_create(action)
        order = await self.reader.read_order(action.vendor_id)
        done = effect_present(action.kind, order, action.payload, action.notes)
        return Outcome(done, {"verified": True}, order,
                       reason="the order already shows it" if done else "not on the order")

    async def _verify_create(self, action: Action) -> Outcome:
        """The account's drafts now against those just before the request (notes)."""
        account = action.payload["fields"]["accountId"]
        new = sorted(set(await self._draft_ids(account)) - set(action.notes["drafts"]))
        if not new:
            return Outcome(False, reason=f"no new draft for account {account}")
        if len(new) > 1:
            return Outcome(None, reason=f"{len(new)} new drafts for account {account}"
                           f" ({', '.join(new)}) appeared meanwhile; which one is ours cannot"
                           " be told: keep one, delete the others in the portal, then"
                           " `actions cancel`")
        return await self._done({"order_id": new[0], "verified": True}, new[0])
