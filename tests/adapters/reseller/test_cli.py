"""The reseller adapter through the real command line: ``sync --once`` and ``orders list``
against the simulator on loopback (served by the test's event loop, real time)."""

from __future__ import annotations

from ordersync_adapters.reseller.simulator import ResellerSimulator
from tests.cli_support import arun_cli, json_data, toml_str

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


async def test_the_declared_commands_queue_and_perform_each_action(write_config, tmp_path):
    """draft create, items add/remove, fields set, characteristics set, checkout: the
    commands the reseller's declarations generate, run against the simulator."""
    sim = ResellerSimulator(orders=0, client_secret=SECRET, password=PASSWORD)
    base_url = await sim.start()
    env = {SECRET_ENV: SECRET, PASSWORD_ENV: PASSWORD}
    try:
        config = write_config(reseller_toml(base_url, tmp_path))

        async def cli(*args: str):
            return await arun_cli("--config", str(config), *args, env=env)

        assert (await cli("sync", "--once")).returncode == 0
        created = await cli("draft", "create", "rs", "--account", "ACC-1002", "--wait", "--json")
        assert created.returncode == 0, created
        [draft] = json_data(created)
        oid = draft["result"]["order_id"]
        added = await cli("items", "add", f"rs:{oid}", "--product", "MS-365-BB", "--quantity",
                          "3", "--billing-plan", "MS-365-BB-Y", "--wait", "--json")
        assert added.returncode == 0, added
        item = json_data(added)[0]["result"]["item_id"]
        spare = await cli("items", "add", f"rs:{oid}", "--product", "ACR-BACKUP", "--wait",
                          "--json")
        spare_item = json_data(spare)[0]["result"]["item_id"]
        steps = [
            ("items", "remove", f"rs:{oid}", spare_item),
            ("fields", "set", f"rs:{oid}", "PO Number=PO-77", "Cost Centre=CC-9"),
            ("characteristics", "set", f"rs:{oid}", item, "domain=example.com"),
            ("checkout", f"rs:{oid}"),
        ]
        results = [await cli(*step, "--wait", "--json") for step in steps]
        refused = await cli("items", "add", f"rs:{oid}", "--product", "X", "--quantity", "0")
        unknown = await cli("fields", "set", f"rs:{oid}", "nothing")
    finally:
        await sim.stop()
    assert all(r.returncode == 0 for r in results), results
    assert [json_data(r)[0]["state"] for r in results] == ["succeeded"] * len(steps)
    order = sim.orders[int(oid)]
    assert (order["accountId"], order["status"]) == ("ACC-1002", "Submitted")
    [kept] = sim.items[int(oid)].values()
    assert (kept["productId"], kept["quantity"], kept["billingPlanId"]) == (
        "MS-365-BB", 3, "MS-365-BB-Y")
    assert {c["code"]: c["value"] for c in kept["characteristics"]}["domain"] == "example.com"
    assert {f["name"]: f["value"] for f in sim.custom_fields[int(oid)]} == {
        "PO Number": "PO-77", "Cost Centre": "CC-9"}
    assert refused.returncode == 2 and refused.error_lines == [
        "ordersync: error: --quantity: must be at least 1, got 0"], refused
    assert unknown.returncode == 2 and unknown.error_lines == [
        "ordersync: error: NAME=VALUE: 'nothing' is not NAME=VALUE"], unknown


async def test_a_chain_creates_fills_and_checks_out_a_draft_as_one_intent(write_config,
                                                                         tmp_path):
    sim = ResellerSimulator(orders=0, client_secret=SECRET, password=PASSWORD)
    base_url = await sim.start()
    env = {SECRET_ENV: SECRET, PASSWORD_ENV: PASSWORD}
    steps = ["--step", "create_draft account_id=ACC-1003",
             "--step", "add_item product_id=MS-365-BP quantity=2",
             "--step", "add_item product_id=AZ-PLAN", "--step", "checkout"]
    try:
        config = write_config(reseller_toml(base_url, tmp_path))

        async def cli(*args: str):
            return await arun_cli("--config", str(config), *args, env=env)

        assert (await cli("sync", "--once")).returncode == 0
        done = await cli("chain", "rs", *steps, "--wait", "--json")
        again = await cli("chain", "rs", *steps, "--json")
        sim.edition = "Free"           # every write is refused with 403 from now on
        stuck = await cli("chain", "rs", "--step", "create_draft account_id=ACC-1004",
                          "--step", "add_item product_id=AZ-PLAN", "--step", "checkout",
                          "--wait")
        listed = await cli("actions", "list", "--json")
        bad = await cli("chain", "rs", "--step", "create_draft account_id=ACC-1",
                        "--step", "add_item quantity=2")
    finally:
        await sim.stop()
    assert done.returncode == 0, done
    actions = json_data(done)
    assert [a["kind"] for a in actions] == ["create_draft", "add_item", "add_item", "checkout"]
    assert {a["state"] for a in actions} == {"succeeded"}
    [oid] = {a["order"] for a in actions}           # every link on the order the create made
    assert oid == actions[0]["result"]["order_id"]
    assert [a["after"] for a in actions] == [None, *(a["id"] for a in actions[:-1])]
    assert sim.orders[int(oid)]["status"] == "Submitted"
    assert sorted((i["productId"], i["quantity"]) for i in sim.items[int(oid)].values()) == [
        ("AZ-PLAN", 1), ("MS-365-BP", 2)]
    assert [a["queued"] for a in json_data(again)] == [False] * 4   # nothing doubled
    assert stuck.returncode == 1, stuck
    waiting = {a["kind"]: a for a in json_data(listed) if a["id"] > actions[-1]["id"]}
    assert waiting["create_draft"]["state"] == "failed"
    created = waiting["create_draft"]["id"]
    assert (waiting["add_item"]["state"], waiting["add_item"]["waiting"]) == (
        "pending", f"waits for #{created} (create_draft, failed)")
    assert waiting["checkout"]["waiting"] == (
        f"waits for #{waiting['add_item']['id']} (add_item, pending)")
    assert len(sim.orders) == 1                      # nothing but the first chain's draft
    assert bad.returncode == 2 and bad.error_lines == [
        "ordersync: error: step 2 (add_item): product_id: is required"], bad
