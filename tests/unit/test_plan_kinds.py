"""Passes and lifetime access: a paid payment-mode session becomes a grant with its window."""

from __future__ import annotations

import itertools

import pytest

from membergate.domain.errors import ConflictError, InvalidRequestError
from membergate.domain.grants import OneTimeGrant, one_time_status, windows
from membergate.domain.model import CheckoutGate, EntitlementState, OnGraceEnd, Plan, PlanGrant, PlanKind
from membergate.services.admin import create_plan
from membergate.services.checkout import CheckoutRequest, start_checkout
from tests.support import stripe_events as se
from tests.support.harness import DAY, ROLE, T0, Harness

pytestmark = pytest.mark.unit

ACTIVE, ENDED, PENDING = EntitlementState.ACTIVE, EntitlementState.ENDED, EntitlementState.PENDING
PASS = Plan("pln_pass", "30-day challenge", ("price_pass",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
            PlanKind.PASS, 30)
LIFETIME = Plan("pln_life", "Founder, for life", ("price_life",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
                PlanKind.LIFETIME)


def grant(gid: str, paid_at: int, *, kind: PlanKind = PlanKind.PASS, days: int | None = 30,
          gate: CheckoutGate = CheckoutGate.PAID, ended: str = "") -> OneTimeGrant:
    return OneTimeGrant(gid, "mbr_1", "pln_pass" if kind is PlanKind.PASS else "pln_life", kind, paid_at,
                        days * DAY if days else None, gate, ended)


# --- the rules (pure) ------------------------------------------------------------------------


def test_passes_bought_early_chain_instead_of_overlapping_in_any_order():
    # Given a 30-day pass paid on day 0 and another paid on day 20
    first, second = grant("cs_a", T0), grant("cs_b", T0 + 20 * DAY)
    # When windows are derived, whatever order the grants are listed in
    for order in itertools.permutations([first, second]):
        spans = windows(order)
        # Then the second starts when the first ends: 60 days in all, none lost
        assert spans == {"cs_a": (T0, T0 + 30 * DAY), "cs_b": (T0 + 30 * DAY, T0 + 60 * DAY)}


@pytest.mark.parametrize(
    ("g", "at", "state", "reason"),
    [
        (grant("cs", T0), T0 + 29 * DAY, ACTIVE, ""),
        (grant("cs", T0), T0 + 30 * DAY, ENDED, "pass_expired"),
        (grant("cs", T0, kind=PlanKind.LIFETIME, days=None), T0 + 9000 * DAY, ACTIVE, ""),
        (grant("cs", T0, gate=CheckoutGate.AWAITING), T0 + DAY, PENDING, "awaiting_payment"),
        (grant("cs", T0, gate=CheckoutGate.FAILED), T0 + DAY, ENDED, "payment_failed"),
        (grant("cs", T0, kind=PlanKind.LIFETIME, days=None, ended="refunded"), T0 + DAY, ENDED, "refunded"),
    ],
    ids=["pass-running", "pass-over", "lifetime", "sepa-settling", "sepa-failed", "refunded"],
)
def test_one_time_status(g, at, state, reason):
    status = one_time_status(g, windows([g]).get(g.grant_id), at)
    assert (status.state, status.reason) == (state, reason)


# --- through the services ------------------------------------------------------------------------


def harness_with_kinds() -> Harness:
    h = Harness()
    h.stores.catalog.add_plan(PASS)
    h.stores.catalog.add_plan(LIFETIME)
    return h


def test_paid_pass_grants_access_until_its_end_then_removes_it_with_a_receipt():
    # Given a member who pays a 30-day pass
    h = harness_with_kinds()
    h.member()
    h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_pass"))
    h.run_access()
    # Then they have the role until day 30
    assert h.states() == {"pln_pass": ACTIVE}
    assert h.roles() == {ROLE}
    until = next(e.until for e in h.stores.entitlements.for_member("mbr_1"))
    assert until == T0 + 30 * DAY
    # When the sweep runs at the pass's end
    h.at(T0 + 30 * DAY).sweep()
    # Then access ends, the role goes and they were told how to come back
    assert h.states() == {"pln_pass": ENDED}
    assert h.roles() in (set(), None)
    assert any("pass" in text for text in h.dm_texts())


def test_pass_paid_by_sepa_grants_nothing_until_the_payment_succeeds():
    h = harness_with_kinds()
    h.member()
    h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_pass", payment_status="unpaid"))
    assert h.states() == {"pln_pass": PENDING}
    h.deliver(se.payment_completed(created=T0 + DAY, member_id="mbr_1", plan_id="pln_pass",
                                   type_="checkout.session.async_payment_succeeded"))
    h.run_access()
    assert h.states() == {"pln_pass": ACTIVE}
    assert h.roles() == {ROLE}


def test_duplicate_and_reordered_payment_events_make_one_grant():
    h = harness_with_kinds()
    h.member()
    paid = se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_pass", event_id="evt_paid")
    h.deliver(paid, paid)
    assert len(h.stores.grants.for_member("mbr_1")) == 1


def test_lifetime_access_is_kept_when_a_subscription_to_the_same_role_ends():
    # Given a member with a monthly subscription and a lifetime purchase, both granting the role
    h = harness_with_kinds()
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1"),
        se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_life"),
    )
    h.run_access()
    # When the subscription is cancelled
    h.deliver(se.subscription_event("customer.subscription.deleted", created=T0 + DAY, member_id="mbr_1",
                                    status="canceled"))
    h.run_access()
    # Then the lifetime grant keeps the role: one source ending never removes another's access
    assert h.states() == {"pln_monthly": ENDED, "pln_life": ACTIVE}
    assert h.roles() == {ROLE}


def test_payment_session_without_a_membergate_plan_is_ignored_with_the_reason():
    h = harness_with_kinds()
    h.member()
    assert h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id=None)) == ["ignored"]
    assert "membergate_plan_id" in h.stores.ledger.get(next(iter(h.stores.ledger.entries))).detail


def checkout(h: Harness, plan_id: str):
    request = CheckoutRequest("mbr_1", plan_id, None, "https://m.example/ok", "https://m.example/no", waiver=True)
    return start_checkout(request, stores=h.stores, billing=h.billing, now=h.now)


def test_checkout_of_a_pass_is_a_payment_mode_session():
    h = harness_with_kinds()
    h.member()
    checkout(h, "pln_pass")
    (params,) = h.billing.session_params.values()
    assert params["mode"] == "payment"


def test_checkout_of_lifetime_already_held_is_refused():
    h = harness_with_kinds()
    h.member()
    h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_life"))
    with pytest.raises(ConflictError, match="for life"):
        checkout(h, "pln_life")


@pytest.mark.parametrize(("kind", "days", "field"), [("pass", None, "access_days"), ("lifetime", 30, "access_days"),
                                                     ("subscription", 30, "access_days")])
def test_create_plan_checks_access_days_against_the_kind(kind, days, field):
    h = harness_with_kinds()
    with pytest.raises(InvalidRequestError) as raised:
        create_plan(h.stores, name="x", stripe_price_ids=["price_x"], grants=[("com_1", None)], grace_days=3,
                    on_grace_end="cancel", now=T0, kind=kind, access_days=days)
    assert raised.value.field == field


def test_checkout_of_an_archived_plan_is_refused_and_charges_nothing():
    # Given a pass the creator archived
    from membergate.services.admin import archive_plan

    h = harness_with_kinds()
    h.member()
    archive_plan(h.stores, "pln_pass", h.now)
    # When a member tries to buy it
    with pytest.raises(ConflictError, match="no longer sold"):
        checkout(h, "pln_pass")
    # Then no Checkout Session was created
    assert h.billing.session_params == {}
