"""The creator logs in to the dashboard in a real headless browser and sees the API's numbers.

Debian's Chromium against a local stack of its own (the seed moves the business clock by weeks,
which the shared stack's tests must not see), seeded with demo history through the real routes;
screenshots of the phone and desktop layouts are saved under .local-stack/screenshots/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.client import Client
from infra.local.demo import free_port
from infra.local.seed import seed
from tests.support.browser import click_and_wait, headless_chromium

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".local-stack" / "screenshots"
TOKEN = "dashboard-e2e-token"
PHONE_WIDTH = 390  # an iPhone 12-15's CSS width


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("dashboard-stack") / "stack.log"
    env = {**os.environ, "PORT": str(port), "ADMIN_TOKEN": TOKEN, "MEMBERGATE_QUIET": "1"}
    for leaked in ("AWS_ENDPOINT_URL", "STRIPE_API_KEY", "DISCORD_BOT_TOKEN", "STRIPE_API_BASE", "DISCORD_API_BASE", "SEED"):
        env.pop(leaked, None)
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "infra.local.stack"], cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    client = Client(f"http://127.0.0.1:{port}", TOKEN)
    try:
        client.wait_healthy(timeout=120)
        # Six weeks of members: two calendar months at least, with a cancellation.
        seed(client.base_url, TOKEN, out=lambda _: None, weeks=6)
        yield client
    except TimeoutError:
        pytest.fail(f"the local stack did not start; its log:\n{log_path.read_text()[-3000:]}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _log_in(browser, base_url: str, lang: str = "en") -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{base_url}/admin/dashboard?lang={lang}")
    browser.find_element(By.NAME, "token").send_keys(TOKEN)
    click_and_wait(browser, "form[action='/admin/dashboard/login'] button")


def _phone(browser, height: int = 844) -> None:
    # A dashboard page reads six months of KPIs and a page of members: on a loaded CI machine it can
    # take longer than the shared 30 s page-load timeout.
    browser.set_page_load_timeout(120)
    # Headless Chromium keeps windows at least 500 px wide: a phone's viewport is emulated instead.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": PHONE_WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": True})


def _full_page(browser, path: Path, width: int) -> None:
    height = min(int(browser.execute_script("return document.documentElement.scrollHeight")) + 40, 8000)
    if width == PHONE_WIDTH:
        _phone(browser, height)
    else:
        browser.set_window_size(width, height + 120)
    browser.save_screenshot(str(path))


def test_dashboard_shows_the_apis_numbers_and_resyncs_a_member_in_a_browser(seeded, tmp_path):
    from selenium.webdriver.common.by import By

    SHOTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium(tmp_path / "phone", width=PHONE_WIDTH) as browser:
        # Given the login form on a phone-sized screen
        _phone(browser)
        browser.get(f"{seeded.base_url}/admin/dashboard")
        browser.save_screenshot(str(SHOTS / "dashboard-1-login.png"))
        # When the creator logs in with the admin token
        _log_in(browser, seeded.base_url)
        # Then the numbers shown are the API's, and the page says the data is demo data
        api = seeded.get("/admin/kpis", admin=True).json()
        shown = {e.get_attribute("data-kpi"): e for e in browser.find_elements(By.CSS_SELECTOR, "[data-kpi]")}
        assert api["mrr"], "the seed should give the demo community some MRR"
        for currency, amount in api["mrr"].items():
            element = shown[f"mrr-{currency}"]
            assert int(element.get_attribute("data-value")) == amount
            assert element.text.split()[0].replace(",", "") == f"{amount / 100:.2f}"
        for key in ("paying_members", "trialing_members", "grace_members"):
            assert int(shown[key].get_attribute("data-value")) == api[key] and shown[key].text == str(api[key])
        states = {e.get_attribute("data-state"): int(e.text) for e in browser.find_elements(By.CSS_SELECTOR, "[data-state]")}
        assert states == {"paying_ok": api["paying_members"] - api["grace_members"], "grace": api["grace_members"],
                          "trialing": api["trialing_members"]}
        # And the page fits a phone: nothing wider than the screen but the tables' own scroll boxes
        assert browser.execute_script("return window.innerWidth") == PHONE_WIDTH
        assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE_WIDTH
        assert browser.find_element(By.CSS_SELECTOR, "[data-demo]").is_displayed()
        assert len(browser.find_elements(By.CSS_SELECTOR, "tr[data-member]")) >= 5
        _full_page(browser, SHOTS / "dashboard-2-phone.png", PHONE_WIDTH)
        # And when they open a member's timeline and resync their access
        _phone(browser)
        click_and_wait(browser, "tr[data-member] a")
        click_and_wait(browser, "button[data-action=resync]")
        notice = browser.find_element(By.CSS_SELECTOR, "[data-notice=resynced]")
        # Then the dashboard confirms the work was queued for the member's community
        assert notice.text.endswith("communities to check: 1.")
        browser.save_screenshot(str(SHOTS / "dashboard-3-resynced.png"))
    with headless_chromium(tmp_path / "desktop", width=1280, height=900) as browser:
        # And in French on a desktop screen the same page speaks French
        _log_in(browser, seeded.base_url, "fr")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
        assert "Membres payants" in browser.find_element(By.TAG_NAME, "body").text
        _full_page(browser, SHOTS / "dashboard-4-desktop-fr.png", 1280)
        # And when the creator archives the annual plan from its row (confirming in the expanded details)
        browser.set_window_size(1280, 900)
        annual = next(p for p in seeded.get("/admin/plans", admin=True).json()["plans"] if "annuel" in p["name"])
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-plan='{annual['id']}']")
        row.find_element(By.TAG_NAME, "summary").click()
        click_and_wait(browser, row.find_element(By.CSS_SELECTOR, "button[data-action=archive]"))
        # Then the dashboard says so, the API shows it archived and its join link answers 410
        assert browser.find_element(By.CSS_SELECTOR, "[data-notice=archived]").is_displayed()
        assert seeded.get(f"/admin/plans/{annual['id']}", admin=True).json()["archived_at"] is not None
        assert seeded.get(f"/join/{annual['id']}").status == 410
        browser.save_screenshot(str(SHOTS / "dashboard-5-archived-fr.png"))
