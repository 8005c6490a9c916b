"""The HTML report in a real headless browser (Debian's chromium): what a person sees, and
a ``<script>`` planted in vendor text shown as text, never run."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from ordersync.report import render_html
from tests.browser_support import browser  # noqa: F401
from tests.report_support import DAY, plant_everything, report_site

PLANTED = ("<script>document.title='pwned';document.body.insertAdjacentHTML('beforeend',"
           "'<p id=\"pwned\">ran</p>')</script>")


async def test_the_html_report_reads_well_and_never_runs_vendor_text(
        tmp_path, clock, browser):  # noqa: F811
    async with report_site(tmp_path, clock) as site:
        keys = await plant_everything(site)
        order = site.planted["stuck_order"]
        owner = site.fw.get_order(order)["owner"]
        site.fw.touch(order, owner={**owner, "email": PLANTED})   # a customer's "name"
        clock.advance(2 * DAY)                                    # (and a full scan reads it)
        await site.sync()
        report = site.report()
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    browser.get(page.as_uri())

    assert browser.title == f"ordersync report {report['generated_at']}"
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    counts = report["counts"]
    shown = [e for e in report["exceptions"] if e["kind"] != "drift"]
    assert headings[:3] == [
        "Vendors (4)", "Needs a person (1)",
        f"Exceptions ({len(shown)}: {counts['new']} new, {counts['persisting']} persisting,"
        f" {counts['resolved']} resolved)"]
    assert f"Orders ({sum(report['summary']['total_orders'].values())})" in headings
    assert any(h.startswith("Drift") for h in headings)

    # vendor health first, freshness its first column; the vendor that is down says so
    first_row = browser.find_element(By.CSS_SELECTOR, "#vendors tbody tr")
    assert browser.find_element(By.CSS_SELECTOR, "#vendors th").text == "Freshness"
    assert first_row.find_elements(By.TAG_NAME, "td")[1].text == "fw"
    vendors = browser.find_element(By.ID, "vendors").text
    assert "gone down" in vendors and "CannotConnect" in vendors

    # an exception row as a person reads it
    person = browser.find_element(By.CSS_SELECTOR, "#people tbody tr").text
    assert f"#{keys['uncertain'].split(':')[1]}" in person and "HTTP 503" in person
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#exceptions tbody tr")]
    stuck = [r for r in rows if f"fw:{order}" in r and r.startswith("stuck")]
    assert len(stuck) == 1 and "pending (waits for approval)" in stuck[0]
    assert stuck[0].split()[3:5] == ["2d", "0h"]          # its age: how long it has waited

    # the planted script is text on the page and did nothing
    assert PLANTED in stuck[0]
    assert browser.find_elements(By.ID, "pwned") == []
    assert browser.title != "pwned"
    assert browser.execute_script("return document.scripts.length") == 0

    # the chart: a bar per vendor, each state a coloured part with its count
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart svg rect title")
    assert bars and any("fw: approved" in b.get_attribute("textContent") for b in bars)
