"""A real headless browser for tests: Debian's chromium driven through its chromedriver.

Import the fixture into a test module (``from tests.browser_support import browser``) and
open pages with ``browser.get(url)``. Nothing is downloaded: the browser and driver are the
system's (/usr/bin/chromium, /usr/bin/chromedriver; .ci/run installs them with apt). Without
them the tests are skipped with the reason, unless ORDERSYNC_REQUIRE_BROWSER is set (CI sets
it), when they fail instead: CI never skips them silently.

The flags keep chromium from reaching for the network (this machine has none; without them
it hangs on lookups) and from touching the user's profile (a fresh --user-data-dir each).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REQUIRE_ENV = "ORDERSYNC_REQUIRE_BROWSER"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def missing() -> str | None:
    """Why no browser can be started here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(Path(path).name)):
            return (f"{path} is not installed (apt-get install chromium chromium-driver); set"
                    f" {REQUIRE_ENV}=1 to fail instead of skipping")
    return None


@pytest.fixture
def browser(tmp_path_factory) -> Iterator:
    """A headless chromium (a selenium WebDriver), quit when the test ends."""
    reason = missing()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"a browser is required ({REQUIRE_ENV} is set): {reason}")
        pytest.skip(reason)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
