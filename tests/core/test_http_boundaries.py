"""VendorHttp's boundaries against real loopback servers: credentials stay at the vendor's
origin and inside its API path, ids are one path segment, redirects are not followed, and
each call is one retry loop whose attempt log counts every request sent."""

from __future__ import annotations

import pytest
from aiohttp import web

from ordersync.errors import AmbiguousError, CannotConnect, LinkRefused, VendorUnavailable
from ordersync.http import CONNECT_ATTEMPTS, RetryPolicy, VendorHttp, request_log
from ordersync.http_answers import Response
from ordersync_adapters.fotoware.client import DESCRIPTOR, DESCRIPTOR_PATH, client_credentials
from ordersync_adapters.pwinty.client import PwintyApi
from tests.cli_support import closed_port
from tests.http_support import silent  # noqa: F401  (fixture)


@pytest.fixture
def foreign(silent):  # noqa: F811
    """Another host's server: whatever reaches it is counted."""
    return silent


@pytest.fixture
async def vendor(foreign):
    """A vendor under ``/v2.2`` recording each raw path; ``.../redirect`` sends to ``foreign``."""
    paths: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        paths.append(request.raw_path)
        if request.path.endswith("/redirect"):
            raise web.HTTPFound(f"{foreign.base_url}/v2.2/Orders")
        return web.json_response({"id": 1})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v2.2", paths
    await runner.cleanup()


HOSTILE_LINKS = {
    "another host": "{foreign}/v2.2/Orders",
    "scheme-relative": "//{foreign_host}/v2.2/Orders",
    "another scheme": "https://{vendor_host}/v2.2/Orders",
    "another name for the host": "http://localhost:{vendor_port}/v2.2/Orders",
    "user info": "http://user:pw@{vendor_host}/v2.2/Orders",
    "server path outside the API": "/Orders",
    "climbing out": "../Orders",
    "encoded climbing out": "Orders/%2e%2e/%2E%2E/x",
    "absolute climbing out": "{vendor}/../x",
    "not a URL": "http://[::1",
}


@pytest.mark.parametrize("link", HOSTILE_LINKS.values(), ids=HOSTILE_LINKS.keys())
async def test_a_link_off_the_vendor_is_refused_and_nothing_is_sent(vendor, foreign, clock,
                                                                    link):
    base_url, paths = vendor
    host = base_url.removeprefix("http://").split("/")[0]
    link = link.format(foreign=foreign.base_url, foreign_host=foreign.base_url[7:],
                       vendor=base_url, vendor_host=host, vendor_port=host.split(":")[1])
    async with VendorHttp("v", base_url, sleep=clock.sleep, clock=clock) as http:
        http.auth = client_credentials("id", "secret", clock=clock)  # would fetch a token first
        with pytest.raises(LinkRefused, match="refused, not followed|not a usable URL") as caught:
            await http.get_json(link, accept="application/json")
    assert paths == [] and foreign.connections == 0
    assert str(caught.value).startswith("v: ") and "\n" not in str(caught.value)


async def test_links_at_the_vendor_are_followed(vendor, clock):
    base_url, paths = vendor
    async with VendorHttp("v", base_url, sleep=clock.sleep, clock=clock) as http:
        for link in ("Orders", "/v2.2/Orders?count=1", f"{base_url}/Orders/7", "Orders/../Photos"):
            assert await http.get_json(link, accept="application/json") == {"id": 1}
    assert paths == ["/v2.2/Orders", "/v2.2/Orders?count=1", "/v2.2/Orders/7", "/v2.2/Photos"]


async def test_ids_stay_one_path_segment_inside_the_api(vendor, clock):
    base_url, paths = vendor
    async with VendorHttp("v", base_url, sleep=clock.sleep, clock=clock) as http:
        api = PwintyApi(http)
        for order_id in ("../../x", "a/b", "%2e%2e", "7?count=1#x"):
            await api.order(order_id)
        await api.delete_photo("7", "../8")
        for bad in (".", ".."):
            with pytest.raises(LinkRefused, match="cannot be an id"):
                await api.order(bad)
    assert paths == ["/v2.2/Orders/..%2F..%2Fx", "/v2.2/Orders/a%2Fb",
                     "/v2.2/Orders/%252e%252e", "/v2.2/Orders/7%3Fcount=1%23x",
                     "/v2.2/Orders/7/Photos/..%2F8"]


async def test_a_redirect_is_never_followed(vendor, foreign, clock):
    base_url, paths = vendor
    async with VendorHttp("v", base_url, sleep=clock.sleep, clock=clock) as http:
        with pytest.raises(LinkRefused, match="redirected to http://127.0.0.1:.*follows no"):
            await http.get_json("redirect", accept="application/json")
        with pytest.raises(AmbiguousError, match="redirected"):  # a write may have been done
            await http.request("POST", "redirect", data=b"x", read=Response.json)
    assert paths == ["/v2.2/redirect", "/v2.2/redirect"]  # each once: refused, not retried
    assert foreign.connections == 0


async def test_token_requests_are_attempts_of_the_one_retry_loop(fotoware, clock):
    sim = await fotoware(orders=3)
    sim.faults.add("status", status=503, path_prefix="/fotoweb/oauth2/token", times=100)
    sent: list[dict] = []
    token = request_log.set(sent)
    try:
        async with VendorHttp("fw", sim.base_url, retry=RetryPolicy(max_attempts=4),
                              sleep=clock.sleep, clock=clock) as http:
            http.auth = client_credentials(sim.client_id, sim.client_secret, clock=clock)
            with pytest.raises(VendorUnavailable, match=r"\(gave up after 4 attempts\)"):
                await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
    finally:
        request_log.reset(token)
    assert [(r.method, r.path) for r in sim.requests] == [("POST", "/fotoweb/oauth2/token")] * 4
    assert [(e["request"], e["status"]) for e in sent] == [("POST /fotoweb/oauth2/token", 503)] * 4
    assert len(clock.sleeps) == 3


async def test_a_401_renews_the_token_once_within_the_attempt(fotoware, clock):
    sim = await fotoware(orders=3)
    async with VendorHttp("fw", sim.base_url, sleep=clock.sleep, clock=clock) as http:
        http.auth = client_credentials(sim.client_id, sim.client_secret, clock=clock)
        await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
        sim.revoke_tokens()
        sent: list[dict] = []
        token = request_log.set(sent)
        try:
            await http.get_json(DESCRIPTOR_PATH, accept=DESCRIPTOR)
        finally:
            request_log.reset(token)
    assert [(e["request"], e["status"]) for e in sent] == [
        ("GET /fotoweb/me/", 401), ("POST /fotoweb/oauth2/token", 200), ("GET /fotoweb/me/", 200)]
    assert len(sim.requests) == 5 and clock.sleeps == []


async def test_nothing_listening_is_tried_a_few_times(clock):
    sent: list[dict] = []
    token = request_log.set(sent)
    try:
        async with VendorHttp("v", f"http://127.0.0.1:{closed_port()}",
                              retry=RetryPolicy(max_attempts=10), sleep=clock.sleep,
                              clock=clock) as http:
            with pytest.raises(CannotConnect, match=f"gave up after {CONNECT_ATTEMPTS} attempts"):
                # a write: nothing was sent, so it is safe to say it failed
                await http.request("POST", "/orders", data=b"{}", read=Response.json)
    finally:
        request_log.reset(token)
    assert [(e["request"], e["status"]) for e in sent] == [("POST /orders", None)] * 3
