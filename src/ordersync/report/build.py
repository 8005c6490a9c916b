"""The morning report as one JSON-shaped dict (docs/reports.md documents its shape).

:func:`refresh` runs detection and records what it found as exceptions (one short write);
:func:`build_report` refreshes (unless told not to) and reads everything else: vendor health
first, then exceptions (uncertain actions first), the summary and drift. Every renderer
(table, CSV, HTML) draws from this dict alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..clock import iso
from ..contract import AdapterSpec
from ..ledger import ExceptionRecord, LedgerAPI, Refreshed
from ..ledger.exceptions import DRIFT
from .detect import DETECTED, KINDS, UNCERTAIN, detect, seconds
from .settings import DEFAULT_SINCE, ReportSettings, as_mapping, parse_since

DRIFT_COUNTS = ("matched", "missing", "unexpected", "mismatched")


def refresh(ledger: LedgerAPI, specs_by_instance: Mapping[str, AdapterSpec], now: float,
            settings: ReportSettings, *, vendor: str | None = None) -> Refreshed:
    """Detect exceptions now and record them: new ones inserted, persisting ones touched,
    cleared ones resolved (for ``vendor`` only, if given). Anyone may call it (the report
    does; the daemon could after each poll)."""
    specs = _chosen(specs_by_instance, vendor)
    return ledger.refresh_exceptions(detect(ledger, specs, now, settings), now,
                                     kinds=DETECTED, instances=sorted(specs))


def build_report(ledger: LedgerAPI, specs_by_instance: Mapping[str, AdapterSpec], now: float,
                 settings: ReportSettings, *, vendor: str | None = None,
                 since: float | None = None, refresh_first: bool = True) -> dict:
    """The report at ``now`` for every configured instance (or ``vendor``), with what is new,
    persisting and resolved since ``since`` (default: 24 hours before ``now``).

    ``refresh_first=False`` only reads (the exceptions as the last refresh left them).
    """
    specs = _chosen(specs_by_instance, vendor)
    since = parse_since(DEFAULT_SINCE, now) if since is None else since
    refreshed = refresh(ledger, specs, now, settings, vendor=vendor) if refresh_first else None
    exceptions = [_exception(e, now, since) for e in ledger.exceptions(resolved_since=iso(since))
                  if e.instance in specs]
    exceptions.sort(key=lambda e: (KINDS.index(e["kind"]) if e["kind"] in KINDS else len(KINDS),
                                   e["resolved"] is not None, e["first_seen"], e["key"]))
    return {
        "generated_at": iso(now),
        "since": iso(since),
        "thresholds": dict(as_mapping(settings)),
        "vendors": [_vendor(ledger, name, spec, now, settings)
                    for name, spec in sorted(specs.items())],
        "counts": _counts(exceptions),
        "refreshed": None if refreshed is None else {
            "new": len(refreshed.new), "persisting": len(refreshed.persisting),
            "resolved": len(refreshed.resolved)},
        "exceptions": exceptions,
        "summary": _summary(ledger, specs, since),
        "drift": {"vendors": [{"vendor": name, **(ledger.reconciled(name) or {"at": None})}
                              for name in sorted(specs)],
                  "rows": [e for e in exceptions if e["kind"] == DRIFT]},
    }


def _chosen(specs_by_instance: Mapping[str, AdapterSpec], vendor: str | None
            ) -> dict[str, AdapterSpec]:
    if vendor is None:
        return dict(specs_by_instance)
    return {vendor: specs_by_instance[vendor]}


def _vendor(ledger: LedgerAPI, name: str, spec: AdapterSpec, now: float,
            settings: ReportSettings) -> dict:
    found = ledger.vendor_health(name)
    health = found[0] if found else None
    success = health.last_success_at if health else None
    freshness = None if success is None else round(now - seconds(success), 3)
    failures = health.consecutive_failures if health else 0
    if health is not None and health.paused:
        status = "paused"
    elif failures >= settings.down_after_failures:
        status = "down"
    elif freshness is None or freshness > settings.stale_after_s:
        status = "stale"
    elif failures:
        status = "failing"
    else:
        status = "ok"
    return {   # freshness first: the first thing every view shows
        "freshness_s": freshness, "vendor": name, "adapter": spec.name, "status": status,
        "last_poll": health.last_poll_at if health else None, "last_success": success,
        "failures": failures,
        "error": ({"class": health.last_error_class, "message": health.last_error}
                  if health and failures and health.last_error_class else None),
        "paused": bool(health and health.paused),
    }


def _exception(record: ExceptionRecord, now: float, since: float) -> dict:
    """One exception as the report shows it; ``age_s`` is how long its cause has been there
    (since the order began to wait, the action was queued; else since first seen)."""
    first_seen = seconds(record.first_seen)
    began = record.detail.get("since")
    start = min(first_seen, seconds(began)) if isinstance(began, str) else first_seen
    end = seconds(record.resolved_at) if record.resolved_at else now
    if record.resolved_at is not None:
        status = "resolved"
    elif first_seen >= since:
        status = "new"
    else:
        status = "persisting"
    return {
        "kind": record.kind, "key": record.key, "vendor": record.instance,
        "order": record.vendor_id, "action": record.action_id,
        "age_s": round(end - start, 3), "reason": record.reason,
        "first_seen": record.first_seen, "last_seen": record.last_seen,
        "resolved": record.resolved_at, "status": status,
        "needs_person": record.kind == UNCERTAIN, "detail": record.detail,
    }


def _counts(exceptions: list[dict]) -> dict:
    counts: dict = {"open": 0, "new": 0, "persisting": 0, "resolved": 0, "needs_person": 0,
                    "by_kind": {}}
    for e in exceptions:
        counts[e["status"]] += 1
        if e["resolved"] is None:
            counts["open"] += 1
            counts["needs_person"] += e["needs_person"]
            counts["by_kind"][e["kind"]] = counts["by_kind"].get(e["kind"], 0) + 1
    return counts


def _summary(ledger: LedgerAPI, specs: Mapping[str, AdapterSpec], since: float) -> dict:
    orders: dict[str, dict[str, int]] = {name: {} for name in sorted(specs)}
    for count in ledger.summary():
        if count.instance in orders:
            orders[count.instance][count.state.value] = count.orders
    changes = ledger.changes_since(iso(since))
    values = []
    for name, spec in sorted(specs.items()):
        if spec.prices is None:
            continue
        prices = spec.prices
        for currency, (priced, total) in sorted(
                ledger.values(name, prices.amount, prices.currency).items(),
                key=lambda kv: str(kv[0])):
            values.append({"vendor": name, "currency": currency, "orders": priced,
                           "total": round(total / 100 if prices.minor_units else total, 2)})
    return {
        "orders": orders,
        "total_orders": {name: sum(states.values()) for name, states in orders.items()},
        "changes": {name: changes.get(name, {}) for name in sorted(specs)},
        "values": values,
    }
