"""The member's story through the services (fakes at every port): pay, keep, fail, grace, removal."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membergate.domain.errors import PermanentError, RetryableError
from membergate.domain.model import AccessState, EntitlementState, OnGraceEnd, OnRevoke
from tests.support import stripe_events as se
from tests.support.harness import DAY, ROLE, T0, VIP_ROLE, Harness

pytestmark = pytest.mark.unit

ACTIVE, GRACE, ENDED, PENDING = (EntitlementState.ACTIVE, EntitlementState.GRACE, EntitlementState.ENDED,
                                 EntitlementState.PENDING)


def paid_signup(h: Harness, *, created: int = T0) -> None:
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=created, member_id="mbr_1"),
        se.checkout_completed(created=created, member_id="mbr_1"),
    )
    h.run_access()


def test_signup_paid_checkout_grants_role_in_guild():
    # Given a member with Discord bound
    h = Harness()
    # When their subscription and paid checkout arrive
    paid_signup(h)
    # Then the plan is active and they are in the guild with the plan's role
    assert h.states() == {"pln_monthly": ACTIVE}
    assert h.roles() == {ROLE}
    assert h.access().state is AccessState.GRANTED


def test_signup_checkout_event_before_subscription_event_same_result():
    h = Harness()
    h.member()
    h.deliver(
        se.checkout_completed(created=T0, member_id="mbr_1"),
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
    )
    h.run_access()
    assert h.states() == {"pln_monthly": ACTIVE}
    assert h.roles() == {ROLE}


def test_signup_subscription_alone_waits_for_checkout_completion():
    # Given only the subscription created by our checkout has arrived
    h = Harness()
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"))
    h.run_access()
    # Then nothing is granted until checkout.session.completed says it is paid
    assert h.states() == {"pln_monthly": PENDING}
    assert h.roles() is None


def test_sepa_unpaid_session_grants_nothing_until_async_payment_succeeds():
    h = Harness()
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1", payment_status="unpaid"),
    )
    h.run_access()
    assert h.states() == {"pln_monthly": PENDING}
    assert h.roles() is None
    h.at(T0 + 3 * DAY).deliver(
        se.checkout_completed(created=T0 + 3 * DAY, member_id="mbr_1", type_="checkout.session.async_payment_succeeded")
    )
    h.run_access()
    assert h.states() == {"pln_monthly": ACTIVE}
    assert h.roles() == {ROLE}


def test_sepa_async_payment_failure_never_grants():
    h = Harness()
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1", payment_status="unpaid"),
        se.checkout_completed(created=T0 + 10, member_id="mbr_1", type_="checkout.session.async_payment_failed"),
    )
    h.run_access()
    assert h.states() == {"pln_monthly": ENDED}
    assert h.roles() is None


def test_failed_renewal_grace_reminders_then_removal_and_cancellation():
    # Given a paying member
    h = Harness()
    paid_signup(h)
    # (welcomed once on first access)
    assert len(h.dm_texts()) == 1 and h.dm_texts()[0].startswith("Welcome to")
    # When the renewal fails (past_due at T0+30d)
    failed_at = T0 + 30 * DAY
    h.at(failed_at).deliver(se.subscription_event(created=failed_at, member_id="mbr_1", status="past_due"))
    h.run_access()
    # Then they keep access in grace, and the sweep sends the "grace started" reminder once
    assert h.states() == {"pln_monthly": GRACE}
    assert h.roles() == {ROLE}
    h.at(failed_at + 60).sweep()
    h.at(failed_at + 120).sweep()
    assert len(h.dm_texts()) == 2 and "didn't go through" in h.dm_texts()[1]
    # And a day before grace ends, the "ending" reminder
    h.at(failed_at + 2 * DAY + 60).sweep()
    assert len(h.dm_texts()) == 3 and "Reminder" in h.dm_texts()[2]
    # When grace ends
    h.at(failed_at + 3 * DAY + 1).sweep()
    # Then the member is told how to come back, loses the role, and Stripe stops charging
    assert h.roles() == set()
    assert "welcome back" in h.dm_texts()[3] and "/join/pln_monthly" in h.dm_texts()[3]
    assert h.billing.cancelled == ["sub_1"]
    assert h.access().state is AccessState.REVOKED
    # And a later sweep does nothing more
    h.at(failed_at + 4 * DAY).sweep()
    assert len(h.dm_texts()) == 4 and h.billing.cancelled == ["sub_1"]


def test_grace_end_keep_retrying_leaves_subscription_and_says_attempts_continue():
    h = Harness(on_grace_end=OnGraceEnd.KEEP_RETRYING)
    paid_signup(h)
    failed_at = T0 + 30 * DAY
    h.at(failed_at).deliver(se.subscription_event(created=failed_at, member_id="mbr_1", status="past_due"))
    h.at(failed_at + 3 * DAY).sweep()
    assert h.billing.cancelled == []
    assert "keep trying" in h.dm_texts()[-1]
    assert h.roles() == set()
    # When a later retry succeeds, access comes back by itself
    h.at(failed_at + 5 * DAY).deliver(se.subscription_event(created=failed_at + 5 * DAY, member_id="mbr_1", status="active"))
    h.run_access()
    assert h.roles() == {ROLE}


def test_recovered_payment_during_grace_keeps_access_and_no_removal():
    h = Harness()
    paid_signup(h)
    failed_at = T0 + 30 * DAY
    h.at(failed_at).deliver(se.subscription_event(created=failed_at, member_id="mbr_1", status="past_due"))
    h.at(failed_at + DAY).deliver(se.subscription_event(created=failed_at + DAY, member_id="mbr_1", status="active"))
    h.at(failed_at + 4 * DAY).sweep()
    assert h.states() == {"pln_monthly": ACTIVE}
    assert h.roles() == {ROLE}
    assert h.billing.cancelled == []


def test_cancel_at_period_end_keeps_access_until_period_end():
    h = Harness()
    paid_signup(h)
    end = T0 + 30 * DAY
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", cancel_at_period_end=True,
                                                 period_start=T0, period_end=end))
    h.run_access()
    h.at(end - 60).sweep()
    assert h.roles() == {ROLE}
    h.at(end + 1).sweep()
    assert h.roles() == set()
    assert "ended as planned" in h.dm_texts()[-1]


def test_revoke_kick_community_dm_first_then_kick():
    h = Harness(on_revoke=OnRevoke.KICK)
    paid_signup(h)
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", status="canceled"))
    h.run_access()
    kinds = [a[0] for a in h.connector.actions]
    assert kinds[-2:] == ["dm", "kick"]
    assert h.roles() is None


def test_revoke_with_dms_closed_still_removes_role_and_records_why():
    h = Harness()
    paid_signup(h)
    h.connector.closed_dms.add("555555555555555555")
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", status="canceled"))
    h.run_access()
    assert h.roles() == set()
    assert ("failed", "dms_closed") in h.stores.messages.items.values()


def test_tier_upgrade_swaps_roles_without_gap():
    h = Harness()
    paid_signup(h)
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", price_id="price_vip"))
    h.run_access()
    assert h.roles() == {VIP_ROLE}
    assert h.states() == {"pln_vip": ACTIVE}


def test_subscription_made_outside_checkout_waits_for_identity_then_grants():
    # Given a subscription created in the Stripe dashboard for a price a plan sells
    h = Harness()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, customer="cus_dash", sub_id="sub_dash"))
    h.run_access()
    member = h.stores.members.find_by_customer("cus_dash")
    # Then a member exists from the customer, entitled, waiting for an identity
    assert member is not None and member.origin == "stripe"
    assert h.states(member.id) == {"pln_monthly": ACTIVE}
    assert h.stores.access.get(member.id, "com_1").state is AccessState.AWAITING_IDENTITY


def test_price_no_plan_sells_is_recorded_as_ignored_with_reason():
    h = Harness()
    body = se.subscription_event(created=T0, price_id="price_unknown", customer="cus_x")
    assert h.deliver(body) == ["ignored"]
    assert h.stores.members.find_by_customer("cus_x") is None


def test_duplicate_event_is_applied_once():
    h = Harness()
    h.member()
    event = se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1")
    h.stores.ledger.record_received(_entry(event))
    assert h.deliver(event, event) == ["processed", "duplicate"]


def test_dispatch_missing_permission_goes_to_visible_failed_state():
    h = Harness()
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.queue.work = h.queue.work[-1:]  # the converge after the paid checkout
    h.connector.fail_next = [PermanentError("give the bot Manage Roles", "missing_permissions")]
    h.run_access()
    record = h.access()
    assert record.state is AccessState.FAILED
    assert record.reason.startswith("missing_permissions")


def test_dispatch_transient_failure_retries_with_backoff_then_succeeds():
    h = Harness()
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.queue.work = h.queue.work[-1:]  # the converge after the paid checkout
    h.connector.fail_next = [RetryableError("discord 502")]
    work, _ = h.queue.work.pop(0)
    from membergate.ports import encode_work
    from membergate.services.access_worker import handle_access_message

    handle_access_message(encode_work(work), dispatcher=h.dispatcher, queue=h.queue, max_attempts=3, now=h.now, jitter=0.5)
    # Then the work is queued again, later, with its attempt counted, and the reason is visible
    retried, delay = h.queue.work[0]
    assert retried.attempt == 1 and delay >= 10
    assert h.access().state is AccessState.RETRYING and "discord 502" in h.access().reason
    h.run_access()
    assert h.roles() == {ROLE}
    assert h.access().state is AccessState.GRANTED


def test_dispatch_gives_up_after_max_attempts_with_reason():
    h = Harness()
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.queue.work = h.queue.work[-1:]  # the converge after the paid checkout
    h.connector.fail_next = [RetryableError("discord 502")] * 3
    h.run_access()
    assert h.access().state is AccessState.FAILED
    assert "gave up after 3 attempts" in h.access().reason


def test_stale_converge_work_cannot_undo_newer_state():
    # Given a grant then a cancellation, whose work items are run in reverse order
    h = Harness()
    paid_signup(h)
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", status="canceled"))
    h.queue.work.reverse()
    h.run_access()
    # Then the member ends without the role whatever the order
    assert h.roles() == set()


def test_old_api_version_events_give_same_result():
    h = Harness()
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1", api_version=se.OLD),
        se.checkout_completed(created=T0, member_id="mbr_1", api_version=se.OLD),
    )
    h.run_access()
    assert h.roles() == {ROLE}


def _entry(event):
    from membergate.domain.model import LedgerEntry

    return LedgerEntry(event["id"], event["type"], "received", event["created"], T0)


STORY = [
    ("customer.subscription.created", 0, "active"),
    ("checkout.session.completed", 0, None),
    ("invoice.paid", 1, None),
    ("customer.subscription.updated", 30 * DAY, "past_due"),
    ("invoice.payment_failed", 30 * DAY, None),
    ("customer.subscription.updated", 31 * DAY, "past_due"),
    ("customer.subscription.updated", 32 * DAY, "active"),
    ("customer.subscription.updated", 62 * DAY, "past_due"),
]


def story_events(api_version):
    out = []
    for i, (kind, offset, status) in enumerate(STORY):
        created = T0 + offset
        if kind.startswith("customer.subscription"):
            e = se.subscription_event(kind, created=created, member_id="mbr_1", status=status, api_version=api_version,
                                      event_id=f"evt_{i}")
        elif kind.startswith("checkout"):
            e = se.checkout_completed(created=created, member_id="mbr_1", event_id=f"evt_{i}", api_version=api_version)
        else:
            e = se.invoice_event(kind, created=created, api_version=api_version)
            e["id"] = f"evt_{i}"
        out.append(e)
    return out


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(len(STORY))), dups=st.lists(st.integers(0, len(STORY) - 1), max_size=4),
       api_version=st.sampled_from([se.NEW, se.OLD, None]))
def test_any_order_and_duplicates_converge_to_in_order_result(order, dups, api_version):
    events = story_events(api_version)
    in_order = Harness()
    in_order.member()
    in_order.at(T0 + 63 * DAY).deliver(*events)
    shuffled = Harness()
    shuffled.member()
    replay = [events[i] for i in order] + [events[i] for i in dups]
    shuffled.at(T0 + 63 * DAY).deliver(*[json.loads(json.dumps(e)) for e in replay])
    for moment in (T0 + 63 * DAY, T0 + 64 * DAY, T0 + 66 * DAY):
        assert in_order.at(moment).states() == shuffled.at(moment).states()
    a = in_order.stores.subscriptions.get("mbr_1", "sub_1")
    b = shuffled.stores.subscriptions.get("mbr_1", "sub_1")
    assert (a.latest, a.past_due_since, a.checkout_gate) == (b.latest, b.past_due_since, b.checkout_gate)


def test_grace_end_rechecks_stripe_and_spares_a_member_whose_payment_went_through():
    # Given a member in grace whose successful retry's webhook has not arrived (yet)
    h = Harness()
    paid_signup(h)
    failed_at = T0 + 30 * DAY
    h.at(failed_at).deliver(se.subscription_event(created=failed_at, member_id="mbr_1", status="past_due"))
    h.billing.remote["sub_1"] = se.subscription(created=failed_at, member_id="mbr_1", status="active")
    # When grace ends
    h.at(failed_at + 3 * DAY + 1).sweep()
    # Then Stripe was asked first, nothing is cancelled, and the member keeps the role
    assert h.billing.fetched == ["sub_1"]
    assert h.billing.cancelled == []
    assert h.roles() == {ROLE}
    assert h.states() == {"pln_monthly": ACTIVE}


def test_grace_end_cancels_when_stripe_confirms_still_past_due():
    h = Harness()
    paid_signup(h)
    failed_at = T0 + 30 * DAY
    h.at(failed_at).deliver(se.subscription_event(created=failed_at, member_id="mbr_1", status="past_due"))
    h.billing.remote["sub_1"] = se.subscription(created=failed_at, member_id="mbr_1", status="past_due")
    h.at(failed_at + 3 * DAY + 1).sweep()
    assert h.billing.cancelled == ["sub_1"]
    assert h.roles() == set()


def test_moving_to_a_price_no_plan_sells_ends_the_old_plan_access():
    # Given a paying member
    h = Harness()
    paid_signup(h)
    # When the subscription is switched (say in the dashboard) to a price no plan sells
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", price_id="price_unsold"))
    h.run_access()
    # Then the old plan's entitlement shows ended and the role goes
    assert h.states() == {"pln_monthly": ENDED}
    assert h.roles() == set()


def test_message_work_reports_no_access_change():
    # Given a member in grace whose reminder is queued
    h = Harness()
    paid_signup(h)
    failed_at = T0 + 30 * DAY
    h.at(failed_at).deliver(se.subscription_event(created=failed_at, member_id="mbr_1", status="past_due"))
    from membergate.services.lifecycle import run_lifecycle
    from membergate.ports import encode_work
    from membergate.services.access_worker import handle_access_message

    run_lifecycle(stores=h.stores, billing=h.billing, access_queue=h.queue, now=failed_at + 60)
    notify = next(w for w, _ in h.queue.work if w.kind == "notify")
    # When the dispatcher sends it
    result = handle_access_message(encode_work(notify), dispatcher=h.dispatcher, queue=h.queue, max_attempts=3,
                                   now=failed_at + 60)
    # Then the DM went out, and the result claims no access state (so no AccessGranted metric)
    assert result.actions == ("message:grace_started",) and result.state is None
