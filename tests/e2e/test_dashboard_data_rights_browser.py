"""A member's data rights from the dashboard in Debian's headless Chromium: export (a download), then erase."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_TOKEN
from tests.e2e.test_local_stack import buy_through_the_stack
from tests.support.browser import click_and_wait, found_now, headless_chromium

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / ".local-stack" / "screenshots"
GUILD, ROLE = "730000000000000091", "730000000000000092"


def _downloaded(folder: Path, name: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        target = folder / name
        if target.exists() and not list(folder.glob("*.crdownload")):
            return json.loads(target.read_text(encoding="utf-8"))
        time.sleep(0.2)
    raise AssertionError(f"no {name} downloaded; the folder holds {[p.name for p in folder.iterdir()]}")


def test_dashboard_exports_then_erases_a_member_in_a_browser(stack, tmp_path):
    from selenium.webdriver.common.by import By

    # Given a member who bought, then cancelled (Stripe cancels at once; Membergate removes their role)
    user, customer = buy_through_the_stack(stack, guild=GUILD, role=ROLE, kind="subscription", username="gdpr-member",
                                           price={"price_id": "price_gdpr_browser", "unit_amount": 500,
                                                  "currency": "eur", "interval": "month", "product_name": "GDPR"})
    found = stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"][0]
    member_id, sub_id = found["id"], stack.get(f"/admin/members/{found['id']}/export", admin=True).json()[
        "subscriptions"][0]["subscription_id"]
    assert stack.post(f"/_local/stripe/_control/subscriptions/{sub_id}/cancel", json_body={}).status == 200
    stack.post("/_local/drain")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium(tmp_path / "profile", width=1280, height=900) as browser:
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        browser.set_page_load_timeout(120)
        browser.get(f"{stack.base_url}/admin/dashboard?lang=en")
        browser.find_element(By.NAME, "token").send_keys(ADMIN_TOKEN)
        click_and_wait(browser, "form[action='/admin/dashboard/login'] button")
        # When the creator opens the member's page and clicks "Export data"
        browser.get(f"{stack.base_url}/admin/dashboard?lang=en&member={member_id}#timeline")
        browser.find_element(By.CSS_SELECTOR, "[data-action=export-member]").click()
        # Then the browser saved the API's JSON of that member
        exported = _downloaded(downloads, f"membergate-{member_id}.json")
        assert exported["member"]["id"] == member_id and exported["member"]["identities"]
        # When they open "Erase member", type the id and a reason, and submit
        browser.find_element(By.CSS_SELECTOR, "details[data-erase] summary").click()
        browser.find_element(By.NAME, "confirm").send_keys(member_id)
        browser.find_element(By.NAME, "reason").send_keys("request by email")
        browser.save_screenshot(str(SHOTS / "dashboard-6-erase-form.png"))
        click_and_wait(browser, "button[data-action=erase]")
        deadline = time.monotonic() + 60
        while not browser.find_elements(By.CSS_SELECTOR, "[data-notice=erased]") and time.monotonic() < deadline:
            # The member's access is still being removed: the page says so; erase again once it is
            assert browser.find_elements(By.CSS_SELECTOR, "[data-notice=erasing]")
            stack.post("/_local/drain")
            time.sleep(0.5)
            browser.find_element(By.CSS_SELECTOR, "details[data-erase] summary").click()
            browser.find_element(By.NAME, "confirm").send_keys(member_id)
            browser.find_element(By.NAME, "reason").send_keys("request by email")
            click_and_wait(browser, "button[data-action=erase]")
        # Then the page shows the pseudonymised member: erased, no Discord account, no erase form left
        assert browser.find_element(By.CSS_SELECTOR, "[data-notice=erased]").is_displayed()
        body = browser.find_element(By.TAG_NAME, "body").text
        assert user not in body and not found_now(browser, By.CSS_SELECTOR, "details[data-erase]")
        browser.save_screenshot(str(SHOTS / "dashboard-7-erased.png"))
    # And the API agrees, and the audit log has the export and the erasure
    after = stack.get(f"/admin/members/{member_id}/export", admin=True).json()
    assert after["erasure"]["erased_at"] is not None and after["member"]["identities"] == []
    since = stack.get("/_local/clock").json()["epoch"] - 86_400
    audit = stack.get(f"/admin/audit?since={since}&limit=200", admin=True).json()["entries"]
    assert [e["action"] for e in audit if e["target"] == member_id] == ["member.export", "member.erase"]
