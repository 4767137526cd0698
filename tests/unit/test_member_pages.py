"""The member pages' view model and rendering: prices, states in words, languages, one catalogue."""

from __future__ import annotations

import re

import pytest

from membergate.adapters.stripe_billing import price_info
from membergate.domain.billing import PriceInfo
from membergate.domain.errors import RetryableError
from membergate.domain.i18n import CATALOGUES, check_catalogues, choose_locale
from membergate.domain.messages import render
from membergate.domain.model import (
    AccessRecord,
    AccessState,
    Community,
    Identity,
    Member,
    OnGraceEnd,
    OnRevoke,
    Plan,
    PlanGrant,
    Platform,
)
from membergate.http.pages import join_page, price_label
from membergate.services.member_pages import join_page_view
from tests.support.fakes import FakeBilling, fake_stores

pytestmark = pytest.mark.unit

T0 = 1_800_000_000
MONTHLY = PriceInfo("price_m", 900, "eur", "recurring", "month", 1, trial_days=7)
ANNUAL = PriceInfo("price_y", 9000, "eur", "recurring", "year", 1, nickname="Founder price")
USD = PriceInfo("price_usd", 1000, "usd", "recurring", "month", 3)


def setup(locale: str = "en", platform: Platform = Platform.DISCORD, description: str = "Weekly lives & the archive"):
    stores, billing = fake_stores(), FakeBilling()
    stores.catalog.add_community(Community("com_1", platform, "Le Club", "720000000000000001", None,
                                           OnRevoke.KICK, locale, T0))
    stores.catalog.add_plan(Plan("pln_1", "Club", ("price_m", "price_y", "price_usd"), (PlanGrant("com_1"),), 3,
                                 OnGraceEnd.CANCEL, T0, description=description))
    billing.prices = {p.id: p for p in (MONTHLY, ANNUAL, USD)}
    return stores, billing


def bound_member(stores, state: AccessState | None = None) -> str:
    stores.members.create(Member("mbr_1", T0))
    stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, "123456789012345678"))
    if state:
        stores.access.save(AccessRecord("mbr_1", "com_1", state))
    return "mbr_1"


def test_join_page_view_every_price_is_offered_with_trial_and_founder_label():
    # Given a plan selling a monthly, an annual (founder) and a quarterly USD price
    stores, billing = setup()
    # When a visitor opens the join page
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=None))
    # Then each price is shown in words, the first chosen, with its trial and label
    assert "€9.00 / month" in page and "€90.00 / year" in page and "$10.00 every 3 months" in page
    assert "7-day free trial" in page and "Founder price" in page
    assert "Weekly lives &amp; the archive" in page and "Le Club" in page
    assert billing.price_lookups == [["price_m", "price_y", "price_usd"]]


def test_join_page_bound_member_chooses_a_price_in_the_checkout_form():
    stores, billing = setup()
    member = bound_member(stores)
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member))
    assert "<input type=radio name=price_id value='price_m' checked>" in page
    assert "<input type=radio name=price_id value='price_y'>" in page
    # The bound account is never shown by its raw id (only a data attribute carries it)
    assert "123456789012345678" not in re.sub(r"<[^>]+>", "", page)


def test_join_page_french_prices_and_states_in_words_never_machine_words():
    # Given a French community where the member's access is granted
    stores, billing = setup("fr")
    member = bound_member(stores, AccessState.GRANTED)
    # When the member opens the manage page
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member, manage=True))
    # Then the page speaks French, with French amounts and the state in words
    assert "<html lang=fr>" in page
    visible = re.sub(r"<[^>]+>", "", page)
    assert "Ton accès à Le Club : actif" in visible and "granted" not in visible
    assert "9,00 € / mois" in page and "Connecter un autre compte Discord" in page


def test_join_page_stripe_outage_still_offers_payment_and_says_why():
    # Given Stripe failing when prices are read
    stores, billing = setup()
    member = bound_member(stores)
    billing.fail_with = RetryableError("stripe 503")
    # When the page is built
    view = join_page_view("pln_1", stores=stores, billing=billing, member_id=member)
    page = join_page(view)
    # Then the member can still pay (Checkout shows the price) and is told so
    assert view.prices_unavailable
    assert "action='/checkout'" in page and "you will see the price on the payment page" in page


def test_join_page_view_unknown_plan_is_none():
    stores, billing = setup()
    assert join_page_view("pln_nope", stores=stores, billing=billing, member_id=None) is None


def test_join_page_view_invite_platform_gets_an_identity_step_hook_not_a_discord_button():
    # Given a WhatsApp community (no web step: the invite comes after payment)
    stores, billing = setup(platform=Platform.WHATSAPP)
    # When the view is built
    view = join_page_view("pln_1", stores=stores, billing=billing, member_id=None)
    # Then the step says the invite comes after payment; no Discord connect is asked
    assert [(s.platform, s.kind) for s in view.identity_steps] == [("whatsapp", "invite")]
    page = join_page(view)
    assert "/auth/discord/start" not in page and "personal invite link" in page
    assert "action='/checkout'" in page


def test_join_page_view_telegram_step_is_the_bot_before_the_pay_button():
    # Given a Telegram community and a visitor the bot has not linked yet
    stores, billing = setup("fr", platform=Platform.TELEGRAM)
    # When the view is built and rendered
    view = join_page_view("pln_1", stores=stores, billing=billing, member_id=None)
    page = join_page(view)
    # Then the step is the bot's deep link, in the community's language, with the prices but no pay button
    assert [(s.platform, s.kind, s.bound) for s in view.identity_steps] == [("telegram", "bot", False)]
    assert "href='/telegram/start/pln_1'" in page and "Continuer avec Telegram" in page
    assert "/auth/discord/start" not in page and "action='/checkout'" not in page
    assert "class=prices" in page


def test_join_page_view_telegram_linked_member_sees_the_note_and_the_pay_button():
    # Given a member whose Telegram account the bot linked
    stores, billing = setup(platform=Platform.TELEGRAM)
    stores.members.create(Member("mbr_1", T0))
    stores.members.bind_identity("mbr_1", Identity(Platform.TELEGRAM, "777000111"))
    # When the page is rendered for them
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id="mbr_1"))
    # Then it names the linked account for machines and offers to pay
    assert "data-telegram-user='777000111'" in page and "Your Telegram account is linked" in page
    assert "action='/checkout'" in page and "Continue with Telegram" not in page


def test_success_page_lists_the_next_step_for_each_place_and_a_fallback():
    stores, billing = setup("fr")
    member = bound_member(stores, AccessState.PENDING)
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member, paid=True))
    assert "Paiement reçu" in page and "Et maintenant ?" in page
    assert "ton compte Discord" in page and "?manage=1" in page


def test_choose_locale_switch_then_community_then_browser():
    assert choose_locale("fr", "en", "en-US") == "fr"
    assert choose_locale(None, "fr", "en-US") == "fr"
    assert choose_locale(None, "de", "de-DE, fr;q=0.8, en;q=0.5") == "fr"
    assert choose_locale(None, None, "q=;;,\u00e9\u00e9") == "en"


def test_language_switch_link_keeps_the_page_and_flips_the_language():
    stores, billing = setup("en")
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=None, lang="fr"))
    assert "<html lang=fr>" in page and "href='/join/pln_1?lang=en'" in page


def test_catalogues_every_key_exists_in_every_language():
    assert check_catalogues() == []
    assert set(CATALOGUES) == {"en", "fr"}


def test_render_messages_come_from_the_catalogue_in_tu():
    text = render("access_ended", "fr", community="Le Club", reason="refunded", join_url="https://j")
    assert text.startswith("Ton accès à Le Club est terminé (paiement remboursé)")


def test_price_info_from_a_stripe_price_object():
    price = price_info({"id": "price_1", "unit_amount": 500, "currency": "EUR", "nickname": None,
                        "recurring": {"interval": "month", "interval_count": 2, "trial_period_days": None}})
    assert price == PriceInfo("price_1", 500, "eur", "recurring", "month", 2)
    assert price_label(PriceInfo("p", 4900, "eur", "one_time"), "en") == "€49.00, paid once"
