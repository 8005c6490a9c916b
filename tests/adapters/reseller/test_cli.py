"""The reseller adapter through the real command line: ``sync --once`` and ``orders list``
against the simulator on loopback (served by the test's event loop, real time)."""

from __future__ import annotations

import json

from ordersync.adapters.reseller.simulator import ResellerSimulator
from tests.cli_support import arun_cli, json_data, toml_str, write_config  # noqa: F401 (a fixture)

SECRET = "rs-Secr3t-0c9e4a7d21b85f36-wqpx"      # long and unusual: finding it means a leak
PASSWORD = "rs-Passw0rd-6b0f2d9e83c1a547-jhvz"
SECRET_ENV, PASSWORD_ENV = "ORDERSYNC_TEST_RS_SECRET", "ORDERSYNC_TEST_RS_PASSWORD"


def reseller_toml(base_url: str, tmp_path) -> str:
    return (f"[ledger]\npath = {toml_str(tmp_path / 'ledger.db')}\n\n"
            "[vendors.rs]\nadapter = \"reseller\"\n"
            f"base_url = {toml_str(base_url)}\n"
            "client_key = \"sim-client-key\"\n"
            f"client_secret_env = \"{SECRET_ENV}\"\n"
            "username = \"api@reseller.example\"\n"
            f"password_env = \"{PASSWORD_ENV}\"\n"
            "rate_limit = { requests = 1000, per_s = 1 }\nbackoff_base_s = 0.05\n")


async def test_sync_once_then_orders_list_shows_every_stage(write_config, tmp_path):
    sim = ResellerSimulator(orders=25, client_secret=SECRET, password=PASSWORD)
    base_url = await sim.start()
    try:
        own = sorted(sim.orders)[0]
        sim.set_status(own, "Awaiting Legal Review")
        config = write_config(reseller_toml(base_url, tmp_path))
        env = {SECRET_ENV: SECRET, PASSWORD_ENV: PASSWORD}
        synced = await arun_cli("--config", str(config), "sync", "--once", "--json", env=env)
        listed = await arun_cli("--config", str(config), "orders", "list", "--json", env=env)
    finally:
        await sim.stop()
    assert synced.returncode == 0, synced
    assert listed.returncode == 0, listed
    orders = {o["id"]: o for o in json_data(listed)}
    assert set(orders) == {str(oid) for oid in sim.orders}
    assert (orders[str(own)]["state"], orders[str(own)]["vendor_state"]) == (
        "unknown", "Awaiting Legal Review")
    drafts = [o for o in orders.values() if o["vendor_state"] == "Draft"]
    assert drafts and all(o["expires"] for o in drafts)
    assert {r.headers.get("x-api-version") for r in sim.requests} == {"3.0"}
    for text in (synced.stdout, synced.stderr, listed.stdout, listed.stderr):
        assert SECRET not in text and PASSWORD not in text


async def test_wrong_password_is_one_line_exit_1_naming_the_settings(write_config, tmp_path):
    sim = ResellerSimulator(orders=3, client_secret=SECRET, password=PASSWORD)
    base_url = await sim.start()
    try:
        config = write_config(reseller_toml(base_url, tmp_path))
        result = await arun_cli("--config", str(config), "sync", "--once",
                                env={SECRET_ENV: SECRET, PASSWORD_ENV: "not-the-password"})
    finally:
        await sim.stop()
    assert result.returncode == 1, result
    [line] = result.error_lines
    assert "check client_key, client_secret, username and password" in line
    assert [r.path for r in sim.requests] == ["/oauth/token"]
    assert SECRET not in result.stdout + result.stderr
