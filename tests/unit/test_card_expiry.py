"""The card-expiry warning and the email that follows Stripe: pure rules, then through the processor and sweep."""

from __future__ import annotations

import itertools
import json
from calendar import timegm
from dataclasses import replace

import pytest

from membergate.domain.billing import SubscriptionRecord, SubscriptionSnapshot, merge_snapshot
from membergate.domain.trials import trial_key
from membergate.domain.lifecycle import (
    CARD_EXPIRING,
    DAY,
    CardOnFile,
    EmailOnFile,
    card_expires_at,
    decide,
    erased_card,
    merge_card,
    merge_email,
)
from membergate.domain.model import MessageKey, MessageStatus, OnGraceEnd, Plan, PlanGrant, PriceLine
from membergate.domain.stripe_events import HANDLED_EVENT_TYPES, card_on_file, parse_event
from tests.support import stripe_events as se
from tests.support.harness import T0, Harness
from tests.support.mail import FakeCards, FakeContacts, FakeErasures

pytestmark = pytest.mark.unit

NOW = 1_800_000_000  # 2027-01-15
MONTH_LINE = PriceLine("price_m", "eur", 1500, 1, "month", 1)


def _plan(renewal: int | None = 7) -> Plan:
    return Plan("pln_1", "Club", ("price_m",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, 0,
                renewal_notice_days=renewal)


def _record(status: str, period_end: int, *, cancel: bool = False) -> SubscriptionRecord:
    snap = SubscriptionSnapshot("sub_1", "cus_1", status, NOW - 10 * DAY, "evt_1", cancel_at_period_end=cancel,
                                current_period_end=period_end, lines=(MONTH_LINE,))
    return merge_snapshot(SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1"), snap)


def _card(expires_at: int | None, pm: str = "pm_1", as_of: int = NOW - DAY) -> CardOnFile:
    return CardOnFile(pm, expires_at, as_of)


def _due(record: SubscriptionRecord, plan: Plan, card: CardOnFile | None, now: int = NOW):
    decision = decide([record], {"pln_1": plan}, now, {"cus_1": card} if card else {})
    return [(r.kind, r.period) for r in decision.reminders if r.kind == CARD_EXPIRING], decision.next_due_at


# --- the pure rule -------------------------------------------------------------------------


def test_card_expires_at_end_of_month_including_december():
    assert card_expires_at(8, 2030) == timegm((2030, 9, 1, 0, 0, 0))
    assert card_expires_at(12, 2030) == timegm((2031, 1, 1, 0, 0, 0))


CASES = [
    # (name, period end, card expiry, plan, expected card warning periods)
    ("expires before the charge, 7 days ahead: warned", NOW + 7 * DAY, NOW + 3 * DAY, _plan(),
     [(CARD_EXPIRING, f"sub_1:{NOW + 7 * DAY}")]),
    ("expires at the very second of the charge: warned", NOW + 5 * DAY, NOW + 5 * DAY, _plan(),
     [(CARD_EXPIRING, f"sub_1:{NOW + 5 * DAY}")]),
    ("valid after the charge: nothing", NOW + 7 * DAY, NOW + 8 * DAY, _plan(), []),
    ("8 days ahead: not yet", NOW + 8 * DAY, NOW + DAY, _plan(), []),
    ("14-day renewal notice: warned 14 days ahead", NOW + 14 * DAY, NOW + DAY, _plan(14),
     [(CARD_EXPIRING, f"sub_1:{NOW + 14 * DAY}")]),
    ("renewal notice off, card expiring -> card_expiring", NOW + 7 * DAY, NOW + DAY, _plan(None),
     [(CARD_EXPIRING, f"sub_1:{NOW + 7 * DAY}")]),
    ("renewal notice off, 8 days ahead: not yet", NOW + 8 * DAY, NOW + DAY, _plan(None), []),
    ("3-day renewal notice: the card warning still 7 days ahead", NOW + 7 * DAY, NOW + DAY, _plan(3),
     [(CARD_EXPIRING, f"sub_1:{NOW + 7 * DAY}")]),
    ("expiry not known yet (default card named only): nothing", NOW + 7 * DAY, None, _plan(), []),
]


@pytest.mark.parametrize(("name", "period_end", "expires", "plan", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decide_card_warning_table(name, period_end, expires, plan, expected):
    # Given an active subscription and the card on file / When the sweep decides
    found, _ = _due(_record("active", period_end), plan, _card(expires))
    # Then
    assert found == expected


def test_decide_card_warning_trial_first_charge_and_not_when_cancelled():
    # Given a card expiring before a trial's first charge, and the same on a cancelled subscription
    trial, _ = _due(_record("trialing", NOW + 3 * DAY), _plan(), _card(NOW + DAY))
    cancelled, _ = _due(_record("active", NOW + 3 * DAY, cancel=True), _plan(), _card(NOW + DAY))
    # Then the trial gets the warning (its end is a charge); a cancelled one charges nothing
    assert trial == [(CARD_EXPIRING, f"sub_1:{NOW + 3 * DAY}")]
    assert cancelled == []


def test_decide_card_warning_time_is_scheduled_without_reading_the_card():
    # Given no card read (the billing processor's refresh), a 10-day renewal notice
    _, next_due = _due(_record("active", NOW + 20 * DAY), _plan(10), None)
    # Then the sweep is due when the warning (and the notice) would be: it reads the card then
    assert next_due == NOW + 10 * DAY


def test_decide_card_warning_new_period_new_key():
    # Given a card valid until NOW + 60 days, before three successive monthly renewals
    card = _card(NOW + 60 * DAY)
    first, _ = _due(_record("active", NOW + 7 * DAY), _plan(), card)
    second, _ = _due(_record("active", NOW + 37 * DAY), _plan(), card, now=NOW + 30 * DAY)
    third, _ = _due(_record("active", NOW + 67 * DAY), _plan(), card, now=NOW + 60 * DAY)
    # Then the charges it covers give nothing; the first it does not is warned, keyed by that period
    assert first == [] and second == []
    assert third == [(CARD_EXPIRING, f"sub_1:{NOW + 67 * DAY}")]


def test_merge_card_same_result_in_any_order():
    # Given: attached (Aug 2030), the default named without expiry, the bank's updater (Aug 2033), an old card
    events = [
        _card(card_expires_at(8, 2030), "pm_1", NOW),
        _card(None, "pm_1", NOW + 10),
        _card(card_expires_at(8, 2033), "pm_1", NOW + 20),
        _card(card_expires_at(1, 2027), "pm_0", NOW - 100),
    ]
    results = set()
    # When they arrive in every order
    for order in itertools.permutations(events):
        card = None
        for seen in order:
            card = merge_card(card, seen)
        results.add(card)
    # Then the card on file is always pm_1 with the updater's date
    assert results == {_card(card_expires_at(8, 2033), "pm_1", NOW + 20)}


def test_merge_card_two_cards_of_the_same_second_give_one_result_in_either_order():
    # Given two cards named default by events of the same second
    a, b = _card(card_expires_at(8, 2030), "pm_a", NOW), _card(card_expires_at(8, 2031), "pm_b", NOW)
    # When they arrive in either order, after an older card
    first, second = merge_card(merge_card(_card(None, "pm_0", NOW - 1), a), b), merge_card(merge_card(_card(None, "pm_0", NOW - 1), b), a)
    # Then the same card is on file
    assert first == second == a


def test_merge_card_newer_other_card_replaces():
    old = _card(card_expires_at(1, 2027), "pm_1", NOW)
    assert merge_card(old, _card(card_expires_at(5, 2031), "pm_2", NOW + 1)).payment_method_id == "pm_2"


def test_merge_card_erased_stays_erased_in_any_order():
    # Given an erasure (the member's data deleted) and card events from before and after it
    events = [_card(card_expires_at(8, 2030), "pm_1", NOW), erased_card(NOW + 10), _card(card_expires_at(8, 2033), "pm_2", NOW + 20)]
    results = set()
    # When they arrive in every order
    for order in itertools.permutations(events):
        card = None
        for seen in order:
            card = merge_card(card, seen)
        results.add(card)
    # Then nothing about a card is kept, whichever came last
    assert results == {erased_card(NOW + 10)}


def test_card_event_after_the_erasure_keeps_no_card():
    # Given a member erased (their card on file forgotten)
    h = _harness()
    h.stores.cards.save_card("cus_1", erased_card(T0 + 30))
    # When Stripe then says a card was attached to the customer
    outcome = h.processor.apply(json.dumps(se.payment_method_event(created=T0 + 60)), T0 + 60)
    # Then nothing is kept, and the ledger says why
    assert h.stores.cards.card("cus_1") == erased_card(T0 + 30)
    assert "member erased: card not kept" in outcome.detail


def test_card_on_file_reads_stripe_payloads():
    # Given Stripe's own payment_method fixture, a non-card method, a customer naming its default
    attached = parse_event(se.payment_method_event(created=NOW, exp_month=2, exp_year=2027))
    sepa = parse_event(se.payment_method_event(created=NOW))
    sepa.object["type"] = "sepa_debit"
    customer = parse_event(se.customer_updated(created=NOW, default_payment_method="pm_2"))
    no_default = parse_event(se.customer_updated(created=NOW))
    # Then
    # (the card's one-trial key is kept hashed: trial7 reads it from payment_method.attached)
    card_key = trial_key("card", attached.object["card"]["fingerprint"])
    assert card_on_file(attached) == CardOnFile("pm_1", card_expires_at(2, 2027), NOW, trial_key=card_key)
    assert card_on_file(sepa) is None
    assert card_on_file(customer) == CardOnFile("pm_2", None, NOW)
    assert card_on_file(no_default) is None
    assert {"customer.updated", "payment_method.attached", "payment_method.updated",
            "payment_method.automatically_updated"} <= HANDLED_EVENT_TYPES


# --- through the billing processor and the sweep ------------------------------------------


def _harness() -> Harness:
    h = Harness()
    h.stores = replace(h.stores, cards=FakeCards(), contacts=FakeContacts(), privacy=FakeErasures())
    h.processor.stores = h.stores
    h.dispatcher.stores = h.stores
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    h.run_access()
    return h


def _warnings(h: Harness) -> list[str]:
    return [t for t in h.dm_texts() if "card on file" in t]


def test_sweep_card_expiring_before_renewal_warns_once():
    # Given a member (renewal at T0 + 30 days) whose card expires before it
    h = _harness()
    h.deliver(se.payment_method_event(created=T0 + 60, exp_month=1, exp_year=2027))  # T0 is 2027-01-15
    assert h.stores.cards.card("cus_1").expires_at == timegm((2027, 2, 1, 0, 0, 0)) < T0 + 30 * DAY
    # When the sweep runs 7 days before the renewal, twice
    h.at(T0 + 23 * DAY).sweep()
    h.at(T0 + 23 * DAY + 600).sweep()
    # Then one warning, with the date and where to change the card
    [text] = _warnings(h)
    assert "expires before your next payment" in text and "/join/pln_monthly?manage=1" in text
    key = MessageKey("mbr_1", CARD_EXPIRING, f"sub_1:{T0 + 30 * DAY}")
    assert h.stores.messages.status(key) is MessageStatus.SENT


def test_sweep_new_card_before_the_warning_sends_nothing():
    # Given an expiring card, then a new one made the default (the member updated it)
    h = _harness()
    h.deliver(se.payment_method_event(created=T0 + 60, exp_month=1, exp_year=2027))
    h.deliver(se.payment_method_event(created=T0 + 120, pm_id="pm_2", exp_month=1, exp_year=2031))
    # When the sweep runs
    h.at(T0 + 23 * DAY).sweep()
    # Then no warning
    assert _warnings(h) == []


def test_card_event_before_the_member_is_known_still_counts():
    # Given a card event for a customer no member has yet
    h = Harness()
    h.stores = replace(h.stores, cards=FakeCards())
    h.processor.stores = h.stores
    outcome = h.processor.apply(json.dumps(se.payment_method_event(created=T0, customer="cus_new")), T0)
    # Then it is kept against the customer
    assert outcome.status == "processed" and h.stores.cards.card("cus_new").payment_method_id == "pm_1"


def test_customer_updated_email_is_followed():
    # Given a member whose email is known
    h = _harness()
    h.stores.contacts.set_email("mbr_1", "old@example.com")
    # When the email changes in Stripe (and a replayed older event arrives again)
    outcome = h.processor.apply(json.dumps(se.customer_updated(created=T0 + 60, email="new@example.com")), T0 + 60)
    # Then messages go to the new address; the ledger detail names no address
    assert h.stores.contacts.email("mbr_1") == "new@example.com"
    assert outcome.detail == "email updated" and "@" not in outcome.detail


@pytest.mark.parametrize("email", ["not-an-email", "a@b@c", "x@y.z\r\nBcc: evil@example.com", None])
def test_customer_updated_bad_or_missing_email_keeps_the_old_one(email):
    h = _harness()
    h.stores.contacts.set_email("mbr_1", "old@example.com")
    h.processor.apply(json.dumps(se.customer_updated(created=T0 + 60, email=email)), T0 + 60)
    assert h.stores.contacts.email("mbr_1") == "old@example.com"


def test_customer_updated_erased_member_stays_erased():
    # Given a member erased (email deleted)
    h = _harness()
    h.stores.privacy.erased.add("mbr_1")
    # When Stripe says the customer's email changed
    outcome = h.processor.apply(json.dumps(se.customer_updated(created=T0 + 60, email="back@example.com")), T0 + 60)
    # Then nothing is kept
    assert h.stores.contacts.email("mbr_1") is None
    assert outcome.detail == "member erased: email not kept"


def test_merge_email_same_result_in_any_order():
    # Given an import (no event), two customer.updated, and two of the same second
    seen = [EmailOnFile("import@example.com"), EmailOnFile("old@example.com", NOW), EmailOnFile("new@example.com", NOW + 60),
            EmailOnFile("b@example.com", NOW + 60)]
    results = set()
    # When they arrive in every order
    for order in itertools.permutations(seen):
        email = None
        for one in order:
            email = merge_email(email, one)
        results.add(email)
    # Then the newest wins, and a tie is decided by the address, not by arrival
    assert results == {EmailOnFile("b@example.com", NOW + 60)}


@pytest.mark.parametrize("late_first", [False, True])
def test_customer_updated_older_event_never_puts_the_old_email_back(late_first):
    # Given a member, and two customer.updated: the address changed at T0+60, then again at T0+120
    h = _harness()
    older = json.dumps(se.customer_updated(created=T0 + 60, email="old@example.com"))
    newer = json.dumps(se.customer_updated(created=T0 + 120, email="new@example.com"))
    # When Stripe delivers them in either order
    outcomes = [h.processor.apply(e, T0 + 200) for e in ([older, newer] if late_first else [newer, older])]
    # Then the newer address is on file either way, and a late older event says it was not kept
    assert h.stores.contacts.contact("mbr_1") == EmailOnFile("new@example.com", T0 + 120)
    if not late_first:
        assert outcomes[1].detail == "older than the email on file: not kept"
