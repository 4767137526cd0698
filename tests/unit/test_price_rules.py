"""The pure rule of which Stripe prices a plan of each kind may sell."""

from __future__ import annotations

import pytest

from membergate.domain.billing import PriceInfo
from membergate.domain.model import PlanKind
from membergate.domain.prices import price_problems

pytestmark = pytest.mark.unit

MONTHLY = PriceInfo("price_m", 900, "eur", "recurring", "month")
ONCE = PriceInfo("price_o", 4900, "eur", "one_time")
ARCHIVED = PriceInfo("price_a", 900, "eur", "recurring", "month", active=False)


def test_price_problems_none_when_every_price_fits_the_kind():
    assert price_problems(PlanKind.SUBSCRIPTION, ["price_m"], [MONTHLY]) == []
    assert price_problems(PlanKind.LIFETIME, ["price_o"], [ONCE]) == []


def test_price_problems_name_each_unknown_archived_or_mistyped_price():
    problems = price_problems(PlanKind.SUBSCRIPTION, ["price_x", "price_a", "price_o", "price_m"], [MONTHLY, ONCE, ARCHIVED])
    assert len(problems) == 3
    assert problems[0].startswith("price_x does not exist")
    assert problems[1].startswith("price_a is archived")
    assert problems[2].startswith("price_o is a one-time price but a subscription plan needs a recurring one")
