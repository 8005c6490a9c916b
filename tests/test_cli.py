"""The real ``ordersync`` command, run as a subprocess: exit codes, one-line errors, output.

Exit codes (cli.py): 0 ok, 1 a vendor failed, 2 bad input, 3 ledger busy, 4 ledger unusable
(see tests/test_cli_files.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from ordersync.ledger import Ledger
from tests.cli_support import (
    BAD_CONFIGS,
    GOOD_ENV,
    GOOD_VENDOR,
    SECRET_ENV,
    SIM_SECRET,
    CliResult,
    arun_cli,
    closed_port,
    fotoware_sim,  # noqa: F401  (fixture)
    fotoware_toml,
    json_data,
    run_cli,
    run_many,
    start_cli,
    wait_for_log_event,
    write_config,  # noqa: F401  (fixture)
)

ORDER_KEYS = {"vendor", "id", "state", "vendor_state", "reference", "created", "modified",
              "items"}


def assert_one_error_line(result: CliResult, code: int, *, contains: str = "") -> str:
    """Exit ``code``, and stderr is exactly one line "ordersync: error: ..." with no traceback."""
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert len(result.stderr_lines) == 1, result
    line = result.stderr_lines[0]
    assert line.startswith("ordersync: error: "), result
    assert contains in line, result
    return line


# ------------------------------------------------------------------ bad configuration

# Every case's exact message is checked in-process by tests/core/test_config.py, where a
# crash other than ConfigError would fail too; here each distinct path goes through the CLI.
CLI_CASES = [case for case in BAD_CONFIGS if case.cli]


@pytest.fixture(scope="module")
def bad_config_results(tmp_path_factory) -> dict[str, tuple[str, CliResult]]:
    """The bad configurations, run through ``ordersync orders list`` (concurrently).

    A bad secret is found only by a command that talks to the vendor: ``sync --once``.
    """
    root = tmp_path_factory.mktemp("bad-configs")
    expected, jobs = {}, []
    for case in CLI_CASES:
        path, environ, message = case.materialize(root / case.id)
        expected[case.id] = message
        command = ["sync", "--once"] if case.when_used else ["orders", "list"]
        jobs.append((["--config", str(path), *command], environ))
    results = run_many(jobs, cwd=root)
    return {case.id: (expected[case.id], result)
            for case, result in zip(CLI_CASES, results, strict=True)}


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_configuration_exits_2_with_one_line(case, bad_config_results):
    message, result = bad_config_results[case.id]
    line = assert_one_error_line(result, 2)
    assert case.matches(line, f"ordersync: error: {message}"), (line, message)
    assert result.stdout == ""
    if case.when_used:  # refused before the ledger was touched
        assert not any(p.name.startswith("ordersync.db")
                       for p in Path(message.split(":")[0]).parent.iterdir())


def test_config_from_environment_variable(tmp_path):
    path = tmp_path / "from-env.toml"
    path.write_text("[ledger]\npath = 'x.db'\nsize = 1\n", encoding="utf-8")
    result = run_cli("orders", "list", env={"ORDERSYNC_CONFIG": str(path)}, cwd=tmp_path)
    assert_one_error_line(result, 2, contains=f"{path}: ledger.size: unknown key")


def test_default_config_path_is_config_ordersync_toml(tmp_path):
    result = run_cli("orders", "list", cwd=tmp_path)
    assert_one_error_line(result, 2,
                          contains="config/ordersync.toml: cannot read it (No such file or"
                                   " directory)")


# ------------------------------------------------------------------ bad arguments

@pytest.fixture(scope="module")
def good_config(tmp_path_factory) -> Path:
    """A valid configuration (vendor ``fw``) whose ledger exists and is empty."""
    root = tmp_path_factory.mktemp("good")
    path = root / "ordersync.toml"
    path.write_text(f"[ledger]\npath = '{root}/ordersync.db'\n\n{GOOD_VENDOR}", encoding="utf-8")
    Ledger(root / "ordersync.db").close()
    return path


BAD_ARGUMENTS = {
    "no-command": ([], "required: COMMAND"),
    "unknown-command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "orders-without-subcommand": (["orders"], "required: SUBCOMMAND"),
    "unknown-option": (["orders", "list", "--colour"], "unrecognized arguments: --colour"),
    "bad-log-level": (["--log-level", "loud", "orders", "list"], "invalid choice: 'loud'"),
    "show-not-an-id": (["orders", "show", "notanid"], "'notanid' is not VENDOR:ID"),
    "show-empty-id": (["orders", "show", "fw:"], "'fw:' is not VENDOR:ID"),
    "list-unknown-state": (["orders", "list", "--state", "nonsense"],
                           "--state: unknown state 'nonsense'; one of: draft, "),
    "list-limit-zero": (["orders", "list", "--limit", "0"], "--limit: must be at least 1"),
    "list-limit-text": (["orders", "list", "--limit", "ten"], "invalid int value: 'ten'"),
    "sync-without-once": (["sync"], "required: --once"),
    "list-unknown-vendor": (["orders", "list", "--vendor", "unknown"],
                            "no vendor instance 'unknown' (known: fw)"),
    "sync-unknown-vendor": (["sync", "--once", "--vendor", "unknown"],
                            "no vendor instance 'unknown' (known: fw)"),
    "show-unknown-vendor": (["orders", "show", "unknown:10001"],
                            "no vendor instance 'unknown' (known: fw)"),
    "show-unknown-order": (["orders", "show", "fw:99999"], "no order fw:99999 in the ledger"),
    # numbers beyond SQLite's 64-bit integers, and ports beyond 65535
    "list-limit-huge": (["orders", "list", "--limit", "99999999999999999999"],
                        "argument --limit: 99999999999999999999 is out of range (from"),
    "action-id-huge": (["actions", "show", "99999999999999999999"],
                       "argument ID: 99999999999999999999 is out of range"),
    "command-of-another-adapter": (["photos", "add", "fw:1", "--url", "https://example.com/a.jpg",
                                    "--type", "4x6", "--copies", "2"],
                                   "fw (fotoware) has no `photos add`; its commands: approve,"),
    "port-out-of-range": (["simulate", "fotoware", "--port", "70000"],
                          "argument --port: 70000 is out of range (from 0 to 65535)"),
    # sizes that would build millions of orders, and waits that would never end
    "demo-orders-huge": (["demo", "--orders", "99999999"],
                         "argument --orders: 99999999 is out of range (from 1 to 100000)"),
    "simulate-orders-huge": (["simulate", "pwinty", "--orders", "99999999999"],
                             "argument --orders: 99999999999 is out of range"),
    "wait-timeout-nan": (["approve", "fw:10001", "--wait", "--timeout", "nan"],
                         "argument --timeout: nan is out of range"),
}


@pytest.fixture(scope="module")
def bad_argument_results(good_config) -> dict[str, CliResult]:
    jobs = [(["--config", str(good_config), *args], GOOD_ENV)
            for args, _ in BAD_ARGUMENTS.values()]
    return dict(zip(BAD_ARGUMENTS, run_many(jobs, cwd=good_config.parent), strict=True))


@pytest.mark.parametrize("name", list(BAD_ARGUMENTS))
def test_bad_arguments_exit_2_with_one_line(name, bad_argument_results):
    _, fragment = BAD_ARGUMENTS[name]
    assert_one_error_line(bad_argument_results[name], 2, contains=fragment)


def test_a_configuration_that_is_not_utf8_exits_2(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# r\xe9glages\n[ledger]\npath = 'x.db'\n")
    result = run_cli("--config", str(path), "orders", "list", cwd=tmp_path)
    assert_one_error_line(result, 2, contains=f"{path}: not UTF-8 text (byte 0xe9 at offset 3)")


def test_a_fields_file_that_is_not_utf8_exits_2(good_config, tmp_path):
    fields = tmp_path / "order.json"
    fields.write_bytes(b'{"recipientName": "Ren\xe9e"}')
    result = run_cli("--config", str(good_config), "print-order", "create", "fw", "--from",
                     str(fields), env=GOOD_ENV, cwd=tmp_path)
    assert_one_error_line(result, 2, contains=f"--from {fields}: not UTF-8 text")


def test_files_that_never_end_are_refused_not_read_into_memory(good_config, tmp_path):
    config, fields = run_many([
        (["--config", "/dev/zero", "orders", "list"], None),
        (["--config", str(good_config), "print-order", "create", "fw", "--from", "/dev/zero"],
         GOOD_ENV),
    ], cwd=tmp_path)
    assert_one_error_line(config, 2, contains="/dev/zero: more than 1048576 bytes, too large"
                          " for a configuration file")
    assert_one_error_line(fields, 2, contains="--from /dev/zero: more than 16777216 bytes, too"
                          " large for a file of fields")


def test_missing_ledger_exits_2(tmp_path):
    path = tmp_path / "ordersync.toml"
    path.write_text(f"[ledger]\npath = '{tmp_path}/nothing-yet.db'\n\n{GOOD_VENDOR}",
                    encoding="utf-8")
    results = run_many([(["--config", str(path), "orders", "list"], GOOD_ENV),
                        (["--config", str(path), "orders", "show", "fw:10001"], GOOD_ENV)],
                       cwd=tmp_path)
    for result in results:
        assert_one_error_line(result, 2, contains=f"{path}: ledger {tmp_path}/nothing-yet.db"
                              " does not exist yet (run `ordersync sync --once` first)")
    assert not (tmp_path / "nothing-yet.db").exists()


# ------------------------------------------------------------------ against the simulator

@pytest.fixture
def sim_config(fotoware_sim, write_config, tmp_path):  # noqa: F811
    return write_config(fotoware_toml(fotoware_sim.base_url, tmp_path / "ledger.db"))


def secret_env() -> dict[str, str]:
    return {SECRET_ENV: SIM_SECRET}


async def test_sync_once_then_list_and_show(fotoware_sim, sim_config, tmp_path):  # noqa: F811
    config = ["--config", str(sim_config)]
    synced = await arun_cli(*config, "sync", "--once", env=secret_env(), cwd=tmp_path)
    assert synced.returncode == 0, synced
    assert "Traceback" not in synced.stderr
    assert synced.stdout.startswith("fotoware-main: 40 new, 0 changed, 0 unchanged"), synced

    listed, as_text, approved, limited = await asyncio.gather(
        arun_cli(*config, "orders", "list", "--json", env=secret_env(), cwd=tmp_path),
        arun_cli(*config, "orders", "list", env=secret_env(), cwd=tmp_path),
        arun_cli(*config, "orders", "list", "--state", "approved", "--json",
                 env=secret_env(), cwd=tmp_path),
        arun_cli(*config, "orders", "list", "--limit", "5", "--json", env=secret_env(),
                 cwd=tmp_path),
    )
    for result in (listed, as_text, approved, limited):
        assert result.returncode == 0, result
    orders = json_data(listed)
    assert isinstance(orders, list)
    assert sorted(o["id"] for o in orders) == sorted(fotoware_sim.order_ids())
    for order in orders:
        assert ORDER_KEYS <= set(order), sorted(order)
        assert order["vendor"] == "fotoware-main"
        assert order["vendor_state"] == fotoware_sim.get_order(order["id"])["state"]
        assert isinstance(order["items"], list)
    created = [o["created"] for o in orders]
    assert created == sorted(created, reverse=True), "newest first"

    assert as_text.stdout.splitlines()[0].split()[:2] == ["ORDER", "STATE"]
    assert as_text.stdout.rstrip().endswith("(40 orders)")
    assert f"fotoware-main:{orders[0]['id']}" in as_text.stdout

    approved_orders = json_data(approved)
    assert approved_orders, "the seeded data has approved orders"
    assert {o["state"] for o in approved_orders} == {"approved"}
    assert len(approved_orders) == sum(o["state"] == "approved" for o in orders)
    assert [o["id"] for o in json_data(limited)] == [o["id"] for o in orders[:5]]

    target = next(o for o in orders if o["items"])
    shown, shown_text = await asyncio.gather(
        arun_cli(*config, "orders", "show", f"fotoware-main:{target['id']}", "--json",
                 env=secret_env(), cwd=tmp_path),
        arun_cli(*config, "orders", "show", f"fotoware-main:{target['id']}",
                 env=secret_env(), cwd=tmp_path),
    )
    assert shown.returncode == 0, shown
    order = json_data(shown)
    assert order["id"] == target["id"] and order["vendor"] == "fotoware-main"
    assert order["items"] == target["items"]
    assert order["events"], "a new order has at least one event"
    assert order["events"][-1]["to_state"] == order["state"]
    assert {e["source"] for e in order["events"]} == {"poll"}
    assert shown_text.returncode == 0, shown_text
    assert f"id: {target['id']}" in shown_text.stdout
    assert "events:" in shown_text.stdout


async def test_sync_json_output(fotoware_sim, sim_config, tmp_path):  # noqa: F811
    result = await arun_cli("--config", str(sim_config), "sync", "--once", "--json",
                            env=secret_env(), cwd=tmp_path)
    assert result.returncode == 0, result
    [summary] = json_data(result)
    assert summary["vendor"] == "fotoware-main"
    assert summary["new"] == 40 and summary["errors"] == []


def test_sync_unreachable_vendor_exits_1(tmp_path):
    path = tmp_path / "ordersync.toml"
    path.write_text(fotoware_toml(f"http://127.0.0.1:{closed_port()}", tmp_path / "l.db",
                                  extra="max_attempts = 1\ntimeout_s = 2\n"), encoding="utf-8")
    result = run_cli("--config", str(path), "sync", "--once", env=secret_env(), cwd=tmp_path)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert len(result.error_lines) == 1, result
    line = result.error_lines[0]
    assert line.startswith("ordersync: error: fotoware-main: POST http://127.0.0.1:"), line
    assert "cannot connect" in line, line
    assert result.stdout.startswith("fotoware-main: FAILED: "), result


async def test_sync_without_approve_orders_permission_exits_1(
    fotoware_sim, sim_config, tmp_path  # noqa: F811
):
    fotoware_sim.admin = False
    result = await arun_cli("--config", str(sim_config), "sync", "--once", env=secret_env(),
                            cwd=tmp_path)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert len(result.error_lines) == 1, result
    assert result.error_lines[0].startswith("ordersync: error: fotoware-main: ")
    assert "Approve Orders" in result.error_lines[0], result


async def test_wrong_client_secret_exits_1(fotoware_sim, sim_config, tmp_path):  # noqa: F811
    result = await arun_cli("--config", str(sim_config), "sync", "--once",
                            env={SECRET_ENV: "not-the-secret"}, cwd=tmp_path)
    assert result.returncode == 1, result
    assert len(result.error_lines) == 1, result
    assert "token request refused" in result.error_lines[0], result
    assert "not-the-secret" not in result.stderr + result.stdout


async def stop_daemon(proc: asyncio.subprocess.Process, signum: int = signal.SIGTERM,
                      timeout: float = 5.0) -> tuple[int, str]:
    proc.send_signal(signum)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(
            f"ordersync run did not stop within {timeout}s of {signum!r}") from None
    return proc.returncode, err.decode()


async def test_second_run_on_the_same_ledger_exits_3(
    fotoware_sim, sim_config, tmp_path  # noqa: F811
):
    first = await start_cli("--config", str(sim_config), "run", env=secret_env(), cwd=tmp_path)
    seen: list[str] = []
    try:
        await wait_for_log_event(first, "started", seen)
        second = await arun_cli("--config", str(sim_config), "run", env=secret_env(),
                                cwd=tmp_path, timeout=10)
        line = assert_one_error_line(second, 3)
        assert line == (f"ordersync: error: another ordersync process (pid {first.pid}) is"
                        f" using the ledger {tmp_path / 'ledger.db'}")
        once = await arun_cli("--config", str(sim_config), "sync", "--once",
                              env=secret_env(), cwd=tmp_path, timeout=10)
        assert_one_error_line(once, 3, contains=f"(pid {first.pid})")
    finally:
        code, _ = await stop_daemon(first)
    assert code == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
async def test_run_stops_gracefully(signum, fotoware_sim, sim_config, tmp_path):  # noqa: F811
    proc = await start_cli("--config", str(sim_config), "run", env=secret_env(), cwd=tmp_path)
    seen: list[str] = []
    try:
        await wait_for_log_event(proc, "started", seen)
        synced = await wait_for_log_event(proc, "synced", seen)
        assert synced["new"] == 40
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    code, rest = await stop_daemon(proc, signum)   # bounded by stop_daemon's own timeout
    assert code == 0, "".join(seen) + rest
    events = [json.loads(line)["event"] for line in "".join(seen).splitlines() + rest.splitlines()
              if line.strip()]
    assert events[-2:] == ["stopping", "stopped"], events
    assert "Traceback" not in rest
    # The lock went with the process: a new run may take the ledger at once.
    again = await arun_cli("--config", str(sim_config), "sync", "--once", env=secret_env(),
                           cwd=tmp_path)
    assert again.returncode == 0, again
    assert again.stdout.startswith("fotoware-main: 0 new, 0 changed"), again
