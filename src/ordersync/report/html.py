"""The report as one self-contained HTML file: inline CSS, an inline SVG chart, no script,
no request to anywhere (it opens from a mail attachment or a file share, offline).

Every vendor string (order ids, reasons, errors, customer text inside them) passes through
:func:`html.escape` here, at the one place text becomes markup: a ``<script>`` a vendor
planted in an order shows as text. The standard library's escape is enough for a page this
size; a template library would add a dependency for the same guarantee.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from html import escape

from .detect import DRIFT, duration
from .text import bounded, more_text

STATE_COLOURS = {
    "draft": "#9aa5b1", "submitted": "#f0b429", "approved": "#3ebd93",
    "in_production": "#2bb0ed", "completed": "#147d64", "rejected": "#e12d39",
    "cancelled": "#7b8794", "expired": "#cf6679", "failed": "#ab091e", "unknown": "#6c63ff",
}

CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#1f2933;
padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #cbd2d9}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .6em;
vertical-align:top;border-bottom:1px solid #e4e7eb}th{background:#f5f7fa}
.count{color:#616e7c;font-weight:normal}.ok{color:#147d64}.stale,.failing{color:#cb6e17}
.down,.paused{color:#ab091e}.new{font-weight:bold}.resolved{color:#7b8794}
.person{background:#fff3c4}pre{white-space:pre-wrap;margin:0;font-size:.85em}
svg text{font:12px system-ui,sans-serif}
"""


def render_html(report: dict) -> str:
    """The whole page for a report dict (``build_report``)."""
    exceptions = [e for e in report["exceptions"] if e["kind"] != DRIFT]
    people = [e for e in exceptions if e["needs_person"] and e["resolved"] is None]
    counts = report["counts"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        ' style-src \'unsafe-inline\'">',
        f"<title>ordersync report {_e(report['generated_at'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>ordersync report</h1><p>At {_e(report['generated_at'])}; new, persisting and"
        f" resolved since {_e(report['since'])}.</p>",
        _vendors(report["vendors"]),
        _table(f"Needs a person <span class='count'>({len(people)})</span>", "people",
               ("Order", "Action", "What is known", "Attempts"),
               _rows(people, lambda e: (_order(e), f"#{e['action']}", _e(e["reason"]),
                                        _attempts(e["detail"]))), "person"),
        _table(f"Exceptions <span class='count'>({len(exceptions)}: {counts['new']} new,"
               f" {counts['persisting']} persisting, {counts['resolved']} resolved)</span>",
               "exceptions", ("Kind", "Order", "Status", "Age", "Reason", "First seen"),
               _rows(exceptions, lambda e: (
                   _e(e["kind"]), _order(e), f"<span class='{_e(e['status'])}'>"
                   f"{_e(e['status'])}</span>", _e(duration(e["age_s"])), _e(e["reason"]),
                   _e(e["first_seen"])))),
        _summary(report["summary"], report["since"]),
        _drift(report["drift"]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _rows(exceptions: list[dict], row: Callable[[dict], tuple[str, ...]]
          ) -> list[tuple[str, ...]]:
    """A section's rows, :func:`~ordersync.report.text.bounded`: "and N more" in the third
    cell of its own row."""
    width = len(row(exceptions[0])) if exceptions else 0
    return [e if isinstance(e, tuple) else row(e) for e in bounded(
        exceptions, lambda n, kind: ("", "", _e(more_text(n, kind))) + ("",) * (width - 3))]


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _order(e: dict) -> str:
    return _e(f"{e['vendor']}:{e['order']}" if e["order"] else e["vendor"])


def _table(title: str, ident: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
           row_class: str = "") -> str:
    """A section: its heading with a count, then its rows (cells already escaped)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    cls = f" class='{row_class}'" if row_class else ""
    body = "".join(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                   for row in rows) or f"<tr><td colspan='{len(headers)}'>none</td></tr>"
    return (f"<section id='{ident}'><h2>{title}</h2>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>")


def _vendors(vendors: list[dict]) -> str:
    rows = [(_e(duration(v["freshness_s"]) if v["freshness_s"] is not None else "never"),
             _e(v["vendor"]), f"<span class='{_e(v['status'])}'>{_e(v['status'])}</span>",
             _e(v["failures"]), _e(v["last_success"] or "never"),
             _e(f"{v['error']['class']}: {v['error']['message']}" if v["error"] else ""))
            for v in vendors]
    return _table(f"Vendors <span class='count'>({len(vendors)})</span>", "vendors",
                  ("Freshness", "Vendor", "Status", "Failures", "Last success", "Last error"),
                  rows)


def _attempts(detail: dict) -> str:
    shown = {k: detail.get(k) for k in ("attempts_log", "verification", "last_error")}
    return f"<pre>{_e(json.dumps(shown, indent=1))}</pre>"


def _summary(summary: dict, since: str) -> str:
    rows = [(_e(vendor), _e(summary["total_orders"][vendor]),
             _e(", ".join(f"{s} {n}" for s, n in sorted(states.items()))))
            for vendor, states in summary["orders"].items()]
    total = sum(summary["total_orders"].values())
    orders = _table(f"Orders <span class='count'>({total})</span>", "summary",
                    ("Vendor", "Orders", "By state"), rows)
    changes = _table(f"Changes since {_e(since)}", "changes", ("Vendor", "Events"),
                     [(_e(v), _e(", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
                                 or "none")) for v, kinds in summary["changes"].items()])
    values = _table("Order value", "values", ("Vendor", "Currency", "Total", "Orders"),
                    [(_e(v["vendor"]), _e(v["currency"] or "(unstated)"),
                      _e(f"{v['total']:.2f}"), _e(v["orders"])) for v in summary["values"]])
    return orders + _chart(summary["orders"]) + changes + values


def _chart(orders: dict[str, dict[str, int]]) -> str:
    """Orders by state per vendor: one stacked horizontal bar each, with a legend."""
    bar_w, label_w, row_h = 560, 180, 28
    states = sorted({s for by_state in orders.values() for s in by_state})
    most = max([sum(v.values()) for v in orders.values()] + [1])
    height = row_h * len(orders) + 40
    shapes = []
    for row, (vendor, by_state) in enumerate(orders.items()):
        y, x = row * row_h + 4, float(label_w)
        shapes.append(f"<text x='0' y='{y + 15}'>{_e(vendor[:28])}</text>")
        for state in states:
            n = by_state.get(state, 0)
            if n:
                w = bar_w * n / most
                shapes.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='20'"
                              f" fill='{STATE_COLOURS.get(state, '#999')}'>"
                              f"<title>{_e(vendor)}: {_e(state)} {n}</title></rect>")
                x += w
        shapes.append(f"<text x='{x + 6:.1f}' y='{y + 15}'>{sum(by_state.values())}</text>")
    legend_x = 0
    for state in states:
        y = height - 14
        shapes.append(f"<rect x='{legend_x}' y='{y - 10}' width='10' height='10'"
                      f" fill='{STATE_COLOURS.get(state, '#999')}'/>"
                      f"<text x='{legend_x + 14}' y='{y}'>{_e(state)}</text>")
        legend_x += 24 + 8 * len(state)
    return (f"<figure id='chart'><svg xmlns='http://www.w3.org/2000/svg' role='img'"
            f" aria-label='orders by state per vendor' width='{label_w + bar_w + 60}'"
            f" height='{height}'>{''.join(shapes)}</svg>"
            "<figcaption>Orders by state per vendor</figcaption></figure>")


def _drift(drift: dict) -> str:
    names = ("matched", "missing", "unexpected", "mismatched")
    counts = _table("Drift <span class='count'>(from <code>ordersync reconcile</code>)</span>",
                    "drift", ("Vendor", "Matched", "Missing", "Unexpected", "Mismatched",
                              "Last run"),
                    [(_e(d["vendor"]), *(_e(d.get(k, "")) for k in names),
                      _e(d["at"] or "never")) for d in drift["vendors"]])
    rows = _table(f"Drift rows <span class='count'>({len(drift['rows'])})</span>", "drift-rows",
                  ("Order", "Status", "Difference", "First seen"),
                  _rows(drift["rows"], lambda e: (_order(e), _e(e["status"]),
                                                  _e(e["reason"]), _e(e["first_seen"]))))
    return counts + rows
