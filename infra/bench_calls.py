"""AWS calls per Stripe webhook event through the real intake handler, under moto.

The processor's asynchronous invoke is emulated in process (moto runs no functions): each
hand-over is counted as the one lambda.Invoke call it is on AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from infra.bench_aws import REGION, CallLog, invoke, use_fake_credentials
from membergate import bootstrap
from tests.support import stripe_events as se
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import WEBHOOK_SECRET, aws_stack
from tests.support.handlers import load_handler

BUDGET_CALLS_PER_EVENT = 2
T0 = 1_800_000_000


@dataclass(frozen=True)
class EventCalls:
    case: str
    outcome: str
    status: int
    calls: int
    operations: list[str]
    allowed: int  # the most this case may cost

    @property
    def ok(self) -> bool:
        return self.calls <= self.allowed


@dataclass(frozen=True)
class IntakeCallFigures:
    cold_start_secret_calls: int
    cold_start_event_calls: int
    cases: list[EventCalls] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(case.ok for case in self.cases) and self.cold_start_event_calls <= BUDGET_CALLS_PER_EVENT


class _Intake:
    """Posts really-signed events to the intake handler and records the calls each one makes."""

    def __init__(self, log: CallLog, secret: str, hand_overs: Any):
        self.handler = load_handler("stripe_webhook")
        self.log = log
        self.secret = secret
        self.hand_overs = hand_overs

    def post(self, event: dict[str, Any], *, secret: str | None = None, label: str | None = None) -> tuple[dict, list[str]]:
        body, signature = se.signed(event, secret or self.secret, int(time.time()))
        request = http_event("POST", "/webhooks/stripe", body=body, headers={"Stripe-Signature": signature})
        if label is None:
            return invoke("stripe_webhook", self.handler, request, LambdaContext()).result, []
        before = len(self.hand_overs.pending())
        with self.log.recording(label) as calls:
            result = invoke("stripe_webhook", self.handler, request, LambdaContext()).result
        invokes = len(self.hand_overs.pending()) - before
        return result, [c.name for c in calls] + ["lambda.Invoke"] * invokes


def _outcome(response: dict) -> str:
    body = json.loads(response["body"])
    return body.get("outcome") or body.get("error", {}).get("code", "?")


def _case(intake: _Intake, name: str, event: dict, allowed: int, *, secret: str | None = None,
          before: Callable[[], None] | None = None) -> EventCalls:
    if before:
        before()
    response, calls = intake.post(event, secret=secret, label=name)
    return EventCalls(name, _outcome(response), response["statusCode"], len(calls), calls, allowed)


def measure_intake_calls() -> IntakeCallFigures:
    use_fake_credentials()
    def sub_event(**kw: Any) -> dict:
        return se.subscription_event(created=T0, customer="cus_bench", sub_id="sub_bench", **kw)

    with aws_stack() as stack:
        log = CallLog()
        # The intake's own cached clients: hooks on them count exactly what the handler calls.
        log.watch(*(bootstrap.aws_client(s, REGION) for s in ("dynamodb", "sqs", "ssm", "s3", "lambda")))
        intake = _Intake(log, WEBHOOK_SECRET, stack.hand_overs)

        _, cold = intake.post(sub_event(event_id="evt_cold"), label="cold start")
        secret_calls = sum(1 for c in cold if c.startswith("ssm."))

        def mark_processed(event_id: str) -> Callable[[], None]:
            def run() -> None:
                intake.post(sub_event(event_id=event_id))
                boto3.client("dynamodb", region_name=REGION).update_item(
                    TableName=stack.ledger_table,
                    Key={"pk": {"S": f"STRIPE_EVENT#{event_id}"}},
                    UpdateExpression="SET #s = :p",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":p": {"S": "processed"}},
                )
            return run

        unknown = se.invoice_event("invoice.created", created=T0, sub_id="sub_bench", customer="cus_bench",
                                   status="draft")
        other_mode = sub_event(event_id="evt_live")
        other_mode["livemode"] = True
        large = sub_event(event_id="evt_large")
        # Padded past the 240 KiB an asynchronous invoke carries inline (a many-line event).
        large["data"]["object"]["items"]["data"] *= 400
        cases = [
            _case(intake, "warm new event", sub_event(event_id="evt_new"), BUDGET_CALLS_PER_EVENT),
            _case(intake, "duplicate of a processed event", sub_event(event_id="evt_done"), BUDGET_CALLS_PER_EVENT,
                  before=mark_processed("evt_done")),
            _case(intake, "redelivery of an unprocessed event", sub_event(event_id="evt_again"),
                  BUDGET_CALLS_PER_EVENT, before=lambda: intake.post(sub_event(event_id="evt_again"))),
            _case(intake, "unhandled event type (invoice.created)", unknown, BUDGET_CALLS_PER_EVENT),
            _case(intake, "large event (body by reference)", large, BUDGET_CALLS_PER_EVENT + 1),
            _case(intake, "bad signature", sub_event(event_id="evt_forged"), 0, secret="whsec_not_ours"),
            _case(intake, "other mode (livemode event, test endpoint)", other_mode, 1),
        ]
        return IntakeCallFigures(secret_calls, len(cold) - secret_calls, cases)


EXPECTED_OUTCOMES = {
    "warm new event": "queued",
    "duplicate of a processed event": "duplicate",
    "redelivery of an unprocessed event": "requeued",
    "unhandled event type (invoice.created)": "ignored_type",
    "large event (body by reference)": "queued",
    "bad signature": "invalid_signature",
    "other mode (livemode event, test endpoint)": "ignored_livemode",
}


def outcomes_as_expected(figures: IntakeCallFigures) -> list[str]:
    """Cases whose outcome is not the one the case is meant to exercise (the count would mislead)."""
    return [c.case for c in figures.cases if EXPECTED_OUTCOMES.get(c.case) not in (None, c.outcome)]
