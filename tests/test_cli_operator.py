"""Operator-facing edges of the real ``ordersync`` command: exit codes that tell the truth,
global options anywhere, one JSON shape, vendor text that cannot drive the terminal."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from ordersync.cli import build_parser
from tests import test_cli_pwinty
from tests.cli_support import (
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    command_name,
    fotoware_toml,
    json_data,
    run_many,
)
from tests.test_cli import assert_one_error_line

site = test_cli_pwinty.site  # the Pwinty site fixture, shared (an assignment, not an import)

V = "fotoware-main"
ENV = {SECRET_ENV: SIM_SECRET}


@pytest.fixture
async def synced(fotoware_sim, write_config, tmp_path):  # noqa: F811
    """The configuration of a ledger synced from the simulator."""
    config = write_config(fotoware_toml(fotoware_sim.base_url, tmp_path / "ledger.db", name=V))
    result = await arun_cli("--config", str(config), "sync", "--once", env=ENV, cwd=tmp_path)
    assert result.returncode == 0, result
    return config


async def test_sync_once_exits_1_when_an_action_it_pushed_failed(
    fotoware_sim, synced, tmp_path  # noqa: F811
):
    created = sorted(o for o in fotoware_sim.order_ids()
                     if fotoware_sim.get_order(o)["state"] == "created")
    queued = await arun_cli("--config", str(synced), "submit", f"{V}:{created[0]}", env=ENV,
                            cwd=tmp_path)
    assert queued.returncode == 0, queued
    fotoware_sim.set_state(created[0], "pending")     # submitted elsewhere meanwhile
    result = await arun_cli("--config", str(synced), "sync", "--once", env=ENV, cwd=tmp_path)
    assert result.returncode == 1, result
    assert result.error_lines == [f"ordersync: error: {V}: 1 action failed (see `ordersync"
                                  " actions list --state failed`)"], result
    assert "; actions: 1 failed" in result.stdout, result
    assert fotoware_sim.effects == []


def test_sync_and_run_without_vendors_exit_2(tmp_path):
    config = tmp_path / "empty.toml"
    config.write_text(f"[ledger]\npath = '{tmp_path}/ledger.db'\n", encoding="utf-8")
    for result in run_many([(["--config", str(config), "sync", "--once"], None),
                            (["--config", str(config), "run"], None)], cwd=tmp_path):
        line = assert_one_error_line(result, 2)
        assert line == (f"ordersync: error: {config}: no vendors configured (add a"
                        " [vendors.NAME] table): nothing to sync"), line
        assert result.stdout == ""
    assert not (tmp_path / "ledger.db").exists()


HOSTILE = "\x1b]0;owned\x07\x1b[2J\rORD-1\u202e"


async def test_vendor_text_cannot_drive_the_terminal(fotoware_sim, synced, tmp_path):  # noqa: F811
    order = fotoware_sim.order_ids()[0]
    fotoware_sim.touch(order, orderReference=HOSTILE, adminComment="ok\nforged line")
    fotoware_sim.set_state(order, "on-hold\x1b[31m")
    again = await arun_cli("--config", str(synced), "sync", "--once", env=ENV, cwd=tmp_path)
    assert again.returncode == 0, again
    ref = f"{V}:{order}"
    listed, shown, raw = [await arun_cli("--config", str(synced), *args, env=ENV, cwd=tmp_path)
                          for args in (("orders", "list"), ("orders", "show", ref),
                                       ("orders", "show", ref, "--json"))]
    shown_escaped = r"\x1b]0;owned\x07\x1b[2J\x0dORD-1\u202e"
    for result in (listed, shown):
        assert result.returncode == 0, result
        assert not any(c in result.stdout for c in "\x1b\x07\r\u202e"), result
        assert shown_escaped in result.stdout and r"on-hold\x1b[31m" in result.stdout, result
    assert r"comment: ok\x0aforged line" in shown.stdout
    order_json = json_data(raw)
    assert (order_json["reference"], order_json["vendor_state"]) == (HOSTILE, "on-hold\x1b[31m")


# ------------------------------------------------------------------ one JSON shape

def json_commands() -> set[str]:
    """Every command that takes --json, from the parser itself."""
    found = set()

    def walk(parser, path):
        for action in parser._actions:
            if "--json" in action.option_strings:
                found.add(" ".join(path))
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return found


FOTOWARE_JSON = {"sync", "orders list", "orders show", "approve", "reject", "update", "submit",
                 "actions list", "actions show", "actions retry", "actions cancel", "demo"}
PWINTY_JSON = {"photos add", "photos remove", "print-order create", "print-order address",
               "cancel"}
RESELLER_JSON = {"draft create", "items add", "items remove", "checkout", "fields set",
                 "characteristics set", "chain"}
"""Run with --json, and their shape checked, in tests/adapters/reseller/test_cli.py."""
SERVICE_JSON = {"vendors list", "vendors pause", "vendors resume", "backup", "restore"}
"""Run with --json, and their shape checked, in tests/test_vendors.py and tests/test_backup.py."""
HEALTH_JSON = {"report", "reconcile", "check"}
"""Checked with json_data in tests/test_report_cli.py, test_reconcile.py, test_server.py."""


def test_the_json_tests_cover_every_json_command():
    covered = FOTOWARE_JSON | PWINTY_JSON | RESELLER_JSON | SERVICE_JSON | HEALTH_JSON
    assert covered == json_commands()


async def test_every_fotoware_json_command_prints_one_document_of_one_shape(
    fotoware_sim, synced, tmp_path  # noqa: F811
):
    """Global options after the command too; json_data checks the shape and the name."""
    seen: dict[str, object] = {}

    async def cli(*args: str, code: int = 0):
        result = await arun_cli(*args, "--json", "--config", str(synced), env=ENV,
                                cwd=tmp_path, timeout=60)
        assert result.returncode == code, result
        seen[command_name(result.args)] = data = json_data(result)
        return data

    sim = fotoware_sim
    pending = sorted(o for o in sim.order_ids() if sim.get_order(o)["state"] == "pending")
    created = sorted(o for o in sim.order_ids() if sim.get_order(o)["state"] == "created")
    sim.set_state(created[0], "pending")             # so that submitting it fails
    [failed] = await cli("submit", f"{V}:{created[0]}", "--wait", code=1)
    assert failed["state"] == "failed"
    await asyncio.gather(
        cli("approve", f"{V}:{pending[0]}"), cli("reject", f"{V}:{pending[1]}"),
        cli("update", f"{V}:{pending[2]}", "--comment", "c"),
        cli("orders", "list"), cli("orders", "show", f"{V}:{pending[0]}"),
        cli("demo", "--orders", "5", "--dir", str(tmp_path / "demo")))
    [vendor] = await cli("sync", "--once")
    assert vendor["actions"] == {"succeeded": 3}
    listed, shown = await asyncio.gather(cli("actions", "list"), cli("actions", "show", "1"))
    assert sorted(a["state"] for a in listed) == ["failed"] + ["succeeded"] * 3
    assert shown["attempts_log"][-1]["status"] == 400
    assert (await cli("actions", "retry", "1"))["state"] == "pending"
    assert (await cli("actions", "cancel", "1"))["state"] == "cancelled"
    assert set(seen) == FOTOWARE_JSON


async def test_every_pwinty_json_command_prints_one_document_of_one_shape(site):
    def cli(*args: str):
        return site.cli(*args, "--json")

    photo = site.sim.photo_ids(site.ready[0])[0]
    results = await asyncio.gather(
        cli("photos", "add", f"prints:{site.drafts[0]}", "--url", "https://example.com/a.jpg",
            "--type", "4x6"),
        cli("photos", "remove", f"prints:{site.ready[0]}", photo),
        cli("print-order", "create", "prints", "--recipient", "Ada", "--address1", "1 Road",
            "--town", "London", "--postcode", "SW1", "--country", "GB", "--quality", "Pro"),
        cli("print-order", "address", f"prints:{site.drafts[1]}", "--town", "Leeds"),
        cli("cancel", f"prints:{site.drafts[2]}"))
    kinds = {}
    for result in results:
        [action] = json_data(result)
        kinds[action["kind"]] = action["queued"]
    assert kinds == {"add_photo": True, "delete_photo": True, "create": True,
                     "update_address": True, "cancel": True}


def test_global_options_after_the_command_win(tmp_path):
    config = tmp_path / "empty.toml"
    config.write_text(f"[ledger]\npath = '{tmp_path}/ledger.db'\n", encoding="utf-8")
    later, bad_level = run_many([
        (["--config", str(tmp_path / "absent.toml"), "orders", "list", "--config", str(config)],
         None),
        (["--config", str(config), "orders", "list", "--log-level", "loud"], None),
    ], cwd=tmp_path)
    assert_one_error_line(later, 2, contains=f"{config}: ledger {tmp_path}/ledger.db does not"
                          " exist yet")
    assert_one_error_line(bad_level, 2, contains="argument --log-level: invalid choice: 'loud'")
