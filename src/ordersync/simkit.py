"""The vendor-agnostic half of every vendor simulator.

A vendor simulator (``ordersync_adapters.<vendor>.simulator``) subclasses :class:`SimulatorBase`,
which provides what all of them share:

* every request recorded in ``.requests`` (:class:`RequestRecord`; status 0 = dropped) and
  every applied state change in ``.effects`` (:class:`Effect`, appended by the vendor code
  through ``_effect``);
* fault injection (:class:`FaultPlan`, from :mod:`ordersync.simfaults`: ``status``,
  ``delay`` (the request is handled, and a write applied, only after the delay, even if the
  client has gone), ``drop``,
  ``malformed``, ``mislabelled`` (the real answer labelled text/html), and on writes
  ``apply_then_drop``, ``apply_then_cut`` (the answer stops half-way, its length promised
  in full) and ``apply_then_error`` (a 5xx page, 502 unless a rule says otherwise, after
  the change was made); explicit rules or seeded random ones in :func:`parse_faults`
  syntax),
  a sliding-window rate limit answering 429, and a count of clients that come back before
  the ``Retry-After`` they were given (``.early_retries``);
* ``echo_credentials``: a careless vendor that repeats the request's credentials (every
  header value, each credential without its scheme, and the body) in each error answer;
* :meth:`SimulatorBase.plant`: any bytes served in place of one order (an order the mapping
  cannot read, one beyond a limit, bytes that are not UTF-8), until planted back to None;
* ``start()``/``stop()`` on loopback, :meth:`SimulatorBase.serve`, and
  :meth:`SimulatorBase.max_requests_in_window`;
* :class:`SeededOrders`: the order store a simulator writes, each order generated from
  (seed, id) when first read, kept as bytes until it changes.

The vendor supplies small hooks: ``_routes(app)`` (its endpoints), ``_authorize(request)``
(raise :class:`HttpError` to refuse), ``_error_response(err)`` (its own error body),
``_fault_body(status)`` (the body of an injected error status), ``_rate_fault(at)`` (for a
vendor whose rate limit is not a 429 with Retry-After) and a few class attributes
(``MUTATING``, ``GUARDED_PREFIXES``, ``REDACT_HEADERS``, ``MALFORMED_FALLBACK``,
``PYTHON_PARSER``).

Only the standard library, aiohttp and orjson are used; this module imports no adapter (the
core never imports a vendor) and nothing from ordersync but ``simfaults``.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import math
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar, cast

import orjson
from aiohttp import web
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.web_protocol import RequestPayloadError

from .simfaults import APPLY_THEN, FAULT_KINDS, WRITE_METHODS, FaultPlan, _Fault, parse_faults

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RequestRecord:
    """One request as the server saw it; ``status`` 0 means the connection was dropped."""
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 0
    fault: str | None = None     # the fault injected into its answer (a status fault: "503")


@dataclass
class Effect:
    """One applied state change (a vendor-specific verb) with the body it carried."""
    verb: str
    order_id: str
    at: float
    body: Any


class HttpError(Exception):
    """Raised by handlers; the simulator's ``_error_response`` hook turns it into an answer.

    ``message`` None asks for an empty body where the vendor has one; ``payload`` is free for
    the vendor (e.g. which kind of "empty item" an error body should be).
    """

    def __init__(self, status: int, message: str | None = None, headers: dict | None = None,
                 payload: Any = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.payload = payload


# --------------------------------------------------------------------------- the base class

class SeededOrders:
    """The order store every simulator writes: each order generated from (seed, id) when first
    needed by ``generate(oid)``; read-only orders are kept as bytes only (cheap for the garbage
    collector), changed ones also as a live dict (``order``), whose bytes ``changed`` drops.
    """

    def __init__(self, generate: Callable[[int], dict]) -> None:
        self.generate = generate
        self.live: dict[int, dict] = {}
        self.bytes: dict[int, bytes] = {}

    def order(self, oid: int) -> dict:
        """The live, changeable representation of an order (kept live from now on)."""
        order = self.live.get(oid)
        if order is None:
            cached = self.bytes.get(oid)
            order = orjson.loads(cached) if cached is not None else self.generate(oid)
            self.live[oid] = order
        return order

    def serialized(self, oid: int) -> bytes:
        """The order's JSON, serialised once until it changes."""
        data = self.bytes.get(oid)
        if data is None:
            order = self.live.get(oid) or self.generate(oid)
            data = self.bytes[oid] = orjson.dumps(order)
        return data

    def changed(self, oid: int) -> None:
        """The live order changed: serialise it again when next asked."""
        self.bytes.pop(oid, None)


class SimulatorBase:
    """An aiohttp server with request recording, faults, a rate limit and early-retry counts.

    Subclasses call ``super().__init__(clock=...)`` first, then build their state, then
    ``self.app = self._build_app()`` (which calls the ``_routes`` hook).
    """

    #: methods ``apply_then_*`` fire on (a rule or random draw on others does nothing)
    MUTATING: ClassVar[frozenset[str]] = WRITE_METHODS
    #: the aiohttp application, set by each subclass (``self.app = self._build_app()``)
    app: web.Application
    #: path prefixes faults leave alone unless an explicit rule's prefix names them
    GUARDED_PREFIXES: ClassVar[tuple[str, ...]] = ()
    #: lower-case header name -> the value recorded in ``.requests`` instead of the real one
    REDACT_HEADERS: ClassVar[dict[str, str]] = {}
    #: (body, content type) a ``malformed`` fault truncates when the real answer is empty
    MALFORMED_FALLBACK: ClassVar[tuple[bytes, str]] = (b'{"message": "ok"}', "application/json")
    #: use aiohttp's pure-Python request parser (needed to accept custom HTTP verbs)
    PYTHON_PARSER: ClassVar[bool] = False

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 rate_limit: tuple[int, float] | None = None,
                 early_retry_grace_s: float = 0.0) -> None:
        self._clock = clock
        self.requests: list[RequestRecord] = []
        self.effects: list[Effect] = []
        self.faults = FaultPlan(mutating=self.MUTATING, guarded=self.GUARDED_PREFIXES)
        self.early_retries = 0
        self.not_before = -math.inf          # what our latest Retry-After asked clients to wait for
        self.rate_limit = rate_limit         # (requests, per seconds), then 429
        self.rate_limited = 0                # requests answered 429 by that limit
        self._accepted: collections.deque[float] = collections.deque()
        self.early_retry_grace_s = early_retry_grace_s  # requests this soon after are in flight
        self._retry_answered_at = -math.inf
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self.echo_credentials = False        # error answers repeat what the client sent
        self.planted: dict[int, bytes] = {}  # order id -> the bytes served in its place

    def plant(self, order_id: str | int, body: bytes | None) -> None:
        """Serve ``body`` (any bytes) as the order, in lists and alone; None serves it again.

        The order itself is untouched: planting None is the vendor fixing it.
        """
        if body is None:
            self.planted.pop(int(order_id), None)
        else:
            self.planted[int(order_id)] = body

    # ------------------------------------------------------------------ hooks
    def _routes(self, app: web.Application) -> None:
        """Add the vendor's endpoints to ``app``."""
        raise NotImplementedError

    def _authorize(self, request: web.Request) -> None:
        """Raise :class:`HttpError` (usually 401) when the request may not pass."""

    def _error_response(self, err: HttpError) -> web.Response:
        """The vendor's answer to a refused request; default ``{"message"}`` or empty."""
        body = b"" if err.message is None else orjson.dumps({"message": err.message})
        return web.Response(status=err.status, body=body, headers=err.headers,
                            content_type="application/json" if body else None)

    def _fault_body(self, status: int) -> bytes:
        """The JSON body of an injected error status (and of a 429 from the rate limit)."""
        return orjson.dumps({"message": f"Simulated fault: HTTP {status}"})

    # ------------------------------------------------------------------ shared helpers
    def _effect(self, verb: str, order_id: Any, body: Any) -> None:
        self.effects.append(Effect(verb, str(order_id), self._clock(), body))

    @staticmethod
    def _json(body: bytes, content_type: str = "application/json", status: int = 200):
        return web.Response(status=status, body=body, content_type=content_type)

    def max_requests_in_window(self, window_s: float = 1.0) -> int:
        """The most requests (token requests included) that arrived within any ``window_s``."""
        times, best, start = sorted(r.at for r in self.requests), 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= window_s:
                start += 1
            best = max(best, end - start + 1)
        return best

    # ------------------------------------------------------------------ HTTP plumbing
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._front_door])
        self._routes(app)
        return app

    @web.middleware
    async def _front_door(self, request: web.Request, handler: Handler):
        """Record the request, inject its fault if any, and answer it."""
        at = self._clock()
        headers = {k.lower(): v for k, v in request.headers.items()}
        for name, shown in self.REDACT_HEADERS.items():
            if name in headers:
                headers[name] = shown
        record = RequestRecord(request.method, request.path, request.query_string, headers,
                               await request.read(), at)
        self.requests.append(record)
        if self._retry_answered_at + self.early_retry_grace_s <= at < self.not_before:
            self.early_retries += 1
        if self._over_rate_limit(at):
            rate_fault = self._rate_fault(at)
            record.status = rate_fault.status
            return self._fault_answer(rate_fault)
        fault = self.faults.take(request.method, request.path_qs)
        kind = fault.kind if fault is not None else None
        if fault is not None:
            record.fault = str(fault.status) if kind == "status" else kind
        if kind == "delay":
            assert fault is not None  # kind is None exactly when fault is
            await asyncio.sleep(fault.delay_s)
        if kind == "drop":
            return self._drop(request)
        if kind == "status":
            assert fault is not None
            response = self._fault_answer(fault)
        else:
            try:
                # the simulators' handlers all answer with a whole web.Response
                response = cast(web.Response, await self._answer(request, handler))
            except web.HTTPException as err:      # aiohttp's own 404 and 405
                record.status = err.status
                raise
            if kind == "apply_then_drop":
                return self._drop(request)
            if kind == "apply_then_cut":
                return await self._cut(request, response)
            if kind == "apply_then_error":
                assert fault is not None
                response = web.Response(status=fault.status, content_type="text/html",
                                        text=f"<html><body><h1>{fault.status}</h1>"
                                        "The proxy had a problem.</body></html>")
            if kind == "malformed":
                response = self._malformed(response)
            if kind == "mislabelled":
                response = web.Response(status=response.status, body=response.body,
                                        content_type="text/html")
        if self.echo_credentials and response.status >= 400:
            response = self._echo(request, record.body, response)
        record.status = response.status
        return response

    @staticmethod
    def _echo(request: web.Request, body: bytes, response: web.Response) -> web.Response:
        """The error answer of a vendor that repeats the credentials it was sent."""
        values = list(request.headers.values())
        values += [v.partition(" ")[2] for v in values if " " in v]  # "Bearer X" -> "X"
        text = f"refused; you sent: {' | '.join(values)} | {body.decode(errors='replace')}"
        return web.Response(status=response.status, headers={
            k: v for k, v in response.headers.items() if k == "Retry-After"},
            body=orjson.dumps({"message": text, "errorMessage": text, "Message": text}),
            content_type="application/json")

    def _over_rate_limit(self, at: float) -> bool:
        """A sliding-window limiter like a real gateway's: too many accepted requests -> 429."""
        if self.rate_limit is None:
            return False
        limit, window_s = self.rate_limit
        while self._accepted and at - self._accepted[0] >= window_s:
            self._accepted.popleft()
        if len(self._accepted) >= limit:
            self.rate_limited += 1
            return True
        self._accepted.append(at)
        return False

    def _rate_fault(self, at: float) -> _Fault:
        assert self.rate_limit is not None  # only called when over that limit
        wait_s = max(0.001, self.rate_limit[1] - (at - self._accepted[0]))
        return _Fault("status", status=429, retry_after=str(math.ceil(wait_s)))

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Check authorization, run the handler and turn :class:`HttpError` into an answer."""
        try:
            self._authorize(request)
            return await handler(request)
        except HttpError as err:
            return self._error_response(err)

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without answering; the Response returned is never sent."""
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)

    async def _cut(self, request: web.Request, response: web.Response) -> web.StreamResponse:
        """The answer's status and headers, its full length promised, then half of its body
        (or of a fallback body) and the connection closed."""
        fallback_body, fallback_type = self.MALFORMED_FALLBACK
        body = response.body if isinstance(response.body, bytes) and response.body else \
            fallback_body
        cut = web.StreamResponse(status=response.status if response.body else 200)
        cut.content_type = response.content_type if response.body else fallback_type
        cut.content_length = len(body)
        await cut.prepare(request)
        await cut.write(body[:max(1, len(body) // 2)])
        if request.transport is not None:
            request.transport.close()
        return cut

    def _malformed(self, response: web.Response) -> web.Response:
        """200 with the usual content type but only the first half of the JSON body."""
        body = response.body if isinstance(response.body, bytes) else b""
        fallback_body, fallback_type = self.MALFORMED_FALLBACK
        content_type = response.content_type if body else fallback_type
        body = body or fallback_body
        return web.Response(body=body[:max(1, len(body) // 2)], content_type=content_type)

    def _fault_answer(self, fault: _Fault) -> web.Response:
        """The fault's status with ``Retry-After``; remembers when clients may come back."""
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
            now = until = self._clock()
            try:
                until = now + float(fault.retry_after)
            except ValueError:
                try:
                    until = email.utils.parsedate_to_datetime(fault.retry_after).timestamp()
                except (TypeError, ValueError):
                    pass
            self.not_before = max(self.not_before, until)
            self._retry_answered_at = now
        return web.Response(status=fault.status, headers=headers,
                            body=self._fault_body(fault.status), content_type="application/json")

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = any free port); returns ``http://host:port``."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        loop, server = asyncio.get_running_loop(), self._runner.server
        assert server is not None
        if self.PYTHON_PARSER:
            def factory() -> Any:
                return with_python_parser(server(), loop)
        else:
            factory = server
        self._server = await loop.create_server(factory, host, port)
        return f"http://{host}:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @classmethod
    async def serve(cls, host: str, port: int, **kwargs: Any) -> None:
        """Run a simulator ``cls(**kwargs)`` on ``host:port`` until cancelled."""
        simulator = cls(**kwargs)
        await simulator.start(host, port)
        try:
            await asyncio.Event().wait()
        finally:
            await simulator.stop()


def with_python_parser(handler: Any, loop: asyncio.AbstractEventLoop) -> Any:
    """Give a connection aiohttp's pure-Python request parser.

    aiohttp's C parser (llhttp) knows only registered HTTP methods and answers 400
    "Invalid method encountered" to custom verbs (SUBMIT, APPROVE, ...); the Python parser
    accepts any RFC 9110 method token.
    """
    handler._parser = HttpRequestParserPy(
        handler, loop, 2**16, max_line_size=handler.max_line_size,
        max_field_size=handler.max_field_size, max_headers=handler.max_headers,
        payload_exception=RequestPayloadError, auto_decompress=True,
        max_msg_queue_size=getattr(handler, "_max_msg_queue_size", 0))
    return handler


__all__ = ["APPLY_THEN", "FAULT_KINDS", "WRITE_METHODS", "Effect", "FaultPlan", "HttpError",
           "RequestRecord", "SimulatorBase", "parse_faults", "with_python_parser"]
