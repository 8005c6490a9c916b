"""``ordersync demo``: the whole story on loopback, for a new operator, in this order.

1. every adapter's simulator started (where each listens);
2. a backfill into a fresh ledger (a progress bar on a terminal);
3. an idle re-poll (cheap: count its requests) and sample actions pushed through the outbox;
4. a vendor failing, planted through its simulator's own controls (every request dropped
   for as many polls as make it down), with a sample action queued into the outage, so
   the report has something to say besides what the seeded data holds;
5. the morning report printed (the table) and written as one HTML file beside the ledger;
6. with ``--keep-running``: the daemon (:meth:`Service.run`) and its status server on
   loopback until Ctrl-C or SIGTERM, then the simulators stopped.

The demo configures itself through the same checks as a real configuration file: each
simulator's settings become a ``[vendors.NAME]`` table whose secrets (and the status
server's write token, new each run) come from an environment mapping, never from a file.
It writes that configuration, secrets named by variable only, to ``ordersync.toml``, so
``report``, ``orders list`` and ``check`` work against the demo's ledger during and after it.

The demo replaces only what it made: its ledger is marked by a file beside it
(``ordersync.db.demo``, which also records what the ledger held as the demo left it: its
events, its actions by state and each instance's polls; a ledger synced or acted on since
is no longer the demo's, while a ``report``, whose only write is its exceptions, leaves it
the demo's) and its configuration by its first line.
Anything else in the way
(a real ledger, its WAL, a configuration someone wrote) is refused with one line, and a
ledger another process holds is never touched (its lock is taken first).
"""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import orjson

from .actions import enqueue, enqueue_chain
from .cli_report import render, write_atomically
from .config import Config, parse_config
from .contract import Simulator
from .daemon import LedgerLock, Service
from .errors import ConfigError
from .ledger import open_ledger, private_folder
from .metrics import Metrics
from .progress import TerminalProgress
from .registry import adapters
from .report import build_report
from .sync import PollResult
from .text import columns, printable

CONFIG_HEADER = "# Written by `ordersync demo`: reads the demo ledger (the simulators are gone).\n"
MARKER_TEXT = "Made by `ordersync demo`: the next demo run may replace this ledger.\n"
DEMO_LIMITS = {"rate_limit": {"requests": 1000, "per_s": 1.0}, "backoff_base_s": 0.05}
"""The simulators run on this machine: no need to pace the backfill, or to wait long
before retrying the vendor the demo makes fail."""
REPORT_NAME = "report.html"
"""The HTML report, beside the demo's ledger."""
OUTAGE = "drop"
"""What the failing vendor does to every request: drops the connection unanswered (the
client retries, then the poll fails)."""
TOKEN_VARIABLE = "ORDERSYNC_DEMO_SERVER_TOKEN"
"""Where the status server's write token is, in the demo's environment mapping."""

Say = Callable[[str], None]


def _silent(line: str) -> None:
    """What the demo says goes nowhere (``--json`` prints only the summary)."""


def _clear_previous_demo(directory: Path, ledger_path: Path, config_path: Path) -> None:
    """Remove the ledger of an earlier demo run; refuse anything the demo did not make."""
    marker = Path(f"{ledger_path}.demo")
    lock = LedgerLock(ledger_path)
    lock.acquire()  # LedgerBusy (exit 3) if a daemon or command is using it
    try:
        files = [Path(f"{ledger_path}{suffix}") for suffix in ("", "-wal", "-shm")]
        if any(f.exists() for f in files) and not marker.is_file():
            raise ConfigError(f"--dir {directory}: {ledger_path} is not a ledger the demo made;"
                              " the demo never replaces it (choose another --dir)")
        if marker.is_file() and not _as_marked(ledger_path, _read_marker(marker)):
            raise ConfigError(f"--dir {directory}: {ledger_path} has been used since the demo"
                              " made it (synced or acted on); the demo never replaces it"
                              " (choose another --dir)")
        if config_path.exists() and not _written_by_demo(config_path):
            raise ConfigError(f"--dir {directory}: {config_path} is not a configuration the"
                              " demo wrote; the demo never replaces it (choose another --dir)")
        html = directory / REPORT_NAME
        if html.exists() and not marker.is_file():
            raise ConfigError(f"--dir {directory}: {html} is not a report the demo wrote;"
                              " the demo never replaces it (choose another --dir)")
        marker.write_text(orjson.dumps({"note": MARKER_TEXT.strip()}).decode(), encoding="utf-8")
        for f in files:
            f.unlink(missing_ok=True)
    finally:
        lock.release()


def _fingerprint(ledger_path: Path) -> dict:
    """What the ledger held when the demo left it: a sync records a poll (and events), an
    action queued or pushed changes the outbox; the report's exceptions are left out."""
    if not ledger_path.exists():
        return {"note": MARKER_TEXT.strip()}
    ledger = open_ledger(ledger_path)
    try:
        return {"note": MARKER_TEXT.strip(), "events": ledger.count_events(),
                "actions": ledger.outbox.counts(),
                "polls": [[h.instance, h.last_poll_at, h.consecutive_failures, h.paused]
                          for h in ledger.vendor_health()]}
    finally:
        ledger.close()


def _as_marked(ledger_path: Path, recorded: dict | None) -> bool:
    """Whether the ledger is as the demo left it. It is opened only when the marker holds
    what the demo records on leaving (so it is a ledger the demo made and opened before):
    a stray marker never leads the demo to open, let alone migrate, someone's ledger."""
    if ledger_path.exists() and not (recorded and "events" in recorded):
        return False
    return _fingerprint(ledger_path) == recorded


def _read_marker(marker: Path) -> dict | None:
    try:
        value = orjson.loads(marker.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _written_by_demo(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline() == CONFIG_HEADER
    except (OSError, UnicodeDecodeError):
        return False


async def run_demo(directory: Path, *, orders: int, say: Say | None = None,
                   ready: Callable[[dict], None] = lambda summary: None,
                   progress: TerminalProgress | None = None, keep_running: bool = False,
                   port: int = 0) -> dict:
    """Run the demo, telling its story through ``say`` a line at a time; ``ready`` gets the
    summary at the end (with ``keep_running``, once the status server is up). Returns it."""
    say = say or _silent
    ledger_path = directory / "ordersync.db"
    config_path = directory / "ordersync.toml"
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--dir {directory}: not a folder")
    try:
        private_folder(directory)   # it will hold a ledger of (sample) customer data
        _clear_previous_demo(directory, ledger_path, config_path)
    except OSError as exc:
        raise ConfigError(f"--dir {directory}: cannot use it as the demo's folder"
                          f" ({exc.strerror})") from None
    simulators: dict[str, Simulator] = {}
    tables: dict[str, dict] = {}
    environ: dict[str, str] = {}
    try:
        for name, spec in sorted(adapters().items()):
            if spec.simulator is None or spec.demo_settings is None:
                continue
            sim = spec.simulator(orders=orders, seed=1)
            base_url = await sim.start("127.0.0.1", 0)
            simulators[name] = sim
            table = {"adapter": name, "base_url": base_url + spec.base_path, **DEMO_LIMITS}
            for key, value in spec.demo_settings(sim, base_url).items():
                if spec.options[key].secret:
                    variable = f"ORDERSYNC_DEMO_{name.upper()}_{key.upper()}"
                    environ[variable] = value
                    table[f"{key}_env"] = variable
                else:
                    table[key] = value
            tables[name] = table
        _table(say, f"1. simulators started, {orders} orders each, on loopback",
               [("VENDOR", "LISTENS ON"), *((n, t["base_url"]) for n, t in tables.items())])
        data: dict[str, Any] = {"ledger": {"path": str(ledger_path)}, "vendors": tables}
        if keep_running:
            environ[TOKEN_VARIABLE] = secrets.token_urlsafe(24)
            data["server"] = {"token_env": TOKEN_VARIABLE}
        config = parse_config(data, source="demo", environ=environ, base_dir=directory)
        if config.server is not None:   # loopback, on --port (0: any free one)
            config = replace(config, server=replace(config.server, port=port))
        config_path.write_text(_config_text(ledger_path, tables), encoding="utf-8")
        summary = {"ledger": str(ledger_path), "config": str(config_path),
                   "simulators": {n: t["base_url"] for n, t in tables.items()}}
        await _story(config, simulators, summary, say, ready, progress, keep_running)
    finally:
        for sim in simulators.values():
            await sim.stop()
        # the ledger as this run left it, even cut short: the next run may replace it
        Path(f"{ledger_path}.demo").write_text(orjson.dumps(_fingerprint(ledger_path)).decode(),
                                               encoding="utf-8")
    if keep_running:
        say("Stopped: the daemon, its status server and the simulators. The ledger and its"
            " configuration stay for the commands above.")
    return summary


async def _story(config: Config, simulators: dict[str, Simulator], summary: dict, say: Say,
                 ready: Callable[[dict], None], progress: TerminalProgress | None,
                 keep_running: bool) -> None:
    """Steps 2 to 6 (see the module docstring), on one service; ``summary`` filled in.
    With ``keep_running`` the status server starts first (a port in use stops the demo
    before it begins) and shows the story as it happens."""
    async with AsyncExitStack() as stack:
        service = await stack.enter_async_context(_service(config, keep_running))
        listener = None
        if keep_running:
            from .server import status_server

            assert config.server is not None and isinstance(service.observer, Metrics)
            listener = await stack.enter_async_context(
                status_server(service, config.server, service.observer))
        ledger = service.ledger
        assert ledger is not None  # open inside the async with
        try:
            first = await service.run_once(progress=progress)
        finally:
            if progress is not None:
                progress.close()
        _syncs(say, f"2. backfill into {summary['ledger']}", first)
        idle = await service.run_once()
        _syncs(say, "3. idle re-poll: only what changed is read", idle)
        actions = await _sample_actions(config, service)
        _table(say, "   sample actions pushed through the outbox",
               [("ACTION", "KIND", "ORDER", "STATE", "DETAIL"),
                *((f"#{a['id']}", a["kind"], a["order"], a["state"], _detail(a))
                   for a in actions)])
        planted = await _plant_outage(config, service, simulators)
        say("  4. planted through the simulators' own controls (the seeded orders hold more:")
        say("     long waits, expiring drafts, photos the lab cannot fetch, failed executions):")
        for line in planted:
            say(f"     - {printable(line)}")
        say("")
        specs = service.specs
        now = time.time()
        report = await ledger.call(lambda led: build_report(led, specs, now, config.report))
        html_path = config.ledger_path.parent / REPORT_NAME
        write_atomically(html_path, render(report, "html"))
        say("  5. the morning report (`ordersync report`; thresholds in [report]):")
        say("")
        for line in render(report, "table").splitlines():
            say(f"     {line}" if line else "")
        say("")
        say(f"     The same report as one page: open {html_path.resolve().as_uri()}")
        say("")
        states = await ledger.call(lambda led: led.summary())
        sample = await ledger.call(lambda led: [o for name in config.vendors
                                                for o in led.orders(instance=name, limit=3)])
        summary.update(
            first_sync=[r.as_dict() for r in first], idle_sync=[r.as_dict() for r in idle],
            actions=actions, planted=planted,
            errors=[e for r in (*first, *idle) for e in r.errors],
            states=[asdict(count) for count in states],
            events=await ledger.call(lambda led: led.count_events()),
            report=report["counts"], html=str(html_path),
            sample=[{k: o.as_json()[k] for k in ("vendor", "id", "state", "vendor_state",
                                                 "reference", "created")} for o in sample])
        if listener is None:
            ready(summary)
            return
        assert config.server is not None
        host, bound = listener.sockets[0].getsockname()[:2]
        summary.update(status_url=f"http://{host}:{bound}/", try_action=_sample_request(config),
                       write_token=config.server.secrets["token"])
        ready(summary)
        await service.run()


def _service(config: Config, keep_running: bool) -> Service:
    """The demo's service: observed for the status server's metrics when it keeps running
    (its run() then stops on SIGINT/SIGTERM as ``ordersync run`` does)."""
    if not keep_running:
        return Service(config, handle_signals=False)
    return Service(config, observer=Metrics())


async def _sample_actions(config: Config, service: Service) -> list[dict]:
    """Queue each adapter's sample actions and chain, push them, return how each ended."""
    ledger = service.ledger
    assert ledger is not None
    queued = []
    for name, vendor in config.vendors.items():
        spec = adapters()[vendor.adapter]
        if spec.demo_actions is None:
            continue
        orders = await ledger.call(lambda led, n=name: led.orders(instance=n))
        for kind, order_id, params in spec.demo_actions(orders):
            queued += await enqueue(config, kind, [(name, order_id)], params)
        if spec.demo_chain:
            queued += await enqueue_chain(config, name, None, list(spec.demo_chain))
    await service.run_once()
    done = [ledger.ledger.outbox.get(action.id) for action, _ in queued]
    return [{"id": a.id, "kind": a.kind, "order": a.target, "state": a.state.value,
             "error": a.last_error, "created_order": (a.result or {}).get("order_id")}
            for a in done]


async def _plant_outage(config: Config, service: Service,
                        simulators: dict[str, Simulator]) -> list[str]:
    """The first vendor whose simulator takes faults drops every request for as many polls
    as make it down (the report's ``down_after_failures``), with a sample action queued into
    the outage; then it answers again (the daemon, with ``--keep-running``, sees it
    recover)."""
    ledger = service.ledger
    assert ledger is not None
    name = next((n for n, v in sorted(config.vendors.items())
                 if adapters()[v.adapter].demo_actions and simulators[n].faults), None)
    if name is None:
        return []
    spec, faults = adapters()[config.vendors[name].adapter], simulators[name].faults
    assert faults is not None
    orders = await ledger.call(lambda led: led.orders(instance=name))
    sample = spec.demo_actions(orders)[:1] if spec.demo_actions else []
    faults.random(f"{OUTAGE}:1")
    try:
        queued = [action for kind, order_id, params in sample
                  for action, _ in await enqueue(config, kind, [(name, order_id)], params)]
        polls = config.report.down_after_failures
        for _ in range(polls):
            await service.run_once(name)
    finally:
        faults.random("")
    lines = [f"{name} dropped every request unanswered for {polls} polls in a row: down"]
    for queued_action in queued:
        action = ledger.ledger.outbox.get(queued_action.id)
        lines.append(f"action #{action.id} ({action.kind} {action.target}) queued into it:"
                     f" {action.state.value}, {action.attempts} attempt(s); the outbox keeps it")
    return lines


def _sample_request(config: Config) -> dict | None:
    """A body for POST /actions: the first step of an adapter's sample chain (a create,
    in its declared values), under a key of its own: sent twice, it is queued once."""
    for name, vendor in sorted(config.vendors.items()):
        chain = adapters()[vendor.adapter].demo_chain
        if chain:
            kind, params = chain[0]
            return {"vendor": name, "kind": kind, "order": None, "params": params,
                    "key": "tried-from-the-demo"}
    return None


def _config_text(ledger_path: Path, tables: dict[str, dict]) -> str:
    """The demo's configuration as TOML: the ledger (an absolute path: it works from any
    folder) and each vendor table, whose secrets it names by variable, never by value."""
    lines = [CONFIG_HEADER.rstrip("\n"), "[ledger]", f"path = {_toml(str(ledger_path.resolve()))}"]
    for name, table in tables.items():
        lines += ["", f"[vendors.{name}]", *(f"{k} = {_toml(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    """A TOML value: a string as a JSON string (JSON's escapes are TOML's), a table inline."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(str(value)).decode()


def _detail(action: dict) -> str:
    if action["created_order"]:
        return f"made order {action['created_order']}"
    return (action["error"] or "") if action["state"] != "succeeded" else ""


def _table(say: Say, title: str, rows: list[tuple], right: tuple[int, ...] = ()) -> None:
    say(f"  {title}:")
    for line in columns(rows, right=right):
        say(f"    {line}")
    say("")


def _syncs(say: Say, title: str, results: list[PollResult]) -> None:
    _table(say, title, [("VENDOR", "NEW", "CHANGED", "PAGES", "REQUESTS", "SECONDS"),
                        *((r.vendor, r.new, r.changed, r.pages, r.requests,
                           f"{r.duration_s:.2f}") for r in results)], right=(1, 2, 3, 4, 5))
    for r in results:
        for error in r.errors:
            say(f"  ERROR: {printable(error)}")


def print_ready(summary: dict, program: str = "ordersync") -> None:
    """The commands to try (and, with --keep-running, the status page); ``program`` is how
    to run ordersync again from here."""
    config = f"{program} --config {shlex.quote(summary['config'])}"
    print("Explore the ledger:")
    print(f"  {config} report")
    print(f"  {config} orders list")
    print(f"  {config} actions list")
    if summary["sample"]:
        first = summary["sample"][0]
        print(f"  {config} orders show {printable(first['vendor'])}:{printable(first['id'])}")
    url = summary.get("status_url")
    if url:
        print()
        print("6. the daemon runs, with its status server, until Ctrl-C:")
        print(f"  status page: {url}")
        print(f"  curl -s {url}healthz")
        print(f"  curl -s {url}metrics")
        print(f"  {config} check")
        if summary["try_action"]:
            body = orjson.dumps(summary["try_action"]).decode()
            token = summary["write_token"]
            print(f"  curl -s -H {shlex.quote('Authorization: Bearer ' + token)}"
                  f" -d {shlex.quote(body)} {url}actions")
    print(flush=True)
