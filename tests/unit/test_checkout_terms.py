"""Checkout options and consumer law: what Checkout is asked, and what the join page says beside the pay button."""

from __future__ import annotations

from dataclasses import replace

import pytest

from membergate.domain.billing import PriceInfo
from membergate.domain.checkout_terms import checkout_terms
from membergate.domain.model import CheckoutOptions
from membergate.http.pages import join_page, price_label
from membergate.services.checkout import CheckoutPolicy, CheckoutRequest, start_checkout
from membergate.services.member_pages import join_page_view
from tests.support.harness import Harness

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("asked", "deployment", "taxed"), [(True, True, True), (True, False, False), (False, True, False)])
def test_checkout_terms_stripe_tax_only_when_the_plan_asks_and_the_deployment_allows(asked, deployment, taxed):
    # Given a plan asking (or not) for Stripe Tax, on a deployment with it on (or off)
    options = CheckoutOptions(automatic_tax=asked)
    # When the checkout's terms are made / Then tax is on only when both say so
    assert checkout_terms(options, locale="en", place="Club", stripe_tax=deployment).automatic_tax is taxed


def test_checkout_terms_consent_text_in_the_members_language_and_terms_box_only_with_terms():
    # Given a French community, with and without the creator's terms URL
    with_terms = checkout_terms(CheckoutOptions(), locale="fr", place="Le\r\nClub", stripe_tax=False,
                                terms_url="https://c.example/cgv", privacy_url="https://c.example/rgpd")
    without = checkout_terms(CheckoutOptions(), locale="fr", place="Le Club", stripe_tax=False)
    # Then the text beside the pay button asks for immediate access and waives withdrawal, as "tu"
    assert with_terms.submit_message.startswith("En payant, tu demandes l'accès immédiat à Le Club et tu reconnais")
    assert "https://c.example/cgv" in with_terms.submit_message and "https://c.example/rgpd" in with_terms.submit_message
    # And the terms checkbox is asked only when there are terms to accept
    assert with_terms.terms_of_service is True and without.terms_of_service is False
    assert without.submit_message.endswith("droit de rétractation de 14 jours.")


def test_start_checkout_sends_the_plans_options_and_the_deployments_policy():
    # Given a plan with promotion codes off and phone collection on, and a member bound on Discord
    h = Harness(locale="fr")
    h.stores.catalog.add_plan(replace(h.plan, id="pln_opts", stripe_price_ids=("price_opts",),
                                      checkout=CheckoutOptions(allow_promotion_codes=False, automatic_tax=True,
                                                               phone_number_collection=True)))
    h.member()
    # When the member starts a checkout on a deployment with Stripe Tax and terms
    request = CheckoutRequest("mbr_1", "pln_opts", None, "https://m.example/ok", "https://m.example/no", waiver=True)
    start_checkout(request, stores=h.stores, billing=h.billing, now=h.now,
                   policy=CheckoutPolicy(stripe_tax=True, terms_url="https://c.example/cgv"))
    # Then Checkout is asked for exactly that, in the community's language
    (params,) = h.billing.session_params.values()
    terms = params["terms"]
    assert (terms.allow_promotion_codes, terms.automatic_tax, terms.phone_number_collection) == (False, True, True)
    assert terms.terms_of_service is True and terms.locale == "fr" and "The Club" in terms.submit_message


@pytest.mark.parametrize(("locale", "label"), [("en", "your choice, from €5.00, paid once"),
                                               ("fr", "au choix, à partir de 5,00 €, en une fois")])
def test_price_label_pay_what_you_want_says_from_the_minimum(locale, label):
    # Given a one-time price whose amount the member chooses, at least €5
    price = PriceInfo("price_pwyw", None, "eur", "one_time", minimum=500)
    # When it is labelled / Then it reads "from €5.00"
    assert price_label(price, locale) == label


def test_join_page_shows_the_waiver_and_the_creators_terms_and_privacy_escaped():
    # Given a member ready to pay, on a deployment with terms and privacy URLs
    h = Harness()
    h.member()
    view = join_page_view("pln_monthly", stores=h.stores, billing=None, member_id="mbr_1")
    # When the join page is rendered
    page = join_page(replace(view, terms_url="https://c.example/terms?a=1&b='x'", privacy_url="https://c.example/privacy"))
    # Then beside the pay button: immediate access waives the 14-day withdrawal right, the terms, the privacy policy
    assert "give up your 14-day right of withdrawal" in page
    assert "accept the <a href='https://c.example/terms?a=1&amp;b=&#x27;x&#x27;'>terms</a>" in page
    assert "<a href='https://c.example/privacy'>Privacy policy</a>" in page
    assert page.index("action='/checkout'") < page.index("14-day right of withdrawal")
