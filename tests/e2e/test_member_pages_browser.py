"""A member clicks through join → Connect Discord → pay → success → manage in a real headless browser.

Debian's Chromium against the local stack, in English and in French (the community's locale), with a
screenshot of each step saved under .local-stack/screenshots/ for a person to look at.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.browser import click_and_wait, headless_chromium

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".local-stack" / "screenshots"


def _setup_plan(stack, locale: str, guild: str, role: str, price: str) -> str:
    # A monthly and an annual price: the member chooses on the join page.
    for price_id, amount, interval in ((price, 900, "month"), (f"{price}_year", 9000, "year")):
        stack.post("/_local/stripe/_control/prices", json_body={
            "price_id": price_id, "unit_amount": amount, "currency": "eur", "interval": interval,
            "product_name": f"Club {locale}"})
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": f"Club {locale}", "guild_id": guild, "role_id": role, "locale": locale}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": f"Club {locale} monthly", "stripe_price_ids": [price, f"{price}_year"],
        "description": "Weekly lives, the replay archive and the members' channels.",
        "grants": [{"community_id": community["id"]}]}).json()
    # A second tier of the same community: the manage page offers to switch to it.
    stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": f"{price}_vip", "unit_amount": 2500, "currency": "eur", "interval": "month",
        "product_name": f"Club {locale} VIP"})
    stack.post("/admin/plans", admin=True, json_body={
        "name": "VIP", "stripe_price_ids": [f"{price}_vip"], "grants": [{"community_id": community["id"]}]})
    return plan["id"]


def _members_with(stack, guild: str, role: str) -> list[str]:
    """The guild's members holding the role (the page never shows the member's raw id)."""
    members = stack.get(f"/_local/discord/guilds/{guild}").json()["members"]
    return [user for user, roles in members.items() if role in (roles or [])]


WORDS = {
    "en": {"paid": "Payment received", "monthly": "€9.00 / month", "annual": "€90.00 / year",
           "next": "What happens next", "active": "Your access to Club en: active",
           "vip": "VIP: €25.00 / month", "tier_switched": "Your plan is changing to VIP"},
    "fr": {"paid": "Paiement reçu", "monthly": "9,00 € / mois", "annual": "90,00 € / an",
           "next": "Et maintenant ?", "active": "Ton accès à Club fr : actif",
           "vip": "VIP : 25,00 € / mois", "tier_switched": "Ta formule passe à VIP"},
}


@pytest.mark.parametrize(
    ("locale", "guild", "role"),
    [("en", "720000000000000001", "720000000000000002"),
     ("fr", "720000000000000011", "720000000000000012")],
)
def test_member_joins_pays_and_gets_the_role_in_a_browser(stack, tmp_path, locale, guild, role):
    from selenium.webdriver.common.by import By

    SHOTS.mkdir(parents=True, exist_ok=True)
    plan_id = _setup_plan(stack, locale, guild, role, f"price_browser_{locale}")
    with headless_chromium(tmp_path / "profile") as browser:
        def shot(step: str) -> None:
            browser.save_screenshot(str(SHOTS / f"join-{locale}-{step}.png"))

        words = WORDS[locale]

        def follow(click: str) -> None:
            # A click that navigates: wait for the old page to go and the new one to load.
            click_and_wait(browser, click)

        def body() -> str:
            # Narrow no-break spaces (French amounts) read as plain spaces
            return browser.find_element(By.TAG_NAME, "body").text.replace("\u202f", " ").replace("\xa0", " ")

        # Given the join page, in the community's language, with every price and what is included
        browser.get(f"{stack.base_url}/join/{plan_id}")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == locale
        assert words["monthly"] in body() and words["annual"] in body() and "replay archive" in body()
        shot("1-join")
        # When the member connects Discord on the authorize page
        follow("a.button[href^='/auth/discord/start']")
        browser.find_element(By.NAME, "username").clear()
        browser.find_element(By.NAME, "username").send_keys(f"alice-{locale}")
        shot("2-authorize")
        follow("button[value=allow]")
        browser.find_element(By.CSS_SELECTOR, "[data-discord-user]")
        shot("3-connected")
        # And pays by card in Checkout
        # (the waiver box: no TermsUrl on the local stack, so the page asks for the express consent)
        browser.find_element(By.NAME, "waiver").click()
        follow("form[action='/checkout'] button")
        shot("4-checkout")
        follow("button[value=card]")
        # Then the success page says the access is on its way and what happens next, in their language
        assert words["paid"] in body() and words["next"] in body()
        shot("5-paid")
        # And the Discord account they connected gets the role within seconds
        deadline = time.monotonic() + 45
        while not _members_with(stack, guild, role) and time.monotonic() < deadline:
            stack.post("/_local/drain")
            time.sleep(0.2)
        assert len(_members_with(stack, guild, role)) == 1
        # And the manage page says the access in words, with the portal and relink
        browser.get(f"{stack.base_url}/join/{plan_id}?manage=1")
        assert words["active"] in body()
        assert browser.find_elements(By.CSS_SELECTOR, "form[action='/billing/portal'] button")
        shot("6-manage")
        # And the language switch shows the same page in the other language
        follow("p.lang a")
        other = "fr" if locale == "en" else "en"
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == other
        assert WORDS[other]["active"].split(":")[-1].strip() in body()
        shot("7-switched")
        # And its other tier, pressed, switches the subscription (same one, prorated) and says so (the
        # page it lands on speaks the community's language again: the switch is not carried over)
        assert WORDS[other]["vip"] in body()
        follow("form.switch button")
        assert words["tier_switched"] in body()
        shot("8-tier-switched")
