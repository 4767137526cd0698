"""One free trial per identity: the pure rule, checkout without a second trial, the processor's record."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from membergate.domain.model import Identity, Platform
from membergate.domain.trials import trial_days_for, trial_key, trial_keys, trial_start
from membergate.http.pages import join_page
from membergate.services.checkout import CheckoutRequest, start_checkout
from membergate.services.member_pages import join_page_view
from tests.support import stripe_events as se
from tests.support.fakes import FakeBilling
from tests.support.harness import T0, Harness
from tests.support.trials import FakeTrialEnder, FakeTrialLedger
from tests.unit.test_member_pages import bound_member, setup

pytestmark = pytest.mark.unit
DISCORD = Identity(Platform.DISCORD, "123456789012345678")


def test_trial_keys_hold_no_identifier_and_email_case_does_not_matter():
    # Given a Discord account, an email and a card / When keyed
    keys = trial_keys([DISCORD], "Ana@Example.COM ", "fp_card_1")
    # Then three keys, none carrying the raw value, and the same email in other case is the same key
    assert len(keys) == 3
    assert not any(raw in "".join(keys) for raw in ("123456789012345678", "ana@example.com", "fp_card_1"))
    assert trial_key("email", "ana@example.com") in keys
    assert trial_key("whatsapp", "+33600000000") != trial_key("telegram", "+33600000000")


def test_trial_days_for_gives_the_plan_trial_only_when_unused():
    # Given a 7-day plan / When the member's identities had no trial, had one, or the plan has none / Then 7, None, None
    assert (trial_days_for(7, False), trial_days_for(7, True), trial_days_for(None, False)) == (7, None, None)


def test_trial_start_reads_the_card_fingerprint_only_when_the_payload_has_it():
    # Given trialing subscriptions with an expanded payment method, with an id only, and an active one
    expanded = {"id": "sub_1", "status": "trialing", "default_payment_method": {"card": {"fingerprint": "fp_1"}}}
    bare = {"id": "sub_2", "status": "trialing", "default_payment_method": "pm_1"}
    # When read / Then the fingerprint when present, none otherwise, and nothing for a non-trialing one
    assert trial_start(expanded).card_fingerprint == "fp_1"
    assert trial_start(bare).card_fingerprint is None and trial_start(bare).subscription_id == "sub_2"
    assert trial_start({"id": "sub_3", "status": "active"}) is None


def _trial_plan(used_keys: list[str] = ()):
    stores, billing = setup()
    ledger = FakeTrialLedger()
    for key in used_keys:
        ledger.keys[key] = "sub_old"
    stores = replace(stores, trials=ledger)
    stores.catalog.plans["pln_1"] = replace(stores.catalog.get_plan("pln_1"), trial_days=7)
    return stores, billing


def _checkout(stores) -> dict:
    billing = FakeBilling()
    start_checkout(CheckoutRequest("mbr_1", "pln_1", None, "https://m/ok", "https://m/no", waiver=True), stores=stores,
                   billing=billing, now=T0)
    (params,) = billing.session_params.values()
    return params


def test_checkout_gives_the_trial_to_a_member_who_never_had_one():
    # Given a 7-day trial plan and a member whose account never had a trial
    stores, _ = _trial_plan()
    bound_member(stores)
    # When they check out / Then the session carries the 7-day trial
    assert _checkout(stores)["trial_days"] == 7


@pytest.mark.parametrize("used", [trial_key("discord", "123456789012345678"), trial_key("email", "ana@example.com")])
def test_checkout_without_trial_when_the_account_or_email_already_had_one(used):
    # Given a member whose Discord account (or known email) already had a trial
    stores, _ = _trial_plan([used])
    bound_member(stores)
    stores = replace(stores, contacts=_Contacts({"mbr_1": "ANA@example.com"}))
    # When they check out / Then no trial is asked of Stripe
    assert _checkout(stores)["trial_days"] is None


@pytest.mark.parametrize("locale, words", [("en", "your free trial was already used"),
                                           ("fr", "ton essai gratuit a déjà été utilisé")])
def test_join_page_says_the_trial_was_already_used(locale, words):
    # Given a member whose account already had a trial of a 7-day plan
    stores, billing = _trial_plan([trial_key("discord", "123456789012345678")])
    stores.catalog.communities["com_1"] = replace(stores.catalog.get_community("com_1"), locale=locale)
    member = bound_member(stores)
    # When they open the join page / Then it says so, in the community's language, and offers no trial
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member))
    assert words in page.lower() and "id=trial-used" in page and "id=trial>" not in page


def test_join_page_offers_the_trial_to_a_member_who_may_have_it():
    stores, billing = _trial_plan()
    member = bound_member(stores)
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member))
    assert "id=trial>" in page and "7-day free trial" in page and "trial-used" not in page


class _Contacts:
    def __init__(self, emails: dict[str, str]) -> None:
        self.emails = emails

    def email(self, member_id: str) -> str | None:
        return self.emails.get(member_id)

    def set_email(self, member_id: str, email: str) -> None:
        self.emails[member_id] = email

    def contact(self, member_id: str):
        return None

    def keep_email(self, member_id: str, seen) -> bool:
        self.emails[member_id] = seen.email
        return True


def _trialing(sub_id: str, member_id: str, fingerprint: str | None) -> str:
    event = se.subscription_event("customer.subscription.created", created=T0, member_id=member_id, status="trialing",
                                  sub_id=sub_id, customer=f"cus_{member_id}", event_id=f"evt_{sub_id}")
    if fingerprint:
        event["data"]["object"]["default_payment_method"] = {"id": "pm_x", "object": "payment_method",
                                                             "card": {"fingerprint": fingerprint}}
    return json.dumps(event)


def test_processor_records_a_trial_and_ends_a_second_trial_on_the_same_card():
    # Given two members with their own Discord accounts, and a processor that can end trials at Stripe
    h = Harness()
    ledger, ender = FakeTrialLedger(), FakeTrialEnder()
    h.stores = replace(h.stores, trials=ledger)
    h.processor.stores = h.stores
    h.processor.trial_ender = ender
    h.member("mbr_1", "111111111111111111")
    h.member("mbr_2", "222222222222222222")
    # When the first starts a trial with a card, then the second starts one with the same card
    h.processor.apply(_trialing("sub_a", "mbr_1", "fp_same"), T0)
    h.processor.apply(_trialing("sub_b", "mbr_2", "fp_same"), T0)
    # Then both accounts and the card are recorded (hashed), and only the second trial is ended at Stripe
    assert trial_key("discord", "111111111111111111") in ledger.keys and trial_key("card", "fp_same") in ledger.keys
    assert ender.ended == [("sub_b", "membergate-trial-end-sub_b")]


def test_processor_trial_update_of_the_same_subscription_is_not_a_repeat():
    # Given a trialing subscription recorded once
    h = Harness()
    ledger, ender = FakeTrialLedger(), FakeTrialEnder()
    h.stores = replace(h.stores, trials=ledger)
    h.processor.stores = h.stores
    h.processor.trial_ender = ender
    h.member("mbr_1", "111111111111111111")
    h.processor.apply(_trialing("sub_a", "mbr_1", "fp_1"), T0)
    # When Stripe sends another trialing snapshot of it / Then nothing is ended
    event = json.loads(_trialing("sub_a", "mbr_1", "fp_1"))
    event["id"], event["type"] = "evt_sub_a_2", "customer.subscription.updated"
    h.processor.apply(json.dumps(event), T0 + 60)
    assert ender.ended == []


def _card_harness() -> tuple[Harness, FakeTrialLedger, FakeTrialEnder]:
    from tests.support.billing_fakes import FakeAudit
    from tests.support.mail import FakeCards

    h = Harness()
    ledger, ender = FakeTrialLedger(), FakeTrialEnder()
    h.stores = replace(h.stores, trials=ledger, cards=FakeCards(), audit=FakeAudit())
    h.processor.stores = h.stores
    h.processor.trial_ender = ender
    h.member("mbr_1", "111111111111111111")
    h.member("mbr_2", "222222222222222222")
    return h, ledger, ender


def _attached(customer: str, fingerprint: str | None, created: int, pm_id: str) -> str:
    event = se.payment_method_event(created=created, pm_id=pm_id, customer=customer)
    event["data"]["object"]["card"]["fingerprint"] = fingerprint
    event["id"] = f"evt_{pm_id}"
    return json.dumps(event)


def test_processor_card_attached_after_the_trialing_subscription_ends_a_second_trial():
    # Given the first member's trial was backed by a card (attached after its subscription event)
    h, ledger, ender = _card_harness()
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0)
    h.processor.apply(_attached("cus_mbr_1", "fp_same", T0 + 1, "pm_a"), T0 + 1)
    # When the second member's trial starts, and only then is the same card attached
    h.processor.apply(_trialing("sub_b", "mbr_2", None), T0 + 2)
    outcome = h.processor.apply(_attached("cus_mbr_2", "fp_same", T0 + 3, "pm_b"), T0 + 3)
    # Then the card is kept hashed, and the second trial only is ended at Stripe
    assert outcome.status == "processed"
    assert ledger.keys.get(trial_key("card", "fp_same")) == "sub_a"
    assert ender.ended == [("sub_b", "membergate-trial-end-sub_b")]
    assert "fp_same" not in repr(h.stores.cards.cards)


def test_processor_card_attached_before_the_trialing_subscription_ends_a_second_trial():
    # Given the same card attached to two customers before their subscription events arrive
    h, ledger, ender = _card_harness()
    h.processor.apply(_attached("cus_mbr_1", "fp_same", T0, "pm_a"), T0)
    h.processor.apply(_attached("cus_mbr_2", "fp_same", T0, "pm_b"), T0)
    # When the trialing subscriptions arrive afterwards
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0 + 1)
    h.processor.apply(_trialing("sub_b", "mbr_2", None), T0 + 2)
    # Then the first trial keeps the card, and the second is ended at Stripe
    assert ledger.keys.get(trial_key("card", "fp_same")) == "sub_a"
    assert ender.ended == [("sub_b", "membergate-trial-end-sub_b")]


def test_processor_duplicate_card_attached_event_ends_nothing_more():
    # Given a member's own trial with its card attached
    h, ledger, ender = _card_harness()
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0)
    attached = _attached("cus_mbr_1", "fp_1", T0 + 1, "pm_a")
    h.processor.apply(attached, T0 + 1)
    # When Stripe sends the same event again, and a trialing update follows
    h.processor.apply(attached, T0 + 2)
    update = json.loads(_trialing("sub_a", "mbr_1", None))
    update["id"], update["type"] = "evt_sub_a_2", "customer.subscription.updated"
    h.processor.apply(json.dumps(update), T0 + 60)
    # Then the card counts for that one trial and nothing is ended
    assert ledger.keys.get(trial_key("card", "fp_1")) == "sub_a"
    assert ender.ended == []


def _trial_audit(h: Harness) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.target, e.member_id) for e in h.stores.audit.entries.values() if e.action.startswith("trial.")]


def _snapshot(sub_id: str, member_id: str, type_: str, created: int, event_id: str) -> str:
    event = json.loads(_trialing(sub_id, member_id, None))
    event["id"], event["type"], event["created"] = event_id, type_, created
    return json.dumps(event)


def test_processor_card_of_an_unknown_customer_is_kept_and_ends_the_trial_of_the_member_made_later():
    # Given the first member's trial with a card, and the same card attached to a customer no member has yet
    h, ledger, ender = _card_harness()
    h.processor.apply(_attached("cus_mbr_1", "fp_same", T0, "pm_a"), T0)
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0 + 1)
    early = h.processor.apply(_attached("cus_dashboard", "fp_same", T0 + 2, "pm_d"), T0 + 2)
    # When a trialing subscription made in the Stripe dashboard for that customer arrives (no member id in it)
    dashboard = se.subscription_event("customer.subscription.created", created=T0 + 3, status="trialing",
                                      customer="cus_dashboard", sub_id="sub_d", event_id="evt_sub_d")
    outcome = h.processor.apply(json.dumps(dashboard), T0 + 3)
    # Then the card was only kept at first (no member to check), and the new member's trial is ended, audited
    assert early.status == "processed" and early.member_id is None and "trial" not in early.detail
    assert outcome.status == "processed" and outcome.member_id is not None
    assert ender.ended == [("sub_d", "membergate-trial-end-sub_d")]
    assert _trial_audit(h) == [("trial.end", "sub_d", outcome.member_id)]


def test_processor_card_without_fingerprint_is_kept_for_expiry_and_ends_no_trial():
    # Given the first member's trial with a card, and the second member trialing
    h, ledger, ender = _card_harness()
    h.processor.apply(_attached("cus_mbr_1", "fp_same", T0, "pm_a"), T0)
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0 + 1)
    h.processor.apply(_trialing("sub_b", "mbr_2", None), T0 + 2)
    # When a card whose payload has no fingerprint (Stripe's is nullable) is attached to the second member
    outcome = h.processor.apply(_attached("cus_mbr_2", None, T0 + 3, "pm_b"), T0 + 3)
    # Then it is the card on file (its expiry counts), it uses no trial and ends none
    assert outcome.status == "processed"
    kept = h.stores.cards.card("cus_mbr_2")
    assert kept is not None and kept.payment_method_id == "pm_b" and kept.trial_key is None
    assert [k for k, sub in ledger.keys.items() if sub == "sub_b" and k.startswith("card:")] == []
    assert ender.ended == [] and _trial_audit(h) == []


def test_processor_repeated_card_seen_by_both_events_and_redelivered_ends_the_trial_once():
    # Given the first member's trial with a card
    h, ledger, ender = _card_harness()
    h.processor.apply(_attached("cus_mbr_1", "fp_same", T0, "pm_a"), T0)
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0 + 1)
    # When the second member attaches it, their trial starts (ended), the card is attached again under a new
    # payment method (before Stripe's update says the trial is over), and each event is delivered twice
    attach = _attached("cus_mbr_2", "fp_same", T0 + 2, "pm_b")
    trial = _trialing("sub_b", "mbr_2", None)
    again = _attached("cus_mbr_2", "fp_same", T0 + 4, "pm_b2")
    statuses = [h.processor.apply(body, T0 + 5).status for body in (attach, trial, again, attach, trial, again)]
    later = h.processor.apply(_snapshot("sub_b", "mbr_2", "customer.subscription.updated", T0 + 6, "evt_b_upd"), T0 + 6)
    # Then the second trial is ended at Stripe once and audited once; the first member's is untouched
    assert statuses == ["processed"] * 3 + ["duplicate"] * 3 and later.status == "processed"
    assert ender.ended == [("sub_b", "membergate-trial-end-sub_b")]
    assert _trial_audit(h) == [("trial.end", "sub_b", "mbr_2")]


def test_processor_member_re_attaching_their_own_card_keeps_their_trial():
    # Given a member whose trial started with their card attached first
    h, ledger, ender = _card_harness()
    h.processor.apply(_attached("cus_mbr_1", "fp_1", T0, "pm_a"), T0)
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0 + 1)
    # When they attach the same card again (a new payment method, as a new Checkout or the portal makes),
    # and Stripe says the trial will end soon
    again = h.processor.apply(_attached("cus_mbr_1", "fp_1", T0 + 2, "pm_a2"), T0 + 2)
    h.processor.apply(_snapshot("sub_a", "mbr_1", "customer.subscription.trial_will_end", T0 + 3, "evt_a_twe"), T0 + 3)
    # Then the card counts for their own trial only: nothing is ended or audited
    assert again.status == "processed" and "card checked for 1 trial(s)" in again.detail
    assert ledger.keys[trial_key("card", "fp_1")] == "sub_a"
    assert ender.ended == [] and _trial_audit(h) == []


def test_processor_trial_email_is_kept_when_checkout_completes_after_the_trialing_subscription():
    # Given a new member whose trialing subscription is applied before its Checkout (Stripe's creation order):
    # no email is known yet when the trial starts
    from tests.support.mail import FakeContacts

    h, ledger, ender = _card_harness()
    h.stores = replace(h.stores, contacts=FakeContacts())
    h.processor.stores = h.stores
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0)
    # When the Checkout completes with the buyer's email (and again: a redelivery under another id)
    completed = se.checkout_completed(created=T0 + 1, member_id="mbr_1", customer="cus_mbr_1", sub_id="sub_a",
                                      payment_status="no_payment_required")
    completed["data"]["object"]["customer_details"] = {"email": "Ana@Example.com", "name": None}
    first = h.processor.apply(json.dumps(completed), T0 + 1)
    completed["id"] = "evt_checkout_again"
    h.processor.apply(json.dumps(completed), T0 + 2)
    # Then the email counts as used by that trial: a later checkout with it is offered none
    assert first.status == "processed"
    assert ledger.keys.get(trial_key("email", "ana@example.com")) == "sub_a"
    assert ender.ended == []


def test_processor_card_attached_for_an_erased_member_is_not_kept_nor_checked():
    from membergate.domain.lifecycle import erased_card

    # Given an erased member's customer (the card store says erased) with a trialing subscription,
    # and another member's trial on the same card
    h, ledger, ender = _card_harness()
    h.processor.apply(_attached("cus_mbr_1", "fp_same", T0, "pm_a"), T0)
    h.processor.apply(_trialing("sub_a", "mbr_1", None), T0 + 1)
    h.processor.apply(_trialing("sub_b", "mbr_2", None), T0 + 2)
    h.stores.cards.save_card("cus_mbr_2", erased_card(T0 + 3))
    # When a card is attached to the erased member's customer
    outcome = h.processor.apply(_attached("cus_mbr_2", "fp_same", T0 + 4, "pm_b"), T0 + 4)
    # Then nothing of the card is kept or used: no key for their subscription, nothing ended
    assert outcome.detail == "member erased: card not kept"
    assert h.stores.cards.card("cus_mbr_2").erased and h.stores.cards.card("cus_mbr_2").trial_key is None
    assert ender.ended == [] and _trial_audit(h) == []
