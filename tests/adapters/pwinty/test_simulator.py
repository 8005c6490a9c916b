"""The Pwinty v2.2 simulator against a plain aiohttp client over loopback HTTP."""

from __future__ import annotations

import hashlib
import time

import aiohttp
import orjson
import pytest

from ordersync_adapters.pwinty.simulator import FIRST_ID, PwintySimulator
from tests.simulator_support import DISCONNECTED, Clock, simulator_clients

HEADERS = {"X-Pwinty-MerchantId": "sim-merchant", "X-Pwinty-REST-API-Key": "sim-api-key"}
ORDER_KEYS = ["id", "recipientName", "address1", "address2", "addressTownOrCity",
              "stateOrCounty", "postalOrZipCode", "countryCode", "destinationCountryCode",
              "price", "shippingInfo", "status", "payment", "paymentUrl", "qualityLevel",
              "photos", "errorMessage"]
PHOTO_KEYS = ["id", "type", "url", "status", "copies", "sizing", "priceToUser", "price",
              "md5Hash", "previewUrl", "thumbnailUrl", "attributes"]
SHIPMENT_KEYS = ["shipmentId", "trackingNumber", "trackingUrl", "isTracked",
                 "earliestEstimatedArrivalDate", "latestEstimatedArrivalDate"]
ADDRESS = {"recipientName": "Jane Doe", "address1": "1 High Street",
           "addressTownOrCity": "London", "postalOrZipCode": "N1 1AA"}
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\r\n--not-a-boundary\r\n\xff\xd9"
FINAL = ("Complete", "Cancelled")


class Api:
    """A thin client: raw answers as (status, parsed JSON or None)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, sim: PwintySimulator):
        self.http, self.base, self.sim = http, base + "/v2.2", sim

    async def call(self, method: str, path: str, *, headers: dict | None = None, **kw):
        headers = HEADERS if headers is None else headers
        async with self.http.request(method, self.base + path, headers=headers, **kw) as resp:
            raw = await resp.read()
            if raw:
                assert resp.headers["Content-Type"].startswith("application/json")
            return resp.status, orjson.loads(raw) if raw else None

    async def ok(self, method: str, path: str, expect: int = 200, **kw):
        status, body = await self.call(method, path, **kw)
        assert status == expect, (status, body)
        return body

    async def new_order(self, **fields) -> dict:
        body = {"countryCode": "GB", "qualityLevel": "Pro", **ADDRESS, **fields}
        return await self.ok("POST", "/Orders", json=body)

    async def add_url_photo(self, oid, url="https://img.example.com/a.jpg", **fields) -> dict:
        body = {"type": "4x6", "url": url, "copies": 1, "sizing": "Crop", **fields}
        return await self.ok("POST", f"/Orders/{oid}/Photos", json=body)


@pytest.fixture
async def make_api():
    async with simulator_clients(PwintySimulator, Api) as make:
        yield lambda **kwargs: make(**{"clock": Clock(), **kwargs})


@pytest.fixture
async def api(make_api) -> Api:
    return await make_api(orders=40)


# ---------------------------------------------------------------- auth

async def test_auth_headers(api):
    denied = {"Message": "Authorization has been denied for this request."}
    assert await api.call("GET", "/Orders", headers={}) == (401, denied)
    wrong = {**HEADERS, "X-Pwinty-REST-API-Key": "nope"}
    assert await api.call("GET", "/Orders", headers=wrong) == (401, denied)
    only_id = {"X-Pwinty-MerchantId": "sim-merchant"}
    assert (await api.call("GET", "/Country", headers=only_id))[0] == 401
    odd = {"x-pwinty-merchantid": "sim-merchant", "X-PWINTY-REST-API-KEY": "sim-api-key"}
    assert (await api.call("GET", "/Orders?count=1", headers=odd))[0] == 200
    assert [r.status for r in api.sim.requests] == [401, 401, 401, 200]
    assert {r.headers.get("x-pwinty-rest-api-key") for r in api.sim.requests} == {
        None, "<redacted>"}


# ---------------------------------------------------------------- orders

async def test_list_paging(make_api):
    api = await make_api(orders=300)
    newest = FIRST_ID + 299
    page = await api.ok("GET", "/Orders?count=10&offset=0")
    assert [o["id"] for o in page] == list(range(newest, newest - 10, -1))
    page = await api.ok("GET", "/Orders?count=10&offset=295")
    assert [o["id"] for o in page] == [1005, 1004, 1003, 1002, 1001]
    assert await api.ok("GET", "/Orders?count=10&offset=300") == []
    assert await api.ok("GET", "/Orders?count=10&offset=5000") == []
    assert len(await api.ok("GET", "/Orders")) == 100                 # count defaults to 100
    capped = await api.ok("GET", "/Orders?count=1000")
    assert len(capped) == 250 and capped[0]["id"] == newest          # and is capped at 250
    assert await api.ok("GET", "/Orders?Count=2&OFFSET=1") == await api.ok(
        "GET", "/Orders?count=2&offset=1")
    status, body = await api.call("GET", "/Orders?count=ten")
    assert status == 400 and "count" in body["errorMessage"]
    ids = [o["id"] for o in await api.ok("GET", "/Orders?count=250")]
    ids += [o["id"] for o in await api.ok("GET", "/Orders?count=250&offset=250")]
    assert ids == [int(i) for i in api.sim.order_ids()]


async def test_order_shape_and_seeding(make_api):
    api = await make_api(orders=400, seed=3)
    sim = api.sim
    orders = [sim.get_order(i) for i in sim.order_ids()]
    for order in orders:
        assert list(order) == ORDER_KEYS and order["errorMessage"] is None
        assert list(order["shippingInfo"]) == ["price", "shipments"]
        for photo in order["photos"]:
            assert list(photo) == PHOTO_KEYS and isinstance(photo["copies"], str)
        items = sum(p["price"] * int(p["copies"]) for p in order["photos"])
        assert order["price"] == items + order["shippingInfo"]["price"]
        if order["status"] == "Complete":
            shipment = order["shippingInfo"]["shipments"][0]
            assert list(shipment) == SHIPMENT_KEYS and shipment["trackingNumber"]
    # Open orders only among the newest 15%; the older ones are all final.
    open_ids = [o["id"] for o in orders if o["status"] not in FINAL]
    assert open_ids and min(open_ids) > FIRST_ID + 400 - 0.15 * 400 - 1
    statuses = {o["status"] for o in orders}
    assert {"NotYetSubmitted", "Submitted", "Complete", "Cancelled"} <= statuses
    sizes = [len(orjson.dumps(o)) for o in orders]
    assert 1000 <= sum(sizes) / len(sizes) <= 1500
    assert PwintySimulator(seed=3).get_order(1050) == PwintySimulator(seed=3).get_order(1050)
    assert await api.ok("GET", f"/Orders/{orders[5]['id']}") == orders[5]


async def test_create_with_json_and_with_form(api):
    sim = api.sim
    order = await api.ok("POST", "/Orders", json={
        "countryCode": "GB", "qualityLevel": "Pro", "payment": "InvoiceRecipient",
        "useTrackedShipping": True, "destinationCountryCode": "IE", **ADDRESS})
    assert list(order) == ORDER_KEYS
    assert (order["status"], order["price"], order["photos"]) == ("NotYetSubmitted", 0, [])
    assert order["destinationCountryCode"] == "IE" and order["paymentUrl"]
    form = {"countryCode": "us", "qualityLevel": "standard", "RecipientName": "Joe Bloggs",
            "address1": "5 Main St", "useTrackedShipping": "false", "email": "j@example.com"}
    second = await api.ok("POST", "/Orders", data=form)
    assert (second["countryCode"], second["qualityLevel"], second["payment"]) == (
        "US", "Standard", "InvoiceMe")
    assert second["recipientName"] == "Joe Bloggs" and second["destinationCountryCode"] == "US"
    assert second["id"] == order["id"] + 1 and sim.order_ids()[0] == str(second["id"])
    assert [(e.verb, e.order_id) for e in sim.effects] == [
        ("CREATE", str(order["id"])), ("CREATE", str(second["id"]))]
    assert sim.effects[1].body["recipientName"] == "Joe Bloggs"


@pytest.mark.parametrize("fields, words", [
    ({"qualityLevel": "Pro"}, "countryCode is required"),
    ({"countryCode": "GB"}, "qualityLevel is required"),
    ({"countryCode": "GB", "qualityLevel": "Ultra"}, "qualityLevel 'Ultra' is not one of"),
    ({"countryCode": "XX", "qualityLevel": "Pro"}, "countryCode 'XX'"),
    ({"countryCode": "JP", "qualityLevel": "Pro"}, "no products"),
    ({"countryCode": "GB", "qualityLevel": "Pro", "payment": "Cash"}, "payment"),
    ({"countryCode": "GB", "qualityLevel": "Pro", "useTrackedShipping": "maybe"}, "true or"),
])
async def test_bad_create_is_400_with_an_empty_order(api, fields, words):
    status, body = await api.call("POST", "/Orders", data=fields)
    assert status == 400 and words in body["errorMessage"]
    assert list(body) == ORDER_KEYS and {v for k, v in body.items() if k != "errorMessage"} == {
        None}
    assert api.sim.effects == []


async def test_unsupported_body_type_is_415(api):
    status, body = await api.call("POST", "/Orders", data=b"countryCode=GB",
                                  headers={**HEADERS, "Content-Type": "text/plain"})
    assert status == 415 and body["errorMessage"]


async def test_update_rules(api):
    sim = api.sim
    order = await api.new_order()
    oid = order["id"]
    form = {"address1": "2 Low Road", "address2": "", "countryCode": "GB", "payment": "InvoiceMe",
            "qualityLevel": "Pro", "id": str(oid), "destinationCountryCode": "FR"}
    updated = await api.ok("PUT", f"/Orders/{oid}", data=form)     # unchanged extras: fine
    assert (updated["address1"], updated["address2"], updated["destinationCountryCode"]) == (
        "2 Low Road", None, "FR")
    assert updated["recipientName"] == "Jane Doe"
    echoed = await api.ok("PUT", f"/Orders/{oid}", json={**updated, "recipientName": "J. Doe"})
    assert echoed == {**updated, "recipientName": "J. Doe"}        # a read order sent back
    status, body = await api.call("PUT", f"/Orders/{oid}", json={"countryCode": "US"})
    assert status == 400 and "countryCode cannot be changed" in body["errorMessage"]
    assert (await api.call("PUT", f"/Orders/{oid}", json={"qualityLevel": "Standard"}))[0] == 400
    assert (await api.call("PUT", "/Orders/999999", json={"address1": "x"}))[0] == 404
    submitted = sim.add_order("Submitted")
    status, body = await api.call("PUT", f"/Orders/{submitted}", json={"address1": "x"})
    assert status == 403 and list(body) == ORDER_KEYS and body["errorMessage"]
    assert [e.verb for e in sim.effects] == ["CREATE", "UPDATE", "UPDATE"]


# ---------------------------------------------------------------- photos

async def test_photos_by_url_json_and_form(api):
    sim = api.sim
    oid = (await api.new_order())["id"]
    photo = await api.add_url_photo(oid, copies=2, md5Hash="79054025255FB1A26E4BC422AEF54EB4")
    assert list(photo) == PHOTO_KEYS
    assert (photo["status"], photo["copies"], photo["price"]) == ("NotYetDownloaded", "2", 90)
    assert photo["md5Hash"] == "79054025255fb1a26e4bc422aef54eb4"
    assert photo["previewUrl"] is None and photo["attributes"] == {}
    form = {"Type": "frame_8x10", "url": "https://img.example.com/b.jpg", "copies": "1",
            "sizing": "shrinktofit", "attributes[frame_colour]": "black"}
    framed = await api.ok("POST", f"/Orders/{oid}/Photos", data=form)
    assert (framed["type"], framed["sizing"], framed["copies"]) == ("frame_8x10", "ShrinkToFit",
                                                                   "1")
    assert framed["attributes"] == {"frame_colour": "black"}
    empty = await api.ok("POST", f"/Orders/{oid}/Photos", data={"type": "5x7", "copies": "1",
                                                                 "sizing": "Crop"})
    assert empty["status"] == "AwaitingUrlOrData" and empty["url"] is None
    listed = await api.ok("GET", f"/Orders/{oid}/Photos")
    assert [p["id"] for p in listed] == [photo["id"], framed["id"], empty["id"]]
    assert await api.ok("GET", f"/Orders/{oid}/Photos/{framed['id']}") == framed
    order = await api.ok("GET", f"/Orders/{oid}")
    shipping = order["shippingInfo"]["price"]
    assert shipping == 150 + 795                                    # Prints + Frames bands
    assert order["price"] == 90 * 2 + framed["price"] + empty["price"] + shipping
    assert sim.photo_ids(oid) == [str(p["id"]) for p in listed]
    assert [e.verb for e in sim.effects] == ["CREATE"] + ["ADD_PHOTO"] * 3


@pytest.mark.parametrize("fields, words", [
    ({"type": "9x9", "copies": 1, "sizing": "Crop"}, "type '9x9'"),
    ({"copies": 1, "sizing": "Crop"}, "type is required"),
    ({"type": "4x6", "copies": 1, "sizing": "Stretch"}, "sizing 'Stretch'"),
    ({"type": "4x6", "copies": 0, "sizing": "Crop"}, "copies"),
    ({"type": "4x6", "copies": "two", "sizing": "Crop"}, "copies"),
    ({"type": "4x6", "copies": 1, "sizing": "Crop", "url": "ftp://x/y.jpg"}, "http"),
    ({"type": "4x6", "copies": 1, "sizing": "Crop", "md5Hash": "abc"}, "md5Hash"),
    ({"type": "4x6", "copies": 1, "sizing": "Crop", "priceToUser": 200}, "InvoiceRecipient"),
    ({"type": "frame_8x10", "copies": 1, "sizing": "Crop"}, "frame_colour is required"),
    ({"type": "frame_8x10", "copies": 1, "sizing": "Crop",
      "attributes": {"frame_colour": "gold"}}, "frame_colour must be one of"),
])
async def test_bad_photos_are_400(api, fields, words):
    oid = (await api.new_order())["id"]
    status, body = await api.call("POST", f"/Orders/{oid}/Photos", json=fields)
    assert status == 400 and words in body["errorMessage"], body
    assert list(body) == PHOTO_KEYS + ["errorMessage"] and body["id"] is None
    assert api.sim.get_order(oid)["photos"] == []


def upload(md5: str | None = None, content: bytes = JPEG, **fields) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for key, value in {"type": "4x6", "copies": "3", "sizing": "Crop", **fields}.items():
        form.add_field(key, value)
    if md5:
        form.add_field("md5Hash", md5)
    form.add_field("file", content, filename="print.jpg", content_type="image/jpeg")
    return form


async def test_multipart_upload_checks_md5_and_jpeg(api):
    sim = api.sim
    oid = (await api.new_order())["id"]
    md5 = hashlib.md5(JPEG).hexdigest()
    photo = await api.ok("POST", f"/Orders/{oid}/Photos", data=upload(md5))
    assert (photo["status"], photo["md5Hash"], photo["url"], photo["copies"]) == (
        "Ok", md5, None, "3")
    assert photo["previewUrl"] and photo["thumbnailUrl"]
    assert sim.effects[-1].body["file"] == {"filename": "print.jpg", "size": len(JPEG),
                                            "md5": md5}
    status, body = await api.call("POST", f"/Orders/{oid}/Photos", data=upload("0" * 32))
    assert status == 400 and "does not match" in body["errorMessage"]
    text = b"this is not a jpeg"
    invalid = await api.ok("POST", f"/Orders/{oid}/Photos", data=upload(content=text))
    assert invalid["status"] == "Invalid" and invalid["md5Hash"] == hashlib.md5(text).hexdigest()
    both = upload(url="https://img.example.com/a.jpg")
    assert (await api.call("POST", f"/Orders/{oid}/Photos", data=both))[0] == 400
    assert len(sim.get_order(oid)["photos"]) == 2


async def test_batch(api):
    sim = api.sim
    oid = (await api.new_order())["id"]
    batch = [{"type": "4x6", "url": "https://img.example.com/1.jpg", "copies": "2",
              "sizing": "Crop"},
             {"type": "A4", "url": "https://img.example.com/2.jpg", "copies": 1,
              "sizing": "ShrinkToExactFit"}]
    answer = await api.ok("POST", f"/Orders/{oid}/Photos/Batch", json=batch)
    assert answer["errorMessage"] is None
    assert [(p["type"], p["copies"], p["status"]) for p in answer["items"]] == [
        ("4x6", "2", "NotYetDownloaded"), ("A4", "1", "NotYetDownloaded")]
    assert sim.effects[-1].verb == "ADD_PHOTOS" and len(sim.effects[-1].body) == 2
    no_url = batch + [{"type": "4x6", "copies": 1, "sizing": "Crop"}]
    status, body = await api.call("POST", f"/Orders/{oid}/Photos/Batch", json=no_url)
    assert status == 400 and body == {"errorMessage": body["errorMessage"], "items": None}
    assert "photo 3: url is required" in body["errorMessage"]
    assert (await api.call("POST", f"/Orders/{oid}/Photos/Batch", json=batch[0]))[0] == 400
    assert (await api.call("POST", f"/Orders/{oid}/Photos/Batch", data=batch[0]))[0] == 415
    assert len(sim.get_order(oid)["photos"]) == 2                     # all or nothing


async def test_delete_rules(api):
    sim = api.sim
    oid = (await api.new_order())["id"]
    keep, drop = await api.add_url_photo(oid), await api.add_url_photo(oid, copies=3)
    status, body = await api.call("DELETE", f"/Orders/{oid}/Photos/{drop['id']}")
    assert (status, body) == (200, None)
    order = sim.get_order(oid)
    assert [p["id"] for p in order["photos"]] == [keep["id"]] and order["price"] == 90 + 150
    status, body = await api.call("DELETE", f"/Orders/{oid}/Photos/{drop['id']}")
    assert status == 404 and body["errorMessage"] == "The photo with the specified id was not found"
    assert list(body) == PHOTO_KEYS + ["errorMessage"]
    submitted = sim.add_order("Submitted")
    photo = sim.photo_ids(submitted)[0]
    assert (await api.call("DELETE", f"/Orders/{submitted}/Photos/{photo}"))[0] == 403
    assert [e.verb for e in sim.effects] == ["CREATE", "ADD_PHOTO", "ADD_PHOTO", "DELETE_PHOTO"]
    assert sim.effects[-1].body == {"photoId": drop["id"]}


async def test_adding_photos_to_a_submitted_order_is_403(api):
    sim = api.sim
    for status in ("Submitted", "Complete", "Cancelled"):
        oid = sim.add_order(status)
        code, body = await api.call("POST", f"/Orders/{oid}/Photos",
                                    json={"type": "4x6", "copies": 1, "sizing": "Crop"})
        assert (code, body["errorMessage"]) == (
            403, "The order is in a state where photos cannot be added")
        code, body = await api.call("POST", f"/Orders/{oid}/Photos/Batch", json=[])
        assert code == 403 and body["items"] is None
    assert sim.effects == []


# ---------------------------------------------------------------- readiness and status

async def test_submission_status_reasons(make_api):
    api = await make_api(orders=10, download_delay_s=5)
    sim, clock = api.sim, api.sim._clock
    bare = await api.ok("POST", "/Orders", json={"countryCode": "GB", "qualityLevel": "Pro"})
    readiness = await api.ok("GET", f"/Orders/{bare['id']}/SubmissionStatus")
    assert readiness == {"id": bare["id"], "isValid": False, "photos": [],
                         "generalErrors": ["NoItemsInOrder", "PostalAddressNotSet"]}
    oid = (await api.new_order())["id"]
    ok = await api.add_url_photo(oid)
    lost = await api.add_url_photo(oid, url="https://img.example.com/missing.jpg",
                                   sizing="ShrinkToFit")
    text = await api.add_url_photo(oid, url="https://img.example.com/readme.txt")
    empty = await api.ok("POST", f"/Orders/{oid}/Photos", json={"type": "4x6", "copies": 1,
                                                                 "sizing": "Crop"})
    readiness = await api.ok("GET", f"/Orders/{oid}/SubmissionStatus")
    assert readiness["generalErrors"] == ["ItemsContainingErrors"]
    assert {p["id"]: p["errors"] for p in readiness["photos"]} == {
        ok["id"]: ["NoImageFile"], lost["id"]: ["NoImageFile"], text["id"]: ["NoImageFile"],
        empty["id"]: ["NoImageFile"]}
    clock.now += 5
    readiness = await api.ok("GET", f"/Orders/{oid}/SubmissionStatus")
    assert [(p["errors"], p["warnings"]) for p in readiness["photos"]] == [
        ([], ["CroppingWillOccur"]), (["FileCouldNotBeDownloaded"], []),
        (["InvalidImagefile"], []), (["NoImageFile"], [])]
    for photo in (lost, text, empty):
        await api.ok("DELETE", f"/Orders/{oid}/Photos/{photo['id']}")
    assert (await api.ok("GET", f"/Orders/{oid}/SubmissionStatus"))["isValid"] is True
    sim.balance_insufficient = True
    readiness = await api.ok("GET", f"/Orders/{oid}/SubmissionStatus")
    assert (readiness["isValid"], readiness["generalErrors"]) == (
        False, ["AccountBalanceInsufficient"])
    status, body = await api.call("GET", "/Orders/999999/SubmissionStatus")
    assert status == 404 and body == {"id": None, "isValid": None, "generalErrors": None,
                                      "photos": None, "errorMessage": body["errorMessage"]}


async def test_submit_and_cancel_rules(api):
    sim = api.sim
    oid = (await api.new_order())["id"]
    status, body = await api.call("POST", f"/Orders/{oid}/Status", data={"status": "Submitted"})
    assert status == 400 and "NoItemsInOrder" in body["errorMessage"]
    photo = await api.add_url_photo(oid)
    status, body = await api.call("POST", f"/Orders/{oid}/Status", json={"status": "Submitted"})
    assert status == 400 and f"photo {photo['id']}: NoImageFile" in body["errorMessage"]
    assert list(body) == ORDER_KEYS
    sim._clock.now += sim.download_delay_s
    assert await api.call("POST", f"/Orders/{oid}/Status", data={"status": "submitted"}) == (
        200, None)
    assert sim.get_order(oid)["status"] == "Submitted"
    status, body = await api.call("POST", f"/Orders/{oid}/Status", data={"status": "Submitted"})
    assert status == 403 and "Submitted" in body["errorMessage"]
    assert (await api.call("POST", f"/Orders/{oid}/Status", data={"status": "Cancelled"}))[0] == 403
    complete = sim.add_order("Complete")
    assert (await api.call("POST", f"/Orders/{complete}/Status",
                           data={"status": "Cancelled"}))[0] == 403
    assert (await api.call("POST", f"/Orders/{oid}/Status", data={"status": "Complete"}))[0] == 400
    assert (await api.call("POST", f"/Orders/{oid}/Status", data={}))[0] == 400
    assert (await api.call("POST", "/Orders/999999/Status", data={"status": "Cancelled"}))[0] == 404
    assert [(e.verb, e.order_id, e.body) for e in sim.effects[-1:]] == [
        ("STATUS", str(oid), {"status": "Submitted"})]


async def test_awaiting_payment_and_cancel(api):
    sim = api.sim
    invoice_me = (await api.new_order())["id"]
    status, body = await api.call("POST", f"/Orders/{invoice_me}/Status",
                                  data={"status": "AwaitingPayment"})
    assert status == 403 and "InvoiceRecipient" in body["errorMessage"]
    oid = (await api.new_order(payment="InvoiceRecipient"))["id"]
    await api.ok("POST", f"/Orders/{oid}/Status", data={"status": "AwaitingPayment"})
    assert sim.get_order(oid)["status"] == "AwaitingPayment"
    await api.add_url_photo(oid, priceToUser=250)                   # still allowed
    assert (await api.call("POST", f"/Orders/{oid}/Status",
                           data={"status": "AwaitingPayment"}))[0] == 403
    await api.ok("POST", f"/Orders/{oid}/Status", data={"status": "Cancelled"})
    assert sim.get_order(oid)["status"] == "Cancelled"
    assert (await api.call("POST", f"/Orders/{oid}/Status", data={"status": "Cancelled"}))[0] == 403


# ---------------------------------------------------------------- time

async def test_photo_status_progression(make_api):
    api = await make_api(orders=5, download_delay_s=5)
    sim, clock = api.sim, api.sim._clock
    oid = (await api.new_order())["id"]
    ok = await api.add_url_photo(oid)
    lost = await api.add_url_photo(oid, url="https://img.example.com/missing/x.jpg")
    text = await api.add_url_photo(oid, url="https://img.example.com/notes.TXT?v=1")
    clock.now += 4.9
    statuses = [p["status"] for p in await api.ok("GET", f"/Orders/{oid}/Photos")]
    assert statuses == ["NotYetDownloaded"] * 3
    clock.now += 0.1
    photos = await api.ok("GET", f"/Orders/{oid}/Photos")
    assert [p["status"] for p in photos] == ["Ok", "FileNotFoundAtUrl", "Invalid"]
    assert photos[0]["previewUrl"] and photos[0]["md5Hash"]
    assert photos[1]["previewUrl"] is None and photos[1]["md5Hash"] is None
    assert [p["id"] for p in photos] == [ok["id"], lost["id"], text["id"]]
    listed = await api.ok("GET", "/Orders?count=1")
    assert listed[0]["photos"] == photos
    assert len(sim.effects) == 4                   # downloads are not client effects


async def test_submitted_orders_complete_with_a_shipment(make_api):
    api = await make_api(orders=200, complete_after_s=30)
    sim, clock = api.sim, api.sim._clock
    seeded = [i for i in sim.order_ids() if sim.get_order(i)["status"] == "Submitted"]
    assert seeded and all(not sim.get_order(i)["shippingInfo"]["shipments"] for i in seeded)
    new = sim.add_order("Submitted", useTrackedShipping=True)
    clock.now += 29.9
    assert sim.get_order(new)["status"] == "Submitted"
    clock.now += 0.1
    listed = {o["id"]: o for o in await api.ok("GET", "/Orders?count=250")}
    for oid in [*seeded, new]:
        order = listed[int(oid)]
        assert order["status"] == "Complete", oid
        [shipment] = order["shippingInfo"]["shipments"]
        assert shipment["trackingNumber"] and shipment["trackingUrl"].startswith("https://")
    assert listed[int(new)]["shippingInfo"]["shipments"][0]["isTracked"] is True
    # Paid orders waiting for their images are submitted once the images are in.
    waiting = sim.add_order("PaidAwaitingImageUpload")
    assert sim.get_order(waiting)["photos"][0]["status"] == "NotYetDownloaded"
    clock.now += sim.download_delay_s
    assert sim.get_order(waiting)["status"] == "Submitted"
    clock.now += 30
    assert (await api.ok("GET", f"/Orders/{waiting}"))["status"] == "Complete"


async def test_helpers(api):
    sim = api.sim
    oid = sim.add_order()
    assert sim.order_ids()[0] == oid and sim.get_order(oid)["photos"] == []
    assert sim.get_order(oid)["status"] == "NotYetSubmitted"
    other = sim.add_order("NotYetSubmitted", photos=2, payment="InvoiceRecipient")
    order = sim.get_order(other)
    assert len(order["photos"]) == 2 and order["paymentUrl"]
    assert all(p["priceToUser"] for p in order["photos"])
    assert len(set(sim.photo_ids(other))) == 2
    sim.set_status(other, "Complete")
    shipments = sim.get_order(other)["shippingInfo"]["shipments"]
    assert len(shipments) == 1
    added = sim.add_shipment(other)
    assert sim.get_order(other)["shippingInfo"]["shipments"][-1] == added
    assert added["shipmentId"] != shipments[0]["shipmentId"]
    with pytest.raises(KeyError):
        sim.get_order(999999)
    with pytest.raises(ValueError):
        sim.add_order(created="yesterday")


# ---------------------------------------------------------------- errors and faults

async def test_404_bodies(api):
    status, body = await api.call("GET", "/Orders/999999")
    assert status == 404 and list(body) == ORDER_KEYS
    assert body["errorMessage"] == "The order with the specified id was not found"
    assert all(value is None for key, value in body.items() if key != "errorMessage")
    assert (await api.call("GET", "/Orders/abc"))[0] == 404
    oid = api.sim.order_ids()[0]
    status, body = await api.call("GET", f"/Orders/{oid}/Photos/1")
    assert status == 404 and list(body) == PHOTO_KEYS + ["errorMessage"]
    assert body["errorMessage"] == "The photo with the specified id was not found"
    assert (await api.call("GET", "/Orders/999999/Photos"))[0] == 404


async def test_faults(api):
    sim = api.sim
    oid = (await api.new_order())["id"]
    await api.add_url_photo(oid)
    sim._clock.now += 10
    sim.faults.add("apply_then_drop", path_prefix="/v2.2/Orders/")
    assert (await api.call("GET", f"/Orders/{oid}"))[0] == 200        # reads pass
    with pytest.raises(DISCONNECTED):
        await api.call("POST", f"/Orders/{oid}/Status", data={"status": "Submitted"})
    assert (sim.effects[-1].verb, sim.effects[-1].order_id) == ("STATUS", str(oid))
    assert sim.get_order(oid)["status"] == "Submitted" and sim.requests[-1].status == 0
    sim.faults.add("status", status=503, retry_after="2", method="GET")
    status, body = await api.call("GET", "/Orders")
    assert status == 503 and "503" in body["errorMessage"]
    sim._clock.now += 1
    await api.call("GET", "/Country")
    assert sim.early_retries == 1
    sim.faults.add("malformed", path_prefix="/v2.2/Orders?")
    async with api.http.get(api.base + "/Orders?count=2", headers=HEADERS) as resp:
        assert resp.status == 200
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(await resp.read())
    sim.faults.add("drop", method="DELETE", times=2)   # aiohttp retries a DELETE once
    draft = sim.add_order(photos=1)
    with pytest.raises(DISCONNECTED):
        await api.call("DELETE", f"/Orders/{draft}/Photos/{sim.photo_ids(draft)[0]}")
    assert [r.status for r in sim.requests[-2:]] == [0, 0]
    assert sim.effects[-1].verb == "STATUS" and len(sim.photo_ids(draft)) == 1  # not applied
    sim.rate_limit = (2, 10.0)
    codes = [(await api.call("GET", "/Country"))[0] for _ in range(3)]
    assert codes == [200, 200, 429] and sim.rate_limited == 1


async def test_catalogue_and_countries(api):
    countries = await api.ok("GET", "/Country")
    assert {"countryCode": "GB", "name": "United Kingdom", "hasProducts": True} in countries
    assert any(not c["hasProducts"] for c in countries)
    catalogue = await api.ok("GET", "/Catalogue/GB/Pro")
    assert list(catalogue) == ["country", "countryCode", "qualityLevel", "items",
                               "shippingRates"]
    names = [i["name"] for i in catalogue["items"]]
    assert names == ["4x6", "5x7", "8x10", "8x12", "10x15_cm", "13x18_cm", "A4", "frame_8x10"]
    frame = catalogue["items"][-1]
    assert list(frame) == ["name", "description", "priceGBP", "priceUSD",
                           "imageHorizontalSize", "imageVerticalSize", "sizeUnits",
                           "recommendedHorizontalResolution", "recommendedVerticalResolution",
                           "shippingBand", "attributes"]
    assert frame["attributes"] == [{"name": "frame_colour",
                                    "validValues": ["silver", "black", "white"]}]
    standard = await api.ok("GET", "/Catalogue/gb/standard")
    assert standard["items"][0]["priceGBP"] < catalogue["items"][0]["priceGBP"]
    assert {r["band"] for r in catalogue["shippingRates"]} == {"Prints", "LargePrints", "Frames"}
    assert (await api.ok("GET", "/Catalogue/JP/Pro"))["items"] == []
    status, body = await api.call("GET", "/Catalogue/XX/Pro")
    assert status == 400 and body["items"] is None and body["errorMessage"]


def test_large_account_is_lazy():
    started = time.perf_counter()
    sim = PwintySimulator(orders=100_000)
    assert time.perf_counter() - started < 0.5
    ids = sim.order_ids()
    assert len(ids) == 100_000 and ids[0] == str(FIRST_ID + 99_999) and ids[-1] == "1001"
    assert sim.get_order(ids[-1])["status"] in FINAL
    assert len(sim._store.bytes) == 1
