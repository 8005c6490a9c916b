"""docs/operations.md lists every exit code, and the systemd unit agrees with it and with
the daemon's stop time."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from ordersync import cli_common
from ordersync.config import HeartbeatConfig
from ordersync.daemon import STOP_GRACE_S

ROOT = Path(__file__).resolve().parent.parent
DECIDED = {0, 1, 2, 3, 4, 70, 130, 141}


def documented_codes() -> set[int]:
    text = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    return {int(m) for m in re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)}


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(ROOT / "config/ordersync.service", encoding="utf-8")
    return parser


def test_every_exit_code_is_documented():
    assert documented_codes() == DECIDED
    in_code = {value for name, value in vars(cli_common).items()
               if name.startswith("EXIT_") and isinstance(value, int)}
    assert in_code <= DECIDED


def test_the_unit_stops_after_the_daemon_would_and_never_loops_on_a_persons_problem():
    service = unit()["Service"]
    assert "ordersync" in service["ExecStart"] and service["ExecStart"].endswith(" run")
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["TimeoutStopSec"]) >= 5 * STOP_GRACE_S
    assert service["Restart"] == "on-failure"
    assert {int(c) for c in service["RestartPreventExitStatus"].split()} == {2, 4}
    limits = unit()["Unit"]
    assert int(limits["StartLimitBurst"]) >= 1 and int(limits["StartLimitIntervalSec"]) > 0


def test_the_unit_waits_for_ready_and_watches_the_heartbeat():
    service = unit()["Service"]
    assert (service["Type"], service["NotifyAccess"]) == ("notify", "main")
    assert float(service["WatchdogSec"]) >= 3 * HeartbeatConfig().interval_s
