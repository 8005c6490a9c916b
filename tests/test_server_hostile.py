"""The status server against a hostile caller: a real ``ordersync run`` over the Pwinty
simulator, poked over loopback HTTP the way an attacker or a careless script would.

What each probe did is checked on the answer, the outbox and the simulator's request log.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time

import aiohttp
import pytest

from ordersync_adapters.pwinty.simulator import PwintySimulator
from tests.cli_support import (
    KEY_ENV,
    arun_cli,
    closed_port,
    json_data,
    one_error_line,
    pwinty_toml,
)
from tests.outbox_support import read_actions
from tests.test_server import HEARTBEAT, TOKEN, TOKEN_ENV, WAIT_S, daemon, get, post, until

V = "prints"
API_KEY = "pw-Key-hostile-51c9e07a4b2f-zzqv"
ENV = {KEY_ENV: API_KEY, TOKEN_ENV: TOKEN}
SERVER_FILE = b"server-only-9d1f7c3a\n"
"""A file only the daemon's host should see: an action must never read it for a caller."""


@pytest.fixture
async def site(tmp_path):
    """A Pwinty simulator with a draft order, and ``ordersync run`` with a status server."""
    sim = PwintySimulator(orders=5, open_share=1.0, clock=time.time, api_key=API_KEY)
    base = await sim.start()
    port = closed_port()
    vendors = pwinty_toml(base + "/v2.2", tmp_path / "ledger.db", name=V,
                          extra="poll_interval_s = 0.3\n")
    ledger, rest = vendors.split("\n\n", 1)
    config = tmp_path / "ordersync.toml"
    config.write_text(f"{ledger}\n\n[server]\nlisten = '127.0.0.1:{port}'\ntoken_env ="
                      f" '{TOKEN_ENV}'\n\n{HEARTBEAT}{rest}", encoding="utf-8")
    draft = sim.add_order("NotYetSubmitted", photos=0)
    url = f"http://127.0.0.1:{port}"
    try:
        async with daemon(config, tmp_path, url, env=ENV):
            await until(lambda: _shows(url, draft), "the draft synced")
            yield sim, url, draft, tmp_path
    finally:
        await sim.stop()


async def _shows(url: str, order: str) -> bool:
    return (await get(f"{url}/orders/{V}/{order}"))[0] == 200


async def test_a_local_file_parameter_is_refused_over_http(site):
    sim, url, draft, tmp_path = site
    secret = tmp_path / "server-only.jpg"
    secret.write_bytes(SERVER_FILE)
    photo = {"file": str(secret), "type": "4x6"}
    for body, where in (
            ({"vendor": V, "kind": "add_photo", "order": draft, "params": photo}, "params.file"),
            ({"vendor": V, "order": draft, "steps": [{"kind": "add_photo", "params": photo}]},
             "step 1 (add_photo): file"),
    ):
        status, answer, _ = await post(url, json.dumps(body), token=TOKEN)
        assert status == 400, answer
        assert answer["error"].startswith(f"{where}: a local file cannot be given over HTTP")
    assert read_actions(tmp_path / "ledger.db") == []
    assert [r for r in sim.requests if r.method != "GET"] == []
    status, answer, _ = await post(url, json.dumps(
        {"vendor": V, "kind": "add_photo", "order": draft, "params": []}), token=TOKEN)
    assert (status, answer) == (400, {"error": "params: expected an object"})


HTML_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none';"
               " form-action 'none'; frame-ancestors 'none'")


async def test_every_answer_says_nosniff_no_store_and_html_runs_no_script(site):
    sim, url, draft, _ = site
    paths = ["/", f"/orders/{V}/{draft}", f"/orders/{V}/%3Cscript%3E", "/metrics", "/healthz",
             "/readyz", "/no-such-page"]
    for path in paths:
        headers = await _headers("GET", url + path)
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Cache-Control") == "no-store", path
        assert headers.get("Content-Security-Policy") == HTML_POLICY, path
    headers = await _headers("POST", url + "/actions")
    assert (headers.get("X-Content-Type-Options"), headers.get("Cache-Control")) == (
        "nosniff", "no-store")


async def _headers(method: str, url: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as resp:
        await resp.read()
        return dict(resp.headers)


async def test_check_answers_a_garbled_heartbeat_in_one_line_never_a_crash(tmp_path):
    heartbeat = tmp_path / "hb"
    config = tmp_path / "ordersync.toml"
    config.write_text(pwinty_toml("http://127.0.0.1:9/v2.2", tmp_path / "ledger.db", name=V)
                      .replace("\n\n", f"\n\n[heartbeat]\npath = '{heartbeat}'\n\n", 1),
                      encoding="utf-8")
    for pid in (2**40, 0):   # 2**40: OverflowError, exit 70; 0: "healthy"
        heartbeat.write_text(f'{{"pid": {pid}, "time": {time.time()}}}', encoding="utf-8")
        heartbeat.chmod(0o600)
        checked = await arun_cli("--config", str(config), "check", env=ENV, cwd=tmp_path)
        one_error_line(checked, 4, f"{heartbeat} is not a heartbeat file")
    heartbeat.unlink()
    os.mkfifo(heartbeat, 0o600)   # check waited for a writer forever
    checked = await arun_cli("--config", str(config), "check", env=ENV, cwd=tmp_path)
    one_error_line(checked, 4, f"{heartbeat} is not a heartbeat file")
    heartbeat.unlink()
    heartbeat.symlink_to("/dev/zero")   # check read it to the end; now never follows a link
    checked = await arun_cli("--config", str(config), "check", env=ENV, cwd=tmp_path)
    assert checked.returncode == 1 and not checked.stderr, checked
    assert checked.stdout.splitlines()[0] == (
        f"unhealthy: heartbeat {heartbeat} is a symbolic link: not trusted"), checked


async def test_check_json_answers_an_unusable_heartbeat_or_ledger_with_its_document(tmp_path):
    """Exit 4 used to print nothing on stdout: a monitor parsing ``check --json`` got no
    document. Now the one shape, unhealthy, and still the one error line on stderr."""
    heartbeat, ledger = tmp_path / "hb", tmp_path / "ledger.db"
    config = tmp_path / "ordersync.toml"
    config.write_text(pwinty_toml("http://127.0.0.1:9/v2.2", ledger, name=V)
                      .replace("\n\n", f"\n\n[heartbeat]\npath = '{heartbeat}'\n\n", 1),
                      encoding="utf-8")
    heartbeat.write_text("not json", encoding="utf-8")
    heartbeat.chmod(0o600)   # this user's alone, else refused before it is read
    ledger.write_bytes(b"not an SQLite file, but a ledger path all the same" * 100)
    for problem in (f"{heartbeat} is not a heartbeat file",
                    f"ledger {ledger} is not an SQLite database"):
        checked = await arun_cli("--config", str(config), "check", "--json", env=ENV,
                                 cwd=tmp_path)
        line = one_error_line(checked, 4, problem)
        data = json_data(checked)
        assert data["problems"] == [line.removeprefix("ordersync: error: ")]
        assert (data["healthy"], data["pid"], data["vendors"]) == (False, None,
                                                                   {V: "not checked"})
        heartbeat.unlink(missing_ok=True)   # next: no heartbeat (a problem), a bad ledger
    assert ledger.read_bytes().startswith(b"not an SQLite file")   # never "repaired"


async def test_idle_and_half_sent_connections_are_closed_by_the_server(site):
    """Slowloris: connections that never finish a request used to stay open for an hour,
    each holding one of the daemon's file descriptors."""
    _, url, _, _ = site
    port = int(url.rsplit(":", 1)[1])
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
    for number, (_, writer) in enumerate(conns):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" if number % 2 else b"")
        await writer.drain()
    async with asyncio.timeout(WAIT_S):
        closed = [await reader.read() for reader, _ in conns]   # b"": the server hung up
    assert closed == [b""] * len(conns)
    for _, writer in conns:
        writer.close()
    assert (await get(url + "/healthz"))[0] == 200


async def test_a_token_that_is_not_utf8_is_refused_not_a_500(site):
    _, url, _, tmp_path = site
    port = int(url.rsplit(":", 1)[1])
    for token in (b"t\xffk", b"\xed\xa0\x80", TOKEN.encode() + b"\xff"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /actions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
                     + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 401 "), answer
    assert read_actions(tmp_path / "ledger.db") == []


async def test_a_chain_that_creates_an_order_takes_no_order(site):
    """The created order used to be recorded against the order given (Pwinty made a new
    one; the ledger filed the action under the existing draft)."""
    sim, url, draft, tmp_path = site
    fields = {"recipientName": "Ada", "countryCode": "GB", "destinationCountryCode": "GB"}
    status, answer, _ = await post(url, json.dumps(
        {"vendor": V, "order": draft, "steps": [
            {"kind": "create", "params": {"quality": "Standard", "from": fields}}]}),
        token=TOKEN)
    assert (status, answer) == (400, {"error": f"step 1 (create) creates an order; give none"
                                               f" (not {V}:{draft})"})
    assert read_actions(tmp_path / "ledger.db") == []


async def test_a_slow_page_never_holds_up_a_readiness_probe(site):
    """The pages read through a connection of their own: a status page waiting out another
    writer (its refresh needs the write lock, up to the busy timeout) leaves /readyz free."""
    _sim, url, _draft, tmp_path = site
    writer = sqlite3.connect(tmp_path / "ledger.db", timeout=WAIT_S)
    writer.execute("BEGIN IMMEDIATE")     # another process holds the ledger's write lock
    try:
        page = asyncio.create_task(get(url + "/"))
        await asyncio.sleep(0.5)          # the page's refresh is now waiting for the lock
        status, _ = await get(url + "/readyz")
        assert status in (200, 503)
        assert not page.done()            # answered while the page still waits
    finally:
        writer.rollback()
        writer.close()
    status, text = await page
    assert status == 200 and "ordersync status" in text
