"""Every error ordersync raises on purpose, in one tree.

    OrderSyncError
    ├── ConfigError            bad configuration, arguments or ids: the operator must fix something
    │   ├── OutboxError        an outbox request that cannot be honoured (unknown id, wrong
    │   │                      state, idempotency key reused for another action)
    │   ├── UsageError         a command-line argument is wrong
    │   └── FileUnreadable     a file ordersync was given cannot be read, or not as its kind
    ├── ActionRefused          an action that cannot be done as asked, found out before (or
    │                          instead of) asking the vendor: wrong state, invalid custom data
    │   └── ParameterError     one parameter's value is wrong; names the parameter
    ├── LedgerUnusable         the ledger (or another file ordersync needs) cannot be used:
    │                          folder not writable, read-only, not SQLite, damaged, disk full
    ├── LedgerLocked           the ledger stayed locked by another process past the busy timeout
    ├── LedgerBusy             another ordersync process holds the ledger (its lock file)
    └── VendorError            a vendor call went wrong; carries vendor instance, method and url
        ├── TransientError     worth retrying: the same request may well succeed later
        │   ├── RateLimited         429 (or a vendor's own rate-limit signal), with retry_after_s
        │   ├── VendorUnavailable   502 / 503 / 504, with retry_after_s when the vendor sent one
        │   ├── BadResponse         an answer that cannot be read (truncated or malformed JSON)
        │   └── NetworkError        timeout or connection failure before anything was sent
        │       └── CannotConnect   nothing answered at the address (refused, DNS failure)
        ├── PermanentError     the vendor said no; retrying the same request cannot help
        │   ├── Rejected            400 and friends, with the vendor's message
        │   ├── NotFound            404
        │   └── LinkRefused         a vendor's link off the configured origin or out of the
        │                           API's path, a redirect, an id that is no path segment:
        │                           never followed
        ├── AuthError          credentials or permissions are wrong: a configuration problem
        └── AmbiguousError     the request may have taken effect but no answer says so
                               (connection lost after sending, timeout, 5xx on a write,
                               an unreadable answer to a write)

The HTTP layer raises these; the core decides what to do with each class. Nothing here
knows a vendor by name.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """Text safe to print as one line: line breaks and other control characters escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


class OrderSyncError(Exception):
    """Base of every error ordersync raises on purpose; its message is always one line."""

    def __init__(self, message: str = "", *args) -> None:
        super().__init__(one_line(str(message)), *args)


class ConfigError(OrderSyncError):
    """Configuration, arguments or ids are wrong; the message names what and where."""


class OutboxError(ConfigError):
    """An outbox request that cannot be honoured (unknown id, wrong state, key reused)."""


class UsageError(ConfigError):
    """A command-line argument is wrong."""


class FileUnreadable(ConfigError):
    """A given file is missing, unreadable, too large for its kind or not UTF-8 text."""


class ActionRefused(OrderSyncError):
    """An action cannot be done as asked; the message says which rule it breaks."""


class ParameterError(ActionRefused):
    """One parameter of an action is wrong: ``param`` names it, ``detail`` says why.

    Speaks of the parameter (``copies: must be at least 1``); a front door shows the name
    its users know (the CLI: ``--copies: must be at least 1``).
    """

    def __init__(self, param: str, detail: str) -> None:
        super().__init__(f"{param}: {detail}")
        self.param = param
        self.detail = detail


class LedgerUnusable(OrderSyncError):
    """The ledger or another file ordersync needs cannot be used; names the file and why."""


class LedgerLocked(OrderSyncError):
    """Another process kept the ledger locked for longer than the busy timeout."""


class LedgerBusy(OrderSyncError):
    """Another ordersync process holds this ledger."""


class VendorError(OrderSyncError):
    """A call to a vendor failed; carries where it went and the vendor's own message."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str = "",
        method: str = "",
        url: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = one_line(message)
        self.vendor = vendor
        self.method = method
        self.url = url
        self.status = status

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.url) if part)
        status = f" -> {self.status}" if self.status is not None else ""
        prefix = f"{self.vendor}: " if self.vendor else ""
        return f"{prefix}{where}{status}: {self.message}" if where else f"{prefix}{self.message}"


class TransientError(VendorError):
    """Worth retrying: the same request may succeed later."""

    retry_after_s: float | None = None


class RateLimited(TransientError):
    """The vendor asked us to slow down (429 or its own signal)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **where) -> None:
        super().__init__(message, **where)
        self.retry_after_s = retry_after_s


class VendorUnavailable(TransientError):
    """The vendor or a proxy in front of it answered 502, 503 or 504."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **where) -> None:
        super().__init__(message, **where)
        self.retry_after_s = retry_after_s


class BadResponse(TransientError):
    """The vendor answered something that cannot be read (truncated or malformed JSON)."""


class NetworkError(TransientError):
    """Timeout or connection failure on a request that is safe to repeat."""


class CannotConnect(NetworkError):
    """Nothing answered at the vendor's address (connection refused, name not resolved)."""


class PermanentError(VendorError):
    """The vendor refused the request; repeating it cannot help."""


class Rejected(PermanentError):
    """The vendor answered 400 (or another 4xx) with its reason."""


class NotFound(PermanentError):
    """The vendor has no such resource (404)."""


class LinkRefused(PermanentError):
    """A vendor's link, redirect or id would send a request off its origin or API path."""


class AuthError(VendorError):
    """Credentials or permissions are wrong; an operator must change the configuration."""


class AmbiguousError(VendorError):
    """A write may have taken effect, but no answer confirms it; verify before repeating."""
