"""The reseller simulator's organisation as state: seeded orders, their items, custom
fields and executions, drafts that expire and executions that end on the simulator clock,
and the controls tests use."""

from __future__ import annotations

import math
import random
import time
from typing import Callable

from ordersync.simkit import SimulatorBase

from .query import _when, stamp

DAY = 86400
DRAFT_LIFETIME_S = 7 * DAY
TOKEN_PATH = "/oauth/token"
STATUSES = ("Draft", "Submitted", "Executed", "Canceled", "Reseller Pending Approval",
            "Cancelled by Reseller")
UNCONFIRMED = ("Draft", "Reseller Pending Approval", "Cancelled by Reseller")
CUSTOM_STATUS = "Awaiting Credit Check"   # an organisation's own status in the seeded data
FIELDS = ("id", "code", "accountId", "accountName", "status", "orderDate", "expirationDate",
          "currency", "paymentMethod", "totalAmount", "createdAt", "updatedAt")
PRODUCTS = (("MS-365-BP", "Microsoft 365 Business Premium", 22.0),
            ("MS-365-BB", "Microsoft 365 Business Basic", 6.0),
            ("ACR-BACKUP", "Acronis Cyber Backup", 9.5),
            ("AZ-PLAN", "Azure plan", 0.0))
ACCOUNTS = (("ACC-1001", "Northwind Traders"), ("ACC-1002", "Contoso Ltd"),
            ("ACC-1003", "Fabrikam Inc"), ("ACC-1004", "Adventure Works"))
CUSTOM_FIELDS = ((1, "PO Number"), (2, "Cost Centre"))
CHARACTERISTICS = ((11, "domain", "Domain"), (12, "tenant", "Tenant name"))


class Account(SimulatorBase):
    """One organisation's orders as state (no HTTP here); ``.orders`` keyed by int id."""

    def __init__(self, *, orders: int = 60, seed: int = 1, clock: Callable[[], float] = time.time,
                 edition: str = "Standard", client_key: str = "sim-client-key",
                 client_secret: str = "sim-client-secret", username: str = "api@reseller.example",
                 password: str = "sim-password", token_lifetime_s: float = 3600.0,
                 execution_s: float = 300.0, max_page_size: int = 100,
                 rate_limit: tuple[int, float] | None = None) -> None:
        super().__init__(clock=clock, rate_limit=rate_limit)
        self.edition = edition
        self.client_key, self.client_secret = client_key, client_secret
        self.username, self.password = username, password
        self.token_lifetime_s = token_lifetime_s
        self.execution_s = execution_s
        self.max_page_size = max_page_size
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.orders: dict[int, dict] = {}
        self.items: dict[int, dict[int, dict]] = {}
        self.custom_fields: dict[int, list[dict]] = {}
        self.executions: dict[int, dict] = {}
        self.fail_execution: set[int] = set()
        self.deleted: list[int] = []
        self._next_due = math.inf
        self._next_id, self._next_item = 5001, 90001
        self._rnd = random.Random(seed)
        now = self._clock()
        for n in range(orders):
            self._seed(now - (orders - n) * 3600)
        self.app = self._build_app()

    # ------------------------------------------------------------------ data
    def _seed(self, created: float) -> None:
        rnd = self._rnd
        status = rnd.choices(STATUSES + (CUSTOM_STATUS,), (20, 15, 40, 8, 8, 4, 5))[0]
        if status == "Draft":
            created = self._clock() - rnd.uniform(0, 5 * DAY)
        oid = self.add_order(status=status, items=rnd.randint(1, 3), at=created,
                             account=rnd.randrange(len(ACCOUNTS)))
        self._touch(oid, created)
        if status == "Submitted":
            self._execute(oid, created, fail=rnd.random() < 0.25)

    def add_order(self, *, status: str = "Draft", items: int = 0, at: float | None = None,
                  account: int = 0) -> int:
        """A new order (by the portal, not the API) dated ``at`` (its orderDate; the
        default is now) and stamped updated now: its id."""
        at = self._clock() if at is None else at
        oid, self._next_id = self._next_id, self._next_id + 1
        account_id, name = ACCOUNTS[account % len(ACCOUNTS)]
        self.orders[oid] = {
            "id": oid, "code": f"ORD-{oid}", "accountId": account_id, "accountName": name,
            "status": status, "orderDate": stamp(at),
            "expirationDate": stamp(at + DRAFT_LIFETIME_S) if status == "Draft" else None,
            "currency": "EUR", "paymentMethod": "Invoice", "totalAmount": 0.0,
            "createdAt": stamp(at), "updatedAt": stamp(at),
        }
        if status == "Draft":
            self._due(at + DRAFT_LIFETIME_S)
        self.items[oid] = {}
        self.custom_fields[oid] = [{"id": fid, "name": name, "value": None}
                                   for fid, name in CUSTOM_FIELDS]
        for n in range(items):
            self._add_item(oid, {"productId": PRODUCTS[n % len(PRODUCTS)][0], "quantity": n + 1})
        self._touch(oid)
        return oid

    def _add_item(self, oid: int, fields: dict) -> dict:
        product = next((p for p in PRODUCTS if p[0] == fields["productId"]),
                       (fields["productId"], str(fields["productId"]), 1.0))
        iid, self._next_item = self._next_item, self._next_item + 1
        quantity = fields.get("quantity", 1)
        item = {"id": iid, "orderId": oid, "productId": product[0], "productName": product[1],
                "billingPlanId": fields.get("billingPlanId", f"{product[0]}-M"),
                "quantity": quantity, "subscriptionId": None, "unitPrice": product[2],
                "total": round(product[2] * quantity, 2), "deliveryStatus": "Pending",
                "characteristics": [{"id": cid, "code": code, "name": name, "value": None,
                                     "externalId": f"ext-{cid}", "valueExternal": None}
                                    for cid, code, name in CHARACTERISTICS]}
        self.items[oid][iid] = item
        return item

    def _execute(self, oid: int, at: float, *, fail: bool) -> None:
        self.executions[oid] = {"status": "InProgress", "due": at + self.execution_s,
                                "fail": fail, "message": None}
        self._due(at + self.execution_s)

    def _touch(self, oid: int, at: float | None = None) -> None:
        order = self.orders[oid]
        order["totalAmount"] = round(sum(i["total"] for i in self.items[oid].values()), 2)
        order["updatedAt"] = stamp(self._clock() if at is None else at)

    def set_status(self, order_id: int | str, status: str) -> None:
        """Someone changes an order's status in the portal (custom statuses included)."""
        oid = int(order_id)
        self.orders[oid]["status"] = status
        self._touch(oid)

    def _due(self, at: float) -> None:
        """Something happens at ``at`` (a draft expires, an execution ends)."""
        self._next_due = min(self._next_due, at)

    def advance(self) -> None:
        """Apply what the clock says happened: expired drafts deleted, executions done."""
        now = self._clock()
        if now < self._next_due:
            return
        self._next_due = math.inf
        for oid, order in list(self.orders.items()):
            if order["status"] != "Draft":
                continue
            if _when(order["expirationDate"]) > now:
                self._due(_when(order["expirationDate"]))
                continue
            del self.orders[oid]
            self.deleted.append(oid)
            self._effect("EXPIRE", oid, None)
        for oid, execution in self.executions.items():
            if execution["status"] != "InProgress" or oid not in self.orders:
                continue
            if execution["due"] > now:
                self._due(execution["due"])
                continue
            if execution["fail"]:
                execution.update(status="Failed", message="Provisioning failed at the vendor")
            else:
                execution["status"] = "Completed"
                self.orders[oid]["status"] = "Executed"
                self._touch(oid, execution["due"])

    def order_view(self, oid: int) -> dict:
        return {k: self.orders[oid].get(k) for k in FIELDS}
