"""The ledger's tables, and the migrations that make them: each recorded in the same
transaction that applies it (sqlite-utils ``Migrations``), so a ledger is never half-migrated.

Tables
    orders          one row per (instance, vendor_id): normalised columns, the vendor's raw JSON
                    and a digest of it, so a re-poll of unchanged data writes nothing, and the
                    ``problem`` of a flagged order (intake.py)
    items           the lines of each order, replaced whenever the order changes; rows in
                    insertion order, found through the unique index ``items_by_order``
    events          append-only: one row per real change (appeared, state_changed, updated,
                    flagged, cleared)
    sync_state      a cursor per (instance, stream), written in the same transaction as the data
                    it describes
    actions         the outbox: one row per push to a vendor
    attempts        every HTTP request sent for an action
    vendor_health   per vendor instance: the last poll, the last good one, the last error
    exceptions      what the report found wrong (stuck, expiring, dead actions, drift ...):
                    one row per stable key, first seen, last seen, resolved (ledger/exceptions.py)

A new migration is a new function at the end, never an edit of an applied one.

The secondary indexes in :data:`DEFERRED_INDEXES` are dropped by a backfill into an empty
ledger and built once at its end (:func:`defer_indexes`, :func:`build_deferred_indexes`):
building an index from a full table is a sort, keeping it up to date is a B-tree search per
row. Every opening of the ledger builds any that is missing, so a backfill killed half way
leaves its indexes to the next start, not lost.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

DEFERRED_INDEXES = {
    "orders_by_vendor_state": "ON orders (instance, vendor_state)",
    "orders_by_state": "ON orders (state, instance)",
    "events_by_order": "ON events (instance, vendor_id)",
    "orders_by_expiry": "ON orders (expires, state, instance, vendor_id) WHERE expires IS NOT NULL",
    "items_by_expiry": "ON items (expires) WHERE expires IS NOT NULL",
}
"""Indexes only reads use (as the migrations made them, m008 and m009 last): none enforces a
rule or serves a page write."""

migrations = Migrations("ordersync")
MIGRATIONS_TABLE = "_sqlite_migrations"
"""Where sqlite-utils records applied migrations: every ordersync ledger has it."""


@migrations()
def m001_orders_items_events_sync_state(db: Database) -> None:
    db.execute(
        """CREATE TABLE orders (
            instance TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            adapter TEXT NOT NULL,
            state TEXT NOT NULL,
            vendor_state TEXT NOT NULL,
            reference TEXT,
            created TEXT,
            modified TEXT,
            expires TEXT,
            customer TEXT,
            comment TEXT,
            url TEXT,
            data TEXT NOT NULL DEFAULT '{}',
            raw TEXT NOT NULL,
            digest BLOB NOT NULL,
            first_seen TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (instance, vendor_id)
        )"""
    )
    db.execute("CREATE INDEX orders_by_vendor_state ON orders (instance, vendor_state)")
    db.execute("CREATE INDEX orders_by_state ON orders (state)")
    db.execute(
        """CREATE TABLE items (
            instance TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            key TEXT NOT NULL,
            title TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            status TEXT,
            expires TEXT,
            data TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (instance, vendor_id, position)
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            at TEXT NOT NULL,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT,
            from_vendor_state TEXT,
            to_vendor_state TEXT,
            detail TEXT
        )"""
    )
    db.execute("CREATE INDEX events_by_order ON events (instance, vendor_id)")
    db.execute(
        """CREATE TABLE sync_state (
            instance TEXT NOT NULL,
            stream TEXT NOT NULL,
            cursor TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (instance, stream)
        )"""
    )


@migrations()
def m002_outbox(db: Database) -> None:
    db.execute(
        """CREATE TABLE actions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            needs_verification INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            result TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX actions_due ON actions (instance, state, next_attempt_at)")
    db.execute("CREATE INDEX actions_by_order ON actions (instance, vendor_id)")
    db.execute(
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            action_id INTEGER NOT NULL REFERENCES actions (id),
            number INTEGER NOT NULL,
            at TEXT NOT NULL,
            request TEXT NOT NULL,
            status INTEGER,
            latency_ms REAL,
            error TEXT
        )"""
    )
    db.execute("CREATE INDEX attempts_by_action ON attempts (action_id)")


@migrations()
def m003_orders_read_at(db: Database) -> None:
    """When the stored copy of each order was read from the vendor (newest copy wins)."""
    db.execute("ALTER TABLE orders ADD COLUMN read_at REAL")


@migrations()
def m004_action_notes(db: Database) -> None:
    """What an adapter wrote down about an action just before its request (a baseline)."""
    db.execute("ALTER TABLE actions ADD COLUMN notes TEXT")



@migrations()
def m005_orders_problem(db: Database) -> None:
    """Why an order is flagged (unreadable, over a limit, not UTF-8); NULL for a sound one.

    A partial index finds the few flagged orders without reading the table: every poll asks.
    """
    db.execute("ALTER TABLE orders ADD COLUMN problem TEXT")
    db.execute("CREATE INDEX orders_flagged ON orders (instance) WHERE problem IS NOT NULL")


@migrations()
def m006_action_chains(db: Database) -> None:
    """An action may follow another (a chain): it runs only after that one succeeded."""
    db.execute("ALTER TABLE actions ADD COLUMN after_id INTEGER REFERENCES actions (id)")


@migrations()
def m007_vendor_health(db: Database) -> None:
    """How each vendor instance's polls went: written after every poll."""
    db.execute(
        """CREATE TABLE vendor_health (
            instance TEXT PRIMARY KEY,
            last_poll_at TEXT,
            last_success_at TEXT,
            last_error_class TEXT,
            last_error TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            paused INTEGER NOT NULL DEFAULT 0
        )"""
    )


@migrations()
def m008_exceptions(db: Database) -> None:
    """What the morning report found wrong, as state: one row per stable key, with when it
    was first and last seen and when it cleared (NULL while open).

    The partial index keeps the open ones at hand (every refresh reads them); the two
    expiry indexes let the report find what expires soon without reading every order, and
    ``orders_by_state`` gains the instance so that counting orders per instance and state
    reads only that index (docs/performance.md, "The report": what they cost an ingest).
    """
    db.execute(
        """CREATE TABLE exceptions (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            instance TEXT NOT NULL,
            vendor_id TEXT,
            action_id INTEGER,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            resolved_at TEXT
        )"""
    )
    db.execute("CREATE INDEX exceptions_open ON exceptions (instance, kind)"
               " WHERE resolved_at IS NULL")
    # (state, instance) instead of (state): as many index writes per order as before, and
    # the report's orders per instance and state is read from the index, not the table.
    db.execute("DROP INDEX orders_by_state")
    db.execute("CREATE INDEX orders_by_state ON orders (state, instance)")
    db.execute("CREATE INDEX orders_by_expiry ON orders (expires, state, instance, vendor_id)"
               " WHERE expires IS NOT NULL")
    db.execute("CREATE INDEX items_by_expiry ON items (expires) WHERE expires IS NOT NULL")


@migrations()
def m009_items_packed(db: Database) -> None:
    """Items in a rowid table beside a unique index, instead of WITHOUT ROWID.

    Keyed by (instance, vendor_id, position) itself, the table took its rows in key order:
    a full scan lists orders newest first, so every insert split a page and left the table's
    pages about half full. Appended by rowid, its pages fill; only the small index is keyed.
    """
    columns = db["items"].columns       # the same columns, types, NOT NULLs and defaults
    db.table("items_packed").create(
        {c.name: c.type for c in columns}, not_null={c.name for c in columns if c.notnull},
        defaults={c.name: c.default_value for c in columns if c.default_value is not None},
    )
    db.execute("INSERT INTO items_packed SELECT instance, vendor_id, position, key, title,"
               " quantity, status, expires, data FROM items")
    db.execute("DROP TABLE items")
    db.execute("ALTER TABLE items_packed RENAME TO items")
    db.execute("CREATE UNIQUE INDEX items_by_order ON items (instance, vendor_id, position)")
    db.execute("CREATE INDEX items_by_expiry ON items (expires) WHERE expires IS NOT NULL")


def defer_indexes(db: Database) -> bool:
    """Drop the :data:`DEFERRED_INDEXES` if the ledger holds no order yet (in a transaction
    of the caller's); True if it did. The caller builds them again when its backfill ends."""
    if db.execute("SELECT 1 FROM orders LIMIT 1").fetchone() is not None:
        return False
    for name in _present(db, DEFERRED_INDEXES):
        db.execute(f"DROP INDEX {name}")
    return True


def build_deferred_indexes(db: Database) -> None:
    """Build every one of the :data:`DEFERRED_INDEXES` that is missing (none: no write)."""
    present = _present(db, DEFERRED_INDEXES)
    for name, columns in DEFERRED_INDEXES.items():
        if name not in present:     # IF NOT EXISTS: another process may have just built it
            db.execute(f"CREATE INDEX IF NOT EXISTS {name} {columns}")


def _present(db: Database, names) -> list[str]:
    marks = ",".join("?" * len(names))
    return [name for (name,) in db.execute(
        f"SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ({marks})",
        list(names))]
