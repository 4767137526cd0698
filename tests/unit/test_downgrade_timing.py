"""A downgrade waits for the period end only when the plan being left says so and the target costs less per month."""

from __future__ import annotations

from dataclasses import replace

import pytest

from membergate.domain.billing import PriceInfo
from membergate.domain.errors import InvalidRequestError
from membergate.domain.model import OnGraceEnd, Plan, PlanGrant, PlanKind, PriceLine
from membergate.domain.tiers import Direction, direction, waits_for_period_end
from membergate.services import admin
from tests.support.harness import T0, Harness

pytestmark = pytest.mark.unit

GOLD = Plan("pln_gold", "Gold", ("price_gold",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
            downgrade="period_end")
MONTHLY_10 = PriceLine("price_gold", "eur", 1000, 1, "month", 1)


def price(amount: int | None, interval: str = "month", currency: str = "eur", count: int = 1) -> PriceInfo:
    return PriceInfo("price_x", amount, currency, "recurring", interval, count)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (price(400), Direction.DOWN),
        (price(3000), Direction.UP),
        (price(1000), Direction.LEVEL),
        (price(9000, "year"), Direction.DOWN),  # 7.50 a month
        (price(15000, "year"), Direction.UP),  # 12.50 a month
        (price(400, currency="usd"), Direction.UNKNOWN),  # another currency cannot be compared
        (price(None), Direction.UNKNOWN),  # pay what you want
        (None, Direction.UNKNOWN),  # the price could not be read
    ],
)
def test_direction_compares_per_month_in_one_currency(target, expected):
    # Given a subscription at 10.00 EUR a month
    # When another tier's price is compared with it
    # Then it is up or down per month, or unknown when it cannot be told
    assert direction(MONTHLY_10, target) is expected


@pytest.mark.parametrize(
    ("plan", "target", "waits"),
    [
        (GOLD, price(400), True),
        (replace(GOLD, downgrade="immediate"), price(400), False),  # the creator's default
        (GOLD, price(3000), False),  # upgrades stay immediate and prorated
        (GOLD, price(400, currency="usd"), False),  # unknown direction: immediate
        (GOLD, price(4000, "year"), False),  # cheaper, but the interval changes: immediate
    ],
)
def test_waits_for_period_end_only_for_a_same_interval_downgrade_the_plan_left_allows(plan, target, waits):
    # Given the plan being left and the target price
    # When the timing of the switch is decided
    # Then only a downgrade on the same interval, from a period_end plan, waits
    assert waits_for_period_end(plan, MONTHLY_10, target) is waits


def test_plan_downgrade_option_is_validated_stored_and_edited():
    # Given a deployment with a monthly plan
    h = Harness()
    # When the creator asks for a timing that does not exist
    with pytest.raises(InvalidRequestError) as refused:
        admin.update_plan(h.stores, "pln_monthly", downgrade="tomorrow")
    # Then it is refused naming the field and the choices; valid ones are kept
    assert refused.value.field == "downgrade" and "immediate, period_end" in refused.value.message
    assert admin.update_plan(h.stores, "pln_monthly", downgrade="period_end").downgrade == "period_end"
    assert h.stores.catalog.get_plan("pln_monthly").downgrade == "period_end"
    assert admin.update_plan(h.stores, "pln_monthly").downgrade == "period_end"  # absent: unchanged
    assert admin.update_plan(h.stores, "pln_monthly", downgrade="immediate").downgrade == "immediate"


def test_plan_downgrade_period_end_on_a_one_time_plan_is_refused():
    # Given a lifetime plan
    h = Harness()
    lifetime = replace(h.plan, id="pln_life", kind=PlanKind.LIFETIME, stripe_price_ids=("price_life",))
    h.stores.catalog.add_plan(lifetime)
    # When the creator asks its downgrades to wait for a period end
    with pytest.raises(InvalidRequestError) as refused:
        admin.update_plan(h.stores, "pln_life", downgrade="period_end")
    # Then it is refused: a one-time plan is never switched from
    assert refused.value.field == "downgrade" and "bought once" in refused.value.message
