"""``ordersync simulate VENDOR``: one adapter's simulator on loopback until interrupted."""

from __future__ import annotations

import asyncio
import signal

from .errors import ConfigError
from .registry import adapter as find_adapter


async def run_simulator(
    adapter: str, *, host: str, port: int, orders: int, seed: int, faults: str | None,
    page_size: int | None,
) -> int:
    spec = find_adapter(adapter)
    if spec.simulator is None:
        raise ConfigError(f"adapter {adapter!r} has no simulator")
    if orders < 0:
        raise ConfigError("--orders: must not be negative")
    options = {"page_size": page_size} if page_size else {}
    if page_size is not None and page_size < 1:
        raise ConfigError("--page-size: must be at least 1")
    try:
        sim = spec.simulator(orders=orders, seed=seed, **options)
    except TypeError:
        raise ConfigError(f"--page-size: the {adapter} simulator has no page size of its own"
                          " (its clients choose one)") from None
    if faults:
        plan = sim.faults
        if plan is None:
            raise ConfigError(f"--faults: the {adapter} simulator takes no faults")
        try:
            plan.random(faults, seed=seed)
        except ValueError as exc:
            raise ConfigError(f"--faults: {exc}") from None
    try:
        base_url = await sim.start(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    settings = spec.demo_settings(sim, base_url) if spec.demo_settings else {}
    print(f"{adapter} simulator listening on {base_url}{spec.base_path} with {orders} orders",
          flush=True)
    for key, value in settings.items():
        print(f"  {key} = {value!r}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
    return 0
