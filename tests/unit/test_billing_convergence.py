"""Subscription snapshots converge to one state whatever the delivery order or duplication."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membergate.domain.billing import (
    SubscriptionRecord,
    SubscriptionSnapshot,
    grant_status,
    merge_checkout_gate,
    merge_snapshot,
    needs_read_back,
    read_back_at,
)
from membergate.domain.model import CheckoutGate, EntitlementState, OnGraceEnd, Plan, PlanGrant, PriceLine

pytestmark = pytest.mark.unit

DAY = 86_400
T0 = 1_800_000_000
PLAN = Plan("pln_1", "Monthly", ("price_m",), (PlanGrant("com_1", "role_1"),), 3, OnGraceEnd.CANCEL, 0)


def snap(created: int, status: str, n: int = 0, **kw) -> SubscriptionSnapshot:
    return SubscriptionSnapshot("sub_1", "cus_1", status, created, f"evt_{created}_{status}_{n}", **kw)


def empty() -> SubscriptionRecord:
    return SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1")


def fold(snaps) -> SubscriptionRecord:
    record = empty()
    for s in snaps:
        record = merge_snapshot(record, s)
    return record


STATUSES = ["incomplete", "trialing", "active", "past_due", "unpaid", "canceled", "paused"]
snapshots = st.builds(
    snap,
    created=st.integers(T0, T0 + 10),
    status=st.sampled_from(STATUSES),
    n=st.integers(0, 2),
    cancel_at_period_end=st.booleans(),
    current_period_end=st.sampled_from([None, T0 + 30 * DAY, T0 + 60 * DAY]),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(snapshots, min_size=1, max_size=8), data=st.data())
def test_merge_any_order_with_duplicates_same_state_as_in_order(events, data):
    # Given a customer's snapshots delivered in order
    in_order = fold(sorted(events, key=lambda s: s.order_key))
    # When the same snapshots arrive shuffled, some of them twice
    shuffled = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=4))))
    replayed = fold(shuffled)
    # Then the stored state, the grace start and the entitlement are identical
    assert replayed.latest == in_order.latest
    assert replayed.past_due_since == in_order.past_due_since
    for now in (T0, T0 + 2 * DAY, T0 + 5 * DAY, T0 + 90 * DAY):
        assert grant_status(replayed, PLAN, now) == grant_status(in_order, PLAN, now)


def test_merge_older_snapshot_never_overwrites_newer():
    # Given a subscription cancelled at T0+10
    record = fold([snap(T0 + 10, "canceled")])
    # When a stale "active" snapshot from T0 arrives late
    record = merge_snapshot(record, snap(T0, "active"))
    # Then it stays cancelled
    assert record.status == "canceled"


def test_merge_same_second_tie_follows_lifecycle_precedence():
    # Given active and past_due snapshots carrying the same created second
    a, b = snap(T0, "active"), snap(T0, "past_due")
    # When they arrive in either order
    # Then past_due (later in the lifecycle) wins both times
    assert fold([a, b]).status == fold([b, a]).status == "past_due"
    # And canceled beats everything in the same second
    assert fold([snap(T0, "canceled"), snap(T0, "active")]).status == "canceled"


def test_grace_starts_at_first_past_due_of_current_run():
    # Given active, then two past_due snapshots, delivered newest first
    record = fold([snap(T0 + 200, "past_due"), snap(T0 + 100, "past_due"), snap(T0, "active")])
    # Then grace starts at the first past_due's created
    assert record.past_due_since == T0 + 100
    # And a recovery followed by a new failure starts a new grace period
    record = fold([snap(T0 + 300, "active"), snap(T0 + 400, "past_due"), snap(T0 + 100, "past_due")])
    assert record.past_due_since == T0 + 400


def test_grant_status_maps_every_status():
    # Given one snapshot per status, with a 3-day grace plan
    def state(status, **kw):
        record = fold([snap(T0, status, **kw)])
        return grant_status(record, PLAN, T0 + 60).state

    # Then each maps as the billing rules say
    assert state("trialing") is EntitlementState.ACTIVE
    assert state("active") is EntitlementState.ACTIVE
    assert state("past_due") is EntitlementState.GRACE
    assert state("incomplete") is EntitlementState.PENDING
    for ended in ("unpaid", "canceled", "incomplete_expired", "paused"):
        assert state(ended) is EntitlementState.ENDED
    assert state("active", pause_collection=True) is EntitlementState.ENDED


def test_grant_status_grace_ends_after_plan_grace_days():
    # Given a subscription past_due since T0 on a 3-day grace plan
    record = fold([snap(T0, "past_due")])
    # Then it is in grace until T0+3d, ended from then on
    assert grant_status(record, PLAN, T0 + 3 * DAY - 1).state is EntitlementState.GRACE
    assert grant_status(record, PLAN, T0 + 3 * DAY - 1).until == T0 + 3 * DAY
    assert grant_status(record, PLAN, T0 + 3 * DAY).state is EntitlementState.ENDED


def test_grant_status_cancel_at_period_end_keeps_access_until_period_end():
    # Given an active subscription set to cancel at its period end
    end = T0 + 30 * DAY
    record = fold([snap(T0, "active", cancel_at_period_end=True, current_period_end=end)])
    # Then access lasts until the period end, then ends
    assert grant_status(record, PLAN, end - 1) .until == end
    assert grant_status(record, PLAN, end - 1).state is EntitlementState.ACTIVE
    assert grant_status(record, PLAN, end).state is EntitlementState.ENDED


def test_checkout_gate_unpaid_session_grants_nothing_until_async_success():
    # Given a subscription created by our checkout, active, but paid by SEPA (unpaid session)
    record = merge_snapshot(empty(), snap(T0, "active", member_id_hint="mbr_1"))
    record = merge_checkout_gate(record, CheckoutGate.AWAITING)
    # Then nothing is granted yet
    assert grant_status(record, PLAN, T0).state is EntitlementState.PENDING
    # When the async payment succeeds (in any order relative to the unpaid completion)
    paid = merge_checkout_gate(record, CheckoutGate.PAID)
    late_unpaid = merge_checkout_gate(paid, CheckoutGate.AWAITING)
    # Then access is active and a late "unpaid" cannot take it back
    assert grant_status(paid, PLAN, T0).state is EntitlementState.ACTIVE
    assert grant_status(late_unpaid, PLAN, T0).state is EntitlementState.ACTIVE


def test_checkout_gate_async_failure_ends_access():
    record = merge_checkout_gate(merge_snapshot(empty(), snap(T0, "active", member_id_hint="m")), CheckoutGate.FAILED)
    assert grant_status(record, PLAN, T0).state is EntitlementState.ENDED


@pytest.mark.parametrize("creation_id, switch_id", [("evt_a", "evt_z"), ("evt_z", "evt_a")])
@pytest.mark.parametrize("order", ["creation first", "switch first"])
def test_tier_switch_in_the_creations_second_wins_whatever_the_event_ids(creation_id, switch_id, order):
    from membergate.domain.stripe_events import parse_event, subscription_snapshot
    from tests.support import stripe_events as se

    # Given a subscription created on Basic and switched to Plus within the same second
    # (Stripe's created counts seconds; event ids are random, so either may sort first)
    created = se.subscription_event("customer.subscription.created", created=T0, event_id=creation_id, price_id="price_basic")
    switched = se.subscription_event("customer.subscription.updated", created=T0, event_id=switch_id, price_id="price_plus")
    snaps = [subscription_snapshot(parse_event(e)) for e in (created, switched)]
    # When both are merged, in either delivery order
    record = fold(snaps if order == "creation first" else reversed(snaps))
    # Then the update is the state kept: the member is on Plus
    assert record.latest is not None and record.latest.price_ids == ("price_plus",)


# -- same-second ties settled by reading the subscription back (domain/billing.py tie rule) -----------


def update(created: int, price: str, event_id: str, **kw) -> SubscriptionSnapshot:
    line = PriceLine(price, "eur", 500, 1, "month", 1)
    return SubscriptionSnapshot("sub_1", "cus_1", kw.pop("status", "active"), created, event_id, lines=(line,),
                                sequence=1, **kw)


def test_needs_read_back_switch_and_switch_back_in_one_second_is_a_tie():
    # Given a switch to Plus and a switch back to Basic in the same second, same status
    switch, back = update(T0, "price_plus", "evt_q"), update(T0, "price_basic", "evt_k")
    # Then the pair needs a read, whichever is seen first
    assert needs_read_back(switch, back) and needs_read_back(back, switch)


@pytest.mark.parametrize("other, why", [
    (update(T0, "price_plus", "evt_other"), "same content (a redelivery under another id)"),
    (update(T0 + 1, "price_basic", "evt_k"), "another second"),
    (update(T0, "price_basic", "evt_k", status="past_due"), "another status rank"),
    (replace(update(T0, "price_basic", "evt_k"), sequence=0), "the creation's event"),
    (replace(update(T0, "price_basic", "evt_k"), subscription_id="sub_2"), "another subscription"),
])
def test_needs_read_back_orderable_or_equal_pair_is_no_tie(other, why):
    # Given a switch to Plus, and another snapshot the rule already orders or that says the same
    switch = update(T0, "price_plus", "evt_q")
    # Then no read is needed
    assert not needs_read_back(switch, other), why
    assert not needs_read_back(other, switch), why


@pytest.mark.parametrize("field, value", [("cancel_at_period_end", True), ("current_period_end", T0 + 30 * DAY),
                                          ("cancel_at", T0 + DAY), ("pause_collection", True),
                                          ("status", "incomplete_expired")])
def test_needs_read_back_any_content_difference_is_a_tie(field, value):
    # Given two same-second updates that differ in one field only (canceled and incomplete_expired share a rank)
    a = update(T0, "price_plus", "evt_a", status="canceled")
    b = replace(a, event_id="evt_b", **{field: value})
    # Then the pair is a tie to settle with a read
    assert needs_read_back(a, b)


def test_read_back_at_is_after_the_tied_second_even_when_read_within_it():
    # Given a tie in second T0
    # Then a read made in that second counts from the next one, and a later read from when it was made
    assert read_back_at(T0, T0) == T0 + 1
    assert read_back_at(T0, T0 - 5) == T0 + 1  # a clock behind Stripe's does not put the read before the tie
    assert read_back_at(T0, T0 + 90) == T0 + 90


prices = st.sampled_from(["price_basic", "price_plus", "price_pro"])
same_second_updates = st.builds(
    update,
    created=st.just(T0),
    price=prices,
    event_id=st.text("abcdefxyz0123456789", min_size=4, max_size=8).map(lambda s: f"evt_{s}"),
    cancel_at_period_end=st.booleans(),
    current_period_end=st.sampled_from([None, T0 + 30 * DAY, T0 + 31 * DAY]),
)


@settings(max_examples=300, deadline=None)
@given(a=same_second_updates, b=same_second_updates, truth=same_second_updates,
       now=st.integers(T0 - 3, T0 + 120), data=st.data())
def test_two_same_second_updates_plus_their_read_converge_on_the_read_in_any_order(a, b, truth, now, data):
    # Given two updates of one subscription in the same second, and what Stripe answers when read back
    read = replace(truth, created=read_back_at(T0, now), event_id=f"stripe-read-{read_back_at(T0, now)}")
    # When the three arrive in any order, some twice
    seen = [a, b, read]
    record = fold(data.draw(st.permutations(seen + data.draw(st.lists(st.sampled_from(seen), max_size=3)))))
    # Then the state kept is Stripe's answer, and the tie rule is symmetric and ignores equal snapshots
    assert record.latest == read
    assert needs_read_back(a, b) == needs_read_back(b, a)
    assert needs_read_back(a, b) == (a.content != b.content)
    assert not needs_read_back(a, replace(a, event_id="evt_redelivered"))
