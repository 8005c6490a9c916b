"""The Pwinty commands through the real command line: sync, orders, photos, print orders,
submit, cancel and ``simulate pwinty``.

Every command runs as a subprocess against a Pwinty simulator on loopback (served by the
test's event loop, real time, photos downloaded 0.2 s after they are added), over a ledger
filled by a real ``sync --once``. What each command did is checked three ways: its exit code
and output, the ledger, and the simulator's own log of requests and applied changes.
Refusals must be one stderr line ``ordersync: error: ...`` and exit 2, with nothing queued
and nothing sent to Pwinty.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from ordersync_adapters.pwinty.mapping import STATES
from ordersync_adapters.pwinty.simulator import PHOTO_STATUSES, PwintySimulator, build_catalogue
from tests.cli_support import (
    KEY_ENV,
    CliResult,
    arun_cli,
    closed_port,
    json_data,
    one_error_line,
    pwinty_toml,
    start_cli,
)
from tests.outbox_support import read_actions, read_orders

V = "prints"
API_KEY = "pw-Key-5c1d93e07a4b2f68-zzqv"      # long and unusual: finding it means a leak
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8
LISTING_KEYS = {"vendor", "id", "state", "vendor_state", "reference", "created", "modified",
                "items"}
PHOTO_ERRORS = {"FileNotFoundAtUrl": ["FileCouldNotBeDownloaded"],
                "AwaitingUrlOrData": ["NoImageFile"], "NotYetDownloaded": ["NoImageFile"],
                "Invalid": ["InvalidImagefile"]}
ADDRESS = {"recipientName": "Ada Lovelace", "address1": "12 St James's Square",
           "addressTownOrCity": "London", "postalOrZipCode": "SW1Y 4JH"}
QUEUED = re.compile(r"^action #(\d+): (\w+) (\S+) (\w+)(: .*)?$")


@dataclass
class Site:
    """A synced ledger over a running Pwinty simulator, and a way to run commands on it."""

    sim: PwintySimulator
    config: Path
    tmp: Path
    drafts: list[str] = field(default_factory=list)      # NotYetSubmitted, no photos
    ready: list[str] = field(default_factory=list)       # NotYetSubmitted, two Ok photos
    submitted: str = ""

    async def cli(self, *args: str, key: str = API_KEY, timeout: float = 30.0) -> CliResult:
        return await arun_cli("--config", str(self.config), *args, env={KEY_ENV: key},
                              cwd=self.tmp, timeout=timeout)

    def effects(self, order_id: str | None = None) -> list[tuple[str, str]]:
        return [(e.verb, e.order_id) for e in self.sim.effects
                if order_id is None or e.order_id == order_id]

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.sim.requests if r.method != "GET"]

    def outbox(self) -> list:
        return read_actions(self.tmp / "ledger.db")

    def ledger_order(self, order_id: str) -> dict | None:
        return read_orders(self.tmp / "ledger.db", V, [order_id])[order_id]


@pytest.fixture
async def site(tmp_path) -> Site:
    # open_share=1: every seeded order is recent, so drafts with photos in every status exist
    sim = PwintySimulator(orders=30, open_share=1.0, clock=time.time, download_delay_s=0.2,
                          complete_after_s=3600, api_key=API_KEY)
    base = await sim.start()
    config = tmp_path / "ordersync.toml"
    config.write_text(pwinty_toml(base + "/v2.2", tmp_path / "ledger.db"), encoding="utf-8")
    site = Site(sim, config, tmp_path)
    site.drafts = [sim.add_order("NotYetSubmitted", photos=0) for _ in range(3)]
    site.ready = [sim.add_order("NotYetSubmitted", photos=2) for _ in range(2)]  # Ok photos
    site.submitted = sim.add_order("Submitted")
    try:
        synced = await site.cli("sync", "--once")
        assert synced.returncode == 0, synced
        yield site
    finally:
        await sim.stop()


def ref(order_id: str) -> str:
    return f"{V}:{order_id}"


def waited(result: CliResult) -> list[tuple[int, str, str, str, str]]:
    """(id, kind, order, state, detail) of every line a --wait command printed."""
    lines = result.stdout.splitlines()
    parsed = [QUEUED.match(line) for line in lines]
    assert lines and all(parsed), result
    return [(int(m[1]), m[2], m[3], m[4], (m[5] or "")[2:]) for m in parsed]


def photo_keys(order: dict) -> list[tuple]:
    return [(p["url"], p["md5Hash"], p["type"], p["copies"], p["sizing"]) for p in order["photos"]]


# ------------------------------------------------------------------ sync and orders

async def test_sync_then_orders_list_and_show(site):
    listing, draft_show, ready_show, submitted_show = await asyncio.gather(
        site.cli("orders", "list", "--vendor", V, "--json"),
        site.cli("orders", "show", ref(site.drafts[0]), "--json"),
        site.cli("orders", "show", ref(site.ready[0]), "--json"),
        site.cli("orders", "show", ref(site.submitted), "--json"))
    for result in (listing, draft_show, ready_show, submitted_show):
        assert result.returncode == 0, result
    orders = json_data(listing)
    assert [o["id"] for o in orders] == site.sim.order_ids()       # newest first, all of them
    for order in orders:
        assert LISTING_KEYS <= set(order), order
        vendor = site.sim.get_order(order["id"])
        assert order["vendor"] == V
        assert (order["vendor_state"], order["state"]) == (
            vendor["status"], STATES[vendor["status"]].value)
        assert (order["reference"], order["created"], order["modified"]) == (None, None, None)
        assert [i["key"] for i in order["items"]] == [str(p["id"]) for p in vendor["photos"]]

    # a fresh draft: no photos, and what Pwinty says blocks its submission
    draft = json_data(draft_show)
    assert draft["items"] == [] and draft["state"] == "draft"
    assert draft["data"]["submission"] == {"isValid": False, "generalErrors": ["NoItemsInOrder"],
                                           "photoErrors": {}}
    assert draft["data"]["price_minor"] == 0

    # a draft whose photos are downloaded: valid, priced, its photos as items
    ready = json_data(ready_show)
    vendor = site.sim.get_order(site.ready[0])
    assert ready["data"]["submission"]["isValid"] is True
    assert ready["data"]["price_minor"] == vendor["price"] > 0
    assert [(i["key"], i["title"], i["quantity"], i["status"]) for i in ready["items"]] == [
        (str(p["id"]), p["type"], int(p["copies"]), "Ok") for p in vendor["photos"]]
    assert [e["to_vendor_state"] for e in ready["events"]] == ["NotYetSubmitted"]

    # a submitted order carries no submission check
    submitted = json_data(submitted_show)
    assert submitted["vendor_state"] == "Submitted" and "submission" not in submitted["data"]

    # a seeded draft with photos in several statuses: each status and each photo's errors
    mixed = next(o for o in orders if o["vendor_state"] == "NotYetSubmitted"
                 and len({i["status"] for i in o["items"]}) >= 2
                 and any(i["status"] in PHOTO_ERRORS for i in o["items"]))
    vendor = site.sim.get_order(mixed["id"])
    assert [(i["key"], i["status"]) for i in mixed["items"]] == [
        (str(p["id"]), p["status"]) for p in vendor["photos"]]
    assert {i["status"] for i in mixed["items"]} <= set(PHOTO_STATUSES)
    submission = mixed["data"]["submission"]
    assert submission["isValid"] is False and "ItemsContainingErrors" in submission[
        "generalErrors"]
    assert submission["photoErrors"] == {str(p["id"]): PHOTO_ERRORS[p["status"]]
                                         for p in vendor["photos"] if p["status"] in PHOTO_ERRORS}


async def test_a_wrong_api_key_fails_the_sync_with_one_line(site):
    result = await site.cli("sync", "--once", key="not-the-" + API_KEY[::-1])
    line = one_error_line(result, 1, "401", "merchant_id", "API key")
    assert V in line
    assert API_KEY[::-1] not in result.stdout + result.stderr        # the key is never shown


# ------------------------------------------------------------------ photos

async def test_photos_add_by_url_by_batch_and_by_upload(site, tmp_path):
    single, batch, upload = site.drafts
    image = tmp_path / "holiday.jpg"
    image.write_bytes(JPEG)
    md5 = hashlib.md5(JPEG).hexdigest()

    one = await site.cli("photos", "add", ref(single), "--url", "https://img.example.com/a.jpg",
                         "--type", "4x6", "--copies", "2", "--wait")
    assert one.returncode == 0, one
    assert [(k, o, s) for _, k, o, s, _ in waited(one)] == [("add_photo", ref(single),
                                                             "succeeded")]

    many = await site.cli("photos", "add", ref(batch), "--url", "https://img.example.com/b1.jpg",
                          "--url", "https://img.example.com/b2.jpg", "--type", "5x7",
                          "--sizing", "ShrinkToFit", "--wait")
    assert many.returncode == 0, many
    assert [(k, s) for _, k, _, s, _ in waited(many)] == [("add_photos", "succeeded")]

    sent = await site.cli("photos", "add", ref(upload), "--file", str(image), "--type", "8x10",
                          "--wait")
    assert sent.returncode == 0, sent
    assert [(k, s) for _, k, _, s, _ in waited(sent)] == [("add_photo", "succeeded")]

    assert site.effects() == [("ADD_PHOTO", single), ("ADD_PHOTOS", batch),
                              ("ADD_PHOTO", upload)]
    [(url, _, kind, copies, sizing)] = photo_keys(site.sim.get_order(single))
    assert (url, kind, copies, sizing) == ("https://img.example.com/a.jpg", "4x6", "2", "Crop")
    assert [(p["url"], p["type"], p["copies"], p["sizing"])
            for p in site.sim.get_order(batch)["photos"]] == [
        ("https://img.example.com/b1.jpg", "5x7", "1", "ShrinkToFit"),
        ("https://img.example.com/b2.jpg", "5x7", "1", "ShrinkToFit")]
    [stored] = site.sim.get_order(upload)["photos"]
    assert (stored["url"], stored["md5Hash"], stored["type"], stored["status"]) == (
        None, md5, "8x10", "Ok")
    [request] = [r for r in site.sim.requests if r.method == "POST"
                 and r.path == f"/v2.2/Orders/{upload}/Photos"]
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert JPEG in request.body and md5.encode() in request.body    # md5 checked by Pwinty
    [batch_request] = [r for r in site.sim.requests if r.path.endswith("/Photos/Batch")]
    assert len(json.loads(batch_request.body)) == 2

    # the ledger holds each order's photos as items, with their statuses
    shown = await site.cli("orders", "show", ref(upload), "--json")
    assert shown.returncode == 0, shown
    [item] = json_data(shown)["items"]
    assert (item["key"], item["title"], item["status"], item["data"]["md5Hash"]) == (
        str(stored["id"]), "8x10", "Ok", md5)
    copy = site.ledger_order(batch)
    assert [(i["key"], i["data"]["url"]) for i in copy["items"]] == [
        (str(p["id"]), p["url"]) for p in site.sim.get_order(batch)["photos"]]
    assert {i["status"] for i in copy["items"]} <= {"NotYetDownloaded", "Ok"}


async def test_photos_add_refusals_exit_2_with_one_line(site, tmp_path):
    draft = site.drafts[0]
    names = [i["name"] for i in build_catalogue("GB", "Pro")["items"]]
    image = tmp_path / "p.jpg"
    image.write_bytes(JPEG)
    url = ("--url", "https://img.example.com/x.jpg")
    cases = [
        (["photos", "add", ref(site.submitted), *url, "--type", "4x6"],
         [f"{ref(site.submitted)} is Submitted", "NotYetSubmitted or AwaitingPayment"]),
        (["photos", "add", ref(draft), *url, "--type", "poster_9x9"],
         ["photo type 'poster_9x9' is not in the", "catalogue; it has " + ", ".join(names)]),
        (["photos", "add", ref(draft), *url, "--type", "4x6", "--copies", "0"],
         ["--copies: must be at least 1, got 0"]),
        (["photos", "add", ref(draft), "--file", str(tmp_path / "gone.jpg"), "--type", "4x6"],
         [f"--file: {tmp_path / 'gone.jpg'}: cannot read it (No such file or directory)"]),
        (["photos", "add", ref(draft), *url, "--file", str(image), "--type", "4x6"],
         ["argument --file: not allowed with argument --url"]),
        (["photos", "add", ref(draft), "--file", "/dev/zero", "--type", "4x6"],   # size 0
         ["--file: /dev/zero: more than", "bytes, too large for an upload"]),
        (["photos", "add", ref(draft), *url, "--type", "4x6", "--wait"] + ["--timeout", "0"],
         ["argument --timeout: 0 is out of range (above 0, at most 86400)"]),
    ]
    results = await asyncio.gather(*(site.cli(*args) for args, _ in cases))
    failures = []
    for (args, fragments), result in zip(cases, results, strict=True):
        try:
            one_error_line(result, 2, *fragments)
            assert result.stdout == "", result
        except AssertionError as exc:
            failures.append(f"[{' '.join(args)}] {exc}")
    assert not failures, "\n\n".join(failures)
    assert site.outbox() == [] and site.effects() == [] and site.writes() == []


async def test_photos_remove(site):
    order_id = site.ready[0]
    keep, gone = site.sim.photo_ids(order_id)
    removed = await site.cli("photos", "remove", ref(order_id), gone, "--wait")
    assert removed.returncode == 0, removed
    assert [(k, s) for _, k, _, s, _ in waited(removed)] == [("delete_photo", "succeeded")]
    assert site.sim.photo_ids(order_id) == [keep]
    assert site.effects() == [("DELETE_PHOTO", order_id)]
    assert [i["key"] for i in site.ledger_order(order_id)["items"]] == [keep]

    [submitted_photo] = site.sim.photo_ids(site.submitted)
    not_draft, unknown = await asyncio.gather(
        site.cli("photos", "remove", ref(site.submitted), submitted_photo),
        site.cli("photos", "remove", ref(order_id), "99999999"))
    one_error_line(not_draft, 2, f"{ref(site.submitted)} is Submitted",
                   "delete photo needs an order that is NotYetSubmitted")
    one_error_line(unknown, 2, f"{ref(order_id)} has no photo 99999999")
    assert len(site.outbox()) == 1 and len(site.effects()) == 1


# ------------------------------------------------------------------ print orders

async def test_print_order_create_from_options_json_and_toml(site, tmp_path):
    options = await site.cli(
        "print-order", "create", V, "--recipient", ADDRESS["recipientName"], "--address1",
        ADDRESS["address1"], "--town", ADDRESS["addressTownOrCity"], "--postcode",
        ADDRESS["postalOrZipCode"], "--country", "GB", "--quality", "Pro", "--wait", "--json")
    assert options.returncode == 0, options
    [action] = json_data(options)
    assert (action["kind"], action["state"]) == ("create", "succeeded")
    new_id = action["result"]["order_id"]
    order = site.sim.get_order(new_id)
    assert {k: order[k] for k in ADDRESS} == ADDRESS
    assert (order["status"], order["countryCode"], order["qualityLevel"], order["payment"]) == (
        "NotYetSubmitted", "GB", "Pro", "InvoiceMe")
    assert site.effects() == [("CREATE", new_id)]
    copy = site.ledger_order(new_id)                 # in the ledger at once, by the action
    assert copy is not None and copy["vendor_state"] == "NotYetSubmitted"
    assert copy["customer"] == ADDRESS["recipientName"]

    as_json = tmp_path / "order.json"
    as_json.write_text(json.dumps({**ADDRESS, "recipientName": "From Json", "countryCode": "US",
                                   "qualityLevel": "Standard"}), encoding="utf-8")
    from_json = await site.cli("print-order", "create", V, "--from", str(as_json), "--wait",
                               "--json")
    assert from_json.returncode == 0, from_json
    json_id = json_data(from_json)[0]["result"]["order_id"]
    order = site.sim.get_order(json_id)
    assert (order["recipientName"], order["countryCode"], order["qualityLevel"]) == (
        "From Json", "US", "Standard")

    as_toml = tmp_path / "order.toml"
    as_toml.write_text('recipientName = "From Toml"\naddress1 = "1 Main Street"\n'
                       'addressTownOrCity = "Leeds"\npostalOrZipCode = "LS1 1AA"\n'
                       'countryCode = "GB"\nqualityLevel = "Pro"\n'
                       'payment = "InvoiceRecipient"\n', encoding="utf-8")
    from_toml = await site.cli("print-order", "create", V, "--from", str(as_toml),
                               "--quality", "Standard", "--wait", "--json")  # options win
    assert from_toml.returncode == 0, from_toml
    toml_id = json_data(from_toml)[0]["result"]["order_id"]
    order = site.sim.get_order(toml_id)
    assert (order["recipientName"], order["addressTownOrCity"], order["qualityLevel"],
            order["payment"]) == ("From Toml", "Leeds", "Standard", "InvoiceRecipient")
    assert site.effects() == [("CREATE", new_id), ("CREATE", json_id), ("CREATE", toml_id)]
    listing = await site.cli("orders", "list", "--vendor", V, "--json", "--limit", "3")
    assert {o["id"] for o in json_data(listing)} == {new_id, json_id, toml_id}


async def test_print_order_create_refusals_exit_2_with_one_line(site, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"recipientName": "Ada",\n  "countryCode": GB}\n', encoding="utf-8")
    array = tmp_path / "array.json"
    array.write_text("[1, 2]", encoding="utf-8")
    no_quality, bad_json, not_object, missing = await asyncio.gather(
        site.cli("print-order", "create", V, "--recipient", "Ada", "--country", "GB"),
        site.cli("print-order", "create", V, "--from", str(bad), "--quality", "Pro"),
        site.cli("print-order", "create", V, "--from", str(array)),
        site.cli("print-order", "create", V, "--from", str(tmp_path / "none.toml")))
    one_error_line(no_quality, 2, "a print order needs qualityLevel")
    one_error_line(bad_json, 2, f"--from {bad}: not valid JSON")
    assert len(bad_json.stderr_lines) == 1, bad_json
    one_error_line(not_object, 2, f"--from {array}: expected an object of order fields")
    one_error_line(missing, 2, f"--from {tmp_path / 'none.toml'}: cannot read it")
    assert site.outbox() == [] and site.writes() == []


async def test_print_order_address(site):
    order_id = site.drafts[1]
    result = await site.cli("print-order", "address", ref(order_id), "--address1",
                            "221B Baker Street", "--postcode", "NW1 6XE", "--wait")
    assert result.returncode == 0, result
    assert [(k, s) for _, k, _, s, _ in waited(result)] == [("update_address", "succeeded")]
    order = site.sim.get_order(order_id)
    assert (order["address1"], order["postalOrZipCode"]) == ("221B Baker Street", "NW1 6XE")
    assert site.effects() == [("UPDATE", order_id)]
    assert site.ledger_order(order_id)["data"]["address"]["address1"] == "221B Baker Street"

    nothing, not_draft = await asyncio.gather(
        site.cli("print-order", "address", ref(order_id)),
        site.cli("print-order", "address", ref(site.submitted), "--town", "Leeds"))
    one_error_line(nothing, 2, "update address needs at least one field to change")
    one_error_line(not_draft, 2, f"{ref(site.submitted)} is Submitted",
                   "update address needs an order that is NotYetSubmitted")
    assert len(site.outbox()) == 1 and len(site.effects()) == 1


# ------------------------------------------------------------------ submit and cancel

async def test_submit_refused_locally_then_submitted_when_valid(site):
    empty, valid = site.drafts[2], site.ready[1]
    refused = await site.cli("submit", ref(empty), "--wait")
    assert refused.returncode == 1, refused
    [(_, kind, order, state, detail)] = waited(refused)
    assert (kind, order, state) == ("submit", ref(empty), "failed")
    assert detail == "Pwinty says the order cannot be submitted: NoItemsInOrder"
    assert "Traceback" not in refused.stderr
    asked = [r.path for r in site.sim.requests if r.path.startswith(f"/v2.2/Orders/{empty}/")]
    assert asked == [f"/v2.2/Orders/{empty}/SubmissionStatus"] * 2   # the sync's, the action's
    assert site.writes() == [] and site.sim.get_order(empty)["status"] == "NotYetSubmitted"

    done = await site.cli("submit", ref(valid), "--wait")
    assert done.returncode == 0, done
    assert [(k, s) for _, k, _, s, _ in waited(done)] == [("submit", "succeeded")]
    assert site.sim.get_order(valid)["status"] == "Submitted"
    assert site.effects() == [("STATUS", valid)]
    assert [e.body for e in site.sim.effects] == [{"status": "Submitted"}]
    assert site.ledger_order(valid)["vendor_state"] == "Submitted"


async def test_cancel_a_draft_but_not_a_submitted_order(site):
    draft = site.drafts[0]
    cancelled = await site.cli("cancel", ref(draft), "--wait")
    assert cancelled.returncode == 0, cancelled
    assert [(k, s) for _, k, _, s, _ in waited(cancelled)] == [("cancel", "succeeded")]
    assert site.sim.get_order(draft)["status"] == "Cancelled"
    assert site.ledger_order(draft)["state"] == "cancelled"
    refused = await site.cli("cancel", ref(site.submitted), "--wait")
    one_error_line(refused, 2, f"{ref(site.submitted)} is Submitted",
                   "cancel needs an order that is NotYetSubmitted or AwaitingPayment")
    assert site.effects() == [("STATUS", draft)] and len(site.outbox()) == 1


# ------------------------------------------------------------------ simulate pwinty

async def _simulator_lines(proc: asyncio.subprocess.Process, count: int) -> list[str]:
    lines = []
    try:
        while len(lines) < count:
            line = await asyncio.wait_for(proc.stdout.readline(), 15)
            assert line, f"stdout closed after {lines}"
            lines.append(line.decode().rstrip("\n"))
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return lines


async def _serve_then_stop(signum: int) -> None:
    port = closed_port()
    proc = await start_cli("simulate", "pwinty", "--port", str(port), "--orders", "7")
    header, first, second = await _simulator_lines(proc, 3)
    base = f"http://127.0.0.1:{port}/v2.2"
    assert header == f"pwinty simulator listening on {base} with 7 orders", header
    settings = dict(line.strip().split(" = ", 1) for line in (first, second))
    assert settings == {"merchant_id": "'sim-merchant'", "api_key": "'sim-api-key'"}
    headers = {"X-Pwinty-MerchantId": "sim-merchant", "X-Pwinty-REST-API-Key": "sim-api-key"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/Orders", params={"count": "100"}, headers=headers) as got:
            assert got.status == 200 and len(await got.json()) == 7
    proc.send_signal(signum)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"simulate did not stop on {signal.Signals(signum).name}") from None
    assert proc.returncode == 0, (signal.Signals(signum).name, out, err)
    assert b"Traceback" not in out + err


async def test_simulate_pwinty_serves_until_sigterm_or_sigint():
    await asyncio.gather(_serve_then_stop(signal.SIGTERM), _serve_then_stop(signal.SIGINT))


async def test_simulate_pwinty_has_no_page_size():
    result = await arun_cli("simulate", "pwinty", "--port", str(closed_port()), "--page-size",
                            "5")
    one_error_line(result, 2, "--page-size: the pwinty simulator has no page size of its own")
    assert len(result.stderr_lines) == 1 and result.stdout == "", result
