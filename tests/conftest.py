"""Shared fixtures: a fake clock, running simulators, configurations and services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ordersync.config import Config, parse_config
from ordersync.daemon import Service
from ordersync.ledger import Ledger
from ordersync_adapters.fotoware.simulator import FotowareSimulator

# Fixtures every test module may ask for by name; imported here, not in each module, so that
# no module shadows an imported name with a parameter of the same name (ruff F811).
from tests.cli_support import fotoware_sim, write_config  # noqa: F401
from tests.http_support import silent  # noqa: F401

SECRET_ENV = "TEST_FOTOWARE_SECRET"


class FakeClock:
    """Wall time that only moves when a test (or an injected sleep) moves it."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fotoware(clock) -> AsyncIterator[Callable[..., FotowareSimulator]]:
    """Start Fotoware simulators on loopback: ``sim = await fotoware(orders=50)``."""
    started: list[FotowareSimulator] = []

    async def start(simulator: type[FotowareSimulator] = FotowareSimulator,
                    **kwargs) -> FotowareSimulator:
        kwargs.setdefault("clock", clock)
        sim = simulator(**kwargs)
        sim.base_url = await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


def fotoware_config(sim: FotowareSimulator, ledger_path: Path, name: str = "fw",
                    secret: str | None = None, **overrides) -> Config:
    """A configuration with one Fotoware instance pointed at ``sim``."""
    table = {
        "adapter": "fotoware",
        "base_url": sim.base_url,
        "client_id": sim.client_id,
        "client_secret_env": SECRET_ENV,
        "rate_limit": {"requests": 1000, "per_s": 1},
        "backoff_base_s": 0.5,
        "timeout_s": 5.0,   # a lost write is verified this long after: tests advance past it
        **overrides,
    }
    return parse_config(
        {"ledger": {"path": str(ledger_path)}, "vendors": {name: table}},
        source="test.toml", environ={SECRET_ENV: secret or sim.client_secret},
        base_dir=ledger_path.parent,
    )


@pytest.fixture
def service_for(tmp_path, clock):
    """Open a Service over a Fotoware simulator: ``async with service_for(sim) as svc``."""

    def make(sim: FotowareSimulator, **overrides) -> Service:
        config = fotoware_config(sim, tmp_path / "ledger.db", **overrides)
        return Service(config, sleep=clock.sleep, clock=clock, handle_signals=False)

    return make


@pytest.fixture
def read_ledger(tmp_path):
    """A fresh synchronous Ledger on the test's ledger file (close it when done)."""
    opened: list[Ledger] = []

    def open_() -> Ledger:
        ledger = Ledger(tmp_path / "ledger.db")
        opened.append(ledger)
        return ledger

    yield open_
    for ledger in opened:
        ledger.close()


@pytest.fixture
async def pwinty(clock):
    """Start Pwinty simulators on loopback: ``sim = await pwinty(orders=50)``."""
    from ordersync_adapters.pwinty.simulator import PwintySimulator

    started = []

    async def start(**kwargs):
        kwargs.setdefault("clock", clock)
        sim = PwintySimulator(**kwargs)
        sim.base_url = await sim.start() + "/v2.2"
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


PWINTY_KEY_ENV = "TEST_PWINTY_KEY"


def pwinty_config(sim, ledger_path: Path, name: str = "prints", api_key: str | None = None,
                  **overrides) -> Config:
    """A configuration with one Pwinty instance pointed at ``sim``."""
    table = {
        "adapter": "pwinty",
        "base_url": sim.base_url,
        "merchant_id": sim.merchant_id,
        "api_key_env": PWINTY_KEY_ENV,
        "rate_limit": {"requests": 1000, "per_s": 1},
        "backoff_base_s": 0.5,
        "action_backoff_base_s": 1.0,
        "timeout_s": 5.0,
        **overrides,
    }
    return parse_config(
        {"ledger": {"path": str(ledger_path)}, "vendors": {name: table}},
        source="test.toml", environ={PWINTY_KEY_ENV: api_key or sim.api_key},
        base_dir=ledger_path.parent,
    )
