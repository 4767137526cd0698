"""The local Stripe sandbox's subscription schedules, driven by the real stripe SDK: a downgrade at the period end."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pytest
import stripe
import yaml

from membergate.adapters.stripe_billing import StripeBillingGateway
from tests.integration.test_checkout_options import spec_violations
from tests.integration.test_dispute_billing_sandbox import RecordingClient
from tests.integration.test_stripe_sandbox import BASE, DAY, Stack, make_stack, period_end, subscribe
from tests.support.specs import missing_spec, specs_dir, stripe_fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def gold() -> tuple[Stack, str]:
    """A gold (10.00/month) subscription ten days in, and a cheaper bronze price (4.00/month)."""
    stack = make_stack()
    stack.sandbox.register_price("price_bronze", 400, "eur", product_name="Bronze")
    _, sub_id = subscribe(stack)
    stack.clock.now += 10 * DAY
    return stack, sub_id


def downgrade_at_period_end(stack: Stack, sub_id: str, price: str = "price_bronze") -> dict:
    """What Membergate's gateway does: a schedule from the subscription, then two phases."""
    schedule = stack.client.v1.subscription_schedules.create({"from_subscription": sub_id})
    current = schedule.phases[0]
    return stack.client.v1.subscription_schedules.update(schedule.id, {
        "end_behavior": "release",
        "phases": [
            {"items": [{"price": current["items"][0]["price"], "quantity": 1}],
             "start_date": current["start_date"], "end_date": current["end_date"], "proration_behavior": "none"},
            {"items": [{"price": price, "quantity": 1}], "proration_behavior": "none",
             "metadata": {"membergate_plan_id": "plan_bronze"}},
        ],
    }).to_dict()


def test_schedule_from_subscription_has_the_spec_shape_and_sets_the_subscription_schedule(gold):
    stack, sub_id = gold
    before = len(stack.delivered)
    # When a schedule is made from the live subscription
    schedule = stack.client.v1.subscription_schedules.create({"from_subscription": sub_id}).to_dict()
    # Then it has Stripe's fields, one phase (the current price until the period end), and is attached
    assert set(stripe_fixture("subscription_schedule")) - {"billing_mode", "customer_account"} <= set(schedule)
    assert (schedule["status"], schedule["subscription"], schedule["end_behavior"]) == ("active", sub_id, "release")
    assert [p["end_date"] for p in schedule["phases"]] == [period_end(stack, sub_id)]
    assert stack.sandbox.subscription(sub_id)["schedule"] == schedule["id"]
    assert stack.types(before) == ["customer.subscription.updated", "subscription_schedule.created"]
    updated = stack.last("customer.subscription.updated")["data"]
    assert (updated["object"]["schedule"], updated["previous_attributes"]["schedule"]) == (schedule["id"], None)


def test_downgrade_at_period_end_bills_the_new_price_at_renewal_without_proration_then_releases(gold):
    stack, sub_id = gold
    end = period_end(stack, sub_id)
    schedule = downgrade_at_period_end(stack, sub_id)
    # Then nothing changes before the period end
    assert stack.sandbox.subscription(sub_id)["items"]["data"][0]["price"]["id"] == "price_gold"
    before = len(stack.delivered)
    # When the clock passes the period end
    stack.clock.now = end + 60
    stack.sandbox.advance_clock()
    # Then the subscription moved to bronze (one update, the phase's metadata applied) before the
    # renewal, which bills 4.00 with no proration line
    types = stack.types(before)
    assert types.index("customer.subscription.updated") < types.index("invoice.paid")
    moved = [e for e in stack.delivered[before:] if e["type"] == "customer.subscription.updated"][0]["data"]
    assert moved["object"]["items"]["data"][0]["price"]["id"] == "price_bronze"
    assert moved["previous_attributes"]["items"]["data"][0]["price"]["id"] == "price_gold"
    assert moved["object"]["metadata"]["membergate_plan_id"] == "plan_bronze"
    invoice = stack.last("invoice.paid")["data"]["object"]
    assert invoice["amount_paid"] == 400
    assert not any(line["parent"]["subscription_item_details"]["proration"] for line in invoice["lines"]["data"])
    # When the last phase (one period) ends too
    stack.clock.now = period_end(stack, sub_id) + 60
    stack.sandbox.advance_clock()
    # Then the schedule released the subscription, which stays on bronze
    assert stack.client.v1.subscription_schedules.retrieve(schedule["id"]).status == "released"
    assert stack.sandbox.subscription(sub_id)["schedule"] is None
    assert stack.last("invoice.paid")["data"]["object"]["amount_paid"] == 400


def test_release_before_the_period_end_cancels_the_pending_change(gold):
    stack, sub_id = gold
    schedule = downgrade_at_period_end(stack, sub_id)
    # When the schedule is released before the period end
    released = stack.client.v1.subscription_schedules.release(schedule["id"])
    # Then the subscription is free of it and renews at the old price
    assert (released.status, released.subscription, released.released_subscription) == ("released", None, sub_id)
    assert stack.sandbox.subscription(sub_id)["schedule"] is None
    stack.clock.now = period_end(stack, sub_id) + 60
    stack.sandbox.advance_clock()
    assert stack.last("invoice.paid")["data"]["object"]["amount_paid"] == 1000
    assert stack.sandbox.subscription(sub_id)["items"]["data"][0]["price"]["id"] == "price_gold"
    # And releasing twice is refused as Stripe refuses it
    with pytest.raises(stripe.InvalidRequestError):
        stack.client.v1.subscription_schedules.release(schedule["id"])


def test_scheduled_subscription_refuses_cancel_at_period_end_until_released(gold):
    stack, sub_id = gold
    schedule = downgrade_at_period_end(stack, sub_id)
    # When a cancellation at the period end is asked of a scheduled subscription
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True})
    # Then it is refused, naming the schedule; once released it is accepted
    assert schedule["id"] in str(raised.value)
    stack.client.v1.subscription_schedules.release(schedule["id"])
    assert stack.client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True}).cancel_at_period_end


def test_schedule_update_with_an_unknown_price_is_refused_and_nothing_changes(gold):
    stack, sub_id = gold
    schedule = stack.client.v1.subscription_schedules.create({"from_subscription": sub_id})
    # When the next phase names a price Stripe does not know
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.subscription_schedules.update(schedule.id, {"phases": [
            {"items": [{"price": "price_gold"}], "start_date": schedule.phases[0]["start_date"],
             "end_date": schedule.phases[0]["end_date"]},
            {"items": [{"price": "price_nobody_made"}]},
        ]})
    # Then it is resource_missing on that price and the schedule keeps its one phase
    assert (raised.value.code, raised.value.param) == ("resource_missing", "phases[1][items][0][price]")
    assert len(stack.client.v1.subscription_schedules.retrieve(schedule.id).phases) == 1


def test_schedule_from_a_subscription_already_scheduled_is_refused(gold):
    stack, sub_id = gold
    stack.client.v1.subscription_schedules.create({"from_subscription": sub_id})
    # When a second schedule is made from the same subscription
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stack.client.v1.subscription_schedules.create({"from_subscription": sub_id})
    # Then Stripe's refusal says it is already attached
    assert raised.value.param == "from_subscription"


def test_cancel_schedule_cancels_the_subscription_now(gold):
    stack, sub_id = gold
    schedule = downgrade_at_period_end(stack, sub_id)
    # When the schedule is canceled
    canceled = stack.client.v1.subscription_schedules.cancel(schedule["id"])
    # Then so is its subscription, at once
    assert canceled.status == "canceled"
    assert stack.sandbox.subscription(sub_id)["status"] == "canceled"
    assert stack.types()[-2:] == ["subscription_schedule.canceled", "customer.subscription.deleted"]


@lru_cache(maxsize=4)
def request_schema(path: str) -> dict[str, Any]:
    spec_path = specs_dir() / "stripe" / "spec3.yaml"
    if not spec_path.exists():
        missing_spec(f"{spec_path} is missing: schedule parameters cannot be checked against Stripe's spec")
    spec = yaml.load(spec_path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    return {**body, "required": body.get("required", [])}


def test_gateway_schedule_and_release_requests_follow_stripes_spec_and_keys_replay(gold):
    # Given Membergate's gateway on the sandbox, recording what it posts
    stack, sub_id = gold
    client = RecordingClient(stack.sandbox.wsgi_app, BASE)
    gateway = StripeBillingGateway.build("rk_test_local", BASE, http_client=client)
    # When it schedules the cheaper price for the period end, twice with one key (a retry)
    first = gateway.schedule_price_change(subscription_id=sub_id, price_id="price_bronze", member_id="mem_1",
                                          plan_id="plan_bronze", idempotency_key="membergate-switch-k1")
    again = gateway.schedule_price_change(subscription_id=sub_id, price_id="price_bronze", member_id="mem_1",
                                          plan_id="plan_bronze", idempotency_key="membergate-switch-k1")
    # Then one schedule exists, due at the period end, and every request is one Stripe's spec allows
    assert first == again and first.at == period_end(stack, sub_id)
    assert len(stack.sandbox.schedules) == 1
    create, update = client.posted[0], client.posted[1]
    assert create[0].endswith("/v1/subscription_schedules") and create[1] == {"from_subscription": sub_id}
    assert spec_violations(create[1], request_schema("/v1/subscription_schedules")) == []
    assert spec_violations(update[1], request_schema("/v1/subscription_schedules/{schedule}")) == []
    assert update[1]["phases"][1]["proration_behavior"] == "none" and update[1]["end_behavior"] == "release"
    # When it is released (a switch back), twice
    gateway.release_schedule(subscription_id=sub_id, idempotency_key="membergate-keep-k1")
    gateway.release_schedule(subscription_id=sub_id, idempotency_key="membergate-keep-k1")
    # Then the subscription is free of it; the second call finds nothing to release and asks nothing
    assert stack.sandbox.subscription(sub_id)["schedule"] is None
    releases = [p for p in client.posted if p[0].endswith("/release")]
    assert len(releases) == 1
    assert spec_violations(releases[0][1], request_schema("/v1/subscription_schedules/{schedule}/release")) == []
