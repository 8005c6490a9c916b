"""The morning report: vendor health, exceptions (as state), summary and drift.

    report/
    ├── settings.py    ReportSettings ([report] thresholds), --since WHEN
    ├── detect.py      pure detection: what is wrong now (Findings), every kind
    ├── build.py       refresh (detect + record) and build_report: the JSON-shaped dict
    ├── text.py        the table (80 columns) and CSV renderings
    ├── html.py        the HTML rendering: one self-contained file
    └── reconcile.py   re-read a vendor in full and record each difference as drift

Nothing here knows a vendor: adapters declare what waits, what blocks and where prices are
(``AdapterSpec.waiting_states``, ``problems``, ``prices``); expiry is the common ``expires``.
"""

from __future__ import annotations

from .build import build_report, refresh
from .html import render_html
from .settings import ReportSettings, parse_report_settings, parse_since

__all__ = ["ReportSettings", "build_report", "parse_report_settings", "parse_since", "refresh",
           "render_html"]
