"""Logs: JSON lines off a terminal, readable lines on one, and never a secret or a token."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty

import pytest
import structlog
import structlog.testing

from ordersync import logs
from ordersync.logs import REDACTED, Redactor
from tests.cli_support import (
    CLI,
    SECRET_ENV,
    SIM_SECRET,
    arun_cli,
    cli_env,
    fotoware_sim,  # noqa: F401  (fixture)
    fotoware_toml,
    write_config,  # noqa: F401  (fixture)
)

LEVELS = {"debug", "info", "warning", "error", "critical"}


def issued_tokens(sim) -> list[str]:
    """Every bearer token the simulator handed out (its own private record of them)."""
    return list(sim._tokens)


@pytest.fixture
def sim_config(fotoware_sim, write_config, tmp_path):  # noqa: F811
    return write_config(fotoware_toml(fotoware_sim.base_url, tmp_path / "ledger.db"))


def add_faults(sim) -> None:
    """A 401 on discovery (so a second token is fetched) and a 503 on a list (a retry)."""
    sim.faults.add("status", status=401, path_prefix="/fotoweb/me/", retry_after=None)
    sim.faults.add("status", status=503, path_prefix="/fotoweb/orders/", retry_after=None)


def json_records(stderr: str) -> list[dict]:
    records = []
    for line in stderr.splitlines():
        if line.strip():
            record = json.loads(line)
            assert isinstance(record, dict), line
            records.append(record)
    return records


# ------------------------------------------------------------------ the real command

async def test_secret_and_tokens_never_reach_the_output(fotoware_sim, sim_config,  # noqa: F811
                                                        tmp_path):
    add_faults(fotoware_sim)
    result = await arun_cli("--log-level", "debug", "--config", str(sim_config), "sync",
                            "--once", env={SECRET_ENV: SIM_SECRET}, cwd=tmp_path)
    assert result.returncode == 0, result
    tokens = issued_tokens(fotoware_sim)
    assert len(tokens) >= 2, "the 401 made the client fetch a second token"
    # The secret really went over the wire (in the token request's form body) ...
    assert any(SIM_SECRET.encode() in r.body for r in fotoware_sim.requests)
    events = {r["event"] for r in json_records(result.stderr)}
    assert {"token_renewal", "retrying", "synced"} <= events, events
    # ... and nowhere into what the command printed.
    output = result.stdout + result.stderr
    assert SIM_SECRET not in output
    for token in tokens:
        assert token not in output


async def test_secret_not_logged_when_the_vendor_refuses_it(fotoware_sim, sim_config,  # noqa: F811
                                                            tmp_path):
    fotoware_sim.client_secret = "rotated-on-the-server"
    result = await arun_cli("--log-level", "debug", "--config", str(sim_config), "sync",
                            "--once", env={SECRET_ENV: SIM_SECRET}, cwd=tmp_path)
    assert result.returncode == 1, result
    assert "token request refused" in result.stderr
    assert SIM_SECRET not in result.stdout + result.stderr
    unhealthy = [r for r in json_records("\n".join(
        line for line in result.stderr.splitlines() if line.startswith("{")))
        if r["event"] == "vendor_unhealthy"]
    assert unhealthy and unhealthy[0]["level"] == "error"
    assert unhealthy[0]["vendor"] == "fotoware-main"


async def test_logs_are_json_lines_when_stderr_is_not_a_terminal(fotoware_sim,  # noqa: F811
                                                                 sim_config, tmp_path):
    add_faults(fotoware_sim)
    result = await arun_cli("--log-level", "debug", "--config", str(sim_config), "sync",
                            "--once", env={SECRET_ENV: SIM_SECRET}, cwd=tmp_path)
    assert result.returncode == 0, result
    records = json_records(result.stderr)  # every line parses
    assert len(records) >= 3, result
    for record in records:
        assert isinstance(record["event"], str) and record["event"]
        assert record["level"] in LEVELS
        assert record["timestamp"].endswith("Z")
    synced = next(r for r in records if r["event"] == "synced")
    assert synced["vendor"] == "fotoware-main" and synced["new"] == 40
    # stdout is for the command's own output, not logs
    assert not result.stdout.lstrip().startswith("{")


async def test_log_level_filters(fotoware_sim, sim_config, tmp_path):  # noqa: F811
    add_faults(fotoware_sim)
    result = await arun_cli("--log-level", "warning", "--config", str(sim_config), "sync",
                            "--once", env={SECRET_ENV: SIM_SECRET}, cwd=tmp_path)
    assert result.returncode == 0, result
    assert result.stderr == "", result  # retrying, token_renewal and synced are info


async def test_console_format_is_readable_text(fotoware_sim, sim_config,  # noqa: F811
                                               tmp_path):
    add_faults(fotoware_sim)
    result = await arun_cli("--log-format", "console", "--config", str(sim_config), "sync",
                            "--once", env={SECRET_ENV: SIM_SECRET}, cwd=tmp_path)
    assert result.returncode == 0, result
    lines = result.stderr_lines
    assert lines, result
    for line in lines:
        with pytest.raises(ValueError):
            json.loads(line)
    assert "\x1b[" not in result.stderr, "no colours when stderr is not a terminal"
    synced = next(line for line in lines if "synced" in line)
    assert "info" in synced and "vendor=fotoware-main" in synced and "new=40" in synced
    assert SIM_SECRET not in result.stderr


async def run_on_a_terminal(*args: str, env: dict) -> tuple[int, str]:
    """Run ordersync with stderr on a pseudo-terminal; (exit code, what the terminal got)."""
    leader, follower = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            *CLI, *args, env=cli_env(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=follower)
    finally:
        os.close(follower)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    try:
        reader = asyncio.get_running_loop().run_in_executor(None, drain)
        await asyncio.wait_for(proc.communicate(), 20)
        await asyncio.wait_for(reader, 5)
    finally:
        os.close(leader)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("fmt", ["auto", "json"])
async def test_format_on_a_terminal(fmt, fotoware_sim, sim_config, tmp_path):  # noqa: F811
    code, terminal = await run_on_a_terminal(
        "--log-format", fmt, "--config", str(sim_config), "sync", "--once",
        env={SECRET_ENV: SIM_SECRET})
    assert code == 0, terminal
    lines = [line for line in terminal.replace("\r", "").splitlines() if line.strip()]
    synced = [line for line in lines if "synced" in line]
    assert synced, terminal
    if fmt == "auto":  # readable (and coloured) lines on a terminal
        assert "\x1b[" in terminal
        for line in lines:
            with pytest.raises(ValueError):
                json.loads(line)
    else:  # asked for JSON: JSON even on a terminal
        assert json.loads(synced[0])["event"] == "synced"
    assert SIM_SECRET not in terminal


# ------------------------------------------------------------------ Redactor itself

SECRET = "hunter2-very-secret"


def redact(event_dict: dict, secrets=(SECRET,)) -> dict:
    return Redactor(secrets)(None, "info", event_dict)


def test_secret_looking_keys_are_redacted_at_any_depth():
    out = redact({
        "event": "token_fetched",
        "client_secret": "whatever",
        "access_token": "abc",
        "Authorization": "Bearer xyz",
        "password": 12345,
        "api_key": "k", "api-key": "k", "APIKEY": "k",
        "headers": {"authorization": "Basic Zm9vOmJhcg==", "accept": "application/json"},
        "vendor": "fotoware-main",
        "count": 3,
    })
    assert out["event"] == "token_fetched"  # the event name is never treated as a key
    for key in ("client_secret", "access_token", "Authorization", "password", "api_key",
                "api-key", "APIKEY"):
        assert out[key] == REDACTED, key
    assert out["headers"] == {"authorization": REDACTED, "accept": "application/json"}
    assert out["vendor"] == "fotoware-main" and out["count"] == 3


def test_secret_values_are_redacted_wherever_they_appear():
    out = redact({
        "event": f"could not use {SECRET}",
        "url": f"https://example.com/token?client_secret={SECRET}&x=1",
        "nested": {"deeper": {"note": f"x{SECRET}y"}},
        "items": [SECRET, "plain", {"msg": SECRET}],
        "pair": ("a", f"{SECRET}!"),
        "none": None,
        "flag": True,
    })
    assert out["event"] == f"could not use {REDACTED}"
    assert out["url"] == f"https://example.com/token?client_secret={REDACTED}&x=1"
    assert out["nested"] == {"deeper": {"note": f"x{REDACTED}y"}}
    assert out["items"] == [REDACTED, "plain", {"msg": REDACTED}]
    assert out["pair"] == ["a", f"{REDACTED}!"]
    assert out["none"] is None and out["flag"] is True


def test_bearer_tokens_in_text_are_redacted():
    out = redact({"event": "request", "sent": "Authorization: Bearer eyJhbGci.OiJIUz-I1N_iJ9==",
                  "other": "header was bearer   abc123/+~ and then more"}, secrets=())
    assert out["sent"] == f"Authorization: Bearer {REDACTED}"
    assert out["other"] == f"header was bearer   {REDACTED} and then more"


def test_longest_secret_first_and_short_or_empty_ones_ignored():
    redactor = Redactor(["abcd", "abcdefgh", "", "ab", "abcd"])
    assert redactor.secrets == ["abcdefgh", "abcd"]
    out = redactor(None, "info", {"event": "e", "v": "xxabcdefghxx abcd ab"})
    assert out["v"] == f"xx{REDACTED}xx {REDACTED} ab"


def test_the_original_event_dict_is_not_changed():
    event = {"event": "e", "client_secret": "s", "v": SECRET}
    redact(event)
    assert event == {"event": "e", "client_secret": "s", "v": SECRET}


def test_redactor_in_a_structlog_chain():
    capture = structlog.testing.CapturingLogger()
    log = structlog.wrap_logger(
        capture, processors=[Redactor([SECRET]), lambda _, __, event_dict: event_dict],
        wrapper_class=structlog.BoundLogger)
    log.bind(token="t0k3n").info("hello", detail=f"uses {SECRET}", vendor="fw")
    [call] = capture.calls
    assert call.method_name == "info"
    assert call.kwargs == {"event": "hello", "token": REDACTED,
                           "detail": f"uses {REDACTED}", "vendor": "fw"}


@pytest.fixture
def restore_structlog():
    yield
    structlog.reset_defaults()


def test_configure_renders_json_without_secrets(restore_structlog):
    stream = io.StringIO()  # not a terminal: auto means JSON
    logs.configure(level="info", fmt="auto", secrets=[SECRET, None, ""], stream=stream)
    log = structlog.get_logger("test")
    log.debug("hidden", detail="debug is below info")
    log.info("visible", detail=f"x {SECRET} y", client_secret="z",
             sent="Authorization: Bearer abc.def")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "visible" and record["level"] == "info"
    assert record["detail"] == f"x {REDACTED} y"
    assert record["client_secret"] == REDACTED
    assert record["sent"] == f"Authorization: Bearer {REDACTED}"
    assert SECRET not in stream.getvalue()


def test_configure_redacts_exception_tracebacks(restore_structlog):
    stream = io.StringIO()
    logs.configure(level="info", fmt="json", secrets=[SECRET], stream=stream)
    try:
        raise RuntimeError(f"login failed with {SECRET}")
    except RuntimeError:
        structlog.get_logger().exception("failed")
    record = json.loads(stream.getvalue())
    assert "RuntimeError" in record["exception"]
    assert SECRET not in stream.getvalue()


def test_configure_console_format(restore_structlog):
    stream = io.StringIO()
    logs.configure(level="debug", fmt="console", secrets=[SECRET], stream=stream)
    structlog.get_logger().debug("polled", vendor="fw", note=SECRET)
    text = stream.getvalue()
    assert "polled" in text and "vendor=fw" in text and REDACTED in text
    assert SECRET not in text and "\x1b[" not in text
    with pytest.raises(ValueError):
        json.loads(text)


@pytest.mark.parametrize("value", [
    RuntimeError(f"token request refused for {SECRET}"),
    f"form: client_secret={SECRET}".encode(),
], ids=["exception", "bytes"])
def test_secrets_inside_non_string_values_are_redacted(value, restore_structlog):
    stream = io.StringIO()
    logs.configure(level="info", fmt="json", secrets=[SECRET], stream=stream)
    structlog.get_logger().error("vendor_unhealthy", error=value)
    assert SECRET not in stream.getvalue()
