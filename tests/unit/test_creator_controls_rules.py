"""Creator controls, the pure rules: manual grants in the union, access codes, `until` always filled."""

from __future__ import annotations

import pytest

from membergate.domain.billing import SubscriptionRecord, SubscriptionSnapshot, derive_entitlements, grant_status
from membergate.domain.controls import (
    AccessCode,
    actor_of,
    code_refusal,
    end_grant,
    extend_grant,
    manual_grant,
)
from membergate.domain.errors import ConflictError, InvalidRequestError
from membergate.domain.grants import OneTimeGrant, statuses, windows
from membergate.domain.model import CheckoutGate, EntitlementState, OnGraceEnd, Plan, PlanGrant, PlanKind

pytestmark = pytest.mark.unit

T0 = 1_800_000_000
DAY = 86_400
PLAN = Plan("pln_m", "Monthly", ("price_m",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0)
PASS = Plan("pln_p", "Pass", ("price_p",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0, PlanKind.PASS, 30)


def _one_time(grants, now):
    return [(g.plan_id, s) for g, s in statuses(grants, now)]


def test_manual_grant_never_chains_with_a_bought_pass_of_the_same_plan():
    # Given a 30-day pass bought at T0 and a 10-day manual grant of the same plan given at T0 + 5 days
    bought = OneTimeGrant("cs_1", "mbr_1", "pln_p", PlanKind.PASS, T0, 30 * DAY, CheckoutGate.PAID)
    given = manual_grant("mgr_1", "mbr_1", PASS, 10, "guest", T0 + 5 * DAY)
    # When windows are derived
    spans = windows([bought, given])
    # Then each runs from its own start: the manual grant does not push the pass later, nor wait for it
    assert spans == {"cs_1": (T0, T0 + 30 * DAY), "mgr_1": (T0 + 5 * DAY, T0 + 15 * DAY)}


def test_ending_a_manual_grant_keeps_access_a_subscription_still_gives():
    # Given an active subscription and a manual grant of the same plan, then the grant ended
    record = SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_m", latest=SubscriptionSnapshot(
        "sub_1", "cus_1", "active", T0, "evt_1", current_period_end=T0 + 30 * DAY))
    ended = end_grant(manual_grant("mgr_1", "mbr_1", PLAN, None, "guest", T0))
    # When entitlements are derived
    (entitlement,) = derive_entitlements([record], {"pln_m": PLAN}, {"com_1": "role"}, T0 + DAY, _one_time([ended], T0 + DAY))
    # Then the subscription's access stays, until its period end
    assert ended.ended_reason == "revoked"
    assert (entitlement.state, entitlement.until) == (EntitlementState.ACTIVE, T0 + 30 * DAY)


def test_extend_grant_counts_from_its_end_or_from_now_and_refuses_what_it_cannot_extend():
    grant = manual_grant("mgr_1", "mbr_1", PLAN, 3, "x", T0)
    assert extend_grant(grant, 2, T0 + DAY).access_seconds == 5 * DAY
    assert extend_grant(grant, 2, T0 + 10 * DAY).access_seconds == 12 * DAY
    with pytest.raises(ConflictError):
        extend_grant(manual_grant("mgr_2", "mbr_1", PLAN, None, "x", T0), 1, T0)
    with pytest.raises(ConflictError):
        extend_grant(end_grant(grant), 1, T0)
    with pytest.raises(ConflictError):  # paid through Stripe: refunds end it, not the admin API
        extend_grant(OneTimeGrant("cs_1", "mbr_1", "pln_p", PlanKind.PASS, T0, DAY), 1, T0)
    with pytest.raises(InvalidRequestError):
        manual_grant("mgr_3", "mbr_1", PLAN, 0, "x", T0)


@pytest.mark.parametrize(
    ("code", "plan_id", "now", "refusal"),
    [
        (None, "pln_m", T0, "code_invalid"),
        (AccessCode("acc_1", "pln_m", 7, 2, 1, T0 + 10, T0), "pln_m", T0, ""),
        (AccessCode("acc_1", "pln_m", 7, 2, 2, None, T0), "pln_m", T0, "code_used"),
        (AccessCode("acc_1", "pln_m", 7, 2, 0, T0 + 10, T0), "pln_m", T0 + 10, "code_expired"),
        (AccessCode("acc_1", "pln_x", 7, 2, 0, None, T0), "pln_m", T0, "code_other_plan"),
    ],
    ids=["unknown", "ok", "used-up", "expired", "other-plan"],
)
def test_code_refusal(code, plan_id, now, refusal):
    assert code_refusal(code, plan_id, now) == refusal


def test_actor_is_a_fingerprint_never_the_token():
    assert actor_of("s3cret-token").startswith("token:") and "s3cret" not in actor_of("s3cret-token")
    assert actor_of("s3cret-token") == actor_of("s3cret-token") != actor_of("other")
    assert actor_of("") == "admin"


@pytest.mark.parametrize(
    ("snapshot", "now", "state", "until"),
    [
        (SubscriptionSnapshot("sub", "cus", "active", T0, "e", current_period_end=T0 + 30 * DAY), T0, "active", T0 + 30 * DAY),
        (SubscriptionSnapshot("sub", "cus", "trialing", T0, "e", current_period_end=T0 + 7 * DAY), T0, "active", T0 + 7 * DAY),
        (SubscriptionSnapshot("sub", "cus", "active", T0, "e", cancel_at_period_end=True, current_period_end=T0 + 9 * DAY),
         T0, "active", T0 + 9 * DAY),
        (SubscriptionSnapshot("sub", "cus", "past_due", T0, "e", current_period_end=T0 + 30 * DAY), T0 + DAY, "grace", T0 + 3 * DAY),
    ],
    ids=["renewing-period-end", "trial-end", "cancelling-period-end", "grace-end"],
)
def test_entitlement_until_is_filled_whenever_the_end_is_known(snapshot, now, state, until):
    record = SubscriptionRecord("sub", "mbr_1", "cus", "pln_m", latest=snapshot)
    status = grant_status(record, PLAN, now)
    assert (status.state.value, status.until) == (state, until)


def test_until_is_null_only_for_lifetime_and_open_ended_manual_grants():
    lifetime = OneTimeGrant("cs_l", "mbr_1", "pln_m", PlanKind.LIFETIME, T0, None)
    forever = manual_grant("mgr_f", "mbr_1", PLAN, None, "x", T0)
    pass_ = OneTimeGrant("cs_p", "mbr_1", "pln_p", PlanKind.PASS, T0, 30 * DAY)
    found = {g.grant_id: s.until for g, s in statuses([lifetime, forever, pass_], T0 + DAY)}
    assert found == {"cs_l": None, "mgr_f": None, "cs_p": T0 + 30 * DAY}
