"""A faithful FotoWeb order-management server for tests, benchmarks and the CLI.

It speaks the wire protocol of vendor-docs/fotoware-*.txt and vendor-notes.md section 1,
the awkward parts included:

* client-credentials OAuth with a form-encoded body and short-lived bearer tokens
  (401 with an empty body for a missing, expired or revoked token);
* discovery through the full API descriptor (``GET /fotoweb/me/``); ``order.admin`` is
  null without the "Approve Orders" permission, and the admin endpoints then answer 403;
* vendor media types chosen by ``Accept`` (406 for anything else, ``*/*`` included);
* order lists newest first in pages of an odd size, linked by opaque ``paging.next`` URLs
  (``""`` on the last page, ``paging: null`` when one page holds everything). The token
  encodes a page *index*, as on a real server, so a list that shrinks while it is paged
  (approving shrinks ``pending``) makes a naive client skip orders;
* the custom verbs ``SUBMIT``, ``APPROVE`` and ``REJECT``; an update body *replaces*
  ``orderItems`` and ``orderData`` (leaving them out clears them);
* custom order data validated against the order configuration (400 ``{"message"}``).

Choices where the documentation is silent: ``adminComment`` and ``expires`` left out of an
update stay unchanged; a non-writable field may be sent back with its current value (so an
order read with GET can be echoed back); orders never expire by themselves; carts have
order ids (the two highest seeded ids) but never appear in lists and refuse every verb
(400). ``modified`` is written with milliseconds after a change and always moves forward,
even with a frozen clock.

The package, by job: ``orderdata`` (the order configuration and custom order data
checked against it), ``account`` (media types, seeded orders, their state and lists, and
the controls tests use), ``server`` (routes, tokens, content negotiation, paging and the
verbs). Recording, faults, the rate limit, early-retry counting and the server lifecycle
come from ``ordersync.simkit`` (vendor-agnostic); otherwise only the standard library,
aiohttp and orjson are used.
"""

from __future__ import annotations

from typing import Any

from ordersync.simkit import FAULT_KINDS, Effect, FaultPlan, RequestRecord, parse_faults

from .account import (
    CT_COUNT,
    CT_DESCRIPTOR,
    CT_ORDER,
    CT_ORDER_CONFIG,
    CT_ORDER_LIST,
    CT_ORDER_LIST_ALT,
    CT_ORDER_UPDATE,
    MUTATING,
    TOKEN_PATH,
    iso,
    iso_ms,
    parse_iso,
)
from .orderdata import build_order_config
from .server import FotowareSimulator


async def serve(host: str, port: int, **kwargs: Any) -> None:
    """Run a simulator on ``host:port`` until cancelled."""
    await FotowareSimulator.serve(host, port, **kwargs)


__all__ = ["CT_COUNT", "CT_DESCRIPTOR", "CT_ORDER", "CT_ORDER_CONFIG", "CT_ORDER_LIST",
           "CT_ORDER_LIST_ALT", "CT_ORDER_UPDATE", "FAULT_KINDS", "MUTATING", "TOKEN_PATH",
           "Effect", "FaultPlan", "FotowareSimulator", "RequestRecord", "build_order_config",
           "iso", "iso_ms", "parse_faults", "parse_iso", "serve"]
