"""The consent a member gives on the Checkout page: read from the session, kept once, on the record it started."""

from __future__ import annotations

import itertools

import pytest

from membergate.domain.consent import CheckoutConsent, checkout_consent, keep_consent, text_version
from membergate.domain.model import OnGraceEnd, Plan, PlanGrant, PlanKind
from tests.support import stripe_events as se
from tests.support.harness import DAY, T0, Harness

pytestmark = pytest.mark.unit

WAIVER = "Access starts at once: you waive your 14-day withdrawal right."

SESSIONS = [
    # (name, consent, custom_text, expected terms_of_service, expected text version)
    ("box ticked, waiver shown", {"promotions": None, "terms_of_service": "accepted"}, {"submit": {"message": WAIVER}},
     "accepted", text_version(WAIVER)),
    ("no terms box (no TermsUrl), waiver shown", None, {"submit": {"message": WAIVER}}, "", text_version(WAIVER)),
    ("nothing asked", None, None, "", ""),
    ("submit text null (Stripe's shape when unset)", None, {"submit": None, "after_submit": None}, "", ""),
    ("an unknown consent value is no consent", {"terms_of_service": "maybe"}, None, "", ""),
    ("hostile shapes: lists and numbers", ["accepted"], {"submit": {"message": 42}}, "", ""),
]


@pytest.mark.parametrize("name,consent,custom_text,terms,version", SESSIONS, ids=[c[0] for c in SESSIONS])
def test_checkout_consent_read_from_the_session(name, consent, custom_text, terms, version):
    # Given a completed Checkout Session (fields shaped as in Stripe's spec, or not)
    session = {"id": "cs_1", "consent": consent, "custom_text": custom_text}
    # When its consent is read
    found = checkout_consent(session, T0)
    # Then the ticked box and the waiver text's version are kept, nothing else
    assert found == CheckoutConsent("cs_1", T0, terms, version)
    assert found.express is (terms == "accepted")


def test_text_version_names_one_wording():
    assert text_version(WAIVER) == text_version(WAIVER) != text_version(WAIVER + " ")
    assert text_version("") == ""


def test_keep_consent_first_recorded_stays_in_any_order():
    # Given the same session seen twice, and an accepted consent beside one without a box
    seen = [CheckoutConsent("cs_1", T0, "accepted", "sha256:a"), CheckoutConsent("cs_1", T0 + 5, "accepted", "sha256:a"),
            CheckoutConsent("cs_2", T0 - 5, "", "sha256:b"), None]
    results = set()
    # When folded in every order
    for order in itertools.permutations(seen):
        kept = None
        for consent in order:
            kept = keep_consent(kept, consent)
        results.add(kept)
    # Then the result is always the earliest express consent
    assert results == {CheckoutConsent("cs_1", T0, "accepted", "sha256:a")}


def _completed(member_id: str, *, consent: dict | None, message: str | None, created: int = T0, **kw) -> dict:
    event = se.checkout_completed(created=created, member_id=member_id, **kw)
    event["data"]["object"]["consent"] = consent
    event["data"]["object"]["custom_text"] = {"submit": {"message": message} if message else None}
    return event


def test_processor_records_the_consent_on_the_subscription_and_a_redelivery_keeps_it():
    # Given a member who ticked the terms box under the waiver text, and their subscription
    h = Harness()
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              _completed("mbr_1", consent={"terms_of_service": "accepted"}, message=WAIVER))
    # When the same session's completion comes again a day later (a redelivery with a new event id)
    h.at(T0 + DAY).deliver({**_completed("mbr_1", consent=None, message=None, created=T0 + DAY), "id": "evt_again"})
    # Then the subscription record keeps the first, express consent with the wording's version
    [record] = h.stores.subscriptions.for_member("mbr_1")
    assert record.consent == CheckoutConsent("cs_test_1", T0, "accepted", text_version(WAIVER))


def test_processor_records_the_consent_on_a_one_time_grant():
    # Given a lifetime plan bought through a payment-mode session with the box ticked
    h = Harness()
    h.member()
    event = _completed("mbr_1", consent={"terms_of_service": "accepted"}, message=WAIVER)
    session = event["data"]["object"]
    session.update(mode="payment", subscription=None, payment_intent="pi_1", metadata={
        "membergate_member_id": "mbr_1", "membergate_plan_id": "pln_life"})
    h.stores.catalog.add_plan(Plan("pln_life", "Life", ("price_life",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
                                   kind=PlanKind.LIFETIME))
    # When the processor applies it
    h.deliver(event)
    # Then the grant carries the consent
    [grant] = h.stores.grants.for_member("mbr_1")
    assert grant.consent == CheckoutConsent("cs_test_1", T0, "accepted", text_version(WAIVER))
