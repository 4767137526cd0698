"""A member whose access a dispute removed is not billed meanwhile: collection paused, resumed when won."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membergate.domain.disputes import PAUSE, RESUME, collection_change
from membergate.domain.errors import PermanentError, RetryableError
from membergate.domain.model import EntitlementState
from membergate.ports import PaidInvoice
from membergate.services.billing_events import BillingEventProcessor
from membergate.services.membership import current_view
from tests.support import stripe_events as se
from tests.support.billing_fakes import FakeAudit, FakeCollection, FakePayments
from tests.support.harness import DAY, ROLE, T0, Harness

pytestmark = pytest.mark.unit

ACTIVE, ENDED = EntitlementState.ACTIVE, EntitlementState.ENDED
PAUSE_KEY, RESUME_KEY = "membergate-dispute-pause-sub_1", "membergate-dispute-resume-sub_1"


# --- the rule (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "policy", "live", "paused", "ours", "change"),
    [
        ("", "open", "revoke", True, False, False, PAUSE),
        ("", "open", "", True, False, False, PAUSE),  # a record stored before policies were recorded: revoke
        ("", "open", "revoke", True, True, False, None),  # the creator had paused it: left to them
        ("open", "won", "revoke", True, True, True, RESUME),
        ("open", "won", "revoke", True, True, False, None),  # not our pause (or ours failed): never resumed
        ("open", "open", "revoke", True, True, True, None),  # a duplicate
        ("open", "lost", "revoke", True, True, True, None),  # the sweep cancels it
        ("", "won", "revoke", True, False, False, None),  # first seen closed: never paused
        ("", "lost", "revoke", True, False, False, None),
        ("won", "won", "revoke", True, False, False, None),
        ("", "open", "keep", True, False, False, None),
        ("open", "won", "keep", True, True, True, None),
        ("", "open", "revoke", False, False, False, None),  # ended or being cancelled: nothing to bill
        ("open", "won", "revoke", False, True, True, None),
    ],
)
def test_collection_change_for_dispute_step_policy_and_liveness(before, after, policy, live, paused, ours, change):
    # Given a stored dispute status, the one after this event, the recorded policy, whether it still bills,
    # whether its collection is paused now and whether Membergate paused it
    # When the billing change is decided
    # Then only an opening under revoke pauses, and only a win after our pause resumes
    assert collection_change(before, after, policy, live=live, paused=paused, ours=ours) == change


# --- through the processor ---------------------------------------------------------------------------


def billed_subscriber(plan_policy: str = "") -> tuple[Harness, FakeCollection, FakeAudit]:
    """A paying monthly subscriber (sub_1) whose renewal PaymentIntent pi_renewal paid invoice in_1."""
    h = Harness()
    if plan_policy:
        h.stores.catalog.update_plan(replace(h.plan, dispute_policy=plan_policy))
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"), se.invoice_event("invoice.paid", created=T0))
    h.run_access()
    assert h.roles() == {ROLE}
    audit, collection = FakeAudit(), FakeCollection(created=T0)
    h.stores = replace(h.stores, audit=audit)
    h.processor = BillingEventProcessor(h.stores, h.queue, collection=collection,
                                        payments=FakePayments({"pi_renewal": PaidInvoice("in_1", "sub_1", "cus_1")}))
    return h, collection, audit


def opened(at: int = T0 + DAY, event_id: str = "evt_dp_open") -> dict:
    return se.dispute_event(created=at, payment_intent="pi_renewal", event_id=event_id)


def closed(status: str, at: int = T0 + 20 * DAY, event_id: str | None = None) -> dict:
    return se.dispute_event("charge.dispute.closed", created=at, status=status, payment_intent="pi_renewal",
                            event_id=event_id or f"evt_dp_{status}")


def test_dispute_open_pauses_billing_once_and_a_won_dispute_resumes_it_with_access_back_at_once():
    # Given a paying subscriber
    h, collection, audit = billed_subscriber()
    # When a dispute on their payment opens (and Stripe sends an update of it too)
    outcome = h.at(T0 + DAY).processor.apply(json.dumps(opened()), h.now)
    h.deliver(se.dispute_event("charge.dispute.updated", created=T0 + 2 * DAY, payment_intent="pi_renewal",
                               event_id="evt_dp_updated"))
    h.run_access()
    # Then access ends, and billing is paused at Stripe once, with the creator told
    assert collection.calls == [("sub_1", True, PAUSE_KEY)]
    record = h.stores.subscriptions.get("mbr_1", "sub_1")
    assert record.latest.pause_collection and record.dispute == "open" and record.dispute_paused
    assert h.states() == {"pln_monthly": ENDED} and h.roles() in (set(), None)
    assert "billing paused at Stripe" in outcome.alert
    assert [e.detail.get("billing", "") for e in sorted(audit.entries.values(), key=lambda e: e.at)][0].startswith(
        "billing paused")
    # When the creator wins it (no subscription.updated from Stripe has arrived yet)
    h.at(T0 + 20 * DAY).deliver(closed("won"))
    h.run_access()
    # Then billing resumes and access is back at once, from Stripe's answer
    assert collection.calls == [("sub_1", True, PAUSE_KEY), ("sub_1", False, RESUME_KEY)]
    resumed = h.stores.subscriptions.get("mbr_1", "sub_1")
    assert not resumed.latest.pause_collection and not resumed.dispute_paused
    assert h.states() == {"pln_monthly": ACTIVE} and h.roles() == {ROLE}
    # And a redelivered win changes nothing more
    h.deliver(closed("won", event_id="evt_dp_won_again"))
    assert len(collection.calls) == 2


def test_dispute_open_then_lost_stays_paused_and_the_sweep_cancels_it():
    # Given a subscriber whose dispute opened (billing paused)
    h, collection, _ = billed_subscriber()
    h.at(T0 + DAY).deliver(opened())
    # When it is lost and the sweep runs
    h.at(T0 + 20 * DAY).deliver(closed("lost"))
    h.sweep()
    # Then billing is never resumed and the subscription is cancelled once
    assert collection.calls == [("sub_1", True, PAUSE_KEY)]
    assert h.billing.cancel_keys == [("sub_1", "membergate-dispute-lost-sub_1")]
    assert h.states() == {"pln_monthly": ENDED}


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_dispute_closed_before_its_opening_arrives_never_touches_billing(outcome):
    # Given a subscriber
    h, collection, _ = billed_subscriber()
    # When the close arrives first, then the opening (delivery order is not guaranteed)
    h.at(T0 + 20 * DAY).deliver(closed(outcome), opened())
    # Then billing was never paused (nor resumed), and access follows the outcome
    assert collection.calls == []
    assert h.states() == {"pln_monthly": ACTIVE if outcome == "won" else ENDED}


def test_plan_keeping_access_during_disputes_keeps_billing_too():
    # Given a plan whose creator keeps access during disputes
    h, collection, _ = billed_subscriber(plan_policy="keep")
    # When a dispute opens and is won
    h.at(T0 + DAY).deliver(opened())
    h.at(T0 + 20 * DAY).deliver(closed("won"))
    # Then Stripe's billing is never touched and access stayed
    assert collection.calls == []
    assert h.states() == {"pln_monthly": ACTIVE}


def test_stripe_refusing_the_pause_still_revokes_and_tells_the_creator_to_pause_by_hand():
    # Given Stripe refusing the pause (a key that may not write subscriptions)
    h, collection, audit = billed_subscriber()
    collection.fail = PermanentError("the Stripe key lacks Subscriptions: Write", "stripe_permission")
    # When a dispute opens
    outcome = h.at(T0 + DAY).processor.apply(json.dumps(opened()), h.now)
    h.run_access()
    # Then the dispute still ends access, and the alert says what to do in Stripe
    assert outcome.status == "processed" and h.states() == {"pln_monthly": ENDED}
    assert "billing could not be paused" in outcome.alert and "Subscriptions: Write" in outcome.alert
    assert "Stripe dashboard" in outcome.alert
    refused = h.stores.subscriptions.get("mbr_1", "sub_1")
    assert not refused.latest.pause_collection and not refused.dispute_paused
    # and winning it later (Stripe answering again) asks Stripe nothing: there is no pause of ours to undo
    collection.fail = None
    h.at(T0 + 20 * DAY).deliver(closed("won"))
    assert collection.calls == [] and h.states() == {"pln_monthly": ACTIVE}


def test_stripe_down_during_the_pause_retries_the_event_and_pauses_once():
    # Given Stripe down when a dispute opens
    h, collection, _ = billed_subscriber()
    collection.fail = RetryableError("Stripe answered 503")
    # When the event is applied
    with pytest.raises(RetryableError):
        h.processor.apply(json.dumps(opened()), T0 + DAY)
    # Then nothing was stored, so the retry asks again
    assert h.stores.subscriptions.get("mbr_1", "sub_1").dispute == ""
    # When Stripe is back and the queue retries it
    collection.fail = None
    assert h.processor.apply(json.dumps(opened()), T0 + DAY).status == "processed"
    # Then billing is paused once and the dispute is stored
    assert collection.calls == [("sub_1", True, PAUSE_KEY)]
    assert h.stores.subscriptions.get("mbr_1", "sub_1").dispute == "open"


def test_collection_the_creator_paused_before_the_dispute_stays_paused_after_a_win():
    # Given a subscriber whose collection the creator paused in Stripe (a break)
    h, collection, _ = billed_subscriber()
    paused = se.subscription_event(created=T0 + DAY // 2, member_id="mbr_1")
    paused["data"]["object"]["pause_collection"] = {"behavior": "void", "resumes_at": None}
    h.deliver(paused)
    # When a dispute on an earlier payment opens, then is won
    h.at(T0 + DAY).deliver(opened())
    h.at(T0 + 20 * DAY).deliver(closed("won"))
    # Then Membergate neither paused nor resumed it: the creator's pause stands
    assert collection.calls == []
    assert h.stores.subscriptions.get("mbr_1", "sub_1").latest.pause_collection


def test_dispute_on_a_cancelled_subscription_pauses_nothing():
    # Given a subscription already cancelled at Stripe
    h, collection, _ = billed_subscriber()
    h.deliver(se.subscription_event("customer.subscription.deleted", created=T0 + DAY // 2, status="canceled",
                                    member_id="mbr_1"))
    # When a dispute on its last payment opens
    h.at(T0 + DAY).deliver(opened())
    # Then there is nothing to pause
    assert collection.calls == []
    assert h.stores.subscriptions.get("mbr_1", "sub_1").dispute == "open"


FACTS = {"open": lambda: opened(), "won": lambda: closed("won"), "lost": lambda: closed("lost")}


@settings(max_examples=40, deadline=None)
@given(facts=st.lists(st.sampled_from(sorted(FACTS)), unique=True, min_size=1).filter(lambda f: not {"won", "lost"} <= set(f)),
       data=st.data())
def test_dispute_events_in_any_order_with_duplicates_pause_and_resume_at_most_once(facts, data):
    # Given a subscriber and what happened to a dispute on their payment, shuffled, some twice
    h, collection, _ = billed_subscriber()
    story = [FACTS[f]() for f in facts]
    delivery = data.draw(st.permutations(story + data.draw(st.lists(st.sampled_from(story), max_size=3))))
    # When the events arrive and the sweep runs
    for event in delivery:
        h.at(T0 + 20 * DAY).deliver(event)
    h.sweep()
    # Then billing is paused at most once, resumed only after a pause, and never left paused after a win
    pauses = [c for c in collection.calls if c[1]]
    resumes = [c for c in collection.calls if not c[1]]
    assert len(pauses) <= 1 and len(resumes) <= len(pauses)
    if resumes:
        assert collection.calls.index(pauses[0]) < collection.calls.index(resumes[0])
    paused_at_stripe = collection.paused.get("sub_1", False)
    assert not ("won" in facts and paused_at_stripe)
    # and an open dispute alone leaves it paused, a lost one cancelled
    if facts == ["open"]:
        assert paused_at_stripe and h.billing.cancel_keys == []
    assert bool(h.billing.cancel_keys) == ("lost" in facts)
    (ent,) = current_view(h.stores, "mbr_1", h.now).entitlements
    assert ent.state is (ACTIVE if "won" in facts else ENDED)
