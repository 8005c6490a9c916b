"""The core's constants in one place: defaults, limits and intervals (units in the names).

Exit codes stay with the command line (``cli.py``); a vendor's own constants stay in its
adapter.
"""

DEFAULT_LEDGER_PATH = "var/ordersync.db"
"""Where the ledger lives when the configuration names none."""

BUSY_TIMEOUT_S = 5.0
"""How long a ledger statement waits for another process's write lock before giving up."""

BACKUP_STEP_PAGES = 256
"""Pages ``ordersync backup`` copies per step of SQLite's online backup (4 MiB of a ledger)."""

BACKUP_STEP_PAUSE_S = 0.002
"""The pause between two backup steps, so a running daemon gets the disk and the CPU."""

BACKUP_BUSY_LIMIT_S = 60.0
"""How long ``ordersync backup`` keeps retrying a ledger that is busy before giving up."""

MAX_FAILURE_BACKOFF_S = 900.0
"""The longest the daemon waits before polling a failing vendor again."""

STOP_GRACE_S = 2.0
"""After a stop is asked for, how long the daemon's loops may finish their step before
cancellation."""

ACTION_CHECK_INTERVAL_S = 0.5
"""How often the daemon looks for newly queued actions: a CLI enqueue is picked up within it."""

AUTH_RETRY_S = 300.0
"""How long an action waits after an authentication failure before it is tried again."""

CONNECT_ATTEMPTS = 3
"""Attempts of a call when nothing answers at the vendor's address (refused, DNS failure)."""

THROTTLE_MARGIN = 1.02
"""The rate-limit window is this much longer than configured: it absorbs the difference
between our clock and the vendor's."""

TOKEN_LIFETIME_S = 300.0
"""An OAuth token's lifetime when the answer names none."""

CONFIG_MAX_BYTES = 1 << 20
"""A configuration file: a few kilobytes in practice."""

SECRET_MAX_BYTES = 64 << 10
"""A secret file: one value."""

FIELDS_MAX_BYTES = 16 << 20
"""A file of an action's fields (``--from``)."""
