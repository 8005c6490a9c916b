"""A reseller API V3 server (interworks.cloud white-label resellers) for tests, benchmarks
and the CLI, speaking vendor-docs/reseller-api-v3-orders.txt and vendor-notes.md section 3:

* ``POST /oauth/token``: the password grant, the client key and secret only as HTTP Basic
  auth (in the form they are a 400 ``invalid_client``), ``expires_in`` = ``token_lifetime_s``;
  every ``/api/`` call needs ``Authorization: Bearer`` with a live token (else 401) and
  ``X-Api-Version: 3.0`` (else 400: this organisation would answer as API v1).
* ``GET /api/orders``: ``stage`` Confirmed (the default), Draft or All; ``pageIndex``
  (from 1) and ``pageSize`` (25 by default, at most ``max_page_size``) ->
  ``{"data", "pageIndex", "pageSize", "totalCount"}``; ``$filter`` (``f eq 'x'``,
  ``f eq 1``, ``f gt datetime'yyyy-MM-dd'``, ``contains(f,'x')``, joined by ``and``) and
  ``$orderby=f asc|desc``; anything else is a 400.
* orders, items, ``checkout``, ``execute/status``, ``customfields`` and item
  ``characteristics`` as the page lists them (characteristics are written with ``PUT``).
  Writes to an order that is not a Draft, a create without ``accountId`` and a checkout of
  an empty draft are 400 ``{"message"}``; ``execute/status`` of an unconfirmed order is 400.
* **Free Edition** (``edition="Free"``): every write is 403.
* **Rate limit** (``rate_limit=(n, per_s)``): 403 ``{"message": "Rate limit exceeded"}``
  without Retry-After, as this vendor does; an injected ``403`` fault answers the same.

Time-driven behaviour on the simulator clock, applied whenever a request arrives:

* a draft is deleted once its ``expirationDate`` (``orderDate`` + 7 days) has passed;
* a checkout makes the order Submitted with an execution InProgress; ``execution_s`` later
  the execution is Completed and the order Executed, or, for an order in
  ``fail_execution``, Failed with a message and the order stays Submitted (and its
  ``updatedAt`` does not move: a poller must read the execution to learn it).

The package, by job: ``query`` (dates and the ``$filter``/``$orderby`` subset), ``account``
(the organisation's orders, items and executions as state, and the controls tests use),
``server`` (routes, tokens, headers, the rate limit's 403 and the endpoints). Only the
standard library, aiohttp, orjson and ``ordersync.simkit`` are used.
"""

from __future__ import annotations

from .account import ACCOUNTS, DAY, PRODUCTS
from .query import parse_filter, stamp
from .server import ResellerSimulator

__all__ = ["ACCOUNTS", "DAY", "PRODUCTS", "ResellerSimulator", "parse_filter", "stamp"]
