"""The FotoWeb simulator against a plain aiohttp client over loopback HTTP."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import orjson
import pytest

from ordersync_adapters.fotoware.simulator import (
    CT_COUNT,
    CT_DESCRIPTOR,
    CT_ORDER,
    CT_ORDER_CONFIG,
    CT_ORDER_LIST,
    CT_ORDER_LIST_ALT,
    CT_ORDER_UPDATE,
    FotowareSimulator,
    parse_faults,
    serve,
)
from tests.simulator_support import DISCONNECTED, Clock, simulator_clients


class Api:
    """A thin client: one token, raw answers as (status, headers, body)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, sim: FotowareSimulator):
        self.http, self.base, self.sim, self.token = http, base, sim, None

    async def get_token(self, **form: str) -> tuple[int, dict]:
        data = {"grant_type": "client_credentials", "client_id": "ordersync",
                "client_secret": "sim-secret", **form}
        async with self.http.post(self.base + "/fotoweb/oauth2/token", data=data) as resp:
            body = await resp.json()
            if resp.status == 200:
                self.token = body["access_token"]
            return resp.status, body

    async def call(self, method: str, path: str, accept: str | None = None, body=None,
                   content_type: str = CT_ORDER_UPDATE, token: str | None = "auto"):
        headers = {}
        if accept:
            headers["Accept"] = accept
        token = self.token if token == "auto" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        url = path if path.startswith("http") else self.base + path
        async with self.http.request(method, url, headers=headers, data=data) as resp:
            return resp.status, resp.headers, await resp.read()

    async def json(self, method: str, path: str, accept: str, body=None, expect: int = 200):
        status, headers, raw = await self.call(method, path, accept, body)
        assert status == expect, (status, raw)
        assert headers["Content-Type"].startswith(accept)
        return orjson.loads(raw)

    async def list_all(self, path: str) -> list[dict]:
        orders, url = [], path
        while True:
            page = await self.json("GET", url, CT_ORDER_LIST)
            orders += page["data"]
            if page["paging"] is None or not page["paging"]["next"]:
                return orders
            url = page["paging"]["next"]


@pytest.fixture
async def make_api():
    async with simulator_clients(FotowareSimulator, Api) as make:
        async def make_with_token(**kwargs) -> Api:
            api = await make(**kwargs)
            await api.get_token()
            return api

        yield make_with_token


@pytest.fixture
async def api(make_api) -> Api:
    return await make_api(clock=Clock())


def pending_id(sim: FotowareSimulator, state: str = "pending") -> str:
    return next(i for i in sim.order_ids() if sim.get_order(i)["state"] == state)


def field_ids(sim: FotowareSimulator) -> dict[str, str]:
    return {f["label"]: f["id"] for f in sim.config["orderFields"] + sim.config["itemFields"]}


def update_from(order: dict) -> dict:
    """An order-update body that keeps everything as it is."""
    return {"orderItems": [{"rendition": i["rendition"]["href"], "itemData": i["itemData"],
                            "adminComment": i["adminComment"], "expires": i["expires"]}
                           for i in order["orderItems"]],
            "orderData": order["orderData"], "adminComment": order["adminComment"],
            "expires": order["expires"]}


# ---------------------------------------------------------------- auth and discovery

async def test_token_endpoint(make_api):
    api = await make_api(token_ttl_s=0.5)
    status, body = await api.get_token()
    assert status == 200 and body["token_type"] == "bearer" and body["expires_in"] == 0.5
    assert await api.get_token(grant_type="password") == (400, {"error": "unsupported_grant_type"})
    assert (await api.get_token(client_secret="nope")) == (401, {"error": "invalid_client"})
    async with api.http.post(api.base + "/fotoweb/oauth2/token", json={"grant_type": "x"}) as resp:
        assert resp.status == 400
    api = await make_api()
    assert (await api.get_token())[1]["expires_in"] == 300 and isinstance(
        (await api.get_token())[1]["expires_in"], int)


async def test_401_for_missing_expired_and_revoked_tokens(make_api):
    clock = Clock()
    api = await make_api(clock=clock, token_ttl_s=60)
    status, _, raw = await api.call("GET", "/fotoweb/me/", CT_DESCRIPTOR, token=None)
    assert (status, raw) == (401, b"")
    assert (await api.call("GET", "/fotoweb/me/", CT_DESCRIPTOR, token="forged"))[0] == 401
    assert (await api.call("GET", "/fotoweb/me/", CT_DESCRIPTOR))[0] == 200
    clock.now += 60
    assert (await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT))[0] == 401
    await api.get_token()
    assert (await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT))[0] == 200
    api.sim.revoke_tokens()
    status, _, raw = await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT)
    assert (status, raw) == (401, b"")
    logged = {r.headers.get("authorization") for r in api.sim.requests}
    assert logged == {None, "Bearer <redacted>"}


async def test_descriptor_and_missing_admin_permission(api):
    descriptor = await api.json("GET", "/fotoweb/me/", CT_DESCRIPTOR)
    admin = descriptor["order"]["admin"]
    assert admin["pending"] == "/fotoweb/orders/pending/" and admin["history"] == "/fotoweb/orders/"
    assert descriptor["order"]["config"] == "/fotoweb/order-config"
    assert (await api.call("GET", "/fotoweb/me/", "application/json"))[0] == 406
    api.sim.admin = False
    assert (await api.json("GET", "/fotoweb/me/", CT_DESCRIPTOR))["order"]["admin"] is None
    for path in ("/fotoweb/orders/", "/fotoweb/orders/pending/", "/fotoweb/orders/approved/"):
        status, _, raw = await api.call("GET", path, CT_ORDER_LIST)
        assert status == 403 and "Approve Orders" in orjson.loads(raw)["message"]
    oid = api.sim.order_ids()[0]
    assert (await api.call("GET", f"/fotoweb/orders/{oid}", CT_ORDER))[0] == 403
    assert (await api.call("APPROVE", f"/fotoweb/orders/{oid}"))[0] == 403
    config = await api.json("GET", "/fotoweb/order-config", CT_ORDER_CONFIG)   # not admin-only
    assert {"Project code", "Internal note"} <= {f["label"] for f in config["orderFields"]}


# ---------------------------------------------------------------- lists and orders

async def test_paging_sees_every_order_once_and_counts_match(make_api):
    api = await make_api(orders=100, page_size=37)
    sim = api.sim
    first = await api.json("GET", "/fotoweb/orders/", CT_ORDER_LIST)
    assert len(first["data"]) == 37 and first["paging"]["prev"] == ""
    assert first["paging"]["next"].startswith("/fotoweb/orders/?p=")
    history = await api.list_all("/fotoweb/orders/")
    hrefs = [o["href"] for o in history]
    assert len(hrefs) == len(set(hrefs)) == 100
    assert hrefs == [f"/fotoweb/orders/{i}" for i in sim.order_ids()]
    assert [o["created"] for o in history] == sorted((o["created"] for o in history), reverse=True)
    assert "cart" not in {o["state"] for o in history}
    last = await api.json("GET", first["paging"]["last"], CT_ORDER_LIST)
    assert last["paging"]["next"] == "" and len(last["data"]) == 100 - 2 * 37
    assert (await api.json("GET", "/fotoweb/orders/", CT_COUNT)) == {"count": 100}
    total = 0
    for state in ("pending", "approved", "rejected"):
        listed = await api.list_all(f"/fotoweb/orders/{state}/")
        assert {o["state"] for o in listed} <= {state}
        count = await api.json("GET", f"/fotoweb/orders/{state}/", CT_COUNT)
        assert count == {"count": len(listed)}
        total += len(listed)
    assert 0 < total < 100
    alt = await api.json("GET", "/fotoweb/orders/rejected/", CT_ORDER_LIST_ALT)
    assert alt["paging"] is None          # fits one page
    assert (await api.call("GET", "/fotoweb/orders/?p=garbage", CT_ORDER_LIST))[0] == 400


async def test_approving_while_paging_shrinks_the_pending_list(make_api):
    api = await make_api(orders=200, page_size=10)
    pending = [o["href"] for o in await api.list_all("/fotoweb/orders/pending/")]
    page = await api.json("GET", "/fotoweb/orders/pending/", CT_ORDER_LIST)
    for order in page["data"]:
        assert (await api.call("APPROVE", order["href"]))[0] == 200
    count = await api.json("GET", "/fotoweb/orders/pending/", CT_COUNT)
    assert count == {"count": len(pending) - 10}
    second = await api.json("GET", page["paging"]["next"], CT_ORDER_LIST)
    # The token is a page index: the ten orders that moved up to page one are skipped.
    assert [o["href"] for o in second["data"]] == pending[20:30]


async def test_order_representation(api):
    sim = api.sim
    oid = sim.order_ids()[0]
    order = await api.json("GET", f"/fotoweb/orders/{oid}", CT_ORDER)
    assert list(order) == ["href", "created", "modified", "state", "expires", "orderItems",
                           "orderData", "orderReference", "checkoutPageLocation", "adminComment",
                           "userComment", "owner"]
    assert order["href"] == f"/fotoweb/orders/{oid}" and order["orderReference"] == f"ORD-{oid}"
    assert order["created"].endswith("Z")
    assert set(order["owner"]) == {"userName", "fullName", "email", "href"}
    item = order["orderItems"][0]
    assert list(item) == ["adminComment", "asset", "expires", "expired", "itemData", "rendition"]
    assert item["rendition"]["href"].startswith(item["asset"] + "#")
    assert 800 < len(orjson.dumps(order)) < 4000
    status, _, raw = await api.call("GET", "/fotoweb/orders/99999999", CT_ORDER)
    assert (status, orjson.loads(raw)) == (404, {"message": "Order not found"})
    cart = sim.cart_ids()[0]
    assert sim.get_order(cart)["state"] == "cart"
    assert FotowareSimulator(seed=7).get_order("10001") == FotowareSimulator(seed=7).get_order(
        "10001")


async def test_helpers_change_modified_lists_and_counts(api):
    sim = api.sim
    new = sim.add_order("created")
    assert sim.order_ids()[0] == new and sim.get_order(new)["state"] == "created"
    oid = pending_id(sim)
    before = sim.get_order(oid)
    sim.touch(oid, adminComment="looked at")
    after = sim.get_order(oid)
    assert after["adminComment"] == "looked at" and after["created"] == before["created"]
    assert after["modified"] != before["modified"]
    sim.touch(oid, userComment="again")          # same clock reading: still moves forward
    assert sim.get_order(oid)["modified"] > after["modified"]
    count = (await api.json("GET", "/fotoweb/orders/approved/", CT_COUNT))["count"]
    sim.set_state(oid, "approved")
    assert (await api.json("GET", "/fotoweb/orders/approved/", CT_COUNT))["count"] == count + 1
    served = await api.json("GET", f"/fotoweb/orders/{oid}", CT_ORDER)
    assert served["state"] == "approved" and served["orderItems"][0]["rendition"]["download"]
    with pytest.raises(ValueError):
        sim.touch(oid, created="x")
    sim.set_state(oid, "on-hold")                # a state no doc mentions: history only
    history = await api.list_all("/fotoweb/orders/")
    assert [o["state"] for o in history if o["href"].endswith(f"/{oid}")] == ["on-hold"]
    approved = await api.list_all("/fotoweb/orders/approved/")
    assert (await api.json("GET", "/fotoweb/orders/approved/", CT_COUNT))["count"] == count
    assert f"/fotoweb/orders/{oid}" not in {o["href"] for o in approved}


# ---------------------------------------------------------------- verbs

async def test_patch_rules(api):
    sim = api.sim
    oid = pending_id(sim)
    order = sim.get_order(oid)
    assert (await api.call("PATCH", f"/fotoweb/orders/{oid}", body=update_from(order)))[0] == 204
    same = sim.get_order(oid)
    assert same["orderItems"] == order["orderItems"] and same["orderData"] == order["orderData"]
    assert same["modified"] != order["modified"] and same["created"] == order["created"]
    assert sim.effects[-1].verb == "PATCH" and sim.effects[-1].order_id == oid

    # The documented trap: leaving out orderItems and orderData clears them.
    status, _, _ = await api.call("PATCH", f"/fotoweb/orders/{oid}", body={"adminComment": "hm"})
    assert status == 204
    cleared = sim.get_order(oid)
    assert (cleared["orderItems"], cleared["orderData"], cleared["adminComment"]) == ([], [], "hm")

    bad = {"orderItems": [{"rendition": "/fotoweb/archives/9999-Nope/x.jpg.info#original"}]}
    status, _, raw = await api.call("PATCH", f"/fotoweb/orders/{oid}", body=bad)
    assert status == 400 and "unknown rendition" in orjson.loads(raw)["message"]
    status, _, _ = await api.call("PATCH", f"/fotoweb/orders/{oid}", body={},
                                  content_type="application/json")
    assert status == 415
    assert (await api.call("PATCH", "/fotoweb/orders/99999999", body={}))[0] == 404
    approved = pending_id(sim, "approved")
    assert (await api.call("PATCH", f"/fotoweb/orders/{approved}", body={}))[0] == 400
    assert [e.verb for e in sim.effects] == ["PATCH", "PATCH"]


async def test_submit_rules(api):
    sim = api.sim
    oid = pending_id(sim, "created")
    assert (await api.call("SUBMIT", f"/fotoweb/orders/{oid}"))[:1] == (204,)
    assert sim.get_order(oid)["state"] == "pending"
    status, _, raw = await api.call("SUBMIT", f"/fotoweb/orders/{oid}")
    assert status == 400 and "created" in orjson.loads(raw)["message"]
    assert (await api.call("SUBMIT", "/fotoweb/orders/99999999"))[0] == 404
    assert [(e.verb, e.order_id, e.body) for e in sim.effects] == [("SUBMIT", oid, None)]


async def test_approve_and_reject_rules(api):
    sim = api.sim
    oid = pending_id(sim)
    order = await api.json("APPROVE", f"/fotoweb/orders/{oid}", CT_ORDER)
    assert order["state"] == "approved"
    assert all(i["rendition"]["download"] for i in order["orderItems"])
    body = update_from(order) | {"adminComment": "licence withdrawn"}
    order = await api.json("REJECT", f"/fotoweb/orders/{oid}", CT_ORDER, body=body)
    assert order["state"] == "rejected" and order["adminComment"] == "licence withdrawn"
    assert all(i["rendition"]["download"] is None for i in order["orderItems"])
    status, _, raw = await api.call("APPROVE", f"/fotoweb/orders/{oid}", body={"orderData": []})
    assert (status, orjson.loads(raw)) == (400, {"message": "Project code: a value is required"})
    for state in ("expired", "cart"):
        other = pending_id(sim, state) if state != "cart" else sim.cart_ids()[0]
        assert (await api.call("APPROVE", f"/fotoweb/orders/{other}"))[0] == 400
        assert (await api.call("REJECT", f"/fotoweb/orders/{other}"))[0] == 400
    assert (await api.call("REJECT", "/fotoweb/orders/99999999"))[0] == 404
    assert [(e.verb, e.body is None) for e in sim.effects] == [("APPROVE", True), ("REJECT", False)]


@pytest.mark.parametrize("data, message", [
    ([{"id": "nope", "value": "x"}], "orderData[0]: unknown field id 'nope'"),
    ([{"id": "Internal note", "value": "changed"}], "Internal note: field is not writable"),
    ([{"id": "Rush", "value": "yes"}], "Rush: value must be true or false"),
    ([{"id": "Budget", "value": 12}], "Budget: value must be a string"),
    ([{"id": "Budget", "value": "lots"}], "Budget: 'lots' is not a number"),
    ([{"id": "Budget", "value": "-1"}], "Budget: must be at least 0"),
    ([{"id": "Budget", "value": "5001"}], "Budget: must be at most 5000"),
    ([{"id": "Project code", "value": "ABCD-1234"}], "Project code: longer than 8 characters"),
    ([{"id": "Project code", "value": "ab-1234"}], "Project code: 'ab-1234' does not match"),
    ([{"id": "Channel", "value": "Radio"}], "Channel: 'Radio' is not one of Print, Web, Broadcast"),
    ([{"id": "Rush", "value": True}], "Project code: a value is required"),
    ("items", "Usage: value must be a list of strings"),
    ("caption", "Caption: longer than 40 characters"),
])
async def test_custom_data_validation(api, data, message):
    sim = api.sim
    ids = field_ids(sim)
    oid = pending_id(sim)
    body = update_from(sim.get_order(oid))
    rendition = body["orderItems"][0]["rendition"]
    if data == "items":
        item_data = [{"id": ids["Usage"], "value": "Editorial"}]
        body["orderItems"] = [{"rendition": rendition, "itemData": item_data}]
    elif data == "caption":
        item_data = [{"id": ids["Caption"], "value": "x" * 41}]
        body["orderItems"] = [{"rendition": rendition, "itemData": item_data}]
    else:
        body["orderData"] = [{"id": ids.get(d["id"], d["id"]), "value": d["value"]} for d in data]
        if data[0]["id"] not in ("Project code", "Rush"):
            body["orderData"].append({"id": ids["Project code"], "value": "MKT-0001"})
    before = sim.get_order(oid)
    status, _, raw = await api.call("PATCH", f"/fotoweb/orders/{oid}", body=body)
    assert status == 400 and orjson.loads(raw)["message"].startswith(message)
    assert sim.get_order(oid) == before and sim.effects == []


# ---------------------------------------------------------------- faults

async def test_status_and_delay_faults(api):
    sim = api.sim
    oid = pending_id(sim)
    sim.faults.add("status", status=429, retry_after="2", method="APPROVE")
    status, headers, raw = await api.call("APPROVE", f"/fotoweb/orders/{oid}")
    assert (status, headers["Retry-After"]) == (429, "2") and "message" in orjson.loads(raw)
    assert sim.effects == [] and sim.get_order(oid)["state"] == "pending"
    sim.faults.add("delay", delay_s=0.2, path_prefix="/fotoweb/orders/pending/")
    started = time.monotonic()
    assert (await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT))[0] == 200
    assert time.monotonic() - started >= 0.2
    # Faults leave the token endpoint alone unless a rule names it.
    sim.faults.add("status", status=503, times=5)
    assert (await api.get_token())[0] == 200
    sim.faults.clear()
    sim.faults.add("status", status=503, path_prefix="/fotoweb/oauth2/token")
    assert (await api.get_token())[0] == 503


async def test_drop_faults_disconnect_without_applying(api):
    sim = api.sim
    oid = pending_id(sim)
    sim.faults.add("drop", method="APPROVE")
    with pytest.raises(DISCONNECTED):
        await api.call("APPROVE", f"/fotoweb/orders/{oid}")
    assert sim.effects == [] and sim.get_order(oid)["state"] == "pending"
    assert sim.requests[-1].status == 0 and sim.requests[-1].method == "APPROVE"
    # aiohttp silently retries an idempotent GET once on a dropped connection.
    sim.faults.add("drop", times=2, method="GET")
    with pytest.raises(DISCONNECTED):
        await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT)
    assert [r.status for r in sim.requests[-2:]] == [0, 0]
    assert (await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT))[0] == 200


async def test_apply_then_drop_records_the_effect(api):
    sim = api.sim
    oid = pending_id(sim)
    sim.faults.add("apply_then_drop", path_prefix="/fotoweb/orders/")
    assert (await api.call("GET", f"/fotoweb/orders/{oid}", CT_ORDER))[0] == 200   # reads pass
    with pytest.raises(DISCONNECTED):
        await api.call("APPROVE", f"/fotoweb/orders/{oid}")
    assert [(e.verb, e.order_id) for e in sim.effects] == [("APPROVE", oid)]
    assert sim.get_order(oid)["state"] == "approved" and sim.requests[-1].status == 0


async def test_malformed_fault(api):
    sim = api.sim
    sim.faults.add("malformed", path_prefix="/fotoweb/orders/")
    status, headers, raw = await api.call("GET", "/fotoweb/orders/", CT_ORDER_LIST)
    assert status == 200 and headers["Content-Type"].startswith(CT_ORDER_LIST)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    assert orjson.loads((await api.call("GET", "/fotoweb/orders/", CT_ORDER_LIST))[2])["data"]
    # A change is applied; only its answer is garbled.
    oid = pending_id(sim)
    sim.faults.add("malformed", method="APPROVE")
    status, headers, raw = await api.call("APPROVE", f"/fotoweb/orders/{oid}", CT_ORDER)
    assert status == 200 and headers["Content-Type"].startswith(CT_ORDER)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    assert [e.verb for e in sim.effects] == ["APPROVE"]
    assert sim.get_order(oid)["state"] == "approved"


async def test_random_faults_are_seeded(make_api):
    outcomes = []
    for _ in range(2):
        api = await make_api(clock=Clock())
        api.sim.faults.random("503:0.3,malformed:0.2", seed=3)
        statuses = [(await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT))[0]
                    for _ in range(30)]
        outcomes.append(statuses)
    assert outcomes[0] == outcomes[1] and set(outcomes[0]) == {200, 503}
    assert 3 <= outcomes[0].count(503) <= 15


def test_parse_faults():
    assert parse_faults("429:0.1, drop:0.02,apply_then_drop:0.1") == [
        ("429", 0.1), ("drop", 0.02), ("apply_then_drop", 0.1)]
    assert parse_faults("") == []
    with pytest.raises(ValueError, match=r"unknown fault 'boom' in --faults; known: "):
        parse_faults("boom:0.1")
    with pytest.raises(ValueError, match="probability"):
        parse_faults("503")
    with pytest.raises(ValueError, match="probability"):
        parse_faults("503:1.5")
    with pytest.raises(ValueError, match="more than 1"):
        parse_faults("503:0.6,drop:0.6")


async def test_early_retries_and_request_rate(api):
    sim, clock = api.sim, api.sim._clock
    sim.faults.add("status", status=503, retry_after="2")
    assert (await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT))[0] == 503
    clock.now += 1
    await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT)
    assert sim.early_retries == 1
    clock.now += 1
    await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT)
    assert sim.early_retries == 1
    # requests so far: token at t, 503 at t, early at t+1, fine at t+2
    assert sim.max_requests_in_window(1.0) == 2 and sim.max_requests_in_window(10) == 4
    sim.early_retry_grace_s = 0.5      # requests already in flight when the 503 went out
    sim.faults.add("status", status=429, retry_after="3")
    await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT)
    await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT)
    assert sim.early_retries == 1
    clock.now += 1
    await api.call("GET", "/fotoweb/orders/pending/", CT_COUNT)
    assert sim.early_retries == 2


async def test_large_site_and_serve():
    started = time.perf_counter()
    sim = FotowareSimulator(orders=100_000)
    assert time.perf_counter() - started < 3
    assert len(sim.order_ids()) == 100_000 and sim.order_ids()[-1] == "10001"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    task = asyncio.create_task(serve("127.0.0.1", port, orders=100_000))
    async with aiohttp.ClientSession() as http:
        api = Api(http, f"http://127.0.0.1:{port}", sim)
        for _ in range(50):
            try:
                await api.get_token()
                break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.05)
        assert (await api.json("GET", "/fotoweb/orders/", CT_COUNT)) == {"count": 100_000}
        page = await api.json("GET", "/fotoweb/orders/", CT_ORDER_LIST)
        assert len(page["data"]) == 37 and page["data"][0]["href"] == "/fotoweb/orders/110000"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
