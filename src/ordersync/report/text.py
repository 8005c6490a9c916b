"""The report for a terminal (a table that fits 80 columns) and for scripts (CSV).

Both draw only from :func:`~ordersync.report.build_report`'s dict. Vendor text goes through
:func:`ordersync.text.printable` (the table) or the csv module's quoting (CSV); a cell too
wide for its column is cut with ``…`` (JSON and CSV keep it whole).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

from ..text import printable
from .detect import DRIFT, duration

WIDTH = 80
CSV_COLUMNS = ("freshness_s", "vendor", "kind", "key", "order", "action", "status", "age_s",
               "reason", "first_seen", "last_seen", "resolved")
"""One CSV row per exception; the vendor's freshness first, as in every view."""
ROWS_PER_KIND = 50
"""The table and the HTML page show at most this many exceptions of each kind (and drift
rows, and actions that need a person), then one row "and N more KIND": a morning read, not
an export. JSON and CSV hold every row."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def render_table(report: dict, width: int = WIDTH) -> str:
    """Every section as aligned text, no line longer than ``width``."""
    lines: list[str] = [f"ordersync report at {report['generated_at']}",
                        f"new, persisting and resolved since {report['since']}", ""]
    vendors = report["vendors"]
    lines += _section(f"VENDORS ({len(vendors)})", ("FRESH", "VENDOR", "STATUS", "FAILS",
                                                    "LAST ERROR"),
                      [(_age(v["freshness_s"]), v["vendor"], v["status"], str(v["failures"]),
                        _error(v["error"])) for v in vendors], (7, 20, 8, 5), width)
    exceptions = [e for e in report["exceptions"] if e["kind"] != DRIFT]
    people = [e for e in exceptions if e["needs_person"] and e["resolved"] is None]
    lines += _section(f"NEEDS A PERSON ({len(people)})", ("ORDER", "ACTION", "WHAT IS KNOWN"),
                      _rows(people, lambda e: (_order(e), f"#{e['action']}", e["reason"])),
                      (22, 8), width)
    counts = report["counts"]
    lines += _section(
        f"EXCEPTIONS ({len(exceptions)}: {counts['new']} new, {counts['persisting']}"
        f" persisting, {counts['resolved']} resolved)",
        ("KIND", "ORDER", "STATUS", "AGE", "REASON"),
        _rows(exceptions, lambda e: (e["kind"], _order(e), e["status"], duration(e["age_s"]),
                                     e["reason"])), (14, 22, 10, 7), width)
    summary = report["summary"]
    rows: list[tuple[str, ...]] = [(vendor, str(summary["total_orders"][vendor]),
             ", ".join(f"{state} {n}" for state, n in sorted(states.items())))
            for vendor, states in summary["orders"].items()]
    lines += _section("ORDERS", ("VENDOR", "ORDERS", "BY STATE"), rows, (20, 7), width)
    rows = [(vendor, ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) or "none")
            for vendor, kinds in summary["changes"].items()]
    lines += _section(f"CHANGES SINCE {report['since']}", ("VENDOR", "EVENTS"), rows, (20,),
                      width)
    if summary["values"]:
        rows = [(v["vendor"], v["currency"] or "(unstated)", f"{v['total']:.2f}",
                 str(v["orders"])) for v in summary["values"]]
        lines += _section("ORDER VALUE", ("VENDOR", "CURRENCY", "TOTAL", "ORDERS"), rows,
                          (20, 10, 14), width)
    drift = report["drift"]
    rows = [(d["vendor"], *(str(d.get(k, "")) for k in ("matched", "missing", "unexpected",
                                                         "mismatched")), d["at"] or "never")
            for d in drift["vendors"]]
    lines += _section("DRIFT (from `ordersync reconcile`)",
                      ("VENDOR", "MATCHED", "MISSING", "UNEXPECTED", "MISMATCHED", "LAST RUN"),
                      rows, (16, 8, 8, 10, 10), width)
    lines += _section(f"DRIFT ROWS ({len(drift['rows'])})", ("ORDER", "STATUS", "DIFFERENCE"),
                      _rows(drift["rows"], lambda e: (_order(e), e["status"], e["reason"])),
                      (22, 10), width)
    return "\n".join(lines).rstrip() + "\n"


def render_csv(report: dict) -> str:
    """One row per exception (drift included), with a header: :data:`CSV_COLUMNS`."""
    freshness = {v["vendor"]: v["freshness_s"] for v in report["vendors"]}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")   # RFC 4180: a CR in a cell is quoted too
    writer.writerow(CSV_COLUMNS)
    for e in report["exceptions"]:
        row = {**e, "freshness_s": freshness.get(e["vendor"])}
        writer.writerow([_inert(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _inert(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: vendor text starting with ``= + - @``, a tab
    or a CR (a formula to Excel, LibreOffice and Sheets) gets a leading ``'``, as OWASP's
    "CSV Injection" page advises. Numbers stay numbers; None is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def bounded(exceptions: list[dict], more: Callable[[int, str], tuple[str, ...]]
            ) -> list[dict | tuple[str, ...]]:
    """``exceptions`` (in order) with at most :data:`ROWS_PER_KIND` of each kind, the rest
    of a kind replaced by one row ``more(count, kind)`` after the last shown of it."""
    kept: list[dict | tuple[str, ...]] = []
    left = Counter(e["kind"] for e in exceptions)
    shown: Counter[str] = Counter()
    for e in exceptions:
        kind = e["kind"]
        shown[kind] += 1
        if shown[kind] <= ROWS_PER_KIND:
            kept.append(e)
        if shown[kind] == ROWS_PER_KIND and left[kind] > ROWS_PER_KIND:
            kept.append(more(left[kind] - ROWS_PER_KIND, kind))
    return kept


def more_text(count: int, kind: str) -> str:
    return f"… and {count} more {kind} (every row: --format csv or json)"


def _section(title: str, headers: Sequence[str], rows: Sequence[Sequence[str] | str],
             widths: Sequence[int], width: int) -> list[str]:
    """A titled block of columns; every column but the last at most its width, the last
    whatever is left of ``width``. A row that is a string is one indented line."""
    if not rows:
        return [_cut(title, width), "  (none)", ""]
    cells = [row if isinstance(row, str) else [printable(cell) for cell in row]
             for row in [headers, *rows]]
    used = [min(max(_columns(r[i]) for r in cells if not isinstance(r, str)), w)
            for i, w in enumerate(widths)]
    last = max(8, width - sum(used) - 2 * len(used))
    out = [_cut(title, width)]
    for row in cells:
        if isinstance(row, str):
            out.append("  " + _cut(row, width - 2))
            continue
        parts = [_pad(_cut(cell, w), w) for cell, w in zip(row, used, strict=False)]
        out.append("  ".join([*parts, _cut(row[-1], last)]).rstrip())
    return [*out, ""]


def _columns(text: str) -> int:
    """How many terminal columns ``text`` takes: East Asian wide and full-width characters
    two, combining marks and format characters (zero-width space ...) none."""
    return sum(_char_columns(char) for char in text)


def _char_columns(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _rows(exceptions: list[dict], row: Callable[[dict], tuple[str, ...]]
          ) -> list[tuple[str, ...] | str]:
    """A section's rows, :func:`bounded`; a "more" row is one line of text."""
    return [e[0] if isinstance(e, tuple) else row(e)
            for e in bounded(exceptions, lambda n, kind: (more_text(n, kind),))]


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, cut with ``…``."""
    if _columns(text) <= width:
        return text
    kept, used = [], 0
    for char in text:
        used += _char_columns(char)
        if used > width - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _columns(text))


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else duration(seconds)


def _error(error: dict | None) -> str:
    return f"{error['class']}: {error['message']}" if error else ""


def _order(e: dict) -> str:
    return f"{e['vendor']}:{e['order']}" if e["order"] else e["vendor"]
