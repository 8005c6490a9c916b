"""The daemon refreshes the report's exceptions by itself (``report.refresh_interval_s``):
an exception is first seen, and resolved, within an interval of its cause, whether or not
anyone runs ``ordersync report`` meanwhile."""

from __future__ import annotations

from ordersync.ledger import Ledger
from tests.test_backup import until
from tests.test_cli import stop_daemon
from tests.test_vendors import ENV, B, cli, start_cli, two_sites, wait_for_log_event  # noqa: F401


def open_exceptions(ledger_path) -> dict[str, str | None]:
    """{key: resolved_at} of every exception the ledger holds (open or resolved)."""
    ledger = Ledger(ledger_path)
    try:
        return {e.key: e.resolved_at for e in ledger.exceptions(resolved_since="1970")}
    finally:
        ledger.close()


async def test_the_daemon_records_and_resolves_exceptions_without_a_report(two_sites, tmp_path):  # noqa: F811
    config, _sims = two_sites
    with open(config, "a", encoding="utf-8") as f:
        f.write("\n[report]\nrefresh_interval_s = 0.2\n")
    ledger_path = tmp_path / "ledger.db"
    daemon = await start_cli("--config", config, "run", env=ENV, cwd=tmp_path)
    seen: list[str] = []
    try:
        await wait_for_log_event(daemon, "started", seen)
        assert (await cli(config, "vendors", "pause", B, cwd=tmp_path)).returncode == 0
        key = f"vendor_paused:{B}"

        def paused_exception():
            return open_exceptions(ledger_path).get(key, "absent")

        await until(lambda: paused_exception() is None, "the pause recorded as open")
        assert (await cli(config, "vendors", "resume", B, cwd=tmp_path)).returncode == 0
        await until(lambda: paused_exception() not in (None, "absent"),
                    "the pause resolved after the resume")
    finally:
        code, err = await stop_daemon(daemon)
    assert code == 0, err
    assert "exceptions_refresh_failed" not in err
