"""The ledger: every order, event, cursor, vendor's health and outbox action ordersync keeps,
and every SQL statement it runs, behind one typed interface.

    ledger/
    ├── interface.py   LedgerAPI, OutboxAPI: what callers may ask (Protocols)
    ├── records.py     the typed records reads return (StoredOrder, OrderEvent, Attempt ...)
    ├── sqlite.py      Ledger: the SQLite backend, one connection shared by its parts
    │   ├── connection.py  opening a private file, WAL, transactions, file problems
    │   ├── schema.py      tables and recorded migrations
    │   ├── orders.py      orders, items, events: pages in, orders out
    │   ├── syncstate.py   cursors and vendor health
    │   ├── exceptions.py  exceptions as state: found, persisting, resolved
    │   ├── reports.py     the report's reads: waiting, expiring, changes, values
    │   └── outbox.py      actions and their attempts
    ├── threaded.py    AsyncLedger (one thread, submission order) and LedgerView
    └── backup.py      copies of a live SQLite ledger (online backup API), and restoring one

:func:`open_ledger` picks the backend from ``ledger.url`` (:func:`ledger_location`): SQLite
(``sqlite:///PATH`` or a plain path) is the only one today.
"""

from __future__ import annotations

from pathlib import Path

from ..constants import BUSY_TIMEOUT_S
from ..errors import ConfigError, OutboxError
from .connection import is_ledger_file, ledger_problem, private_folder, sqlite3_connect
from .interface import LedgerAPI, OutboxAPI
from .orders import digest
from .outbox import Outbox
from .records import (
    Attempt,
    ExceptionRecord,
    Expiring,
    Finding,
    OrderEvent,
    OrderRef,
    PageResult,
    Refreshed,
    StateCount,
    StoredOrder,
    Totals,
    VendorHealth,
    WaitingOrder,
)
from .schema import migrations
from .sqlite import Ledger
from .threaded import AsyncLedger, LedgerView

__all__ = [
    "AsyncLedger", "Attempt", "BUSY_TIMEOUT_S", "ExceptionRecord", "Expiring", "Finding",
    "Ledger", "LedgerAPI", "LedgerView", "OrderEvent", "OrderRef", "Outbox", "OutboxAPI",
    "OutboxError", "PageResult", "Refreshed", "StateCount", "StoredOrder", "Totals",
    "VendorHealth", "WaitingOrder", "digest", "is_ledger_file", "ledger_location",
    "ledger_problem", "migrations", "open_ledger", "private_folder", "sqlite3_connect",
]

SQLITE_PREFIX = "sqlite:///"


def ledger_location(url: str) -> Path:
    """The SQLite file a ``ledger.url`` names: ``sqlite:///var/x.db`` (relative),
    ``sqlite:////srv/x.db`` (absolute) or a plain path. Any other scheme is a ConfigError
    naming only the scheme (a URL may hold a password).
    """
    if url.startswith(SQLITE_PREFIX):
        path = url[len(SQLITE_PREFIX):]
    elif "://" in url:
        scheme = url.partition("://")[0]
        raise ConfigError(f"a {scheme!r} ledger is not available yet: use sqlite:///PATH or a"
                          " plain path")
    else:
        path = url
    if not path:
        raise ConfigError("names no ledger file: use sqlite:///PATH or a plain path")
    return Path(path)


def open_ledger(url: str | Path) -> LedgerAPI:
    """Open (creating and migrating it if needed) the ledger at ``url``."""
    return Ledger(ledger_location(str(url)))
