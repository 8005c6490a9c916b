"""What a vendor simulator injects into its answers, and when: :class:`FaultPlan` holds
explicit rules (a kind, how many times, which method and path prefix) and seeded random
ones in :func:`parse_faults` syntax (``"429:0.1,drop:0.02"``); :class:`~ordersync.simkit.
SimulatorBase` asks it for each request's fault and answers accordingly.

Only the standard library is used; it imports nothing from ordersync.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = ("status", "delay", "drop", "malformed", "mislabelled", "apply_then_drop",
               "apply_then_cut", "apply_then_error")
APPLY_THEN = frozenset({"apply_then_drop", "apply_then_cut", "apply_then_error"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class _Fault:
    kind: str
    times: int = 1
    method: str | None = None
    path_prefix: str | None = None
    status: int = 503
    retry_after: str | None = "1"
    delay_s: float = 0.0
    mutating: frozenset[str] = WRITE_METHODS
    guarded: tuple[str, ...] = ()

    def matches(self, method: str, path: str) -> bool:
        """``path`` includes the query, so a prefix like ``/orders/?p=`` works.

        ``apply_then_*`` only fires on a mutating method. A path under a guarded prefix
        (e.g. a token endpoint) is only hit by a rule whose prefix names that guarded prefix.
        """
        if self.method is not None and self.method.upper() != method:
            return False
        if self.kind in APPLY_THEN and method not in self.mutating:
            return False
        for guard in self.guarded:
            if path.startswith(guard):
                return (self.path_prefix is not None and self.path_prefix.startswith(guard)
                        and path.startswith(self.path_prefix))
        return self.path_prefix is None or path.startswith(self.path_prefix)


def parse_faults(spec: str) -> list[tuple[str, float]]:
    """Parse ``"429:0.1,drop:0.02,..."`` into ``[(kind or status code, probability), ...]``."""
    known = "a status code 400-599, " + ", ".join(FAULT_KINDS[1:])
    result: list[tuple[str, float]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, prob_text = (s.strip() for s in part.partition(":"))
        if name not in FAULT_KINDS[1:] and not (name.isdigit() and 400 <= int(name) <= 599):
            raise ValueError(f"unknown fault {name!r} in --faults; known: {known}")
        try:
            prob = float(prob_text) if sep else math.nan
        except ValueError:
            prob = math.nan
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"fault {name!r} in --faults needs a probability between 0 and 1, "
                             f"as in {name}:0.1 (got {part!r})")
        result.append((name, prob))
    if sum(p for _, p in result) > 1.0 + 1e-9:
        raise ValueError("fault probabilities in --faults add up to more than 1")
    return result


class FaultPlan:
    """Faults to inject: explicit rules first (in the order added), then random ones.

    ``mutating``: the methods ``apply_then_*`` fire on. ``guarded``: path prefixes that
    random faults never touch and explicit rules only when their prefix names them.
    """

    def __init__(self, *, mutating: frozenset[str] = WRITE_METHODS,
                 guarded: tuple[str, ...] = ()) -> None:
        self._mutating, self._guarded = frozenset(mutating), tuple(guarded)
        self._rules: list[_Fault] = []
        self._random: list[tuple[str, float]] = []
        self._rng = random.Random(0)
        self._delay_s = 0.3

    def add(self, kind: str, *, times: int = 1, method: str | None = None,
            path_prefix: str | None = None, status: int = 503,
            retry_after: str | None = "1", delay_s: float = 0.0) -> None:
        """Inject ``kind`` into the next ``times`` requests matching method and path prefix.

        The prefix is matched against the path with its query string.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self._rules.append(self._fault(kind, times=times, method=method,
                                       path_prefix=path_prefix, status=status,
                                       retry_after=retry_after, delay_s=delay_s))

    def random(self, spec: str, seed: int = 0, delay_s: float = 0.3) -> None:
        """Inject faults at random (``parse_faults`` syntax); at most one per request; a
        ``delay`` lasts ``delay_s``, an ``apply_then_error`` answers 502."""
        self._random = parse_faults(spec)
        self._rng = random.Random(seed)
        self._delay_s = delay_s

    def clear(self) -> None:
        self._rules.clear()
        self._random = []

    def _fault(self, kind: str, **fields: Any) -> _Fault:
        return _Fault(kind, mutating=self._mutating, guarded=self._guarded, **fields)

    def take(self, method: str, path: str) -> _Fault | None:
        """Return (and use up) the fault for this request, if any."""
        for rule in self._rules:
            if rule.times > 0 and rule.matches(method, path):
                rule.times -= 1
                if rule.times <= 0:
                    self._rules.remove(rule)
                return rule
        if not self._random or path.startswith(self._guarded):
            return None
        draw, total = self._rng.random(), 0.0
        for name, prob in self._random:
            total += prob
            if draw < total:
                fault = (self._fault("status", status=int(name)) if name.isdigit()
                         else self._fault(name, delay_s=self._delay_s, status=502))
                return fault if fault.matches(method, path) else None
        return None
