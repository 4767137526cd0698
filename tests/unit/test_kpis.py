"""The creator's numbers: paying members and MRR per currency, in integer minor units."""

from __future__ import annotations

import pytest

from membergate.services.admin import compute_kpis
from tests.support import stripe_events as se
from tests.support.harness import DAY, T0, Harness

pytestmark = pytest.mark.unit


def subscribe(h: Harness, n: int, **kw) -> None:
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, customer=f"cus_{n}", sub_id=f"sub_{n}", **kw))


def test_kpis_mrr_per_currency_in_minor_units_across_decimal_conventions():
    # Given subscribers in EUR (2 decimals), JPY (0 decimals) and KWD (3 decimals), monthly and yearly
    h = Harness()
    subscribe(h, 1, amount=900, currency="eur")
    subscribe(h, 2, amount=9000, currency="eur", interval="year")  # 750 a month
    subscribe(h, 3, amount=1200, currency="jpy")
    subscribe(h, 4, amount=2500, currency="kwd", quantity=2)
    # When the KPIs are computed
    kpis = compute_kpis(h.stores, T0 + DAY)
    # Then MRR is summed per currency without floats, and every subscriber is paying
    assert kpis.mrr == {"eur": 1650, "jpy": 1200, "kwd": 5000}
    assert kpis.paying_members == 4 and kpis.members_with_access == 4


def test_kpis_trials_grace_and_ended_counted_apart():
    h = Harness()
    subscribe(h, 1, amount=900, status="trialing")
    subscribe(h, 2, amount=900, status="past_due")
    subscribe(h, 3, amount=900, status="canceled")
    kpis = compute_kpis(h.stores, T0 + DAY)
    # A trial is access without revenue; grace still counts as paying until it ends
    assert (kpis.trialing_members, kpis.members_in_grace, kpis.paying_members) == (1, 1, 1)
    assert kpis.mrr == {"eur": 900}
    assert kpis.members_with_access == 2
    # Once grace has run out, nobody is paying
    assert compute_kpis(h.stores, T0 + 4 * DAY).paying_members == 0


def test_kpis_yearly_amounts_round_once_per_currency_not_per_subscription():
    # 1000/12 = 83.33…: three of them make 250, not 249
    h = Harness()
    for n in range(3):
        subscribe(h, n, amount=1000, interval="year")
    assert compute_kpis(h.stores, T0).mrr == {"eur": 250}
