"""Access coming back after a removal the member was told about: one "access back" message saying what changed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from membergate.domain.returns import ACCESS_BACK, return_cause
from membergate.ports import AccessWork, WorkKind
from membergate.services import removals
from membergate.services.billing_events import BillingEventProcessor
from tests.support import stripe_events as se
from tests.support.harness import DAY, ROLE, T0, Harness
from tests.support.removals import FakeRemovalLog
from tests.support.timeline import timed_harness
from tests.unit.test_refunds_disputes import LIFETIME, PASS, FakePayments, PaidInvoice, renewal_refund

pytestmark = pytest.mark.unit

USER = "555555555555555555"  # the harness member's Discord id


def _harness(locale: str = "en") -> Harness:
    h = timed_harness(locale=locale)
    h.stores = replace(h.stores, removals=FakeRemovalLog())
    h.dispatcher.stores = h.processor.stores = h.stores
    h.stores.catalog.add_plan(PASS)
    h.stores.catalog.add_plan(LIFETIME)
    h.member()
    return h


def _subscribed(h: Harness) -> None:
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"), se.invoice_event("invoice.paid", created=T0))
    h.run_access()
    assert h.roles() == {ROLE}


@pytest.mark.parametrize(("locale", "said"), [
    ("en", "Good news: you have your access to The Club back. The dispute on your payment is closed and the payment "
           "stands, so Monthly is active again."),
    ("fr", "Bonne nouvelle : tu as retrouvé ton accès à The Club. Le litige sur ton paiement est clos et le paiement "
           "est maintenu : Monthly est de nouveau actif."),
])
def test_dispute_won_after_a_removal_tells_the_member_once_that_access_is_back(locale, said):
    # Given a subscriber removed while a dispute on their renewal was open, and told so
    h = _harness(locale)
    _subscribed(h)
    h.processor = BillingEventProcessor(h.stores, h.queue, payments=FakePayments(
        {"pi_renewal": PaidInvoice("in_1", "sub_1", "cus_1")}))
    h.at(T0 + DAY).deliver(se.dispute_event(created=T0 + DAY, payment_intent="pi_renewal"))
    h.run_access()
    assert h.roles() in (set(), None)
    told = len(h.dm_texts())
    # When the creator wins the dispute (and Stripe delivers it twice), and access work runs again
    won = se.dispute_event("charge.dispute.closed", created=T0 + 20 * DAY, status="won", payment_intent="pi_renewal")
    h.at(T0 + 20 * DAY).deliver(won, won)
    h.run_access()
    h.queue.send([AccessWork(WorkKind.RESYNC, "mbr_1", "com_1")])
    h.run_access()
    # Then the role is back and one message says so, with what changed, in the member's language
    assert h.roles() == {ROLE}
    new = h.dm_texts()[told:]
    assert len(new) == 1 and new[0].startswith(said), new
    assert "/join/pln_monthly?manage=1" in new[0]


def test_renewal_paid_after_a_refund_removed_access_says_a_payment_went_through():
    # Given a subscriber whose last payment was refunded in full: removed, and told
    h = _harness()
    _subscribed(h)
    refund = renewal_refund(T0)
    refund["data"]["object"]["created"] = T0
    h.at(T0 + DAY).deliver(refund)
    h.run_access()
    assert h.roles() in (set(), None)
    told = len(h.dm_texts())
    # When the next renewal is paid
    h.at(T0 + 31 * DAY).deliver(se.invoice_event("invoice.paid", created=T0 + 30 * DAY))
    h.run_access()
    # Then access is back with one message naming the payment
    assert h.roles() == {ROLE}
    assert h.dm_texts()[told:] == [
        "Good news: you have your access to The Club back. A payment for Monthly went through, so it is active again. "
        "Welcome back! Your page, to see or manage your membership: https://m.example/join/pln_monthly?manage=1"]


def test_first_access_sends_the_welcome_and_no_access_back():
    # Given a new member / When they pay / Then the welcome only
    h = _harness()
    _subscribed(h)
    texts = h.dm_texts()
    assert len(texts) == 1 and texts[0].startswith("Welcome to The Club")


def test_undo_of_a_removal_sends_access_restored_and_no_access_back():
    # Given a subscriber removed when their subscription was cancelled, and told
    h = _harness()
    _subscribed(h)
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", status="canceled"))
    h.run_access()
    told = len(h.dm_texts())
    (removal,) = h.stores.removals.items.values()
    # When the creator undoes the removal, its converge work run before its message
    removals.undo(h.stores, h.queue, removal_id=removal.id, reason="by mistake", days=3, actor="creator",
                  now=h.now + 60, window_days=7)
    h.queue.work.sort(key=lambda item: item[0].kind.value != "converge")
    h.at(h.now + 60).run_access()
    # Then the role is back and the one message is the undo's, with its end date
    assert h.roles() == {ROLE}
    new = h.dm_texts()[told:]
    assert len(new) == 1 and "the creator restored it" in new[0] and "until" in new[0], new


def test_removal_the_member_was_not_told_about_brings_no_access_back_message():
    # Given a subscriber removed while their DMs were closed (the receipt failed for good, no email known)
    h = _harness()
    _subscribed(h)
    h.connector.closed_dms.add(USER)
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", status="canceled"))
    h.run_access()
    assert h.roles() in (set(), None)
    h.connector.closed_dms.discard(USER)
    told = len(h.dm_texts())
    # When they subscribe again
    h.at(T0 + 2 * DAY).deliver(se.subscription_event(created=T0 + 2 * DAY, member_id="mbr_1", status="active"))
    h.run_access()
    # Then access comes back without a message about a removal they never heard of
    assert h.roles() == {ROLE} and h.dm_texts()[told:] == []


@pytest.mark.parametrize(("reason", "removed_plan", "granting", "cause"), [
    ("dispute", "pln_a", ["pln_a"], "dispute_closed"),
    ("refunded", "pln_a", ["pln_a"], "paid_again"),
    ("grace_expired", "pln_a", ["pln_a", "pln_b"], "paid_again"),
    ("canceled", "pln_a", ["pln_a"], "subscribed_again"),
    ("pass_expired", "pln_a", ["pln_a"], "bought_again"),
    ("dispute", "pln_a", ["pln_b"], "other"),
    ("revoked", "pln_a", ["pln_a"], "again"),
    ("", None, ["pln_a"], "other"),
    ("dispute", "pln_a", [], "again"),
])
def test_return_cause_names_the_removals_reason_only_when_its_plan_gives_access_again(reason, removed_plan, granting,
                                                                                        cause):
    # Given what a removal was for and the plans giving access now / When the cause is named / Then
    assert return_cause(reason, removed_plan, granting) == cause


def test_access_back_kind_has_a_text_for_every_cause_in_every_language():
    from membergate.domain.i18n import CATALOGUES
    from membergate.domain.returns import CAUSES

    # Given every cause / Then each has its words in en and fr, and the message itself exists
    for texts in CATALOGUES.values():
        assert f"msg.{ACCESS_BACK}" in texts
        assert all(f"msg.back.{cause}" in texts for cause in CAUSES)
