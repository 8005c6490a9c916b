"""Fixtures for the reseller adapter: simulators on loopback and configurations for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordersync.config import Config, parse_config
from ordersync.daemon import Service
from ordersync_adapters.reseller.simulator import ResellerSimulator
from tests.simulator_support import loopback_simulators

SECRET_ENV = "TEST_RESELLER_SECRET"
PASSWORD_ENV = "TEST_RESELLER_PASSWORD"


@pytest.fixture
async def reseller(clock):
    """Start reseller simulators on loopback: ``sim = await reseller(orders=20)``."""
    async with loopback_simulators(ResellerSimulator, clock) as start:
        yield start


@pytest.fixture
def service(tmp_path, clock):
    """A Service over a reseller simulator on the fake clock: ``async with service(sim)``."""

    def make(sim, **overrides) -> Service:
        config = reseller_config(sim, tmp_path / "ledger.db", **overrides)
        return Service(config, sleep=clock.sleep, clock=clock, handle_signals=False)

    return make


def reseller_config(sim: ResellerSimulator, ledger_path: Path, name: str = "rs",
                    **overrides) -> Config:
    """A configuration with one reseller instance pointed at ``sim``."""
    table = {
        "adapter": "reseller",
        "base_url": sim.base_url,
        "client_key": sim.client_key,
        "client_secret_env": SECRET_ENV,
        "username": sim.username,
        "password_env": PASSWORD_ENV,
        "rate_limit": {"requests": 1000, "per_s": 1},
        "backoff_base_s": 0.5,
        "action_backoff_base_s": 1.0,
        "timeout_s": 5.0,   # a lost write is verified this long after: tests advance past it
        **overrides,
    }
    return parse_config(
        {"ledger": {"path": str(ledger_path)}, "vendors": {name: table}},
        source="test.toml",
        environ={SECRET_ENV: sim.client_secret, PASSWORD_ENV: sim.password},
        base_dir=ledger_path.parent,
    )
