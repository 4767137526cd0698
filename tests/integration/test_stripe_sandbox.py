"""The local Stripe sandbox driven by the real stripe SDK: API, hosted checkout and portal, controls, shapes, signing."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import stripe
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Response

from infra.local.stripe_sandbox import (
    SandboxError,
    StripeSandbox,
    WsgiStripeHttpClient,
    shift,
    signed_delivery,
)
from infra.local.stripe_shapes import is_new_shape
from membergate.adapters.stripe_billing import StripeBillingGateway
from membergate.domain.errors import PermanentError
from membergate.domain.model import CheckoutGate
from membergate.domain.signature import verify_signature
from membergate.domain.stripe_events import (
    checkout_completion,
    invoice_fact,
    invoice_subscription_id,
    parse_event,
    subscription_snapshot,
)
from tests.support.specs import stripe_fixture

pytestmark = pytest.mark.integration

BASE = "http://127.0.0.1:3000/_local/stripe"
T0 = 1_800_000_000
DAY = 86_400
SIGNUP_CARD = [
    "payment_method.attached",  # Checkout saves the card to the customer first
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "customer.subscription.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
    "checkout.session.completed",
]


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class Stack:
    sandbox: StripeSandbox
    client: stripe.StripeClient
    clock: Clock
    delivered: list[dict] = field(default_factory=list)

    @property
    def browser(self) -> Client:
        return Client(self.sandbox.wsgi_app)

    def types(self, start: int = 0) -> list[str]:
        return [e["type"] for e in self.delivered[start:]]

    def last(self, type_: str) -> dict:
        return [e for e in self.delivered if e["type"] == type_][-1]


def new_sandbox(clock, deliver, **kwargs) -> StripeSandbox:
    """A sandbox with the price the tests' sessions sell (Stripe knows only the prices it was given)."""
    sandbox = StripeSandbox(clock, deliver, BASE, **kwargs)
    sandbox.register_price("price_gold", 1000, "eur", product_name="Gold")
    return sandbox


def make_stack(api_version: str | None = None) -> Stack:
    clock = Clock()
    delivered: list[dict] = []
    kwargs = {"api_version": api_version} if api_version else {}
    sandbox = new_sandbox(clock, delivered.append, **kwargs)
    client = stripe.StripeClient(
        "sk_test_local",
        base_addresses={"api": BASE},
        http_client=WsgiStripeHttpClient(sandbox.wsgi_app, BASE),
    )
    return Stack(sandbox, client, clock, delivered)


@pytest.fixture
def stack() -> Stack:
    return make_stack()


def session_params(customer_id: str, member_id: str = "mem_1", **overrides) -> dict:
    params = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": member_id,
        "line_items": [{"price": "price_gold", "quantity": 1}],
        "success_url": "http://127.0.0.1:3000/joined?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:3000/join",
        "expires_at": T0 + 3600,
        "metadata": {"membergate_member_id": member_id, "membergate_plan_id": "plan_gold"},
        "subscription_data": {"metadata": {"membergate_member_id": member_id, "membergate_plan_id": "plan_gold"}},
        "allow_promotion_codes": True,
    }
    params.update(overrides)
    return params


def open_session(stack: Stack, member_id: str = "mem_1", **overrides):
    customer = stack.client.v1.customers.create(
        {"metadata": {"membergate_member_id": member_id}}, {"idempotency_key": f"cus-{member_id}"}
    )
    return stack.client.v1.checkout.sessions.create(
        session_params(customer.id, member_id, **overrides), {"idempotency_key": f"cs-{member_id}"}
    )


def pay(stack: Stack, session_id: str, outcome: str):
    return stack.browser.post(f"/pay/{session_id}", data={"outcome": outcome})


def subscribe(stack: Stack, outcome: str = "card", member_id: str = "mem_1") -> tuple[str, str]:
    session = open_session(stack, member_id)
    assert pay(stack, session.id, outcome).status_code == 303
    return session.id, stack.last("checkout.session.completed")["data"]["object"]["subscription"]


# --- API: customers, sessions, idempotency, auth -------------------------------------------------


def test_customers_create_same_idempotency_key_returns_same_customer(stack):
    # Given a customer created under an idempotency key
    first = stack.client.v1.customers.create({"metadata": {"membergate_member_id": "mem_1"}}, {"idempotency_key": "k1"})
    # When the same request is retried with the same key
    again = stack.client.v1.customers.create({"metadata": {"membergate_member_id": "mem_1"}}, {"idempotency_key": "k1"})
    # Then the stored answer is replayed: one customer, one customer.created
    assert again.id == first.id and first.id.startswith("cus_")
    assert first.metadata["membergate_member_id"] == "mem_1"
    assert stack.types() == ["customer.created"]
    assert stack.client.v1.customers.retrieve(first.id).id == first.id


def test_checkout_sessions_create_same_idempotency_key_returns_same_session(stack):
    # Given a customer
    customer = stack.client.v1.customers.create({}, {"idempotency_key": "c"})
    # When the same session request is sent twice under one key
    first = stack.client.v1.checkout.sessions.create(session_params(customer.id), {"idempotency_key": "s"})
    again = stack.client.v1.checkout.sessions.create(session_params(customer.id), {"idempotency_key": "s"})
    # Then both answers are the same open session, whose URL is the local hosted page
    assert again.id == first.id and first.id.startswith("cs_test_")
    assert first.url == f"{BASE}/pay/{first.id}"
    assert (first.status, first.payment_status, first.mode) == ("open", "unpaid", "subscription")
    assert first.expires_at == T0 + 3600
    assert first.client_reference_id == "mem_1" and first.customer == customer.id
    assert first.amount_total == 1000 and first.currency == "eur"


def test_checkout_sessions_create_reused_key_with_other_params_raises_idempotency_error(stack):
    # Given a session created under key "s"
    customer = stack.client.v1.customers.create({}, {"idempotency_key": "c"})
    stack.client.v1.checkout.sessions.create(session_params(customer.id), {"idempotency_key": "s"})
    # When the key is reused with different parameters
    with pytest.raises(stripe.IdempotencyError) as raised:
        stack.client.v1.checkout.sessions.create(session_params(customer.id, "mem_2"), {"idempotency_key": "s"})
    # Then Stripe's idempotency_error comes back as a 400
    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "idempotency_error"


@pytest.mark.parametrize("api_key", ["sk_" + "live_123456789", "pk_test_123456789"])
def test_api_non_test_secret_key_rejected_401(api_key):
    # Given a client holding a key the sandbox must refuse
    stack = make_stack()
    client = stripe.StripeClient(
        api_key, base_addresses={"api": BASE}, http_client=WsgiStripeHttpClient(stack.sandbox.wsgi_app, BASE)
    )
    # When it calls the API
    with pytest.raises(stripe.AuthenticationError) as raised:
        client.v1.customers.create({})
    # Then the answer is a 401 in Stripe's error shape
    error = raised.value.json_body["error"]
    assert raised.value.http_status == 401
    assert set(error) >= {"type", "code", "message"} and error["type"] == "invalid_request_error"


def test_api_missing_key_rejected_401(stack):
    # When a request carries no Authorization header
    response = stack.browser.post("/v1/customers", data={})
    # Then it is refused as Stripe refuses it
    assert response.status_code == 401
    assert "did not provide an API key" in response.json["error"]["message"]


def test_checkout_sessions_create_unknown_customer_rejected(stack):
    # When a session names a customer Stripe never saw
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.checkout.sessions.create(session_params("cus_nope"))
    # Then it is a 400 resource_missing on the customer param
    assert (raised.value.http_status, raised.value.code, raised.value.param) == (400, "resource_missing", "customer")


@pytest.mark.parametrize("offset", [29 * 60, 24 * 3600 + 1])
def test_checkout_sessions_create_expires_at_outside_window_rejected(stack, offset):
    # Given a customer
    customer = stack.client.v1.customers.create({})
    # When expires_at is under 30 minutes or over 24 hours after the sandbox clock
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.checkout.sessions.create(session_params(customer.id, expires_at=T0 + offset))
    # Then Stripe's rule is enforced
    assert raised.value.param == "expires_at"


@pytest.mark.parametrize(
    ("missing", "param"),
    [("line_items", "line_items"), ("success_url", "success_url"), ("mode", "mode")],
)
def test_checkout_sessions_create_required_param_missing_rejected(stack, missing, param):
    # Given a customer and a request lacking one required param
    customer = stack.client.v1.customers.create({})
    params = session_params(customer.id)
    del params[missing]
    # When it is sent
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.checkout.sessions.create(params)
    # Then it fails as parameter_missing on that param
    assert (raised.value.code, raised.value.param) == ("parameter_missing", param)


def test_checkout_sessions_create_unknown_parameter_rejected(stack):
    # When a request carries a parameter the sandbox does not know
    customer = stack.client.v1.customers.create({})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.checkout.sessions.create(session_params(customer.id, mystery="x"))
    # Then it is refused rather than silently ignored
    assert (raised.value.code, raised.value.param) == ("parameter_unknown", "mystery")


def test_checkout_sessions_create_unknown_price_rejected_resource_missing(stack):
    # Given a customer and a price id nobody registered
    customer = stack.client.v1.customers.create({})
    # When a session uses it (behaviour changed: the sandbox used to invent a 10.00 EUR price)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.checkout.sessions.create(
            session_params(customer.id, line_items=[{"price": "price_nobody_made", "quantity": 1}])
        )
    # Then Stripe's answer comes back, and no price was made
    assert raised.value.http_status == 400
    assert (raised.value.code, raised.value.param) == ("resource_missing", "line_items[0][price]")
    with pytest.raises(stripe.InvalidRequestError):
        stack.client.v1.prices.retrieve("price_nobody_made")


def test_register_price_seeds_amount_and_interval(stack):
    # Given a seeded yearly price
    stack.sandbox.register_price("price_year", 9900, "usd", "year")
    # When a checkout uses it
    session = open_session(stack, line_items=[{"price": "price_year", "quantity": 2}])
    # Then the session totals it in its currency
    assert (session.amount_total, session.currency) == (19800, "usd")


def test_prices_create_with_product_data_returns_recurring_price(stack):
    # When a price is created the way a setup script would
    price = stack.client.v1.prices.create(
        {
            "product_data": {"name": "Gold"},
            "unit_amount": 1500,
            "currency": "eur",
            "recurring": {"interval": "month", "interval_count": 3},
        }
    )
    # Then it can be read back with its product and period
    again = stack.client.v1.prices.retrieve(price.id)
    assert price.id.startswith("price_") and again.product.startswith("prod_")
    assert (again.unit_amount, again.recurring.interval_count) == (1500, 3)


# --- hosted checkout -------------------------------------------------------------------------------


def test_hosted_page_open_session_shows_amount_and_three_outcomes(stack):
    # Given an open session
    session = open_session(stack)
    # When the member opens its URL
    page = stack.browser.get(f"/pay/{session.id}")
    # Then it shows what is due and the three ways to pay
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "10.00 EUR" in text
    assert all(f"name=outcome value={outcome}>" in text for outcome in ("card", "sepa", "decline"))


def test_hosted_page_card_attaches_the_card_with_a_fingerprint_per_card_number(stack):
    # Given three members' sessions
    sessions = [open_session(stack, member) for member in ("mem_a", "mem_b", "mem_c")]
    # When two pay with the same card (typed with spaces or not) and the third with another
    for session, number in zip(sessions, ("4242 4242 4242 4242", "4242424242424242", "5555555555554444")):
        assert stack.browser.post(f"/pay/{session.id}", data={"outcome": "card", "card_number": number}).status_code == 303
    attached = [e["data"]["object"] for e in stack.delivered if e["type"] == "payment_method.attached"]
    created = [e["data"]["object"] for e in stack.delivered if e["type"] == "customer.subscription.created"]
    # Then each card is attached to its customer, shaped as Stripe's payment_method, with the card's
    # fingerprint the same for the same number only, and it is the subscription's default card
    assert len(attached) == 3
    assert set(attached[0]) == set(stripe_fixture("payment_method"))
    assert set(attached[0]["card"]) >= {"fingerprint", "exp_month", "exp_year", "last4", "brand"}
    fingerprints = [pm["card"]["fingerprint"] for pm in attached]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    assert [pm["card"]["last4"] for pm in attached] == ["4242", "4242", "4444"]
    assert [pm["customer"] for pm in attached] == [sub["customer"] for sub in created]
    assert [pm["id"] for pm in attached] == [sub["default_payment_method"] for sub in created]


def test_hosted_page_card_expiry_typed_is_the_attached_cards_and_a_malformed_one_is_refused(stack):
    # Given two open sessions
    typed, malformed = open_session(stack, "mem_exp_a"), open_session(stack, "mem_exp_b")
    before = len(stack.delivered)
    # When one member types a card expiring 01/27 and the other an expiry that is not one
    assert stack.browser.post(f"/pay/{typed.id}", data={"outcome": "card", "card_expiry": "01/27"}).status_code == 303
    refused = stack.browser.post(f"/pay/{malformed.id}", data={"outcome": "card", "card_expiry": "13/2\u0663"})
    # Then the first card is attached with that expiry; the second is refused on the page, its session still open
    attached = [e["data"]["object"] for e in stack.delivered[before:] if e["type"] == "payment_method.attached"]
    assert [(pm["card"]["exp_month"], pm["card"]["exp_year"]) for pm in attached] == [(1, 2027)]
    assert refused.status_code == 200 and "expiration date is incomplete" in refused.get_data(as_text=True)
    assert stack.client.v1.checkout.sessions.retrieve(malformed.id).status == "open"


def test_hosted_page_refuses_a_card_number_that_is_not_one(stack):
    # Given an open session
    session = open_session(stack)
    before = len(stack.delivered)
    # When the member types letters, or too few digits, as the card number
    answers = [stack.browser.post(f"/pay/{session.id}", data={"outcome": "card", "card_number": typed})
               for typed in ("4242-abcd", "4242", "４２４２４２４２４２４２４２４２")]
    # Then the page says so, nothing is sent, and the session is still open
    assert all(a.status_code == 200 and "Your card number is incorrect." in a.get_data(as_text=True) for a in answers)
    assert stack.types(before) == []
    assert stack.client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_hosted_page_card_redirects_and_emits_signup_sequence(stack):
    # Given an open session
    session = open_session(stack)
    before = len(stack.delivered)
    # When the member pays by card
    response = pay(stack, session.id, "card")
    # Then they are sent to success_url with the session id filled in
    assert response.status_code == 303
    assert response.headers["Location"] == f"http://127.0.0.1:3000/joined?session={session.id}"
    # And Stripe's signup events arrive in Stripe's order
    assert stack.types(before) == SIGNUP_CARD
    created = stack.last("customer.subscription.created")["data"]["object"]
    updated = stack.last("customer.subscription.updated")
    completed = stack.last("checkout.session.completed")["data"]["object"]
    paid = stack.last("invoice.paid")["data"]["object"]
    # And the subscription carries subscription_data.metadata, not the session's
    assert created["status"] == "incomplete"
    assert updated["data"]["object"]["status"] == "active"
    assert updated["data"]["previous_attributes"] == {"status": "incomplete"}
    assert created["metadata"] == {"membergate_member_id": "mem_1", "membergate_plan_id": "plan_gold"}
    assert created["items"]["data"][0]["current_period_end"] == shift(T0, 1, "month")
    # And the session and invoice link everything as Stripe does
    assert (completed["status"], completed["payment_status"]) == ("complete", "paid")
    assert completed["client_reference_id"] == "mem_1" and completed["customer"] == created["customer"]
    assert completed["subscription"] == created["id"] and completed["invoice"] == paid["id"]
    assert completed["metadata"]["membergate_plan_id"] == "plan_gold" and completed["url"] is None
    assert paid["parent"]["subscription_details"]["subscription"] == created["id"]
    assert (paid["status"], paid["amount_paid"], paid["billing_reason"]) == ("paid", 1000, "subscription_create")


def test_hosted_page_card_events_have_stripe_envelopes(stack):
    # Given a business clock set to some day
    stack.clock.now = T0 + 123
    session = open_session(stack, expires_at=T0 + 123 + 3600)
    # When the member pays
    pay(stack, session.id, "card")
    # Then every event is a test-mode envelope of the sandbox's version, created on that clock
    for event in stack.delivered:
        assert event["id"].startswith("evt_") and event["object"] == "event"
        assert event["livemode"] is False and event["pending_webhooks"] == 1
        assert event["api_version"] == stripe.api_version
        assert event["created"] == T0 + 123
        assert set(event["request"]) == {"id", "idempotency_key"}
    assert stack.sandbox.events() == stack.delivered


def test_hosted_page_sepa_completes_unpaid_and_settle_success_activates(stack):
    # Given a member who paid by SEPA Direct Debit
    session = open_session(stack)
    before = len(stack.delivered)
    assert pay(stack, session.id, "sepa").status_code == 303
    # Then the session completes unpaid and the subscription awaits its first payment
    assert stack.types(before) == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "checkout.session.completed",
    ]
    completed = stack.last("checkout.session.completed")["data"]["object"]
    assert completed["payment_status"] == "unpaid"
    sub_id = completed["subscription"]
    assert stack.sandbox.subscription(sub_id)["status"] == "incomplete"
    # When the bank confirms the debit days later
    stack.clock.now += 4 * DAY
    before = len(stack.delivered)
    stack.sandbox.settle_sepa(session.id, succeed=True)
    # Then the invoice is paid, the subscription active and the session paid
    assert stack.types(before) == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "checkout.session.async_payment_succeeded",
    ]
    assert stack.last("checkout.session.async_payment_succeeded")["data"]["object"]["payment_status"] == "paid"
    assert stack.sandbox.subscription(sub_id)["status"] == "active"


def test_settle_sepa_failure_emits_async_failed_and_expires_subscription(stack):
    # Given a pending SEPA signup
    session_id, sub_id = subscribe(stack, "sepa")
    before = len(stack.delivered)
    # When the debit fails
    stack.sandbox.settle_sepa(session_id, succeed=False)
    # Then the session reports the failure and the subscription never starts
    assert stack.types(before) == [
        "invoice.payment_failed",
        "checkout.session.async_payment_failed",
        "customer.subscription.updated",
        "invoice.voided",
    ]
    assert stack.sandbox.subscription(sub_id)["status"] == "incomplete_expired"
    # And there is nothing left to settle
    with pytest.raises(SandboxError):
        stack.sandbox.settle_sepa(session_id, succeed=True)


def test_hosted_page_decline_keeps_session_open_and_creates_nothing(stack):
    # Given an open session
    session = open_session(stack)
    before = len(stack.delivered)
    # When the card is declined
    response = pay(stack, session.id, "decline")
    # Then the page says so, the session stays open and nothing is created or sent
    assert response.status_code == 200 and "Your card was declined." in response.get_data(as_text=True)
    assert stack.types(before) == []
    assert stack.client.v1.checkout.sessions.retrieve(session.id).status == "open"
    # And the member can still pay
    assert pay(stack, session.id, "card").status_code == 303


def test_hosted_page_after_expiry_refuses_payment_and_emits_expired(stack):
    # Given a session whose expiry time has passed
    session = open_session(stack)
    stack.clock.now = T0 + 3601
    # When the member tries to pay
    response = pay(stack, session.id, "card")
    # Then the payment is refused and Stripe's expiry event is sent
    assert response.status_code == 400
    assert stack.types()[-1] == "checkout.session.expired"


def test_trial_price_signup_trialing_with_zero_invoice_then_renew_activates(stack):
    # Given a price with a 7-day trial
    stack.sandbox.register_price("price_trial", 500, "eur", trial_period_days=7)
    session = open_session(stack, line_items=[{"price": "price_trial", "quantity": 1}])
    # When the member completes checkout
    pay(stack, session.id, "card")
    # Then nothing is charged and the subscription is trialing until the trial ends
    completed = stack.last("checkout.session.completed")["data"]["object"]
    sub = stack.sandbox.subscription(completed["subscription"])
    assert completed["payment_status"] == "no_payment_required"
    assert sub["status"] == "trialing" and sub["trial_end"] == T0 + 7 * DAY
    assert stack.last("invoice.paid")["data"]["object"]["amount_paid"] == 0
    # When the trial ends and the first charge succeeds
    stack.sandbox.renew(sub["id"])
    # Then the subscription is active for a month from the trial end
    renewed = stack.sandbox.subscription(sub["id"])
    assert renewed["status"] == "active"
    assert renewed["items"]["data"][0]["current_period_start"] == T0 + 7 * DAY
    assert stack.last("invoice.paid")["data"]["object"]["amount_paid"] == 500


# --- billing controls -----------------------------------------------------------------------------


def test_renew_active_subscription_moves_item_period_from_old_end(stack):
    # Given an active subscription
    _, sub_id = subscribe(stack)
    old_end = stack.sandbox.subscription(sub_id)["items"]["data"][0]["current_period_end"]
    stack.clock.now = old_end + 10
    before = len(stack.delivered)
    # When its period ends and the renewal is paid
    stack.sandbox.renew(sub_id)
    # Then the period moves on from the old end and the cycle invoice is paid
    assert stack.types(before) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    updated = stack.last("customer.subscription.updated")
    item = updated["data"]["object"]["items"]["data"][0]
    assert (item["current_period_start"], item["current_period_end"]) == (old_end, shift(T0, 2, "month"))
    assert set(updated["data"]["previous_attributes"]) == {"items", "latest_invoice"}
    assert updated["data"]["previous_attributes"]["items"]["data"][0]["current_period_end"] == old_end
    invoice = stack.last("invoice.paid")["data"]["object"]
    assert invoice["billing_reason"] == "subscription_cycle"
    assert invoice["lines"]["data"][0]["period"] == {"start": old_end, "end": shift(T0, 2, "month")}
    assert stack.last("invoice.paid")["request"] == {"id": None, "idempotency_key": None}


def test_fail_renewal_active_subscription_goes_past_due_with_retry_scheduled(stack):
    # Given an active subscription at its period end
    _, sub_id = subscribe(stack)
    stack.clock.now = T0 + 31 * DAY
    before = len(stack.delivered)
    # When the renewal charge fails
    stack.sandbox.fail_renewal(sub_id)
    # Then Stripe's failure sequence arrives and a retry is scheduled
    assert stack.types(before) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    failed = stack.last("invoice.payment_failed")["data"]["object"]
    assert (failed["status"], failed["attempt_count"]) == ("open", 1)
    assert failed["next_payment_attempt"] == stack.clock.now + 3 * DAY
    past_due = stack.last("customer.subscription.updated")
    assert past_due["data"]["object"]["status"] == "past_due"
    assert past_due["data"]["previous_attributes"] == {"status": "active"}


def test_fail_renewal_past_due_again_counts_attempts_until_none_left(stack):
    # Given a past_due subscription
    _, sub_id = subscribe(stack)
    stack.sandbox.fail_renewal(sub_id)
    # When three more retries fail
    for _ in range(3):
        stack.sandbox.fail_renewal(sub_id)
    # Then each is an invoice.payment_failed and the last schedules nothing
    failed = stack.last("invoice.payment_failed")["data"]["object"]
    assert failed["attempt_count"] == 4 and failed["next_payment_attempt"] is None
    assert stack.types()[-1] == "invoice.payment_failed"


def test_renew_past_due_subscription_pays_open_invoice_and_reactivates(stack):
    # Given a subscription whose renewal failed
    _, sub_id = subscribe(stack)
    stack.clock.now = T0 + 31 * DAY
    stack.sandbox.fail_renewal(sub_id)
    period = stack.sandbox.subscription(sub_id)["items"]["data"][0]["current_period_end"]
    failed_invoice = stack.last("invoice.payment_failed")["data"]["object"]["id"]
    stack.clock.now += 3 * DAY
    before = len(stack.delivered)
    # When the retry succeeds
    stack.sandbox.renew(sub_id)
    # Then the failed invoice is paid, the subscription active again, the period unchanged
    assert stack.types(before) == ["invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]
    assert stack.last("invoice.paid")["data"]["object"]["id"] == failed_invoice
    sub = stack.sandbox.subscription(sub_id)
    assert sub["status"] == "active" and sub["items"]["data"][0]["current_period_end"] == period


def test_action_required_renewal_sends_hosted_invoice_url_and_page_pays(stack):
    # Given an active subscription
    _, sub_id = subscribe(stack)
    before = len(stack.delivered)
    # When the renewal needs the member to authenticate
    invoice = stack.sandbox.action_required(sub_id)
    # Then Stripe's SCA events arrive with a page to pay on
    assert stack.types(before)[-3:] == [
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "customer.subscription.updated",
    ]
    url = stack.last("invoice.payment_action_required")["data"]["object"]["hosted_invoice_url"]
    assert url == invoice["hosted_invoice_url"] == f"{BASE}/invoice/{invoice['id']}"
    # When the member authenticates on that page
    response = stack.browser.post(f"/invoice/{invoice['id']}")
    # Then the invoice is paid and the subscription active again
    assert response.status_code == 303
    assert stack.sandbox.invoice(invoice["id"])["status"] == "paid"
    assert stack.sandbox.subscription(sub_id)["status"] == "active"


def test_cancel_at_period_end_sets_flags_then_period_end_deletes(stack):
    # Given an active subscription
    _, sub_id = subscribe(stack)
    end = stack.sandbox.subscription(sub_id)["items"]["data"][0]["current_period_end"]
    # When the member cancels at period end
    stack.sandbox.cancel(sub_id, at_period_end=True)
    # Then an update says so, with what it was before
    updated = stack.last("customer.subscription.updated")
    assert updated["data"]["object"]["cancel_at_period_end"] is True
    assert updated["data"]["object"]["cancel_at"] == end
    assert updated["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert updated["data"]["previous_attributes"]["cancellation_details"] == {"reason": None}
    # When the period ends
    stack.clock.now = end
    stack.sandbox.renew(sub_id)
    # Then the subscription is deleted instead of renewed
    assert stack.types()[-1] == "customer.subscription.deleted"
    assert stack.last("customer.subscription.deleted")["data"]["object"]["status"] == "canceled"


def test_update_subscription_undo_cancel_at_period_end_reactivates(stack):
    # Given a subscription scheduled to cancel, through the SDK
    _, sub_id = subscribe(stack)
    stack.client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True})
    # When the member changes their mind
    sub = stack.client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": False})
    # Then nothing is scheduled any more and the event shows the undo
    assert sub.cancel_at_period_end is False and sub.cancel_at is None
    assert stack.last("customer.subscription.updated")["data"]["previous_attributes"]["cancel_at_period_end"] is True


def test_cancel_via_sdk_emits_deleted_and_second_cancel_is_resource_missing(stack):
    # Given an active subscription
    _, sub_id = subscribe(stack)
    # When it is cancelled through the SDK, as Membergate's gateway does
    sub = stack.client.v1.subscriptions.cancel(sub_id, {"prorate": False}, {"idempotency_key": "cancel-1"})
    # Then it is canceled and the deleted event names the request
    deleted = stack.last("customer.subscription.deleted")
    assert sub.status == "canceled" and deleted["data"]["object"]["ended_at"] == T0
    assert deleted["request"]["idempotency_key"] == "cancel-1" and deleted["request"]["id"].startswith("req_")
    assert "previous_attributes" not in deleted["data"]
    # When it is cancelled again
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.subscriptions.cancel(sub_id, {"prorate": False})
    # Then Stripe's answer for a canceled subscription comes back, and it can still be read
    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")
    assert stack.client.v1.subscriptions.retrieve(sub_id).status == "canceled"


def test_membergate_gateway_checkout_then_double_cancel_succeeds():
    # Given Membergate's own Stripe gateway pointed at the sandbox
    stack = make_stack()
    http_client = WsgiStripeHttpClient(stack.sandbox.wsgi_app, BASE)
    gateway = StripeBillingGateway.build("rk_test_local", BASE, http_client=http_client)
    # When it starts a checkout and the member pays
    customer_id = gateway.create_customer("mem_9", "mem_9:customer")
    session = gateway.create_checkout_session(
        customer_id=customer_id,
        member_id="mem_9",
        plan_id="plan_gold",
        price_ids=["price_gold"],
        success_url="http://127.0.0.1:3000/joined?s={CHECKOUT_SESSION_ID}",
        cancel_url="http://127.0.0.1:3000/join",
        expires_at=T0 + 1800,
        idempotency_key="mem_9:plan_gold:1",
    )
    pay(stack, session.id, "card")
    sub_id = stack.last("checkout.session.completed")["data"]["object"]["subscription"]
    # Then cancelling twice is fine (the second is "already gone")
    gateway.cancel_subscription(sub_id, "mem_9:cancel")
    gateway.cancel_subscription(sub_id, "mem_9:cancel")
    assert session.url == f"{BASE}/pay/{session.id}" and session.expires_at == T0 + 1800
    assert stack.types().count("customer.subscription.deleted") == 1


def test_events_from_sandbox_read_by_membergate_parser(stack):
    # Given a card signup and a failed renewal
    _, sub_id = subscribe(stack)
    stack.sandbox.fail_renewal(sub_id)
    events = [parse_event(e) for e in stack.delivered]
    by_type = {e.type: e for e in events}
    # Then Membergate's reader finds member, gate, status, period end and invoice links
    completion = checkout_completion(by_type["checkout.session.completed"])
    assert (completion.member_id, completion.subscription_id, completion.gate) == ("mem_1", sub_id, CheckoutGate.PAID)
    snapshot = subscription_snapshot(by_type["customer.subscription.updated"])
    assert snapshot.status == "past_due" and snapshot.member_id_hint == "mem_1"
    assert snapshot.current_period_end == shift(T0, 2, "month")
    fact = invoice_fact(by_type["invoice.payment_failed"])
    assert fact.subscription_id == sub_id and fact.attempt_count == 1 and fact.hosted_invoice_url


def test_control_endpoints_drive_billing_over_http(stack):
    # Given a subscription and the JSON controls of the sandbox
    session_id, sub_id = subscribe(stack, "sepa")
    http = stack.browser
    # When the local stack settles, fails and renews over HTTP
    settled = http.post(f"/_control/checkout/sessions/{session_id}/settle_sepa", json={"succeed": True})
    failed = http.post(f"/_control/subscriptions/{sub_id}/fail_renewal")
    renewed = http.post(f"/_control/subscriptions/{sub_id}/renew")
    cancelled = http.post(f"/_control/subscriptions/{sub_id}/cancel", json={"at_period_end": True})
    # Then each answers with the object and the event log tells the story
    assert settled.json["payment_status"] == "paid"
    assert failed.json["status"] == "past_due" and renewed.json["status"] == "active"
    assert cancelled.json["cancel_at_period_end"] is True
    assert http.get(f"/_control/subscriptions/{sub_id}").json["id"] == sub_id
    assert [e["type"] for e in http.get("/_control/events").json["data"]] == stack.types()
    # And an impossible control is a JSON error
    missing = http.post("/_control/subscriptions/sub_nope/renew")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "resource_missing"


def test_sandbox_mounted_under_prefix_serves_sdk_and_pages():
    # Given the sandbox mounted under /_local/stripe of a bigger app, as the local stack does
    clock, delivered = Clock(), []
    sandbox = new_sandbox(clock, delivered.append)
    outer = DispatcherMiddleware(Response("stack", status=200), {"/_local/stripe": sandbox.wsgi_app})
    client = stripe.StripeClient(
        "sk_test_local",
        base_addresses={"api": BASE},
        http_client=WsgiStripeHttpClient(outer, "http://127.0.0.1:3000"),
    )
    # When the SDK creates a session and the member opens its URL
    customer = client.v1.customers.create({})
    session = client.v1.checkout.sessions.create(session_params(customer.id))
    page = Client(outer).get(session.url.removeprefix("http://127.0.0.1:3000"))
    # Then both work through the prefix
    assert page.status_code == 200 and session.id in page.get_data(as_text=True)


def test_delivery_consumer_calling_back_does_not_deadlock_and_keeps_order():
    # Given a consumer that cancels the subscription as soon as it hears of it
    clock = Clock()
    seen: list[str] = []
    holder: dict[str, StripeSandbox] = {}

    def deliver(event: dict) -> None:
        seen.append(event["type"])
        if event["type"] == "checkout.session.completed":
            holder["sandbox"].cancel(event["data"]["object"]["subscription"])

    sandbox = holder["sandbox"] = new_sandbox(clock, deliver)
    client = stripe.StripeClient(
        "sk_test_local", base_addresses={"api": BASE}, http_client=WsgiStripeHttpClient(sandbox.wsgi_app, BASE)
    )
    customer = client.v1.customers.create({})
    session = client.v1.checkout.sessions.create(session_params(customer.id))
    # When the member pays
    sandbox.pay(session.id, "card")
    # Then the cancellation is delivered after the event that caused it
    assert seen[-2:] == ["checkout.session.completed", "customer.subscription.deleted"]


def test_sandbox_concurrent_payments_deliver_customers_in_parallel_each_in_order():
    # Given a webhook endpoint that takes 20 ms an event, and four customers with open sessions
    spans: list[tuple[str, str, float, float]] = []

    def deliver(event: dict) -> None:
        started = time.monotonic()
        time.sleep(0.02)
        spans.append((event["data"]["object"].get("customer") or "", event["type"], started, time.monotonic()))

    sandbox = new_sandbox(Clock(), deliver)
    stack = Stack(sandbox, stripe.StripeClient("sk_test_local", base_addresses={"api": BASE},
                                               http_client=WsgiStripeHttpClient(sandbox.wsgi_app, BASE)), Clock())
    sessions = [open_session(stack, f"mem_{i}") for i in range(4)]
    spans.clear()
    # When the four pay at once
    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(lambda s: pay(stack, s.id, "card").status_code, sessions))
    # Then each customer's events arrived one at a time, in Stripe's order
    assert codes == [303] * 4
    by_customer: dict[str, list[tuple[str, float, float]]] = {}
    for customer, type_, started, ended in sorted(spans, key=lambda s: s[2]):
        by_customer.setdefault(customer, []).append((type_, started, ended))
    assert len(by_customer) == 4
    for events in by_customer.values():
        assert [t for t, _, _ in events] == SIGNUP_CARD
        assert all(later[1] >= earlier[2] for earlier, later in zip(events, events[1:]))
    # And different customers' events overlapped (not one customer after the other)
    overlapping = sum(1 for a in spans for b in spans if a[0] < b[0] and a[2] < b[3] and b[2] < a[3])
    assert overlapping >= len(SIGNUP_CARD)


def test_sandbox_concurrent_payments_each_session_completes_once(stack):
    # Given six open sessions, one of which two browser tabs submit at the same time
    sessions = [open_session(stack, f"mem_{i}") for i in range(6)]
    targets = [s.id for s in sessions] + [sessions[0].id]
    # When all are paid at once
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        codes = list(pool.map(lambda session_id: pay(stack, session_id, "card").status_code, targets))
    # Then every session completed exactly once and the duplicate tab was refused
    assert sorted(codes) == [303] * 6 + [400]
    completed = [e["data"]["object"]["id"] for e in stack.delivered if e["type"] == "checkout.session.completed"]
    assert sorted(completed) == sorted(s.id for s in sessions)
    assert len({e["id"] for e in stack.delivered}) == len(stack.delivered)


# --- test clock: time passing renews, ends trials, retries, ends cancelled subscriptions -----------


def period_end(stack: Stack, sub_id: str) -> int:
    return stack.sandbox.subscription(sub_id)["items"]["data"][0]["current_period_end"]


def card_behaviour(stack: Stack, customer_id: str, behaviour: str) -> None:
    reply = stack.browser.post(f"/_control/customers/{customer_id}/payment_method", json={"behaviour": behaviour})
    assert reply.status_code == 200, reply.json


def customer_of(stack: Stack, sub_id: str) -> str:
    return stack.sandbox.subscription(sub_id)["customer"]


def test_advance_clock_past_period_end_renews_at_period_end_with_card(stack):
    # Given an active subscription paid by a card that works
    _, sub_id = subscribe(stack)
    end = period_end(stack, sub_id)
    before = len(stack.delivered)
    # When business time passes the period end and the sandbox is told
    stack.clock.now = end + 3600
    stack.sandbox.advance_clock()
    # Then the renewal happened at the period end, as Stripe's automatic renewal would
    assert stack.types(before) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    paid = stack.last("invoice.paid")
    assert paid["created"] == end and paid["request"] == {"id": None, "idempotency_key": None}
    invoice = paid["data"]["object"]
    assert (invoice["billing_reason"], invoice["amount_paid"]) == ("subscription_cycle", 1000)
    item = stack.last("customer.subscription.updated")["data"]["object"]["items"]["data"][0]
    assert (item["current_period_start"], item["current_period_end"]) == (end, shift(T0, 2, "month"))


def test_advance_clock_over_two_periods_renews_twice_in_order(stack):
    # Given an active monthly subscription
    _, sub_id = subscribe(stack)
    # When two months and a day pass at once
    stack.clock.now = shift(T0, 2, "month") + DAY
    stack.sandbox.advance_clock()
    # Then both renewals happened, each at its own period end
    paid = [e for e in stack.delivered if e["type"] == "invoice.paid"][1:]
    assert [e["created"] for e in paid] == [shift(T0, 1, "month"), shift(T0, 2, "month")]
    assert period_end(stack, sub_id) == shift(T0, 3, "month")


def test_advance_clock_nothing_due_sends_nothing(stack):
    # Given an active subscription in the middle of its period
    subscribe(stack)
    before = len(stack.delivered)
    # When a day passes
    stack.clock.now = T0 + DAY
    result = stack.sandbox.advance_clock()
    # Then nothing is sent
    assert result == {"now": T0 + DAY, "events": 0} and stack.types(before) == []


def test_advance_clock_declining_card_fails_retries_then_cancels(stack):
    # Given an active subscription whose card now declines
    _, sub_id = subscribe(stack)
    card_behaviour(stack, customer_of(stack, sub_id), "declines")
    end = period_end(stack, sub_id)
    # When the period ends
    stack.clock.now = end
    stack.sandbox.advance_clock()
    # Then the renewal fails, the subscription is past_due and a retry is scheduled in 3 days
    failed = stack.last("invoice.payment_failed")["data"]["object"]
    assert stack.sandbox.subscription(sub_id)["status"] == "past_due"
    assert (failed["attempt_count"], failed["next_payment_attempt"]) == (1, end + 3 * DAY)
    # When the retries (3, 5 and 7 days apart) all fail
    stack.clock.now = end + 15 * DAY
    stack.sandbox.advance_clock()
    # Then each was an attempt at its time, and after the last Stripe's default cancels the subscription
    attempts = [e for e in stack.delivered if e["type"] == "invoice.payment_failed"]
    assert [e["created"] for e in attempts] == [end, end + 3 * DAY, end + 8 * DAY, end + 15 * DAY]
    assert attempts[-1]["data"]["object"]["next_payment_attempt"] is None
    deleted = stack.last("customer.subscription.deleted")["data"]["object"]
    assert deleted["status"] == "canceled" and deleted["cancellation_details"]["reason"] == "payment_failed"


def test_payment_method_control_unknown_behaviour_refused(stack):
    # Given a customer
    customer = stack.client.v1.customers.create({})
    # When the control is asked for a behaviour it does not know
    reply = stack.browser.post(f"/_control/customers/{customer.id}/payment_method", json={"behaviour": "sometimes"})
    # Then it says which ones exist
    assert reply.status_code == 400 and "succeeds, declines, requires_action" in reply.json["error"]["message"]


def test_advance_clock_retry_after_card_fixed_pays_and_reactivates(stack):
    # Given a renewal that failed (the control makes the card decline)
    _, sub_id = subscribe(stack)
    stack.clock.now = period_end(stack, sub_id)
    stack.sandbox.fail_renewal(sub_id)
    invoice_id = stack.last("invoice.payment_failed")["data"]["object"]["id"]
    # When the member's card works again and the retry comes due
    card_behaviour(stack, customer_of(stack, sub_id), "succeeds")
    stack.clock.now += 3 * DAY
    stack.sandbox.advance_clock()
    # Then the retry pays the same invoice and the subscription is active again
    assert stack.last("invoice.paid")["data"]["object"]["id"] == invoice_id
    assert stack.sandbox.subscription(sub_id)["status"] == "active"


def test_advance_clock_card_requiring_authentication_sends_action_required(stack):
    # Given an active subscription whose bank asks for 3-D Secure on every charge
    _, sub_id = subscribe(stack)
    card_behaviour(stack, customer_of(stack, sub_id), "requires_action")
    # When the period ends
    stack.clock.now = period_end(stack, sub_id)
    stack.sandbox.advance_clock()
    # Then the charge fails asking the member to authenticate on the hosted invoice page
    assert stack.types()[-3:] == [
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "customer.subscription.updated",
    ]
    assert stack.last("invoice.payment_action_required")["data"]["object"]["hosted_invoice_url"]


def test_advance_clock_cancel_at_period_end_deletes_without_invoice(stack):
    # Given a subscription the member cancelled at period end, through the SDK
    _, sub_id = subscribe(stack)
    end = period_end(stack, sub_id)
    stack.client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True})
    before = len(stack.delivered)
    # When the period ends
    stack.clock.now = end + 60
    stack.sandbox.advance_clock()
    # Then the subscription ends at the period end, and nothing is invoiced
    assert stack.types(before) == ["customer.subscription.deleted"]
    deleted = stack.last("customer.subscription.deleted")
    assert deleted["created"] == end and deleted["data"]["object"]["ended_at"] == end


def trial_subscription(stack: Stack, days: int = 14) -> str:
    trial = {"trial_period_days": days, "metadata": {"membergate_member_id": "mem_1"}}
    session = open_session(stack, subscription_data=trial)
    assert pay(stack, session.id, "card").status_code == 303
    return stack.last("checkout.session.completed")["data"]["object"]["subscription"]


def test_checkout_subscription_data_trial_days_starts_trialing_with_nothing_due(stack):
    # When a member checks out a session with a 14-day trial (subscription_data.trial_period_days)
    sub_id = trial_subscription(stack)
    # Then nothing is charged and the subscription trials until T0 + 14 days
    sub = stack.client.v1.subscriptions.retrieve(sub_id)
    completed = stack.last("checkout.session.completed")["data"]["object"]
    assert (completed["amount_total"], completed["payment_status"]) == (0, "no_payment_required")
    assert (sub.status, sub.trial_start, sub.trial_end) == ("trialing", T0, T0 + 14 * DAY)
    assert sub["items"]["data"][0]["current_period_end"] == T0 + 14 * DAY


def test_advance_clock_trial_sends_trial_will_end_then_first_charge_activates(stack):
    # Given a 14-day trial
    sub_id = trial_subscription(stack)
    # When 11 days pass
    stack.clock.now = T0 + 11 * DAY
    stack.sandbox.advance_clock()
    # Then Stripe's three-day notice is sent, once
    assert stack.types()[-1] == "customer.subscription.trial_will_end"
    assert stack.last("customer.subscription.trial_will_end")["created"] == T0 + 11 * DAY
    # When the trial ends
    stack.clock.now = T0 + 15 * DAY
    stack.sandbox.advance_clock()
    # Then the first period is invoiced and paid, and the subscription is active from the trial end
    assert stack.types().count("customer.subscription.trial_will_end") == 1
    sub = stack.sandbox.subscription(sub_id)
    assert sub["status"] == "active" and sub["items"]["data"][0]["current_period_start"] == T0 + 14 * DAY
    invoice = stack.last("invoice.paid")["data"]["object"]
    assert (invoice["amount_paid"], invoice["billing_reason"]) == (1000, "subscription_cycle")


def test_advance_clock_trial_end_with_declining_card_goes_past_due(stack):
    # Given a trial whose card will decline
    sub_id = trial_subscription(stack, days=7)
    card_behaviour(stack, customer_of(stack, sub_id), "declines")
    # When the trial ends
    stack.clock.now = T0 + 7 * DAY
    stack.sandbox.advance_clock()
    # Then the first charge fails and the subscription is past_due, not active
    assert stack.sandbox.subscription(sub_id)["status"] == "past_due"
    assert stack.last("invoice.payment_failed")["data"]["object"]["amount_due"] == 1000


def test_advance_clock_open_session_past_expiry_emits_expired(stack):
    # Given a session nobody paid
    session = open_session(stack)
    # When its expiry passes
    stack.clock.now = T0 + 2 * 3600
    stack.sandbox.advance_clock()
    # Then Stripe's expiry event is sent at the expiry time
    expired = stack.last("checkout.session.expired")
    assert expired["data"]["object"]["id"] == session.id and expired["created"] == T0 + 3600


# --- one-time payments (passes, lifetime) and pay what you want -----------------------------------


def register(stack: Stack, **body) -> dict:
    reply = stack.browser.post("/_control/prices", json=body)
    assert reply.status_code == 200, reply.json
    return reply.json


def payment_session(stack: Stack, price_id: str, member_id: str = "mem_1", **overrides):
    params = session_params("", member_id, mode="payment", line_items=[{"price": price_id, "quantity": 1}],
                            payment_intent_data={"metadata": {"membergate_member_id": member_id}})
    params.pop("subscription_data")
    params.update(overrides)
    customer = stack.client.v1.customers.create({"metadata": {"membergate_member_id": member_id}})
    params["customer"] = customer.id
    return stack.client.v1.checkout.sessions.create(params)


def test_register_price_one_time_via_control_has_no_recurring(stack):
    # When a one-time price (a 30-day pass) is registered through the control
    price = register(stack, price_id="price_pass_30d", unit_amount=2500, currency="eur", type="one_time")
    # Then it reads back through the SDK as Stripe's one-time price
    again = stack.client.v1.prices.retrieve("price_pass_30d")
    assert (price["type"], price["recurring"]) == ("one_time", None)
    assert (again.type, again.unit_amount) == ("one_time", 2500)


def test_payment_mode_card_makes_payment_intent_and_charge_not_subscription(stack):
    # Given a lifetime price and a payment-mode session for it
    register(stack, price_id="price_lifetime", unit_amount=19900, currency="eur", type="one_time")
    session = payment_session(stack, "price_lifetime")
    assert (session.mode, session.amount_total, session.customer_creation) == ("payment", 19900, "if_required")
    before = len(stack.delivered)
    # When the member pays by card on the hosted page
    assert pay(stack, session.id, "card").status_code == 303
    # Then Stripe's payment-mode events follow, with no invoice and no subscription
    assert stack.types(before) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = stack.last("checkout.session.completed")["data"]["object"]
    intent = stack.last("payment_intent.succeeded")["data"]["object"]
    charge = stack.last("charge.succeeded")["data"]["object"]
    assert (completed["mode"], completed["payment_status"], completed["subscription"], completed["invoice"]) == (
        "payment", "paid", None, None)
    assert completed["payment_intent"] == intent["id"] == charge["payment_intent"]
    assert (intent["status"], intent["amount_received"], intent["latest_charge"]) == ("succeeded", 19900, charge["id"])
    assert (charge["amount"], charge["customer"], charge["paid"]) == (19900, session.customer, True)
    assert intent["metadata"] == {"membergate_member_id": "mem_1"}


@pytest.mark.parametrize(("creation", "makes_customer"), [("if_required", False), ("always", True)])
def test_payment_mode_without_customer_creates_one_only_when_always(stack, creation, makes_customer):
    # Given a pass sold to someone with no Stripe customer yet
    register(stack, price_id="price_pass", unit_amount=2500, currency="eur", type="one_time")
    params = session_params("", mode="payment", customer_email="guest@example.test", customer_creation=creation,
                            line_items=[{"price": "price_pass", "quantity": 1}])
    for name in ("customer", "subscription_data"):
        params.pop(name)
    session = stack.client.v1.checkout.sessions.create(params)
    # When they pay by card
    pay(stack, session.id, "card")
    # Then a customer exists only with customer_creation=always; the details typed at checkout remain either way
    completed = stack.last("checkout.session.completed")["data"]["object"]
    charge = stack.last("charge.succeeded")["data"]["object"]
    assert ("customer.created" in stack.types()) is makes_customer
    assert (completed["customer"] is not None) is makes_customer and charge["customer"] == completed["customer"]
    assert completed["customer_details"]["email"] == "guest@example.test"


def test_payment_mode_invoice_creation_accepted_and_shown(stack):
    # Given a one-time price
    register(stack, price_id="price_pass", unit_amount=2500, currency="eur", type="one_time")
    # When a payment-mode session asks for a post-payment invoice, as Membergate's gateway does
    session = payment_session(stack, "price_pass", invoice_creation={"enabled": True})
    # Then the session says so
    assert session.invoice_creation.enabled is True


def test_checkout_sessions_expire_open_session_then_refuses_again(stack):
    # Given an open session
    session = open_session(stack)
    # When it is expired through the SDK
    expired = stack.client.v1.checkout.sessions.expire(session.id)
    # Then it is expired, Stripe's event says so, and a second expiry is refused
    assert expired.status == "expired" and expired.url is None
    event = stack.last("checkout.session.expired")
    assert event["data"]["object"]["id"] == session.id and event["request"]["id"] is not None
    with pytest.raises(stripe.InvalidRequestError):
        stack.client.v1.checkout.sessions.expire(session.id)
    assert pay(stack, session.id, "card").status_code == 400


def test_payment_mode_sepa_completes_unpaid_then_settles(stack):
    # Given a pass bought by SEPA debit
    register(stack, price_id="price_pass", unit_amount=2500, currency="eur", type="one_time")
    session = payment_session(stack, "price_pass")
    pay(stack, session.id, "sepa")
    assert stack.last("checkout.session.completed")["data"]["object"]["payment_status"] == "unpaid"
    before = len(stack.delivered)
    # When the bank confirms the debit
    settled = stack.browser.post(f"/_control/checkout/sessions/{session.id}/settle_sepa", json={"succeed": True})
    # Then the charge succeeds and Checkout says the async payment succeeded
    assert settled.json["payment_status"] == "paid"
    assert stack.types(before) == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.async_payment_succeeded",
    ]


@pytest.mark.parametrize(
    ("mode", "price_body"),
    [
        ("payment", {"price_id": "price_x", "unit_amount": 900, "currency": "eur", "interval": "month"}),
        ("subscription", {"price_id": "price_x", "unit_amount": 900, "currency": "eur", "type": "one_time"}),
    ],
)
def test_checkout_sessions_create_price_type_not_matching_mode_rejected(stack, mode, price_body):
    # Given a price of the wrong kind for the session's mode
    register(stack, **price_body)
    customer = stack.client.v1.customers.create({})
    params = session_params(customer.id, mode=mode, line_items=[{"price": "price_x", "quantity": 1}])
    if mode == "payment":
        params.pop("subscription_data")
    # When the session is created
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.checkout.sessions.create(params)
    # Then it is refused on that line item
    assert raised.value.param == "line_items[0][price]"


def test_payment_mode_with_subscription_data_rejected(stack):
    # Given a one-time price
    register(stack, price_id="price_pass", unit_amount=2500, currency="eur", type="one_time")
    # When a payment-mode session is sent subscription_data
    with pytest.raises(stripe.InvalidRequestError) as raised:
        payment_session(stack, "price_pass", subscription_data={"trial_period_days": 7})
    # Then Stripe's refusal comes back
    assert raised.value.param == "subscription_data"


def test_custom_amount_member_chooses_amount_above_minimum(stack):
    # Given a pay-what-you-want price: at least 5.00, suggested 15.00
    price = register(stack, price_id="price_pwyw", currency="eur", custom_unit_amount={"minimum": 500, "preset": 1500})
    assert price["unit_amount"] is None
    assert price["custom_unit_amount"] == {"maximum": None, "minimum": 500, "preset": 1500}
    session = payment_session(stack, "price_pwyw")
    assert session.amount_total == 1500
    # When the member chooses 25.00 on the hosted page and pays
    page = stack.browser.get(f"/pay/{session.id}").get_data(as_text=True)
    paid = stack.browser.post(f"/pay/{session.id}", data={"outcome": "card", "amount": "2500"})
    # Then 25.00 is charged and the completed session says so
    assert "name=amount" in page and paid.status_code == 303
    assert stack.last("charge.succeeded")["data"]["object"]["amount"] == 2500
    assert stack.last("checkout.session.completed")["data"]["object"]["amount_total"] == 2500


def test_custom_amount_below_minimum_refused_and_session_stays_open(stack):
    # Given a pay-what-you-want price with a 5.00 minimum
    register(stack, price_id="price_pwyw", currency="eur", custom_unit_amount={"minimum": 500})
    session = payment_session(stack, "price_pwyw")
    # When the member offers 1.00
    reply = stack.browser.post(f"/_control/checkout/sessions/{session.id}/pay", json={"outcome": "card", "amount": 100})
    # Then the payment is refused, nothing is charged and the session stays open
    assert reply.status_code == 400 and "at least 5.00 EUR" in reply.json["error"]["message"]
    assert stack.client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert "charge.succeeded" not in stack.types()


def test_prices_create_custom_unit_amount_on_recurring_rejected(stack):
    # When a recurring price is created with a custom amount through the SDK
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.prices.create({"product_data": {"name": "PWYW"}, "currency": "eur",
                                       "custom_unit_amount": {"enabled": True, "minimum": 500},
                                       "recurring": {"interval": "month"}})
    # Then it is refused as Stripe refuses pay-what-you-want subscriptions
    assert raised.value.param == "custom_unit_amount"


def test_prices_create_custom_unit_amount_one_time_through_sdk(stack):
    # When a one-time pay-what-you-want price is created through the SDK
    price = stack.client.v1.prices.create({"product_data": {"name": "Tip jar"}, "currency": "eur",
                                           "custom_unit_amount": {"enabled": True, "minimum": 300, "maximum": 10000}})
    # Then it is a one-time price with no unit amount
    assert (price.type, price.unit_amount, price.custom_unit_amount.minimum) == ("one_time", None, 300)


# --- plan changes: subscription item updates with prorations ----------------------------------------


def upgrade(stack: Stack, sub_id: str, price_id: str, behaviour: str | None = None):
    item_id = stack.sandbox.subscription(sub_id)["items"]["data"][0]["id"]
    params: dict = {"items": [{"id": item_id, "price": price_id}]}
    if behaviour:
        params["proration_behavior"] = behaviour
    return item_id, stack.client.v1.subscriptions.update(sub_id, params)


@pytest.fixture
def halfway(stack) -> tuple[Stack, str]:
    """A gold (10.00/month) subscription half-way through its period, and a platinum price (30.00/month)."""
    stack.sandbox.register_price("price_platinum", 3000, "eur", product_name="Platinum")
    _, sub_id = subscribe(stack)
    assert shift(T0, 1, "month") - T0 == 31 * DAY  # T0 is 15 January 2027
    stack.clock.now += 31 * DAY // 2
    return stack, sub_id


def test_update_items_create_prorations_changes_price_in_place_and_bills_next_renewal(halfway):
    stack, sub_id = halfway
    before = len(stack.delivered)
    # When the member moves to platinum (Stripe's default: create_prorations)
    item_id, updated = upgrade(stack, sub_id, "price_platinum")
    # Then the same item now has the new price, one update event says what it was, and nothing is invoiced yet
    assert updated["items"]["data"][0]["id"] == item_id
    assert updated["items"]["data"][0]["price"]["id"] == "price_platinum"
    assert stack.types(before) == ["customer.subscription.updated"]
    previous = stack.last("customer.subscription.updated")["data"]["previous_attributes"]
    assert previous["items"]["data"][0]["price"]["id"] == "price_gold"
    # When the period ends
    stack.clock.now = period_end(stack, sub_id)
    stack.sandbox.advance_clock()
    # Then the renewal bills platinum plus the half-period credit and charge
    lines = stack.last("invoice.paid")["data"]["object"]["lines"]["data"]
    amounts = sorted((line["amount"], line["parent"]["subscription_item_details"]["proration"]) for line in lines)
    assert amounts == [(-500, True), (1500, True), (3000, False)]
    assert stack.last("invoice.paid")["data"]["object"]["amount_paid"] == 4000


def test_update_items_with_metadata_and_undo_cancel_sends_one_update_event(halfway):
    # Given a subscription scheduled to cancel
    stack, sub_id = halfway
    stack.client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True})
    before = len(stack.delivered)
    # When Membergate switches its tier the way its gateway does (item, prorations, stay, metadata)
    item_id = stack.sandbox.subscription(sub_id)["items"]["data"][0]["id"]
    stack.client.v1.subscriptions.update(sub_id, {
        "items": [{"id": item_id, "price": "price_platinum", "quantity": 1}],
        "proration_behavior": "create_prorations",
        "cancel_at_period_end": False,
        "metadata": {"membergate_plan_id": "plan_platinum"},
    })
    # Then one update event carries every change, as Stripe sends one per request
    assert stack.types(before) == ["customer.subscription.updated"]
    event = stack.last("customer.subscription.updated")["data"]
    assert {"items", "cancel_at_period_end", "metadata"} <= set(event["previous_attributes"])
    assert event["object"]["cancel_at_period_end"] is False
    assert event["object"]["metadata"]["membergate_plan_id"] == "plan_platinum"


def test_update_items_always_invoice_charges_prorations_now(halfway):
    stack, sub_id = halfway
    before = len(stack.delivered)
    # When the member upgrades with proration_behavior=always_invoice
    upgrade(stack, sub_id, "price_platinum", "always_invoice")
    # Then the difference for the rest of the period is invoiced and paid at once
    assert stack.types(before) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    invoice = stack.last("invoice.paid")["data"]["object"]
    assert (invoice["billing_reason"], invoice["amount_paid"]) == ("subscription_update", 1000)
    assert all(line["parent"]["subscription_item_details"]["proration"] for line in invoice["lines"]["data"])


def test_update_items_proration_none_bills_new_price_from_next_period_only(halfway):
    stack, sub_id = halfway
    # When the member upgrades without prorations
    upgrade(stack, sub_id, "price_platinum", "none")
    stack.clock.now = period_end(stack, sub_id)
    stack.sandbox.advance_clock()
    # Then the next renewal is the new price, nothing more
    assert stack.last("invoice.paid")["data"]["object"]["amount_paid"] == 3000


def test_update_items_to_yearly_price_restarts_cycle_and_invoices_now(halfway):
    stack, sub_id = halfway
    stack.sandbox.register_price("price_gold_year", 10000, "eur", "year")
    now = stack.clock.now
    # When the member switches to the yearly price
    _, updated = upgrade(stack, sub_id, "price_gold_year")
    # Then the billing cycle restarts today and the year is charged now, less the unused half month
    item = updated["items"]["data"][0]
    assert (item["current_period_start"], item["current_period_end"]) == (now, shift(now, 1, "year"))
    invoice = stack.last("invoice.paid")["data"]["object"]
    assert (invoice["billing_reason"], invoice["amount_paid"]) == ("subscription_update", 10000 - 500)


def test_update_items_unknown_price_rejected_and_nothing_changes(halfway):
    stack, sub_id = halfway
    before = len(stack.delivered)
    # When an update names a price Stripe does not know
    with pytest.raises(stripe.InvalidRequestError) as raised:
        upgrade(stack, sub_id, "price_nobody_made")
    # Then it is resource_missing and the subscription is as it was
    assert (raised.value.code, raised.value.param) == ("resource_missing", "items[0][price]")
    assert stack.sandbox.subscription(sub_id)["items"]["data"][0]["price"]["id"] == "price_gold"
    assert stack.types(before) == []


# --- refunds and disputes -----------------------------------------------------------------------------


def test_refund_last_payment_full_emits_charge_refunded_then_refuses_a_second(stack):
    # Given a member who paid their subscription by card
    _, sub_id = subscribe(stack)
    customer_id = customer_of(stack, sub_id)
    # When the creator refunds the last payment
    reply = stack.browser.post(f"/_control/customers/{customer_id}/refund_last_payment")
    # Then a refund of the whole charge is made and Stripe's events say so
    assert reply.status_code == 200 and reply.json["object"] == "refund" and reply.json["amount"] == 1000
    assert stack.types()[-2:] == ["refund.created", "charge.refunded"]
    charge = stack.last("charge.refunded")["data"]["object"]
    assert (charge["amount_refunded"], charge["refunded"], charge["customer"]) == (1000, True, customer_id)
    assert charge["id"] == reply.json["charge"] and charge["refunds"]["data"][0]["id"] == reply.json["id"]
    # And a second refund is refused as Stripe refuses it
    again = stack.browser.post(f"/_control/customers/{customer_id}/refund_last_payment")
    assert again.status_code == 400 and again.json["error"]["code"] == "charge_already_refunded"


def test_refunded_subscription_charge_traced_to_its_subscription_through_sdk(stack):
    # Given a subscription payment that was refunded
    _, sub_id = subscribe(stack)
    stack.browser.post(f"/_control/customers/{customer_of(stack, sub_id)}/refund_last_payment")
    charge = stack.last("charge.refunded")["data"]["object"]
    # When a reader follows the links API 2025-03-31 offers (charge → payment intent → invoice payment → invoice)
    again = stack.client.v1.charges.retrieve(charge["id"])
    intent = stack.client.v1.payment_intents.retrieve(again.payment_intent)
    payments = stack.client.v1.invoice_payments.list(
        {"payment": {"type": "payment_intent", "payment_intent": intent.id}}
    )
    invoice = stack.client.v1.invoices.retrieve(payments.data[0].invoice)
    # Then they reach the subscription that was paid
    assert (again.refunded, intent.status, payments.data[0].status) == (True, "succeeded", "paid")
    assert invoice.parent.subscription_details.subscription == sub_id


def test_refund_last_payment_partial_leaves_charge_not_refunded(stack):
    # Given a 30-day pass bought for 25.00
    register(stack, price_id="price_pass", unit_amount=2500, currency="eur", type="one_time")
    session = payment_session(stack, "price_pass")
    pay(stack, session.id, "card")
    # When 5.00 is refunded
    reply = stack.browser.post(f"/_control/customers/{session.customer}/refund_last_payment", json={"amount": 500})
    # Then the charge is partly refunded
    charge = stack.last("charge.refunded")["data"]["object"]
    assert reply.json["amount"] == 500 and (charge["amount_refunded"], charge["refunded"]) == (500, False)


def test_refund_last_payment_customer_without_payment_refused(stack):
    # Given a customer who never paid
    customer = stack.client.v1.customers.create({})
    # When a refund is asked
    reply = stack.browser.post(f"/_control/customers/{customer.id}/refund_last_payment")
    # Then it is a 400 that says why
    assert reply.status_code == 400 and "no successful payment" in reply.json["error"]["message"]


@pytest.mark.parametrize(("outcome", "closing_events"), [
    ("won", ["charge.dispute.closed", "charge.dispute.funds_reinstated"]),
    ("lost", ["charge.dispute.closed"]),
])
def test_dispute_last_payment_then_close_emits_dispute_events(stack, outcome, closing_events):
    # Given a lifetime purchase
    register(stack, price_id="price_lifetime", unit_amount=19900, currency="eur", type="one_time")
    session = payment_session(stack, "price_lifetime")
    pay(stack, session.id, "card")
    charge_id = stack.last("charge.succeeded")["data"]["object"]["id"]
    # When the cardholder disputes it
    opened = stack.browser.post(f"/_control/customers/{session.customer}/dispute_last_payment")
    # Then the control answers the dispute's id and Stripe's events follow
    dispute_id = opened.json["id"]
    assert opened.status_code == 200 and dispute_id.startswith("dp_")
    assert stack.types()[-2:] == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    created = stack.last("charge.dispute.created")["data"]["object"]
    assert (created["charge"], created["amount"], created["status"]) == (charge_id, 19900, "needs_response")
    # When the network decides
    closed = stack.browser.post(f"/_control/disputes/{dispute_id}/close", json={"outcome": outcome})
    # Then the dispute is closed with that outcome
    assert closed.status_code == 200 and closed.json["status"] == outcome
    assert stack.types()[-len(closing_events):] == closing_events
    assert stack.last("charge.dispute.closed")["data"]["object"]["status"] == outcome
    # And it cannot be closed twice, nor the charge refunded
    assert stack.browser.post(f"/_control/disputes/{dispute_id}/close", json={"outcome": "won"}).status_code == 400
    refund = stack.browser.post(f"/_control/customers/{session.customer}/refund_last_payment")
    assert refund.json["error"]["code"] == "charge_disputed"


def test_customers_delete_cancels_subscriptions_then_emits_customer_deleted(stack):
    # Given a customer with an active subscription
    _, sub_id = subscribe(stack)
    customer_id = customer_of(stack, sub_id)
    before = len(stack.delivered)
    # When the creator deletes the customer (Dashboard or API)
    deleted = stack.client.v1.customers.delete(customer_id)
    # Then the subscription ends at once, then the customer is gone, as Stripe tells it
    assert deleted.deleted is True
    assert stack.types(before) == ["customer.subscription.deleted", "customer.deleted"]
    assert stack.last("customer.deleted")["data"]["object"]["id"] == customer_id
    assert stack.client.v1.customers.retrieve(customer_id).deleted is True
    # And the customer can no longer check out
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.checkout.sessions.create(session_params(customer_id))
    assert raised.value.code == "resource_missing"


# --- customer portal ------------------------------------------------------------------------------

RETURN_URL = "http://127.0.0.1:3000/join/plan_gold"


def open_portal(stack: Stack, customer_id: str, return_url: str | None = RETURN_URL):
    params = {"customer": customer_id}
    if return_url:
        params["return_url"] = return_url
    return stack.client.v1.billing_portal.sessions.create(params)


def past_due(stack: Stack) -> tuple[str, str]:
    """A card signup whose first renewal failed: (customer id, subscription id)."""
    _, sub_id = subscribe(stack)
    stack.clock.now = T0 + 31 * DAY
    stack.sandbox.fail_renewal(sub_id)
    return stack.sandbox.subscription(sub_id)["customer"], sub_id


def test_billing_portal_sessions_create_returns_portal_session_with_hosted_url(stack):
    # Given a customer
    customer = stack.client.v1.customers.create({})
    # When a portal session is created through the SDK, as Membergate's gateway does
    portal = open_portal(stack, customer.id)
    # Then it has Stripe's billing_portal.session shape and a page the member can open
    assert portal.id.startswith("bps_") and portal.object == "billing_portal.session"
    assert (portal.customer, portal.return_url, portal.created) == (customer.id, RETURN_URL, T0)
    assert portal.configuration == stack.sandbox.portal_configuration and portal.configuration.startswith("bpc_")
    assert portal.livemode is False and portal.locale is None and portal.flow is None and portal.on_behalf_of is None
    assert portal.url == f"{BASE}/portal/{portal.id}"
    page = stack.browser.get(f"/portal/{portal.id}")
    assert page.status_code == 200 and "No subscriptions." in page.get_data(as_text=True)
    # And it creates no event (Stripe sends none for portal sessions)
    assert stack.types() == ["customer.created"]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"return_url": RETURN_URL}, "parameter_missing", "customer"),
        ({"customer": "cus_nope", "return_url": RETURN_URL}, "resource_missing", "customer"),
        ({"customer": "{customer}", "return_url": "javascript:alert(1)"}, "url_invalid", "return_url"),
        ({"customer": "{customer}", "configuration": "bpc_other"}, "resource_missing", "configuration"),
        ({"customer": "{customer}", "flow_data": {"type": "payment_method_update"}}, "parameter_unknown", "flow_data"),
    ],
)
def test_billing_portal_sessions_create_invalid_request_rejected(stack, params, code, param):
    # Given a customer and a request Stripe (or the sandbox) refuses
    customer = stack.client.v1.customers.create({})
    params = {k: (customer.id if v == "{customer}" else v) for k, v in params.items()}
    # When it is sent, then the SDK raises Stripe's error naming the parameter
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.billing_portal.sessions.create(params)
    assert (raised.value.http_status, raised.value.code, raised.value.param) == (400, code, param)


def test_portal_page_past_due_shows_failed_payment_and_every_action(stack):
    # Given a subscription whose renewal failed
    customer_id, sub_id = past_due(stack)
    # When the member opens the portal
    text = stack.browser.get(f"/portal/{open_portal(stack, customer_id).id}").get_data(as_text=True)
    # Then it shows the failed payment, the three actions and the way back
    assert sub_id in text and "past_due" in text and "The payment of 10.00 EUR failed" in text
    for action in ("pay", "cancel_at_period_end", "cancel_now"):
        assert f"name=action value={action}>" in text
    assert "Update card and pay now" in text and f"href='{RETURN_URL}'" in text


def test_portal_update_card_and_pay_pays_open_invoice_and_reactivates(stack):
    # Given a past_due subscription and the member in the portal
    customer_id, sub_id = past_due(stack)
    failed_invoice = stack.last("invoice.payment_failed")["data"]["object"]["id"]
    period = stack.sandbox.subscription(sub_id)["items"]["data"][0]["current_period_end"]
    portal = open_portal(stack, customer_id)
    stack.clock.now += 3600
    before = len(stack.delivered)
    # When they update their card and pay now
    response = stack.browser.post(f"/portal/{portal.id}", data={"subscription": sub_id, "action": "pay"})
    # Then they come back to the portal, and Stripe's recovery events follow, caused by a request
    assert response.status_code == 303 and response.headers["Location"] == portal.url
    assert stack.types(before) == ["invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]
    assert stack.last("invoice.paid")["data"]["object"]["id"] == failed_invoice
    updated = stack.last("customer.subscription.updated")
    assert updated["data"]["object"]["status"] == "active"
    assert updated["data"]["previous_attributes"]["status"] == "past_due"
    assert "default_payment_method" in updated["data"]["previous_attributes"]
    assert all(e["request"]["id"].startswith("req_") for e in stack.delivered[before:])
    # And the period is unchanged, with nothing left to pay
    sub = stack.sandbox.subscription(sub_id)
    assert sub["status"] == "active" and sub["items"]["data"][0]["current_period_end"] == period
    again = stack.browser.post(f"/portal/{portal.id}", data={"subscription": sub_id, "action": "pay"})
    assert again.status_code == 400 and "no failed payment" in again.get_data(as_text=True)
    assert "Update card and pay now" not in again.get_data(as_text=True)


def test_portal_cancel_at_period_end_then_cancel_now_emit_cancel_events(stack):
    # Given an active subscription and the member in the portal
    _, sub_id = subscribe(stack)
    customer_id = stack.sandbox.subscription(sub_id)["customer"]
    portal = open_portal(stack, customer_id)
    end = stack.sandbox.subscription(sub_id)["items"]["data"][0]["current_period_end"]
    # When they cancel at period end
    scheduled = stack.browser.post(f"/portal/{portal.id}", data={"subscription": sub_id, "action": "cancel_at_period_end"})
    # Then the usual update says so, and the portal shows the end date and no second scheduling
    assert scheduled.status_code == 303
    updated = stack.last("customer.subscription.updated")["data"]
    assert updated["object"]["cancel_at_period_end"] is True and updated["object"]["cancel_at"] == end
    assert updated["previous_attributes"]["cancel_at_period_end"] is False
    text = stack.browser.get(f"/portal/{portal.id}").get_data(as_text=True)
    assert "Cancels on" in text and "value=cancel_at_period_end>" not in text
    # When they cancel now instead
    stack.browser.post(f"/portal/{portal.id}", data={"subscription": sub_id, "action": "cancel_now"})
    # Then the subscription is deleted and the portal offers nothing more for it
    assert stack.types()[-1] == "customer.subscription.deleted"
    assert stack.sandbox.subscription(sub_id)["status"] == "canceled"
    assert "value=cancel_now>" not in stack.browser.get(f"/portal/{portal.id}").get_data(as_text=True)


def test_portal_action_on_another_customers_subscription_refused(stack):
    # Given two members, one of them in the portal
    _, theirs = subscribe(stack, member_id="mem_2")
    mine = stack.client.v1.customers.create({})
    portal = open_portal(stack, mine.id)
    before = len(stack.delivered)
    # When a forged form names the other member's subscription
    response = stack.browser.post(f"/portal/{portal.id}", data={"subscription": theirs, "action": "cancel_now"})
    # Then nothing happens to it
    assert response.status_code == 404
    assert stack.sandbox.subscription(theirs)["status"] == "active" and len(stack.delivered) == before
    assert stack.browser.get("/portal/bps_nope").status_code == 404


def test_membergate_gateway_portal_session_then_unknown_customer_is_permanent():
    # Given Membergate's own Stripe gateway pointed at the sandbox, and a member's customer
    stack = make_stack()
    gateway = StripeBillingGateway.build("rk_test_local", BASE, http_client=WsgiStripeHttpClient(stack.sandbox.wsgi_app, BASE))
    customer_id = gateway.create_customer("mem_9", "mem_9:customer")
    # When it opens the portal
    url = gateway.create_portal_session(customer_id, RETURN_URL)
    # Then the URL is the sandbox's hosted portal for that customer
    assert url.startswith(f"{BASE}/portal/bps_")
    assert stack.browser.get(url.removeprefix(BASE)).status_code == 200
    # And a customer Stripe does not know is a permanent, explained failure
    with pytest.raises(PermanentError) as raised:
        gateway.create_portal_session("cus_nope", RETURN_URL)
    assert raised.value.reason == "stripe_resource_missing" and "cus_nope" in raised.value.message


# --- shapes ---------------------------------------------------------------------------------------


def test_old_api_version_produces_top_level_periods_and_invoice_subscription():
    # Given a sandbox whose webhook endpoint is on a pre-basil version
    stack = make_stack(api_version="2024-06-20")
    assert not is_new_shape("2024-06-20") and is_new_shape(stripe.api_version)
    # When a member subscribes by card
    _, sub_id = subscribe(stack)
    sub = stack.last("customer.subscription.updated")["data"]["object"]
    invoice = stack.last("invoice.paid")["data"]["object"]
    # Then periods are on the subscription, not its items
    assert sub["current_period_end"] == shift(T0, 1, "month")
    assert "current_period_end" not in sub["items"]["data"][0]
    # And the invoice names its subscription and payment at top level, with no parent
    assert invoice["subscription"] == sub_id and invoice["paid"] is True
    assert invoice["charge"].startswith("ch_") and invoice["payment_intent"].startswith("pi_")
    assert "parent" not in invoice and "parent" not in invoice["lines"]["data"][0]
    assert all(e["api_version"] == "2024-06-20" for e in stack.delivered)
    # And Membergate's reader understands both
    snapshot = subscription_snapshot(parse_event(stack.last("customer.subscription.updated")))
    assert snapshot.current_period_end == sub["current_period_end"]
    assert invoice_subscription_id(invoice) == sub_id


def test_new_api_version_invoice_has_no_pre_basil_fields(stack):
    # When a member subscribes on the SDK's pinned version
    _, sub_id = subscribe(stack)
    invoice = stack.last("invoice.paid")["data"]["object"]
    sub = stack.sandbox.subscription(sub_id)
    # Then the invoice links through parent and lines, and the subscription has no top-level period
    assert not {"paid", "charge", "payment_intent", "subscription"} & set(invoice)
    assert invoice["lines"]["data"][0]["parent"]["subscription_item_details"]["subscription"] == sub_id
    assert "current_period_end" not in sub


def test_api_answers_in_request_stripe_version(stack):
    # Given a subscription made on the pinned version
    _, sub_id = subscribe(stack)
    # When it is read with an older Stripe-Version header
    response = stack.browser.get(
        f"/v1/subscriptions/{sub_id}",
        headers={"Authorization": "Bearer sk_test_x", "Stripe-Version": "2023-10-16"},
    )
    # Then the answer has the old shape
    assert response.status_code == 200 and "current_period_end" in response.json
    assert response.headers["Stripe-Version"] == "2023-10-16"


def test_portal_session_before_endive_has_no_after_expiration(stack):
    # Given a customer, and a portal session asked for on an older API version
    customer = stack.client.v1.customers.create({})
    response = stack.browser.post(
        "/v1/billing_portal/sessions",
        data={"customer": customer.id},
        headers={"Authorization": "Bearer sk_test_x", "Stripe-Version": "2025-09-30.clover"},
    )
    # Then the answer has that version's shape; the pinned one adds after_expiration
    assert response.status_code == 200 and "after_expiration" not in response.json
    assert "after_expiration" in open_portal(stack, customer.id)


# Fields basil removed that the generated fixture still lists (the SDK's own Invoice has no
# top-level `subscription` any more; the link is parent.subscription_details.subscription).
REMOVED_IN_BASIL = {"invoice": {"subscription"}}
# Fields newer than the fixture, present at the SDK's pinned version.
ADDED_SINCE_FIXTURE = {"billing_portal.session": {"after_expiration"}}
FREE_FORM = {"metadata", "previous_attributes"}


def _produced_objects() -> dict[str, dict]:
    stack = make_stack()
    subscribe(stack)
    sub = stack.last("customer.subscription.created")["data"]["object"]
    invoice = stack.last("invoice.paid")["data"]["object"]
    item = sub["items"]["data"][0]
    return {
        "subscription": sub,
        "subscription_item": item,
        "price": item["price"],
        "plan": item["plan"],
        "invoice": invoice,
        "line_item": invoice["lines"]["data"][0],
        "checkout.session": stack.last("checkout.session.completed")["data"]["object"],
        "customer": stack.last("customer.created")["data"]["object"],
        "event": stack.last("customer.subscription.updated"),
        "billing_portal.session": open_portal(stack, sub["customer"]).to_dict(),
        **_produced_payments(),
    }


def _produced_payments() -> dict[str, dict]:
    stack = make_stack()
    register(stack, price_id="price_pass", unit_amount=2500, currency="eur", type="one_time")
    for member in ("mem_refund", "mem_dispute"):
        session = payment_session(stack, "price_pass", member)
        pay(stack, session.id, "card")
        action = "refund_last_payment" if member == "mem_refund" else "dispute_last_payment"
        assert stack.browser.post(f"/_control/customers/{session.customer}/{action}", json={"amount": 500}
                                  if action == "refund_last_payment" else {}).status_code == 200
    return {
        "charge": stack.last("charge.refunded")["data"]["object"],
        "refund": stack.last("refund.created")["data"]["object"],
        "dispute": stack.last("charge.dispute.created")["data"]["object"],
        "payment_intent": stack.last("payment_intent.succeeded")["data"]["object"],
        "invoice_payment": _produced_invoice_payment(),
    }


def _produced_invoice_payment() -> dict:
    stack = make_stack()
    _, sub_id = subscribe(stack)
    invoice_id = stack.sandbox.subscription(sub_id)["latest_invoice"]
    return stack.client.v1.invoice_payments.list({"invoice": invoice_id}).data[0].to_dict()


def _missing_nested(fixture, ours, path: str) -> list[str]:
    """Keys the fixture has at any depth that ours lacks (where both sides are objects)."""
    if isinstance(fixture, list) and isinstance(ours, list) and fixture and ours:
        return _missing_nested(fixture[0], ours[0], f"{path}[0]")
    if not (isinstance(fixture, dict) and isinstance(ours, dict)) or path.rsplit(".", 1)[-1] in FREE_FORM:
        return []
    missing = [f"{path}.{key}" for key in fixture if key not in ours]
    for key in fixture.keys() & ours.keys():
        if not (path.endswith("event") and key == "data"):
            missing += _missing_nested(fixture[key], ours[key], f"{path}.{key}")
    return missing


SHAPED_RESOURCES = [
    "subscription",
    "subscription_item",
    "price",
    "plan",
    "invoice",
    "line_item",
    "checkout.session",
    "customer",
    "event",
    "billing_portal.session",
    "charge",
    "refund",
    "dispute",
    "payment_intent",
    "invoice_payment",
]


@pytest.mark.parametrize("resource", SHAPED_RESOURCES)
def test_shapes_new_version_keys_match_stripe_fixture(resource):
    # Given Stripe's own example object (the comparison is skipped when the specs are absent)
    fixture = stripe_fixture(resource)
    for removed in REMOVED_IN_BASIL.get(resource, set()):
        del fixture[removed]
    for added in ADDED_SINCE_FIXTURE.get(resource, set()):
        fixture[added] = None
    # When the sandbox produces the same kind of object
    ours = _produced_objects()[resource]
    # Then it has exactly the fixture's top-level fields, minus what basil removed
    expected = set(fixture)
    assert set(ours) == expected, f"missing {sorted(expected - set(ours))}, extra {sorted(set(ours) - expected)}"
    # And every nested field the fixture shows
    assert _missing_nested(fixture, ours, resource) == []


# --- signed delivery ------------------------------------------------------------------------------


def test_signed_delivery_signs_raw_bytes_with_wall_clock_and_verifies():
    # Given a sandbox whose business clock is far in the past, delivering really-signed events
    received: list[tuple[bytes, dict]] = []

    def post(payload: bytes, headers: dict) -> int:
        received.append((payload, headers))
        return 200

    deliver = signed_delivery("whsec_local", post)
    sandbox = StripeSandbox(Clock(1_600_000_000), deliver, BASE)
    client = stripe.StripeClient(
        "sk_test_local", base_addresses={"api": BASE}, http_client=WsgiStripeHttpClient(sandbox.wsgi_app, BASE)
    )
    # When an event is emitted
    client.v1.customers.create({"metadata": {"membergate_member_id": "mem_1"}})
    # Then the exact bytes verify with Membergate's checker against the wall clock
    payload, headers = received[-1]
    assert headers["Content-Type"] == "application/json"
    verify_signature(payload, headers["Stripe-Signature"], ["whsec_local"], time.time())
    assert json.loads(payload) == sandbox.events()[-1]
    assert json.loads(payload)["created"] == 1_600_000_000
    assert deliver.failures == []


def test_signed_delivery_non_2xx_retried_then_recorded():
    # Given an endpoint that fails twice, then one that always fails
    answers = iter([500, 503, 200])
    flaky = signed_delivery("whsec_local", lambda payload, headers: next(answers), backoff_seconds=0)
    down = signed_delivery("whsec_local", lambda payload, headers: 500, attempts=3, backoff_seconds=0)
    event = {"id": "evt_1", "type": "invoice.paid", "object": "event"}
    # When each receives an event
    flaky(event)
    down(event)
    # Then the flaky one got it on the third try and the dead one's failure is recorded
    assert flaky.failures == []
    assert down.failures == [{"event_id": "evt_1", "type": "invoice.paid", "attempts": 3, "last_error": "HTTP 500"}]


def test_signed_delivery_connection_error_recorded_not_raised():
    # Given an endpoint that cannot be reached
    def post(payload: bytes, headers: dict) -> int:
        raise ConnectionRefusedError("nobody home")

    deliver = signed_delivery("whsec_local", post, attempts=2, backoff_seconds=0)
    # When an event is delivered
    deliver({"id": "evt_2", "type": "invoice.paid"})
    # Then the sandbox carries on and the failure is kept
    assert deliver.failures[0]["event_id"] == "evt_2" and "nobody home" in deliver.failures[0]["last_error"]


def test_membergate_gateway_finds_the_subscription_a_disputed_payment_paid():
    # Given Membergate's own Stripe gateway pointed at the sandbox, and a subscription whose payment is disputed
    stack = make_stack()
    gateway = StripeBillingGateway.build("rk_test_local", BASE, http_client=WsgiStripeHttpClient(stack.sandbox.wsgi_app, BASE))
    _, sub_id = subscribe(stack)
    customer = customer_of(stack, sub_id)
    stack.browser.post(f"/_control/customers/{customer}/dispute_last_payment")
    dispute = stack.last("charge.dispute.created")["data"]["object"]
    # When it asks which invoice the disputed PaymentIntent paid
    paid = gateway.invoice_paid_by(dispute["payment_intent"])
    # Then it names the invoice, its subscription and its customer
    assert paid is not None and paid.invoice_id.startswith("in_")
    assert (paid.subscription_id, paid.customer_id) == (sub_id, customer)
    # And a PaymentIntent that paid no invoice gives nothing
    assert gateway.invoice_paid_by("pi_never_seen") is None
