"""A member clicks through join → Connect Discord → pay → success in a real headless browser.

Debian's Chromium against the local stack, in English and in French (the community's locale), with a
screenshot of each step saved under .local-stack/screenshots/ for a person to look at.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.browser import headless_chromium

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".local-stack" / "screenshots"


def _setup_plan(stack, locale: str, guild: str, role: str, price: str) -> str:
    stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": price, "unit_amount": 900, "currency": "eur", "interval": "month", "product_name": f"Club {locale}"})
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": f"Club {locale}", "guild_id": guild, "role_id": role, "locale": locale}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": f"Club {locale} monthly", "stripe_price_ids": [price],
        "grants": [{"community_id": community["id"]}]}).json()
    return plan["id"]


def _roles(stack, guild: str, user_id: str) -> list[str]:
    return stack.get(f"/_local/discord/guilds/{guild}").json()["members"].get(user_id) or []


@pytest.mark.parametrize(
    ("locale", "guild", "role", "paid_text"),
    [("en", "720000000000000001", "720000000000000002", "Payment received"),
     ("fr", "720000000000000011", "720000000000000012", "Paiement reçu")],
)
def test_member_joins_pays_and_gets_the_role_in_a_browser(stack, tmp_path, locale, guild, role, paid_text):
    from selenium.webdriver.common.by import By

    SHOTS.mkdir(parents=True, exist_ok=True)
    plan_id = _setup_plan(stack, locale, guild, role, f"price_browser_{locale}")
    with headless_chromium(tmp_path / "profile") as browser:
        def shot(step: str) -> None:
            browser.save_screenshot(str(SHOTS / f"join-{locale}-{step}.png"))

        # Given the join page, in the community's language
        browser.get(f"{stack.base_url}/join/{plan_id}")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == locale
        shot("1-join")
        # When the member connects Discord on the authorize page
        browser.find_element(By.CSS_SELECTOR, "a.button[href^='/auth/discord/start']").click()
        browser.find_element(By.NAME, "username").clear()
        browser.find_element(By.NAME, "username").send_keys(f"alice-{locale}")
        shot("2-authorize")
        browser.find_element(By.CSS_SELECTOR, "button[value=allow]").click()
        connected = browser.find_element(By.CSS_SELECTOR, "[data-discord-user]")
        user_id = connected.get_attribute("data-discord-user")
        shot("3-connected")
        # And pays by card in Checkout
        browser.find_element(By.CSS_SELECTOR, "form[action='/checkout'] button").click()
        shot("4-checkout")
        browser.find_element(By.CSS_SELECTOR, "button[value=card]").click()
        # Then the success page says the access is on its way, in the member's language
        assert paid_text in browser.find_element(By.TAG_NAME, "body").text
        shot("5-paid")
    # And the Discord account they connected has the role within seconds
    deadline = time.monotonic() + 15
    while role not in _roles(stack, guild, user_id) and time.monotonic() < deadline:
        stack.post("/_local/drain")
        time.sleep(0.2)
    assert role in _roles(stack, guild, user_id)
