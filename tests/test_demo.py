"""``ordersync demo`` through the real command: it replaces only what it made.

A real ledger (or its WAL), a configuration someone wrote, and a ledger another process
holds are refused with one line and left byte for byte as they were.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
import socket
import subprocess
import tomllib
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ordersync.ledger import Ledger
from ordersync.registry import adapters
from tests.cli_support import (
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    cli_env,
    fotoware_sim,  # noqa: F401  (fixture)
    fotoware_toml,
    json_data,
    run_cli,
    run_many,
    start_cli,
    wait_for_log_event,
    write_config,  # noqa: F401  (fixture)
)
from tests.core.test_logs import run_on_a_terminal
from tests.test_cli import assert_one_error_line, stop_daemon

ENV = {SECRET_ENV: SIM_SECRET}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def block(stdout: str, title: str) -> list[str]:
    """The lines of the story's table whose title starts with ``title``."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title)) + 1
    end = lines.index("", start)
    return lines[start:end]


STORY = ("1. simulators started", "2. backfill into", "3. idle re-poll",
         "sample actions pushed through the outbox", "4. planted", "5. the morning report",
         "The same report as one page: open file://", "Explore the ledger:")


def test_demo_tells_the_whole_story_and_prints_commands_that_run(tmp_path):
    for _ in range(2):   # the second run replaces the ledger the first one made
        result = run_cli("demo", "--orders", "5", "--dir", "var/demo", cwd=tmp_path, timeout=60)
        assert result.returncode == 0, result
    out = result.stdout
    assert "\r" not in result.stderr and "orders in" not in result.stderr   # no progress: a pipe
    assert [out.index(section) for section in STORY] == sorted(
        out.index(section) for section in STORY), out
    assert (tmp_path / "var/demo/ordersync.db.demo").is_file()
    for made in ("var", "var/demo", "var/demo/ordersync.db"):   # customer data: owner only
        assert (tmp_path / made).stat().st_mode & 0o077 == 0, made
    sims = block(out, "1. simulators started")
    assert [line.split()[0] for line in sims[1:]] == sorted(adapters()), sims
    for title in ("2. backfill", "3. idle re-poll"):
        syncs = block(out, title)
        assert syncs[0].split() == ["VENDOR", "NEW", "CHANGED", "PAGES", "REQUESTS", "SECONDS"]
        # a header, then every installed adapter, aligned
        assert len(syncs) == 1 + len(adapters()) and len({len(x) for x in syncs}) == 1, syncs
    assert sum(int(line.split()[1]) for line in block(out, "2. backfill")[1:]) >= 15
    assert {line.split()[1] for line in block(out, "3. idle re-poll")[1:]} == {"0"}
    # the planted outage, in the printed report: the vendor down, and its exception
    planted = block(out, "4. planted")
    down = planted[1].split("- ")[1].split()[0]
    assert planted[1].endswith("for 3 polls in a row: down"), planted
    vendors = block(out, "VENDORS")
    assert [line.split()[1:4] for line in vendors if line.split()[1] == down] == [
        [down, "down", "3"]], vendors
    exceptions = block(out, "EXCEPTIONS")
    assert [line.split()[:3] for line in exceptions if line.split()[0] == "vendor_down"] == [
        ["vendor_down", down, "new"]], exceptions
    assert len({line.split()[0] for line in exceptions[1:]}) > 1   # and what the orders hold
    # the HTML report: where the demo said, private, self-contained
    html = tmp_path / "var/demo/report.html"
    assert f"open {html.resolve().as_uri()}" in out
    assert html.stat().st_mode & 0o777 == 0o600
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "vendor_down" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|<link|@import|url\(""", page)
    # the configuration it wrote names each secret's variable, never a value
    written = tomllib.loads((tmp_path / "var/demo/ordersync.toml").read_text(encoding="utf-8"))
    for table in written["vendors"].values():
        options = adapters()[table["adapter"]].options
        assert not [key for key in table if key in options and options[key].secret], table
        assert all(table[k].startswith("ORDERSYNC_DEMO_") for k in table if k.endswith("_env"))
    commands = out.split("Explore the ledger:\n")[1].splitlines()
    assert commands[-1] == "" and len(commands) == 5, out
    for command in commands[:-1]:
        argv = shlex.split(command)
        assert Path(argv[0]).name == "ordersync" or argv[1:3] == ["-m", "ordersync"], command
        done = subprocess.run(argv, cwd=tmp_path, env=cli_env(), capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout, command
    # a report against the demo's ledger does not make it someone else's
    again = run_cli("demo", "--orders", "5", "--dir", "var/demo", cwd=tmp_path, timeout=60)
    assert again.returncode == 0, again


async def test_the_backfill_shows_its_progress_on_a_terminal_and_never_in_json(tmp_path):
    code, terminal = await run_on_a_terminal("demo", "--orders", "30", "--dir",
                                             str(tmp_path / "tty"), env={})
    assert code == 0, terminal
    assert re.search(r"\r\w+: [\d,]+ orders in [\d,]+ pages, [\d,]+/s", terminal), repr(terminal)
    code, terminal = await run_on_a_terminal("demo", "--orders", "5", "--json", "--dir",
                                             str(tmp_path / "json"), env={})
    assert code == 0, terminal
    # nothing rewritten in place (the terminal ends its lines with \r\n)
    assert not re.search("\r(?!\n)", terminal) and "orders in" not in terminal, repr(terminal)


def test_demo_refuses_a_ledger_it_did_not_make_and_a_configuration_it_did_not_write(tmp_path):
    real = tmp_path / "var"
    real.mkdir()
    ledger = Ledger(real / "ordersync.db")
    ledger.db.conn.execute("PRAGMA wal_autocheckpoint = 0")
    ledger.db.conn.execute("CREATE TABLE keep (x)")   # left in the WAL
    before = snapshot(real)
    assert "ordersync.db-wal" in before
    result = run_cli("demo", "--orders", "5", "--dir", str(real), cwd=tmp_path)
    line = assert_one_error_line(result, 2)
    assert line == (f"ordersync: error: --dir {real}: {real}/ordersync.db is not a ledger the"
                    " demo made; the demo never replaces it (choose another --dir)"), line
    assert result.stdout == ""
    after = snapshot(real)
    after.pop("ordersync.db.lock", None)   # the demo asked for the lock first
    assert after == before
    assert ledger.db["keep"].exists()
    ledger.close()

    config = tmp_path / "config"
    config.mkdir()
    (config / "ordersync.toml").write_text("[ledger]\npath = 'x.db'\n", encoding="utf-8")
    result = run_cli("demo", "--orders", "5", "--dir", str(config), cwd=tmp_path)
    assert_one_error_line(result, 2, contains=f"{config}/ordersync.toml is not a configuration"
                          " the demo wrote")
    assert (config / "ordersync.toml").read_text() == "[ledger]\npath = 'x.db'\n"
    assert not (config / "ordersync.db").exists()

    stray = tmp_path / "stray"   # a real ledger with a marker beside it (copied, forged)
    stray.mkdir()
    Ledger(stray / "ordersync.db").close()
    (stray / "ordersync.db.demo").write_text('{"note": "Made by `ordersync demo`"}')
    before = snapshot(stray)
    result = run_cli("demo", "--orders", "5", "--dir", str(stray), cwd=tmp_path)
    assert_one_error_line(result, 2, contains=f"{stray}/ordersync.db has been used since")
    after = snapshot(stray)
    after.pop("ordersync.db.lock", None)
    assert after == before

    report = tmp_path / "report"
    report.mkdir()
    (report / "report.html").write_text("someone's own report")
    result = run_cli("demo", "--orders", "5", "--dir", str(report), cwd=tmp_path)
    assert_one_error_line(result, 2, contains=f"{report}/report.html is not a report the demo"
                          " wrote")
    assert (report / "report.html").read_text() == "someone's own report"


async def test_demo_never_touches_a_ledger_a_daemon_holds(
    fotoware_sim, write_config, tmp_path  # noqa: F811
):
    folder = tmp_path / "var"
    config = write_config(fotoware_toml(fotoware_sim.base_url, folder / "ordersync.db"))
    daemon = await start_cli("--config", str(config), "run", env=ENV, cwd=tmp_path)
    seen: list[str] = []
    try:
        await wait_for_log_event(daemon, "started", seen)
        await wait_for_log_event(daemon, "synced", seen)
        (folder / "ordersync.db.demo").write_text("a marker does not make it free")
        result = await arun_cli("demo", "--orders", "5", "--dir", str(folder), cwd=tmp_path)
        line = assert_one_error_line(result, 3)
        assert line == (f"ordersync: error: another ordersync process (pid {daemon.pid}) is"
                        f" using the ledger {folder}/ordersync.db"), line
    finally:
        code, err = await stop_daemon(daemon, signal.SIGTERM)
    assert code == 0, err
    ledger = Ledger(folder / "ordersync.db")
    try:
        assert len(ledger.orders()) == 40
    finally:
        ledger.close()


def test_demo_in_a_path_that_is_no_folder_exits_2_with_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    results = run_many([(["demo", "--dir", str(tmp_path / "file")], None),
                        (["demo", "--dir", str(tmp_path / "file/sub")], None)], cwd=tmp_path)
    assert_one_error_line(results[0], 2, contains=f"--dir {tmp_path}/file: not a folder")
    assert_one_error_line(results[1], 2, contains=f"--dir {tmp_path}/file/sub: cannot use it as"
                          " the demo's folder (Not a directory)")
    assert (tmp_path / "file").read_text() == "not a folder"


def test_the_demo_pushes_a_reseller_and_a_pwinty_chain(tmp_path):
    """A chain for each adapter that declares one (create, then act on the order the create
    made), through the outbox, and every link succeeds."""
    import json

    [result] = run_many([(["demo", "--orders", "8", "--json", "--dir", str(tmp_path / "d")],
                          None)], cwd=tmp_path)
    assert result.returncode == 0, result
    data = json.loads(result.stdout)["data"]
    actions = data["actions"]
    assert data["report"]["by_kind"]["vendor_down"] == 1 and Path(data["html"]).is_file(), data
    assert result.stderr.count("\n") <= 1   # the planted outage's one log line: no story
    assert {a["state"] for a in actions} == {"succeeded"}, actions
    for create, rest in (("create_draft", ["add_item", "add_item", "checkout"]),
                         ("create", ["add_photos"])):
        made = [a for a in actions if a["kind"] == create and a["created_order"]][-1]
        chain = actions[actions.index(made):][:1 + len(rest)]
        assert [a["kind"] for a in chain] == [create, *rest]
        assert {a["order"] for a in chain} == {made["order"]}
        assert made["order"].endswith(":" + made["created_order"])


async def test_a_demo_ledger_used_for_real_since_is_never_replaced(
    fotoware_sim, write_config, tmp_path  # noqa: F811
):
    folder = tmp_path / "var"
    made = run_cli("demo", "--orders", "5", "--dir", str(folder), cwd=tmp_path, timeout=60)
    assert made.returncode == 0, made
    # an operator points a real configuration at the demo's ledger and syncs into it
    config = write_config(fotoware_toml(fotoware_sim.base_url, folder / "ordersync.db",
                                        name="real"))
    synced = await arun_cli("--config", str(config), "sync", "--once", env=ENV, cwd=tmp_path)
    assert synced.returncode == 0, synced
    before = snapshot(folder)
    again = run_cli("demo", "--orders", "5", "--dir", str(folder), cwd=tmp_path)
    line = assert_one_error_line(again, 2)
    assert line == (f"ordersync: error: --dir {folder}: {folder}/ordersync.db has been used"
                    " since the demo made it (synced or acted on); the demo never replaces it"
                    " (choose another --dir)"), line
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if k != "ordersync.db.lock"} == {
        k: v for k, v in before.items() if k != "ordersync.db.lock"}
    ledger = Ledger(folder / "ordersync.db")
    try:
        assert len(ledger.orders(instance="real")) == 40
    finally:
        ledger.close()


def test_the_demo_configuration_reads_back_whatever_the_folder_is_called(tmp_path):
    folder = tmp_path / 'a "quoted"\tname'
    made = run_cli("demo", "--orders", "5", "--dir", str(folder), cwd=tmp_path, timeout=60)
    assert made.returncode == 0, made
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = run_cli("--config", str(folder / "ordersync.toml"), "orders", "list", "--json",
                     cwd=elsewhere)
    assert listed.returncode == 0, listed
    assert {o["vendor"] for o in json_data(listed)} == set(adapters())   # the demo's ledger


async def _line_starting(proc, prefix: str, seen: list[str]) -> str:
    """Read the demo's output up to the line that starts with ``prefix`` (stripped)."""
    async with asyncio.timeout(90):
        while True:
            raw = await proc.stdout.readline()
            assert raw, f"the demo ended before {prefix!r}: {''.join(seen)}"
            seen.append(raw.decode())
            if raw.decode().strip().startswith(prefix):
                return raw.decode().strip()


async def test_demo_keep_running_serves_the_status_page_until_ctrl_c(tmp_path):
    folder = tmp_path / "demo"
    demo = await start_cli("demo", "--orders", "5", "--dir", str(folder), "--keep-running",
                           cwd=tmp_path)
    seen: list[str] = []
    try:
        url = (await _line_starting(demo, "status page: ", seen)).split(": ", 1)[1]
        post = shlex.split(await _line_starting(demo, "curl -s -H 'Authorization: Bearer",
                                                seen))
        await _line_starting(demo, "", seen)   # the blank line that ends the block
        sims = [line.split()[1] for line in block("".join(seen), "1. simulators started")[1:]]
        assert url.startswith("http://127.0.0.1:") and len(sims) == len(adapters()), seen
        async with aiohttp.ClientSession() as http:
            for _ in range(200):   # the first heartbeat is written as the daemon starts
                async with http.get(url + "healthz") as healthz:
                    if healthz.status == 200:
                        break
                await asyncio.sleep(0.05)
            assert healthz.status == 200, await healthz.text()
            async with http.get(url) as page:
                assert page.status == 200
                text = await page.text()
                assert all(name in text for name in adapters()), text
            async with http.get(url + "metrics") as scraped:
                families = {f.name for f in text_string_to_metric_families(await scraped.text())}
                assert {"ordersync_polls", "ordersync_orders"} <= families, families
            token = post[post.index("-H") + 1]
            body = post[post.index("-d") + 1]
            async with http.post(url + "actions", data=body) as refused:
                assert refused.status == 401
            async with http.post(url + "actions", data=body,
                                 headers={"Authorization": token.split(": ", 1)[1]}) as queued:
                assert queued.status == 201, await queued.text()
        # the configuration the demo wrote reads its ledger while the daemon runs
        config = str(folder / "ordersync.toml")
        report, listed = await asyncio.gather(
            arun_cli("--config", config, "report", "--json", cwd=tmp_path),
            arun_cli("--config", config, "orders", "list", "--json", cwd=tmp_path))
        assert {v["vendor"] for v in json_data(report)["vendors"]} == set(adapters())
        assert {o["vendor"] for o in json_data(listed)} == set(adapters())
    finally:
        code, err = await stop_daemon(demo, signal.SIGINT, timeout=10)
    assert code == 0, err   # Ctrl-C stops the daemon as it stops `ordersync run`
    for address in (*sims, url):   # the simulators and the status server are gone
        host, port = address.split("//")[1].split("/")[0].split(":")
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=2).close()
    after = run_cli("--config", config, "report", cwd=tmp_path)
    assert after.returncode == 0 and "VENDORS" in after.stdout, after


def test_demo_keep_running_on_a_port_in_use_exits_2_and_leaves_a_ledger_it_may_replace(
    tmp_path
):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo", "--orders", "5", "--dir", "d", "--keep-running", "--port",
                         str(port), cwd=tmp_path, timeout=60)
    assert_one_error_line(result, 2, contains=f"127.0.0.1:{port}: cannot listen there")
    again = run_cli("demo", "--orders", "5", "--dir", "d", cwd=tmp_path, timeout=60)
    assert again.returncode == 0, again
