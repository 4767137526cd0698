"""Debian's headless Chromium driven through its own chromedriver (selenium), never a downloaded browser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver",)
IMPLICIT_WAIT = 15  # seconds the driver waits for an element to appear (a loaded machine is slow)
MISSING = (
    "browser tests skipped: Debian's chromium and chromium-driver are not installed here "
    "(`apt-get install chromium chromium-driver`; .ci/run installs them)"
)


def _first(paths: tuple[str, ...], name: str) -> str | None:
    for path in paths:
        if Path(path).exists():
            return path
    return shutil.which(name)


@contextmanager
def headless_chromium(user_data_dir: Path, width: int = 420, height: int = 900) -> Iterator[object]:
    """A phone-sized headless Chromium; skips the test (saying why) when it is not installed."""
    binary = _first(CHROMIUM_CANDIDATES, "chromium")
    driver_path = _first(DRIVER_CANDIDATES, "chromedriver")
    if not binary or not driver_path:
        pytest.skip(MISSING)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # The closed network refuses Chromium's own background connections: switch them off.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    # An explicit driver path keeps Selenium Manager from trying to download one.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    # Elements of the page a click leads to are waited for (a loaded machine is slow, not wrong).
    driver.implicitly_wait(IMPLICIT_WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def wait_ready(browser: object, timeout: float = 60) -> None:
    """Until the current document has loaded (a page mid-navigation answers with stale nodes)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script("return document.readyState") == "complete")


def click_and_wait(browser: object, target: object, timeout: float = 60) -> None:
    """Click ``target`` (a CSS selector, or an element) and wait until the page it leads to has loaded.

    Reading the next page before the old document is gone (or before the new one has loaded)
    raises stale-element and "node does not belong to the document" errors on a loaded machine."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait_ready(browser, timeout)
    old = WebDriverWait(browser, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.find_element(By.TAG_NAME, "html"))
    element = browser.find_element(By.CSS_SELECTOR, target) if isinstance(target, str) else target  # type: ignore[attr-defined]
    element.click()

    def gone(_: object) -> bool:
        # Chromedriver reports a node of a replaced document either as stale or as "does not belong
        # to the document": both mean the old page is gone.
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    WebDriverWait(browser, timeout).until(gone)
    wait_ready(browser, timeout)


def found_now(browser: object, by: str, selector: str) -> list[object]:
    """The elements on the loaded page matching ``selector``, without the implicit wait.

    The driver waits up to IMPLICIT_WAIT s for an element to appear (headless_chromium): right for one a click
    leads to, but an absence check then always costs all of it. The member and dashboard pages
    are rendered by the server and run no script, so once loaded what is absent stays absent."""
    browser.implicitly_wait(0)  # type: ignore[attr-defined]
    try:
        return list(browser.find_elements(by, selector))  # type: ignore[attr-defined]
    finally:
        browser.implicitly_wait(IMPLICIT_WAIT)  # type: ignore[attr-defined]
