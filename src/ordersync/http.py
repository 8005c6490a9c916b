"""The one way ordersync talks HTTP to a vendor: throttled, retried, classified.

One :class:`VendorHttp` per vendor instance owns an aiohttp session, a rate-limit window
(:mod:`ordersync.throttle`) that every attempt passes through (token requests and retries
included), and
a tenacity retry loop for transient failures. Status codes and exceptions are turned into
the error tree of :mod:`ordersync.errors` by :mod:`ordersync.http_answers` (pure functions).

Boundaries:

* **Credentials stay at the vendor's origin.** Every path and every link a vendor names
  (paging links, descriptor entries, order hrefs) is resolved by :meth:`VendorHttp.url`,
  which refuses (:class:`~ordersync.errors.LinkRefused`) anything on another scheme, host or
  port, or whose path leaves the base URL's path. Redirects are never followed. An id put
  into a path goes through :func:`path_segment`.
* **One retry loop per call.** :meth:`VendorHttp.request` is the only loop: a token request
  an authenticator needs is one more request of the same attempt (a 401 renews the token
  once), the whole call ends by ``call_deadline_s`` (each attempt's timeout is cut to what
  is left), and a vendor nobody answers for is given up after ``CONNECT_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urljoin

import aiohttp
import orjson
import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base
from yarl import URL

from . import __version__
from .backoff import backoff_s
from .clock import iso
from .constants import CONNECT_ATTEMPTS, THROTTLE_MARGIN
from .errors import (
    AmbiguousError,
    AuthError,
    CannotConnect,
    LinkRefused,
    NetworkError,
    RateLimited,
    TransientError,
    VendorError,
    one_line,
)
from .http_answers import Classifier, Response, error_for
from .throttle import AnswerDatedWindow

log = structlog.get_logger("ordersync.http")

request_log: ContextVar[list[dict] | None] = ContextVar("ordersync_request_log", default=None)
"""When set to a list, every request sent in this context is appended to it (method and
path, status, latency, error): the outbox records each HTTP attempt of an action this way."""

_call_deadline: ContextVar[tuple[float, float] | None] = ContextVar("ordersync_call_deadline",
                                                                   default=None)
"""(monotonic deadline, its length in seconds) of the call in progress in this context."""

answered_writes: ContextVar[list[str] | None] = ContextVar("ordersync_answered_writes",
                                                          default=None)
"""When set to a list, every write in this context whose answer was read in full and as
expected is appended to it ("METHOD url"): the outbox knows from it that a write took effect
even when a later request of the same action fails."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
USER_AGENT = f"ordersync/{__version__}"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` requests in any window of ``per_s`` seconds."""

    requests: int = 5
    per_s: float = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long transient failures are retried: exponential backoff with jitter, at most
    ``max_attempts`` attempts and never past ``call_deadline_s`` from the call's start."""

    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    call_deadline_s: float = 60.0


class Authenticator(Protocol):
    """Supplies auth headers for a vendor and forgets them when the vendor says 401.

    ``headers`` runs inside an attempt of :meth:`VendorHttp.request`: a request it needs
    (a token) goes through ``http.send_once``, never ``http.request``, so that it is one
    more request of that attempt and no retry loop runs inside another.
    """

    renews: bool
    """Whether a 401 is worth one more try with fresh credentials (False: static keys)."""

    async def headers(self, http: VendorHttp) -> Mapping[str, str]: ...

    def invalidate(self) -> None: ...


def path_segment(value: object) -> str:
    """An id as one path segment: percent-encoded, so no id can change the path around it.

    ``../../x`` becomes ``..%2F..%2Fx`` and ``%2e%2e`` becomes ``%252e%252e``; an id that
    is empty, ``.`` or ``..`` cannot be a segment at all and is refused.
    """
    text = str(value)
    if text in ("", ".", ".."):
        raise LinkRefused(f"{text!r} cannot be an id in a URL path")
    return quote(text, safe="")


@dataclass(frozen=True, slots=True)
class HttpBehaviour:
    """What an adapter declares about its vendor's HTTP; the core applies it when it builds
    the vendor's :class:`VendorHttp` (no adapter changes the core's objects afterwards)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    """Sent with every request, token requests included (e.g. an API version)."""
    status_errors: Mapping[int, type[VendorError]] = field(default_factory=dict)
    """The vendor's own meaning of a status code (Pwinty's 403 is a refusal)."""
    classify: Classifier | None = None
    """Consulted for every error answer before the status table."""
    auth: Callable[[Mapping[str, Any], Mapping[str, str], Callable[[], float]],
                   Authenticator] | None = None
    """``auth(settings, secrets, clock)``: the vendor's authenticator, or None for none."""


class _wait_backoff_or_retry_after(wait_base):
    """Exponential backoff with jitter, but never sooner than the vendor's Retry-After."""

    def __init__(self, policy: RetryPolicy, jitter: Callable[[], float]) -> None:
        self.policy = policy
        self.jitter = jitter

    def __call__(self, retry_state) -> float:
        exc = retry_state.outcome.exception()
        return backoff_s(retry_state.attempt_number, self.policy.backoff_base_s,
                         self.policy.backoff_max_s, jitter=self.jitter(),
                         retry_after_s=getattr(exc, "retry_after_s", None))


class _stop_if_failed_with(stop_base):
    """Stop when the last attempt failed with one of these exception classes."""

    def __init__(self, *kinds: type[BaseException]) -> None:
        self.kinds = kinds

    def __call__(self, retry_state) -> bool:
        return isinstance(retry_state.outcome.exception(), self.kinds)


class _stop_when_retry_after_too_long(stop_base):
    """Give up at once when the vendor asks for a longer pause than backoff ever waits."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.limit_s = policy.backoff_max_s

    def __call__(self, retry_state) -> bool:
        exc = retry_state.outcome.exception()
        retry_after = getattr(exc, "retry_after_s", None)
        return retry_after is not None and retry_after > self.limit_s


class HttpObserver(Protocol):
    """Told what the HTTP layer did (the status server's metrics); knows no metrics library."""

    def request_done(self, vendor: str, method: str, duration_s: float,
                     error_class: str | None) -> None:
        """One attempt ended: answered (``error_class`` None) or failed with that error."""

    def retrying(self, vendor: str, *, rate_limited: bool) -> None:
        """A call waits before its next attempt (``rate_limited``: the vendor asked it to)."""


class VendorHttp:
    """A vendor instance's HTTP client: base URL, session, throttle, retries, auth."""

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        rate_limit: RateLimit = RateLimit(),
        retry: RetryPolicy = RetryPolicy(),
        timeout_s: float = 30.0,
        auth: Authenticator | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        default_headers: Mapping[str, str] | None = None,
        behaviour: HttpBehaviour = HttpBehaviour(),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.vendor = vendor
        self._base = URL(base_url.rstrip("/") + "/")
        self.base_url = str(self._base)  # as requests will name it (host lower case, IDNA)
        self.rate_limit = rate_limit
        self.retry = retry
        self.timeout_s = timeout_s
        self.auth = auth
        self.sleep = sleep
        self.clock = clock
        self.default_headers = {"User-Agent": USER_AGENT, **behaviour.headers,
                                **(default_headers or {})}
        self.window = AnswerDatedWindow(rate_limit.requests, rate_limit.per_s * THROTTLE_MARGIN)
        self.stats: Counter[str] = Counter()
        self.behaviour = behaviour
        self.jitter = jitter
        """Draws each backoff's jitter in [0, 1) (a test passes a constant)."""
        self._session: aiohttp.ClientSession | None = None
        self.observe: HttpObserver | None = None
        """Told of every attempt and retry (set by the daemon when it keeps metrics)."""

    def url(self, path_or_url: str, method: str = "") -> str:
        """The absolute URL of a path or of a link the vendor gave, which must stay with it.

        Relative links resolve against the base URL. Every request may carry credentials, so
        a link to another scheme, host or port, with user info, or whose path (percent-decoded,
        dot segments resolved, as aiohttp will send it) leaves the base URL's path, is refused
        with :class:`LinkRefused` before anything is sent.
        """
        base = self._base
        where: dict[str, Any] = dict(vendor=self.vendor, method=method, url=one_line(path_or_url))
        try:
            url = URL(urljoin(self.base_url, path_or_url))
        except ValueError as exc:
            raise LinkRefused(f"not a usable URL ({exc})", **where) from None
        if (url.scheme, url.host, url.port, url.user, url.password) != (
                base.scheme, base.host, base.port, None, None):
            raise LinkRefused(f"not on the configured origin {base.origin()}: refused, not"
                              " followed (credentials go nowhere else)", **where)
        if not url.raw_path.startswith(base.raw_path):
            raise LinkRefused(f"leaves the API path {base.raw_path} of {base.origin()}:"
                              " refused, not followed", **where)
        return str(url)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers=self.default_headers,
                connector=aiohttp.TCPConnector(limit=16),
            )
            # aiohttp sends a PUT or DELETE again, once, when the connection drops before
            # the answer (RFC 9112 9.3.1), outside the throttle and the attempt log: a write
            # must reach the vendor exactly as often as the outbox says. (aiohttp's own
            # test client switches it off the same way; test_http checks it still works.)
            self._session._retry_connection = False
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> VendorHttp:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        authenticated: bool = True,
        safe: bool | None = None,
        read: Callable[[Response], Any] | None = None,
    ) -> Any:
        """Send a request; retry transient failures; raise the error tree for the rest.

        ``safe`` says whether repeating the request can do harm; it defaults to the method's
        HTTP safety. ``read`` turns the response into the result inside the retry loop: a
        body that cannot be read is read again for a safe request.

        An unsafe request (a write) must pass ``read``, and its answer is only ever seen
        through it: anything but a clean, fully read, expected answer (a dropped connection,
        a timeout, a 5xx, a cut or garbled body, the wrong content type) raises
        :class:`AmbiguousError` for the outbox to verify, and the write is never sent again
        here. A write answered as expected is noted in :data:`answered_writes`.
        """
        safe = method.upper() in SAFE_METHODS if safe is None else safe
        if not safe and read is None:
            raise TypeError("a write must say how its answer is read (read=)")
        url = self.url(path_or_url, method)  # a link off the vendor's origin goes nowhere
        deadline_s = self.retry.call_deadline_s
        token = _call_deadline.set((time.monotonic() + deadline_s, deadline_s))
        retrying = self._retrying()
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._send_with_auth(
                        method, url, headers=headers, data=data, json=json,
                        params=params, authenticated=authenticated, safe=safe,
                    )
                    if read is None:
                        return response
                    if safe:
                        return read(response)  # a BadResponse reads again
                    try:
                        result = read(response)
                    except (VendorError, ValueError, TypeError, KeyError) as exc:
                        message = getattr(exc, "message", None) or str(exc)
                        raise AmbiguousError(f"{message}; the request may have taken effect",
                                             vendor=self.vendor, method=method,
                                             url=response.url, status=response.status) from None
                    writes = answered_writes.get()
                    if writes is not None:
                        writes.append(f"{method} {response.url}")
                    return result
        except TransientError as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            if attempts > 1:
                exc.message = f"{exc.message} (gave up after {attempts} attempts)"
            raise
        finally:
            _call_deadline.reset(token)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_json(self, path_or_url: str, *, accept: str, params=None) -> Any:
        """GET and parse JSON; a malformed body is retried like any transient failure."""
        return await self.request("GET", path_or_url, headers={"Accept": accept},
                                  params=params, read=Response.json)

    def _retrying(self) -> AsyncRetrying:
        """Transient failures again, with backoff and jitter, never sooner than Retry-After."""
        return AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=(
                stop_after_attempt(self.retry.max_attempts)
                | stop_before_delay(self.retry.call_deadline_s)
                | (stop_after_attempt(CONNECT_ATTEMPTS) & _stop_if_failed_with(CannotConnect))
                | _stop_when_retry_after_too_long(self.retry)
            ),
            wait=_wait_backoff_or_retry_after(self.retry, self.jitter),
            sleep=self.sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )

    async def _send_with_auth(self, method, path_or_url, *, headers, authenticated, safe, **kw):
        for renewal in (False, True):
            merged = dict(headers or {})
            if authenticated and self.auth is not None:
                merged.update(await self.auth.headers(self))
            try:
                return await self.send_once(method, path_or_url, headers=merged, safe=safe, **kw)
            except AuthError as exc:
                if (exc.status != 401 or not authenticated or self.auth is None or renewal
                        or not self.auth.renews):
                    raise
                log.info("token_renewal", vendor=self.vendor, reason="401")
                self.stats["token_renewals_on_401"] += 1
                self.auth.invalidate()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send_once(
        self, method: str, path_or_url: str, *, headers, safe: bool, data=None, json=None,
        params=None,
    ) -> Response:
        """One throttled attempt, classified; no retries and no auth of its own.

        Inside :meth:`request` (an authenticator's token request included) its timeout is
        cut to what is left of the call's deadline.
        """
        url = self.url(path_or_url)
        where: dict[str, Any] = dict(vendor=self.vendor, method=method, url=url)
        timeout, timed_out = self._attempt_timeout(where)
        body_kw: dict[str, Any] = {}
        if json is not None:
            body_kw["data"] = orjson.dumps(json)
            headers = {"Content-Type": "application/json", **headers}
        elif data is not None:
            body_kw["data"] = data
        async with self.window.slot():  # held until the answer is in (or the attempt failed)
            self.stats["requests"] += 1
            started = time.perf_counter()
            status: int | None = None
            error: VendorError | None = None
            try:
                try:
                    async with self.session.request(
                        method, url, headers=headers, params=params, allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=timeout), **body_kw
                    ) as resp:
                        status = resp.status
                        body = await resp.read()
                        response = Response(resp.status, resp.headers, body, method, url)
                except aiohttp.ClientConnectorError as exc:
                    raise CannotConnect(f"cannot connect: {exc.os_error or exc}",
                                        **where) from None
                except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
                    reason = timed_out if isinstance(exc, asyncio.TimeoutError) else (
                        f"connection lost: {type(exc).__name__}: {exc}".rstrip(": ")
                    )
                    if safe:
                        raise NetworkError(reason, **where) from None
                    raise AmbiguousError(
                        f"{reason}; the request may have taken effect", **where) from None
                self.stats[f"status_{response.status}"] += 1
                refused = error_for(response, safe=safe, now=self.clock(), vendor=self.vendor,
                                    overrides=self.behaviour.status_errors,
                                    classifier=self.behaviour.classify)
                if refused is not None:
                    raise refused
                return response
            except VendorError as exc:
                error = exc
                raise
            finally:
                # one entry per request sent: an answer cut after its status line is one
                if error is not None or (status is not None and status < 400):
                    self._record(method, url, status, started,
                                 error.message if error is not None else None)
                if self.observe is not None and (error is not None or status is not None):
                    self.observe.request_done(self.vendor, method, time.perf_counter() - started,
                                              type(error).__name__ if error else None)

    def _attempt_timeout(self, where: dict) -> tuple[float, str]:
        """The request's timeout in seconds, cut to what is left of the call's deadline, and
        what to say when it passes. No time left: :class:`NetworkError`, nothing is sent."""
        timed_out = f"timed out after {self.timeout_s:g} s"
        deadline = _call_deadline.get()
        if deadline is None:
            return self.timeout_s, timed_out
        left_s, deadline_s = deadline[0] - time.monotonic(), deadline[1]
        if left_s <= 0:
            raise NetworkError(f"call_deadline_s ({deadline_s:g} s) reached before this"
                               " request; not sent", **where)
        if left_s < self.timeout_s:
            return left_s, f"timed out at the call deadline (call_deadline_s = {deadline_s:g} s)"
        return self.timeout_s, timed_out

    def _record(self, method: str, url: str, status: int | None, started: float,
                error: str | None) -> None:
        entries = request_log.get()
        if entries is not None:
            entries.append({
                "at": iso(self.clock()),
                "request": f"{method} {url.removeprefix(self.base_url.rstrip('/'))}",
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "error": error,
            })

    def _log_retry(self, retry_state) -> None:
        exc = retry_state.outcome.exception()
        self.stats["retries"] += 1
        if self.observe is not None:
            self.observe.retrying(self.vendor, rate_limited=isinstance(exc, RateLimited))
        log.info(
            "retrying",
            vendor=self.vendor,
            attempt=retry_state.attempt_number,
            wait_s=round(retry_state.upcoming_sleep, 3),
            error=str(exc),
        )
