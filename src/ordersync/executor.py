"""The outbox executor: every queued action reaches its vendor once, or a person hears of it.

For each due action of a vendor instance, in order:

1. mark it ``in_flight`` and commit, *before* any request;
2. if an earlier attempt may have taken effect (it was in flight when the process died, or
   its answer was lost), **verify** first: read the vendor; effect present -> succeeded,
   absent -> perform, cannot tell -> uncertain (a person decides);
3. perform it, and record the outcome with every HTTP request it made, in one transaction
   (with the vendor's fresh copy of the order, when there is one, as an ``action`` event).

Outcomes by error class (see errors.py): permanent -> failed (with the vendor's message);
transient -> pending again after backoff (never sooner than Retry-After), dead after the
configured attempts; ambiguous -> pending and marked for verification, verified no sooner
than ``verify_after_s`` (a write still being processed by the vendor must have landed);
auth/config -> pending, the attempt not counted, the vendor reported unhealthy.

Once a write of the attempt has been answered as expected, the action has succeeded,
whatever fails after it (the read of the order that follows): the order's new state is
learnt later, never by sending the write again. An action marked for verification keeps the
mark until it succeeds, so every resend is preceded by a verification in the same attempt.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import structlog

from .backoff import backoff_s
from .config import ActionPolicy
from .constants import AUTH_RETRY_S
from .contract import Outcome
from .errors import (
    ActionRefused,
    AmbiguousError,
    AuthError,
    CannotConnect,
    TransientError,
    VendorError,
)
from .http import answered_writes, request_log
from .ledger import AsyncLedger, LedgerAPI
from .model import NEW_ORDER, Action, ActionState
from .pages import map_and_apply
from .sync import VendorRunner

DEFAULT_POLICY = ActionPolicy()  # one shared default, as the default argument was

log = structlog.get_logger("ordersync.executor")


def _due(ledger: LedgerAPI, instance: str, now: float, limit: int) -> list[Action]:
    return ledger.outbox.due(instance, now, limit)


def _start(ledger: LedgerAPI, action_id: int, now: float) -> Action | None:
    return ledger.outbox.start(action_id, now)


def _note(ledger: LedgerAPI, action_id: int, notes: dict, now: float) -> None:
    ledger.outbox.note(action_id, notes, now)


def _recover(ledger: LedgerAPI, instance: str, now: float, verify_at: float) -> int:
    return ledger.outbox.recover_in_flight(instance, now, verify_at)


class Executor:
    """Drains one vendor instance's due actions through its adapter."""

    def __init__(
        self,
        runner: VendorRunner,
        ledger: AsyncLedger,
        *,
        policy: ActionPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.runner = runner
        self.instance = runner.name
        self.ledger = ledger
        self.policy = policy
        self.clock = clock
        self.jitter = jitter
        self.stopping = False
        self.unreachable = False
        """Set when nothing answered at the vendor's address: the drain stops there, so the
        other due actions wait for the next drain instead of each paying its own attempts."""
        self.progress: Callable[[], None] | None = None
        """Called after each action a drain runs (the daemon's watchdog counts it progress)."""

    async def recover(self) -> int:
        """Actions left in flight by a process that died: verify them before anything else."""
        now = self.clock()
        count = await self.ledger.call(_recover, self.instance, now,
                                       now + self.policy.verify_after_s)
        if count:
            log.warning("actions_recovered", vendor=self.instance, in_flight=count,
                        note="each will be verified against the vendor before any retry")
        return count

    async def drain(self, batch: int = 50) -> Counter[str]:
        """Run every action due now; returns how many ended in each state."""
        ended: Counter[str] = Counter()
        self.unreachable = False
        while not (self.stopping or self.unreachable):
            due = await self.ledger.call(_due, self.instance, self.clock(), batch)
            if not due:
                break
            for action in due:
                if self.stopping or self.unreachable:
                    break
                state = await self.execute(action)
                if self.progress is not None:
                    self.progress()
                if state is not None:
                    ended[state.value] += 1
        return ended

    async def execute(self, action: Action) -> ActionState | None:
        """One attempt at one action; None when another process took it first."""
        started = await self.ledger.call(_start, action.id, self.clock())
        if started is None:
            return None
        requests: list[dict] = []
        token = request_log.set(requests)
        writes_token = answered_writes.set([])
        structlog.contextvars.bind_contextvars(action=action.id)
        try:
            decision = await self._verify_then_perform(started)
            read_at = self.clock()  # any order in the decision was read just now
        finally:
            request_log.reset(token)
            answered_writes.reset(writes_token)
            structlog.contextvars.unbind_contextvars("action")
        state, fields, order = _created_order_known(started, *decision)
        await self.ledger.call(self._record, started, state, self.clock(), fields, order,
                               requests, read_at)
        level = "info" if state in (ActionState.SUCCEEDED, ActionState.PENDING) else "warning"
        getattr(log, level)("action_" + state.value, vendor=self.instance, action=action.id,
                            kind=action.kind, order=action.target, attempt=started.attempts,
                            error=fields.get("error"))
        return state

    async def _verify_then_perform(
        self, action: Action
    ) -> tuple[ActionState, dict, dict | None]:
        adapter = self.runner.adapter
        now = self.clock
        verified_absent = False
        try:
            if action.needs_verification:
                verdict = await adapter.verify(action)
                if verdict.done is True:
                    return self._succeeded(verdict, verified=True)
                if verdict.done is None:
                    return ActionState.UNCERTAIN, {
                        "error": f"may have taken effect and cannot be verified: {verdict.reason}"
                    }, verdict.order
                verified_absent = True
            notes = await adapter.checkpoint(action)
            if notes:
                await self.ledger.call(_note, action.id, notes, now())
                action = replace(action, notes=notes)
            outcome = await adapter.perform(action)
            return self._succeeded(outcome, verified=False)
        except ActionRefused as exc:
            return ActionState.FAILED, {"error": str(exc),
                                        **_cleared(verified_absent)}, None
        except VendorError as exc:
            writes = answered_writes.get()
            if not writes:
                state, fields, _ = self._failed(action, exc)
                if state is ActionState.FAILED:
                    fields.update(_cleared(verified_absent))
                return state, fields, None
            # the write was answered: done; only what followed it failed
            return ActionState.SUCCEEDED, {
                "result": {"verified": False, "answered": writes[-1],
                           "read_after_failed": _vendor_said(exc)},
                "needs_verification": False}, None

    def _failed(self, action: Action, exc: VendorError) -> tuple[ActionState, dict, None]:
        """What a vendor error before any answered write means for the action."""
        now, said = self.clock(), _vendor_said(exc)
        self.unreachable = isinstance(exc, CannotConnect)
        if isinstance(exc, AuthError):
            return ActionState.PENDING, {"error": said, "refund_attempt": True,
                                         "next_attempt_at": now + AUTH_RETRY_S}, None
        ambiguous = isinstance(exc, AmbiguousError)
        if not isinstance(exc, TransientError) and not ambiguous:
            return ActionState.FAILED, {"error": said}, None  # permanent
        maybe = ambiguous or action.needs_verification   # the vendor may hold the effect
        if action.attempts >= self.policy.max_attempts:
            if maybe:
                which = "the last" if ambiguous else "an earlier one"
                return ActionState.UNCERTAIN, {
                    "error": f"gave up after {action.attempts} attempts; {which} may have"
                    f" taken effect: {said}", "needs_verification": True}, None
            return ActionState.DEAD, {
                "error": f"gave up after {action.attempts} attempts: {said}"}, None
        wait_s = backoff_s(action.attempts, self.policy.backoff_base_s,
                           self.policy.backoff_max_s, jitter=self.jitter(),
                           retry_after_s=getattr(exc, "retry_after_s", None))
        if ambiguous:
            # a write the vendor is still processing must have landed before we look
            return ActionState.PENDING, {"error": said, "needs_verification": True,
                                         "next_attempt_at": now + max(
                                             wait_s, self.policy.verify_after_s)}, None
        return ActionState.PENDING, {"error": said, "next_attempt_at": now + wait_s}, None

    @staticmethod
    def _succeeded(outcome: Outcome, *, verified: bool) -> tuple[ActionState, dict, dict | None]:
        result = dict(outcome.result or {})
        result["verified"] = verified
        return ActionState.SUCCEEDED, {"result": result, "needs_verification": False}, \
            outcome.order

    def _record(self, ledger: LedgerAPI, action: Action, state: ActionState, now: float,
                fields: dict, order: dict | None, requests: list[dict],
                read_at: float) -> None:
        with ledger.write():
            if order is not None:
                map_and_apply(ledger, self.runner.spec, self.instance,
                              self.runner.adapter.stream, [order], None, now, source="action",
                              read_at=read_at, limits=self.runner.config.limits)
            ledger.outbox.finish(action, state, now, http_log=requests, **fields)


def _cleared(verified_absent: bool) -> dict:
    """A failed attempt that first found no effect at the vendor leaves nothing to verify."""
    return {"needs_verification": False} if verified_absent else {}


def _vendor_said(exc: VendorError) -> str:
    status = f"HTTP {exc.status}: " if exc.status is not None else ""
    return f"{status}{exc.message}"


def _created_order_known(action: Action, state: ActionState, fields: dict,
                         order: dict | None) -> tuple[ActionState, dict, dict | None]:
    """A create that succeeded must say which order it made (``result["order_id"]``): the
    later links of its chain act on that order. Without it (the answer to the create was
    read, what followed failed, and no id came back), a person has to find the order."""
    if (state is not ActionState.SUCCEEDED or not action.vendor_id.startswith(NEW_ORDER)
            or (fields.get("result") or {}).get("order_id")):
        return state, fields, order
    return ActionState.UNCERTAIN, {**fields, "error": "the vendor made the order, but its id"
                                   " was not learnt: find it at the vendor; the actions that"
                                   " follow this one wait (`actions cancel` them, or queue"
                                   " them again on the order found)"}, order

