"""The KPI engine's worked example: a small history whose every number is computed by hand below.

History (all times UTC, 2026 unless said; grace is 3 days; the period is 2026-02-01..2026-02-28):

  member   currency  story                                                          MRR start -> end
  alice    EUR       monthly 900 since 2025-12-10; upgrades to monthly 1,500 on 02-14   900 -> 1,500
  bob      EUR       monthly 900 since 01-05; moves to annual 9,600 on 02-10            900 ->   800
  frank    EUR       monthly 900 since 2025-12-01; cancels on 02-12                     900 ->     0
  henry    EUR       monthly 900 2025-11-03..2025-12-10, comes back monthly 900 02-22     0 ->   900
  dave     EUR       trial from 02-03, converts to monthly 900 on 02-17                   0 ->   900
  erin     EUR       trial from 02-05, cancelled 02-19 (never paid)                       0 ->     0
  ivy      EUR       annual 10,000 from 02-25 (10,000 / 12 = 833 1/3)                     0 ->   833 1/3
  mia      EUR       trial from 02-26, still trialing on 02-28                            0 ->     0
  carol    JPY       monthly 3,000 since 01-20; past due 02-20, paid again 02-21      3,000 -> 3,000
  gina     JPY       monthly 5,000 since 01-02; past due 02-08, grace ends 02-11,     5,000 ->     0
                     cancelled 02-15
  jack     JPY       monthly 2,000 since 01-10; past due 02-27 (grace until 03-02)    2,000 -> 2,000

MRR at the start (end of 01-31): EUR 900 + 900 + 900 = 2,700; JPY 3,000 + 5,000 + 2,000 = 10,000.
MRR at the end (end of 02-28): EUR 1,500 + 800 + 900 + 900 + 833 1/3 = 4,933 1/3 -> 4,933;
  JPY 3,000 + 2,000 = 5,000 (jack is in grace and still counts). ARR = 12 x exact MRR:
  EUR 12 x 4,933 1/3 = 59,200 (not 12 x 4,933 = 59,196: rounding only at the end); JPY 60,000.
Movements EUR: new = dave 900 + ivy 833 1/3 = 1,733 1/3 -> 1,733; expansion = alice 600;
  contraction = bob 900 -> 800 = 100 (a monthly 900 -> annual 9,600 is a contraction of 100);
  churned = frank 900; reactivation = henry 900.
  Check: 2,700 + 1,733 1/3 + 600 + 900 - 100 - 900 = 4,933 1/3.
Movements JPY: churned = gina 5,000 (involuntary: her grace ran out on 02-11); carol's failed
  payment recovered inside grace, so she never stopped counting: no movement. 10,000 - 5,000 = 5,000.
Members at the end: paying = alice, bob, dave, henry, ivy, carol, jack = 7; in grace = jack = 1;
  trialing = mia = 1 (erin's trial ended unpaid).
Churn: at risk = paying at the start (alice, bob, frank, carol, gina, jack = 6) + new (dave, ivy)
  + reactivated (henry) = 9. Churned: frank (voluntary), gina (involuntary) = 2.
  logo rate = 2/9 = 0.2222; voluntary 1/9 = 0.1111; involuntary 1/9 = 0.1111.
  Revenue churn rate = (churned + contraction) / MRR at start: EUR (900 + 100) / 2,700 = 0.3704;
  JPY 5,000 / 10,000 = 0.5. Churned MRR: voluntary EUR 900; involuntary JPY 5,000.
ARPU = MRR at the end / members paying in that currency: EUR 4,933 1/3 / 5 = 986 2/3 -> 987;
  JPY 5,000 / 2 = 2,500.
Monthly logo churn = 2/9 x (365/12) / 28 days = 365/1,512 = 0.2414.
LTV = ARPU / monthly logo churn: EUR 986 2/3 x 1,512/365 = 1,491,840/365 = 4,087.23 -> 4,087;
  JPY 2,500 x 1,512/365 = 10,356.16 -> 10,356.
NRR (members paying at the start only): EUR (1,500 + 800 + 0) / 2,700 = 0.8519;
  JPY (3,000 + 0 + 2,000) / 10,000 = 0.5.
Conversion (funnel days 02-01 and 02-15; 01-31 is outside): views 40 + 60 = 100, bound 10 + 20
  = 30, checkouts 6 + 9 = 15, paid 4 + 5 = 9: view->bound 0.3, bound->checkout 0.5,
  checkout->paid 0.6, view->paid 0.09. Trials that ended in February: dave (paid), erin (not):
  trial->paid = 1/2 = 0.5 (mia's has not ended).
Cohorts (month of the first paid day; paying at the end of each month up to 02-28):
  2025-11 henry: [1 (Nov), 0 (Dec), 0 (Jan), 1 (Feb)]; 2025-12 alice, frank: [2, 2, 1];
  2026-01 bob, carol, gina, jack: [4, 3]; 2026-02 dave, ivy: [2].
One-time revenue in February: a pass EUR 2,500 (02-09; the 01-30 pass is outside);
  lifetime: EUR 30,000 (02-26). Neither is in MRR.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timezone
from fractions import Fraction

import pytest

from membergate.domain.kpis import (
    FunnelDay,
    History,
    OneTimePayment,
    SubscriptionObservation,
    compute_kpis,
    daily_snapshot,
    daily_snapshots,
    days_touched,
    snapshot_from_json,
    snapshot_to_json,
    summarise,
)
from membergate.domain.model import PriceLine

pytestmark = pytest.mark.unit

FROM, TO = date(2026, 2, 1), date(2026, 2, 28)
NOW = int(datetime(2026, 3, 5, tzinfo=timezone.utc).timestamp())


def at(month: int, day: int, hour: int = 12, year: int = 2026) -> int:
    return int(datetime(year, month, day, hour, tzinfo=timezone.utc).timestamp())


def line(amount: int, currency: str = "eur", interval: str = "month") -> tuple[PriceLine, ...]:
    return (PriceLine(f"price_{currency}_{interval}_{amount}", currency, amount, 1, interval, 1),)


def obs(member: str, created: int, status: str, lines=(), sub: str | None = None) -> SubscriptionObservation:
    return SubscriptionObservation(
        member_id=member,
        subscription_id=sub or f"sub_{member}",
        created=created,
        status=status,
        lines=lines,
        event_id=f"evt_{member}_{created}_{status}",
    )


def worked_history() -> History:
    eur900, jpy = line(900), (lambda amount: line(amount, "jpy"))
    observations = [
        obs("alice", at(12, 10, year=2025), "active", eur900),
        obs("alice", at(2, 14), "active", line(1500)),
        obs("bob", at(1, 5), "active", eur900),
        obs("bob", at(2, 10), "active", line(9600, interval="year")),
        obs("frank", at(12, 1, year=2025), "active", eur900),
        obs("frank", at(2, 12), "canceled", eur900),
        obs("henry", at(11, 3, year=2025), "active", eur900, sub="sub_henry_1"),
        obs("henry", at(12, 10, year=2025), "canceled", eur900, sub="sub_henry_1"),
        obs("henry", at(2, 22), "active", eur900, sub="sub_henry_2"),
        obs("dave", at(2, 3), "trialing", eur900),
        obs("dave", at(2, 17), "active", eur900),
        obs("erin", at(2, 5), "trialing", eur900),
        obs("erin", at(2, 19), "canceled", eur900),
        obs("ivy", at(2, 25), "active", line(10000, interval="year")),
        obs("mia", at(2, 26), "trialing", eur900),
        obs("carol", at(1, 20), "active", jpy(3000)),
        obs("carol", at(2, 20, 8), "past_due", jpy(3000)),
        obs("carol", at(2, 21, 8), "active", jpy(3000)),
        obs("gina", at(1, 2), "active", jpy(5000)),
        obs("gina", at(2, 8, 10), "past_due", jpy(5000)),
        obs("gina", at(2, 15), "canceled", jpy(5000)),
        obs("jack", at(1, 10), "active", jpy(2000)),
        obs("jack", at(2, 27, 9), "past_due", jpy(2000)),
    ]
    payments = [
        OneTimePayment("kim", "pi_kim", at(2, 9), "eur", 2500, "pass"),
        OneTimePayment("lou", "pi_lou", at(2, 26), "eur", 30000, "lifetime"),
        OneTimePayment("kim", "pi_kim_jan", at(1, 30), "eur", 2500, "pass"),
    ]
    funnel = [
        FunnelDay(date(2026, 1, 31), views=100, bound=50, checkouts=20, paid=10),
        FunnelDay(date(2026, 2, 1), views=40, bound=10, checkouts=6, paid=4),
        FunnelDay(date(2026, 2, 15), views=60, bound=20, checkouts=9, paid=5),
    ]
    return History(tuple(observations), tuple(payments), tuple(funnel))


@pytest.fixture(scope="module")
def report() -> dict:
    # Given the worked history; When February's KPIs are computed in UTC
    return compute_kpis(worked_history(), FROM, TO, "UTC", NOW).as_dict()


def test_kpis_worked_example_mrr_and_arr_per_currency(report):
    # Then MRR is measured at the end of 'to', rounded once, ARR from the exact MRR
    assert report["mrr_start"] == {"eur": 2700, "jpy": 10000}
    assert report["mrr"] == {"eur": 4933, "jpy": 5000}
    assert report["arr"] == {"eur": 59200, "jpy": 60000}


def test_kpis_worked_example_movements_per_currency(report):
    assert report["movements"] == {
        "eur": {"new": 1733, "expansion": 600, "contraction": 100, "churned": 900, "reactivation": 900},
        "jpy": {"new": 0, "expansion": 0, "contraction": 0, "churned": 5000, "reactivation": 0},
    }


def test_kpis_worked_example_member_counts(report):
    assert (report["paying_members"], report["grace_members"], report["trialing_members"]) == (7, 1, 1)


def test_kpis_worked_example_churn_split_voluntary_involuntary(report):
    churn = report["churn"]
    assert churn["logo_rate"] == 0.2222
    assert churn["revenue_rate"] == {"eur": 0.3704, "jpy": 0.5}
    assert churn["voluntary"] == {"members": 1, "logo_rate": 0.1111, "mrr": {"eur": 900}}
    assert churn["involuntary"] == {"members": 1, "logo_rate": 0.1111, "mrr": {"jpy": 5000}}
    # The period is one calendar month, so its only month equals the whole
    assert [m["month"] for m in churn["by_month"]] == ["2026-02"]
    assert churn["by_month"][0]["logo_rate"] == 0.2222


def test_kpis_worked_example_arpu_ltv_nrr(report):
    assert report["arpu"] == {"eur": 987, "jpy": 2500}
    assert report["monthly_logo_churn_rate"] == 0.2414
    assert report["ltv"] == {"eur": 4087, "jpy": 10356}
    assert report["nrr"] == {"eur": 0.8519, "jpy": 0.5}


def test_kpis_worked_example_conversion_funnel_and_trials(report):
    assert report["conversion"] == {
        "views": 100,
        "bound": 30,
        "checkouts": 15,
        "paid": 9,
        "view_to_bound": 0.3,
        "bound_to_checkout": 0.5,
        "checkout_to_paid": 0.6,
        "view_to_paid": 0.09,
        "by_plan": {},  # computed from the stored counters by services/kpis.py (read_kpis), not from History
        "trials_ended": 2,
        "trials_converted": 1,
        "trial_to_paid": 0.5,
    }


def test_kpis_worked_example_retention_cohorts(report):
    assert report["cohorts"] == [
        {"month": "2025-11", "size": 1, "retained": [1, 0, 0, 1]},
        {"month": "2025-12", "size": 2, "retained": [2, 2, 1]},
        {"month": "2026-01", "size": 4, "retained": [4, 3]},
        {"month": "2026-02", "size": 2, "retained": [2]},
    ]


def test_kpis_worked_example_one_time_and_lifetime_revenue_apart_from_mrr(report):
    assert report["one_time_revenue"] == {"eur": 2500}
    assert report["lifetime_revenue"] == {"eur": 30000}


def test_kpis_worked_example_exact_movements_reconcile_mrr():
    # Given the worked history; When computed; Then start + movements = end, exactly
    result = compute_kpis(worked_history(), FROM, TO, "UTC", NOW)
    for currency in ("eur", "jpy"):
        assert result.mrr_start[currency] + result.movements[currency].net == result.mrr.get(currency, 0)
    assert result.mrr["eur"] == Fraction(14800, 3)


def test_kpis_from_snapshots_equal_kpis_from_events():
    # Given a snapshot stored for every day of February
    history = worked_history()
    stored = [daily_snapshot(history, day, "UTC", NOW) for day in reversed(list(_days(FROM, TO)))]
    # When the report is read from the snapshots
    from_snapshots = summarise(history, stored, FROM, TO, "UTC", NOW)
    # Then it is the report computed from every event
    assert from_snapshots == compute_kpis(history, FROM, TO, "UTC", NOW)


def test_kpis_snapshots_survive_a_json_round_trip_exactly():
    # Given February's snapshots stored as JSON (as a table would hold them)
    history = worked_history()
    stored = [json.dumps(snapshot_to_json(daily_snapshot(history, d, "UTC", NOW))) for d in _days(FROM, TO)]
    # When read back
    loaded = [snapshot_from_json(json.loads(text)) for text in stored]
    # Then nothing was lost: the report is the exact one (833 1/3 stays a third)
    assert summarise(history, loaded, FROM, TO, "UTC", NOW) == compute_kpis(history, FROM, TO, "UTC", NOW)
    assert json.loads(stored[-1])["mrr"] == {"eur": "14800/3", "jpy": "5000"}


def test_kpis_summarise_without_a_days_snapshot_says_which_day_to_compute():
    history = worked_history()
    stored = [daily_snapshot(history, FROM, "UTC", NOW)]
    with pytest.raises(ValueError, match="2026-02-02"):
        summarise(history, stored, FROM, date(2026, 2, 2), "UTC", NOW)


def test_kpis_late_backdated_event_changes_only_the_days_it_touches():
    # Given snapshots stored for February, and then an event that arrives on 03-05 but that Stripe
    # created on 02-05: nina had subscribed (monthly 700) back then
    history = worked_history()
    before = {d: daily_snapshot(history, d, "UTC", NOW) for d in _days(FROM, TO)}
    late = obs("nina", at(2, 5), "active", line(700))
    amended = History(history.observations + (late,), history.payments, history.funnel)
    # When the days it touches are recomputed (in one pass)
    touched = days_touched(late.created, NOW, "UTC")
    recomputed = {s.day: s for s in daily_snapshots(amended, touched, "UTC", NOW)}
    after = {d: recomputed.get(d) or before[d] for d in _days(FROM, TO)}
    # Then the days before 02-05 are unchanged, 02-05 onwards changed, and the period agrees
    assert touched[0] == date(2026, 2, 5) and touched[-1] == date(2026, 3, 5)
    assert all(after[d] == before[d] for d in _days(FROM, date(2026, 2, 4)))
    assert all(after[d] != before[d] for d in _days(date(2026, 2, 5), TO))
    assert after[date(2026, 2, 5)].movements["eur"].new == 700
    assert after[TO].mrr["eur"] == before[TO].mrr["eur"] + 700
    assert all(after[d] == daily_snapshot(amended, d, "UTC", NOW) for d in _days(FROM, TO))
    report = compute_kpis(amended, FROM, TO, "UTC", NOW).as_dict()
    assert report["movements"]["eur"]["new"] == 1733 + 700 and report["mrr"]["eur"] == 4933 + 700


def test_kpis_order_and_duplicates_of_events_do_not_matter():
    # Given the same history shuffled, with every event delivered twice
    history = worked_history()
    doubled = list(history.observations) * 2
    random.Random(7).shuffle(doubled)
    shuffled = History(tuple(doubled), history.payments[::-1] * 2, history.funnel[::-1] * 2)
    # Then the numbers are the same
    assert compute_kpis(shuffled, FROM, TO, "UTC", NOW) == compute_kpis(history, FROM, TO, "UTC", NOW)


def test_kpis_past_due_after_grace_counts_nowhere():
    # Given a member past due since 02-08 10:00 with 3 days of grace
    history = History((obs("gina", at(1, 2), "active", line(5000, "jpy")), obs("gina", at(2, 8, 10), "past_due", line(5000, "jpy"))))
    # When measured on 02-10 (in grace) and 02-11 (grace over at 10:00)
    in_grace = compute_kpis(history, date(2026, 2, 10), date(2026, 2, 10), "UTC", NOW)
    after = compute_kpis(history, date(2026, 2, 11), date(2026, 2, 11), "UTC", NOW)
    # Then she is paying and in grace, then nowhere, and her MRR is an involuntary churn
    assert (in_grace.paying_members, in_grace.grace_members, in_grace.mrr) == (1, 1, {"jpy": 5000})
    assert (after.paying_members, after.grace_members, after.trialing_members, after.mrr) == (0, 0, 0, {})
    assert after.churn.involuntary_members == 1 and after.movements["jpy"].churned == 5000


def test_kpis_days_follow_the_creators_time_zone():
    # Given a member who subscribed at 23:30 UTC on 01-31, which is 00:30 on 02-01 in Paris
    history = History((obs("zoe", int(datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc).timestamp()), "active", line(900)),))
    # When January 31 is measured in UTC and in Paris
    utc = compute_kpis(history, date(2026, 1, 31), date(2026, 1, 31), "UTC", NOW)
    paris = compute_kpis(history, date(2026, 1, 31), date(2026, 1, 31), "Europe/Paris", NOW)
    paris_feb = compute_kpis(history, date(2026, 2, 1), date(2026, 2, 1), "Europe/Paris", NOW)
    # Then she is new on 01-31 in UTC but on 02-01 in Paris
    assert utc.movements["eur"].new == 900 and utc.mrr == {"eur": 900}
    assert paris.movements == {} and paris.mrr == {}
    assert paris_feb.movements["eur"].new == 900


def test_kpis_today_is_measured_at_now_not_at_midnight():
    # Given a subscription that Stripe will only report at 18:00 (not yet seen at 12:00)
    history = History((obs("zoe", at(2, 3, 9), "active", line(900)), obs("zoe", at(2, 3, 18), "canceled", line(900))))
    # When today's KPIs are read at noon
    noon = compute_kpis(history, date(2026, 2, 3), date(2026, 2, 3), "UTC", at(2, 3, 12))
    # Then the member is paying now
    assert noon.mrr == {"eur": 900} and noon.paying_members == 1


def test_kpis_to_before_from_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="from <= to"):
        compute_kpis(worked_history(), TO, FROM, "UTC", NOW)


def _days(start: date, end: date):
    day = start
    while day <= end:
        yield day
        day = date.fromordinal(day.toordinal() + 1)
