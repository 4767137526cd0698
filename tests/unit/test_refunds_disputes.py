"""Refunds, disputes and deleted customers: money coming back ends the grant it paid for."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from membergate.domain.errors import PermanentError, RetryableError
from membergate.domain.grants import OneTimeGrant, merge_dispute, merge_grant, one_time_status, windows
from membergate.domain.model import CheckoutGate, EntitlementState, OnGraceEnd, Plan, PlanGrant, PlanKind
from membergate.domain.stripe_events import HANDLED_EVENT_TYPES
from membergate.ports import PaidInvoice
from membergate.services.billing_events import BillingEventProcessor
from membergate.services.disputes import open_dispute_problems
from membergate.services.membership import current_view
from tests.support import stripe_events as se
from tests.support.billing_fakes import FakeAudit, FakePayments
from tests.support.harness import DAY, ROLE, T0, Harness

pytestmark = pytest.mark.unit

ACTIVE, ENDED = EntitlementState.ACTIVE, EntitlementState.ENDED
PASS = Plan("pln_pass", "30-day challenge", ("price_pass",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
            PlanKind.PASS, 30)
LIFETIME = Plan("pln_life", "Founder, for life", ("price_life",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
                PlanKind.LIFETIME)


def base(**kw) -> OneTimeGrant:
    return OneTimeGrant("cs_1", "mbr_1", "pln_life", PlanKind.LIFETIME, T0, None, CheckoutGate.PAID,
                        payment_intent="pi_1", **kw)


# --- the rules (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, ""),
        ({"ended_reason": "refunded"}, "refunded"),
        ({"dispute": "open"}, "dispute"),
        ({"dispute": "lost"}, "dispute"),
        ({"dispute": "won"}, ""),
        ({"dispute": "open", "dispute_policy": "keep"}, ""),
        ({"dispute": "lost", "dispute_policy": "keep"}, ""),
        ({"ended_reason": "customer_deleted", "dispute": "won"}, "customer_deleted"),
    ],
    ids=["paid", "refunded", "dispute-open", "dispute-lost", "dispute-won", "keep-open", "keep-lost", "deleted"],
)
def test_one_time_status_after_money_comes_back(fields, reason):
    # Given a lifetime grant with what refunds and disputes said about its payment
    g = base(**fields)
    # When its status is read
    status = one_time_status(g, windows([g]).get(g.grant_id), T0 + DAY)
    # Then it ends with the reason, or keeps access
    assert (status.state, status.reason) == ((ENDED, reason) if reason else (ACTIVE, ""))


def test_merge_dispute_moves_forward_only_in_any_order():
    for seen in itertools.permutations(["", "open", "won"]):
        result = ""
        for status in seen:
            result = merge_dispute(result, status)
        assert result == "won"
    assert merge_dispute("won", "open") == "won"
    assert merge_dispute("lost", "won") == merge_dispute("won", "lost") == "lost"


def test_merge_grant_is_order_independent_for_refunds_disputes_and_deletions():
    # Given every fact that events can say about one grant
    facts = [base(), base(dispute="open"), base(dispute="won"), base(ended_reason="refunded"),
             base(ended_reason="customer_deleted")]
    # When they are merged in every order
    results = set()
    for order in itertools.permutations(facts):
        merged = None
        for fact in order:
            merged = merge_grant(merged, fact)
        results.add(merged)
    # Then the stored grant is the same, ended by the refund
    assert len(results) == 1
    assert next(iter(results)).end_reason == "refunded"


def test_refund_and_dispute_events_are_handled_types():
    assert {"charge.refunded", "charge.dispute.created", "charge.dispute.closed", "customer.deleted"} <= HANDLED_EVENT_TYPES


# --- through the processor ---------------------------------------------------------------------


def bought(plan_id: str = "pln_pass", **kw) -> Harness:
    h = Harness(**kw)
    h.stores.catalog.add_plan(PASS)
    h.stores.catalog.add_plan(LIFETIME)
    h.member()
    h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id=plan_id))
    h.run_access()
    assert h.roles() == {ROLE}
    return h


@pytest.mark.parametrize("plan_id", ["pln_pass", "pln_life"])
def test_full_refund_ends_the_grant_and_removes_access(plan_id):
    # Given a member who bought a pass (or lifetime access)
    h = bought(plan_id)
    # When the creator refunds all of it
    assert h.at(T0 + DAY).deliver(se.charge_refunded(created=T0 + DAY, refunded=4900, plan_id=plan_id)) == ["processed"]
    h.run_access()
    # Then the grant ends with reason refunded and the role goes
    assert h.states() == {plan_id: ENDED}
    assert h.stores.grants.get("mbr_1", "cs_test_pay_1").end_reason == "refunded"
    assert h.roles() in (set(), None)


def test_partial_refund_changes_nothing():
    h = bought()
    assert h.at(T0 + DAY).deliver(se.charge_refunded(created=T0 + DAY, refunded=1000)) == ["processed"]
    h.run_access()
    assert h.states() == {"pln_pass": ACTIVE}
    assert h.roles() == {ROLE}
    assert h.stores.grants.get("mbr_1", "cs_test_pay_1").end_reason == ""


def test_dispute_revokes_by_default_alerts_the_creator_and_a_won_dispute_restores_access():
    # Given a member with lifetime access
    h = bought("pln_life")
    # When they dispute the payment
    created = h.at(T0 + DAY).processor.apply(json.dumps(se.dispute_event(created=T0 + DAY)), h.now)
    h.run_access()
    # Then access is revoked with reason dispute and the creator is told what to do
    assert h.states() == {"pln_life": ENDED}
    assert h.roles() in (set(), None)
    assert "Stripe dashboard" in created.alert
    # When the creator wins the dispute
    h.at(T0 + 20 * DAY).deliver(se.dispute_event("charge.dispute.closed", created=T0 + 20 * DAY, status="won"))
    h.run_access()
    # Then access comes back
    assert h.states() == {"pln_life": ACTIVE}
    assert h.roles() == {ROLE}


def test_dispute_lost_keeps_the_grant_ended_even_when_events_arrive_reversed():
    h = bought("pln_life")
    h.at(T0 + 20 * DAY).deliver(
        se.dispute_event("charge.dispute.closed", created=T0 + 20 * DAY, status="lost"),
        se.dispute_event(created=T0 + DAY),
    )
    h.run_access()
    assert h.states() == {"pln_life": ENDED}
    assert h.stores.grants.get("mbr_1", "cs_test_pay_1").dispute == "lost"


def test_keep_policy_leaves_access_during_a_dispute():
    # Given a deployment whose creator keeps access during disputes
    h = bought("pln_life")
    h.processor = BillingEventProcessor(h.stores, h.queue, dispute_policy="keep")
    # When a dispute opens
    outcome = h.processor.apply(json.dumps(se.dispute_event(created=T0 + DAY)), T0 + DAY)
    h.run_access()
    # Then access stays, and the creator is still alerted
    assert h.states() == {"pln_life": ACTIVE}
    assert outcome.alert


def test_unknown_dispute_policy_is_refused():
    with pytest.raises(ValueError, match="revoke, keep"):
        BillingEventProcessor(Harness().stores, Harness().queue, dispute_policy="maybe")


def test_customer_deleted_ends_that_customers_grants():
    h = bought("pln_life")
    assert h.at(T0 + DAY).deliver(se.customer_deleted(created=T0 + DAY)) == ["processed"]
    h.run_access()
    assert h.states() == {"pln_life": ENDED}
    assert h.stores.grants.get("mbr_1", "cs_test_pay_1").end_reason == "customer_deleted"


def test_refund_before_its_checkout_event_is_retried_not_lost():
    # Given a refund delivered before the checkout that made the grant
    h = Harness()
    h.stores.catalog.add_plan(PASS)
    h.member()
    refund = se.charge_refunded(created=T0 + DAY, refunded=4900)
    # When it is applied first
    with pytest.raises(RetryableError):
        h.deliver(refund)
    # Then it is not recorded as done, and applied after the checkout it ends the grant
    h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_pass"), refund)
    assert h.states() == {"pln_pass": ENDED}


def test_dispute_of_a_payment_no_grant_knows_is_ignored_with_the_reason():
    h = Harness()
    assert h.deliver(se.dispute_event(created=T0, payment_intent="pi_elsewhere")) == ["ignored"]
    assert "pi_elsewhere" in next(iter(h.stores.ledger.entries.values())).detail


@pytest.mark.parametrize(("value", "expected"), [(None, "revoke"), ("keep", "keep"), ("revoke", "revoke")])
def test_processor_settings_dispute_policy_defaults_to_revoke(value, expected):
    from membergate.config import ProcessorSettings

    env = {"MEMBERSHIP_TABLE": "m", "LEDGER_TABLE": "l", "ACCESS_QUEUE_URL": "q"} | (
        {"DISPUTE_POLICY": value} if value else {})
    assert ProcessorSettings.from_env(env).dispute_policy == expected


def test_processor_settings_refuse_an_unknown_dispute_policy_naming_the_variable():
    from membergate.config import ProcessorSettings, SettingsError

    env = {"MEMBERSHIP_TABLE": "m", "LEDGER_TABLE": "l", "ACCESS_QUEUE_URL": "q", "DISPUTE_POLICY": "refund"}
    with pytest.raises(SettingsError, match="DISPUTE_POLICY must be revoke or keep"):
        ProcessorSettings.from_env(env)


# --- a subscription's last payment ------------------------------------------------------------


def subscribed() -> Harness:
    h = Harness()
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    return h


def renewal_refund(created: int, refunded: int = 900) -> dict:
    # A renewal charge: none of our metadata (invoices' PaymentIntents carry none).
    return se.charge_refunded(created=created + DAY, refunded=refunded, amount=900, payment_intent="pi_renewal",
                              member_id=None, plan_id=None)


@pytest.mark.parametrize("refund_first", [False, True], ids=["paid-then-refunded", "refund-delivered-first"])
def test_full_refund_of_a_subscriptions_last_payment_ends_it_until_the_next_payment(refund_first):
    # Given a monthly subscriber whose first invoice was paid
    h = subscribed()
    paid, refund = se.invoice_event("invoice.paid", created=T0), renewal_refund(T0)
    refund["data"]["object"]["created"] = T0
    # When the creator refunds that payment in full (events in either order)
    h.at(T0 + DAY).deliver(*([refund, paid] if refund_first else [paid, refund]))
    h.run_access()
    # Then the subscription's grant ends with reason refunded and the role goes
    assert h.states() == {"pln_monthly": ENDED}
    assert h.roles() in (set(), None)
    # When the next renewal is paid
    h.at(T0 + 31 * DAY).deliver(se.invoice_event("invoice.paid", created=T0 + 30 * DAY))
    h.run_access()
    # Then access comes back
    assert h.states() == {"pln_monthly": ACTIVE}
    assert h.roles() == {ROLE}


def test_partial_refund_of_a_subscription_payment_changes_nothing():
    h = subscribed()
    h.deliver(se.invoice_event("invoice.paid", created=T0))
    h.run_access()
    assert h.at(T0 + DAY).deliver(renewal_refund(T0, refunded=300)) == ["processed"]
    h.run_access()
    assert h.states() == {"pln_monthly": ACTIVE}
    assert h.roles() == {ROLE}


def test_refund_of_an_older_payment_leaves_a_renewed_subscription_alone():
    # Given a subscriber who paid on day 0 and renewed on day 30
    h = subscribed()
    h.deliver(se.invoice_event("invoice.paid", created=T0), se.invoice_event("invoice.paid", created=T0 + 30 * DAY))
    h.run_access()
    # When the day-0 payment is refunded in full
    refund = renewal_refund(T0)
    refund["data"]["object"]["created"] = T0
    h.at(T0 + 31 * DAY).deliver(refund)
    h.run_access()
    # Then access stays: the latest payment stands
    assert h.states() == {"pln_monthly": ACTIVE}


@pytest.mark.parametrize(("reason", "locale", "words"), [
    ("refunded", "en", "was refunded"), ("refunded", "fr", "a été remboursé"),
    ("dispute", "en", "disputed with your bank"), ("dispute", "fr", "contesté auprès de ta banque"),
])
def test_access_ended_by_money_coming_back_says_why_and_promises_nothing_about_charges(reason, locale, words):
    from membergate.domain.messages import render, template_key

    text = render(template_key("access_ended", reason), locale, plan="Club", community="Le Club", join_url="https://j")
    assert words in text
    assert "charged" not in text and "prélevé" not in text


# --- any order, any duplicates -------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LATER_FACTS = {
    "partial_refund": lambda: se.charge_refunded(created=T0 + 2 * DAY, refunded=1000, plan_id="pln_life",
                                                 event_id="evt_partial"),
    "full_refund": lambda: se.charge_refunded(created=T0 + 3 * DAY, refunded=4900, plan_id="pln_life",
                                              event_id="evt_full"),
    "dispute_open": lambda: se.dispute_event(created=T0 + 2 * DAY, event_id="evt_dp_open"),
    "dispute_won": lambda: se.dispute_event("charge.dispute.closed", created=T0 + 9 * DAY, status="won",
                                            event_id="evt_dp_won"),
    "dispute_lost": lambda: se.dispute_event("charge.dispute.closed", created=T0 + 9 * DAY, status="lost",
                                             event_id="evt_dp_lost"),
    "customer_deleted": lambda: se.customer_deleted(created=T0 + 10 * DAY, event_id="evt_cus_del"),
}


def final_state(deliveries: list[dict]) -> tuple:
    """Deliver like the queue does: a retryable failure comes back after the others."""
    h = Harness()
    h.stores.catalog.add_plan(LIFETIME)
    h.member()
    pending = list(deliveries)
    for _ in range(len(deliveries) * 3):
        if not pending:
            break
        event = pending.pop(0)
        try:
            h.at(T0 + 20 * DAY).deliver(event)
        except RetryableError:
            pending.append(event)
    assert not pending, "an event kept failing"
    grant = h.stores.grants.get("mbr_1", "cs_test_pay_1")
    return h.states(), grant.end_reason, grant.dispute


@settings(max_examples=60, deadline=None)
@given(
    facts=st.lists(st.sampled_from(sorted(LATER_FACTS)), unique=True, max_size=4).filter(
        lambda f: not {"dispute_won", "dispute_lost"} <= set(f)),  # a dispute closes one way only
    data=st.data(),
)
def test_lifecycle_in_any_order_with_duplicates_converges(facts, data):
    # Given a lifetime purchase and what later happened to its payment
    checkout = se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_life", event_id="evt_paid")
    story = [checkout] + [LATER_FACTS[f]() for f in facts]
    # When the later facts arrive shuffled with duplicates (disputes name only the payment, so
    # they come after its checkout; refunds may even come first and are retried)
    later = data.draw(st.permutations(story[1:] + data.draw(st.lists(st.sampled_from(story), max_size=3))))
    refund_first = data.draw(st.booleans()) and "full_refund" in facts and not any("dispute" in f for f in facts)
    delivery = ([LATER_FACTS["full_refund"](), checkout] + later) if refund_first else [checkout] + later
    # Then the final state is the one the in-order story gives
    assert final_state(delivery) == final_state(story)
    states, end_reason, _ = final_state(delivery)
    # And no access without a live grant: access is ended exactly when the grant has an end reason
    assert (states == {"pln_life": EntitlementState.ENDED}) == bool(end_reason)


@pytest.mark.parametrize(("refunded_flag", "amount_refunded", "full"), [
    (True, 4900, True), (False, 4900, True), ("yes", 1000, False), (None, 1000, False), (False, 0, False),
])
def test_charge_fact_full_refund_needs_all_the_money_back(refunded_flag, amount_refunded, full):
    from membergate.domain.stripe_events import charge_fact, parse_event

    raw = se.charge_refunded(created=T0, refunded=amount_refunded)
    raw["data"]["object"]["refunded"] = refunded_flag
    assert charge_fact(parse_event(raw)).fully_refunded is full


@pytest.mark.parametrize("type_", ["charge.refunded", "charge.dispute.created", "charge.dispute.closed"])
def test_charge_event_carrying_another_object_is_recorded_failed_not_applied(type_):
    from membergate.domain.errors import MalformedEventError

    # Given a signed event whose object is not the charge or dispute its type promises
    h = bought("pln_life")
    wrong = se.event(type_, {"object": "subscription", "id": "sub_x", "payment_intent": "pi_test_pay_1"}, T0 + DAY)
    # When it is applied
    with pytest.raises(MalformedEventError, match="not a"):
        h.deliver(wrong)
    # Then the grant is untouched and the ledger says why
    assert h.stores.grants.get("mbr_1", "cs_test_pay_1").end_reason == ""
    assert h.stores.ledger.get(wrong["id"]).status == "failed"


def test_full_refund_of_a_subscriptions_last_payment_cancels_it_at_stripe_once():
    # Given a monthly subscriber whose payment was refunded in full
    h = subscribed()
    refund = renewal_refund(T0)
    refund["data"]["object"]["created"] = T0
    h.deliver(se.invoice_event("invoice.paid", created=T0))
    h.at(T0 + DAY).deliver(refund)
    # When the lifecycle sweep runs (twice: a retried schedule)
    h.sweep()
    h.at(T0 + DAY + 60).sweep()
    # Then the subscription is cancelled at Stripe once, under a key naming the refunded payment,
    # so the member is not charged again, and the grant ended with reason refunded
    assert h.billing.cancel_keys == [("sub_1", f"membergate-refund-sub_1-{T0}")]
    assert h.stores.subscriptions.get("mbr_1", "sub_1").cancel_requested_at == T0 + DAY
    # When Stripe's cancellation comes back
    h.deliver(se.subscription_event("customer.subscription.deleted", created=T0 + DAY + 5, member_id="mbr_1",
                                    status="canceled"))
    h.run_access()
    # Then the reason stays refunded and the role is gone
    (ent,) = current_view(h.stores, "mbr_1", h.now).entitlements
    assert (ent.state, ent.reason) == (ENDED, "refunded")
    assert h.roles() in (set(), None)


def test_partial_refund_of_a_subscription_payment_cancels_nothing():
    h = subscribed()
    h.deliver(se.invoice_event("invoice.paid", created=T0))
    h.at(T0 + DAY).deliver(renewal_refund(T0, refunded=300))
    h.sweep()
    assert h.billing.cancel_keys == []
    assert h.states() == {"pln_monthly": ACTIVE}


# --- disputes on a subscription's payments ---------------------------------------------------------


def disputed_subscriber(policy: str = "revoke") -> tuple[Harness, FakePayments, FakeAudit]:
    """A paying monthly subscriber whose renewal PaymentIntent pi_renewal paid invoice in_1 of sub_1."""
    h = subscribed()
    h.deliver(se.invoice_event("invoice.paid", created=T0))
    h.run_access()
    assert h.roles() == {ROLE}
    audit = FakeAudit()
    payments = FakePayments({"pi_renewal": PaidInvoice("in_1", "sub_1", "cus_1")})
    h.stores = replace(h.stores, audit=audit)
    h.processor = BillingEventProcessor(h.stores, h.queue, dispute_policy=policy, payments=payments)
    return h, payments, audit


def test_dispute_on_a_subscription_payment_revokes_alerts_and_lists_a_problem_until_won():
    # Given a subscriber whose renewal payment is disputed
    h, payments, audit = disputed_subscriber()
    # When the dispute opens
    opened = h.at(T0 + DAY).processor.apply(
        json.dumps(se.dispute_event(created=T0 + DAY, payment_intent="pi_renewal")), h.now)
    h.run_access()
    # Then the subscription found through the payment's invoice ends with reason dispute
    assert payments.asked == ["pi_renewal"]
    (ent,) = current_view(h.stores, "mbr_1", h.now).entitlements
    assert (ent.state, ent.reason) == (ENDED, "dispute")
    assert h.roles() in (set(), None)
    # and the creator is alerted: the outcome, an audit entry and a problem on the dashboard
    assert "Stripe dashboard" in opened.alert and "sub_1" in opened.alert
    (entry,) = audit.entries.values()
    assert (entry.action, entry.target, entry.member_id, entry.detail["dispute_id"]) == (
        "dispute.open", "sub_1", "mbr_1", "dp_test_1")
    (problem,) = open_dispute_problems(h.stores, h.now)
    assert (problem.kind, problem.subject) == ("dispute", "mbr_1") and "dp_test_1" in problem.reason
    # and the subscription is not cancelled while the dispute may still be won
    h.sweep()
    assert h.billing.cancel_keys == []
    # When the creator wins it
    h.at(T0 + 20 * DAY).deliver(se.dispute_event("charge.dispute.closed", created=T0 + 20 * DAY, status="won",
                                                 payment_intent="pi_renewal"))
    h.run_access()
    # Then access is back and the problem is gone
    assert h.states() == {"pln_monthly": ACTIVE}
    assert h.roles() == {ROLE}
    assert open_dispute_problems(h.stores, h.now) == []
    assert [e.action for e in sorted(audit.entries.values(), key=lambda e: e.at)] == ["dispute.open", "dispute.won"]


def test_lost_dispute_on_a_subscription_payment_cancels_it_at_stripe_in_any_order():
    # Given a disputed subscriber, events delivered closed-first then opened (and again)
    h, _, _ = disputed_subscriber()
    closed = se.dispute_event("charge.dispute.closed", created=T0 + 20 * DAY, status="lost", payment_intent="pi_renewal")
    opened = se.dispute_event(created=T0 + DAY, payment_intent="pi_renewal")
    h.at(T0 + 20 * DAY).deliver(closed, opened, opened)
    # When the sweep runs
    h.sweep()
    # Then the grant stays ended and the subscription is cancelled once so no new charge comes
    assert h.stores.subscriptions.get("mbr_1", "sub_1").dispute == "lost"
    assert h.states() == {"pln_monthly": ENDED}
    assert h.billing.cancel_keys == [("sub_1", "membergate-dispute-lost-sub_1")]


def test_keep_policy_leaves_a_disputed_subscription_alone_but_still_alerts():
    h, _, audit = disputed_subscriber("keep")
    outcome = h.at(T0 + DAY).processor.apply(
        json.dumps(se.dispute_event(created=T0 + DAY, payment_intent="pi_renewal")), h.now)
    h.run_access()
    h.sweep()
    assert h.states() == {"pln_monthly": ACTIVE}
    assert h.roles() == {ROLE}
    assert "dispute policy keep" in outcome.alert and "DISPUTE_POLICY" in outcome.alert
    assert [e.detail["access"] for e in audit.entries.values()] == ["kept"]
    assert h.billing.cancel_keys == []


def test_dispute_on_a_payment_that_paid_no_invoice_is_ignored_with_the_reason():
    h, payments, audit = disputed_subscriber()
    assert h.deliver(se.dispute_event(created=T0 + DAY, payment_intent="pi_other")) == ["ignored"]
    assert payments.asked == ["pi_other"]
    assert audit.entries == {}
    assert h.states() == {"pln_monthly": ACTIVE}


def test_dispute_on_a_subscription_not_known_yet_is_retried_not_lost():
    h, payments, _ = disputed_subscriber()
    payments.paid["pi_new"] = PaidInvoice("in_9", "sub_9", "cus_1")
    with pytest.raises(RetryableError):
        h.processor.apply(json.dumps(se.dispute_event(created=T0 + DAY, payment_intent="pi_new")), T0 + DAY)


def test_dispute_stripe_will_not_match_is_ignored_with_an_alert_saying_what_to_fix():
    # Given a Stripe key that may not read invoices
    h, payments, _ = disputed_subscriber()

    def refuse(payment_intent: str):
        raise PermanentError("the Stripe key lacks a permission", "stripe_permission")

    payments.invoice_paid_by = refuse
    # When a dispute arrives
    outcome = h.at(T0 + DAY).processor.apply(
        json.dumps(se.dispute_event(created=T0 + DAY, payment_intent="pi_renewal")), h.now)
    # Then it is recorded with the reason, the creator is told what to fix, and access is untouched
    assert outcome.status == "ignored" and "lacks a permission" in outcome.detail
    assert "Invoices: Read" in outcome.alert and "dp_test_1" in outcome.alert
    assert h.states() == {"pln_monthly": ACTIVE}


SUBSCRIPTION_FACTS = {
    "paid": lambda: se.invoice_event("invoice.paid", created=T0),
    "full_refund": lambda: {**(r := renewal_refund(T0)), "data": {"object": {**r["data"]["object"], "created": T0}}},
    "dispute_open": lambda: se.dispute_event(created=T0 + 2 * DAY, payment_intent="pi_renewal", event_id="evt_sdp_open"),
    "dispute_won": lambda: se.dispute_event("charge.dispute.closed", created=T0 + 9 * DAY, status="won",
                                            payment_intent="pi_renewal", event_id="evt_sdp_won"),
    "dispute_lost": lambda: se.dispute_event("charge.dispute.closed", created=T0 + 9 * DAY, status="lost",
                                             payment_intent="pi_renewal", event_id="evt_sdp_lost"),
}


def subscription_final_state(deliveries: list[dict]) -> tuple:
    """A subscriber's later payment facts delivered in this order, then a sweep: (state, reason, cancel keys)."""
    h, _, _ = disputed_subscriber_unpaid()
    for event in deliveries:
        h.at(T0 + 20 * DAY).deliver(event)
    h.sweep()
    (ent,) = current_view(h.stores, "mbr_1", h.now).entitlements
    return ent.state, ent.reason, tuple(h.billing.cancel_keys)


def disputed_subscriber_unpaid() -> tuple[Harness, FakePayments, FakeAudit]:
    h = subscribed()
    audit = FakeAudit()
    payments = FakePayments({"pi_renewal": PaidInvoice("in_1", "sub_1", "cus_1")})
    h.stores = replace(h.stores, audit=audit)
    h.processor = BillingEventProcessor(h.stores, h.queue, payments=payments)
    return h, payments, audit


@settings(max_examples=40, deadline=None)
@given(
    facts=st.lists(st.sampled_from(sorted(SUBSCRIPTION_FACTS)), unique=True, max_size=4).filter(
        lambda f: not {"dispute_won", "dispute_lost"} <= set(f)),
    data=st.data(),
)
def test_subscription_refunds_and_disputes_in_any_order_with_duplicates_converge(facts, data):
    # Given a subscriber and what later happened to its payment, in story order
    story = [SUBSCRIPTION_FACTS[f]() for f in facts]
    # When the facts arrive shuffled, some twice
    delivery = data.draw(st.permutations(story + data.draw(st.lists(st.sampled_from(story), max_size=2))
                                         if story else []))
    # Then the final state and the cancellations made are the in-order story's
    final = subscription_final_state(delivery)
    assert final == subscription_final_state(story)
    # And access ends exactly when money came back (a full refund, or a dispute not won), and the
    # subscription is cancelled exactly when that end is final (a refund, a lost dispute)
    state, reason, cancels = final
    ended_by = "refunded" if "full_refund" in facts else (
        "dispute" if {"dispute_open", "dispute_lost"} & set(facts) and "dispute_won" not in facts else "")
    assert (state is ENDED, reason) == (bool(ended_by), ended_by)
    assert bool(cancels) == (ended_by == "refunded" or "dispute_lost" in facts)
