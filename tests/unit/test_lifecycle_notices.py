"""The pure notice rules of domain/lifecycle.py: renewal, legal annual, trial ending, cancellation."""

from __future__ import annotations

from calendar import timegm

import pytest

from membergate.domain.billing import SubscriptionRecord, SubscriptionSnapshot, merge_snapshot
from membergate.domain.lifecycle import DAY, decide, legal_notice_window, months_before
from membergate.domain.model import OnGraceEnd, Plan, PlanGrant, PriceLine

NOW = 1_800_000_000
MONTH_LINE = PriceLine("price_m", "eur", 1500, 1, "month", 1)
YEAR_LINE = PriceLine("price_y", "eur", 15000, 1, "year", 1)
WEEK_LINE = PriceLine("price_w", "eur", 500, 1, "week", 1)


def _plan(renewal: int | None = 7, trial: int | None = 3) -> Plan:
    return Plan(
        "pln_1", "Club", ("price_m", "price_y", "price_w"), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, 0,
        renewal_notice_days=renewal, trial_notice_days=trial,
    )


def _record(status: str, period_end: int, line: PriceLine = MONTH_LINE, *, cancel: bool = False) -> SubscriptionRecord:
    snap = SubscriptionSnapshot(
        "sub_1", "cus_1", status, NOW - 10 * DAY, "evt_1", cancel_at_period_end=cancel,
        current_period_end=period_end, lines=(line,),
    )
    return merge_snapshot(SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1"), snap)


CASES = [
    # (name, record, plan, expected (kind, ends_at) due now, expected next due time)
    ("monthly, 8 days ahead: nothing yet", _record("active", NOW + 8 * DAY), _plan(), [], NOW + DAY),
    ("monthly, exactly 7 days ahead: the notice", _record("active", NOW + 7 * DAY), _plan(),
     [("renewal_notice", NOW + 7 * DAY)], None),
    ("monthly, 2 days ahead (sweep late): still told", _record("active", NOW + 2 * DAY), _plan(),
     [("renewal_notice", NOW + 2 * DAY)], None),
    ("plan with a 14-day notice", _record("active", NOW + 14 * DAY), _plan(renewal=14),
     [("renewal_notice", NOW + 14 * DAY)], None),
    ("plan without renewal notice", _record("active", NOW + 2 * DAY), _plan(renewal=None), [], None),
    ("weekly plan: the notice is capped at half the period", _record("active", NOW + 5 * DAY, WEEK_LINE), _plan(),
     [], NOW + 5 * DAY - 7 * DAY // 2),
    ("annual, 91 days ahead: legal notice not yet", _record("active", NOW + 91 * DAY, YEAR_LINE), _plan(),
     [], NOW + DAY),
    ("annual, 90 days ahead: the legal notice (3 months before)", _record("active", NOW + 90 * DAY, YEAR_LINE), _plan(),
     [("renewal_legal_notice", NOW + 90 * DAY)], NOW + 83 * DAY),
    ("annual, 31 days ahead (1 calendar month from Feb 15 is Jan 15): the legal notice on time",
     _record("active", NOW + 31 * DAY, YEAR_LINE), _plan(), [("renewal_legal_notice", NOW + 31 * DAY)], NOW + 24 * DAY),
    # Intended change (was "both notices", the legal one counted as on time): 6 days ahead is past
    # L215-1's window (at the latest one month before), so it still goes out but is marked late.
    ("annual, 6 days ahead: both notices, the legal one late", _record("active", NOW + 6 * DAY, YEAR_LINE), _plan(),
     [("renewal_notice", NOW + 6 * DAY), ("renewal_legal_notice:late", NOW + 6 * DAY)], None),
    ("annual, 30 days ahead (Feb 14 is under a month away): the legal notice late",
     _record("active", NOW + 30 * DAY, YEAR_LINE), _plan(), [("renewal_legal_notice:late", NOW + 30 * DAY)],
     NOW + 23 * DAY),
    ("trial, 4 days left: nothing yet", _record("trialing", NOW + 4 * DAY), _plan(), [], NOW + DAY),
    ("trial, 3 days left: trial ending, no renewal notice", _record("trialing", NOW + 3 * DAY), _plan(),
     [("trial_ending", NOW + 3 * DAY)], None),
    ("trial, plan setting of 5 days", _record("trialing", NOW + 5 * DAY), _plan(trial=5),
     [("trial_ending", NOW + 5 * DAY)], None),
    ("cancelled at period end: the receipt at once, no renewal notice", _record("active", NOW + 2 * DAY, cancel=True),
     _plan(), [("cancellation_receipt", NOW + 2 * DAY)], NOW + 2 * DAY),
    ("past_due past its grace: no notice (the subscription is being cancelled)", _record("past_due", NOW + 2 * DAY),
     _plan(), [], None),
]


@pytest.mark.parametrize("name,record,plan,expected,next_due", CASES, ids=[c[0] for c in CASES])
def test_decide_notices_table(name, record, plan, expected, next_due):
    # Given a subscription record and its plan (from the table)
    # When the pure rules look at it now
    decision = decide([record], {plan.id: plan}, NOW)
    # Then exactly the expected notices are due, keyed by the period end they announce
    got = [(r.kind + (":late" if r.late else ""), r.ends_at) for r in decision.reminders]
    assert got == expected
    for reminder in decision.reminders:
        if reminder.ends_at is not None:
            assert reminder.period == f"sub_1:{reminder.ends_at}"
    if next_due is not None:
        assert decision.next_due_at == next_due


def test_decide_renewal_notice_new_period_new_key():
    # Given the notice for one period, then the subscription renewed (a new period end)
    first = decide([_record("active", NOW + 7 * DAY)], {"pln_1": _plan()}, NOW).reminders
    renewed = _record("active", NOW + 37 * DAY)
    # When the rules look 30 days later
    later = decide([renewed], {"pln_1": _plan()}, NOW + 30 * DAY).reminders
    # Then each period has its own notice key: one message per period
    assert [r.period for r in first] == [f"sub_1:{NOW + 7 * DAY}"]
    assert [r.period for r in later] == [f"sub_1:{NOW + 37 * DAY}"]


def test_decide_uncancelled_after_cancellation_taken_back():
    # Given a subscription cancelled at period end, then the cancellation taken back
    end = NOW + 20 * DAY
    cancelled = _record("active", end, cancel=True)
    resumed = merge_snapshot(
        cancelled,
        SubscriptionSnapshot("sub_1", "cus_1", "active", NOW - DAY, "evt_2", current_period_end=end, lines=(MONTH_LINE,)),
    )
    # When the rules look at it
    kinds = [(r.kind, r.period) for r in decide([resumed], {"pln_1": _plan()}, NOW).reminders]
    # Then the member is told the subscription continues, keyed like the receipt it takes back
    assert kinds == [("uncancelled", f"sub_1:{end}")]
    assert resumed.cancellation_ends == (end,)


def test_merge_cancellation_ends_independent_of_order():
    # Given a cancelling and a resuming snapshot of the same period
    end = NOW + 20 * DAY
    base = SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1")
    a = SubscriptionSnapshot("sub_1", "cus_1", "active", NOW - 2 * DAY, "evt_1", cancel_at_period_end=True, current_period_end=end)
    b = SubscriptionSnapshot("sub_1", "cus_1", "active", NOW - DAY, "evt_2", current_period_end=end)
    # When merged in either order
    one, two = merge_snapshot(merge_snapshot(base, a), b), merge_snapshot(merge_snapshot(base, b), a)
    # Then the same record results
    assert one == two and one.cancellation_ends == (end,)


def _utc(*parts: int) -> int:
    return timegm((*parts, 0)[:6])


LEGAL_WINDOWS = [
    # (name, renewal, time zone, expected window opening, expected window closing)
    ("May 31: three calendar months back is Feb 28 (90 days would be Mar 2)", _utc(2027, 5, 31, 8, 0, 0), "UTC",
     _utc(2027, 2, 28, 8, 0, 0), _utc(2027, 4, 30, 8, 0, 0)),
    ("May 31 of a leap year: Feb 29", _utc(2028, 5, 31, 8, 0, 0), "UTC",
     _utc(2028, 2, 29, 8, 0, 0), _utc(2028, 4, 30, 8, 0, 0)),
    ("Mar 15: Dec 15 of the year before", _utc(2027, 3, 15, 12, 0, 0), "UTC",
     _utc(2026, 12, 15, 12, 0, 0), _utc(2027, 2, 15, 12, 0, 0)),
    # 00:30 in Paris on Apr 1 (summer time, UTC+2) is Mar 31 22:30 UTC: counted in UTC it would open
    # on Dec 31; in Paris it opens on Jan 1 00:30 local (winter time, UTC+1), i.e. Dec 31 23:30 UTC.
    ("Paris, Apr 1 00:30 local: the months are Paris months", _utc(2027, 3, 31, 22, 30, 0), "Europe/Paris",
     _utc(2026, 12, 31, 23, 30, 0), _utc(2027, 2, 28, 23, 30, 0)),
]


@pytest.mark.parametrize("name,renewal,zone,opens,closes", LEGAL_WINDOWS, ids=[c[0] for c in LEGAL_WINDOWS])
def test_legal_notice_window_in_calendar_months_of_the_creators_time_zone(name, renewal, zone, opens, closes):
    # Given an annual renewal and the creator's time zone (from the table)
    # When the L215-1 window is computed
    window = legal_notice_window(renewal, zone)
    # Then it runs from three to one calendar months before, wall-clock time kept
    assert window == (opens, closes)


def test_decide_legal_notice_opens_at_three_calendar_months_not_90_days():
    # Given a yearly subscription renewing on May 31 (Feb 28 is 92 days before)
    renewal = _utc(2027, 5, 31, 8, 0, 0)
    record = _record("active", renewal, YEAR_LINE)
    plans = {"pln_1": _plan(renewal=None)}
    # When the rules look a second before Feb 28 08:00, then at it
    before = decide([record], plans, months_before(renewal, 3) - 1)
    at = decide([record], plans, months_before(renewal, 3))
    # Then nothing is due before, the sweep is told to come back then, and the notice is due then, on time
    assert before.reminders == () and before.next_due_at == months_before(renewal, 3)
    assert [(r.kind, r.late) for r in at.reminders] == [("renewal_legal_notice", False)]


def test_decide_legal_notice_in_paris_time_zone_opens_an_hour_later_than_in_utc():
    # Given a yearly renewal on Apr 1 00:30 Paris time, and the rules looking on Dec 31 23:00 UTC
    renewal = _utc(2027, 3, 31, 22, 30, 0)
    record = _record("active", renewal, YEAR_LINE)
    now = _utc(2026, 12, 31, 23, 0, 0)
    plans = {"pln_1": _plan(renewal=None)}
    # When counted in UTC and in the creator's Europe/Paris
    utc = decide([record], plans, now)
    paris = decide([record], plans, now, time_zone="Europe/Paris")
    # Then in UTC the window is open (Dec 31 22:30), in Paris not yet (Jan 1 00:30 local)
    assert [r.kind for r in utc.reminders] == ["renewal_legal_notice"]
    assert paris.reminders == () and paris.next_due_at == _utc(2026, 12, 31, 23, 30, 0)
