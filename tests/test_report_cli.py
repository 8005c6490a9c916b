"""``ordersync report`` as a person and a script run it: every section in every format, the
table within 80 columns, --out written privately and atomically, and one-line errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import stat
import time

from ordersync.report.text import CSV_COLUMNS
from tests.cli_support import arun_cli, json_data, one_error_line
from tests.conftest import FakeClock
from tests.report_support import DAY, ENV, plant_everything, report_site

LONG = "a-customer-whose-address-goes-on-" + "and-on-" * 20 + "@example.com"
SECTIONS = ("VENDORS (4)", "NEEDS A PERSON (1)", "EXCEPTIONS (", "ORDERS", "CHANGES SINCE",
            "ORDER VALUE", "DRIFT (from `ordersync reconcile`)", "DRIFT ROWS (0)")


async def test_every_section_in_every_format(tmp_path):
    # The CLI reads the real clock: the site's clock starts two days ago and catches up.
    clock = FakeClock(time.time() - 2 * DAY)
    async with report_site(tmp_path, clock) as site:
        keys = await plant_everything(site)
        order = site.planted["stuck_order"]
        site.fw.touch(order, owner={**site.fw.get_order(order)["owner"], "email": LONG})
        clock.now = time.time()
        await site.sync()
        out = tmp_path / "out" / "report.html"
        out.parent.mkdir()
        base = ("--config", str(site.config_path), "report")
        table, as_csv, as_json, wrapped, html, since = await asyncio.gather(
            arun_cli(*base, env=ENV), arun_cli(*base, "--format", "csv", env=ENV),
            arun_cli(*base, "--format", "json", env=ENV), arun_cli(*base, "--json", env=ENV),
            arun_cli(*base, "--format", "html", "--out", str(out), env=ENV),
            arun_cli(*base, "--since", "2026-01-01T00:00:00Z", "--vendor", "fw", env=ENV))
    for result in (table, as_csv, as_json, wrapped, html, since):
        assert result.returncode == 0 and result.stderr == "", result

    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    for section in SECTIONS:
        assert any(line.startswith(section) for line in lines), (section, table)
    assert lines[lines.index("VENDORS (4)") + 1].split()[:2] == ["FRESH", "VENDOR"]
    stuck = [line for line in lines if line.startswith("stuck") and f"fw:{order}" in line]
    assert len(stuck) == 1 and stuck[0].endswith("…")   # its long customer cut
    people = lines[lines.index("NEEDS A PERSON (1)") + 2]
    assert f"#{keys['uncertain'].split(':')[1]}" in people

    report = json.loads(as_json.stdout)
    assert list(report)[:4] == ["generated_at", "since", "thresholds", "vendors"]
    for vendor in report["vendors"]:
        assert {"vendor", "last_poll", "last_success", "failures", "error"} <= set(vendor)
    assert set(keys.values()) - {keys["expiring"]} <= {e["key"] for e in report["exceptions"]}
    for e in report["exceptions"]:
        assert {"kind", "key", "vendor", "order", "age_s", "reason", "first_seen",
                "resolved"} <= set(e)
    data = json_data(wrapped)
    assert set(data) == set(report)
    assert {e["key"] for e in data["exceptions"]} == {e["key"] for e in report["exceptions"]}

    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(report["exceptions"])
    [row] = [r for r in rows if r["key"] == f"stuck:fw:{order}"]
    assert LONG in row["reason"] and float(row["freshness_s"]) < 600

    assert html.stdout.startswith(f"report written to {out} (html; ")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page
    assert re.search(r"\b(src|href|action)\s*=|<link|url\(|@import", page) is None  # no requests
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]   # no temp file left

    assert [v["vendor"] for v in json.loads(as_json.stdout)["vendors"]] == [
        "fw", "gone", "prints", "resell"]
    assert "VENDORS (1)" in since.stdout and "gone" not in since.stdout


async def test_bad_options_are_one_line_with_the_documented_exit_code(tmp_path, clock):
    async with report_site(tmp_path, clock) as site:
        base = ("--config", str(site.config_path), "report")
        bad_since, both, unknown, unwritable, directory = await asyncio.gather(
            arun_cli(*base, "--since", "yesterday", env=ENV),
            arun_cli(*base, "--json", "--format", "csv", env=ENV),
            arun_cli(*base, "--vendor", "nope", env=ENV),
            arun_cli(*base, "--out", str(tmp_path / "no" / "such" / "r.html"), env=ENV),
            arun_cli(*base, "--out", str(tmp_path), env=ENV))
    one_error_line(bad_since, 2, "--since: 'yesterday' is neither")
    one_error_line(both, 2, "--json prints JSON: leave out --format csv")
    one_error_line(unknown, 2, "no vendor instance 'nope'")
    one_error_line(unwritable, 4, "--out ", "cannot write the report there")
    one_error_line(directory, 4, "--out ", "cannot write the report there")


def test_report_thresholds_are_checked_with_one_line(write_config, tmp_path):
    from tests.cli_support import run_cli

    for text, message in (
            ("stuck_after_s = -1", "report.stuck_after_s: must be greater than 0"),
            ("down_after_failures = 1.5", "report.down_after_failures: expected an integer"),
            ("colour = 3", "report.colour: unknown key")):
        path = write_config(f"[ledger]\npath = '{tmp_path}/l.db'\n\n[report]\n{text}\n")
        one_error_line(run_cli("--config", str(path), "report"), 2, message)
