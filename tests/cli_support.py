"""Helpers for tests that run the real ``ordersync`` command and write configuration files.

Import what you need (fixtures included) into a test module::

    from tests.cli_support import fotoware_sim, write_config, run_cli, arun_cli

The fixtures live here rather than in ``tests/conftest.py`` so that they do not collide
with the fixtures others keep there; pytest finds a fixture that a module imports.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ordersync_adapters.fotoware.simulator import FotowareSimulator

# The console script installed beside this interpreter; ``python -m ordersync`` otherwise.
_SCRIPT = Path(sys.executable).with_name("ordersync")
CLI: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ordersync"]

SECRET_ENV = "ORDERSYNC_TEST_CLIENT_SECRET"
KEY_ENV = "ORDERSYNC_TEST_PWINTY_KEY"       # where pwinty_toml's API key comes from
# Long and unusual, so that finding it anywhere in output can only mean it leaked.
SIM_SECRET = "sim-Secr3t-7f3a9c1e5b2d4f60-kqzx"
CLI_TIMEOUT_S = 20.0


@dataclass
class CliResult:
    """What one run of the command did."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr_lines if line.startswith("ordersync: error:")]

    def __str__(self) -> str:  # shown by pytest when an assertion about it fails
        return (f"ordersync {' '.join(self.args)} -> {self.returncode}\n"
                f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}")


def one_error_line(result: CliResult, code: int, *fragments: str) -> str:
    """Exit ``code``; exactly one stderr line "ordersync: error: ..." holding each fragment."""
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert len(result.error_lines) == 1, result
    line = result.error_lines[0]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


JSON_KEYS = ["ok", "command", "data"]


def json_data(result: CliResult):
    """The ``data`` of a ``--json`` command's one document, after checking its shape:
    ``{"ok": exit code is 0, "command": ..., "data": ...}``."""
    document = json.loads(result.stdout)
    assert list(document) == JSON_KEYS, result
    assert document["ok"] is (result.returncode == 0), result
    assert document["command"] == command_name(result.args), result
    return document["data"]


def command_name(args: tuple[str, ...]) -> str:
    """``orders list`` from ``--config x orders list --json`` (global options first)."""
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--config", "--log-level", "--log-format"):
            skip = True
        elif arg.startswith("-"):
            break
        else:
            words.append(arg)
    groups = {"orders", "actions", "photos", "print-order", "draft", "items", "fields",
              "characteristics", "tickets", "vendors"}  # commands with subcommands
    return " ".join(words[:2] if words[0] in groups else words[:1])


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without anything that would change ordersync's mind."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORDERSYNC_CONFIG", SECRET_ENV) and not k.startswith("PYTEST_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float = CLI_TIMEOUT_S) -> CliResult:
    """Run ``ordersync ARGS`` to completion (for commands that need no running simulator)."""
    done = subprocess.run([*CLI, *args], env=cli_env(env), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return CliResult(tuple(args), done.returncode, done.stdout, done.stderr)


async def arun_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                   timeout: float = CLI_TIMEOUT_S) -> CliResult:
    """Run ``ordersync ARGS`` without blocking the event loop (which serves the simulator)."""
    proc = await start_cli(*args, env=env, cwd=cwd)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(
            f"ordersync {' '.join(args)} did not finish within {timeout}s") from None
    return CliResult(tuple(args), proc.returncode, out.decode(), err.decode())


async def start_cli(*args: str, env: Mapping[str, str] | None = None,
                    cwd: Path | None = None) -> asyncio.subprocess.Process:
    """Start ``ordersync ARGS`` in the background with piped output."""
    return await asyncio.create_subprocess_exec(
        *CLI, *args, env=cli_env(env), cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


def run_many(jobs: list[tuple[list[str], Mapping[str, str] | None]], *, cwd: Path | None = None,
             timeout: float = 90.0) -> list[CliResult]:
    """Run several ``(args, env)`` at once (start-up dominates each run); results in order."""
    procs = [subprocess.Popen([*CLI, *args], env=cli_env(env), cwd=cwd, text=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for args, env in jobs]
    results = []
    try:
        for (args, _), proc in zip(jobs, procs, strict=True):
            out, err = proc.communicate(timeout=timeout)
            results.append(CliResult(tuple(args), proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


async def wait_for_log_event(proc: asyncio.subprocess.Process, event: str, seen: list[str],
                             timeout: float = 10.0) -> dict:
    """Read JSON log lines from ``proc``'s stderr (into ``seen``) until ``event`` appears."""

    async def read() -> dict:
        while True:
            line = await proc.stderr.readline()
            if not line:
                raise AssertionError(f"stderr closed before {event!r}:\n" + "".join(seen))
            text = line.decode()
            seen.append(text)
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == event:
                return record

    try:
        return await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {event!r} log event within {timeout}s:\n"
                             + "".join(seen)) from None


def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toml_str(value: str | Path) -> str:
    """A TOML literal string (no escapes needed for the paths tests use)."""
    text = str(value)
    assert "'" not in text and "\n" not in text
    return f"'{text}'"


TIMEOUT = "timeout_s = 3.0\n"   # a lost write is verified this long after: keep it short


def fotoware_toml(base_url: str, ledger: Path, *, name: str = "fotoware-main",
                  extra: str = "") -> str:
    """A configuration with one Fotoware instance whose secret comes from SECRET_ENV."""
    return (
        f"[ledger]\npath = {toml_str(ledger)}\n\n"
        f"[vendors.{name}]\n"
        f'adapter = "fotoware"\n'
        f"base_url = {toml_str(base_url)}\n"
        f'client_id = "ordersync"\n'
        f'client_secret_env = "{SECRET_ENV}"\n'
        f"rate_limit = {{ requests = 1000, per_s = 1 }}\n"
        f"backoff_base_s = 0.05\n"
        f"{'' if 'timeout_s' in extra else TIMEOUT}"
        f"{extra}"
    )


def pwinty_toml(base_url: str, ledger: Path, *, name: str = "prints", extra: str = "") -> str:
    """A configuration with one Pwinty instance whose API key comes from KEY_ENV."""
    return (
        f"[ledger]\npath = {toml_str(ledger)}\n\n"
        f"[vendors.{name}]\n"
        f'adapter = "pwinty"\n'
        f"base_url = {toml_str(base_url)}\n"
        f'merchant_id = "sim-merchant"\n'
        f'api_key_env = "{KEY_ENV}"\n'
        f"rate_limit = {{ requests = 1000, per_s = 1 }}\n"
        f"backoff_base_s = 0.05\n"
        f"{'' if 'timeout_s' in extra else TIMEOUT}"
        f"{extra}"
    )


@pytest.fixture
def write_config(tmp_path) -> Callable[..., Path]:
    """``write_config(text, name="ordersync.toml", folder=None)`` -> the file's path."""

    def write(text: str, name: str = "ordersync.toml", folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
async def fotoware_sim() -> AsyncIterator[FotowareSimulator]:
    """A Fotoware simulator on loopback (real time), ``sim.base_url`` set, 40 orders."""
    sim = FotowareSimulator(orders=40, client_secret=SIM_SECRET)
    sim.base_url = await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


# ------------------------------------------------------------------ bad configurations
#
# One table, used twice: tests/core/test_config.py checks each exact ConfigError message
# from load_config, tests/test_cli.py checks that the command prints exactly that message
# as its one error line and exits 2.

GOOD_VENDOR = """\
[vendors.fw]
adapter = "fotoware"
base_url = "http://127.0.0.1:9"
client_id = "ordersync"
client_secret_env = "ORDERSYNC_TEST_CLIENT_SECRET"
"""
GOOD_ENV = {SECRET_ENV: "s3cret-value"}


def _vendor(*, drop: tuple[str, ...] = (), add: str = "", header: str = "[vendors.fw]") -> str:
    lines = [line for line in GOOD_VENDOR.splitlines()[1:]
             if line.split(" = ")[0] not in drop]
    return "\n".join([header, *lines, add]) + "\n"


@dataclass(frozen=True)
class BadConfig:
    """A configuration that must be refused with ``{path}: {message}``.

    ``{dir}`` in ``toml``, ``message`` and file names stands for the configuration's folder;
    ``toml=None`` writes no file at all; ``exact=False`` compares only the start;
    ``cli=False`` leaves a case out of the (slow) subprocess runs when another case already
    takes the same path through the code. ``when_used=True``: the problem is a secret's
    value, found only when a command talks to that vendor (``orders list`` does not).
    """

    id: str
    toml: str | None
    message: str
    environ: Mapping[str, str] = field(default_factory=lambda: dict(GOOD_ENV))
    files: Mapping[str, str] = field(default_factory=dict)
    exact: bool = True
    cli: bool = True
    when_used: bool = False

    def materialize(self, folder: Path) -> tuple[Path, dict[str, str], str]:
        """Write the case into ``folder``: (config path, environment, expected message)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ordersync.toml"
        fill = lambda text: text.replace("{dir}", str(folder))  # noqa: E731
        if self.toml is not None:
            path.write_text(fill(self.toml), encoding="utf-8")
        for name, content in self.files.items():
            (folder / fill(name)).write_text(content, encoding="utf-8")
        return path, dict(self.environ), f"{path}: {fill(self.message)}"

    def matches(self, actual: str, expected: str) -> bool:
        return actual == expected if self.exact else actual.startswith(expected)


LEDGER = "[ledger]\npath = '{dir}/ordersync.db'\n\n"

BAD_CONFIGS: list[BadConfig] = [
    BadConfig("missing-file", None, "cannot read it (No such file or directory)"),
    BadConfig("invalid-toml", LEDGER + "[vendors.fw\nadapter = 'fotoware'\n",
              "not valid TOML: ", exact=False),
    BadConfig("unknown-section", LEDGER + "[servers]\nport = 8080\n" + GOOD_VENDOR,
              "unknown section 'servers'"),
    BadConfig("server-unknown-key", LEDGER + "[server]\nport = 8080\n" + GOOD_VENDOR,
              "server.port: unknown key (expected listen, token_env, token_file,"
              " max_connections)"),
    BadConfig("server-max-connections-zero", LEDGER + "[server]\nmax_connections = 0\n"
              + GOOD_VENDOR, "server.max_connections: expected 1 to 1024, got 0", cli=False),
    BadConfig("server-max-connections-text", LEDGER + "[server]\nmax_connections = '64'\n"
              + GOOD_VENDOR, "server.max_connections: expected an integer, got '64'",
              cli=False),
    BadConfig("server-listen-no-port", LEDGER + "[server]\nlisten = 'localhost'\n"
              + GOOD_VENDOR, "server.listen: expected HOST:PORT (127.0.0.1:8787, [::1]:8787),"
              " got 'localhost'", cli=False),
    BadConfig("heartbeat-stale-before-interval", LEDGER + "[heartbeat]\ninterval_s = 5\n"
              "stale_after_s = 5\n" + GOOD_VENDOR,
              "heartbeat.stale_after_s: must be longer than interval_s (5)", cli=False),
    BadConfig("ledger-not-a-table", "ledger = 'x.db'\n" + GOOD_VENDOR,
              "ledger: expected a table", cli=False),
    BadConfig("unknown-ledger-key", "[ledger]\npath = 'x.db'\nsize = 10\n\n" + GOOD_VENDOR,
              "ledger.size: unknown key"),
    BadConfig("empty-ledger-path", "[ledger]\npath = ''\n\n" + GOOD_VENDOR,
              "ledger.path: expected a non-empty string", cli=False),
    BadConfig("ledger-url-postgresql",
              "[ledger]\nurl = 'postgresql://app:pw@db.example.com/ledger'\n\n" + GOOD_VENDOR,
              "ledger.url: a 'postgresql' ledger is not available yet: use sqlite:///PATH or a"
              " plain path"),
    BadConfig("ledger-url-and-path", "[ledger]\nurl = 'a.db'\npath = 'b.db'\n\n" + GOOD_VENDOR,
              "ledger: give url or path, not both", cli=False),
    BadConfig("vendor-not-a-table", LEDGER + "[vendors]\nfw = 5\n",
              "vendors.fw: expected a table", cli=False),
    BadConfig("unknown-vendor-key", LEDGER + _vendor(add="colour = 'blue'"),
              "vendors.fw.colour: unknown key for adapter 'fotoware'"),
    BadConfig("inline-secret", LEDGER + _vendor(drop=("client_secret_env",),
                                                add="client_secret = 'x'"),
              "vendors.fw.client_secret: unknown key for adapter 'fotoware' (secrets are never"
              " written in the file: use client_secret_env or client_secret_file)"),
    BadConfig("missing-adapter", LEDGER + _vendor(drop=("adapter",)),
              'vendors.fw.adapter: missing (the adapter to use; installed: fotoware, pwinty,'
              ' reseller)'),
    BadConfig("missing-base-url", LEDGER + _vendor(drop=("base_url",)),
              "vendors.fw.base_url: missing"),
    BadConfig("missing-client-id", LEDGER + _vendor(drop=("client_id",)),
              "vendors.fw.client_id: missing"),
    BadConfig("missing-secret", LEDGER + _vendor(drop=("client_secret_env",)),
              "vendors.fw: missing secret client_secret"
              " (set client_secret_env or client_secret_file)", cli=False),
    BadConfig("poll-interval-text", LEDGER + _vendor(add="poll_interval_s = 'sixty'"),
              "vendors.fw.poll_interval_s: expected a number, got 'sixty'"),
    BadConfig("poll-interval-zero", LEDGER + _vendor(add="poll_interval_s = 0"),
              "vendors.fw.poll_interval_s: must be greater than 0", cli=False),
    BadConfig("timeout-negative", LEDGER + _vendor(add="timeout_s = -1.5"),
              "vendors.fw.timeout_s: must be greater than 0", cli=False),
    BadConfig("call-deadline-zero", LEDGER + _vendor(add="call_deadline_s = 0"),
              "vendors.fw.call_deadline_s: must be greater than 0", cli=False),
    BadConfig("poll-deadline-text", LEDGER + _vendor(add="poll_deadline_s = 'soon'"),
              "vendors.fw.poll_deadline_s: expected a number, got 'soon'", cli=False),
    BadConfig("max-attempts-bool", LEDGER + _vendor(add="max_attempts = true"),
              "vendors.fw.max_attempts: expected an integer, got true"),
    BadConfig("max-attempts-float", LEDGER + _vendor(add="max_attempts = 2.5"),
              "vendors.fw.max_attempts: expected an integer, got 2.5", cli=False),
    BadConfig("max-items-zero", LEDGER + _vendor(add="max_items = 0"),
              "vendors.fw.max_items: must be at least 1", cli=False),
    BadConfig("max-pages-text", LEDGER + _vendor(add="max_pages_per_poll = 'many'"),
              "vendors.fw.max_pages_per_poll: expected an integer, got 'many'", cli=False),
    BadConfig("page-writer-negative", LEDGER + _vendor(add="page_writer_after_orders = -1"),
              "vendors.fw.page_writer_after_orders: must be 0 or more", cli=False),
    BadConfig("page-writer-text", LEDGER + _vendor(add="page_writer_after_orders = 'soon'"),
              "vendors.fw.page_writer_after_orders: expected an integer, got 'soon'",
              cli=False),
    BadConfig("max-attempts-zero", LEDGER + _vendor(add="max_attempts = 0"),
              "vendors.fw.max_attempts: must be at least 1", cli=False),
    BadConfig("client-id-number", LEDGER + _vendor(drop=("client_id",), add="client_id = 42"),
              "vendors.fw.client_id: expected a string, got 42", cli=False),
    BadConfig("rate-limit-number", LEDGER + _vendor(add="rate_limit = 5"),
              "vendors.fw.rate_limit: expected a table, got 5"),
    BadConfig("rate-limit-zero-requests",
              LEDGER + _vendor(add="rate_limit = { requests = 0, per_s = 1 }"),
              "vendors.fw.rate_limit.requests: must be at least 1"),
    BadConfig("rate-limit-negative-per-s",
              LEDGER + _vendor(add="rate_limit = { requests = 5, per_s = -1 }"),
              "vendors.fw.rate_limit.per_s: must be greater than 0"),
    BadConfig("rate-limit-requests-text",
              LEDGER + _vendor(add="rate_limit = { requests = 'many' }"),
              "vendors.fw.rate_limit.requests: expected an integer, got 'many'", cli=False),
    BadConfig("rate-limit-unknown-key",
              LEDGER + _vendor(add="rate_limit = { requests = 5, per_minute = 1 }"),
              "vendors.fw.rate_limit.per_minute: unknown key (expected requests, per_s)",
              cli=False),
    BadConfig("unknown-adapter", LEDGER + _vendor(drop=("adapter",), add="adapter = 'nope'"),
              "vendors.fw.adapter: unknown adapter 'nope'; installed adapters: ", exact=False),
    *(BadConfig(f"base-url-{case}", LEDGER + _vendor(drop=("base_url",),
                                                     add=f"base_url = '{url}'"),
                f"vendors.fw.base_url: {message}", cli=cli)
      for case, url, message, cli in [
          ("ftp", "ftp://example.com", "expected an http:// or https:// URL", True),
          ("no-scheme", "dam.example.com", "expected an http:// or https:// URL", False),
          ("bad-port", "http://dam:99999", "not a usable URL (Port out of range 0-65535)", True),
          ("no-host", "https:///fotoweb", "no host name in it", False)]),
    BadConfig("base-url-credentials",
              LEDGER + _vendor(drop=("base_url",),
                               add="base_url = 'https://admin:pa55word@dam.example.com'"),
              "vendors.fw.base_url: credentials in the URL are not allowed (they would be"
              " printed and logged): give secrets as *_env or *_file"),
    BadConfig("instance-name-colon", LEDGER + _vendor(header='[vendors."fw:1"]'),
              "vendors.fw:1: instance names may not be empty or contain ':'"),
    BadConfig("secret-env-not-set", LEDGER + GOOD_VENDOR,
              f"vendors.fw.client_secret_env: environment variable {SECRET_ENV} is not set",
              environ={}, when_used=True),
    BadConfig("secret-env-empty", LEDGER + GOOD_VENDOR,
              f"vendors.fw.client_secret_env: environment variable {SECRET_ENV} is not set",
              environ={SECRET_ENV: ""}, cli=False, when_used=True),
    BadConfig("secret-env-not-a-string",
              LEDGER + _vendor(drop=("client_secret_env",), add="client_secret_env = 7"),
              "vendors.fw.client_secret_env: expected a string, got 7", cli=False),
    BadConfig("secret-file-missing",
              LEDGER + _vendor(drop=("client_secret_env",),
                               add="client_secret_file = 'nothere.txt'"),
              "vendors.fw.client_secret_file: {dir}/nothere.txt: cannot read it"
              " (No such file or directory)", when_used=True),
    BadConfig("secret-file-empty",
              LEDGER + _vendor(drop=("client_secret_env",),
                               add="client_secret_file = '{dir}/secret.txt'"),
              "vendors.fw.client_secret_file: {dir}/secret.txt is empty",
              files={"secret.txt": "  \n"}, when_used=True),
    BadConfig("secret-file-a-device",
              LEDGER + _vendor(drop=("client_secret_env",),
                               add="client_secret_file = '/dev/zero'"),
              "vendors.fw.client_secret_file: /dev/zero: more than 65536 bytes, too large for"
              " a secret file", when_used=True),
    BadConfig("secret-env-and-file",
              LEDGER + _vendor(add="client_secret_file = 'secret.txt'"),
              "vendors.fw: give either client_secret_env or client_secret_file, not both",
              files={"secret.txt": "s3cret"}),
]
