"""The member pages' view model and rendering: prices, states in words, languages, one catalogue."""

from __future__ import annotations

import re
from dataclasses import replace

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
    view = join_page_view("pln_1", stores=stores, billing=billing, member_id=member, manage=True)
    page = join_page(replace(view, relink_proof="proof123"))
    # Then the page speaks French, with French amounts and the state in words
    assert "<html lang=fr>" in page
    visible = re.sub(r"<[^>]+>", "", page)
    assert "Ton accès à Le Club : actif" in visible and "granted" not in visible
    assert "9,00 € / mois" in page and "Utiliser un autre compte Discord" in page


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


def test_join_page_view_whatsapp_step_is_the_wa_me_code_before_the_pay_button():
    # Given a WhatsApp community (French) and a visitor whose phone is not linked yet
    stores, billing = setup("fr", platform=Platform.WHATSAPP)
    # When the view is built and rendered
    view = join_page_view("pln_1", stores=stores, billing=billing, member_id=None)
    page = join_page(view)
    # Then the step is the one-time code sent from the phone, in "tu", with the prices but no pay button
    assert [(s.platform, s.kind, s.bound) for s in view.identity_steps] == [("whatsapp", "message", False)]
    assert "href='/whatsapp/start/pln_1'" in page and "Continuer avec WhatsApp" in page and "Envoie-nous" in page
    assert "/auth/discord/start" not in page and "action='/checkout'" not in page
    assert "class=prices" in page


def test_join_page_view_whatsapp_linked_member_sees_the_masked_number_and_the_pay_button():
    # Given a member whose phone sent the join code
    stores, billing = setup(platform=Platform.WHATSAPP)
    stores.members.create(Member("mbr_1", T0))
    stores.members.bind_identity("mbr_1", Identity(Platform.WHATSAPP, "+33612345678"))
    # When the page is rendered for them, then after payment
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id="mbr_1"))
    paid = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id="mbr_1", paid=True))
    # Then the number is shown masked (whole only for machines), with the pay button; the success
    # page says the invite arrives in WhatsApp
    visible = page.replace("data-whatsapp-phone='+33612345678'", "")
    assert "+33•••678" in visible and "+33612345678" not in visible
    assert "action='/checkout'" in page and "Continue with WhatsApp" not in page
    assert "arrives in WhatsApp" in paid


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
    stores.members.bind_identity("mbr_1", Identity(Platform.TELEGRAM, "777000111", "@ana_b"))
    # When the page is rendered for them
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id="mbr_1"))
    # Then it names the linked account by its handle (the id only for machines) and offers to pay
    assert "data-telegram-user='777000111'" in page and "Telegram account linked: <b class=handle>@ana_b</b>" in page
    assert "777000111<" not in page and "action='/checkout'" in page and "Continue with Telegram" not in page


@pytest.mark.parametrize("platform", [Platform.DISCORD, Platform.TELEGRAM])
def test_join_page_bound_account_is_shown_by_its_handle_escaped_never_the_raw_id(platform):
    # Given a member whose account's name is hostile markup
    stores, billing = setup("fr", platform=platform)
    stores.members.create(Member("mbr_1", T0))
    stores.members.bind_identity("mbr_1", Identity(platform, "123456789012345678", "<script>x</script> (@eve)"))
    # When the join, success and manage pages are rendered
    pages = [join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id="mbr_1", **flags))
             for flags in ({}, {"paid": True}, {"manage": True})]
    # Then each shows the escaped handle, and the id never as text
    for page in pages:
        assert "&lt;script&gt;x&lt;/script&gt; (@eve)" in page and "<script>" not in page
        assert re.search(r">[^<]*123456789012345678", page) is None


def test_join_page_bound_account_without_a_handle_is_named_in_words_not_a_tick():
    # Given a member bound before handles were kept
    stores, billing = setup("fr")
    member = bound_member(stores)
    # When the page is rendered
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member))
    # Then the account is "ton compte Discord", neither a tick nor the id
    assert "Compte Discord connecté : ton compte Discord" in page and "✓" not in page


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


def test_manage_page_relink_is_a_form_post_with_the_session_proof_for_each_bound_platform():
    # Given a member bound on Discord, on the manage page of their session
    stores, billing = setup()
    member = bound_member(stores, AccessState.GRANTED)
    view = join_page_view("pln_1", stores=stores, billing=billing, member_id=member, manage=True)
    # When it is rendered with the session's proof, and without (another page, or no session)
    page = join_page(replace(view, relink_proof="p'roof"))
    bare = join_page(view)
    # Then the relink is a POST form carrying the proof (escaped), no script, no GET link; none without a proof
    assert "<form method=post action='/auth/discord/relink' class=relink data-platform='discord'>" in page
    assert "name=proof value='p&#x27;roof'" in page and "<script" not in page
    assert "/auth/discord/relink" not in bare


def test_manage_page_after_a_relink_names_the_new_account():
    # Given a member just moved to the account "@new_me"
    stores, billing = setup("fr")
    stores.members.create(Member("mbr_1", T0))
    stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, "123456789012345678", "@new_me"))
    view = join_page_view("pln_1", stores=stores, billing=billing, member_id="mbr_1", manage=True)
    # When the manage page is shown after the relink, then after choosing the same account again
    moved = join_page(replace(view, relink_proof="p", relinked="1"))
    same = join_page(replace(view, relink_proof="p", relinked="same"))
    # Then it says where the membership went, in the member's language
    assert "ton abonnement utilise maintenant <b class=handle>@new_me</b>" in moved
    assert "rien n'a changé" in same


def test_manage_page_after_a_partial_relink_does_not_claim_the_old_account_lost_access():
    # Given a relink whose removal of the old account failed somewhere
    stores, billing = setup()
    stores.members.create(Member("mbr_1", T0))
    stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, "123456789012345678", "@new_me"))
    view = join_page_view("pln_1", stores=stores, billing=billing, member_id="mbr_1", manage=True)
    # When the manage page is shown / Then it says so, and what to do
    page = join_page(replace(view, relink_proof="p", relinked="partial"))
    assert "now uses <b class=handle>@new_me</b>" in page and "ask the creator to remove it" in page
    assert "has lost its access" not in page
