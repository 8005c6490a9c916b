"""The reseller adapter as the core sees it: pull orders, prepare/perform/verify actions."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping

from ordersync.contract import AdapterBase, LedgerReader, Page

from .actions import KINDS, ResellerActions
from .client import ResellerApi
from .pull import ResellerPull


class ResellerAdapter(ResellerActions, AdapterBase):
    """One organisation's reseller API user: its pull, and the actions it inherits."""

    stream = "orders"
    action_kinds: Mapping[str, str] = KINDS

    def __init__(self, api: ResellerApi, *, page_size: int = 100,
                 clock: Callable[[], float] = time.time) -> None:
        self.puller = ResellerPull(api, page_size=page_size, clock=clock)
        super().__init__(api, self.puller, page_size=page_size, clock=clock)

    def pull(self, cursor: dict | None, view: LedgerReader,
             now: float) -> AsyncGenerator[Page, None]:
        return self.puller.pull(cursor, view, now)
