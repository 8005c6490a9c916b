"""The status page in a real headless browser (Debian's chromium), served by a real daemon:
what a person sees, and a ``<script>`` planted in vendor text shown as text, never run."""

from __future__ import annotations

import asyncio

from selenium.webdriver.common.by import By

from tests.browser_support import browser  # noqa: F401
from tests.cli_support import closed_port, fotoware_sim, write_config  # noqa: F401
from tests.test_report_browser import PLANTED
from tests.test_server import V, _is, daemon, server_toml, until


async def test_the_status_page_reads_well_and_never_runs_vendor_text(
        fotoware_sim, write_config, tmp_path, browser):  # noqa: F811
    sim = fotoware_sim
    planted = max(sim.order_ids(), key=lambda o: sim.get_order(o)["created"])  # listed first
    sim.touch(planted, owner={**sim.get_order(planted)["owner"], "email": PLANTED})
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(server_toml(sim, tmp_path, f"[server]\nlisten = '127.0.0.1:{port}'\n"))
    async with daemon(config, tmp_path, url):
        await until(lambda: _is(url + "/readyz", 200), "ready")
        await asyncio.to_thread(browser.get, url + "/")   # the simulator keeps answering

        assert browser.title == "ordersync status"
        headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
        assert headings[:3] == ["Vendors", "Queue", "Exceptions"]
        vendor_row = browser.find_element(By.CSS_SELECTOR, "table tbody tr").text
        assert vendor_row.startswith(V) and vendor_row.endswith("ready")

        # the planted script is text on the page and did nothing
        assert PLANTED in browser.find_element(By.TAG_NAME, "body").text
        assert browser.find_elements(By.ID, "pwned") == []
        assert browser.execute_script("return document.scripts.length") == 0

        # the order's link leads to its page, the script still text
        link = browser.find_element(By.LINK_TEXT, f"{V}:{planted}")
        await asyncio.to_thread(link.click)
        assert browser.title == f"Order {V}:{planted}"
        assert PLANTED in browser.find_element(By.TAG_NAME, "body").text
        assert browser.find_elements(By.ID, "pwned") == []
        assert browser.title != "pwned"
