"""The Stripe webhook Lambda under moto: verify first, record and hand over, never lose an event."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from membergate.domain.signature import signature_header
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import WEBHOOK_SECRET, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration


def stripe_event(event_id="evt_1", type_="customer.subscription.updated", livemode=False, customer="cus_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": None,
            "created": 1_800_000_000,
            "livemode": livemode,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
            "data": {"object": {"id": "sub_1", "object": "subscription", "customer": customer, "status": "active"}},
        }
    ).encode()


def post(body: bytes, *, secret=WEBHOOK_SECRET, signed_at=None, base64_body=False, header=None):
    handler = load_handler("stripe_webhook")
    sig = header if header is not None else signature_header(secret, int(signed_at or time.time()), body)
    event = http_event("POST", "/webhooks/stripe", body=body, headers={"Stripe-Signature": sig}, base64_body=base64_body)
    return handler.lambda_handler(event, LambdaContext())


def ledger_status(stack, event_id):
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=stack.ledger_table, Key={"pk": {"S": f"STRIPE_EVENT#{event_id}"}}
    ).get("Item")
    return item["status"]["S"] if item else None


def test_intake_valid_event_recorded_and_handed_over_inline_with_request_id():
    with aws_stack() as stack:
        # When a really-signed event arrives
        response = post(stripe_event())
        # Then it is acknowledged, recorded as received and handed to the processor with its
        # body inline and the webhook's request id as correlation id
        assert response["statusCode"] == 200
        assert ledger_status(stack, "evt_1") == "received"
        (envelope,) = stack.pending_events()
        assert envelope["event_id"] == "evt_1"
        assert envelope["correlation_id"] == "req-1"
        assert json.loads(envelope["body"])["id"] == "evt_1"


def test_intake_base64_body_verified_on_decoded_bytes():
    with aws_stack() as stack:
        response = post(stripe_event(), base64_body=True)
        assert response["statusCode"] == 200
        assert ledger_status(stack, "evt_1") == "received"


@pytest.mark.parametrize(
    "case",
    ["wrong_secret", "expired", "missing", "tampered"],
)
def test_intake_bad_signature_400_and_nothing_stored(case):
    with aws_stack() as stack:
        body = stripe_event()
        kwargs = {
            "wrong_secret": {"secret": "whsec_other"},
            "expired": {"signed_at": time.time() - 301},
            "missing": {"header": ""},
            "tampered": {},
        }[case]
        sent = body.replace(b"active", b"canceled") if case == "tampered" else body
        if case == "tampered":
            kwargs = {"header": signature_header(WEBHOOK_SECRET, int(time.time()), body)}
        response = post(sent, **kwargs)
        assert response["statusCode"] == 400
        assert json.loads(response["body"])["error"]["code"] == "invalid_signature"
        assert ledger_status(stack, "evt_1") is None
        assert stack.pending_events() == []


def test_intake_unparseable_body_400_nothing_stored():
    with aws_stack() as stack:
        response = post(b"{not json")
        assert response["statusCode"] == 400
        assert json.loads(response["body"])["error"]["code"] == "malformed_event"
        assert stack.pending_events() == []


def test_intake_other_mode_acknowledged_and_parked_in_dead_letter_queue():
    with aws_stack() as stack:
        # When an event of the other Stripe mode arrives (an endpoint registered in both modes)
        response = post(stripe_event(livemode=True))
        # Then Stripe gets its 200, nothing is applied, and the dead-letter queue (alarmed)
        # holds its id, type and what to do
        assert response["statusCode"] == 200
        assert json.loads(response["body"])["outcome"] == "ignored_livemode"
        assert ledger_status(stack, "evt_1") is None
        assert stack.pending_events() == []
        (parked,) = stack.drain(stack.dead_letter_queue_url)
        body = json.loads(parked["Body"])
        assert (body["reason"], body["event_id"], body["type"]) == ("wrong_mode", "evt_1", "customer.subscription.updated")
        assert "STRIPE_MODE" in body["what_to_do"]
        assert parked["MessageAttributes"]["correlation_id"]["StringValue"] == "req-1"


def test_intake_unknown_type_recorded_as_ignored_not_queued():
    with aws_stack() as stack:
        response = post(stripe_event(type_="charge.captured"))
        assert response["statusCode"] == 200
        assert ledger_status(stack, "evt_1") == "ignored"
        assert stack.pending_events() == []


def test_intake_redelivery_of_unprocessed_event_is_requeued_not_dropped():
    with aws_stack() as stack:
        # Given an event recorded but whose hand-over was lost (say the function died after the
        # ledger write, or the invoke ended in the dead-letter queue)
        post(stripe_event())
        stack.take_pending_events()
        # When Stripe redelivers it
        response = post(stripe_event())
        # Then it is handed over again rather than acknowledged as a duplicate
        assert json.loads(response["body"])["outcome"] == "requeued"
        assert [e["event_id"] for e in stack.pending_events()] == ["evt_1"]


def test_intake_redelivery_after_processing_is_a_duplicate_with_no_side_effect():
    with aws_stack() as stack:
        post(stripe_event())
        stack.take_pending_events()
        boto3.client("dynamodb", region_name="us-east-1").update_item(
            TableName=stack.ledger_table,
            Key={"pk": {"S": "STRIPE_EVENT#evt_1"}},
            UpdateExpression="SET #s = :p",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":p": {"S": "processed"}},
        )
        response = post(stripe_event())
        assert json.loads(response["body"])["outcome"] == "duplicate"
        assert stack.pending_events() == []


def test_intake_at_most_two_aws_calls_per_event():
    with aws_stack() as stack:
        # Given a warm function (secrets already cached)
        post(stripe_event("evt_warm"))
        calls: list[str] = []
        from membergate import bootstrap

        for service in ("dynamodb", "sqs", "s3", "lambda"):
            bootstrap.aws_client(service, "us-east-1").meta.events.register(
                "before-call.*.*", lambda event_name, **_: calls.append(event_name))

        def invokes() -> int:  # Lambda's async invoke is emulated in process: counted here
            return len(stack.pending_events())

        before = invokes()
        # When new, duplicate and redelivered events arrive
        post(stripe_event("evt_a"))
        first = len(calls) + invokes() - before
        post(stripe_event("evt_a"))
        # Then each costs at most two AWS calls (put + invoke; the duplicate's put hands back the
        # stored item, and a redelivery of an unprocessed event hands it over again)
        assert first == 2
        assert 1 <= len(calls) + invokes() - before - first <= 2


def test_intake_dies_after_ledger_write_stripe_retry_still_queues_it():
    with aws_stack() as stack:
        from membergate import bootstrap

        # Given the hand-over fails once, after the ledger write (the function "dies" there)
        dispatch = bootstrap.intake().dispatch
        real_hand_over = dispatch.hand_over
        calls = {"n": 0}

        def flaky(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("Lambda unreachable")
            return real_hand_over(*args, **kwargs)

        dispatch.hand_over = flaky
        # When Stripe delivers, gets no 2xx (Lambda error → 5xx), and retries
        with pytest.raises(ConnectionError):
            post(stripe_event("evt_crash"))
        assert ledger_status(stack, "evt_crash") == "received"
        retry = post(stripe_event("evt_crash"))
        # Then the retry hands the event over (it is not mistaken for a duplicate)
        assert json.loads(retry["body"])["outcome"] == "requeued"
        assert [e["event_id"] for e in stack.pending_events()] == ["evt_crash"]


def test_processor_crash_before_marking_is_applied_again_then_deduplicated():
    with aws_stack() as stack:
        from membergate import bootstrap

        # Given an event whose processing crashed after applying but before marking the ledger
        post(stripe_event("evt_twice"))
        body = stack.take_pending_events()[0]["body"]
        processor = bootstrap.processor().processor
        ledger = processor.stores.ledger
        real_mark = ledger.mark

        def crash(*args, **kwargs):
            raise TimeoutError("Lambda timed out")

        ledger.mark = crash
        with pytest.raises(TimeoutError):
            processor.apply(body, now=1_800_000_100)
        assert ledger_status(stack, "evt_twice") == "received"
        ledger.mark = real_mark
        # When Lambda retries the invoke, and later a third copy arrives
        second = processor.apply(body, now=1_800_000_200)
        third = processor.apply(body, now=1_800_000_300)
        # Then it is applied (convergent, so applying twice changes nothing) and marked once,
        # and the third copy is a duplicate with no side effect
        assert second.status in ("processed", "ignored")
        assert ledger_status(stack, "evt_twice") == second.status
        assert third.status == "duplicate"
