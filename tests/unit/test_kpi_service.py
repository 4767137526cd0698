"""The KPI service: the engine fed from the subscription store (read-only), and the period it accepts."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.support import stripe_events as se
from tests.support.harness import DAY, T0, Harness
from membergate.services.kpis import history_from_stores, read_kpis

pytestmark = pytest.mark.unit


def subscribe(h: Harness, n: int, created: int = T0, **kw) -> None:
    h.deliver(se.subscription_event("customer.subscription.created", created=created, customer=f"cus_{n}", sub_id=f"sub_{n}", **kw))


def day(epoch: int):
    return datetime.fromtimestamp(epoch, timezone.utc).date()


def test_kpis_service_reads_stored_subscriptions_into_the_engine():
    # Given members subscribed in EUR monthly, EUR yearly, JPY, and one trialing
    h = Harness()
    subscribe(h, 1, amount=900)
    subscribe(h, 2, amount=9000, interval="year")
    subscribe(h, 3, amount=1200, currency="jpy")
    subscribe(h, 4, amount=900, status="trialing")
    # When the KPIs of the day they joined are read the next day
    report = read_kpis(h.stores, T0 + DAY, start=day(T0), end=day(T0)).as_dict()
    # Then MRR, members and movements come from the stored snapshots
    assert report["mrr"] == {"eur": 1650, "jpy": 1200}
    assert report["movements"]["eur"]["new"] == 1650 and report["movements"]["jpy"]["new"] == 1200
    assert (report["paying_members"], report["trialing_members"]) == (3, 1)
    assert len(history_from_stores(h.stores).observations) == 4


def test_kpis_service_agrees_with_todays_counts_on_grace_and_ended():
    # Given one member in grace and one cancelled
    h = Harness()
    subscribe(h, 1, amount=900, status="past_due")
    subscribe(h, 2, amount=900, status="canceled")
    # When read inside the grace period and after it
    during = read_kpis(h.stores, T0 + DAY, start=None, end=None).as_dict()
    after = read_kpis(h.stores, T0 + 4 * DAY, start=None, end=None).as_dict()
    # Then grace counts as paying, and once grace is over nobody is (the currency stays listed at 0)
    assert (during["paying_members"], during["grace_members"], during["mrr"]) == (1, 1, {"eur": 900})
    assert (after["paying_members"], after["grace_members"], after["mrr"]) == (0, 0, {"eur": 0})
    assert after["churn"]["involuntary"]["members"] == 1


def test_kpis_service_refuses_a_bad_period_naming_the_field():
    from membergate.domain.errors import InvalidRequestError

    h = Harness()
    with pytest.raises(InvalidRequestError) as err:
        read_kpis(h.stores, T0, start=day(T0 + DAY), end=day(T0))
    assert err.value.field == "to"
    with pytest.raises(InvalidRequestError) as err:
        read_kpis(h.stores, T0, start=None, end=day(T0 + 2 * DAY))
    assert err.value.field == "to" and "today" in err.value.message


def test_kpis_service_paused_collection_is_not_revenue():
    # Given a subscriber, then Stripe reports collection paused on the subscription
    h = Harness()
    subscribe(h, 1, amount=900)
    paused = se.subscription_event("customer.subscription.updated", created=T0 + 3600, customer="cus_1", sub_id="sub_1", amount=900)
    paused["data"]["object"]["pause_collection"] = {"behavior": "void", "resumes_at": None}
    h.deliver(paused)
    # When today's KPIs are read
    report = read_kpis(h.stores, T0 + DAY, start=None, end=None).as_dict()
    # Then the member pays nothing and is not counted as paying
    assert report["paying_members"] == 0 and report["mrr"] == {}


def test_kpis_service_subscription_active_then_cancelled_shows_new_then_churned():
    # Given a member who subscribed on day 0, upgraded on day 2 and cancelled on day 5
    h = Harness()
    subscribe(h, 1, amount=900)
    h.deliver(se.subscription_event(created=T0 + 2 * DAY, customer="cus_1", sub_id="sub_1", amount=1500))
    h.deliver(se.subscription_event("customer.subscription.deleted", created=T0 + 5 * DAY, customer="cus_1",
                                    sub_id="sub_1", amount=1500, status="canceled"))
    # When the KPIs of a period covering all three are read
    report = read_kpis(h.stores, T0 + 10 * DAY, start=day(T0), end=day(T0 + 9 * DAY)).as_dict()
    # Then the movements follow Stripe's times: new at 900, expansion of 600, churn of 1500
    assert report["movements"]["eur"] == {"new": 900, "expansion": 600, "contraction": 0, "churned": 1500,
                                          "reactivation": 0}
    assert report["churn"]["voluntary"]["members"] == 1 and report["mrr"] == {"eur": 0}


def test_kpis_service_history_does_not_depend_on_delivery_order():
    # Given the same three events delivered newest first
    h = Harness()
    h.deliver(se.subscription_event("customer.subscription.deleted", created=T0 + 5 * DAY, customer="cus_1",
                                    sub_id="sub_1", amount=1500, status="canceled"))
    h.deliver(se.subscription_event(created=T0 + 2 * DAY, customer="cus_1", sub_id="sub_1", amount=1500))
    subscribe(h, 1, amount=900)
    # When the same period is read
    report = read_kpis(h.stores, T0 + 10 * DAY, start=day(T0), end=day(T0 + 9 * DAY)).as_dict()
    # Then the movements are the same
    assert report["movements"]["eur"] == {"new": 900, "expansion": 600, "contraction": 0, "churned": 1500,
                                          "reactivation": 0}


def test_kpi_lines_fold_many_items_into_one_line_per_currency_and_interval():
    from membergate.domain.billing import kpi_lines
    from membergate.domain.model import PriceLine

    # Given a subscription with 3,000 items of two kinds and one custom-amount item
    lines = tuple(PriceLine(f"price_{n}", "eur", 100, 2, "month", 1) for n in range(3000))
    lines += (PriceLine("price_y", "eur", 1200, 1, "year", 1), PriceLine("price_c", "eur", None, 1, "month", 1))
    # Then the KPI history keeps two lines with the same monthly amount
    assert kpi_lines(lines) == (PriceLine("price_0", "eur", 600_000, 1, "month", 1),
                                PriceLine("price_y", "eur", 1200, 1, "year", 1))


def test_kpis_service_overview_sharing_one_read_gives_the_reports_read_one_by_one():
    # Given subscriptions over three months and join funnel counters on several days
    from membergate.services import dashboard

    h = Harness()
    subscribe(h, 1, amount=900)
    subscribe(h, 2, created=T0 + 40 * DAY, amount=1200)
    subscribe(h, 3, created=T0 + 70 * DAY, amount=900, status="trialing")
    for n, at in enumerate((T0, T0 + 35 * DAY, T0 + 65 * DAY, T0 + 66 * DAY)):
        h.stores.funnel.count("pln_a" if n % 2 else "pln_b", "view", at)
    now = T0 + 80 * DAY
    # When the overview reads once for all its reports
    overview = dashboard.overview(h.stores, now, months=4)
    # Then each month's report and the period's equal the report read on its own
    for point in overview.months:
        start = overview.today.replace(year=int(point.month[:4]), month=int(point.month[5:]), day=1)
        alone = read_kpis(h.stores, now, start=start, end=point.report.end).as_dict()
        assert point.report.as_dict() == alone
    assert overview.period.as_dict() == read_kpis(h.stores, now, start=overview.period.start, end=overview.today).as_dict()
    assert sum(1 for p in overview.months if p.report.funnel_by_plan) >= 2  # the counters fall in several months
