"""The service: one poll loop per vendor instance over one ledger, until told to stop.

Lifecycle: ``Service(config)`` -> ``await run()`` (until SIGTERM/SIGINT or ``stop()``) or
``await run_once()`` (one poll of every or one vendor, for ``sync --once`` and tests) ->
``await close()``. Only one service may own a ledger at a time: the first takes an exclusive
lock beside the ledger file and a second refuses with :class:`LedgerBusy`.
``Service(config, vendors=[...])`` serves only the instances named: a command needs only the
secrets of the vendors it talks to.
An instance an operator paused (``ordersync vendors pause``) is neither polled nor sent its
actions; the flag is read from the ledger every cycle, so a resume needs no restart.

Stopping takes at most ``STOP_GRACE_S`` plus the ledger's own commit: the loops get that long
to finish their step (a page, an action), then every wait and request is cancelled. A page
is committed with its cursor or not at all; an action cancelled mid-request is left
``pending`` and marked for verification (``close``), so the next run reads the vendor before
it sends anything again.

While ``run()`` runs, each loop marks its progress and a watchdog task writes the heartbeat
file, and pings systemd (``READY=1`` at the start, ``WATCHDOG=1``, ``STOPPING=1``), only while
no loop is stuck (:mod:`ordersync.health`, :mod:`ordersync.sdnotify`). An optional
:class:`Observer` (the status server's metrics) is told of every poll and HTTP attempt.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import structlog

from .backoff import backoff_s
from .config import Config
from .constants import (
    ACTION_CHECK_INTERVAL_S,
    BUSY_TIMEOUT_S,
    MAX_FAILURE_BACKOFF_S,
    STOP_GRACE_S,
)
from .contract import AdapterSpec
from .errors import (  # LedgerBusy: re-exported
    AuthError,
    ConfigError,
    LedgerBusy,
    LedgerUnusable,
    OrderSyncError,
    VendorError,
)
from .executor import Executor
from .health import LoopProgress, remove_heartbeat, write_heartbeat
from .http import HttpObserver
from .ledger import AsyncLedger, open_ledger, private_folder
from .report import refresh as refresh_exceptions
from .sdnotify import Notifier
from .sync import PollResult, VendorRunner

log = structlog.get_logger("ordersync.daemon")


class Observer(HttpObserver, Protocol):
    """Told what the daemon did (the status server's metrics), besides every HTTP attempt."""

    def poll_done(self, vendor: str, now: float, error_class: str | None) -> None:
        """A poll ended: successfully (``error_class`` None) or failed with that error."""

    def heartbeat_written(self, now: float) -> None:
        """The loops made progress and the heartbeat was written."""


class LedgerLock:
    """An exclusive advisory lock on ``<ledger>.lock``, released when the process ends."""

    def __init__(self, ledger_path: Path) -> None:
        self.path = Path(f"{ledger_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            private_folder(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LedgerUnusable(f"cannot create the ledger's lock file {self.path} (is its"
                                 f" folder writable?): {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LedgerBusy(
                f"another ordersync process (pid {holder}) is using the ledger"
                f" {str(self.path)[: -len('.lock')]}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Service:
    """Polls every configured vendor into the ledger."""

    def __init__(
        self,
        config: Config,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        handle_signals: bool = True,
        vendors: list[str] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.config = config
        self.vendor_names = list(config.vendors) if vendors is None else vendors
        self.sleep = sleep
        self.clock = clock
        self.handle_signals = handle_signals
        self.lock = LedgerLock(config.ledger_path)
        self.ledger: AsyncLedger | None = None
        self.runners: dict[str, VendorRunner] = {}
        self.executors: dict[str, Executor] = {}
        self.healthy: dict[str, bool] = {}
        self.paused: dict[str, bool] = {}
        self._stopping = asyncio.Event()
        self.observer = observer
        self.progress = LoopProgress()
        self.heartbeat_at: float | None = None
        """When run() last wrote the heartbeat (``clock`` time); None before the first."""
        self.notifier = Notifier()

    async def open(self) -> None:
        """Take the ledger lock, open the ledger, build a runner per vendor instance."""
        vendors = [self.config.vendor(name) for name in self.vendor_names]
        for vendor in vendors:  # a missing secret stops us before the ledger is touched
            vendor.secrets.load()
        self.lock.acquire()
        try:
            ledger = await asyncio.to_thread(open_ledger, self.config.ledger_url)
        except Exception:
            self.lock.release()
            raise
        self.ledger = AsyncLedger(ledger)
        # Everything alive now (imported modules, config) lives as long as the process: keep
        # it out of the garbage collector's full passes, which otherwise walk ~45,000 such
        # objects and stall the event loop ~25 ms each time during an ingest.
        gc.freeze()
        for vendor in vendors:
            name = vendor.name
            runner = VendorRunner(vendor, self.ledger, sleep=self.sleep, clock=self.clock)
            self.runners[name] = runner
            self.executors[name] = Executor(runner, self.ledger, policy=vendor.actions,
                                            clock=self.clock)
            self.healthy[name] = True
            runner.http.observe = self.observer

    async def close(self) -> None:
        for runner in self.runners.values():
            await runner.close()
        if self.ledger is not None:
            await self._leave_for_verification()
            await self.ledger.close()
            self.ledger = None
        self.lock.release()

    async def __aenter__(self) -> Service:
        await self.open()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def _leave_for_verification(self) -> None:
        """Actions this process left in flight (cancelled mid-request) become pending and are
        verified with the vendor before anything is sent again. Only the lock holder starts
        actions, so every in-flight action of these instances is this process's."""
        for executor in self.executors.values():
            await executor.recover()

    def stop(self) -> None:
        """Ask every loop to finish its current step (a page, an action) and return."""
        if not self._stopping.is_set():
            self.notifier.notify("STOPPING=1", "STATUS=stopping")
        self._stopping.set()
        for runner in self.runners.values():
            runner.stopping = True
        for executor in self.executors.values():
            executor.stopping = True

    async def run_once(self, vendor: str | None = None,
                       progress: Callable[[PollResult], None] | None = None) -> list[PollResult]:
        """One poll of every (or one) vendor instance, then its due actions, concurrently.

        ``progress`` is called with a vendor's counts so far after each page it writes.
        """
        names = [self.config.vendor(vendor).name] if vendor else list(self.runners)
        return list(await asyncio.gather(*(self._poll_and_drain(name, progress)
                                           for name in names)))

    async def _poll_and_drain(self, name: str, progress=None) -> PollResult:
        if await self._paused(name):
            return PollResult(name, paused=True)
        result = await self._poll(name, progress)
        result.actions = dict(await self.drain_actions(name, recover=True))
        return result

    async def drain_actions(self, name: str, *, recover: bool = False):
        executor = self.executors[name]
        structlog.contextvars.bind_contextvars(vendor=name)
        try:
            if recover:
                await executor.recover()
            return await executor.drain()
        finally:
            structlog.contextvars.unbind_contextvars("vendor")

    async def run(self) -> None:
        """Poll every vendor on its interval until stop() or SIGTERM/SIGINT."""
        loop = asyncio.get_running_loop()
        if self.handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._on_signal, signum)
        log.info("started", vendors=list(self.runners), ledger=str(self.config.ledger_path))
        self._watch_loops()
        self.notifier.notify("READY=1", self._status())
        work = asyncio.gather(*(self._loop(name) for name in self.runners),
                              *(self._action_loop(name) for name in self.runners),
                              self._watchdog(), self._exceptions_loop())
        try:
            await self._until_stopped(work)
        finally:
            if not work.done():  # run() itself was cancelled
                work.cancel()
            if self.handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
            remove_heartbeat(self.config.heartbeat_path, os.getpid())
            log.info("stopped")

    def _watch_loops(self) -> None:
        """Each loop's allowance: how long a step may go without progress before it is stuck.
        A poll is bounded by poll_deadline_s (then its last page is written), an action by
        two calls (verify, perform); both may wait for the ledger's busy timeout."""
        now = time.monotonic()
        for name, runner in self.runners.items():
            retry = runner.config.retry
            self.progress.add(f"{name}/poll", runner.config.poll_deadline_s
                              + retry.call_deadline_s + 2 * BUSY_TIMEOUT_S, now)
            self.progress.add(f"{name}/actions", 2 * retry.call_deadline_s
                              + 2 * BUSY_TIMEOUT_S, now)
            self.executors[name].progress = self._marker(f"{name}/actions")

    @property
    def specs(self) -> dict[str, AdapterSpec]:
        """Each vendor instance's adapter, by instance name."""
        return {name: runner.spec for name, runner in self.runners.items()}

    def _status(self) -> str:
        return f"STATUS=polling {len(self.runners)} vendor instances"

    def _marker(self, loop: str, *, busy: bool = True) -> Callable[..., None]:
        return lambda *_: self.progress.mark(loop, time.monotonic(), busy=busy)

    async def _watchdog(self) -> None:
        """Write the heartbeat (and ping systemd's watchdog) only while no loop is stuck."""
        settings, path = self.config.heartbeat, self.config.heartbeat_path
        stuck_before: list[str] = []
        failing = False
        while not self._stopping.is_set():
            stuck = self.progress.stuck(time.monotonic())
            if stuck != stuck_before:
                if stuck:
                    log.error("loops_stuck", loops=stuck, note="heartbeat and watchdog"
                              " pings withheld until they make progress")
                    self.notifier.notify(f"STATUS=stuck: {', '.join(stuck)}")
                else:
                    log.info("loops_progressing")
                    self.notifier.notify(self._status())
                stuck_before = stuck
            if not stuck:
                now = self.clock()
                try:
                    write_heartbeat(path, os.getpid(), now,
                                    self.progress.snapshot(time.monotonic()))
                except OSError as exc:
                    if not failing:  # logged when it begins to fail, not every time
                        log.error("heartbeat_not_written", path=str(path),
                                  error=exc.strerror or str(exc))
                    failing = True
                else:
                    failing = False
                    self.heartbeat_at = now
                    self.notifier.notify("WATCHDOG=1")
                    if self.observer is not None:
                        self.observer.heartbeat_written(now)
            await self._wait(settings.interval_s)

    async def _exceptions_loop(self) -> None:
        """Refresh the report's exceptions every ``report.refresh_interval_s``: each is first
        seen, and resolved, within one interval of its cause (docs/reports.md)."""
        specs, settings = self.specs, self.config.report
        while not self._stopping.is_set():
            await self._wait(settings.refresh_interval_s)
            if self._stopping.is_set() or self.ledger is None:
                return
            try:
                await self.ledger.call(lambda ledger: refresh_exceptions(
                    ledger, specs, self.clock(), settings))
            except OrderSyncError as exc:  # the ledger: say so, keep going
                log.error("exceptions_refresh_failed", error=_describe(exc))

    async def _until_stopped(self, work: asyncio.Future) -> None:
        """Wait for the loops; once a stop is asked for, give them STOP_GRACE_S, then cancel."""
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not work.done():
            await asyncio.wait({work}, timeout=STOP_GRACE_S)
        if not work.done():
            log.info("cancelling", note="vendor requests and waits still running after"
                     f" {STOP_GRACE_S:g}s")
            work.cancel()
            try:
                await work
            except asyncio.CancelledError:
                return
        work.result()

    def _on_signal(self, signum: int) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        self.stop()

    async def _loop(self, name: str) -> None:
        runner = self.runners[name]
        failures = 0
        marked = self._marker(f"{name}/poll")
        while not self._stopping.is_set():
            marked()
            if await self._paused(name):
                self._marker(f"{name}/poll", busy=False)()
                await self._wait(runner.config.poll_interval_s)
                continue
            result = await self._poll(name, marked)
            if result.errors:
                failures += 1
                delay = backoff_s(failures + 1, runner.config.poll_interval_s,
                                  MAX_FAILURE_BACKOFF_S, retry_after_s=result.retry_after_s)
            else:
                failures = 0
                delay = runner.config.poll_interval_s
            self._marker(f"{name}/poll", busy=False)()
            await self._wait(delay)

    async def _action_loop(self, name: str) -> None:
        recover = True
        while not self._stopping.is_set():
            self._marker(f"{name}/actions")()
            try:
                if not await self._paused(name):
                    await self.drain_actions(name, recover=recover)
                    recover = False
            except OrderSyncError as exc:  # the ledger or an adapter bug: say so, keep going
                log.error("action_loop_failed", vendor=name, error=_describe(exc))
            self._marker(f"{name}/actions", busy=False)()
            await self._wait(ACTION_CHECK_INTERVAL_S)

    async def _wait(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay_s)
        except TimeoutError:
            pass

    async def _poll(self, name: str, progress=None) -> PollResult:
        runner = self.runners[name]
        structlog.contextvars.bind_contextvars(vendor=name)
        try:
            result = await runner.poll(progress)
        except (VendorError, ConfigError) as exc:
            result = PollResult(name, errors=[_describe(exc)],
                                retry_after_s=getattr(exc, "retry_after_s", None))
            await self._record_poll(name, type(exc).__name__, result.errors[0])
            if self.observer is not None:
                self.observer.poll_done(name, self.clock(), type(exc).__name__)
            self._mark(name, healthy=False, error=result.errors[0],
                       config_problem=isinstance(exc, AuthError))
            return result
        finally:
            structlog.contextvars.unbind_contextvars("vendor")
        await self._record_poll(name)
        if self.observer is not None:
            self.observer.poll_done(name, self.clock(), None)
        self._mark(name, healthy=True)
        if result.new or result.changed:
            log.info("synced", vendor=name, **{k: v for k, v in result.as_dict().items()
                                               if k != "vendor"})
        return result

    async def _paused(self, name: str) -> bool:
        """Whether an operator paused the instance: read from the ledger every cycle (one
        row), so ``vendors pause|resume`` acts without a restart; logged when it flips."""
        assert self.ledger is not None
        health = await self.ledger.call(lambda ledger: ledger.vendor_health(name))
        paused = bool(health) and health[0].paused
        if paused != self.paused.get(name, False):
            log.info("vendor_paused" if paused else "vendor_resumed", vendor=name)
        self.paused[name] = paused
        return paused

    async def _record_poll(self, name: str, error_class: str | None = None,
                           error: str | None = None) -> None:
        """Keep the vendor's health in the ledger (for reports and other processes)."""
        now = self.clock()
        assert self.ledger is not None  # polls happen only while the service is open
        await self.ledger.call(lambda ledger: ledger.record_poll(
            name, now, error_class=error_class, error=error))

    def _mark(self, name: str, *, healthy: bool, error: str = "",
              config_problem: bool = False) -> None:
        """Log a vendor's health when it flips, not on every poll."""
        was = self.healthy.get(name, True)
        self.healthy[name] = healthy
        if was and not healthy:
            log.error("vendor_unhealthy", vendor=name, error=error,
                      needs_operator=config_problem)
        elif not was and healthy:
            log.info("vendor_recovered", vendor=name)
        elif not healthy:
            log.debug("vendor_still_unhealthy", vendor=name, error=error)


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
