"""The outbox: every push to a vendor (actions) and every HTTP request sent for one (attempts).

An action is in flight, durably, before its request is sent; an attempt's outcome and its
requests are recorded in one transaction. The vendor's words (errors, results, requests) are
stored with every known secret redacted (:func:`ordersync.redaction.redact`): a vendor may
repeat a credential in its answer.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import orjson

from ..clock import iso
from ..errors import OutboxError
from ..model import NEW_ORDER, Action, ActionState
from ..redaction import redact, redact_optional
from .connection import Connection
from .orders import _where
from .records import Attempt


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class Outbox:
    """The outbox half of the ledger: actions and their HTTP attempts."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection.db
        self.write = connection.write

    def enqueue(self, instance: str, vendor_id: str, kind: str, payload: dict, key: str,
                now: float, after: int | None = None) -> tuple[Action, bool]:
        """Add an action (after action ``after``, in a chain); the same key twice is one
        action. Returns (action, created)."""
        at = iso(now)
        text = _dumps(payload)
        with self.write():
            # Not INSERT OR IGNORE: an ignored insert would still use up an action number.
            created = self.db.conn.execute(
                "INSERT INTO actions (instance, vendor_id, kind, payload, key, state,"
                " next_attempt_at, created_at, updated_at, after_id) SELECT ?,?,?,?,?,?,?,?,?,?"
                " WHERE NOT EXISTS (SELECT 1 FROM actions WHERE key = ?)",
                (instance, vendor_id, kind, text, key, ActionState.PENDING.value, now, at, at,
                 after, key),
            ).rowcount == 1
            action = self._by_key(key)
        # an order id still to be created has become the real one when its create succeeded
        same_order = action.vendor_id == vendor_id or vendor_id.startswith(NEW_ORDER)
        if not created and (not same_order or (action.instance, action.kind, action.payload)
                            != (instance, kind, orjson.loads(text))):
            raise OutboxError(
                f"idempotency key {key!r} already names action #{action.id}"
                f" ({action.kind} {action.target}), a different action"
            )
        return action, created

    def _by_key(self, key: str) -> Action:
        row = next(self.db.query("SELECT * FROM actions WHERE key = ?", (key,)))
        return _action(row)

    def get(self, action_id: int) -> Action:
        rows = list(self.db.query("SELECT * FROM actions WHERE id = ?", (action_id,)))
        if not rows:
            raise OutboxError(f"no action #{action_id}")
        return _action(rows[0])

    def attempts(self, action_id: int) -> list[Attempt]:
        return [Attempt(*row) for row in self.db.conn.execute(
            "SELECT number, at, request, status, latency_ms, error FROM attempts"
            " WHERE action_id = ? ORDER BY id", (action_id,))]

    def list(self, *, instance: str | None = None, state: str | None = None,
             limit: int | None = None) -> list[Action]:
        where, params = _where(instance=instance, state=state)
        sql = "SELECT * FROM actions" + where
        sql += " ORDER BY id" + (f" LIMIT {int(limit)}" if limit else "")
        return [_action(row) for row in self.db.query(sql, params)]

    def counts(self, instance: str | None = None) -> dict[str, int]:
        sql = "SELECT state, count(*) FROM actions"
        params: tuple = ()
        if instance:
            sql += " WHERE instance = ?"
            params = (instance,)
        return dict(self.db.conn.execute(sql + " GROUP BY state", params).fetchall())

    def due(self, instance: str, now: float, limit: int = 100) -> builtins.list[Action]:
        """Pending actions whose time has come, oldest first, one order at a time in order.

        An action waits while an earlier action on the same order is still open (pending,
        in flight or uncertain), so a vendor always sees one order's actions in the order
        they were given. A link of a chain also waits until the action it follows succeeded.
        Creates of one kind at one instance run one at a time: a create waits while an
        earlier one is unresolved (pending, perhaps awaiting verification, or in flight), so
        the verification of a create whose answer was lost ("which new order is mine?")
        never has to tell it from another create of ours.
        """
        rows = self.db.query(
            "SELECT * FROM actions AS a WHERE a.instance = ? AND a.state = 'pending'"
            " AND a.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM actions AS b"
            " WHERE b.instance = a.instance AND b.vendor_id = a.vendor_id AND b.id < a.id"
            " AND b.state IN ('pending', 'in_flight', 'uncertain'))"
            " AND (a.after_id IS NULL OR EXISTS (SELECT 1 FROM actions AS p"
            " WHERE p.id = a.after_id AND p.state = 'succeeded'))"
            " AND NOT (a.vendor_id LIKE ? AND EXISTS (SELECT 1 FROM actions AS c"
            " WHERE c.instance = a.instance AND c.kind = a.kind AND c.vendor_id LIKE ?"
            " AND c.id < a.id AND c.state IN ('pending', 'in_flight')))"
            " ORDER BY a.id LIMIT ?",
            (instance, now, NEW_ORDER + "%", NEW_ORDER + "%", limit),
        )
        return [_action(row) for row in rows]

    def start(self, action_id: int, now: float) -> Action | None:
        """Mark a pending action in flight, durably, before its request. None if not pending."""
        with self.write():
            cursor = self.db.conn.execute(
                "UPDATE actions SET state = 'in_flight', attempts = attempts + 1,"
                " updated_at = ? WHERE id = ? AND state = 'pending'",
                (iso(now), action_id),
            )
            if cursor.rowcount != 1:
                return None
            return self.get(action_id)

    def finish(
        self,
        action: Action,
        state: ActionState,
        now: float,
        *,
        error: str | None = None,
        result: dict | None = None,
        next_attempt_at: float | None = None,
        needs_verification: bool | None = None,
        refund_attempt: bool = False,
        http_log: Sequence[dict] = (),
    ) -> None:
        """Record an attempt's outcome and its HTTP requests in one transaction.

        The vendor's words (errors, results, requests) are stored with every known secret
        redacted: a vendor may repeat a credential in its answer.
        """
        at = iso(now)
        with self.write():
            self.db.conn.execute(
                "UPDATE actions SET state = ?, last_error = ?, result = coalesce(?, result),"
                " next_attempt_at = coalesce(?, next_attempt_at),"
                " needs_verification = coalesce(?, needs_verification),"
                " attempts = attempts - ?, updated_at = ? WHERE id = ?",
                (state.value, redact_optional(error),
                 redact(_dumps(result)) if result is not None else None,
                 next_attempt_at, None if needs_verification is None else int(needs_verification),
                 int(refund_attempt), at, action.id),
            )
            self.db.conn.executemany(
                "INSERT INTO attempts (action_id, number, at, request, status, latency_ms, error)"
                " VALUES (?,?,?,?,?,?,?)",
                [(action.id, action.attempts, entry.get("at", at), redact(entry["request"]),
                  entry.get("status"), entry.get("latency_ms"), redact_optional(entry.get("error")))
                 for entry in http_log],
            )
            created = (result or {}).get("order_id")
            if state is ActionState.SUCCEEDED and created and action.vendor_id.startswith(
                    NEW_ORDER):
                # the chain's later links act on the order this action made
                self.db.conn.execute(
                    "UPDATE actions SET vendor_id = ? WHERE instance = ? AND vendor_id = ?",
                    (str(created), action.instance, action.vendor_id))

    def blocking(self, action: Action) -> Action | None:
        """The action a pending chain link waits for (it has not succeeded), if any."""
        if action.after is None or action.state is not ActionState.PENDING:
            return None
        before = self.get(action.after)
        return None if before.state is ActionState.SUCCEEDED else before

    def note(self, action_id: int, notes: dict, now: float) -> None:
        """Keep an adapter's notes on an action (committed before its request is sent)."""
        with self.write():
            self.db.conn.execute("UPDATE actions SET notes = ?, updated_at = ? WHERE id = ?",
                                 (_dumps(notes), iso(now), action_id))

    def recover_in_flight(self, instance: str, now: float, verify_at: float | None = None
                          ) -> int:
        """After a restart: every in-flight action must be verified before anything else,
        at ``verify_at`` (when a request it may have left at the vendor has landed)."""
        with self.write():
            return self.db.conn.execute(
                "UPDATE actions SET state = 'pending', needs_verification = 1,"
                " next_attempt_at = ?, updated_at = ? WHERE instance = ? AND state = 'in_flight'",
                (now if verify_at is None else verify_at, iso(now), instance),
            ).rowcount

    def retry(self, action_id: int, now: float) -> Action:
        """A person asks for another try: dead, failed or uncertain -> pending.

        An uncertain action is retried without verification: the person has decided it did
        not take effect. Others keep their need for verification.
        """
        action = self.get(action_id)
        allowed = (ActionState.DEAD, ActionState.FAILED, ActionState.UNCERTAIN)
        if action.state not in allowed:
            raise OutboxError(f"action #{action_id} is {action.state.value}; only dead, failed"
                              " or uncertain actions can be retried")
        verify = False if action.state is ActionState.UNCERTAIN else action.needs_verification
        with self.write():
            self.db.conn.execute(
                "UPDATE actions SET state = 'pending', attempts = 0, next_attempt_at = ?,"
                " needs_verification = ?, updated_at = ? WHERE id = ?",
                (now, int(verify), iso(now), action_id),
            )
        return self.get(action_id)

    def cancel(self, action_id: int, now: float) -> Action:
        """A person withdraws an action that has not reached the vendor for sure."""
        action = self.get(action_id)
        allowed = (ActionState.PENDING, ActionState.DEAD, ActionState.FAILED,
                   ActionState.UNCERTAIN)
        if action.state not in allowed:
            raise OutboxError(f"action #{action_id} is {action.state.value}; only pending, dead,"
                              " failed or uncertain actions can be cancelled")
        with self.write():
            # decided in the statement itself: an attempt that started (or lost its answer)
            # after the read above must not be cancelled
            cursor = self.db.conn.execute(
                "UPDATE actions SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = ?"
                " AND (needs_verification = 0 OR state = 'uncertain')",
                (iso(now), action_id, action.state.value),
            )
        if cursor.rowcount != 1:
            now_ = self.get(action_id)
            if now_.needs_verification and now_.state is not ActionState.UNCERTAIN:
                raise OutboxError(
                    f"action #{action_id} may already have reached the vendor (an answer was"
                    " lost); it is verified at its next attempt: cancel it only if it then ends"
                    " failed, or wait for it to become uncertain")
            raise OutboxError(f"action #{action_id} changed while cancelling; look again")
        return self.get(action_id)


def _action(row: dict) -> Action:
    return Action(
        id=row["id"], instance=row["instance"], vendor_id=row["vendor_id"], kind=row["kind"],
        payload=orjson.loads(row["payload"]), key=row["key"], state=ActionState(row["state"]),
        attempts=row["attempts"], next_attempt_at=row["next_attempt_at"],
        needs_verification=bool(row["needs_verification"]), last_error=row["last_error"],
        result=orjson.loads(row["result"]) if row["result"] else None,
        notes=orjson.loads(row["notes"]) if row.get("notes") else {},
        after=row.get("after_id"),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )

