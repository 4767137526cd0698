"""The webhook's correlation id beyond the first hop: on the access-queue message and in the dispatcher's logs (moto)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest

from infra.local.lambda_events import sqs_event
from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, setup_catalog
from tests.support.apigw import LambdaContext
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.handlers import load_handler
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:mg-access"


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


@contextmanager
def captured_log_lines() -> Iterator[list[dict]]:
    """Every line the process's Powertools logger writes meanwhile, as the JSON CloudWatch would store."""
    from membergate.observability import logger

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    parsed: list[dict] = []
    try:
        yield parsed
    finally:
        logger.removeHandler(handler)
        parsed.extend(json.loads(line) for line in lines)


def _receive_access_messages(p: Pipeline) -> list[dict]:
    got = boto3.client("sqs", region_name="us-east-1").receive_message(
        QueueUrl=p.stack.access_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
        MessageAttributeNames=["All"], VisibilityTimeout=0)
    return got.get("Messages", [])


def test_correlation_id_of_the_paying_webhook_is_on_the_access_message_and_the_dispatchers_log_lines(pipeline):
    p = pipeline
    # Given a member who bound Discord and paid: the sandbox delivered the payment's webhooks,
    # each through the webhook route with its own request id, and the processor ran them
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={plan_id}&waiver=on", cookies=[cookie],
                   headers={"content-type": "application/x-www-form-urlencoded"})
    p.sandbox.pay(re.search(r"(cs_test_\w+)", reply["headers"]["Location"]).group(1), "card")
    webhook_ids = {f"req-stripe-{n}" for n in range(1, len(p.delivered) + 1)}
    with captured_log_lines() as processor_lines:
        p.stack.hand_overs.run_pending()
    # When the access queue's messages are read as Lambda's event source mapping reads them
    messages = _receive_access_messages(p)
    # Then each carries the id of the webhook request that caused it (the processor's own log line agrees)
    assert messages, "the payment queued no access work"
    carried = {m["MessageAttributes"]["correlation_id"]["StringValue"] for m in messages}
    assert carried <= webhook_ids, carried
    applied = {line["correlation_id"] for line in processor_lines if line["message"] == "stripe event applied"}
    assert carried <= applied
    # When the dispatcher handles them, in its own process (no id left over from the processor)
    from membergate.observability import logger

    logger.set_correlation_id(None)
    with captured_log_lines() as dispatcher_lines:
        result = load_handler("dispatch_access").lambda_handler(sqs_event(messages, QUEUE_ARN), LambdaContext())
    # Then the role is granted and its log line is under the webhook's correlation id
    assert result == {"batchItemFailures": []}
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    done = [line for line in dispatcher_lines if line["message"] == "access work done"]
    assert done and {line.get("correlation_id") for line in done} <= carried, dispatcher_lines
    assert any(line["state"] == "granted" for line in done), done
