"""Typed configuration, read once at start-up from TOML.

Every problem is a :class:`ConfigError` whose one line names the file and the key. Secrets are
never values in the file: a secret option ``x`` is given as ``x_env`` (an environment
variable's name) or ``x_file`` (a file holding it). A secret is read when it is first needed
(:class:`Secrets`), so a command needs only the secrets of the vendors it talks to; once
read, it is registered for redaction (:mod:`ordersync.redaction`).
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from .constants import CONFIG_MAX_BYTES, DEFAULT_LEDGER_PATH, SECRET_MAX_BYTES
from .contract import AdapterSpec, Option
from .errors import ConfigError, FileUnreadable
from .files import read_text
from .http import RateLimit, RetryPolicy
from .intake import Limits
from .ledger import ledger_location
from .redaction import register
from .registry import adapter as find_adapter
from .registry import adapters
from .report.settings import ReportSettings, parse_report_settings

DEFAULT_LIMITS = Limits()
MAX_SERVER_CONNECTIONS = 1024
"""The most ``[server] max_connections`` allows: each is a file descriptor, and 1024 is a
common soft limit on them (the systemd unit raises it, for the ledger and vendors)."""

CORE_VENDOR_OPTIONS: dict[str, Option] = {
    "adapter": Option(str, required=True),
    "base_url": Option(str, required=True),
    "poll_interval_s": Option(float, default=60.0),
    "timeout_s": Option(float, default=30.0),
    "max_attempts": Option(int, default=5),
    "backoff_base_s": Option(float, default=0.5),
    "backoff_max_s": Option(float, default=30.0),
    "call_deadline_s": Option(float, default=60.0),
    "poll_deadline_s": Option(float, default=900.0),
    "rate_limit": Option(dict, default=None),
    "action_max_attempts": Option(int, default=8),
    "action_backoff_base_s": Option(float, default=2.0),
    "action_backoff_max_s": Option(float, default=600.0),
    "action_verify_after_s": Option(float, default=None),
    "max_order_bytes": Option(int, default=DEFAULT_LIMITS.max_order_bytes),
    "max_items": Option(int, default=DEFAULT_LIMITS.max_items),
    "max_string_chars": Option(int, default=DEFAULT_LIMITS.max_string_chars),
    "max_pages_per_poll": Option(int, default=10_000),
    "page_writer_after_orders": Option(int, default=1000),
}


@dataclass(frozen=True, slots=True)
class ActionPolicy:
    """How often and how patiently an outbox action is tried."""

    max_attempts: int = 8
    backoff_base_s: float = 2.0
    backoff_max_s: float = 600.0
    verify_after_s: float = 30.0
    """How long after a write's answer was lost it is verified: at least the request
    timeout, so that a request the vendor was still processing has landed."""


@dataclass(frozen=True, slots=True)
class SecretSource:
    """Where one secret comes from: an environment variable or a file."""

    where: str
    """``{source}: vendors.NAME``, for error messages."""
    key: str
    variable: str | None = None
    path: Path | None = None

    def read(self, environ: Mapping[str, str]) -> str:
        """The secret's value, or a ConfigError naming the variable or file."""
        if self.variable is not None:
            value = environ.get(self.variable)
            if not value:
                raise ConfigError(f"{self.where}.{self.key}_env: environment variable"
                                  f" {self.variable} is not set")
            return value
        file_key = f"{self.where}.{self.key}_file"
        if self.path is None:  # parse_config gives every secret a variable or a file
            raise ConfigError(f"{self.where}: no {self.key}_env or {file_key} given")
        try:
            value = read_text(self.path, SECRET_MAX_BYTES, "a secret file").strip()
        except FileUnreadable as exc:
            raise ConfigError(f"{file_key}: {exc}") from None
        if not value:
            raise ConfigError(f"{file_key}: {self.path} is empty")
        return value


class Secrets(Mapping[str, str]):
    """A vendor's secrets, each read when first asked for (then kept and registered)."""

    def __init__(self, sources: Mapping[str, SecretSource], environ: Mapping[str, str]) -> None:
        self._sources = dict(sources)
        self._environ = environ
        self._values: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        if key not in self._values:
            value = self._sources[key].read(self._environ)
            register(value)
            self._values[key] = value
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def files(self) -> list[Path]:
        """The files these secrets are read from (``*_file``; none for ``*_env``)."""
        return [source.path for source in self._sources.values() if source.path is not None]

    def load(self) -> None:
        """Read every secret now: a missing one is a ConfigError before any work starts."""
        for key in self._sources:
            self[key]

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._sources)})"


@dataclass(frozen=True)
class VendorConfig:
    """One configured vendor instance."""

    name: str
    adapter: str
    base_url: str
    poll_interval_s: float = 60.0
    timeout_s: float = 30.0
    poll_deadline_s: float = 900.0
    rate_limit: RateLimit = RateLimit()
    retry: RetryPolicy = RetryPolicy()
    actions: ActionPolicy = ActionPolicy()
    limits: Limits = Limits()
    max_pages_per_poll: int = 10_000
    page_writer_after_orders: int = 1000
    """Orders a poll hands on before its pages are written by a page writer process
    (ordersync.ledger.pagewriter): about 0.2 s of CPU to start, paid for by a big poll."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=lambda: Secrets({}, {}), repr=False, compare=False)
    """Read on first use (see :class:`Secrets`): only a vendor talked to needs its secrets."""


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: the status server ``ordersync run`` starts (docs/operations.md)."""

    host: str = "127.0.0.1"
    port: int = 8787
    secrets: Secrets = field(default_factory=lambda: Secrets({}, {}), repr=False, compare=False)
    """``token``, if configured: the bearer token POST /actions needs (without one, POST
    /actions is refused)."""
    max_connections: int = 64
    """Connections served at once; one more is answered 503 and closed without being read,
    so no client can take the file descriptors the daemon needs."""

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return False


@dataclass(frozen=True)
class HeartbeatConfig:
    """``[heartbeat]``: the file ``ordersync run`` keeps fresh while its loops make progress,
    and ``ordersync check`` reads."""

    path: Path | None = None
    """None: ``<ledger>.heartbeat``, beside the ledger."""
    interval_s: float = 10.0
    """How often the heartbeat is written (and systemd's watchdog pinged)."""
    stale_after_s: float = 60.0
    """An older heartbeat means the daemon is stopped or wedged."""


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    source: str
    ledger_path: Path
    """The SQLite ledger file (its lock file lives beside it)."""
    vendors: dict[str, VendorConfig]
    ledger_url: str
    """``ledger.url`` as given (or ``ledger.path``): what :func:`ordersync.ledger.open_ledger`
    opens."""
    report: ReportSettings = ReportSettings()
    """The ``[report]`` thresholds (defaults when the section is absent)."""
    server: ServerConfig | None = None
    """None: no ``[server]`` section, no status server."""
    heartbeat: HeartbeatConfig = HeartbeatConfig()

    @property
    def heartbeat_path(self) -> Path:
        return self.heartbeat.path or Path(f"{self.ledger_path}.heartbeat")

    def secret_files(self) -> list[Path]:
        """Every secret file the configuration names (vendors' and the server's)."""
        secrets = [vendor.secrets for vendor in self.vendors.values()]
        if self.server is not None:
            secrets.append(self.server.secrets)
        return [path for each in secrets for path in each.files()]

    def vendor(self, name: str) -> VendorConfig:
        if name not in self.vendors:
            known = ", ".join(sorted(self.vendors)) or "none configured"
            raise ConfigError(f"{self.source}: no vendor instance {name!r} (known: {known})")
        return self.vendors[name]


def load_config(path: str | Path, environ: Mapping[str, str]) -> Config:
    """Read and check a TOML configuration file."""
    path = Path(path)
    text = read_text(path, CONFIG_MAX_BYTES, "a configuration file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, source=str(path), environ=environ, base_dir=path.parent)


def parse_config(
    data: Mapping[str, Any], *, source: str, environ: Mapping[str, str], base_dir: Path
) -> Config:
    """Check a parsed configuration; ``base_dir`` resolves relative secret files."""
    unknown = set(data) - {"ledger", "vendors", "report", "server", "heartbeat"}
    if unknown:
        raise ConfigError(f"{source}: unknown section {sorted(unknown)[0]!r}")
    ledger = data.get("ledger", {})
    _expect_table(ledger, "ledger", source)
    extra = set(ledger) - {"url", "path"}
    if extra:
        raise ConfigError(f"{source}: ledger.{sorted(extra)[0]}: unknown key")
    if len(ledger) > 1:
        raise ConfigError(f"{source}: ledger: give url or path, not both")
    key = next(iter(ledger), "path")
    ledger_url = ledger.get(key, DEFAULT_LEDGER_PATH)
    if not isinstance(ledger_url, str) or not ledger_url:
        raise ConfigError(f"{source}: ledger.{key}: expected a non-empty string")
    try:
        ledger_path = ledger_location(ledger_url) if key == "url" else Path(ledger_url)
    except ConfigError as exc:
        raise ConfigError(f"{source}: ledger.url: {exc}") from None
    vendors_table = data.get("vendors", {})
    _expect_table(vendors_table, "vendors", source)
    vendors = {
        name: _vendor(name, table, source=source, environ=environ, base_dir=base_dir)
        for name, table in vendors_table.items()
    }
    report = parse_report_settings(data.get("report", {}), source)
    return Config(source=source, ledger_path=ledger_path, vendors=vendors,
                  ledger_url=ledger_url if key == "url" else str(ledger_path), report=report,
                  server=(_server(data["server"], source, base_dir, environ) if "server" in data
                          else None),
                  heartbeat=_heartbeat(data.get("heartbeat", {}), source, base_dir))


def _section(table: Any, name: str, source: str, keys: tuple[str, ...]) -> str:
    """Check a small section's keys; returns the ``where`` of its error messages."""
    _expect_table(table, name, source)
    extra = set(table) - set(keys)
    if extra:
        raise ConfigError(f"{source}: {name}.{sorted(extra)[0]}: unknown key (expected"
                          f" {', '.join(keys)})")
    return f"{source}: {name}"


def _server(table: Any, source: str, base_dir: Path, environ) -> ServerConfig:
    where = _section(table, "server", source, ("listen", "token_env", "token_file",
                                               "max_connections"))
    listen = _typed(table.get("listen", ServerConfig().listen), str, f"{where}.listen")
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}.listen: expected HOST:PORT (127.0.0.1:8787, [::1]:8787),"
                          f" got {listen!r}")
    max_connections = _typed(table.get("max_connections", ServerConfig.max_connections), int,
                             f"{where}.max_connections")
    if not 0 < max_connections <= MAX_SERVER_CONNECTIONS:
        raise ConfigError(f"{where}.max_connections: expected 1 to {MAX_SERVER_CONNECTIONS},"
                          f" got {max_connections}")
    token = _secret(table, "token", Option(str), where, base_dir)
    return ServerConfig(host=host, port=int(port), max_connections=max_connections,
                        secrets=Secrets({"token": token} if token else {}, environ))


def _heartbeat(table: Any, source: str, base_dir: Path) -> HeartbeatConfig:
    where = _section(table, "heartbeat", source, ("path", "interval_s", "stale_after_s"))
    default = HeartbeatConfig()
    values = {key: _typed(table.get(key, getattr(default, key)), float, f"{where}.{key}")
              for key in ("interval_s", "stale_after_s")}
    for key, value in values.items():
        if value <= 0:
            raise ConfigError(f"{where}.{key}: must be greater than 0")
    if values["stale_after_s"] <= values["interval_s"]:
        raise ConfigError(f"{where}.stale_after_s: must be longer than interval_s"
                          f" ({values['interval_s']:g})")
    path = None
    if "path" in table:
        name = _typed(table["path"], str, f"{where}.path")
        path = Path(name) if Path(name).is_absolute() else base_dir / name
    return HeartbeatConfig(path=path, **values)


def _expect_table(value: Any, key: str, source: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {key}: expected a table")


def _vendor(name: str, table: Any, *, source: str, environ, base_dir: Path) -> VendorConfig:
    where = f"{source}: vendors.{name}"
    _expect_table(table, f"vendors.{name}", source)
    if ":" in name or not name.strip():
        raise ConfigError(f"{where}: instance names may not be empty or contain ':'")
    adapter_name = table.get("adapter")
    if not isinstance(adapter_name, str):
        raise ConfigError(f"{where}.adapter: missing (the adapter to use; installed: "
                          + ", ".join(sorted(adapters())) + ")")
    try:
        spec = find_adapter(adapter_name)
    except ConfigError as exc:
        raise ConfigError(f"{where}.adapter: {exc}") from None
    options = {**CORE_VENDOR_OPTIONS, **spec.options}
    values, secrets = _check_options(table, options, spec, where, base_dir)
    core = {**{k: o.default for k, o in CORE_VENDOR_OPTIONS.items()}, **spec.defaults}
    core.update({k: v for k, v in values.items() if k in CORE_VENDOR_OPTIONS})
    base_url = core["base_url"]
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.base_url: expected an http:// or https:// URL")
    if "@" in urlsplit(base_url).netloc:
        raise ConfigError(f"{where}.base_url: credentials in the URL are not allowed (they"
                          " would be printed and logged): give secrets as *_env or *_file")
    try:
        host = URL(base_url).host
    except ValueError as exc:
        raise ConfigError(f"{where}.base_url: not a usable URL ({exc})") from None
    if not host:
        raise ConfigError(f"{where}.base_url: no host name in it")
    for key in ("poll_interval_s", "timeout_s", "backoff_base_s", "backoff_max_s",
                "call_deadline_s", "poll_deadline_s", "action_backoff_base_s",
                "action_backoff_max_s"):
        if core[key] <= 0:
            raise ConfigError(f"{where}.{key}: must be greater than 0")
    for key in ("max_attempts", "action_max_attempts", "max_order_bytes", "max_items",
                "max_string_chars", "max_pages_per_poll"):
        if core[key] < 1:
            raise ConfigError(f"{where}.{key}: must be at least 1")
    if core["page_writer_after_orders"] < 0:
        raise ConfigError(f"{where}.page_writer_after_orders: must be 0 or more")
    verify_after_s = core["action_verify_after_s"]
    if verify_after_s is None:
        verify_after_s = core["timeout_s"]
    elif verify_after_s < core["timeout_s"]:
        raise ConfigError(f"{where}.action_verify_after_s: must be at least timeout_s"
                          f" ({core['timeout_s']}): a write still in flight must have landed")
    return VendorConfig(
        name=name,
        adapter=adapter_name,
        base_url=base_url,
        poll_interval_s=float(core["poll_interval_s"]),
        timeout_s=float(core["timeout_s"]),
        poll_deadline_s=float(core["poll_deadline_s"]),
        rate_limit=_rate_limit(core["rate_limit"], f"{where}.rate_limit"),
        retry=RetryPolicy(
            max_attempts=core["max_attempts"],
            backoff_base_s=float(core["backoff_base_s"]),
            backoff_max_s=float(core["backoff_max_s"]),
            call_deadline_s=float(core["call_deadline_s"]),
        ),
        actions=ActionPolicy(
            max_attempts=core["action_max_attempts"],
            backoff_base_s=float(core["action_backoff_base_s"]),
            backoff_max_s=float(core["action_backoff_max_s"]),
            verify_after_s=float(verify_after_s),
        ),
        limits=Limits(max_order_bytes=core["max_order_bytes"], max_items=core["max_items"],
                      max_string_chars=core["max_string_chars"]),
        max_pages_per_poll=core["max_pages_per_poll"],
        page_writer_after_orders=core["page_writer_after_orders"],
        settings={k: v for k, v in values.items() if k not in CORE_VENDOR_OPTIONS},
        secrets=Secrets(secrets, environ),
    )


def _check_options(table, options: Mapping[str, Option], spec: AdapterSpec, where,
                   base_dir: Path) -> tuple[dict, dict[str, SecretSource]]:
    values: dict[str, Any] = {}
    secrets: dict[str, SecretSource] = {}
    allowed = set()
    for key, option in options.items():
        if option.secret:
            allowed |= {f"{key}_env", f"{key}_file"}
        else:
            allowed.add(key)
    for key in table:
        if key not in allowed:
            hint = ""
            if key in options and options[key].secret:
                hint = f" (secrets are never written in the file: use {key}_env or {key}_file)"
            raise ConfigError(f"{where}.{key}: unknown key for adapter {spec.name!r}{hint}")
    for key, option in options.items():
        if option.secret:
            secret = _secret(table, key, option, where, base_dir)
            if secret is not None:
                secrets[key] = secret
            continue
        if key not in table:
            if option.required:
                raise ConfigError(f"{where}.{key}: missing")
            if option.default is not None:
                values[key] = option.default
            continue
        values[key] = _typed(table[key], option.type, f"{where}.{key}")
    return values, secrets


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value}")
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {str(value).lower()}")
    if not isinstance(value, kind):
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                 dict: "a table"}
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        raise ConfigError(f"{where}: expected {names.get(kind, kind.__name__)}, got {shown}")
    return value


def _secret(table, key: str, option: Option, where: str, base_dir: Path) -> SecretSource | None:
    """Where the secret ``key`` comes from (checked now, read when first needed)."""
    env_key, file_key = f"{key}_env", f"{key}_file"
    if env_key in table and file_key in table:
        raise ConfigError(f"{where}: give either {env_key} or {file_key}, not both")
    if env_key in table:
        variable = _typed(table[env_key], str, f"{where}.{env_key}")
        return SecretSource(where, key, variable=variable)
    if file_key in table:
        name = _typed(table[file_key], str, f"{where}.{file_key}")
        return SecretSource(where, key, path=Path(name) if Path(name).is_absolute()
                            else base_dir / name)
    if option.required:
        raise ConfigError(f"{where}: missing secret {key} (set {env_key} or {file_key})")
    return None


def _rate_limit(value: Any, where: str) -> RateLimit:
    if value is None:
        return RateLimit()
    extra = set(value) - {"requests", "per_s"}
    if extra:
        raise ConfigError(f"{where}.{sorted(extra)[0]}: unknown key (expected requests, per_s)")
    default = RateLimit()
    requests = _typed(value.get("requests", default.requests), int, f"{where}.requests")
    per_s = _typed(value.get("per_s", default.per_s), float, f"{where}.per_s")
    if requests < 1:
        raise ConfigError(f"{where}.requests: must be at least 1")
    if per_s <= 0:
        raise ConfigError(f"{where}.per_s: must be greater than 0")
    return RateLimit(requests=requests, per_s=per_s)
