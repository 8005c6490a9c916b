"""load_config: every bad configuration is one ConfigError line naming the file and the key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ordersync.config import load_config
from ordersync.errors import ConfigError
from ordersync.http import RateLimit, RetryPolicy
from ordersync.redaction import known
from tests.cli_support import BAD_CONFIGS, BadConfig

VENDOR = """\
[vendors.fw]
adapter = "fotoware"
base_url = "https://dam.example.com"
client_id = "ordersync"
client_secret_env = "FW_SECRET"
"""


def refused(path: Path, environ: dict | None = None, *, when_used: bool = False) -> str:
    """The one line refusing the configuration (``when_used``: when its secrets are read)."""
    environ = environ if environ is not None else {"FW_SECRET": "s3cret"}
    with pytest.raises(ConfigError) as caught:
        config = load_config(path, environ)
        if when_used:
            for vendor in config.vendors.values():
                vendor.secrets.load()
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[c.id for c in BAD_CONFIGS])
def test_bad_configuration_is_one_line_naming_file_and_key(case: BadConfig, tmp_path):
    path, environ, expected = case.materialize(tmp_path)
    if case.when_used:  # the configuration itself is fine until the secret is needed
        load_config(path, environ)
    message = refused(path, environ, when_used=case.when_used)
    assert case.matches(message, expected), f"\n  got: {message}\n want: {expected}"
    assert message.startswith(f"{path}: ")


def test_invalid_toml_says_where(tmp_path):
    path = tmp_path / "ordersync.toml"
    path.write_text('[ledger]\npath = "x.db"\n\n[vendors.fw\n', encoding="utf-8")
    message = refused(path)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "line 4" in message


def test_unknown_adapter_lists_the_installed_ones(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(VENDOR.replace('"fotoware"', '"fotowear"'), encoding="utf-8")
    message = refused(path)
    assert message.startswith(f"{path}: vendors.fw.adapter: unknown adapter 'fotowear';"
                              " installed adapters: ")
    assert "fotoware" in message.split("installed adapters: ")[1].split(", ")


def test_a_directory_is_not_a_configuration(tmp_path):
    message = refused(tmp_path)
    assert message == f"{tmp_path}: cannot read it (Is a directory)"


def test_empty_instance_name_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(VENDOR.replace("[vendors.fw]", '[vendors." "]'), encoding="utf-8")
    assert refused(path) == f"{path}: vendors. : instance names may not be empty or contain ':'"


def test_secret_file_relative_to_the_configuration_not_the_working_directory(
    tmp_path, monkeypatch
):
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "fw.secret").write_text("from-the-file\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "fw.secret").write_text("wrong-one\n", encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    path = conf / "ordersync.toml"
    path.write_text(VENDOR.replace('client_secret_env = "FW_SECRET"',
                                   'client_secret_file = "fw.secret"'), encoding="utf-8")
    config = load_config(path, {})
    assert config.vendors["fw"].secrets == {"client_secret": "from-the-file"}


def test_secret_file_absolute_path_and_surrounding_whitespace(tmp_path):
    secret = tmp_path / "abs.secret"
    secret.write_text("\n  padded-secret \n", encoding="utf-8")
    path = tmp_path / "sub" / "ordersync.toml"
    path.parent.mkdir()
    path.write_text(VENDOR.replace('client_secret_env = "FW_SECRET"',
                                   f"client_secret_file = '{secret}'"), encoding="utf-8")
    assert load_config(path, {}).vendors["fw"].secrets["client_secret"] == "padded-secret"


def test_missing_relative_secret_file_names_the_resolved_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conf = tmp_path / "etc"
    conf.mkdir()
    path = conf / "ordersync.toml"
    path.write_text(VENDOR.replace('client_secret_env = "FW_SECRET"',
                                   'client_secret_file = "secrets/fw"'), encoding="utf-8")
    assert refused(path, when_used=True) == (
        f"{path}: vendors.fw.client_secret_file: {conf}/secrets/fw: cannot read it"
        " (No such file or directory)")


def test_secret_from_the_environment_mapping_given(tmp_path, monkeypatch):
    monkeypatch.setenv("FW_SECRET", "from-os-environ")  # must not be consulted
    path = tmp_path / "c.toml"
    path.write_text(VENDOR, encoding="utf-8")
    assert load_config(path, {"FW_SECRET": "given"}).vendors["fw"].secrets == {
        "client_secret": "given"}
    assert refused(path, {}, when_used=True) == (
        f"{path}: vendors.fw.client_secret_env: environment variable FW_SECRET is not set")


def test_the_secret_is_not_in_the_vendor_repr(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(VENDOR, encoding="utf-8")
    config = load_config(path, {"FW_SECRET": "s3cret-do-not-print"})
    assert "s3cret-do-not-print" not in repr(config)


def test_several_instances_of_one_adapter(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        VENDOR
        + VENDOR.replace("[vendors.fw]", "[vendors.fw-archive]")
        .replace("dam.example.com", "archive.example.com")
        .replace('"FW_SECRET"', '"FW_ARCHIVE_SECRET"'),
        encoding="utf-8",
    )
    config = load_config(path, {"FW_SECRET": "one", "FW_ARCHIVE_SECRET": "two"})
    assert sorted(config.vendors) == ["fw", "fw-archive"]
    assert {v.adapter for v in config.vendors.values()} == {"fotoware"}
    assert config.vendor("fw").base_url == "https://dam.example.com"
    assert config.vendor("fw-archive").base_url == "https://archive.example.com"
    assert config.vendor("fw-archive").secrets == {"client_secret": "two"}


def test_defaults_applied(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(VENDOR, encoding="utf-8")
    config = load_config(path, {"FW_SECRET": "s3cret"})
    assert config.source == str(path)
    assert config.ledger_path == Path("var/ordersync.db")
    fw = config.vendor("fw")
    assert fw.name == "fw" and fw.adapter == "fotoware"
    assert fw.poll_interval_s == 60.0
    assert fw.rate_limit == RateLimit(requests=5, per_s=1.0)
    assert fw.timeout_s == 30.0 and fw.poll_deadline_s == 900.0
    assert fw.retry == RetryPolicy(max_attempts=5, backoff_base_s=0.5, backoff_max_s=30.0,
                                   call_deadline_s=60.0)
    assert dict(fw.settings) == {"client_id": "ordersync", "full_scan_interval_s": 86400.0}
    assert dict(fw.secrets) == {"client_secret": "s3cret"}


@pytest.mark.parametrize("ledger, path", [
    ("url = 'sqlite:///var/l.db'", "var/l.db"), ("url = 'sqlite:////srv/l.db'", "/srv/l.db"),
    ("url = 'srv/l.db'", "srv/l.db"), ("path = 'srv/l.db'", "srv/l.db")])
def test_ledger_url_or_path(tmp_path, ledger, path):
    config_file = tmp_path / "c.toml"
    config_file.write_text(f"[ledger]\n{ledger}\n\n" + VENDOR, encoding="utf-8")
    config = load_config(config_file, {"FW_SECRET": "s3cret"})
    assert config.ledger_path == Path(path)


def test_values_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        "[ledger]\npath = '/srv/ordersync/ledger.db'\n\n" + VENDOR
        + "poll_interval_s = 15\n"          # an integer where a number is wanted
        + "timeout_s = 2.5\n"
        + "max_attempts = 3\n"
        + "backoff_base_s = 0.1\nbackoff_max_s = 4\n"
        + "call_deadline_s = 20\npoll_deadline_s = 120\n"
        + "full_scan_interval_s = 3600\n"
        + "rate_limit = { requests = 50, per_s = 2 }\n",
        encoding="utf-8",
    )
    fw = load_config(path, {"FW_SECRET": "s3cret"}).vendor("fw")
    assert load_config(path, {"FW_SECRET": "s3cret"}).ledger_path == Path(
        "/srv/ordersync/ledger.db")
    assert fw.poll_interval_s == 15.0 and isinstance(fw.poll_interval_s, float)
    assert fw.timeout_s == 2.5
    assert fw.retry == RetryPolicy(max_attempts=3, backoff_base_s=0.1, backoff_max_s=4.0,
                                   call_deadline_s=20.0)
    assert fw.poll_deadline_s == 120.0
    assert fw.rate_limit == RateLimit(requests=50, per_s=2.0)
    assert fw.settings["full_scan_interval_s"] == 3600.0
    assert fw.settings["client_id"] == "ordersync"


def test_rate_limit_partial_table_keeps_the_other_default(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(VENDOR + "rate_limit = { requests = 20 }\n", encoding="utf-8")
    assert load_config(path, {"FW_SECRET": "s"}).vendor("fw").rate_limit == RateLimit(20, 1.0)


def test_no_vendors_is_a_valid_configuration(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[ledger]\npath = 'x.db'\n", encoding="utf-8")
    config = load_config(path, {})
    assert config.vendors == {}


def test_unknown_instance_names_the_known_ones(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(VENDOR, encoding="utf-8")
    config = load_config(path, {"FW_SECRET": "s"})
    with pytest.raises(ConfigError) as caught:
        config.vendor("prints")
    assert str(caught.value) == f"{path}: no vendor instance 'prints' (known: fw)"


def test_nan_poll_interval_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(VENDOR + "poll_interval_s = nan\n", encoding="utf-8")
    try:
        config = load_config(path, {"FW_SECRET": "s"})
    except ConfigError as exc:
        assert str(exc) == f"{path}: vendors.fw.poll_interval_s: expected a finite number, got nan"
    else:
        assert not math.isnan(config.vendor("fw").poll_interval_s)


def test_key_with_a_newline_still_gives_one_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[ledger]\npath = "x.db"\n"size\\nmore" = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "\n" not in str(caught.value)


def test_secrets_are_read_only_when_needed_then_kept(tmp_path):
    secret_file = tmp_path / "fw.secret"
    path = tmp_path / "c.toml"
    path.write_text(VENDOR.replace('client_secret_env = "FW_SECRET"',
                                   "client_secret_file = 'fw.secret'"), encoding="utf-8")
    config = load_config(path, {})  # the file does not exist yet: nobody needed it
    secret_file.write_text("read-on-first-use\n", encoding="utf-8")
    secrets = config.vendor("fw").secrets
    assert secrets["client_secret"] == "read-on-first-use"
    secret_file.write_text("changed-later\n", encoding="utf-8")
    assert secrets["client_secret"] == "read-on-first-use"
    assert "read-on-first-use" in known()  # registered for redaction once read


def test_a_configuration_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"[ledger]\npath = 'caf\xe9.db'\n")
    assert refused(path) == f"{path}: not UTF-8 text (byte 0xe9 at offset 20)"


def test_a_secret_file_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / "fw.secret").write_bytes(b"\xff\xfesecret")
    path = tmp_path / "c.toml"
    path.write_text(VENDOR.replace('client_secret_env = "FW_SECRET"',
                                   "client_secret_file = 'fw.secret'"), encoding="utf-8")
    assert refused(path, when_used=True) == (
        f"{path}: vendors.fw.client_secret_file: {tmp_path}/fw.secret: not UTF-8 text"
        " (byte 0xff at offset 0)")
