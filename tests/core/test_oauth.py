"""The core's OAuth 2.0 token helper against real simulators: both grants, both places for
the client's credentials, the expiry margin, one renewal on a 401, exact backoff."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs

import pytest

from ordersync.errors import AuthError, VendorUnavailable
from ordersync.http import RateLimit, RetryPolicy, VendorHttp
from ordersync.oauth import ClientSecret, OAuth2Grant, OAuth2Token
from ordersync.redaction import REDACTED, redact
from ordersync_adapters.fotoware.client import DESCRIPTOR, DESCRIPTOR_PATH, client_credentials


def tokens_asked(sim) -> list:
    return [r for r in sim.requests if r.path == "/fotoweb/oauth2/token"]


async def test_client_credentials_go_in_the_form_and_the_token_is_redacted(fotoware, clock):
    sim = await fotoware(orders=2)
    auth = client_credentials(sim.client_id, sim.client_secret, clock=clock)
    async with VendorHttp("fw", sim.base_url, sleep=clock.sleep, clock=clock,
                          auth=auth) as http:
        await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
        headers = await auth.headers(http)
    [asked] = tokens_asked(sim)
    assert parse_qs(asked.body.decode()) == {"grant_type": ["client_credentials"],
                                             "client_id": [sim.client_id],
                                             "client_secret": [sim.client_secret]}
    token = headers["Authorization"].removeprefix("Bearer ")
    assert redact(f"the vendor said {token}") == f"the vendor said {REDACTED}"


async def test_the_expiry_margin_is_the_grants(fotoware, clock):
    sim = await fotoware(orders=2, token_ttl_s=100.0)
    grant = OAuth2Grant("/fotoweb/oauth2/token", margin_fraction=0.5, margin_max_s=60.0)
    auth = OAuth2Token(grant, ClientSecret(sim.client_id, sim.client_secret), clock=clock)
    async with VendorHttp("fw", sim.base_url, sleep=clock.sleep, clock=clock,
                          auth=auth) as http:
        await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
        clock.advance(49)                       # half the lifetime is the margin here
        await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
        assert auth.issued == 1
        clock.advance(1)
        await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
    assert auth.issued == 2 and len(tokens_asked(sim)) == 2


async def test_a_refused_token_request_names_the_grants_hint_and_is_not_retried(
        fotoware, clock):
    sim = await fotoware(orders=2)
    grant = OAuth2Grant("/fotoweb/oauth2/token", hint="check the test's settings")
    auth = OAuth2Token(grant, ClientSecret(sim.client_id, "wrong"), clock=clock)
    async with VendorHttp("fw", sim.base_url, sleep=clock.sleep, clock=clock,
                          auth=auth) as http:
        with pytest.raises(AuthError, match="token request refused .*check the test's settings"):
            await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
    assert len(sim.requests) == 1 and clock.sleeps == []


async def test_a_second_401_in_a_row_is_final(fotoware, clock):
    sim = await fotoware(orders=2, token_ttl_s=0.0)   # every token is expired when used
    auth = client_credentials(sim.client_id, sim.client_secret, clock=clock)
    async with VendorHttp("fw", sim.base_url, sleep=clock.sleep, clock=clock,
                          auth=auth) as http:
        with pytest.raises(AuthError):
            await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
    assert [(r.path, r.status) for r in sim.requests] == [
        ("/fotoweb/oauth2/token", 200), ("/fotoweb/me/", 401),
        ("/fotoweb/oauth2/token", 200), ("/fotoweb/me/", 401)]
    assert http.stats["token_renewals_on_401"] == 1 and clock.sleeps == []


def test_client_auth_is_form_or_basic():
    with pytest.raises(ValueError, match="client_auth"):
        OAuth2Grant("/token", client_auth="header")


async def test_http_retries_wait_the_one_backoff_with_the_injected_jitter(fotoware, clock):
    sim = await fotoware(orders=2)
    sim.faults.add("status", status=503, retry_after=None, times=3, path_prefix="/fotoweb/me/")
    auth = client_credentials(sim.client_id, sim.client_secret, clock=clock)
    async with VendorHttp("fw", sim.base_url, retry=RetryPolicy(backoff_base_s=1.0),
                          sleep=clock.sleep, clock=clock, auth=auth,
                          jitter=lambda: 0.5) as http:
        await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
    assert clock.sleeps == [1.5, 2.5, 4.5]


async def test_gives_up_with_the_token_fetched_once(fotoware, clock):
    sim = await fotoware(orders=2)
    sim.faults.add("status", status=503, retry_after=None, times=100, path_prefix="/fotoweb/me/")
    auth = client_credentials(sim.client_id, sim.client_secret, clock=clock)
    async with VendorHttp("fw", sim.base_url, retry=RetryPolicy(max_attempts=3),
                          sleep=clock.sleep, clock=clock, auth=auth) as http:
        with pytest.raises(VendorUnavailable, match="gave up after 3 attempts"):
            await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
    assert auth.issued == 1 and len(tokens_asked(sim)) == 1


async def test_the_window_keeps_concurrent_requests_under_the_vendors_limit(fotoware, clock):
    sim = await fotoware(orders=2, clock=time.monotonic)   # the gateway dates real arrivals
    sim.rate_limit = (2, 0.1)
    sim.faults.add("delay", delay_s=0.05, times=3, path_prefix="/fotoweb/me/")  # slow answers
    auth = client_credentials(sim.client_id, sim.client_secret)
    async with VendorHttp("fw", sim.base_url, rate_limit=RateLimit(2, 0.1), sleep=clock.sleep,
                          auth=auth) as http:
        answers = await asyncio.gather(*(http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
                                         for _ in range(8)))
    assert len(answers) == 8 and len(sim.requests) == 9
    assert sim.rate_limited == 0 and clock.sleeps == []   # never over it, never retried
