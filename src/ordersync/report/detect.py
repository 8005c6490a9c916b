"""What is wrong now: pure detection over the ledger, the adapters' declarations, ``now``
and the thresholds. Nothing here writes; :func:`ordersync.report.refresh` records the
findings as exceptions.

The kinds, in the order the report shows them (a person first):

    uncertain        an action that may or may not have taken effect: needs a person
    vendor_down      polls failed down_after_failures times in a row
    vendor_stale     no successful poll for stale_after_s (or never)
    vendor_paused    an operator paused the instance
    stuck            waiting in one of the adapter's waiting_states past stuck_after_s
    expiring         the order or one of its items expires within expiring_within_s
    problem          what the adapter's ``problems`` says blocks the order
    unreadable       stored flagged: the mapping could not read it (intake.py)
    action_dead      an action that gave up after its attempts
    action_failed    an action the vendor refused
    action_pending   an action pending longer than action_pending_after_s
    drift            the vendor and the ledger disagree (found by ``ordersync reconcile``)

Keys are ``KIND:INSTANCE`` (vendor kinds), ``KIND:INSTANCE:ORDER`` (order kinds) and
``KIND:ACTION ID`` (action kinds): the same cause found again has the same key. Reasons
name no age (the report computes ``age_s`` from ``detail["since"]``), so a cause that stays
the same is not rewritten by every refresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from ..clock import iso
from ..contract import AdapterSpec
from ..ledger import Finding, LedgerAPI
from ..ledger.exceptions import DRIFT
from ..ledger.records import VendorHealth, WaitingOrder
from ..model import Action, ActionState
from .settings import ReportSettings

UNCERTAIN, VENDOR_DOWN, VENDOR_STALE, VENDOR_PAUSED = (
    "uncertain", "vendor_down", "vendor_stale", "vendor_paused")
STUCK, EXPIRING, PROBLEM, UNREADABLE = "stuck", "expiring", "problem", "unreadable"
ACTION_DEAD, ACTION_FAILED, ACTION_PENDING = "action_dead", "action_failed", "action_pending"

KINDS = (UNCERTAIN, VENDOR_DOWN, VENDOR_STALE, VENDOR_PAUSED, STUCK, EXPIRING, PROBLEM,
         UNREADABLE, ACTION_DEAD, ACTION_FAILED, ACTION_PENDING, DRIFT)
"""Every kind, in the order the report shows them."""
DETECTED = tuple(k for k in KINDS if k != DRIFT)
"""The kinds :func:`detect` finds (drift is found by a reconcile)."""

_ACTION_KINDS = {ActionState.UNCERTAIN: UNCERTAIN, ActionState.DEAD: ACTION_DEAD,
                 ActionState.FAILED: ACTION_FAILED}


def detect(ledger: LedgerAPI, specs_by_instance: Mapping[str, AdapterSpec], now: float,
           settings: ReportSettings) -> list[Finding]:
    """Every exception of the :data:`DETECTED` kinds for the given instances, now."""
    instances = set(specs_by_instance)
    health = {h.instance: h for h in ledger.vendor_health() if h.instance in instances}
    findings = [f for instance in sorted(instances)
                for f in vendor_findings(instance, health.get(instance), now, settings)]
    findings += action_findings(ledger, instances, now, settings)
    for instance, spec in sorted(specs_by_instance.items()):
        findings += order_findings(ledger, instance, spec, now, settings)
    findings += [_expiring(e.instance, e.vendor_id, e.expires, e.items)
                 for e in ledger.expiring(iso(now), iso(now + settings.expiring_within_s))
                 if e.instance in instances]
    return findings


def vendor_findings(instance: str, health: VendorHealth | None, now: float,
                    settings: ReportSettings) -> list[Finding]:
    """Down, stale or paused: what a vendor instance's poll record says."""
    if health is None or health.last_poll_at is None:
        return [Finding(f"{VENDOR_STALE}:{instance}", VENDOR_STALE, instance,
                        "never polled (is the daemon running?)")]
    found = []
    if health.paused:
        found.append(Finding(f"{VENDOR_PAUSED}:{instance}", VENDOR_PAUSED, instance,
                             "paused by an operator: not polled"))
    if health.consecutive_failures >= settings.down_after_failures:
        error = f"{health.last_error_class}: {health.last_error}" if health.last_error_class \
            else "no error recorded"
        found.append(Finding(f"{VENDOR_DOWN}:{instance}", VENDOR_DOWN, instance,
                             f"{health.consecutive_failures} polls failed in a row; last: {error}",
                             detail={"error_class": health.last_error_class,
                                     "error": health.last_error}))
    if health.last_success_at is None:
        found.append(Finding(f"{VENDOR_STALE}:{instance}", VENDOR_STALE, instance,
                             "no poll has succeeded yet"))
    else:
        age = now - seconds(health.last_success_at)
        if age > settings.stale_after_s:
            found.append(Finding(f"{VENDOR_STALE}:{instance}", VENDOR_STALE, instance,
                                 f"no successful poll since {health.last_success_at}",
                                 detail={"since": health.last_success_at}))
    return found


def action_findings(ledger: LedgerAPI, instances: set[str], now: float,
                    settings: ReportSettings) -> list[Finding]:
    """Uncertain (with what is known), dead and failed actions, and those pending too long."""
    found = []
    for state, kind in _ACTION_KINDS.items():
        for action in ledger.outbox.list(state=state.value):
            if action.instance in instances:
                found.append(_action_finding(ledger, action, kind))
    oldest = iso(now - settings.action_pending_after_s)
    for action in ledger.outbox.list(state=ActionState.PENDING.value):
        if action.instance in instances and (action.created_at or oldest) < oldest:
            found.append(Finding(f"{ACTION_PENDING}:{action.id}", ACTION_PENDING,
                                 action.instance, f"#{action.id} {action.kind} still pending"
                                 + _because(action), action.vendor_id,
                                 action.id, {"kind": action.kind, "attempts": action.attempts,
                                             "since": action.created_at}))
    return found


def _action_finding(ledger: LedgerAPI, action: Action, kind: str) -> Finding:
    detail: dict = {"kind": action.kind, "attempts": action.attempts,
                    "last_error": action.last_error, "payload": action.payload}
    if kind == UNCERTAIN:   # what a person needs to decide: every request and its answer
        detail["verification"] = action.notes
        detail["attempts_log"] = [
            {"number": a.number, "at": a.at, "request": a.request, "status": a.status,
             "error": a.error} for a in ledger.outbox.attempts(action.id)]
    what = {UNCERTAIN: "may or may not have taken effect", ACTION_DEAD: "gave up",
            ACTION_FAILED: "refused by the vendor"}[kind]
    detail["since"] = action.created_at
    return Finding(f"{kind}:{action.id}", kind, action.instance,
                   f"#{action.id} {action.kind} {what}" + _because(action),
                   action.vendor_id, action.id, detail)


def _because(action: Action) -> str:
    return f": {action.last_error}" if action.last_error else ""


def order_findings(ledger: LedgerAPI, instance: str, spec: AdapterSpec, now: float,
                   settings: ReportSettings) -> list[Finding]:
    """Stuck, blocked and unreadable orders of one instance, by its adapter's declarations."""
    found = []
    for order in ledger.waiting_orders(instance, list(spec.waiting_states)):
        since = waiting_since(order)
        age = now - seconds(since)
        if age > settings.stuck_after_s:
            found.append(Finding(
                f"{STUCK}:{instance}:{order.vendor_id}", STUCK, instance,
                f"{order.vendor_state} (waits for {spec.waiting_states[order.vendor_state]})"
                + (f", customer {order.customer}" if order.customer else ""), order.vendor_id,
                detail={"vendor_state": order.vendor_state, "since": since}))
    if spec.problems is not None:
        for stored in ledger.orders_in_vendor_states(instance, sorted(spec.problem_states)):
            problems = spec.problems(stored)
            if problems:
                found.append(Finding(f"{PROBLEM}:{instance}:{stored.vendor_id}", PROBLEM,
                                     instance, "; ".join(problems), stored.vendor_id,
                                     detail={"problems": problems}))
    for flagged in ledger.orders(instance=instance, flagged=True):
        found.append(Finding(f"{UNREADABLE}:{instance}:{flagged.vendor_id}", UNREADABLE,
                             instance, flagged.problem or "flagged", flagged.vendor_id))
    return found


def _expiring(instance: str, vendor_id: str, expires: str | None,
              items: tuple[tuple[str, str], ...]) -> Finding:
    parts = [f"order expires {expires}"] if expires else []
    if items:
        soonest = min(when for _, when in items)
        parts.append(f"{len(items)} item{'s' * (len(items) != 1)} expire"
                     f"{'s' * (len(items) == 1)} from {soonest}")
    return Finding(f"{EXPIRING}:{instance}:{vendor_id}", EXPIRING, instance, "; ".join(parts),
                   vendor_id, detail={"expires": expires,
                                      "items": [{"title": t, "expires": e} for t, e in items]})


def waiting_since(order: WaitingOrder) -> str:
    """When ``order`` entered its waiting state: the earlier of the ledger's time and the
    vendor's last change, when the ledger first saw it already waiting (a vendor time that
    cannot be read, or lies in the future, is left out)."""
    if order.modified:
        try:
            if seconds(order.modified) < seconds(order.since):
                return order.modified
        except (ValueError, OverflowError):
            pass
    return order.since


def seconds(text: str) -> float:
    """An ISO 8601 time (the ledger's, or a vendor's; UTC unless it says) -> a POSIX time."""
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def duration(age_s: float) -> str:
    """``3d 4h``, ``5h 12m``, ``7m``: an age for people."""
    minutes = max(0, int(age_s // 60))
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m"
