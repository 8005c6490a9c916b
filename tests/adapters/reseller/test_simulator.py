"""The reseller API V3 simulator against a plain aiohttp client over loopback HTTP."""

from __future__ import annotations

import base64

import aiohttp
import orjson
import pytest

from ordersync_adapters.reseller.simulator import DAY, ResellerSimulator, stamp
from tests.simulator_support import DISCONNECTED, Clock, simulator_clients

VERSION = {"X-Api-Version": "3.0"}


class Api:
    """A thin client that logs in once: raw answers as (status, parsed JSON or None)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, sim: ResellerSimulator):
        self.http, self.base, self.sim = http, base, sim
        self.token: str | None = None

    async def login(self) -> None:
        basic = base64.b64encode(f"{self.sim.client_key}:{self.sim.client_secret}".encode())
        headers = {**VERSION, "Authorization": f"Basic {basic.decode()}"}
        async with self.http.post(self.base + "/oauth/token", headers=headers, data={
                "grant_type": "password", "username": self.sim.username,
                "password": self.sim.password}) as resp:
            assert resp.status == 200
            self.token = (await resp.json())["access_token"]

    async def call(self, method: str, path: str, *, headers: dict | None = None, **kw):
        if self.token is None:
            await self.login()
        if headers is None:
            headers = {**VERSION, "Authorization": f"Bearer {self.token}"}
        async with self.http.request(method, self.base + path, headers=headers, **kw) as resp:
            raw = await resp.read()
            return resp.status, orjson.loads(raw) if raw else None

    async def ok(self, method: str, path: str, expect: int = 200, **kw):
        status, body = await self.call(method, path, **kw)
        assert status == expect, (status, body)
        return body

    async def ids(self, **params) -> list[int]:
        body = await self.ok("GET", "/api/orders", params={"pageSize": "100", **params})
        return [o["id"] for o in body["data"]]


@pytest.fixture
async def make_api():
    async with simulator_clients(ResellerSimulator, Api) as make:
        yield make


async def test_stages_confirmed_by_default_draft_and_all(make_api):
    api = await make_api(orders=40, clock=Clock())
    by_status = {oid: o["status"] for oid, o in api.sim.orders.items()}
    unconfirmed = ("Draft", "Reseller Pending Approval", "Cancelled by Reseller")
    assert await api.ids() == sorted(o for o, s in by_status.items() if s not in unconfirmed)
    assert await api.ids(stage="Draft") == sorted(o for o, s in by_status.items() if s == "Draft")
    assert await api.ids(stage="All") == sorted(by_status)
    assert (await api.call("GET", "/api/orders", params={"stage": "Everything"}))[0] == 400


async def test_paging_filter_and_orderby(make_api):
    clock = Clock()
    api = await make_api(orders=30, clock=clock)
    first = await api.ok("GET", "/api/orders", params={"stage": "All", "pageSize": "7"})
    assert (first["pageIndex"], first["pageSize"], first["totalCount"]) == (1, 7, 30)
    last = await api.ok("GET", "/api/orders", params={"stage": "All", "pageSize": "7",
                                                       "pageIndex": "5"})
    assert len(last["data"]) == 2
    target = min(api.sim.orders)
    clock.now += 2 * DAY
    api.token = None                          # the token has expired meanwhile
    api.sim.set_status(target, "Canceled")
    day = stamp(clock.now - DAY)[:10]
    assert await api.ids(stage="All", **{"$filter": f"updatedAt gt datetime'{day}'"}) == [target]
    account = api.sim.orders[target]["accountId"]
    same = await api.ids(stage="All", **{"$filter": f"accountId eq '{account}' and"
                                                    " contains(code,'ORD')"})
    assert same == sorted(o for o, v in api.sim.orders.items() if v["accountId"] == account)
    newest = await api.ok("GET", "/api/orders", params={"stage": "All",
                                                        "$orderby": "updatedAt desc"})
    assert newest["data"][0]["id"] == target
    for bad in ({"$filter": "status ne 'Draft'"}, {"$orderby": "colour asc"}):
        assert (await api.call("GET", "/api/orders", params=bad))[0] == 400


async def test_version_header_and_bearer_token_are_required(make_api):
    api = await make_api(orders=1, clock=Clock())
    await api.login()
    bearer = {"Authorization": f"Bearer {api.token}"}
    status, body = await api.call("GET", "/api/orders", headers=bearer)
    assert status == 400 and "X-Api-Version" in body["message"]
    assert (await api.call("GET", "/api/orders", headers=VERSION))[0] == 401
    async with api.http.post(api.base + "/oauth/token", data={
            "grant_type": "password", "username": api.sim.username,
            "password": api.sim.password, "client_id": api.sim.client_key,
            "client_secret": api.sim.client_secret}) as resp:
        assert resp.status == 400     # the client key and secret belong in Basic auth only


async def test_writes_are_for_drafts_only_and_checkout_needs_items(make_api):
    api = await make_api(orders=0, clock=Clock())
    assert (await api.call("POST", "/api/orders", json={}))[0] == 400
    draft = await api.ok("POST", "/api/orders", 201, json={"accountId": "ACC-1002"})
    oid = draft["id"]
    assert draft["status"] == "Draft" and draft["expirationDate"] == stamp(
        api.sim._clock() + 7 * DAY)
    status, body = await api.call("POST", f"/api/orders/{oid}/checkout")
    assert status == 400 and "no items" in body["message"]
    assert (await api.call("GET", f"/api/orders/{oid}/execute/status"))[0] == 400
    item = await api.ok("POST", f"/api/orders/{oid}/items", 201,
                        json={"productId": "MS-365-BB", "quantity": 3})
    assert item["total"] == 18.0
    assert (await api.ok("POST", f"/api/orders/{oid}/checkout"))["status"] == "InProgress"
    writes = [("POST", f"/api/orders/{oid}/items", {"productId": "MS-365-BB"}),
              ("DELETE", f"/api/orders/{oid}/items/{item['id']}", None),
              ("POST", f"/api/orders/{oid}/checkout", None),
              ("PUT", f"/api/orders/{oid}/customfields", [{"id": 1, "value": "x"}]),
              ("PUT", f"/api/orders/{oid}/items/{item['id']}/characteristics",
               [{"code": "domain", "value": "x"}])]
    for method, path, body in writes:
        status, answer = await api.call(method, path, json=body)
        assert status == 400 and "only Draft orders" in answer["message"], (method, path)
    assert [e.verb for e in api.sim.effects] == ["CREATE", "ADD_ITEM", "CHECKOUT"]


async def test_drafts_expire_and_executions_finish_on_the_clock(make_api):
    clock = Clock()
    api = await make_api(orders=0, clock=clock, execution_s=300)
    old = api.sim.add_order(status="Draft", items=1, at=clock.now - 7 * DAY + 60)
    ok = api.sim.add_order(status="Draft", items=1)
    bad = api.sim.add_order(status="Draft", items=1)
    api.sim.fail_execution.add(bad)
    for oid in (ok, bad):
        await api.ok("POST", f"/api/orders/{oid}/checkout")
    execution = await api.ok("GET", f"/api/orders/{ok}/execute/status")
    assert execution == {"orderId": ok, "status": "InProgress", "message": None}
    clock.now += 301
    assert (await api.call("GET", f"/api/orders/{old}"))[0] == 404
    assert await api.ids(stage="All") == [ok, bad]
    assert (await api.ok("GET", f"/api/orders/{ok}/execute/status"))["status"] == "Completed"
    assert (await api.ok("GET", f"/api/orders/{ok}"))["status"] == "Executed"
    failed = await api.ok("GET", f"/api/orders/{bad}/execute/status")
    assert failed["status"] == "Failed" and failed["message"]
    assert (await api.ok("GET", f"/api/orders/{bad}"))["status"] == "Submitted"


async def test_free_edition_refuses_every_write_with_403(make_api):
    api = await make_api(orders=3, clock=Clock(), edition="Free")
    [oid, *_] = sorted(api.sim.orders)
    assert len(await api.ids(stage="All")) == 3
    for method, path in [("POST", "/api/orders"), ("POST", f"/api/orders/{oid}/items"),
                         ("POST", f"/api/orders/{oid}/checkout"),
                         ("PUT", f"/api/orders/{oid}/customfields")]:
        status, body = await api.call(method, path, json={"accountId": "ACC-1001"})
        assert status == 403 and "Free Edition" in body["message"]
    assert api.sim.effects == []


async def test_rate_limit_is_a_403_without_retry_after(make_api):
    clock = Clock()
    api = await make_api(orders=1, clock=clock, rate_limit=(3, 1.0))
    answers = []
    for _ in range(4):
        async with api.http.get(api.base + "/api/orders", headers=VERSION) as resp:
            answers.append((resp.status, "Retry-After" in resp.headers, await resp.json()))
    assert [a[0] for a in answers] == [401, 401, 401, 403]
    assert answers[-1][1:] == (False, {"message": "Rate limit exceeded"})
    assert [r.status for r in api.sim.requests] == [401, 401, 401, 403]
    clock.now += 1
    assert (await api.call("GET", "/api/orders"))[0] == 200


async def test_faults_and_request_log(make_api):
    api = await make_api(orders=2, clock=Clock())
    await api.login()
    api.sim.faults.add("status", status=503, method="GET")
    assert (await api.call("GET", "/api/orders"))[0] == 503
    api.sim.faults.add("drop", method="GET", times=2)   # aiohttp resends a GET once itself
    with pytest.raises(DISCONNECTED):
        await api.call("GET", "/api/orders")
    token, failed, *dropped = api.sim.requests
    assert (token.path, token.headers["authorization"]) == ("/oauth/token", "<redacted>")
    assert (failed.status, [r.status for r in dropped]) == (503, [0, 0])
