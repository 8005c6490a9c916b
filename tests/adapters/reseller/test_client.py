"""The reseller client over loopback HTTP: password grant, version header, 403 meanings."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from ordersync.errors import AuthError, RateLimited, Rejected
from ordersync.http import RetryPolicy, VendorHttp
from ordersync_adapters.reseller.client import HTTP, ResellerApi, password_grant


def connect(sim, clock, **kwargs) -> ResellerApi:
    auth = password_grant(sim.client_key, sim.client_secret, sim.username, sim.password,
                          clock=clock)
    http = VendorHttp("rs", sim.base_url, sleep=clock.sleep, clock=clock, behaviour=HTTP,
                      auth=auth, **kwargs)
    return ResellerApi(http)

def token_requests(sim):
    return [r for r in sim.requests if r.path == "/oauth/token"]

async def test_version_header_on_every_request_the_token_request_included(reseller, clock):
    sim = await reseller(orders=5)
    api = connect(sim, clock)
    async with api.http:
        [oid, *_] = sorted(sim.orders)
        await api.order(str(oid))
        await api.items(str(oid))
        await api.custom_fields(str(oid))
        await api.list_page({"stage": "All"}, 1, 10)
    assert len(sim.requests) == 5
    assert {r.headers.get("x-api-version") for r in sim.requests} == {"3.0"}

async def test_client_key_and_secret_travel_only_as_basic_auth(reseller, clock):
    sim = await reseller(orders=1)
    api = connect(sim, clock)
    async with api.http:
        await api.list_page({"stage": "All"}, 1, 10)
    [token] = token_requests(sim)
    form = parse_qs(token.body.decode())
    assert form == {"grant_type": ["password"], "username": [sim.username],
                    "password": [sim.password]}
    assert sim.client_secret not in token.body.decode()
    assert sim.client_key not in token.body.decode()
    assert token.headers["authorization"] == "<redacted>"  # the simulator checked it as Basic

async def test_token_is_renewed_before_it_expires_and_once_on_a_401(reseller, clock):
    sim = await reseller(orders=1, token_lifetime_s=600)
    api = connect(sim, clock)
    async with api.http:
        await api.list_page({"stage": "All"}, 1, 10)
        clock.advance(300)
        await api.list_page({"stage": "All"}, 1, 10)
        assert sim.tokens_issued == 1           # still fresh: reused
        clock.advance(290)                      # within the last tenth of its lifetime
        await api.list_page({"stage": "All"}, 1, 10)
        assert sim.tokens_issued == 2
        sim.tokens.clear()                      # the vendor forgets every token
        await api.list_page({"stage": "All"}, 1, 10)
    assert sim.tokens_issued == 3
    assert [r.status for r in sim.requests[-3:]] == [401, 200, 200]
    assert api.http.stats["token_renewals_on_401"] == 1

async def test_wrong_password_is_an_auth_error_naming_the_settings(reseller, clock):
    sim = await reseller(orders=1)
    api = connect(sim, clock)
    sim.password = "changed at the vendor"
    async with api.http:
        with pytest.raises(AuthError, match="check client_key, client_secret, username and"):
            await api.list_page({"stage": "All"}, 1, 10)
    assert len(token_requests(sim)) == 1

async def test_403_rate_limit_is_retried_after_backing_off(reseller, clock):
    sim = await reseller(orders=3, rate_limit=(2, 3.0))
    api = connect(sim, clock)
    async with api.http:
        await api.list_page({"stage": "All"}, 1, 10)   # token + list fill the window
        orders, _ = await api.list_page({"stage": "All"}, 1, 10)
    assert len(orders) == 3
    statuses = [r.status for r in sim.requests]
    assert statuses[:2] == [200, 200] and statuses[-1] == 200
    assert 403 in statuses and sim.rate_limited >= 1
    assert all(r.headers.get("x-api-version") == "3.0" for r in sim.requests)
    waits = clock.sleeps
    assert len(waits) == sim.rate_limited and all(w >= 0.5 for w in waits)
    assert waits == sorted(waits)                     # exponential: each wait longer

async def test_403_rate_limit_on_a_write_is_retried_too(reseller, clock):
    sim = await reseller(orders=0)
    api = connect(sim, clock)
    sim.faults.add("status", status=403, retry_after=None, method="POST",
                   path_prefix="/api/orders")
    async with api.http:
        created = await api.create_order({"accountId": "ACC-1002"})
    assert created["status"] == "Draft"
    assert [(r.method, r.status) for r in sim.requests if r.path == "/api/orders"] == [
        ("POST", 403), ("POST", 201)]
    assert len(sim.orders) == 1 and len(clock.sleeps) == 1

async def test_rate_limit_that_never_lifts_gives_up_as_rate_limited(reseller, clock):
    sim = await reseller(orders=1)
    sim.faults.add("status", status=403, retry_after=None, times=10, method="GET")
    api = connect(sim, clock, retry=RetryPolicy(max_attempts=3))
    async with api.http:
        with pytest.raises(RateLimited, match="Rate limit exceeded"):
            await api.list_page({"stage": "All"}, 1, 10)
    assert [r.status for r in sim.requests if r.method == "GET"] == [403, 403, 403]

async def test_free_edition_write_is_a_permission_error_never_retried(reseller, clock):
    sim = await reseller(orders=2, edition="Free")
    api = connect(sim, clock)
    async with api.http:
        orders, _ = await api.list_page({"stage": "All"}, 1, 10)   # reading is allowed
        with pytest.raises(Rejected, match="permission denied: The Free Edition") as refused:
            await api.create_order({"accountId": "ACC-1001"})
    assert len(orders) == 2 and refused.value.status == 403
    assert [r.method for r in sim.requests].count("POST") == 2   # the token, one create
    assert sim.effects == [] and clock.sleeps == []
