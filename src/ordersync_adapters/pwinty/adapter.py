"""The Pwinty adapter as the core sees it: pull orders, prepare/perform/verify actions."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping

from ordersync.contract import AdapterBase, LedgerReader, Outcome, Page
from ordersync.ledger import StoredOrder
from ordersync.model import Action

from .actions import KINDS, PwintyActions
from .client import PwintyApi
from .pull import PwintyPull


class PwintyAdapter(AdapterBase):
    """One Pwinty merchant account."""

    stream = "orders"
    action_kinds: Mapping[str, str] = KINDS

    def __init__(self, api: PwintyApi, *, page_size: int = 100,
                 readiness_max_age_s: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.puller = PwintyPull(api, page_size=page_size,
                                 readiness_max_age_s=readiness_max_age_s, clock=clock)
        self.actions = PwintyActions(api)

    def pull(self, cursor: dict | None, view: LedgerReader,
             now: float) -> AsyncGenerator[Page, None]:
        return self.puller.pull(cursor, view, now)

    async def prepare(self, kind: str, order: StoredOrder | None, params: dict) -> dict:
        return await self.actions.prepare(kind, order, params)

    async def checkpoint(self, action: Action) -> dict | None:
        return await self.actions.checkpoint(action)

    async def perform(self, action: Action) -> Outcome:
        try:
            return await self.actions.perform(action)
        finally:
            self.puller.action_done()   # the order copy it returns is stored: see pull.py

    async def verify(self, action: Action) -> Outcome:
        try:
            return await self.actions.verify(action)
        finally:
            self.puller.action_done()
