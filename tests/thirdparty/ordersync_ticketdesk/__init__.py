"""A test-only vendor, "TicketDesk", shipped the way a third party ships an adapter: its own
package with an entry point in the ``ordersync.adapters`` group (the ``.dist-info`` beside
this folder). Nothing in ordersync knows it; tests put this folder on ``PYTHONPATH``.

TicketDesk keeps tickets. Its actions use a parameter of every declared type, one kind
(``submit``) shares a command with other adapters, and opening a ticket can start a chain.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from pathlib import Path

import orjson
from aiohttp import web

from ordersync.contract import (
    ActionSpec,
    AdapterBase,
    AdapterSpec,
    LedgerReader,
    Outcome,
    Page,
    Param,
    ParamType,
)
from ordersync.errors import ActionRefused, ParameterError
from ordersync.http_answers import Response
from ordersync.model import Action, Order, State

ACTIONS = (
    ActionSpec("open_ticket", "open a TicketDesk ticket", (
        Param("title", required=True, metavar="TEXT", help="what the ticket is about"),
        Param("priority", ParamType.INT, default=3, minimum=1, metavar="N",
              help="1 is the most urgent (default: 3)"),
        Param("weight", ParamType.FLOAT, minimum=0, metavar="W", help="effort estimate"),
        Param("urgent", ParamType.BOOL, help="page whoever is on call"),
        Param("attachment", ParamType.PATH, metavar="PATH", help="a file to attach"),
        Param("details", ParamType.FILE, flag="from", metavar="FILE",
              help="more fields from a JSON or TOML file"),
        Param("labels", ParamType.ASSIGNMENTS, repeatable=True, flag="label",
              metavar="NAME=VALUE", help="a label; repeat a name for several values"),
        Param("line_labels", ParamType.ITEM_ASSIGNMENTS, repeatable=True, flag="line-label",
              metavar="N:NAME=VALUE", help="a label of line N"),
        Param("channel", choices=("mail", "phone"), default="mail",
              help="how the customer reached us (default: mail)"),
    ), command=("tickets", "open"), creates=True),
    ActionSpec("add_note", "add notes to a ticket",
               (Param("text", required=True, repeatable=True, positional=True, metavar="TEXT",
                      help="a note"),),
               command=("tickets", "note"), after=("open_ticket",)),
    ActionSpec("submit", "submit TicketDesk tickets for review",
               (Param("note", metavar="TEXT", help="a note for the reviewer (TicketDesk)"),),
               many=True, after=("open_ticket", "add_note")),
    ActionSpec("close", "close TicketDesk tickets",
               (Param("reason", required=True, choices=("done", "duplicate"),
                      help="why it is closed"),),
               command=("tickets", "close"), many=True, after=("open_ticket", "add_note")),
)


class TicketDesk(AdapterBase):
    """The adapter: tickets are the orders; every write is a POST."""

    stream = "tickets"
    action_kinds = {a.kind: a.description for a in ACTIONS}

    def __init__(self, http) -> None:
        self.http = http

    async def _call(self, method: str, path: str, body: dict | None = None):
        return await self.http.request(method, path, json=body, read=Response.json,
                                       headers={"Accept": "application/json"})

    async def pull(self, cursor: dict | None, view: LedgerReader,
                   now: float) -> AsyncGenerator[Page, None]:
        yield Page(await self._call("GET", "tickets"), None, now)

    async def prepare(self, kind: str, order: dict | None, params: dict) -> dict:
        if order is not None and order.vendor_state == "closed":
            raise ActionRefused(f"{order.target} is closed")
        if kind == "open_ticket" and "attachment" in params:
            path = Path(params["attachment"])
            if not path.is_file():
                raise ParameterError("attachment", f"{path}: no such file")
            params = {**params, "attachment": path.stat().st_size}
        if "line_labels" in params:  # the payload is JSON: line numbers become keys
            params = {**params, "line_labels": {str(n): v for n, v in
                                                params["line_labels"].items()}}
        return params

    async def perform(self, action: Action) -> Outcome:
        if action.kind == "open_ticket":
            ticket = await self._call("POST", "tickets", action.payload)
            if ticket["title"].startswith("no id"):  # a vendor whose answer lacks the id
                return Outcome(True, {})
            return Outcome(True, {"order_id": str(ticket["id"])}, ticket)
        verb = {"add_note": "notes", "submit": "submit", "close": "close"}[action.kind]
        ticket = await self._call("POST", f"tickets/{action.vendor_id}/{verb}", action.payload)
        return Outcome(True, {"kind": action.kind}, ticket)

    async def verify(self, action: Action) -> Outcome:
        return Outcome(None, reason="TicketDesk cannot tell; look in its portal")


def map_order(raw: dict) -> Order:
    state = {"open": State.SUBMITTED, "review": State.APPROVED, "closed": State.COMPLETED}
    return Order(str(raw["id"]), state.get(raw["status"], State.UNKNOWN), raw["status"],
                 raw.get("title"), None, raw.get("updated"), orjson.dumps(raw))


class TicketDeskSimulator:
    """TicketDesk on loopback: tickets in memory, every applied write in ``effects``."""

    def __init__(self, *, orders: int = 0, seed: int = 1, **_) -> None:
        self.tickets: dict[int, dict] = {}
        self.effects: list[tuple[str, str, dict]] = []
        for n in range(orders):
            self._open({"title": f"seeded {n}"})
        app = web.Application()
        app.router.add_get("/tickets", self._list)
        app.router.add_post("/tickets", self._create)
        app.router.add_post("/tickets/{tid}/{verb}", self._change)
        self.runner = web.AppRunner(app)

    def _open(self, body: dict) -> dict:
        tid = 700 + len(self.tickets)
        self.tickets[tid] = {"id": tid, "status": "open", "notes": [], "updated": time.time(),
                             **body}
        return self.tickets[tid]

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.tickets.values()))

    async def _create(self, request: web.Request) -> web.Response:
        ticket = self._open(await request.json())
        self.effects.append(("OPEN", str(ticket["id"]), await request.json()))
        return web.json_response(ticket, status=201)

    async def _change(self, request: web.Request) -> web.Response:
        ticket, body = self.tickets[int(request.match_info["tid"])], await request.json()
        verb = request.match_info["verb"]
        ticket["notes"] += body.get("text", [])
        ticket["status"] = {"close": "closed", "submit": "review"}.get(verb, ticket["status"])
        ticket["updated"] = time.time()
        self.effects.append((verb.upper(), str(ticket["id"]), body))
        return web.json_response(ticket)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        return f"http://{host}:{self.runner.addresses[0][1]}/"

    async def stop(self) -> None:
        await self.runner.cleanup()


ADAPTER = AdapterSpec("ticketdesk", {}, lambda config, http, clock=time.time: TicketDesk(http),
                      map_order, TicketDeskSimulator, actions=ACTIONS)
