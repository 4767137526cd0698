"""A failed payment learnt of after its grace ran out (a webhook outage): grace runs to a minimum notice first."""

from __future__ import annotations

import itertools

import pytest

from membergate.config import ProcessorSettings, SettingsError
from membergate.domain.billing import (
    GRACE_MIN_NOTICE,
    SubscriptionRecord,
    SubscriptionSnapshot,
    grace_ends_at,
    grant_status,
    merge_snapshot,
)
from membergate.domain.lifecycle import GRACE_ENDING, GRACE_STARTED, decide
from membergate.domain.model import EntitlementState, OnGraceEnd, Plan, PlanGrant

pytestmark = pytest.mark.unit

DAY = 86_400
HOUR = 3_600
T0 = 1_800_000_000
FAILED = T0 + 30 * DAY
PLAN = Plan("pln_1", "Club", ("price_m",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, 0)


def _snap(status: str, created: int, event: str) -> SubscriptionSnapshot:
    return SubscriptionSnapshot("sub_1", "cus_1", status, created, event, current_period_end=created + 30 * DAY)


def _fold(*steps: tuple[SubscriptionSnapshot, int | None]) -> SubscriptionRecord:
    record = SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1")
    for snapshot, delivered in steps:
        floor = None if delivered is None else delivered + GRACE_MIN_NOTICE
        record = merge_snapshot(record, snapshot, removal_floor=floor)
    return record


ACTIVE = _snap("active", T0, "evt_a")
PAST_DUE = _snap("past_due", FAILED, "evt_p")
RETRY_FAILED = _snap("past_due", FAILED + DAY, "evt_r")


def test_grace_ends_at_failure_delivered_on_time_is_the_plans_grace():
    # Given a failure delivered a minute after it happened
    record = _fold((ACTIVE, T0), (PAST_DUE, FAILED + 60))
    # When grace is computed
    # Then it is the plan's 3 days from Stripe's time (the day of notice ends long before)
    assert grace_ends_at(record, PLAN) == FAILED + 3 * DAY


def test_grace_ends_at_failure_delivered_after_grace_ran_out_is_a_day_after_delivery():
    # Given a failure first delivered 5 days late (a webhook outage)
    delivered = FAILED + 5 * DAY
    record = _fold((ACTIVE, T0), (PAST_DUE, delivered))
    # When its status is read at delivery and just before and after the day of notice
    # Then the member is in grace until a day after the delivery, and only then ended
    assert grant_status(record, PLAN, delivered).state is EntitlementState.GRACE
    assert grant_status(record, PLAN, delivered).until == delivered + DAY
    assert grant_status(record, PLAN, delivered + DAY - 1).state is EntitlementState.GRACE
    ended = grant_status(record, PLAN, delivered + DAY)
    assert (ended.state, ended.reason) == (EntitlementState.ENDED, "grace_expired")


def test_grace_ends_at_counts_from_the_first_delivery_of_the_failure_whatever_the_order():
    # Given the failure and a failed retry of the same run, delivered late, in every order, one redelivered later
    steps = [(PAST_DUE, FAILED + 4 * DAY), (RETRY_FAILED, FAILED + 4 * DAY + HOUR), (PAST_DUE, FAILED + 9 * DAY)]
    ends = set()
    for order in itertools.permutations(steps):
        # When they are folded in that order
        ends.add(grace_ends_at(_fold((ACTIVE, T0), *order), PLAN))
    # Then grace always ends a day after the run was first known, never moved by a redelivery
    assert ends == {FAILED + 5 * DAY}


def test_grace_ends_at_a_recovery_forgets_the_old_failures_floor():
    # Given a late failure, then a recovery, then a new failure on time a month later
    later = _snap("past_due", FAILED + 30 * DAY, "evt_p2")
    record = _fold((PAST_DUE, FAILED + 5 * DAY), (_snap("active", FAILED + 6 * DAY, "evt_ok"), FAILED + 6 * DAY),
                   (later, FAILED + 30 * DAY + 60))
    # When the new failure's grace is computed
    # Then it is the plan's grace alone, and the old floor is no longer kept
    assert grace_ends_at(record, PLAN) == FAILED + 33 * DAY
    assert [c for c, _ in record.grace_floors] == [FAILED + 30 * DAY]


def test_decide_late_failure_sends_both_grace_messages_at_once_then_cancels_after_the_notice():
    # Given a failure first delivered 5 days late
    delivered = FAILED + 5 * DAY
    record = _fold((ACTIVE, T0), (PAST_DUE, delivered))
    # When the sweep runs right after the delivery
    first = decide([record], {PLAN.id: PLAN}, delivered + 60)
    # Then the payment-failed message and the last notice are both due, naming the new end, and nothing is cancelled
    assert [(r.kind, r.grace_ends_at) for r in first.reminders] == [(GRACE_STARTED, delivered + DAY),
                                                                     (GRACE_ENDING, delivered + DAY)]
    assert first.cancellations == () and first.next_due_at == delivered + DAY
    # When the sweep runs once the day of notice is over
    last = decide([record], {PLAN.id: PLAN}, delivered + DAY)
    # Then the subscription is cancelled (grace over), with no more reminders
    assert last.reminders == () and [c.subscription_id for c in last.cancellations] == ["sub_1"]


def test_decide_snapshot_merged_without_a_delivery_time_keeps_the_plans_grace():
    # Given a past_due snapshot read back from Stripe (no delivery floor)
    record = _fold((ACTIVE, None), (PAST_DUE, None))
    # When the sweep runs after the plan's grace
    decision = decide([record], {PLAN.id: PLAN}, FAILED + 3 * DAY)
    # Then grace is over as the plan says
    assert decision.reminders == () and len(decision.cancellations) == 1


ENV = {"MEMBERSHIP_TABLE": "m", "LEDGER_TABLE": "l", "ACCESS_QUEUE_URL": "q"}


@pytest.mark.parametrize(("value", "expected"), [(None, 24), ("48", 48), ("1", 1)])
def test_processor_settings_grace_min_notice_defaults_to_a_day(value, expected):
    # Given the variable unset or set
    env = ENV | ({"GRACE_MIN_NOTICE_HOURS": value} if value else {})
    # When the settings are read
    # Then the notice is in hours, 24 by default
    assert ProcessorSettings.from_env(env).grace_min_notice_hours == expected


@pytest.mark.parametrize("value", ["0", "337", "-3", "a day"])
def test_processor_settings_grace_min_notice_out_of_range_is_refused_naming_the_variable(value):
    # Given a notice of no time, more than two weeks, or not a number
    # When the settings are read
    # Then they are refused with the variable's name
    with pytest.raises(SettingsError, match="GRACE_MIN_NOTICE_HOURS"):
        ProcessorSettings.from_env(ENV | {"GRACE_MIN_NOTICE_HOURS": value})
