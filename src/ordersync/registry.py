"""Finds adapters through the ``ordersync.adapters`` entry point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from .contract import AdapterSpec
from .errors import ConfigError

GROUP = "ordersync.adapters"


@cache
def adapters() -> dict[str, AdapterSpec]:
    """Every installed adapter by name."""
    found: dict[str, AdapterSpec] = {}
    for entry in entry_points(group=GROUP):
        spec = entry.load()
        if not isinstance(spec, AdapterSpec):
            raise ConfigError(f"entry point {entry.name} in {GROUP} is not an AdapterSpec")
        found[entry.name] = spec
    return found


def adapter(name: str) -> AdapterSpec:
    """The adapter called ``name``, or a ConfigError listing the known ones."""
    known = adapters()
    if name not in known:
        raise ConfigError(
            f"unknown adapter {name!r}; installed adapters: {', '.join(sorted(known)) or 'none'}"
        )
    return known[name]
