"""Operator-facing edges of the real ``ordersync`` command: exit codes that tell the truth,
global options anywhere, one JSON shape, vendor text that cannot drive the terminal."""

from __future__ import annotations

import pytest

from tests.cli_support import (
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    fotoware_sim,  # noqa: F401  (fixture)
    fotoware_toml,
    run_many,
    write_config,  # noqa: F401  (fixture)
)
from tests.test_cli import assert_one_error_line

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
