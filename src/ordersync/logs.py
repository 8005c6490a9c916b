"""structlog set-up: JSON lines for machines, readable lines on a terminal, no secrets ever.

Every value is passed through :func:`ordersync.redaction.redact`, so a secret registered
after start-up (a vendor's secret read when it is first needed, each new access token) is
hidden as well as those given to :func:`configure`.

Logs go to stderr so that stdout stays clean for command output (``--json``). The format
follows whether stderr is a terminal unless ``--log-format`` says otherwise.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from .redaction import MIN_LENGTH, REDACTED, redact

SECRET_KEYS = re.compile(r"secret|password|token|authorization|api[_-]?key", re.IGNORECASE)


class Redactor:
    """A processor that hides secret values (given and registered) and secret-looking keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_LENGTH}, key=len,
                              reverse=True)

    def __call__(self, logger: Any, method_name: str,
                 event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
        return {key: self._clean(key, value) for key, value in event_dict.items()}

    def _clean(self, key: str, value: Any) -> Any:
        if key != "event" and SECRET_KEYS.search(key):
            return REDACTED
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, dict):
            return {k: self._clean(k, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean("", v) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        # exceptions, bytes, URLs ...: the renderer would print their repr, so clean that
        return self._clean(key, str(value) if isinstance(value, BaseException) else repr(value))


def configure(
    *,
    level: str = "info",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Set up structlog once per process (``fmt``: auto, json or console)."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            Redactor(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
