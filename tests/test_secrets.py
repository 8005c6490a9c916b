"""Secrets never escape: a vendor that repeats a credential cannot get it printed, logged or
stored, and each command needs only the secrets of the vendors it talks to.

The simulators play a careless vendor (``echo_credentials``): every error answer repeats the
request's headers (bearer token, API key) and body (the token request's client secret).
Each test checks that the vendor really did repeat them (the redaction mark is in the
output) and then greps the command's stdout and stderr (logs at debug level) and the bytes
of the ledger files (with -wal and -shm) for every secret and every token issued.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from urllib.parse import quote_plus

from ordersync.redaction import REDACTED
from ordersync_adapters.pwinty.simulator import PwintySimulator
from ordersync_adapters.reseller.simulator import ResellerSimulator
from tests.adapters.reseller.test_cli import PASSWORD_ENV as RS_PASSWORD_ENV
from tests.adapters.reseller.test_cli import SECRET_ENV as RS_SECRET_ENV
from tests.adapters.reseller.test_cli import reseller_toml
from tests.cli_support import (  # noqa: F401  (fixtures)
    KEY_ENV,
    SECRET_ENV,
    SIM_SECRET,
    CliResult,
    arun_cli,
    fotoware_sim,
    fotoware_toml,
    json_data,
    pwinty_toml,
    write_config,
)

API_KEY = "pw-Echoed-Key-91d2c4e7a05b3f86-qqzx"   # long and unusual: finding it means a leak
ECHO = "refused; you sent"


def assert_nowhere(secrets: list[str], results: list[CliResult], ledger: Path) -> None:
    """No secret in any output, nor in the ledger file, its -wal or its -shm."""
    assert secrets and all(secrets)
    files = [Path(f"{ledger}{suffix}") for suffix in ("", "-wal", "-shm")]
    assert files[0].exists()
    for secret in secrets:
        for result in results:
            assert secret not in result.stdout + result.stderr, result
        for path in files:
            if path.exists():
                assert secret.encode() not in path.read_bytes(), path


def issued_tokens(sim) -> list[str]:
    """Every bearer token the Fotoware simulator handed out (its private record)."""
    return list(sim._tokens)


async def fotoware_cli(sim, config: Path, tmp_path: Path, *args: str) -> CliResult:
    return await arun_cli("--log-level", "debug", "--config", str(config), *args,
                          env={SECRET_ENV: SIM_SECRET}, cwd=tmp_path)


async def test_a_401_repeating_the_bearer_token(fotoware_sim, write_config,  # noqa: F811
                                                tmp_path):
    config = write_config(fotoware_toml(fotoware_sim.base_url, tmp_path / "ledger.db"))
    fotoware_sim.echo_credentials = True
    # both tries (the first token and the renewed one) are refused, repeating the token
    fotoware_sim.faults.add("status", status=401, times=2, path_prefix="/fotoweb/me/",
                            retry_after=None)
    result = await fotoware_cli(fotoware_sim, config, tmp_path, "sync", "--once")
    assert result.returncode == 1, result
    tokens = issued_tokens(fotoware_sim)
    assert len(tokens) == 2, tokens
    failed = [line for line in result.stdout.splitlines() if "FAILED" in line]
    assert failed and ECHO in failed[0] and REDACTED in failed[0], result
    assert result.error_lines and REDACTED in result.error_lines[0], result
    assert_nowhere([SIM_SECRET, *tokens], [result], tmp_path / "ledger.db")


async def test_a_refused_token_request_repeating_the_client_secret(
    fotoware_sim, write_config, tmp_path  # noqa: F811
):
    config = write_config(fotoware_toml(fotoware_sim.base_url, tmp_path / "ledger.db"))
    fotoware_sim.echo_credentials = True
    fotoware_sim.client_secret = "rotated-on-the-server"
    result = await fotoware_cli(fotoware_sim, config, tmp_path, "sync", "--once")
    assert result.returncode == 1, result
    # the secret went over the wire and the vendor's answer repeated it ...
    assert any(SIM_SECRET.encode() in r.body for r in fotoware_sim.requests)
    line = result.error_lines[0]
    assert "token request refused" in line and ECHO in line and REDACTED in line, result
    # ... and it is nowhere in what the command printed or logged
    assert_nowhere([SIM_SECRET], [result], tmp_path / "ledger.db")


async def test_an_action_refusal_repeating_the_token_is_not_stored(
    fotoware_sim, write_config, tmp_path  # noqa: F811
):
    ledger = tmp_path / "ledger.db"
    config = write_config(fotoware_toml(fotoware_sim.base_url, ledger))
    synced = await fotoware_cli(fotoware_sim, config, tmp_path, "sync", "--once")
    assert synced.returncode == 0, synced
    pending = sorted(o for o in fotoware_sim.order_ids()
                     if fotoware_sim.get_order(o)["state"] == "pending")[0]
    fotoware_sim.echo_credentials = True
    fotoware_sim.faults.add("status", status=400, method="APPROVE", retry_after=None)
    approve = await fotoware_cli(fotoware_sim, config, tmp_path, "approve",
                                 f"fotoware-main:{pending}", "--comment", "ok", "--wait")
    assert approve.returncode == 1, approve
    assert "failed" in approve.stdout and ECHO in approve.stdout, approve
    listed = await fotoware_cli(fotoware_sim, config, tmp_path, "actions", "list", "--json")
    shown = await fotoware_cli(fotoware_sim, config, tmp_path, "actions", "show", "1",
                               "--json")
    [action] = json_data(listed)
    assert action["state"] == "failed" and REDACTED in action["last_error"], listed
    attempts = json_data(shown)["attempts_log"]
    assert any(a["error"] and REDACTED in a["error"] for a in attempts), shown
    assert_nowhere([SIM_SECRET, *issued_tokens(fotoware_sim)], [synced, approve, listed, shown],
                   ledger)


async def test_pwinty_repeating_its_api_key_on_a_401_and_on_a_refused_action(tmp_path):
    sim = PwintySimulator(orders=5, clock=time.time, api_key=API_KEY)
    base = await sim.start()
    try:
        ledger = tmp_path / "ledger.db"
        config = tmp_path / "ordersync.toml"
        config.write_text(pwinty_toml(base + "/v2.2", ledger), encoding="utf-8")
        draft = sim.add_order("NotYetSubmitted", photos=0)

        async def cli(*args: str) -> CliResult:
            return await arun_cli("--log-level", "debug", "--config", str(config), *args,
                                  env={KEY_ENV: API_KEY}, cwd=tmp_path)

        synced = await cli("sync", "--once")
        assert synced.returncode == 0, synced
        sim.echo_credentials = True
        sim.faults.add("status", status=400, method="POST",
                       path_prefix=f"/v2.2/Orders/{draft}/Status", retry_after=None)
        cancel = await cli("cancel", f"prints:{draft}", "--wait")
        assert cancel.returncode == 1 and ECHO in cancel.stdout, cancel
        sim.faults.add("status", status=401, path_prefix="/v2.2/Orders", retry_after=None)
        refused = await cli("sync", "--once")
        assert refused.returncode == 1, refused
        assert ECHO in refused.error_lines[0] and REDACTED in refused.error_lines[0], refused
        listed = await cli("actions", "show", "1", "--json")
        assert REDACTED in json_data(listed)["last_error"], listed
        assert_nowhere([API_KEY], [synced, cancel, refused, listed], ledger)
    finally:
        await sim.stop()


# ------------------------------------------------------------------ only the secrets needed

async def test_each_command_needs_only_the_secrets_of_the_vendors_it_talks_to(
    fotoware_sim, tmp_path  # noqa: F811
):
    ledger = tmp_path / "ledger.db"
    config = tmp_path / "ordersync.toml"
    # two vendors; the Pwinty key's variable is never set, and nothing listens there
    config.write_text(fotoware_toml(fotoware_sim.base_url, ledger) + "\n" + pwinty_toml(
        "http://127.0.0.1:9/v2.2", ledger).split("\n\n", 1)[1], encoding="utf-8")

    async def cli(*args: str, env: dict[str, str]) -> CliResult:
        return await arun_cli("--config", str(config), *args, env=env, cwd=tmp_path)

    everything = await cli("sync", "--once", env={SECRET_ENV: SIM_SECRET})
    assert everything.returncode == 2, everything
    assert everything.stderr_lines == [
        f"ordersync: error: {config}: vendors.prints.api_key_env: environment variable"
        f" {KEY_ENV} is not set"], everything
    assert not ledger.exists(), "refused before the ledger was touched"
    one = await cli("sync", "--once", "--vendor", "fotoware-main", env={SECRET_ENV: SIM_SECRET})
    assert one.returncode == 0 and "fotoware-main: 40 new" in one.stdout, one
    first = f"fotoware-main:{fotoware_sim.order_ids()[0]}"
    reads = [await cli(*args, env={}) for args in (
        ["orders", "list", "--json"], ["orders", "show", first], ["actions", "list"])]
    for result in reads:  # read-only commands need no secret at all
        assert result.returncode == 0 and result.stderr == "", result
    assert len(json_data(reads[0])) == 40


async def test_secrets_repeated_as_form_fields_and_basic_auth_are_hidden(write_config,  # noqa: F811
                                                                         tmp_path):
    """A vendor repeats the token request as it went: the password form-encoded, the client
    key and secret as the base64 of HTTP Basic auth. Secrets with ``+ / = @ &`` and spaces
    change on the way; neither spelling may come out."""
    secret, password = "q8Zt+Vw/Lk3Rr9==-rs-2c7f", "p@ss w0rd&more-5e1a"  # noqa: S105
    sim = ResellerSimulator(orders=3, client_secret=secret, password="rotated-on-the-server")
    base_url = await sim.start()
    sim.echo_credentials = True
    try:
        config = write_config(reseller_toml(base_url, tmp_path))
        result = await arun_cli("--log-level", "debug", "--config", str(config), "sync",
                                "--once", env={RS_SECRET_ENV: secret, RS_PASSWORD_ENV: password},
                                cwd=tmp_path)
        sent = [r.body for r in sim.requests if r.path == "/oauth/token"]
    finally:
        await sim.stop()
    assert result.returncode == 1, result
    assert sent and quote_plus(password).encode() in sent[0]     # it went out form-encoded
    encoded = base64.b64encode(f"sim-client-key:{secret}".encode()).decode()
    # the vendor repeated the Basic credential (bare and with its scheme) and the form body
    assert ECHO in result.error_lines[0], result
    assert result.error_lines[0].count(REDACTED) >= 3, result
    assert_nowhere([secret, password, quote_plus(password), quote_plus(secret), encoded],
                   [result], tmp_path / "ledger.db")
