"""A paying member moves their membership to another Discord account from their manage page, in a real browser.

Debian's Chromium against the local stack, in English and in French, no JavaScript involved (form posts
and redirects); a screenshot of each step is saved under .local-stack/screenshots/ for a person to look at.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.browser import click_and_wait, found_now, headless_chromium

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".local-stack" / "screenshots"

WORDS = {
    "en": {"connected": "Connected Discord account: @alice-en", "relink": "Use another Discord account",
           "moved": "Done: your membership now uses @bob-en", "active": "Your access to Relink en: active"},
    "fr": {"connected": "Compte Discord connecté : @alice-fr", "relink": "Utiliser un autre compte Discord",
           "moved": "C'est fait : ton abonnement utilise maintenant @bob-fr", "active": "Ton accès à Relink fr : actif"},
}


def _setup_plan(stack, locale: str, guild: str, role: str) -> str:
    price = f"price_relink_{locale}"
    stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": price, "unit_amount": 900, "currency": "eur", "interval": "month", "product_name": f"Relink {locale}"})
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": f"Relink {locale}", "guild_id": guild, "role_id": role, "locale": locale}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": f"Relink {locale} monthly", "stripe_price_ids": [price], "grants": [{"community_id": community["id"]}]}).json()
    return plan["id"]


def _holders(stack, guild: str, role: str) -> dict[str, bool]:
    """Guild member id -> whether they hold the role."""
    members = stack.get(f"/_local/discord/guilds/{guild}").json()["members"]
    return {user: role in (roles or []) for user, roles in members.items()}


def _wait_for(stack, check, seconds: float = 45) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        stack.post("/_local/drain")
        time.sleep(0.2)
    return check()


@pytest.mark.parametrize(
    ("locale", "guild", "role"),
    [("en", "730000000000000001", "730000000000000002"),
     ("fr", "730000000000000011", "730000000000000012")],
)
def test_member_relinks_discord_from_the_manage_page_in_a_browser(stack, tmp_path, locale, guild, role):
    from selenium.webdriver.common.by import By

    SHOTS.mkdir(parents=True, exist_ok=True)
    plan_id = _setup_plan(stack, locale, guild, role)
    words = WORDS[locale]
    with headless_chromium(tmp_path / "profile") as browser:
        def shot(step: str) -> None:
            browser.save_screenshot(str(SHOTS / f"relink-{locale}-{step}.png"))

        def follow(click: str) -> None:
            click_and_wait(browser, click)

        def authorize(username: str) -> None:
            browser.find_element(By.NAME, "username").clear()
            browser.find_element(By.NAME, "username").send_keys(username)
            follow("button[value=allow]")

        def body() -> str:
            return browser.find_element(By.TAG_NAME, "body").text.replace("\u202f", " ").replace("\xa0", " ")

        # Given a member who connected Discord as alice and paid, with the role
        browser.get(f"{stack.base_url}/join/{plan_id}")
        follow("a.button[href^='/auth/discord/start']")
        authorize(f"alice-{locale}")
        # (the waiver box: no TermsUrl on the local stack, so the page asks for the express consent)
        browser.find_element(By.NAME, "waiver").click()
        follow("form[action='/checkout'] button")
        follow("button[value=card]")
        assert _wait_for(stack, lambda: list(_holders(stack, guild, role).values()) == [True])
        (alice,) = _holders(stack, guild, role)
        # When they open their manage page: the account is named by its handle, with a relink button
        browser.get(f"{stack.base_url}/join/{plan_id}?manage=1")
        assert words["connected"] in body() and words["active"] in body()
        assert alice not in body()  # never the raw id
        assert not found_now(browser, By.TAG_NAME, "script")
        shot("1-manage")
        # And use another Discord account: the consent screen again, where they pick bob
        follow("form.relink[data-platform=discord] button")
        shot("2-authorize")
        authorize(f"bob-{locale}")
        # Then the manage page says the membership moved to bob, in their language
        assert words["moved"] in body(), body()
        assert "relinked=1" in browser.current_url and "manage=1" in browser.current_url
        shot("3-moved")
        # And bob gets the role while alice loses it
        assert _wait_for(stack, lambda: sum(_holders(stack, guild, role).values()) == 1
                         and _holders(stack, guild, role).get(alice) is False)
        holders = _holders(stack, guild, role)
        assert holders[alice] is False and [u for u, has in holders.items() if has] != [alice]
        browser.get(f"{stack.base_url}/join/{plan_id}?manage=1")
        assert words["active"] in body() and f"@bob-{locale}" in body()
        shot("4-after")
