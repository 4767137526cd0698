"""Daily KPI snapshots: written for closed days, read back for a period, recomputed after a late event."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.support import stripe_events as se
from tests.support.fakes import FakeKpiSnapshots
from tests.support.harness import DAY, T0, Harness
from tests.unit.test_kpi_worked_example import FROM, NOW, TO, worked_history
from membergate.domain.kpis import History, compute_kpis, daily_snapshots, summarise
from membergate.services.kpis import history_from_stores, period_snapshots, read_kpis, write_daily_snapshots

pytestmark = pytest.mark.unit


def day(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, timezone.utc).date()


def test_period_snapshots_worked_example_reads_clean_days_and_recomputes_dirty_ones():
    # Given February's snapshots stored from a history that missed one back-dated event (Feb 12:
    # frank's cancellation), that event now in the history, and the store marked dirty from Feb 12
    history = worked_history()
    stale = History(tuple(o for o in history.observations if o.status != "canceled" or o.member_id != "frank"),
                    history.payments, history.funnel)
    store = FakeKpiSnapshots()
    store.write(daily_snapshots(stale, [FROM + timedelta(days=n) for n in range(28)], "UTC", NOW), TO, frozenset())
    store.mark_dirty(date(2026, 2, 12), "evt_frank_cancel")
    # When the period's snapshots are gathered and summarised
    snapshots = period_snapshots(store, history, FROM, TO, NOW)
    # Then clean days come from the store, and the report equals the one computed from every event
    assert store.reads == [(FROM, date(2026, 2, 11))]
    assert summarise(history, snapshots, FROM, TO, "UTC", NOW) == compute_kpis(history, FROM, TO, "UTC", NOW)
    # (and the stale snapshots alone would have missed frank's churn)
    assert summarise(history, list(store.snapshots.values()), FROM, TO, "UTC", NOW) != \
        compute_kpis(history, FROM, TO, "UTC", NOW)


def subscribe(h: Harness, n: int, created: int, **kw) -> None:
    h.deliver(se.subscription_event("customer.subscription.created", created=created, customer=f"cus_{n}",
                                    sub_id=f"sub_{n}", **kw))


def story(h: Harness) -> None:
    subscribe(h, 1, T0, amount=900)
    subscribe(h, 2, T0 + DAY, amount=9000, interval="year")
    h.deliver(se.subscription_event(created=T0 + 3 * DAY, customer="cus_1", sub_id="sub_1", amount=1500))
    subscribe(h, 3, T0 + 4 * DAY, amount=900, status="trialing")
    h.deliver(se.subscription_event(created=T0 + 6 * DAY, customer="cus_3", sub_id="sub_3", amount=900))


def test_write_daily_snapshots_then_read_kpis_equals_the_live_computation():
    # Given a week of subscriptions, upgrades and a converting trial
    h = Harness()
    story(h)
    now = T0 + 8 * DAY + 3600
    # When the scheduled job runs, then a period is read
    run = write_daily_snapshots(h.stores, now)
    store = h.stores.kpi_snapshots
    report = read_kpis(h.stores, now, start=day(T0), end=day(now))
    # Then every closed day was written once, the read used them, and the numbers equal the live ones
    assert (run.days_written, run.through) == (8, day(now) - timedelta(days=1))
    assert store.reads and sorted(store.snapshots) == [day(T0) + timedelta(days=n) for n in range(8)]
    live = compute_kpis(history_from_stores(h.stores), day(T0), day(now), "UTC", now)
    assert report == replace(live, funnel=report.funnel)
    assert report.as_dict()["movements"]["eur"]["expansion"] == 600
    # And running it again the same day writes nothing
    assert write_daily_snapshots(h.stores, now).days_written == 0


def test_backdated_event_marks_its_days_dirty_and_they_are_recomputed():
    # Given snapshots written through yesterday
    h = Harness()
    story(h)
    now = T0 + 8 * DAY + 3600
    write_daily_snapshots(h.stores, now)
    before = read_kpis(h.stores, now, start=day(T0), end=day(now)).as_dict()
    # When an event created three days ago arrives now (member 2 cancelled then)
    h.now = now
    h.deliver(se.subscription_event("customer.subscription.deleted", created=now - 3 * DAY, customer="cus_2",
                                    sub_id="sub_2", amount=9000, interval="year", status="canceled"))
    # Then the days from its day are dirty, and the report already counts the churn
    store = h.stores.kpi_snapshots
    assert store.state().dirty_from == day(now - 3 * DAY)
    after = read_kpis(h.stores, now, start=day(T0), end=day(now)).as_dict()
    assert before["movements"]["eur"]["churned"] == 0 and after["movements"]["eur"]["churned"] == 750
    live = compute_kpis(history_from_stores(h.stores), day(T0), day(now), "UTC", now).as_dict()
    assert after == live
    # And the next run rewrites those days (and only those) and clears the mark
    run = write_daily_snapshots(h.stores, now)
    assert run.days_written == 3 and not store.dirty
    assert read_kpis(h.stores, now, start=day(T0), end=day(now)).as_dict() == live


def test_only_an_event_from_a_closed_day_marks_days_dirty():
    # Given a subscriber, on day 6 of the story
    h = Harness()
    subscribe(h, 1, T0, amount=900)
    h.now = T0 + 6 * DAY + 60
    # When an event of today arrives, then one from yesterday
    h.deliver(se.subscription_event(created=T0 + 6 * DAY + 30, customer="cus_1", sub_id="sub_1", amount=1200))
    marks_after_today = set(h.stores.kpi_snapshots.dirty)
    h.deliver(se.subscription_event(created=T0 + 5 * DAY, customer="cus_1", sub_id="sub_1", amount=1100))
    # Then only yesterday's is marked
    assert marks_after_today == set()
    assert h.stores.kpi_snapshots.state().dirty_from == day(T0 + 5 * DAY)
