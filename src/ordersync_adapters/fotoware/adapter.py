"""The Fotoware adapter as the core sees it: pull orders, prepare/perform/verify actions."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping

from ordersync.contract import AdapterBase, LedgerReader, Outcome, Page
from ordersync.ledger import StoredOrder
from ordersync.model import Action

from .actions import KINDS, FotowareActions
from .client import FotowareApi
from .pull import FotowarePull


class FotowareAdapter(AdapterBase):
    """One FotoWeb site."""

    stream = "orders"
    action_kinds: Mapping[str, str] = KINDS

    def __init__(self, api: FotowareApi, *, full_scan_interval_s: float = 86400.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.puller = FotowarePull(api, full_scan_interval_s=full_scan_interval_s, clock=clock)
        self.actions = FotowareActions(api)

    def pull(self, cursor: dict | None, view: LedgerReader,
             now: float) -> AsyncGenerator[Page, None]:
        return self.puller.pull(cursor, view, now)

    async def prepare(self, kind: str, order: StoredOrder | None, params: dict) -> dict:
        return await self.actions.prepare(kind, order, params)

    async def perform(self, action: Action) -> Outcome:
        return await self.actions.perform(action)

    async def verify(self, action: Action) -> Outcome:
        return await self.actions.verify(action)
