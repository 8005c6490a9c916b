"""File and environment problems through the real command: one line naming the file, the
documented exit code (3 busy, 4 unusable, 2 bad input, 141 output closed), no traceback,
and nothing lost (the ledger is left as it was).

The tests run as root here, where a chmod does not stop anyone: they use what stops root
too (a folder under /sys, a path under a regular file, an immutable file via chattr, a file
size limit via RLIMIT_FSIZE in the child, a write lock held by the test).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shlex
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from ordersync.ledger import Ledger
from tests.cli_support import (  # noqa: F401  (fixtures)
    CLI,
    KEY_ENV,
    SECRET_ENV,
    SIM_SECRET,
    CliResult,
    arun_cli,
    cli_env,
    fotoware_sim,
    fotoware_toml,
    pwinty_toml,
    run_cli,
    write_config,
)
from tests.test_cli import assert_one_error_line

ENV = {SECRET_ENV: SIM_SECRET}


def snapshot(ledger: Path) -> dict[str, bytes]:
    """The bytes of the ledger and its companions, to show a command changed nothing."""
    return {p.name: p.read_bytes() for p in ledger.parent.glob(f"{ledger.name}*")
            if p.is_file() and not p.name.endswith(".lock")}


def order_count(ledger: Path) -> int:
    conn = sqlite3.connect(ledger)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def config_for(fotoware_sim, write_config):  # noqa: F811
    """``config_for(ledger_path)``: a configuration over the simulator with that ledger."""
    return lambda ledger: write_config(fotoware_toml(fotoware_sim.base_url, ledger))


async def synced_ledger(config: Path, tmp_path: Path) -> Path:
    result = await arun_cli("--config", str(config), "sync", "--once", env=ENV, cwd=tmp_path)
    assert result.returncode == 0, result
    return tmp_path / "ledger.db"


# ------------------------------------------------------------------ the ledger's folder

@pytest.mark.parametrize("where", ["unwritable", "under-a-file", "a-directory"])
async def test_a_ledger_that_cannot_be_created_exits_4(where, config_for, tmp_path):
    if where == "unwritable":  # sysfs refuses new files even to root
        ledger = Path("/sys/ordersync-test-ledger.db")
        fragment = "/sys/ordersync-test-ledger.db.lock (is its folder writable?)"
    elif where == "under-a-file":
        (tmp_path / "plain-file").write_text("x")
        ledger = tmp_path / "plain-file" / "ledger.db"
        fragment = f"{ledger}"
    else:
        ledger = tmp_path / "ledger.db"
        ledger.mkdir()
        fragment = f"ledger {ledger} is a directory, not a ledger file"
    result = await arun_cli("--config", str(config_for(ledger)), "sync", "--once", env=ENV,
                            cwd=tmp_path)
    assert_one_error_line(result, 4, contains=fragment)
    assert result.stdout == ""


async def test_new_ledger_files_and_folders_are_private(config_for, tmp_path):
    ledger = tmp_path / "new" / "deeper" / "ledger.db"
    result = await arun_cli("--config", str(config_for(ledger)), "sync", "--once", env=ENV,
                            cwd=tmp_path)
    assert result.returncode == 0, result
    for folder in (tmp_path / "new", ledger.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(Path(f"{ledger}.lock").stat().st_mode) == 0o600
    opened = Ledger(ledger)  # while open, the -wal and -shm files exist
    try:
        for suffix in ("", "-wal", "-shm"):
            assert stat.S_IMODE(Path(f"{ledger}{suffix}").stat().st_mode) == 0o600, suffix
    finally:
        opened.close()


# ------------------------------------------------------------------ the ledger file itself

async def test_a_file_that_is_not_sqlite_exits_4_untouched(config_for, tmp_path):
    ledger = tmp_path / "ledger.db"
    ledger.write_text("these are my notes, not a ledger\n" * 100)
    before = snapshot(ledger)
    result = run_cli("--config", str(config_for(ledger)), "orders", "list", env=ENV)
    assert_one_error_line(result, 4, contains=f"ledger {ledger} is not an SQLite database")
    assert snapshot(ledger) == before


@pytest.mark.parametrize("table", ["customers", "orders"])   # "orders" clashes with ours
async def test_someone_elses_sqlite_database_exits_4_untouched(config_for, tmp_path, table):
    ledger = tmp_path / "ledger.db"
    other = sqlite3.connect(ledger)
    other.execute(f"CREATE TABLE {table} (name TEXT)")
    other.execute(f"INSERT INTO {table} VALUES ('Ada')")
    other.commit()
    other.close()
    before = snapshot(ledger)
    results = [run_cli("--config", str(config_for(ledger)), *args, env=ENV)
               for args in (["orders", "list"], ["sync", "--once"])]
    for result in results:
        assert_one_error_line(result, 4, contains=f"ledger {ledger}: not an ordersync ledger"
                              f" (an SQLite database with other tables: {table}); ordersync"
                              " leaves it untouched")
    assert snapshot(ledger) == before
    assert not Path(f"{ledger}-wal").exists()


async def test_a_truncated_ledger_exits_4_untouched(config_for, tmp_path):
    ledger = await synced_ledger(config_for(tmp_path / "ledger.db"), tmp_path)
    data = ledger.read_bytes()
    ledger.write_bytes(data[: len(data) // 3])
    before = snapshot(ledger)
    results = [run_cli("--config", str(config_for(ledger)), *args, env=ENV)
               for args in (["orders", "list"], ["actions", "list"])]
    for result in results:
        line = assert_one_error_line(result, 4, contains=f"ledger {ledger} ")
        assert "damaged (truncated or corrupt)" in line or "not an SQLite" in line, line
    assert snapshot(ledger) == before


@pytest.fixture
def read_only(tmp_path):
    """``read_only(path)``: make a file unwritable, also for root (chattr +i), undone after."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o444)
        elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root and this file system has no immutable flag:"
                        " root can write any file, so there is no read-only ledger to test")
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)


async def test_a_read_only_ledger_exits_4_and_keeps_its_orders(config_for, tmp_path, read_only,
                                                              fotoware_sim):  # noqa: F811
    config = config_for(tmp_path / "ledger.db")
    ledger = await synced_ledger(config, tmp_path)
    fotoware_sim.add_order("pending")
    read_only(ledger)
    result = await arun_cli("--config", str(config), "sync", "--once", env=ENV, cwd=tmp_path)
    assert_one_error_line(result, 4, contains=f"ledger {ledger} is read-only")
    assert order_count(ledger) == 40


async def test_a_full_disk_exits_4_and_loses_nothing(config_for, tmp_path):
    config = config_for(tmp_path / "ledger.db")
    Ledger(tmp_path / "ledger.db").close()

    def small_files() -> None:  # writes beyond 64 KiB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    proc = await asyncio.create_subprocess_exec(
        *CLI, "--config", str(config), "sync", "--once", env=cli_env(ENV), cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, preexec_fn=small_files)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    result = CliResult(("sync", "--once"), proc.returncode, out.decode(), err.decode())
    line = assert_one_error_line(result, 4, contains=f"ledger {tmp_path / 'ledger.db'} ")
    assert "disk is full" in line, line
    assert order_count(tmp_path / "ledger.db") == 0  # the page was rolled back as a whole
    again = await arun_cli("--config", str(config), "sync", "--once", env=ENV, cwd=tmp_path)
    assert again.returncode == 0, again
    assert order_count(tmp_path / "ledger.db") == 40


async def test_a_ledger_locked_past_the_busy_timeout_exits_3(config_for, tmp_path):
    config = config_for(tmp_path / "ledger.db")
    ledger = await synced_ledger(config, tmp_path)
    holder = sqlite3.connect(ledger, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another program keeps the write lock
        result = await arun_cli("--config", str(config), "sync", "--once", env=ENV,
                                cwd=tmp_path, timeout=30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_error_line(result, 3, contains=f"ledger {ledger} stayed locked by another"
                          " process for more than 5 s")
    assert order_count(ledger) == 40


# ------------------------------------------------------------------ files ordersync runs on

def test_report_out_and_backup_never_replace_the_configuration_or_a_secret_file(tmp_path):
    """``report --out`` and ``backup --force`` refused only the ledger: aimed at the
    configuration (or a secret file it names) they wrote over it."""
    (tmp_path / "key.txt").write_text("pw-key-on-file\n", encoding="utf-8")
    (tmp_path / "token.txt").write_text("status-token-on-file\n", encoding="utf-8")
    config = tmp_path / "ordersync.toml"
    config.write_text(pwinty_toml("http://127.0.0.1:9/v2.2", tmp_path / "ledger.db")
                      .replace(f'api_key_env = "{KEY_ENV}"', 'api_key_file = "key.txt"')
                      .replace("\n\n", "\n\n[server]\ntoken_file = 'token.txt'\n\n", 1),
                      encoding="utf-8")
    (tmp_path / "link.toml").symlink_to(config)
    Ledger(tmp_path / "ledger.db").close()   # a backup would be written, but for the check
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for target, what in (("ordersync.toml", "the configuration"),
                         ("link.toml", "the configuration"),
                         (str(tmp_path / "key.txt"), f"a secret file named in {config}"),
                         ("token.txt", f"a secret file named in {config}")):
        for command in (["report", "--out", target], ["backup", target, "--force"]):
            result = run_cli("--config", str(config), *command, cwd=tmp_path)
            assert_one_error_line(result, 2, contains=f"may not be {target}: that is {what};"
                                  " nothing was written")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


# ------------------------------------------------------------------ output closed early

def test_output_closed_early_exits_141_quietly(config_for, tmp_path):
    config = config_for(tmp_path / "ledger.db")
    Ledger(tmp_path / "ledger.db").close()
    reader, writer = os.pipe()
    os.close(reader)  # like `ordersync orders list | head` after head has gone
    try:
        done = subprocess.run([*CLI, "--config", str(config), "orders", "list"],
                              env=cli_env(ENV), stdout=writer, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True, timeout=20)
    finally:
        os.close(writer)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("args", [["orders", "list"], ["orders", "list", "--json"],
                                  ["actions", "list"], ["check", "--json"]])
def test_started_with_stdout_closed_exits_141_quietly(config_for, tmp_path, args):
    """``ordersync orders list >&-``: Python gives no sys.stdout at all; the table went
    nowhere and the command then failed as a bug (70), where a closed pipe gives 141."""
    config = config_for(tmp_path / "ledger.db")
    Ledger(tmp_path / "ledger.db").close()
    before = snapshot(tmp_path / "ledger.db")
    command = " ".join(map(shlex.quote, [*CLI, "--config", str(config), *args]))
    done = subprocess.run(["sh", "-c", f"{command} >&-"], env=cli_env(ENV),
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          timeout=20)
    assert (done.returncode, done.stderr) == (141, "")
    assert snapshot(tmp_path / "ledger.db") == before   # fd 1 was never the ledger's


@pytest.mark.parametrize("args", [["orders", "list"], ["orders", "list", "--json"]])
def test_output_to_a_full_device_is_one_line_exit_4(config_for, tmp_path, args):
    config = config_for(tmp_path / "ledger.db")
    Ledger(tmp_path / "ledger.db").close()
    with open("/dev/full", "w") as full:
        done = subprocess.run([*CLI, "--config", str(config), *args], env=cli_env(ENV),
                              stdout=full, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              text=True, timeout=20)
    assert done.returncode == 4, done.stderr
    assert done.stderr == "ordersync: error: cannot write the output: No space left on device\n"
