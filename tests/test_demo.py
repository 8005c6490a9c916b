"""``ordersync demo`` through the real command: it replaces only what it made.

A real ledger (or its WAL), a configuration someone wrote, and a ledger another process
holds are refused with one line and left byte for byte as they were.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
from pathlib import Path

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
from tests.test_cli import assert_one_error_line, stop_daemon

ENV = {SECRET_ENV: SIM_SECRET}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def block(stdout: str, title: str) -> list[str]:
    """The lines of the summary's table called ``title``."""
    lines = stdout.splitlines()
    start = lines.index(f"  {title}:") + 1
    end = lines.index("", start)
    return lines[start:end]


def test_demo_runs_twice_in_its_folder_and_prints_commands_that_run(tmp_path):
    for _ in range(2):   # the second run replaces the ledger the first one made
        result = run_cli("demo", "--orders", "5", "--dir", "var/demo", cwd=tmp_path, timeout=60)
        assert result.returncode == 0, result
    assert (tmp_path / "var/demo/ordersync.db.demo").is_file()
    for made in ("var", "var/demo", "var/demo/ordersync.db"):   # customer data: owner only
        assert (tmp_path / made).stat().st_mode & 0o077 == 0, made
    syncs = block(result.stdout, "syncs")
    assert syncs[0].split() == ["SYNC", "VENDOR", "NEW", "CHANGED", "PAGES", "REQUESTS",
                                "SECONDS"]
    # a header, then a first sync and an idle re-poll of every installed adapter, aligned
    assert len(syncs) == 1 + 2 * len(adapters()) and len({len(line) for line in syncs}) == 1, syncs
    states = block(result.stdout, "orders by state")
    assert len({len(line) for line in states}) == 1, states
    commands = result.stdout.split("Explore the ledger:\n")[1].splitlines()
    assert len(commands) == 3, result
    for command in commands:
        argv = shlex.split(command)
        assert Path(argv[0]).name == "ordersync" or argv[1:3] == ["-m", "ordersync"], command
        done = subprocess.run(argv, cwd=tmp_path, env=cli_env(), capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout, command


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
    actions = json.loads(result.stdout)["data"]["actions"]
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
