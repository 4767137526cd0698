"""KPI engine properties over arbitrary histories, and how one subscription's MRR is normalised."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membergate.domain.kpis import (
    Discount,
    History,
    SubscriptionObservation,
    compute_kpis,
    daily_snapshot,
    round_half_up,
    summarise,
)
from membergate.domain.model import PriceLine

pytestmark = pytest.mark.unit

DAY = 86_400
T0 = int(datetime(2026, 2, 1, tzinfo=timezone.utc).timestamp())
FROM, TO = date(2026, 2, 3), date(2026, 2, 9)
NOW = T0 + 30 * DAY
# Weighted towards "active" so that histories move money (expansion, contraction) often.
STATUSES = ["active"] * 5 + ["incomplete", "trialing", "past_due", "past_due", "unpaid", "canceled", "paused"]


def price(amount: int, currency: str = "eur", interval: str = "month", count: int = 1, quantity: int = 1) -> PriceLine:
    return PriceLine(f"price_{amount}_{interval}_{count}", currency, amount, quantity, interval, count)


def one(lines, **kw) -> SubscriptionObservation:
    return SubscriptionObservation("m", "sub_m", T0, "active", tuple(lines), "evt_1", **kw)


# ---------------------------------------------------------------- normalisation, by hand


def test_kpi_monthly_amount_weekly_quarterly_annual_normalised_exactly():
    # Given a weekly 700 (x 52 / 12), a quarterly 3,000 (/ 3) and an annual 12,000 (/ 12) price
    weekly, quarterly, annual = price(700, interval="week"), price(3000, count=3), price(12000, interval="year")
    # Then their monthly values are exact fractions
    assert one([weekly]).monthly() == {"eur": Fraction(700 * 52, 12)}  # 3,033 1/3
    assert one([quarterly]).monthly() == {"eur": 1000}
    assert one([annual]).monthly() == {"eur": 1000}
    assert one([price(500, quantity=3)]).monthly() == {"eur": 1500}


def test_kpi_monthly_amount_forever_discount_applied_once_coupon_ignored():
    # Given 25 % off forever, 200 off each invoice forever on an annual price, and a "once" coupon
    percent = one([price(1000)], discount=Discount(percent_off=Fraction(25)))
    amount = one([price(12000, interval="year")], discount=Discount(amount_off=1200))
    once = one([price(1000)], discount=Discount(percent_off=Fraction(50), duration="once"))
    # Then the run rate is discounted except by the coupon that touches one invoice
    assert percent.monthly() == {"eur": 750}
    assert amount.monthly() == {"eur": 900}  # (12,000 - 1,200) / 12
    assert once.monthly() == {"eur": 1000}
    # and a discount larger than the price never makes MRR negative
    assert one([price(100)], discount=Discount(amount_off=500)).monthly() == {"eur": 0}


def test_kpi_monthly_amount_net_of_inclusive_tax_when_known():
    # Given a tax-inclusive monthly 1,200 at 20 % VAT
    taxed = one([price(1200)], tax_inclusive_rate=Fraction(20, 100))
    # Then MRR is the net 1,000
    assert taxed.monthly() == {"eur": 1000}


def test_kpi_round_half_up_to_minor_unit():
    assert [round_half_up(Fraction(n, 2)) for n in (1, 3, 5)] == [1, 2, 3]
    assert round_half_up(Fraction(2, 3)) == 1 and round_half_up(Fraction(1, 3)) == 0


def test_kpi_trialing_member_has_no_mrr_and_counts_as_trialing():
    history = History((SubscriptionObservation("m", "s", T0, "trialing", (price(900),), "e"),))
    report = compute_kpis(history, date(2026, 2, 1), date(2026, 2, 1), "UTC", NOW)
    assert (report.mrr, report.trialing_members, report.paying_members) == ({}, 1, 0)


# ---------------------------------------------------------------- properties

observation = st.builds(
    SubscriptionObservation,
    member_id=st.sampled_from(["a", "b"]),
    subscription_id=st.sampled_from(["s1", "s2"]),
    created=st.builds(lambda d, s: T0 + d * DAY + s, st.integers(0, 10), st.integers(0, DAY - 1)),
    status=st.sampled_from(STATUSES),
    lines=st.lists(
        st.builds(
            price,
            amount=st.integers(1, 20_000),
            currency=st.sampled_from(["eur", "jpy"]),
            interval=st.sampled_from(["day", "week", "month", "year"]),
            count=st.integers(1, 3),
            quantity=st.integers(1, 3),
        ),
        min_size=1,
        max_size=2,
    ).map(tuple),
    event_id=st.text("abc", min_size=1, max_size=3),
    grace_seconds=st.sampled_from([0, DAY, 3 * DAY]),
    discount=st.one_of(st.none(), st.none(), st.none(), st.builds(Discount, percent_off=st.integers(0, 100).map(Fraction), amount_off=st.integers(0, 500))),
)
histories = st.lists(observation, max_size=16).map(lambda items: History(tuple(items)))
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(histories)
def test_kpi_property_mrr_never_negative_and_movements_reconcile(history):
    # Given any history; When each day of a week is computed
    report = compute_kpis(history, FROM, TO, "UTC", NOW)
    snapshots = [daily_snapshot(history, FROM + timedelta(days=n), "UTC", NOW) for n in range(7)]
    # Then MRR is never negative, movements are positive, and start + movements = end per currency
    for snap in [*snapshots]:
        assert all(v >= 0 for v in snap.mrr.values())
        for currency in set(snap.mrr) | set(snap.mrr_start) | set(snap.movements):
            moves = snap.movements.get(currency)
            net = moves.net if moves else 0
            if moves:
                assert min(moves.new, moves.expansion, moves.contraction, moves.churned, moves.reactivation) >= 0
            assert snap.mrr_start.get(currency, 0) + net == snap.mrr.get(currency, 0)
    for currency in set(report.mrr) | set(report.mrr_start):
        moves = report.movements.get(currency)
        assert report.mrr_start.get(currency, 0) + (moves.net if moves else 0) == report.mrr.get(currency, 0)
    # and consecutive days chain: one day's end is the next day's start
    for earlier, later in zip(snapshots, snapshots[1:]):
        assert earlier.mrr == later.mrr_start and earlier.paying == later.paying_start
    assert report.paying_members >= report.grace_members >= 0


@FAST
@given(st.lists(observation, max_size=10), st.randoms(use_true_random=False))
def test_kpi_property_order_and_duplicates_of_events_do_not_matter(items, rnd):
    # Given a history and the same events shuffled, some delivered twice
    shuffled = items + items[: len(items) // 2]
    rnd.shuffle(shuffled)
    # Then every KPI is the same
    assert compute_kpis(History(tuple(shuffled)), FROM, TO, "UTC", NOW) == compute_kpis(History(tuple(items)), FROM, TO, "UTC", NOW)


@FAST
@given(histories, st.sampled_from(["UTC", "Europe/Paris", "Pacific/Auckland"]))
def test_kpi_property_report_from_daily_snapshots_equals_report_from_events(history, tz):
    # Given a snapshot computed on its own for each day (as the schedule would store them)
    snapshots = [daily_snapshot(history, FROM + timedelta(days=n), tz, NOW) for n in range(7)]
    # Then the period read from them is the period computed in one pass over the events
    assert summarise(history, snapshots, FROM, TO, tz, NOW) == compute_kpis(history, FROM, TO, tz, NOW)


def test_kpi_day_with_a_clock_change_is_still_one_whole_local_day():
    # Given Paris moves to summer time on 2026-03-29 (a 23-hour day) and a member subscribes at
    # 23:30 local time that day (21:30 UTC)
    created = int(datetime(2026, 3, 29, 21, 30, tzinfo=timezone.utc).timestamp())
    history = History((SubscriptionObservation("m", "s", created, "active", (price(900),), "e"),))
    # When the 29th and the 30th are read in Paris
    day29 = compute_kpis(history, date(2026, 3, 29), date(2026, 3, 29), "Europe/Paris", NOW + 90 * DAY)
    day30 = compute_kpis(history, date(2026, 3, 30), date(2026, 3, 30), "Europe/Paris", NOW + 90 * DAY)
    # Then the member is new on the 29th and simply paying on the 30th
    assert day29.movements["eur"].new == 900 and day29.mrr == {"eur": 900}
    assert day30.movements == {} and day30.mrr == {"eur": 900}


def test_kpi_nobody_churned_rates_are_zero_and_ltv_unknown():
    # Given one member paying all along
    history = History((SubscriptionObservation("m", "s", T0 - 40 * DAY, "active", (price(900),), "e"),))
    # When a period without churn is read
    report = compute_kpis(history, FROM, TO, "UTC", NOW).as_dict()
    # Then churn is 0, NRR is 1, and LTV cannot be estimated (no churn to divide by)
    assert report["churn"]["logo_rate"] == 0 and report["churn"]["revenue_rate"] == {"eur": 0}
    assert report["nrr"] == {"eur": 1} and report["ltv"] == {"eur": None} and report["arpu"] == {"eur": 900}


def test_kpi_paused_collection_counts_nowhere_and_is_a_voluntary_churn():
    # Given a paying member whose collection the creator paused on 02-05
    history = History(
        (
            SubscriptionObservation("m", "s", T0 - 40 * DAY, "active", (price(900),), "e1"),
            SubscriptionObservation("m", "s", T0 + 4 * DAY, "active", (price(900),), "e2", collection_paused=True),
        )
    )
    # When the week is read
    report = compute_kpis(history, FROM, TO, "UTC", NOW)
    # Then the member stopped paying on 02-05, which nobody's failed payment caused
    assert (report.paying_members, report.mrr) == (0, {})
    assert report.movements["eur"].churned == 900 and report.churn.voluntary_members == 1
