"""Progress of ``sync --once``: counts and rate on a terminal, nothing for scripts.

The real command runs against a Pwinty simulator, once with stderr on a pseudo-terminal
(``pty``) and once with plain pipes, as a script or a service manager would run it.
"""

from __future__ import annotations

import re
import time

import pytest

from ordersync.progress import TerminalProgress, progress_line
from ordersync.sync import PollResult
from ordersync_adapters.pwinty.simulator import PwintySimulator
from tests.cli_support import KEY_ENV, arun_cli, pwinty_toml
from tests.core.test_logs import run_on_a_terminal

PROGRESS = re.compile(r"\rprints: [\d,]+ orders in [\d,]+ pages, [\d,]+/s\x1b\[K")


@pytest.fixture
async def prints(tmp_path):
    sim = PwintySimulator(orders=400, clock=time.time)
    base = await sim.start()
    config = tmp_path / "ordersync.toml"
    config.write_text(pwinty_toml(base + "/v2.2", tmp_path / "ledger.db",
                                  extra="page_size = 20\n"), encoding="utf-8")
    try:
        yield ["--config", str(config)], {KEY_ENV: sim.api_key}
    finally:
        await sim.stop()


async def test_progress_on_a_terminal(prints):
    args, env = prints
    code, terminal = await run_on_a_terminal(*args, "--log-level", "warning", "sync", "--once",
                                             env=env)
    assert code == 0, terminal
    assert PROGRESS.search(terminal), repr(terminal)
    assert terminal.rstrip().endswith("\r\x1b[K"), repr(terminal)   # cleared for the summary


async def test_no_progress_for_json_or_off_a_terminal(prints, tmp_path):
    args, env = prints
    code, terminal = await run_on_a_terminal(*args, "--log-level", "warning", "sync", "--once",
                                             "--json", env=env)
    assert code == 0, terminal
    assert "\r" not in terminal and "orders in" not in terminal, repr(terminal)
    piped = await arun_cli(*args, "--log-level", "warning", "sync", "--once", env=env,
                           cwd=tmp_path)
    assert piped.returncode == 0, piped
    assert piped.stderr == "", piped
    assert re.fullmatch(r"prints: 0 new, \d+ changed, \d+ unchanged in \d+ pages, \d+ requests,"
                        r" [\d.]+s\n", piped.stdout), piped


def test_progress_line_counts_and_rate_per_vendor():
    a, b = PollResult("a", pages=3, new=250, changed=50), PollResult("b", pages=1, flagged=2,
                                                                    unchanged=10)
    assert progress_line({"a": a, "b": b}, 2.0) == (
        "a: 300 orders in 3 pages, 150/s | b: 10 orders in 1 pages, 5/s, 2 flagged")


def test_terminal_progress_redraws_at_most_every_interval():
    class Screen:
        text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    now = [100.0]
    screen = Screen()
    progress = TerminalProgress(screen, clock=lambda: now[0], interval_s=0.1)
    for step in range(5):                    # five pages within 0.04 s: drawn once
        now[0] += 0.01
        progress(PollResult("a", pages=step + 1, new=10 * (step + 1)))
    now[0] += 0.2
    progress(PollResult("a", pages=6, new=60))
    progress.close()
    assert screen.text == ("\ra: 10 orders in 1 pages, 1,000/s\x1b[K"
                           "\ra: 60 orders in 6 pages, 240/s\x1b[K\r\x1b[K")
