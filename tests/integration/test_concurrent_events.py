"""Two events of one member applied at the same moment converge (optimistic locking, moto)."""

from __future__ import annotations

import pytest

from membergate import bootstrap
from membergate.domain.errors import ConcurrentUpdateError
from membergate.domain.model import Community, EntitlementState, OnGraceEnd, OnRevoke, Plan, PlanGrant, Platform
from tests.support import stripe_events as se
from tests.support.apigw import LambdaContext
from tests.support.aws import aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
T0 = 1_800_000_000


def sell_two_plans(stores) -> None:
    stores.catalog.add_community(Community("com_1", Platform.DISCORD, "Club", "900000000000000001",
                                           "900000000000000002", OnRevoke.REMOVE_ROLE, "en", T0))
    for plan_id, price in (("plan_a", "price_a"), ("plan_b", "price_b")):
        stores.catalog.add_plan(Plan(plan_id, plan_id, (price,), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0))


def body(event: dict) -> str:
    import json

    return json.dumps(event)


def test_concurrent_events_of_one_member_the_stale_projection_write_loses_and_retry_converges():
    with aws_stack():
        processor = bootstrap.processor().processor
        stores = processor.stores
        sell_two_plans(stores)
        member = stores.members.create_for_customer("cus_1", "mbr_1", T0)
        first = se.subscription_event("customer.subscription.created", created=T0, event_id="evt_a",
                                      sub_id="sub_a", price_id="price_a", member_id=member.id)
        second = se.subscription_event("customer.subscription.created", created=T0, event_id="evt_b",
                                       sub_id="sub_b", price_id="price_b", member_id=member.id)
        # Given event A has read the member (no subscription yet) when event B is applied in
        # full, in between, by another invocation
        real_load = stores.states.load
        interleaved = {"done": False}

        def load_then_other_invocation(member_id):
            state = real_load(member_id)
            if not interleaved["done"]:
                interleaved["done"] = True
                processor.apply(body(second), now=T0 + 1)
            return state

        stores.states.load = load_then_other_invocation
        # When A goes on to write the projection it derived from what it read (plan_a only)
        with pytest.raises(ConcurrentUpdateError):
            processor.apply(body(first), now=T0 + 1)
        stores.states.load = real_load
        # Then A's stale write was refused and B's projection stands; applying A again (what
        # the processor does on ConcurrentUpdateError) gives both plans
        assert {e.plan_id for e in stores.entitlements.for_member(member.id)} == {"plan_b"}
        processor.apply(body(first), now=T0 + 2)
        entitlements = stores.entitlements.for_member(member.id)
        assert {e.plan_id for e in entitlements} == {"plan_a", "plan_b"}
        # (pending: the member has bound no Discord account yet; what matters is both plans count)
        assert {e.state for e in entitlements} == {EntitlementState.PENDING}


def test_concurrent_events_processor_handler_reapplies_after_losing_the_race():
    with aws_stack() as stack:
        processor = bootstrap.processor().processor
        stores = processor.stores
        sell_two_plans(stores)
        member = stores.members.create_for_customer("cus_1", "mbr_1", T0)
        first = se.subscription_event("customer.subscription.created", created=T0, event_id="evt_a",
                                      sub_id="sub_a", price_id="price_a", member_id=member.id)
        second = se.subscription_event("customer.subscription.created", created=T0, event_id="evt_b",
                                       sub_id="sub_b", price_id="price_b", member_id=member.id)
        real_load = stores.states.load
        interleaved = {"done": False}

        def load_then_other_invocation(member_id):
            state = real_load(member_id)
            if not interleaved["done"]:
                interleaved["done"] = True
                processor.apply(body(second), now=T0 + 1)
            return state

        stores.states.load = load_then_other_invocation
        # When the processor Lambda is invoked with A while B races it
        result = load_handler("process_billing_event").lambda_handler(
            {"event_id": "evt_a", "correlation_id": "req-a", "body": body(first)}, LambdaContext())
        # Then the invocation succeeds (no Lambda retry, nothing parked) and both plans count
        assert result["status"] == "processed"
        assert {e.plan_id for e in stores.entitlements.for_member(member.id)} == {"plan_a", "plan_b"}
        assert stack.drain(stack.dead_letter_queue_url) == []
