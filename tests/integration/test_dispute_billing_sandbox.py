"""Pausing a disputed subscription's billing: the Stripe gateway on the local sandbox, checked against Stripe's spec."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import pytest
import stripe

from infra.local.stripe_sandbox import WsgiStripeHttpClient
from infra.local.stripe_sandbox.api import parse_form
from membergate import bootstrap
from membergate.adapters.stripe_billing import StripeBillingGateway
from membergate.domain.errors import PermanentError
from membergate.domain.model import Community, EntitlementState, OnGraceEnd, OnRevoke, Plan, PlanGrant, Platform
from membergate.domain.stripe_events import snapshot_of
from membergate.services.billing_events import BillingEventProcessor
from membergate.services.membership import current_view
from tests.integration.test_checkout_options import spec_violations
from tests.integration.test_stripe_sandbox import BASE, T0, make_stack, period_end, subscribe
from tests.support.aws import aws_stack
from tests.support.fakes import FakeQueue
from tests.support.specs import stripe_openapi

pytestmark = pytest.mark.integration


class RecordingClient(WsgiStripeHttpClient):
    """The sandbox client, keeping each POST's form parameters as Stripe would parse them."""

    def __init__(self, app: Any, base_url: str) -> None:
        super().__init__(app, base_url)
        self.posted: list[tuple[str, dict[str, Any]]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        if method.lower() == "post":
            body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
            self.posted.append((url, parse_form(parse_qsl(body, keep_blank_values=True))))
        return super().request(method, url, headers, post_data, _usage=_usage)


@lru_cache(maxsize=1)
def subscription_update_schema() -> dict[str, Any]:
    spec = stripe_openapi("subscription update parameters cannot be checked against Stripe's spec")
    body = spec["paths"]["/v1/subscriptions/{subscription_exposed_id}"]["post"]["requestBody"]["content"]
    return body["application/x-www-form-urlencoded"]["schema"]


def gateway_on(stack) -> tuple[StripeBillingGateway, RecordingClient]:
    client = RecordingClient(stack.sandbox.wsgi_app, BASE)
    return StripeBillingGateway.build("rk_test_local", BASE, http_client=client), client


def test_pause_then_resume_collection_follows_the_spec_voids_the_renewal_then_bills_again():
    # Given Membergate's gateway on the sandbox and a card-paying subscription
    stack = make_stack()
    gateway, client = gateway_on(stack)
    _, sub_id = subscribe(stack)
    # When billing is paused (a dispute opened under revoke)
    paused = gateway.set_collection_paused(sub_id, True, "membergate-dispute-pause-" + sub_id)
    # Then the request is Stripe's pause_collection with behavior void, as the spec allows
    (url, params), = client.posted
    assert url.endswith(f"/v1/subscriptions/{sub_id}") and params == {"pause_collection": {"behavior": "void"}}
    assert spec_violations(params, {**subscription_update_schema(), "required": []}) == []
    # and Stripe's answer (and its update event) shows the pause, as Membergate reads it
    assert paused["pause_collection"] == {"behavior": "void", "resumes_at": None}
    update = stack.last("customer.subscription.updated")
    assert update["data"]["previous_attributes"] == {"pause_collection": None}
    assert snapshot_of(paused, created=0, source_id="t", livemode=False, what="t").pause_collection
    # When the period ends while paused
    before = len(stack.delivered)
    stack.clock.now = period_end(stack, sub_id) + 3600
    stack.sandbox.advance_clock()
    # Then the renewal invoice is voided, nothing is charged, and the subscription stays active
    types = stack.types(before)
    assert "invoice.voided" in types and "invoice.paid" not in types and "invoice.payment_failed" not in types
    assert stack.last("invoice.voided")["data"]["object"]["amount_paid"] == 0
    assert stack.sandbox.subscription(sub_id)["status"] == "active"
    # When billing resumes (the dispute was won)
    resumed = gateway.set_collection_paused(sub_id, False, "membergate-dispute-resume-" + sub_id)
    # Then the request unsets it with "" (the spec's other choice), and the next period is charged again
    assert client.posted[-1][1] == {"pause_collection": ""}
    assert spec_violations(client.posted[-1][1], {**subscription_update_schema(), "required": []}) == []
    assert resumed["pause_collection"] is None
    before = len(stack.delivered)
    stack.clock.now = period_end(stack, sub_id) + 3600
    stack.sandbox.advance_clock()
    assert "invoice.paid" in stack.types(before)


def test_pause_collection_same_key_twice_is_one_change():
    # Given a subscription paused once
    stack = make_stack()
    gateway, _ = gateway_on(stack)
    _, sub_id = subscribe(stack)
    gateway.set_collection_paused(sub_id, True, "k-1")
    updates = stack.types().count("customer.subscription.updated")
    # When the same request is retried with its key
    again = gateway.set_collection_paused(sub_id, True, "k-1")
    # Then Stripe answers the same and sends no second update
    assert again["pause_collection"]["behavior"] == "void"
    assert stack.types().count("customer.subscription.updated") == updates


def test_pause_collection_on_a_cancelled_subscription_is_a_permanent_refusal_and_unknown_one_is_none():
    # Given a cancelled subscription
    stack = make_stack()
    gateway, _ = gateway_on(stack)
    _, sub_id = subscribe(stack)
    stack.client.v1.subscriptions.cancel(sub_id)
    # When its billing is paused
    with pytest.raises(PermanentError) as refused:
        gateway.set_collection_paused(sub_id, True, "k-2")
    # Then Stripe's refusal is permanent and explained; a subscription Stripe does not know is None
    assert "canceled" in refused.value.message
    assert gateway.set_collection_paused("sub_nope", True, "k-3") is None


@pytest.mark.parametrize(("value", "param"), [
    ({"behavior": "keep_as_draft"}, "pause_collection[behavior]"),  # Stripe's, not modelled by the sandbox
    ({"behavior": "forever"}, "pause_collection[behavior]"),
    ({"behavior": "void", "resumes_at": 1}, "pause_collection[resumes_at]"),
    ({"behavior": "void", "colour": "red"}, "pause_collection[colour]"),
    ("now", "pause_collection"),
])
def test_sandbox_refuses_pause_collection_values_it_does_not_take_naming_the_param(value, param):
    # Given a subscription
    stack = make_stack()
    _, sub_id = subscribe(stack)
    # When an update asks a pause the sandbox does not take
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stack.client.v1.subscriptions.update(sub_id, {"pause_collection": value})
    # Then it is a 400 naming the parameter, and nothing changed
    assert refused.value.http_status == 400 and refused.value.param == param
    assert stack.sandbox.subscription(sub_id)["pause_collection"] is None


def test_processor_under_moto_pauses_a_disputed_subscription_at_the_sandbox_and_resumes_it_when_won():
    with aws_stack():
        # Given the processor over DynamoDB, with the gateway on the sandbox as its Stripe, and a paying subscriber
        stores = bootstrap.admin().stores
        stores.catalog.add_community(Community("com_1", Platform.DISCORD, "Club", "1", "2", OnRevoke.REMOVE_ROLE, "en", T0))
        stores.catalog.add_plan(Plan("plan_gold", "Gold", ("price_gold",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0))
        stack = make_stack()
        gateway, _ = gateway_on(stack)
        processor = BillingEventProcessor(stores, FakeQueue(), payments=gateway, collection=gateway)
        applied = 0

        def deliver() -> None:
            nonlocal applied
            for event in stack.delivered[applied:]:
                processor.apply(json.dumps(event), stack.clock.now)
            applied = len(stack.delivered)

        _, sub_id = subscribe(stack)
        deliver()
        customer = stack.sandbox.subscription(sub_id)["customer"]
        member = stores.members.find_by_customer(customer)

        def state() -> EntitlementState:
            (ent,) = current_view(stores, member.id, stack.clock.now).entitlements
            return ent.state

        assert state() is EntitlementState.ACTIVE
        # When the cardholder disputes the payment and the events (the pause's update among them) arrive
        dispute = stack.sandbox.dispute_last_payment(customer)
        deliver()
        deliver()
        # Then access ends, and the sandbox's subscription is paused with behavior void
        assert state() is EntitlementState.ENDED
        assert stack.sandbox.subscription(sub_id)["pause_collection"] == {"behavior": "void", "resumes_at": None}
        record = stores.subscriptions.get(member.id, sub_id)
        assert (record.dispute, record.latest.pause_collection) == ("open", True)
        # When the dispute is won
        stack.sandbox.close_dispute(dispute["id"], "won")
        deliver()
        deliver()
        # Then billing resumes at the sandbox and access is back
        assert stack.sandbox.subscription(sub_id)["pause_collection"] is None
        assert state() is EntitlementState.ACTIVE
