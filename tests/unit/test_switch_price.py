"""The price a tier switch lands on when none is named: same currency and interval, else the nearest interval."""

from __future__ import annotations

import pytest

from membergate.domain.billing import PriceInfo
from membergate.domain.model import PriceLine
from membergate.domain.tiers import switch_price

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
