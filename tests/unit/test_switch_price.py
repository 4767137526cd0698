"""The price a tier switch lands on when none is named: same currency and interval, else the nearest interval."""

from __future__ import annotations

import pytest

from membergate.domain.billing import PriceInfo, SubscriptionRecord, SubscriptionSnapshot
from membergate.domain.errors import ConflictError
from membergate.domain.model import Plan, PlanGrant, PriceLine
from membergate.domain.tiers import MoveKind, TierMove, switch_price
from membergate.services.checkout import price_for_switch
from tests.support.fakes import FakeBilling

pytestmark = pytest.mark.unit

EUR_MONTH = PriceInfo("price_b_eur_month", 1900, "eur", "recurring", "month")
EUR_YEAR = PriceInfo("price_b_eur_year", 19000, "eur", "recurring", "year")
USD_MONTH = PriceInfo("price_b_usd_month", 2100, "usd", "recurring", "month")
EUR_WEEK = PriceInfo("price_b_eur_week", 500, "eur", "recurring", "week")
EUR_QUARTER = PriceInfo("price_b_eur_quarter", 5000, "eur", "recurring", "month", interval_count=3)


def paying(currency: str, interval: str, count: int = 1) -> PriceLine:
    return PriceLine("price_a", currency, 900, 1, interval, count)


@pytest.mark.parametrize(
    ("current", "offered", "lands_on"),
    [
        (paying("eur", "month"), [USD_MONTH, EUR_YEAR, EUR_MONTH], EUR_MONTH),
        (paying("EUR", "month"), [USD_MONTH, EUR_YEAR, EUR_MONTH], EUR_MONTH),
        (paying("eur", "year"), [EUR_MONTH, USD_MONTH, EUR_YEAR], EUR_YEAR),
        (paying("usd", "month"), [EUR_MONTH, EUR_YEAR, USD_MONTH], USD_MONTH),
        (paying("usd", "year"), [EUR_YEAR, USD_MONTH], USD_MONTH),
        (paying("eur", "month"), [EUR_WEEK, EUR_YEAR, USD_MONTH], EUR_WEEK),
        (paying("eur", "year"), [EUR_WEEK, EUR_QUARTER, USD_MONTH], EUR_QUARTER),
        (paying("eur", "month", 3), [EUR_MONTH, EUR_QUARTER], EUR_QUARTER),
        (paying("eur", "month"), [EUR_YEAR, PriceInfo("price_b_eur_year2", 20000, "eur", "recurring", "year")],
         EUR_YEAR),
    ],
    ids=["eur-month-same", "currency-case", "eur-year-same", "usd-month-same", "usd-year-nearest-month",
         "month-nearer-week-than-year", "year-nearest-quarter", "quarter-same-count", "tie-plan-order"],
)
def test_switch_price_same_currency_nearest_interval_lands_on_it(current, offered, lands_on):
    # Given what the member pays now and the target tier's prices
    # When a switch names no price
    chosen = switch_price(current, offered)
    # Then it lands on the same currency, the nearest interval, in the plan's order on a tie
    assert chosen == lands_on


def test_switch_price_no_price_in_the_currency_is_none():
    # Given a member paying in GBP and a tier sold in EUR and USD only
    # When a switch names no price
    chosen = switch_price(paying("gbp", "month"), [EUR_MONTH, USD_MONTH])
    # Then there is no price to land on (the caller refuses with what to do)
    assert chosen is None


def test_switch_price_one_time_price_in_the_currency_is_never_chosen():
    # Given a tier whose only EUR price is bought once
    once = PriceInfo("price_b_eur_once", 9900, "eur", "one_time")
    # When a monthly EUR subscriber switches without naming a price
    # Then no price fits: a subscription cannot move onto a one-time price
    assert switch_price(paying("eur", "month"), [once, USD_MONTH]) is None


# -- the switch path (services/checkout.py::price_for_switch), over the billing fake ----------------------------

VIP = Plan("pln_vip", "VIP", ("price_b_usd_month", "price_b_eur_year", "price_b_eur_month"),  # type: ignore[arg-type]
           (PlanGrant("com_1"),), 3, "cancel", 0)
MOVE = TierMove(MoveKind.SWITCH, "sub_1", "pln_basic")


def held(*lines: PriceLine) -> list[SubscriptionRecord]:
    snapshot = SubscriptionSnapshot("sub_1", "cus_1", "active", 0, "evt_1", lines=lines)
    return [SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_basic", latest=snapshot)]


def billing_knowing(*prices: PriceInfo) -> FakeBilling:
    billing = FakeBilling()
    billing.prices = {p.id: p for p in prices}
    return billing


def test_price_for_switch_unnamed_lands_on_the_subscriptions_currency_and_interval():
    # Given a EUR monthly subscriber and a tier whose first price is USD
    billing = billing_knowing(USD_MONTH, EUR_YEAR, EUR_MONTH)
    # When a switch names no price
    chosen = price_for_switch(billing, VIP, MOVE, held(paying("eur", "month")), None)
    # Then it is the EUR monthly price
    assert chosen == "price_b_eur_month"


def test_price_for_switch_named_in_another_currency_is_409_naming_the_currency_to_pick():
    # Given a EUR subscriber
    billing = billing_knowing(USD_MONTH, EUR_YEAR, EUR_MONTH)
    # When the USD price is named
    # Then it is refused before Stripe is asked to switch, saying which currency fits
    with pytest.raises(ConflictError, match="pick a EUR price of VIP"):
        price_for_switch(billing, VIP, MOVE, held(paying("eur", "month")), "price_b_usd_month")
    assert billing.switches == []


def test_price_for_switch_named_in_the_same_currency_is_kept_whatever_its_interval():
    billing = billing_knowing(USD_MONTH, EUR_YEAR, EUR_MONTH)
    assert price_for_switch(billing, VIP, MOVE, held(paying("eur", "month")), "price_b_eur_year") == "price_b_eur_year"


def test_price_for_switch_no_price_in_the_currency_is_409_with_what_to_do():
    # Given a GBP subscriber, and a tier Stripe describes fully, without a GBP price
    billing = billing_knowing(USD_MONTH, EUR_YEAR, EUR_MONTH)
    # When a switch names no price
    # Then 409 says the creator can add a GBP price, and where
    with pytest.raises(ConflictError, match=r"VIP has no GBP price.*PATCH /admin/plans/pln_vip"):
        price_for_switch(billing, VIP, MOVE, held(paying("gbp", "month")), None)


def test_price_for_switch_prices_stripe_does_not_describe_are_left_to_stripe_not_refused():
    # Given a GBP subscriber, and Stripe describing only the USD price of the tier
    billing = billing_knowing(USD_MONTH)
    # When a switch names no price
    chosen = price_for_switch(billing, VIP, MOVE, held(paying("gbp", "month")), None)
    # Then the first price Stripe did not describe is tried (Stripe judges it), not a refusal on a guess
    assert chosen == "price_b_eur_year"


def test_price_for_switch_nothing_known_of_the_subscription_keeps_the_plans_order():
    # Given a subscription whose prices no event told yet
    billing = billing_knowing(USD_MONTH, EUR_YEAR, EUR_MONTH)
    # When a switch names no price, or names one
    # Then the plan's first price, or the one named; Stripe is not asked to describe anything
    assert price_for_switch(billing, VIP, MOVE, held(), None) == "price_b_usd_month"
    assert price_for_switch(billing, VIP, MOVE, held(), "price_b_eur_year") == "price_b_eur_year"
    assert billing.price_lookups == []
