"""The ledger in use: where `ledger.url` puts it, and each vendor's health after every poll."""

from __future__ import annotations

from ordersync.ledger import Ledger
from tests.cli_support import (  # noqa: F401  (fixtures are found by import)
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    closed_port,
    fotoware_sim,
    fotoware_toml,
    write_config,
)


async def test_sync_once_records_each_vendors_health(fotoware_sim, write_config,  # noqa: F811
                                                     tmp_path):
    ledger_path = tmp_path / "ledger.db"
    down = f"http://127.0.0.1:{closed_port()}"
    config = write_config(
        fotoware_toml(fotoware_sim.base_url, ledger_path)
        + fotoware_toml(down, ledger_path, name="fotoware-down").split("\n\n", 1)[1])
    env = {SECRET_ENV: SIM_SECRET}
    for _ in range(2):
        synced = await arun_cli("--config", str(config), "sync", "--once", env=env,
                                cwd=tmp_path)
        assert synced.returncode == 1, synced  # one vendor could not be synced

    ledger = Ledger(ledger_path)
    try:
        failing, up = ledger.vendor_health()  # by name
    finally:
        ledger.close()
    assert (up.instance, up.consecutive_failures, up.last_error_class) == (
        "fotoware-main", 0, None)
    assert up.last_success_at == up.last_poll_at is not None
    assert (failing.instance, failing.consecutive_failures, failing.last_success_at) == (
        "fotoware-down", 2, None)
    assert failing.last_error_class == "CannotConnect"
    assert failing.last_error and SIM_SECRET not in failing.last_error
    assert not failing.paused


async def test_a_ledger_url_names_where_the_ledger_lives(fotoware_sim, write_config,  # noqa: F811
                                                         tmp_path):
    ledger_path = tmp_path / "by-url" / "ledger.db"
    text = fotoware_toml(fotoware_sim.base_url, tmp_path / "unused.db").replace(
        f"path = '{tmp_path / 'unused.db'}'", f"url = 'sqlite:///{ledger_path}'")
    config = write_config(text)
    synced = await arun_cli("--config", str(config), "sync", "--once",
                            env={SECRET_ENV: SIM_SECRET}, cwd=tmp_path)
    assert synced.returncode == 0, synced
    assert not (tmp_path / "unused.db").exists()
    ledger = Ledger(ledger_path)
    try:
        assert len(ledger.orders()) == len(fotoware_sim.order_ids())
    finally:
        ledger.close()
