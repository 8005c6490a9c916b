"""OAuth 2.0 bearer tokens for any vendor: one authenticator, configured by a value object.

:class:`OAuth2Token` asks ``token_path`` for a token with the configured grant
(``client_credentials``, ``password`` ...), the client id and secret either in the form or as
HTTP Basic auth, renews it ``expiry margin`` before it expires, and forgets it when the vendor
answers 401 (:class:`~ordersync.http.VendorHttp` then renews it once, in the same attempt).
Its token request goes through ``http.send_once``: one more request of the caller's attempt,
inside its retry loop and deadline, never a retry loop of its own. Every token it obtains is
registered with :mod:`ordersync.redaction`, so no vendor can make ordersync print it.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .constants import TOKEN_LIFETIME_S
from .errors import AuthError, BadResponse, Rejected
from .http import VendorHttp
from .redaction import register, register_token


@dataclass(frozen=True, slots=True)
class OAuth2Grant:
    """How a vendor hands out tokens."""

    token_path: str
    grant_type: str = "client_credentials"
    client_auth: str = "form"
    """Where the client id and secret go: ``"form"`` fields or HTTP ``"basic"`` auth."""
    hint: str = "check the client id and secret"
    """Which settings to check when the token request is refused."""
    margin_fraction: float = 0.1
    margin_max_s: float = 30.0
    """Renew early: this fraction of the token's lifetime, at most ``margin_max_s``."""

    def __post_init__(self) -> None:
        if self.client_auth not in ("form", "basic"):
            raise ValueError(f"client_auth must be 'form' or 'basic', not {self.client_auth!r}")

    def margin_s(self, lifetime_s: float) -> float:
        return min(self.margin_max_s, lifetime_s * self.margin_fraction)


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """The credentials of one token request: the client's, and any form fields of the grant
    (a password grant's ``username`` and ``password``). Never printed: no repr of values."""

    client_id: str
    client_secret: str = field(repr=False)
    fields: Mapping[str, str] = field(default_factory=dict, repr=False)


class OAuth2Token:
    """Bearer tokens of one grant, renewed before they expire and once on a 401."""

    renews = True

    def __init__(self, grant: OAuth2Grant, credentials: ClientSecret,
                 clock: Callable[[], float] = time.time) -> None:
        self.grant = grant
        self._credentials = credentials
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.issued = 0

    def invalidate(self) -> None:
        self._token = None

    async def headers(self, http: VendorHttp) -> Mapping[str, str]:
        async with self._lock:
            if self._token is None or self.clock() >= self._expires_at:
                await self._fetch(http)
        return {"Authorization": f"Bearer {self._token}"}

    def request(self) -> tuple[dict[str, str], dict[str, str]]:
        """The token request's form fields and its extra headers."""
        creds, grant = self._credentials, self.grant
        form = {"grant_type": grant.grant_type, **creds.fields}
        headers: dict[str, str] = {}
        if grant.client_auth == "basic":
            pair = f"{creds.client_id}:{creds.client_secret}".encode()
            basic = base64.b64encode(pair).decode()
            register(basic)   # a vendor may repeat the header's value without its scheme
            headers["Authorization"] = f"Basic {basic}"
        else:
            form.update(client_id=creds.client_id, client_secret=creds.client_secret)
        return form, headers

    async def _fetch(self, http: VendorHttp) -> None:
        form, headers = self.request()
        path = self.grant.token_path
        try:
            # one request of the caller's attempt, inside its retry loop and deadline
            response = await http.send_once(
                "POST", path, data=form, headers={"Accept": "application/json", **headers},
                safe=True,
            )
        except (AuthError, Rejected) as exc:
            raise AuthError(
                f"token request refused ({exc.message}): {self.grant.hint}",
                vendor=http.vendor, method="POST", url=http.url(path), status=exc.status,
            ) from None
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse("token answer has no access_token", vendor=http.vendor,
                              method="POST", url=response.url, status=response.status)
        try:
            lifetime = float(body.get("expires_in") or TOKEN_LIFETIME_S)
        except (TypeError, ValueError):
            lifetime = TOKEN_LIFETIME_S
        self._expires_at = self.clock() + lifetime - self.grant.margin_s(lifetime)
        register_token(token)  # never printed, logged or stored, even if a vendor repeats it
        self._token = token
        self.issued += 1
