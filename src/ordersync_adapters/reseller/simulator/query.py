"""The reseller simulator's dates and list queries: ISO stamps, and the OData subset of
``$filter`` and ``$orderby`` the vendor documents."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

FILTER_TERM = re.compile(
    r"^\s*(?:(?P<field>\w+)\s+(?P<op>eq|gt)\s+"
    r"(?P<value>datetime'[^']*'|'(?:[^']|'')*'|-?\d+(?:\.\d+)?)"
    r"|contains\((?P<cfield>\w+)\s*,\s*'(?P<needle>(?:[^']|'')*)'\))\s*$")


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _when(text: str) -> float:
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def _sort_key(value: Any, field: str) -> tuple:
    """Nulls first, then dates and numbers by value, then anything else as text."""
    if value is None:
        return (0, 0.0, "")
    if field.endswith(("At", "Date")) and isinstance(value, str):
        return (1, _when(value), "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def parse_filter(expression: str) -> Callable[[dict], bool]:
    """The OData subset the vendor documents, as a predicate; a ValueError otherwise."""
    tests = []
    for term in re.split(r"\s+and\s+", expression.strip()):
        match = FILTER_TERM.match(term)
        if not match:
            raise ValueError(f"unsupported $filter term: {term}")
        if match["cfield"]:
            field, needle = match["cfield"], match["needle"].replace("''", "'")
            tests.append(lambda o, f=field, n=needle: n.lower() in str(o.get(f) or "").lower())
            continue
        field, op, value = match["field"], match["op"], match["value"]
        wanted: Any
        get: Callable[[dict], Any]
        if value.startswith("datetime'"):
            wanted = _when(value[9:-1])

            def get(o: dict, f: str = field) -> Any:
                return _when(o[f]) if o.get(f) else None
        elif value.startswith("'"):
            wanted = value[1:-1].replace("''", "'")

            def get(o: dict, f: str = field) -> Any:
                return str(o.get(f))
        else:
            wanted = float(value)

            def get(o: dict, f: str = field) -> Any:
                return o.get(f)
        if op == "eq":
            tests.append(lambda o, g=get, w=wanted: g(o) == w)
        else:
            tests.append(lambda o, g=get, w=wanted: g(o) is not None and g(o) > w)
    return lambda order: all(test(order) for test in tests)
