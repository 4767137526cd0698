"""The founder price as the announcement names it: its amount and currency, the regular price beside it, en and fr."""

from __future__ import annotations

import pytest

from membergate.domain.billing import PriceInfo
from membergate.domain.errors import RetryableError
from membergate.domain.migration import Migration, offer_words
from membergate.services.migration import offer_text
from tests.support.migration_doubles import COMMUNITY, PLAN, migration_stores

pytestmark = pytest.mark.unit

FOUNDER = PriceInfo("price_founder", 500, "eur", "recurring", "month")
FOUNDER_YEAR = PriceInfo("price_founder_y", 5000, "eur", "recurring", "year")
REGULAR = PriceInfo("price_regular", 900, "eur", "recurring", "month")
ONCE = PriceInfo("price_once", 4900, "usd", "one_time")


@pytest.mark.parametrize(("prices", "regular", "locale", "said"), [
    ([FOUNDER], [REGULAR], "en", "Founder (€5.00 / month instead of €9.00 / month)"),
    ([FOUNDER], [REGULAR], "fr", "Founder (5,00 € / mois au lieu de 9,00 € / mois)"),
    ([FOUNDER, FOUNDER_YEAR], [], "en", "Founder (€5.00 / month or €50.00 / year)"),
    ([FOUNDER, FOUNDER_YEAR], [], "fr", "Founder (5,00 € / mois ou 50,00 € / an)"),
    ([ONCE], [], "en", "Founder ($49.00, paid once)"),
    ([PriceInfo("p", None, "eur", "recurring", "month", minimum=300)], [], "fr",
     "Founder (au choix, à partir de 3,00 € / mois)"),
])
def test_offer_words_give_the_amount_and_currency_and_the_regular_price_beside_it(prices, regular, locale, said):
    # Given the offer's prices (and the regular plan's) as Stripe describes them
    # When the announcement words the offer / Then the amount, currency and interval are there, in the language
    assert offer_words("Founder", prices, regular, locale) == said


def test_offer_words_without_a_price_on_sale_fall_back_to_the_plan_name():
    # Given prices that are all archived at Stripe, or none read
    archived = PriceInfo("price_old", 500, "eur", "recurring", "month", active=False)
    # When worded / Then the plan's name alone (never an empty or a wrong amount)
    assert offer_words("Founder", [archived], [REGULAR], "en") == "Founder"
    assert offer_words("Founder", [], [], "fr") == "Founder"


def test_offer_text_when_stripe_does_not_answer_still_announces_with_the_plan_name():
    # Given a migration naming a regular plan, and Stripe timing out
    stores, _ = migration_stores()
    migration = Migration("mig_1", COMMUNITY.id, PLAN.id, 2_000_000_000, "", 0, regular_plan_id="pln_missing")

    def down(price_ids):
        raise RetryableError("Stripe did not answer")

    # When the offer is worded / Then the plan's name: the announcement goes out, the join page shows the price
    assert offer_text(stores, migration, PLAN, "fr", down) == "Fondateur"
    assert offer_text(stores, migration, PLAN, "fr", None) == "Fondateur"
    assert offer_text(stores, migration, PLAN, "fr", lambda ids: [FOUNDER]) == "Fondateur (5,00 € / mois)"
