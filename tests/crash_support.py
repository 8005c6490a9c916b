"""The machinery of the kill -9 outbox tests (tests/test_crash_actions.py and
tests/test_crash_pwinty.py): queue work through the real command line, start a real
``ordersync run``, SIGKILL it at random moments round after round, then let one undisturbed
run drain what is left and stop it with SIGTERM; and the checks that the run was crashy.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ordersync.config import Config
from ordersync.daemon import Service
from ordersync.model import ActionState
from tests.cli_support import CLI, CliResult, arun_cli, cli_env
from tests.outbox_support import read_actions

ROUNDS = int(os.environ.get("ORDERSYNC_CRASH_ROUNDS", "10"))
SEED = int(os.environ.get("ORDERSYNC_CRASH_SEED", "20260601"))
# Every fault class at once, drawn at random for each request (apply_then_* only on writes):
# answers lost after the change (dropped, cut short, a 502 page), garbled answers, requests
# dropped before the vendor acts, 503 and 429 with Retry-After, and requests that take
# longer than the client waits (a write lands after the client gave up).
FAULTS = ("apply_then_drop:0.1,apply_then_cut:0.06,apply_then_error:0.06,malformed:0.06,"
          "drop:0.06,delay:0.04,503:0.04,429:0.03")
SLOW_S = 0.8             # a delayed request is handled this long after it arrived

DAEMON_SETTINGS = """\
poll_interval_s = 3600
timeout_s = 0.5
action_verify_after_s = 1.0
max_attempts = 2
action_max_attempts = 50
action_backoff_base_s = 0.05
action_backoff_max_s = 0.5
"""
"""The client gives up on a request after 0.5 s, and verifies a lost write 1 s later, when
even a write delayed by SLOW_S has landed; reads are tried twice, so some reads after a
write fail for good."""


def switch_faults_on(sim, seed: int, writes: Collection[str]) -> None:
    """Every fault class at random (FAULTS), and a few 503s and 429s with Retry-After on
    the first ``writes``."""
    sim.faults.random(FAULTS, seed=seed, delay_s=SLOW_S)
    for method in writes:
        sim.faults.add("status", status=503, method=method, times=2, retry_after="0")
        sim.faults.add("status", status=429, method=method, times=1, retry_after="0")


def read_after_failed(actions: list) -> int:
    """Actions whose write was answered but whose read of the order after it failed."""
    return sum(1 for a in actions if (a.result or {}).get("read_after_failed"))


def fault_counts(sim) -> dict[str, int]:
    """How many requests the simulator answered with each fault."""
    return dict(Counter(r.fault for r in sim.requests if r.fault))


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ("" if there is none yet)."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(text[-lines:])


async def start_daemon(config: Path, env: dict, log: Path):
    """Start ``ordersync run`` with JSON logs written to ``log``."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *CLI, "--config", str(config), "--log-format", "json", "run",
            env=cli_env(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )


async def wait_started(proc, log: Path, timeout: float = 20.0) -> None:
    """Until the daemon has logged ``started`` (its SIGTERM handler is in place by then)."""
    give_up = time.monotonic() + timeout
    while '"started"' not in log.read_text(errors="replace"):
        assert proc.returncode is None, f"the daemon exited ({proc.returncode}):\n{tail(log)}"
        assert time.monotonic() < give_up, f"the daemon did not start:\n{tail(log)}"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def service_running(config: Config) -> AsyncIterator[Service]:
    """A Service on ``config`` running (polling and pushing, real time) in this process until
    the block ends; then it is stopped, waited for and closed."""
    service = Service(config, handle_signals=False)
    await service.open()
    daemon = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        service.stop()
        await daemon
        await service.close()


class RequestCount:
    """How many requests with one of ``methods`` the simulator has seen so far; cheap enough
    to ask every millisecond (only new records are looked at)."""

    def __init__(self, sim, methods: Collection[str]) -> None:
        self.sim, self.methods, self.seen, self.count = sim, methods, 0, 0

    def __call__(self) -> int:
        new = self.sim.requests[self.seen:]
        self.seen += len(new)
        self.count += sum(1 for r in new if r.method in self.methods)
        return self.count


@dataclass
class CrashRun:
    """One configuration whose outbox real ``ordersync run`` processes drain while killed.

    ``writes`` counts the simulator's requests that change something (a kill is timed by
    them), ``noun`` names them in the report of each round; ``actions`` is how many actions
    the queue will hold in all (it sets how long the kill rounds and the final run may take).
    """

    config: Path
    env: dict
    folder: Path              # the ledger (ledger.db) and the daemons' logs
    rng: random.Random
    writes: RequestCount
    noun: str
    actions: int
    rounds: list[dict] = field(default_factory=list)     # one report per killed run
    drain_s_per_action: float = 0.1     # how long the final run may take, per action

    @property
    def ledger(self) -> Path:
        return self.folder / "ledger.db"

    async def cli(self, *args: str) -> CliResult:
        """Run ``ordersync ARGS`` on the configuration; it must succeed."""
        result = await arun_cli("--config", str(self.config), *args, env=self.env, timeout=60)
        assert result.returncode == 0, result
        return result

    async def kill_rounds(self, count: int, phase: int | None = None) -> None:
        """Start ``ordersync run``, SIGKILL it at a random moment; again, until drained or
        ``count`` rounds are done. Three kills in four come a few milliseconds after the
        run's n-th write (so that an action is in flight), the others after a pause."""
        span = max(2, round(2.4 * self.actions / max(1, ROUNDS)))
        for number in range(count):
            left = [a for a in read_actions(self.ledger) if a.state is not ActionState.SUCCEEDED]
            if not left:
                break
            name = f"round {number}" if phase is None else f"phase {phase} round {number}"
            log = self.folder / f"daemon-{'' if phase is None else f'{phase}-'}{number:03d}.log"
            tries_before = {a.id: a.attempts for a in left}
            writes_before = self.writes()
            proc = await start_daemon(self.config, self.env, log)
            if self.rng.random() < 0.75:
                target = self.rng.randint(1, span)
                how = f"{target} {self.noun} in"
                # ... or sooner when the writes stop coming (the queue is nearly drained)
                seen, quiet_since, quiet_s = 0, time.monotonic(), 3.0
                while seen < target and proc.returncode is None:
                    now_seen = self.writes() - writes_before
                    if now_seen != seen:
                        seen, quiet_since, quiet_s = now_seen, time.monotonic(), 1.0
                    elif time.monotonic() - quiet_since > quiet_s:
                        break
                    await asyncio.sleep(0.001)
                await asyncio.sleep(self.rng.uniform(0, 0.006))
            else:
                pause = self.rng.uniform(0.1, 0.8)
                how = f"{pause:.2f}s in"
                await asyncio.sleep(pause)
            assert proc.returncode is None, f"{name}: the daemon exited on its own " \
                f"({proc.returncode}):\n{tail(log)}"
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            after = read_actions(self.ledger)
            self.rounds.append({
                **({} if phase is None else {"phase": phase}),
                "how": how, self.noun: self.writes() - writes_before,
                # in flight at the kill, started by this very process (not left from before)
                "in_flight": sum(a.state is ActionState.IN_FLIGHT
                                 and a.attempts > tries_before.get(a.id, 0) for a in after),
                "succeeded": sum(a.state is ActionState.SUCCEEDED for a in after),
            })

    async def drain(self, phase: int | None = None) -> None:
        """One last, undisturbed run drains the rest and stops cleanly on SIGTERM."""
        name = "" if phase is None else f"phase {phase}: "
        log = self.folder / f"daemon-{'' if phase is None else f'{phase}-'}final.log"
        proc = await start_daemon(self.config, self.env, log)
        await wait_started(proc, log)
        deadline = time.monotonic() + 30 + self.drain_s_per_action * self.actions
        while time.monotonic() < deadline and proc.returncode is None:
            states = Counter(a.state for a in read_actions(self.ledger))
            if not (states[ActionState.PENDING] or states[ActionState.IN_FLIGHT]):
                break
            await asyncio.sleep(0.1)
        assert proc.returncode is None, f"{name}the final run exited on its own:\n{tail(log)}"
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"the daemon did not stop on SIGTERM:\n{tail(log)}") from None
        assert proc.returncode == 0, tail(log)

    def assert_crashy(self, sim, actions: list, attempts: dict[int, list[dict]],
                      min_rounds: int, report: str) -> tuple[int, list, list]:
        """The run really was crashy: kills mid-action, lost answers, verified retries, and
        every HTTP attempt the ledger kept is a real request the simulator saw. Returns
        (kills that left an action in flight, write requests lost, verified actions)."""
        kills_in_flight = sum(1 for r in self.rounds if r["in_flight"])
        lost = [r for r in sim.requests if r.method in self.writes.methods and r.status == 0]
        verified = [a for a in actions if (a.result or {}).get("verified")]
        retried = [a for a in actions if a.attempts > 1]
        logged_twice = [i for i, rows in attempts.items() if len({r["number"] for r in rows}) > 1]
        assert len(self.rounds) >= min_rounds, report
        assert kills_in_flight >= max(1, len(self.rounds) // 4), report
        assert lost and verified and retried and logged_twice, report
        assert all(row["request"].split()[0] in {"GET", *self.writes.methods}
                   for rows in attempts.values() for row in rows)
        return kills_in_flight, lost, verified


def assert_effects_as_asked(effects: dict[str, list[str]], expected: dict[str, list[str]],
                            report: str) -> None:
    """Each order's effects (from ``sim.effects``) are the ones asked, in order, and no
    order without an action has any."""
    wrong = {oid: (effects.get(oid, []), verbs) for oid, verbs in expected.items()
             if effects.get(oid, []) != verbs}
    assert not wrong, f"orders whose effects (seen, asked) differ: {wrong}\n{report}"
    stray = sorted(set(effects) - set(expected))
    assert not stray, f"effects on orders no action named: {stray}"
