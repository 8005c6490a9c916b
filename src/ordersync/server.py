"""The status server ``ordersync run`` starts when the configuration has a ``[server]``
section: an aiohttp application on the daemon's own event loop, stopped with it.

=========================== =================================================================
``GET /healthz``            200 while the heartbeat is fresh (the loops make progress), 503
``GET /readyz``             200 when every unpaused vendor polled successfully within its
                            allowance (:func:`ordersync.health.allowance_s`), else 503 naming
                            each vendor that is not ready and why
``GET /metrics``            Prometheus text (:mod:`ordersync.metrics`)
``GET /``                   the status page: vendors and freshness, the queue, exceptions
                            (the morning report's, :func:`ordersync.report.build_report`)
``GET /orders/{v}/{id}``    one order with its actions and events (404 when unknown)
``POST /actions``           queue a declared action (``Authorization: Bearer TOKEN``)
=========================== =================================================================

Safe by default: loopback unless ``listen`` names another address (logged as a warning);
every answer carries ``HEADERS`` (nosniff, no-store, a policy that runs no script);
no CORS; request bodies over ``MAX_BODY_BYTES`` refused; at most ``[server] max_connections``
open at once (one more is answered 503 and closed unread) and none idle past ``IDLE_S``, so
no client holds the file descriptors the daemon needs; every vendor string HTML-escaped;
POST /actions refused (403) when no token is configured, and without the right bearer
token (401, compared in constant time). The ledger is read on threads of the server's own
(:class:`~ordersync.ledger.AsyncLedger`: one connection for the probes and metrics, another
for the pages, so a slow page never holds up /readyz), never on the event loop and never in
the daemon's way; an action is queued as the
CLI queues it (:mod:`ordersync.actions`), on a worker thread.
"""

from __future__ import annotations

import asyncio
import hmac
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html import escape
from typing import Any
from urllib.parse import quote

import orjson
import structlog
from aiohttp import web

from .actions import enqueue_chain, enqueue_requests
from .cli_common import action_json
from .config import ServerConfig
from .contract import ActionSpec, AdapterSpec, ParamType, validate
from .daemon import Service
from .errors import (
    ActionRefused,
    ConfigError,
    LedgerBusy,
    LedgerLocked,
    LedgerUnusable,
    ParameterError,
    VendorError,
)
from .health import timestamp, vendor_problems
from .ledger import AsyncLedger, LedgerAPI, open_ledger
from .metrics import CONTENT_TYPE, Metrics
from .model import Action, ActionState
from .registry import adapter as adapter_spec
from .report import ReportSettings, build_report

log = structlog.get_logger("ordersync.server")

MAX_BODY_BYTES = 64 * 1024
"""The largest request body accepted (POST /actions)."""
SHUTDOWN_S = 1.0
"""How long open requests get when the daemon stops."""
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none';"
                               " form-action 'none'; frame-ancestors 'none'",
}
"""On every answer: pages carry vendor text, so no script runs and nothing is fetched even
if escaping ever slipped; nothing is sniffed, cached, framed or leaked as a referrer."""
IDLE_S = 5.0
"""How long a connection may stay open without a whole request (or between requests) before
it is closed: idle connections (slowloris) would otherwise hold the daemon's file
descriptors, which it needs for the ledger and its vendors, for an hour (aiohttp's default)."""
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
           b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")
"""The whole answer to a connection over ``[server] max_connections``."""
STARTING_S = 1.0
"""How long a connection accepted but not yet connected counts against the cap (it is
connected within the event loop's next steps; one that never is stops counting)."""
QUEUE_ROWS = 20
"""Actions listed per state on the status page (uncertain first, then the oldest pending)."""


class StatusServer:
    """The routes, over a running :class:`~ordersync.daemon.Service`."""

    def __init__(self, service: Service, settings: ServerConfig, metrics: Metrics,
                 reads: AsyncLedger, pages: AsyncLedger) -> None:
        self.service = service
        self.reads = reads
        """A connection of the server's own, on its own thread, for /readyz and /metrics: a
        scrape never delays the daemon's writes (WAL lets them read while it writes)."""
        self.pages = pages
        """Another, for the pages: a page over a large ledger (seconds at a million orders,
        or waiting out the daemon's write for its refresh) never delays a probe."""
        self.settings = settings
        self.metrics = metrics
        token = settings.secrets.get("token")  # read now: a missing one stops the start
        self.token = None if token is None else token.encode()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.on_response_prepare.append(_secure)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_text)
        app.router.add_get("/", self.status_page)
        app.router.add_get("/orders/{instance}/{vendor_id:.+}", self.order_page)
        app.router.add_post("/actions", self.post_action)
        return app

    async def _read(self, fn) -> Any:
        return await self.reads.call(fn)

    # ------------------------------------------------------------------ health

    async def healthz(self, request: web.Request) -> web.Response:
        now = self.service.clock()
        at = self.service.heartbeat_at
        stale_after_s = self.service.config.heartbeat.stale_after_s
        age_s = None if at is None else round(now - at, 3)
        healthy = age_s is not None and age_s <= stale_after_s
        return _json({"ok": healthy, "heartbeat_age_s": age_s, "stale_after_s": stale_after_s,
                      "stuck": self.service.progress.stuck(time.monotonic())},
                     200 if healthy else 503)

    async def readyz(self, request: web.Request) -> web.Response:
        problems = await self._problems()
        return _json({"ok": not problems, "not_ready": problems}, 503 if problems else 200)

    async def _problems(self) -> dict[str, str]:
        health = await self._read(lambda ledger: ledger.vendor_health())
        vendors = [runner.config for runner in self.service.runners.values()]
        return vendor_problems(vendors, health, self.service.clock())

    async def metrics_text(self, request: web.Request) -> web.Response:
        body = await self._read(lambda _: self.metrics.render())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    # ------------------------------------------------------------------ pages

    async def status_page(self, request: web.Request) -> web.Response:
        specs = self.service.specs
        now, settings = self.service.clock(), self.service.config.report
        snapshot = await self.pages.call(lambda ledger: _status_snapshot(ledger, specs, now,
                                                                    settings))
        problems = vendor_problems([r.config for r in self.service.runners.values()],
                                   snapshot["health"], self.service.clock())
        return _html(render_status(snapshot, problems, self.service.clock()))

    async def order_page(self, request: web.Request) -> web.Response:
        instance, vendor_id = request.match_info["instance"], request.match_info["vendor_id"]
        found = await self.pages.call(lambda ledger: _order_snapshot(ledger, instance,
                                                                     vendor_id))
        if found is None:
            return _html(_page("Not found", f"<p>No order {escape(instance)}:"
                               f"{escape(vendor_id)} in the ledger.</p>"), 404)
        return _html(render_order(*found))

    # ------------------------------------------------------------------ actions

    async def post_action(self, request: web.Request) -> web.Response:
        if self.token is None:
            return _error(403, "POST /actions is disabled: no token configured ([server]"
                          " token_env or token_file)")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(_raw(given.strip()),
                                                                 self.token):
            return _error(401, "a valid bearer token is required (Authorization: Bearer"
                          " TOKEN)", headers={"WWW-Authenticate": "Bearer"})
        try:
            body = orjson.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body over {MAX_BODY_BYTES} bytes")
        except orjson.JSONDecodeError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        try:
            queued = await asyncio.to_thread(asyncio.run, self._enqueue(body))
        except (ActionRefused, ConfigError) as exc:
            return _error(400, _one_line(exc))
        except (LedgerBusy, LedgerLocked, LedgerUnusable) as exc:
            return _error(503, _one_line(exc))
        except VendorError as exc:   # an adapter asked its vendor while checking the action
            return _error(502, _one_line(exc))
        created = any(new for _, new in queued)
        actions = [{**action_json(action), "queued": new} for action, new in queued]
        log.info("actions_queued_over_http", actions=[a["id"] for a in actions], new=created)
        return _json(actions[0] if len(actions) == 1 and "steps" not in body else actions,
                     201 if created else 200)

    async def _enqueue(self, body: Any) -> list[tuple[Action, bool]]:
        """Check a request as the CLI checks a command, then queue it (on a worker thread)."""
        if not isinstance(body, dict):
            raise ActionRefused('expected a JSON object {"vendor", "kind", "order", "params",'
                                ' "key"}')
        unknown = sorted(set(body) - {"vendor", "kind", "order", "params", "key", "steps"})
        if unknown:
            raise ActionRefused(f"unknown field {unknown[0]!r}")
        instance, order, key = body.get("vendor"), body.get("order"), body.get("key")
        config = self.service.config
        for name, value in (("vendor", instance), ("order", order), ("key", key)):
            if value is not None and not isinstance(value, str):
                raise ActionRefused(f"{name}: expected a string")
        if not instance:
            raise ActionRefused("vendor: required (a configured vendor instance)")
        vendor = config.vendor(instance)
        spec = adapter_spec(vendor.adapter)
        if "steps" in body:
            if "kind" in body or "params" in body:
                raise ActionRefused("give either kind and params or steps, not both")
            steps = _steps(body["steps"])
            for number, (step, values) in enumerate(steps, 1):
                _refuse_local_paths(spec.action(step), values, f"step {number} ({step}): ")
            return await enqueue_chain(config, instance, order, steps, key=key)
        kind, params = body.get("kind"), body.get("params")
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise ActionRefused("params: expected an object")
        declared = spec.action(kind) if isinstance(kind, str) else None
        if declared is None:
            raise ActionRefused(f"kind: {instance} ({vendor.adapter}) has no action {kind!r};"
                                " it has " + ", ".join(a.kind for a in spec.actions))
        _refuse_local_paths(declared, params, "params.")
        if declared.creates and order is not None:
            raise ActionRefused(f"order: {kind} creates an order; give none")
        try:
            queued_kind, prepared = declared.queue_as(validate(declared, params))
        except ParameterError as exc:
            raise ActionRefused(f"params.{exc.param}: {exc.detail}") from None
        return await enqueue_requests(config, [(instance, order, queued_kind, prepared)],
                                      key=key)


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(HEADERS)


def _refuse_local_paths(declared: ActionSpec | None, params: dict, where: str) -> None:
    """A path parameter names a file on the daemon's host, which the adapter reads and sends
    to the vendor: over HTTP that would hand any file the daemon can read to the caller."""
    for param in declared.params if declared else ():
        if param.type is ParamType.PATH and params.get(param.name) is not None:
            raise ActionRefused(f"{where}{param.name}: a local file cannot be given over HTTP"
                                " (use the command line on the daemon's host)")


def _steps(steps: Any) -> list[tuple[str, dict]]:
    if not (isinstance(steps, list) and steps and all(
            isinstance(s, dict) and isinstance(s.get("kind"), str)
            and isinstance(s.get("params", {}), dict) for s in steps)):
        raise ActionRefused('steps: expected [{"kind": KIND, "params": {...}}, ...]')
    return [(s["kind"], s.get("params", {})) for s in steps]


def _raw(header: str) -> bytes:
    """A header's bytes as sent: aiohttp keeps bytes that are not UTF-8 as surrogates."""
    return header.encode("utf-8", "surrogateescape")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _json(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
    return _json({"error": message}, status, headers)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


@asynccontextmanager
async def status_server(service: Service, settings: ServerConfig,
                        metrics: Metrics) -> AsyncIterator[asyncio.Server]:
    """Serve while the block runs, on the listener it yields. An address that cannot be
    bound is a ConfigError."""
    reads = AsyncLedger(await asyncio.to_thread(open_ledger, service.config.ledger_url))
    pages = AsyncLedger(await asyncio.to_thread(open_ledger, service.config.ledger_url))
    metrics.watch_ledger(reads.ledger, service.runners)
    runner = web.AppRunner(StatusServer(service, settings, metrics, reads, pages).app(),
                           access_log=None, shutdown_timeout=SHUTDOWN_S,
                           keepalive_timeout=IDLE_S)
    listener = None
    try:
        await runner.setup()
        assert runner.server is not None   # set up
        try:
            listener = await asyncio.get_running_loop().create_server(
                _capped(runner.server, settings.max_connections), settings.host, settings.port)
        except OSError as exc:
            raise ConfigError(f"{service.config.source}: server.listen {settings.listen}:"
                              f" cannot listen there: {exc.strerror or exc}") from None
        if not settings.loopback:
            log.warning("server_beyond_loopback", listen=settings.listen,
                        note="the status server is reachable from other hosts, as configured")
        log.info("server_listening", listen=settings.listen,
                 actions="enabled" if "token" in settings.secrets else "disabled (no token)")
        yield listener
    finally:
        if listener is not None:
            listener.close()   # what TCPSite.stop does; then the runner closes connections
        await runner.cleanup()
        await reads.close()
        await pages.close()


def _capped(server: web.Server, cap: int) -> Callable[[], asyncio.Protocol]:
    """aiohttp's protocol factory, while fewer than ``cap`` connections are open: aiohttp
    accepts every connection, and each holds a file descriptor the daemon needs (aiohttp
    has no limit of its own: it leaves that to the application, aio-libs/aiohttp#675). asyncio
    makes the protocols of a batch of accepted connections before any is connected (and
    counted in ``server.connections``): those are counted as starting, for a moment."""
    starting: dict[asyncio.Protocol, float] = {}
    full = False

    def protocol() -> asyncio.Protocol:
        nonlocal full
        now, open_ = time.monotonic(), set(server.connections)
        for handler, since in list(starting.items()):
            if handler in open_ or now - since > STARTING_S:
                del starting[handler]
        if len(open_) + len(starting) < cap:
            full = False
            handler = server()
            starting[handler] = now
            return handler
        if not full:   # logged when it fills, not for every connection refused
            log.warning("server_connections_full", max_connections=cap)
            full = True
        return _Refused()

    return protocol


class _Refused(asyncio.Protocol):
    """A connection over the cap: answered 503 and closed at once, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REFUSED)
        transport.close()


# ---------------------------------------------------------------------- the pages


def _status_snapshot(ledger: LedgerAPI, specs: dict[str, AdapterSpec], now: float,
                     settings: ReportSettings) -> dict:
    """Everything the status page shows, read in one go on the ledger's thread; the
    exceptions as the morning report finds them now (detection refreshes them: a short
    write, skipped when the daemon holds the ledger past the busy timeout)."""
    try:
        report = build_report(ledger, specs, now, settings)
    except (LedgerLocked, sqlite3.OperationalError):
        report = build_report(ledger, specs, now, settings, refresh_first=False)
    outbox = ledger.outbox
    instances = list(specs)
    return {
        "report": report,
        "health": ledger.vendor_health(),
        "counts": {name: outbox.counts(name) for name in instances},
        "orders": {(c.instance, c.state.value): c.orders for c in ledger.summary()},
        "uncertain": outbox.list(state=ActionState.UNCERTAIN.value, limit=QUEUE_ROWS),
        "pending": outbox.list(state=ActionState.PENDING.value, limit=QUEUE_ROWS),
        "failed": [a for state in (ActionState.DEAD, ActionState.FAILED)
                   for a in outbox.list(state=state.value, limit=QUEUE_ROWS)],
        "recent": ledger.orders(limit=QUEUE_ROWS),
    }


def _order_snapshot(ledger: LedgerAPI, instance: str, vendor_id: str):
    order = ledger.order(instance, vendor_id)
    if order is None:
        return None
    actions = [a for a in ledger.outbox.list(instance=instance) if a.vendor_id == vendor_id]
    return order, actions


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.bad{color:#b00020;font-weight:bold}
.ok{color:#17692f}.note{color:#666}"""


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"refresh\" content=\"30\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    """An HTML table; cells are HTML already (escape vendor text before)."""
    if not rows:
        return f"<p class=\"note\">{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _age(iso_text: str | None, now: float) -> str:
    if iso_text is None:
        return "never"
    return _duration(now - timestamp(iso_text)) + " ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _order_link(instance: str, vendor_id: str) -> str:
    href = f"/orders/{quote(instance, safe='')}/{quote(vendor_id, safe='')}"
    return f"<a href=\"{escape(href)}\">{escape(instance)}:{escape(vendor_id)}</a>"


def _action_rows(actions: list[Action]) -> list[list[str]]:
    return [[f"#{a.id}", escape(a.state.value), escape(a.kind), _order_link(a.instance,
             a.vendor_id), escape(a.created_at or ""), str(a.attempts),
             escape(a.last_error or "")] for a in actions]


def render_status(snapshot: dict, problems: dict[str, str], now: float) -> str:
    """The status page: vendors and freshness first, then the queue, exceptions, orders."""
    vendors = [[escape(h.instance), _age(h.last_success_at, now), _age(h.last_poll_at, now),
                str(h.consecutive_failures),
                escape(f"{h.last_error_class}: {h.last_error}" if h.last_error else ""),
                "paused" if h.paused else "",
                f"<span class=\"bad\">{escape(problems[h.instance])}</span>"
                if h.instance in problems else "<span class=\"ok\">ready</span>"]
               for h in snapshot["health"]]
    counts = [[escape(name), *(str(states.get(s.value, 0)) for s in ActionState)]
              for name, states in snapshot["counts"].items()]
    orders = [[_order_link(o.instance, o.vendor_id), escape(o.state.value),
               escape(o.vendor_state), escape(o.customer or ""), escape(o.updated_at)]
              for o in snapshot["recent"]]
    body = (
        "<h2>Vendors</h2>"
        + _table(["vendor", "last success", "last poll", "failures in a row", "last error",
                  "paused", "ready"], vendors, "No poll recorded yet.")
        + "<h2>Queue</h2>"
        + _table(["vendor", *(s.value for s in ActionState)], counts, "No vendors.")
        + "<h3>Uncertain: need a person</h3>"
        + _table(["action", "state", "kind", "order", "queued", "attempts", "last error"],
                 _action_rows(snapshot["uncertain"]), "None.")
        + "<h3>Oldest pending</h3>"
        + _table(["action", "state", "kind", "order", "queued", "attempts", "last error"],
                 _action_rows(snapshot["pending"]), "None.")
        + "<h3>Dead or failed</h3>"
        + _table(["action", "state", "kind", "order", "queued", "attempts", "last error"],
                 _action_rows(snapshot["failed"]), "None.")
        + "<h2>Exceptions</h2>" + exceptions_section(snapshot)
        + "<h2>Orders by state</h2>"
        + _table(["vendor", "state", "orders"],
                 [[escape(i), escape(s), str(n)] for (i, s), n in snapshot["orders"].items()],
                 "No orders yet.")
        + "<h2>Recently updated orders</h2>"
        + _table(["order", "state", "vendor state", "customer", "updated"], orders,
                 "No orders yet.")
    )
    return _page("ordersync status", body)


def exceptions_section(snapshot: dict) -> str:
    """The report's open exceptions (those needing a person first), and how many resolved
    lately (``ordersync report`` has the whole digest)."""
    exceptions = snapshot["report"]["exceptions"]
    rows = [[escape(e["kind"]) + (" <span class=\"bad\">needs a person</span>"
                                  if e["needs_person"] else ""),
             _order_link(e["vendor"], e["order"]) if e["order"] else escape(e["vendor"]),
             _duration(e["age_s"]), escape(e["reason"]), escape(e["first_seen"]),
             escape(e["status"])]
            for e in exceptions if e["resolved"] is None]
    resolved = len(exceptions) - len(rows)
    return (_table(["kind", "order", "age", "reason", "first seen", "status"], rows,
                   "No open exceptions.")
            + (f"<p class=\"note\">{resolved} resolved since {escape(snapshot['report']['since'])}"
               " (<code>ordersync report</code> lists them).</p>" if resolved else ""))


def render_order(order, actions: list[Action]) -> str:
    facts = [["state", escape(order.state.value)], ["vendor state", escape(order.vendor_state)],
             ["reference", escape(order.reference or "")],
             ["customer", escape(order.customer or "")], ["comment", escape(order.comment or "")],
             ["created", escape(order.created or "")], ["expires", escape(order.expires or "")],
             ["first seen", escape(order.first_seen)], ["updated", escape(order.updated_at)],
             ["problem", escape(order.problem or "")]]
    events = [[escape(e.at), escape(e.source), escape(e.kind),
               escape(f"{e.from_state or ''} -> {e.to_state or ''}"), escape(e.detail or "")]
              for e in order.events]
    body = (
        "<p><a href=\"/\">status</a></p>"
        + _table(["", ""], facts, "")
        + "<h2>Actions</h2>"
        + _table(["action", "state", "kind", "order", "queued", "attempts", "last error"],
                 _action_rows(actions), "No actions on this order.")
        + "<h2>Events</h2>"
        + _table(["at", "source", "kind", "state", "detail"], events, "No events.")
    )
    return _page(f"Order {order.instance}:{order.vendor_id}", body)
