"""Every secret value this process knows, and the one function that hides them in text.

Secrets are registered when they are read (a vendor's configured secret, when that vendor is
first talked to) or obtained (each access token, by the code that holds it). Text is passed
through :func:`redact` wherever it leaves the process or is stored: the log processor, the
command line's printed lines, and the ledger's writes of error text and attempt logs. A
vendor that repeats a secret in an error message therefore cannot make ordersync print,
log or store it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MIN_LENGTH = 4
"""Shorter values are not treated as secrets: hiding every "abc" would garble text."""
KEPT_TOKENS = 16
"""Access tokens remembered: a daemon renews its tokens all day, and an answer repeating a
token arrives while it (or the one before it) is in use."""

CREDENTIAL_HEADER = re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+")
"""An Authorization value, Bearer or Basic (base64 of "key:secret"), wherever it is quoted."""

_secrets: set[str] = set()
_tokens: deque[str] = deque(maxlen=KEPT_TOKENS)
_known: tuple[str, ...] = ()  # longest first; replaced (never changed) so readers need no lock


def register(*values: str | None) -> None:
    """Remember secret values; text passed through :func:`redact` never shows them again,
    neither as they are nor as a form body or URL carries them (``+``, ``%2F`` ...)."""
    _secrets.update(form for v in values if v and len(v) >= MIN_LENGTH
                    for form in _spellings(v))
    _rebuild()


def _spellings(secret: str) -> set[str]:
    """A secret as written, and as form-encoded and URL-encoded text repeats it."""
    return {secret, quote_plus(secret), quote(secret, safe="")}


def register_token(token: str) -> None:
    """Remember a newly obtained access token (the oldest of many is forgotten)."""
    if len(token) >= MIN_LENGTH and token not in _tokens:
        _tokens.append(token)
        _rebuild()


def _rebuild() -> None:
    global _known
    _known = tuple(sorted({*_secrets, *_tokens}, key=len, reverse=True))


def known() -> tuple[str, ...]:
    """The registered secrets, longest first."""
    return _known


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every registered (and every ``extra``) secret and every Authorization
    credential (Bearer or Basic) hidden."""
    secrets = _known if not extra else sorted({*extra, *_known}, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return CREDENTIAL_HEADER.sub(r"\1" + REDACTED, text)


def redact_optional(text: str | None) -> str | None:
    """:func:`redact` for a value that may be None (a column that may be empty)."""
    return None if text is None else redact(text)
