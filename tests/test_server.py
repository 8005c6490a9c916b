"""The status server, ``ordersync check`` and sd_notify, against a real ``ordersync run``.

Each test starts the daemon as a subprocess over the Fotoware simulator, talks to its status
server over loopback HTTP, and asserts on what the simulator received and on the ledger.
Allowances are kept small through the configuration (poll interval, call deadline,
heartbeat), so a vendor going down or the daemon wedging shows within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ordersync.ledger import Ledger
from ordersync.server import REFUSED
from tests.cli_support import (  # noqa: F401  (fixtures are found by import)
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    closed_port,
    fotoware_sim,
    fotoware_toml,
    json_data,
    one_error_line,
    start_cli,
    write_config,
)
from tests.test_cli import stop_daemon

V = "fotoware-main"
TOKEN_ENV = "ORDERSYNC_TEST_SERVER_TOKEN"
TOKEN = "srv-T0ken-3b9e1c77a4d2-zzqv"   # long and odd: found anywhere, it leaked
ENV = {SECRET_ENV: SIM_SECRET, TOKEN_ENV: TOKEN}
FAST = ("poll_interval_s = 0.3\ncall_deadline_s = 1.0\nmax_attempts = 2\n")
"""A vendor is ready while its last success is under 3 x 0.3 + 1.0 = 1.9 s old."""
HEARTBEAT = "[heartbeat]\ninterval_s = 0.2\nstale_after_s = 1.5\n\n"
ESCAPED = "&lt;script&gt;alert(&#x27;planted&#x27;)&lt;/script&gt;"
WAIT_S = 20.0
"""The longest any condition below is waited for (only a broken build waits that long)."""


def server_toml(sim, tmp_path: Path, server: str) -> str:
    """The simulator's instance with fast polls, a short heartbeat and ``server``."""
    base = fotoware_toml(sim.base_url, tmp_path / "ledger.db", name=V, extra=FAST)
    ledger, vendors = base.split("\n\n", 1)
    return f"{ledger}\n\n{server}\n{HEARTBEAT}{vendors}"


@contextlib.asynccontextmanager
async def daemon(config: Path, tmp_path: Path, url: str | None,
                 env: dict | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    """``ordersync run`` until the block ends (then SIGTERM); with ``url``, once its status
    server answers."""
    proc = await start_cli("--config", str(config), "--log-level", "warning", "run",
                           env=env or ENV, cwd=tmp_path)
    try:
        if url is not None:
            await until(lambda: _answers(url), f"the status server at {url}")
        yield proc
    finally:
        if proc.returncode is None:
            code, err = await stop_daemon(proc)
            assert code == 0, err
            assert TOKEN not in err


async def _answers(url: str) -> bool:
    try:
        await get(url + "/healthz")
    except aiohttp.ClientConnectionError:
        return False
    return True


async def until(condition, what: str, timeout_s: float = WAIT_S) -> None:
    """Wait until ``await condition()`` is true (checked every 0.1 s)."""
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.1)
    return None


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def post(url: str, body: bytes | str, token: str | None = None
               ) -> tuple[int, dict, aiohttp.typedefs.LooseHeaders]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.post(
            url + "/actions", data=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


def metrics(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus text page: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def status_code(url: str) -> int:
    return (await get(url))[0]


async def check(config: Path, tmp_path: Path):
    return await arun_cli("--config", str(config), "check", env=ENV, cwd=tmp_path)


def ledger_counts(tmp_path: Path) -> dict[str, int]:
    ledger = Ledger(tmp_path / "ledger.db")
    try:
        return {c.state.value: c.orders for c in ledger.summary() if c.instance == V}
    finally:
        ledger.close()


async def test_metrics_actions_readiness_and_pages(fotoware_sim, write_config,  # noqa: F811
                                                   tmp_path):
    sim = fotoware_sim
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    planted = max(sim.order_ids(), key=lambda o: sim.get_order(o)["created"])  # listed first
    script = "<script>alert('planted')</script>"
    sim.touch(planted, adminComment=script,
              owner={**sim.get_order(planted)["owner"], "email": script})
    config = write_config(server_toml(
        sim, tmp_path, f"[server]\nlisten = '127.0.0.1:{port}'\ntoken_env = '{TOKEN_ENV}'\n\n"
        "[report]\nstuck_after_s = 0.5\n"))   # pending orders are stuck within a second
    async with daemon(config, tmp_path, url):
        await until(lambda: _is(url + "/readyz", 200), "ready")
        healthy = await check(config, tmp_path)
        assert healthy.returncode == 0 and healthy.stdout.startswith("healthy: "), healthy
        status, text = await get(url + "/healthz")
        alive = json.loads(text)
        assert (status, alive["ok"], alive["stuck"]) == (200, True, []), text
        assert 0 <= alive["heartbeat_age_s"] <= alive["stale_after_s"] == 1.5

        # /metrics: Prometheus text, orders by state as in the ledger, polls counted
        sim.faults.add("status", status=429, retry_after="0", path_prefix="/fotoweb/orders")
        await until(lambda: _scraped(url, "ordersync_rate_limit_waits_total"), "a 429 waited")
        status, text = await get(url + "/metrics")
        assert status == 200
        families = {f.name for f in text_string_to_metric_families(text)}
        assert {"ordersync_polls", "ordersync_orders", "ordersync_request_duration_seconds",
                "ordersync_retries", "ordersync_rate_limit_waits", "ordersync_errors",
                "ordersync_last_success_timestamp_seconds",
                "ordersync_last_poll_timestamp_seconds",
                "ordersync_heartbeat_timestamp_seconds"} <= families
        samples = metrics(text)
        assert samples[("ordersync_polls_total", (("outcome", "ok"), ("vendor", V)))] >= 2
        assert samples[("ordersync_errors_total", (("error_class", "RateLimited"),
                                                   ("vendor", V)))] == 1
        assert samples[("ordersync_retries_total", (("vendor", V),))] >= 1
        assert samples[("ordersync_request_duration_seconds_count",
                        (("method", "GET"), ("vendor", V)))] >= len(sim.order_ids()) / 37
        orders = {dict(labels)["state"]: value for (name, labels), value in samples.items()
                  if name == "ordersync_orders"}
        assert orders == ledger_counts(tmp_path) and sum(orders.values()) == 40

        # POST /actions: the token, then one approve performed exactly once
        order = sorted(o for o in sim.order_ids() if sim.get_order(o)["state"] == "pending")[0]
        body = f'{{"vendor": "{V}", "kind": "approve", "order": "{order}"}}'
        status, answer, headers = await post(url, body)
        assert (status, headers["WWW-Authenticate"]) == (401, "Bearer"), answer
        status, answer, _ = await post(url, body, token=TOKEN + "x")
        assert status == 401, answer
        status, queued, _ = await post(url, body, token=TOKEN)
        assert (status, queued["kind"], queued["order"], queued["queued"]) == (
            201, "approve", order, True), queued
        status, again, _ = await post(url, body, token=TOKEN)
        assert (status, again["id"], again["queued"]) == (200, queued["id"], False), again
        await until(lambda: _effects(sim), "the approve performed")
        assert [(e.verb, e.order_id) for e in sim.effects] == [("APPROVE", order)]
        second = sorted(o for o in sim.order_ids() if sim.get_order(o)["state"] == "pending")[0]
        status, chain, _ = await post(url, f'{{"vendor": "{V}", "order": "{second}", "steps": ['
                                      '{"kind": "update", "params": {"comment": "checked"}},'
                                      ' {"kind": "approve"}]}', token=TOKEN)
        assert status == 201 and [a["kind"] for a in chain] == ["update", "approve"], chain
        assert chain[1]["after"] == chain[0]["id"]
        await until(lambda: _effects(sim, 3), "the chain performed")
        assert [(e.verb, e.order_id) for e in sim.effects] == [
            ("APPROVE", order), ("PATCH", second), ("APPROVE", second)]
        for bad, reason in (
                (f'{{"vendor": "{V}", "kind": "approve", "order": "{order}",'
                 ' "params": {"copies": 2}}', "params.copies: approve takes no such parameter"),
                ('{"vendor": "nowhere", "kind": "approve", "order": "1"}', "no vendor instance"),
                (f'{{"vendor": "{V}", "kind": "paint", "order": "{order}"}}', "has no action"),
                ("{not json", "the body is not JSON"),
                (f'{{"vendor": "{V}", "order": "{order}", "steps": [{{"kind": "paint"}}]}}',
                 "step 1: fotoware-main (fotoware) has no action 'paint'")):
            status, answer, _ = await post(url, bad, token=TOKEN)
            assert status == 400 and reason in answer["error"], (bad, answer)
            assert "\n" not in answer["error"]
        status, answer, _ = await post(url, "x" * 70_000, token=TOKEN)
        assert status == 413, answer
        await until(lambda: _actions_scraped(url, {"succeeded": 3}),
                    "the actions counted as the ledger counts them")

        # the pages: vendors, the queue, orders; vendor text escaped
        status, page = await get(url + "/")
        assert status == 200
        assert page.index("Vendors") < page.index("Queue") < page.index("Exceptions")
        assert f"<td>{V}</td>" in page and "ready" in page
        assert ESCAPED in page and "<script" not in page
        await until(lambda: _shows(url + "/", "Exceptions", "<td>stuck"), "stuck orders")
        linked = re.findall(f'href="/orders/{V}/([0-9]+)"', page)
        assert linked and await status_code(f"{url}/orders/{V}/{linked[0]}") == 200
        status, order_page = await get(f"{url}/orders/{V}/{planted}")
        assert status == 200
        assert order_page.count(ESCAPED) == 2   # the customer and the comment
        assert "<script>" not in order_page
        status, acted_page = await get(f"{url}/orders/{V}/{order}")
        assert status == 200 and "approve" in acted_page and "succeeded" in acted_page
        assert await status_code(f"{url}/orders/{V}/no-such-order") == 404

        # /readyz and check follow the vendor going down and recovering
        sim.faults.add("status", status=503, retry_after=None, times=1_000_000)
        await until(lambda: _is(url + "/readyz", 503), "not ready")
        status, text = await get(url + "/readyz")
        assert V in text and "last successful poll" in text, text
        await until(lambda: _shows(url + "/", "Exceptions", "<td>vendor_down"), "down")
        down = await check(config, tmp_path)
        assert down.returncode == 1, down
        assert f"unhealthy: vendor {V} not ready: last successful poll" in down.stdout, down
        sim.faults.clear()
        await until(lambda: _is(url + "/readyz", 200), "ready again")
        assert (await check(config, tmp_path)).returncode == 0
        samples = metrics((await get(url + "/metrics"))[1])
        assert samples[("ordersync_polls_total", (("outcome", "error"), ("vendor", V)))] >= 1
        assert samples[("ordersync_errors_total", (("error_class", "VendorUnavailable"),
                                                   ("vendor", V)))] >= 2


def section(page: str, title: str) -> str:
    """The part of a page under ``<h2>title</h2>``, up to the next ``<h2>``."""
    return page.split(f"<h2>{title}</h2>", 1)[1].split("<h2>", 1)[0]


async def _shows(url: str, title: str, fragment: str) -> bool:
    return fragment in section((await get(url))[1], title)


async def _is(url: str, status: int) -> bool:
    return await status_code(url) == status


async def _scraped(url: str, name: str, fragment: str = "") -> bool:
    _, text = await get(url + "/metrics")
    return any(line.startswith(name) and fragment in line and not line.endswith(" 0.0")
               for line in text.splitlines())


async def _actions_scraped(url: str, expected: dict[str, float]) -> bool:
    samples = metrics((await get(url + "/metrics"))[1])
    return {dict(labels)["state"]: value for (name, labels), value in samples.items()
            if name == "ordersync_actions"} == expected


async def _effects(sim, count: int = 1) -> bool:
    return len(sim.effects) >= count


async def test_default_listen_is_loopback_and_posts_need_a_token(  # noqa: F811
        fotoware_sim, write_config, tmp_path):  # noqa: F811
    with socket.socket() as probe:   # the default port, taken by someone else: nothing to see
        if probe.connect_ex(("127.0.0.1", 8787)) == 0:
            pytest.skip("port 8787 (the default) is in use on this machine")
    config = write_config(server_toml(fotoware_sim, tmp_path, "[server]\n"))
    url = "http://127.0.0.1:8787"
    async with daemon(config, tmp_path, url) as proc:
        assert listening(8787, proc.pid) == ["127.0.0.1"]
        status, answer, _ = await post(url, '{"vendor": "x"}', token="anything")
        assert status == 403 and "no token configured" in answer["error"], answer


def listening(port: int, pid: int) -> list[str]:
    """The addresses process ``pid`` listens on at TCP ``port`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port and fields[9] in inodes:
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6,
                                              words))
    return found


async def test_a_port_in_use_is_one_line_exit_2(fotoware_sim, write_config,  # noqa: F811
                                                tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(server_toml(fotoware_sim, tmp_path,
                                          f"[server]\nlisten = '127.0.0.1:{port}'\n"))
        ran = await arun_cli("--config", str(config), "run", env=ENV, cwd=tmp_path)
    one_error_line(ran, 2, f"server.listen 127.0.0.1:{port}: cannot listen there")
    missing = write_config(server_toml(fotoware_sim, tmp_path, f"[server]\ntoken_env ="
                                       " 'ORDERSYNC_TEST_NO_SUCH_TOKEN'\nlisten ="
                                       f" '127.0.0.1:{port}'\n"), name="missing.toml")
    ran = await arun_cli("--config", str(missing), "run", env=ENV, cwd=tmp_path)
    one_error_line(ran, 2, "server.token_env: environment variable ORDERSYNC_TEST_NO_SUCH_TOKEN"
                   " is not set")


CAP = 8
FLOOD = int(os.environ.get("ORDERSYNC_TEST_FLOOD", "200"))
"""Idle connections opened at once against a cap of ``CAP`` (more with the variable set)."""


async def test_a_connection_flood_is_capped_and_the_daemon_carries_on(  # noqa: F811
        fotoware_sim, write_config, tmp_path):  # noqa: F811
    sim, port = fotoware_sim, closed_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(server_toml(sim, tmp_path, f"[server]\nlisten = '127.0.0.1:{port}'"
                                      f"\nmax_connections = {CAP}\n"))
    async with daemon(config, tmp_path, url) as proc:
        await until(lambda: _is(url + "/readyz", 200), "ready")
        fds = Path(f"/proc/{proc.pid}/fd")
        bound = len(os.listdir(fds)) + CAP + 4   # + a vendor's or the ledger's, for a moment
        flood = await asyncio.to_thread(_connect, port, FLOOD)
        try:   # once the daemon has answered the excess (in batches of accepted connections)
            await until(lambda: _fds_at_most(fds, bound), f"at most {bound} fds")
            held = [len(os.listdir(fds)) for _ in range(5)]   # while the flood is open
            polls = len(sim.requests)
            answers = await asyncio.to_thread(lambda: [_answer(sock) for sock in flood])
        finally:
            for sock in flood:
                sock.close()
        assert max(held) <= bound, (bound, held)
        assert set(answers) <= {b"", REFUSED}, set(answers)
        # served, then closed when idle: the cap's places, and those the probes before the
        # flood held (their closing may reach the daemon while the flood arrives)
        assert answers.count(REFUSED) >= FLOOD - 2 * CAP, answers.count(b"")
        await until(lambda: _is(url + "/healthz", 200), "/healthz answering again")
        await until(lambda: _more(sim, polls + 2), "polls carrying on")


async def _fds_at_most(fds: Path, count: int) -> bool:
    return len(os.listdir(fds)) <= count


def _connect(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send nothing (blocking: run on a thread)."""
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(socket.create_connection(("127.0.0.1", port), timeout=WAIT_S))
    except BaseException:
        for sock in opened:
            sock.close()
        raise
    return opened


def _answer(sock: socket.socket) -> bytes:
    """All the server sends on a connection until it closes it: the 503 for one over the
    cap, nothing for one held and closed when idle."""
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


async def _more(sim, count: int) -> bool:
    return len(sim.requests) >= count


async def test_check_follows_the_daemon_stopped_and_wedged(fotoware_sim, write_config,  # noqa: F811
                                                           tmp_path):
    config = write_config(server_toml(fotoware_sim, tmp_path, ""))
    heartbeat = tmp_path / "ledger.db.heartbeat"
    before = await check(config, tmp_path)
    assert before.returncode == 1 and "unhealthy: no daemon: no heartbeat" in before.stdout

    async def healthy() -> bool:
        return (await check(config, tmp_path)).returncode == 0

    async with daemon(config, tmp_path, None) as proc:
        await until(healthy, "healthy")
        assert heartbeat.stat().st_mode & 0o777 == 0o600
        report = await arun_cli("--config", str(config), "check", "--json", env=ENV,
                                cwd=tmp_path)
        data = json_data(report)
        assert (data["healthy"], data["problems"], data["pid"], data["vendors"]) == (
            True, [], proc.pid, {V: None}), report
        proc.send_signal(signal.SIGSTOP)   # wedged: no loop makes progress
        try:
            async def wedged() -> bool:
                result = await check(config, tmp_path)
                return result.returncode == 1 and "wedged" in result.stdout

            await until(wedged, "wedged")
        finally:
            proc.send_signal(signal.SIGCONT)
        await until(healthy, "healthy again")
    stopped = await check(config, tmp_path)   # stopped cleanly: the heartbeat is gone
    assert stopped.returncode == 1 and "no daemon" in stopped.stdout, stopped

    async with daemon(config, tmp_path, None) as proc:
        await until(healthy, "healthy")
        proc.kill()
        await proc.wait()
    killed = await check(config, tmp_path)
    assert killed.returncode == 1, killed
    assert "is not running" in killed.stdout and heartbeat.exists(), killed


async def test_check_refuses_a_heartbeat_others_could_have_written(  # noqa: F811
        fotoware_sim, write_config, tmp_path):  # noqa: F811
    config = write_config(server_toml(fotoware_sim, tmp_path, ""))
    heartbeat = tmp_path / "ledger.db.heartbeat"

    async def healthy() -> bool:
        return (await check(config, tmp_path)).returncode == 0

    async with daemon(config, tmp_path, None) as proc:
        await until(healthy, "healthy")   # the daemon's own heartbeat, 0600, is trusted
        assert heartbeat.stat().st_mode & 0o777 == 0o600
        proc.send_signal(signal.SIGSTOP)   # so that it does not replace the file meanwhile
        try:
            heartbeat.chmod(0o666)
            forgeable = await check(config, tmp_path)
            heartbeat.chmod(0o600)
            real = heartbeat.rename(tmp_path / "elsewhere")
            heartbeat.symlink_to(real)
            linked = await check(config, tmp_path)
            heartbeat.unlink()
            real.rename(heartbeat)
        finally:
            proc.send_signal(signal.SIGCONT)
        await until(healthy, "healthy again")
    assert forgeable.returncode == 1, forgeable
    assert forgeable.stdout.splitlines()[0] == (
        f"unhealthy: heartbeat {heartbeat} is writable by group or others (mode 0666): not"
        " trusted (anyone could fake a healthy daemon)"), forgeable
    assert linked.returncode == 1, linked
    assert linked.stdout.splitlines()[0] == (
        f"unhealthy: heartbeat {heartbeat} is a symbolic link: not trusted"), linked
    assert not forgeable.stderr and not linked.stderr


async def test_systemd_hears_ready_watchdog_and_stopping(fotoware_sim, write_config,  # noqa: F811
                                                         tmp_path):
    config = write_config(server_toml(fotoware_sim, tmp_path, ""))
    name = f"ordersync-test-{os.getpid()}-{id(tmp_path)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)   # an abstract socket, as systemd may give
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        heard: list[str] = []

        async def hear(message: str) -> bool:
            while message not in heard:
                heard.extend((await loop.sock_recv(sock, 4096)).decode().splitlines())
            return True

        async with daemon(config, tmp_path, None, env={**ENV, "NOTIFY_SOCKET": "@" + name}
                          ) as proc:
            async with asyncio.timeout(WAIT_S):
                await hear("READY=1")
                await hear("WATCHDOG=1")
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(WAIT_S):
                await hear("STOPPING=1")
        assert heard.index("READY=1") < heard.index("WATCHDOG=1") < heard.index("STOPPING=1")
