"""The SQLite ledger: one connection and the parts that share it, behind one object."""

from __future__ import annotations

from pathlib import Path

from .connection import Connection
from .exceptions import ExceptionStore
from .orders import OrderStore
from .outbox import Outbox
from .reports import ReportReads
from .syncstate import SyncState


class Ledger(Connection, OrderStore, SyncState, ExceptionStore, ReportReads):
    """The SQLite ledger (it provides :class:`~ordersync.ledger.interface.LedgerAPI`).

    Not thread-safe: use it from one thread (see :class:`~ordersync.ledger.AsyncLedger`).
    """

    def __init__(self, path: str | Path | None = None, *, memory: bool = False,
                 prepared: bool = False) -> None:
        super().__init__(path, memory=memory, prepared=prepared)
        self.outbox = Outbox(self)
        """The actions and their attempts (the outbox half of the ledger)."""
