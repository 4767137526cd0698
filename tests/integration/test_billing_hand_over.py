"""Intake -> processor under moto: large events by reference, retries, the dead-letter queue."""

from __future__ import annotations

import copy
import json
import time

import boto3
import pytest

from membergate import bootstrap
from membergate.domain.model import Community, OnGraceEnd, OnRevoke, Plan, PlanGrant, Platform
from tests.support import stripe_events as se
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import WEBHOOK_SECRET, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration

T0 = 1_800_000_000
MIB = 1024 * 1024


def post(event: dict) -> dict:
    body, signature = se.signed(event, WEBHOOK_SECRET, int(time.time()))
    request = http_event("POST", "/webhooks/stripe", body=body, headers={"Stripe-Signature": signature})
    return load_handler("stripe_webhook").lambda_handler(request, LambdaContext())


def ledger_status(stack, event_id: str) -> str | None:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=stack.ledger_table, Key={"pk": {"S": f"STRIPE_EVENT#{event_id}"}}
    ).get("Item")
    return item["status"]["S"] if item else None


def sell_monthly_plan() -> None:
    catalog = bootstrap.processor().processor.stores.catalog
    catalog.add_community(Community("com_1", Platform.DISCORD, "Club", "900000000000000001", "900000000000000002",
                                    OnRevoke.REMOVE_ROLE, "en", T0))
    catalog.add_plan(Plan("plan_1", "Monthly", ("price_monthly",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0))


def subscription_event_of_size(event_id: str, size: int) -> dict:
    """A real-shaped subscription event padded with further items (other prices) to ``size`` bytes."""
    event = se.subscription_event("customer.subscription.created", created=T0, event_id=event_id,
                                  customer="cus_big", sub_id="sub_big")
    items = event["data"]["object"]["items"]["data"]
    template = items[0]
    n = 0
    # The length is tracked as items are added (each adds ", " and itself to the list): encoding the
    # whole event again for each of the ~3,000 items of 5 MiB took a minute.
    length = len(json.dumps(event))
    while length < size:
        extra = copy.deepcopy(template)
        n += 1
        extra["id"] = f"si_extra_{n}"
        extra["price"]["id"] = extra["plan"]["id"] = f"price_extra_{n}"
        items.append(extra)
        length += len(", ") + len(json.dumps(extra))
    assert len(json.dumps(event)) == length >= size
    return event


@pytest.mark.parametrize("size", [1 * MIB, 5 * MIB], ids=["1MiB", "5MiB"])
def test_hand_over_event_larger_than_invoke_limit_goes_by_reference_and_is_processed(size):
    with aws_stack() as stack:
        # Given a plan selling the event's first price
        sell_monthly_plan()
        event = subscription_event_of_size("evt_big", size)
        # When the signed event, larger than an asynchronous invoke may carry, is delivered
        response = post(event)
        # Then the invoke carries a reference, not the body, and stays under the limit
        assert response["statusCode"] == 200
        (payload,) = stack.hand_overs.pending()
        assert len(payload) < 240 * 1024
        envelope = json.loads(payload)
        assert "body" not in envelope and envelope["body_ref"]["bucket"] == stack.event_bodies_bucket
        # And the processor reads the body back and applies it
        stack.hand_overs.run_pending()
        assert ledger_status(stack, "evt_big") == "processed"
        member = bootstrap.processor().processor.stores.members.find_by_customer("cus_big")
        record = bootstrap.processor().processor.stores.subscriptions.get(member.id, "sub_big")
        assert record is not None and record.plan_id == "plan_1" and record.status == "active"
        assert stack.drain(stack.dead_letter_queue_url) == []


def test_hand_over_small_event_travels_inline_with_no_bucket_write():
    with aws_stack() as stack:
        # When a small event is delivered
        post(se.subscription_event(created=T0, event_id="evt_small"))
        # Then its body travels in the invoke and nothing is stored in the bucket
        (envelope,) = stack.pending_events()
        assert "body" in envelope and "body_ref" not in envelope
        listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=stack.event_bodies_bucket)
        assert listed.get("KeyCount", 0) == 0


def test_hand_over_body_lost_from_bucket_never_marked_processed_and_parked_then_redelivery_recovers():
    with aws_stack() as stack:
        # Given a large event whose stored body disappears before the processor runs
        sell_monthly_plan()
        event = subscription_event_of_size("evt_lost", 1 * MIB)
        post(event)
        (envelope,) = stack.pending_events()
        boto3.client("s3", region_name="us-east-1").delete_object(Bucket=stack.event_bodies_bucket,
                                                                  Key=envelope["body_ref"]["key"])
        # When Lambda runs the invoke and its two retries
        stack.hand_overs.run_pending()
        # Then the ledger still says "received" (never "processed"), and the invoke is parked
        # in the dead-letter queue as Lambda's destination record, naming the event
        assert ledger_status(stack, "evt_lost") == "received"
        (parked,) = stack.drain(stack.dead_letter_queue_url)
        record = json.loads(parked["Body"])
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["requestPayload"]["event_id"] == "evt_lost"
        assert "resend the event" in record["responsePayload"]["errorMessage"]
        # And when Stripe redelivers the event, it is handed over again and applied
        assert json.loads(post(event)["body"])["outcome"] == "requeued"
        stack.hand_overs.run_pending()
        assert ledger_status(stack, "evt_lost") == "processed"


def test_hand_over_processor_failing_every_time_is_retried_twice_then_parked():
    with aws_stack() as stack:
        # Given a processor whose store is down
        post(se.subscription_event(created=T0, event_id="evt_down"))
        processor = bootstrap.processor().processor
        attempts = {"n": 0}

        def down(*args, **kwargs):
            attempts["n"] += 1
            raise ConnectionError("DynamoDB unreachable")

        processor.apply = down
        # When Lambda runs the invoke
        stack.hand_overs.run_pending()
        # Then it was tried three times in all, and parked with the error for the operator
        assert attempts["n"] == 3
        assert ledger_status(stack, "evt_down") == "received"
        (parked,) = stack.drain(stack.dead_letter_queue_url)
        assert json.loads(parked["Body"])["responsePayload"]["errorType"] == "ConnectionError"
