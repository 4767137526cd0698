"""Risky branches each with a test of its own: payment_action_required, a checkout attempt planned
but never created at Stripe, an access-work enqueue that always fails."""

from __future__ import annotations

import pytest

from membergate.domain.errors import RetryableError
from membergate.domain.model import LedgerStatus, WorkKind
from membergate.services.checkout import CheckoutRequest, start_checkout
from tests.support import stripe_events as se
from tests.support.harness import T0, Harness

pytestmark = pytest.mark.unit


def _checkout(h: Harness):
    request = CheckoutRequest("mbr_1", "pln_monthly", None, "https://m.example/ok", "https://m.example/no", waiver=True)
    return start_checkout(request, stores=h.stores, billing=h.billing, now=h.now)


def _subscribed(h: Harness) -> None:
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    h.run_access()


def test_payment_action_required_queues_one_notify_with_the_invoice_link():
    # Given a paying member
    h = Harness()
    _subscribed(h)
    # When Stripe says the renewal needs the member's confirmation (3-D Secure)
    statuses = h.deliver(se.invoice_event("invoice.payment_action_required", created=T0 + 30 * 86_400,
                                          status="open", hosted_invoice_url="https://invoice.stripe.com/i/confirm"))
    work = h.queue.take()
    # Then one notify for that invoice is queued, carrying the link to confirm, and access is untouched
    assert statuses == ["processed"]
    assert [(w.kind, w.message_kind) for w in work] == [(WorkKind.NOTIFY, "payment_action_required")]
    assert dict(work[0].details)["invoice_url"] == "https://invoice.stripe.com/i/confirm"
    assert h.roles() is not None and h.states()["pln_monthly"].value == "active"


def test_payment_action_required_for_an_unknown_customer_is_ignored_without_work():
    # Given no member for the invoice's customer
    h = Harness()
    # When the event arrives
    statuses = h.deliver(se.invoice_event("invoice.payment_action_required", created=T0, customer="cus_nobody",
                                          status="open"))
    # Then it is ignored and nothing is queued
    assert statuses == ["ignored"]
    assert h.queue.take() == []


def test_checkout_attempt_planned_but_never_created_at_stripe_is_retried_with_the_same_key():
    # Given a member whose first checkout failed at Stripe after the attempt was planned
    h = Harness()
    h.member()
    h.billing.fail_with = RetryableError("Stripe timed out")
    with pytest.raises(RetryableError):
        _checkout(h)
    planned = h.stores.checkouts.get_attempt("mbr_1", "pln_monthly")
    assert planned is not None and planned.session_id is None
    # When the member tries again once Stripe answers
    h.billing.fail_with = None
    session = _checkout(h)
    # Then the same attempt (same idempotency key) got its session, and no second attempt was planned
    stored = h.stores.checkouts.get_attempt("mbr_1", "pln_monthly")
    assert stored.attempt == planned.attempt == 1
    assert stored.session_id == session.id and stored.url == session.url
    assert list(h.billing.sessions) == ["membergate-checkout-mbr_1-pln_monthly-1"]


class _FailingQueue:
    """An access queue whose every send fails (SQS down), recording the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def send(self, work, delay_seconds: int = 0) -> None:
        self.attempts += 1
        raise RetryableError("SQS unavailable")


def test_enqueue_that_always_fails_leaves_the_event_unprocessed_for_lambda_to_retry():
    # Given the access queue refusing every send
    h = Harness()
    h.member()
    failing = _FailingQueue()
    h.processor.access_queue = failing
    # (the subscription's creation, still awaiting its checkout, queues no work: nothing to do yet)
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"))
    event = se.checkout_completed(created=T0, member_id="mbr_1")
    # When the event that grants access is applied
    with pytest.raises(RetryableError):
        h.deliver(event)
    # Then the send was tried, and the ledger does not call the event processed (Lambda retries it)
    assert failing.attempts >= 1
    ledger = h.stores.ledger.get(event["id"])
    assert ledger is None or ledger.status not in ("processed", "ignored", "failed")


def test_enqueue_failure_then_retry_still_queues_the_access_work():
    # Given the grant's events applied while the queue refused every send
    h = Harness()
    h.member()
    real = h.queue
    h.processor.access_queue = _FailingQueue()
    # (the subscription's creation, still awaiting its checkout, queues no work: nothing to do yet)
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"))
    event = se.checkout_completed(created=T0, member_id="mbr_1")
    with pytest.raises(RetryableError):
        h.deliver(event)
    # When Lambda retries it once the queue is back
    h.processor.access_queue = real
    h.deliver(event)
    h.run_access()
    # Then the member gets the role they paid for
    assert h.roles() is not None


def test_enqueue_failure_marks_the_event_access_unsent_in_the_ledger():
    # Given the access queue refusing every send
    h = Harness()
    h.member()
    h.processor.access_queue = _FailingQueue()
    # (the subscription's creation, still awaiting its checkout, queues no work: nothing to do yet)
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"))
    event = se.checkout_completed(created=T0, member_id="mbr_1")
    # When the event that grants access is applied
    with pytest.raises(RetryableError):
        h.deliver(event)
    # Then the ledger remembers that its access work was never queued (not terminal: Lambda retries)
    assert h.stores.ledger.get(event["id"]).status == LedgerStatus.ACCESS_UNSENT


def test_a_duplicate_of_a_processed_event_queues_no_extra_convergence():
    # Given a paying member whose events were applied and whose access converged
    h = Harness()
    h.member()
    event = se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1")
    h.deliver(event, se.checkout_completed(created=T0, member_id="mbr_1"))
    h.run_access()
    # When Stripe delivers the same subscription event again
    statuses = h.deliver(event)
    # Then it is a duplicate and no access work is queued (the forced convergence is for lost sends only)
    assert statuses == ["duplicate"]
    assert h.queue.take() == []
