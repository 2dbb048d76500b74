"""Headless Chromium for the browser tests (tests/web/pages/test_browser.py, test_browser_pages.py and
tests/e2e/test_simnet_vsp.py): the browser fixture, its marks, screenshots and form submission."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)")]


@pytest.fixture
def browser(tmp_path):
    driver = start_browser()
    yield driver
    driver.quit()


def start_browser():
    """Headless Chromium at 1200 x 1400 (the caller quits it); the screenshot folder made."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--window-size=1280,1400", f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    return driver


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def text_of(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, element_id).text


def submit(driver, button_id: str) -> None:
    """Click a form's button and wait until the page it posts to has replaced this one.

    A mark on the old page's window tells the pages apart; errors the driver gives while the
    document is being swapped (a stale element, or chromedriver's "node does not belong to
    the document") mean only "not yet".
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    driver.execute_script("window.vspdOldPage = true;")
    driver.find_element(By.ID, button_id).click()
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(lambda d: d.execute_script(
        "return window.vspdOldPage === undefined && document.readyState === 'complete';"))
