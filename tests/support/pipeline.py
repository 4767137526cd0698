"""The real Lambda handlers wired together under moto, with Stripe's and Discord's edges faked.

Stripe is the local sandbox reached through the real SDK (an in-process HTTP client); Discord is
a fake transport that checks every request against Discord's OpenAPI spec. The processor's asynchronous
invokes and the access queue are pumped by hand, the way Lambda would run them.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import boto3

from infra.local.lambda_events import failed_ids, sqs_event
from infra.local.stripe_sandbox import StripeSandbox, WsgiStripeHttpClient, signed_delivery
from membergate import bootstrap
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import WEBHOOK_SECRET, Stack, aws_stack, put_secret
from tests.support.discord_spec import API_BASE, CLIENT_ID, CLIENT_SECRET, FakeDiscordTransport
from tests.support.handlers import load_handler

STRIPE_BASE = "http://stripe.sandbox.test"
T0 = 1_800_000_000


class TestClock:
    def __init__(self, start: int = T0):
        self.value = start

    def now(self) -> int:
        return self.value


class Pipeline:
    def __init__(self, discord: FakeDiscordTransport, env: dict[str, str] | None = None):
        self.discord = discord
        self.clock = TestClock()
        self.delivered: list[dict[str, Any]] = []
        self.webhook_replies: list[dict[str, Any]] = []
        self._exit = ExitStack()
        self._env = env or {}

    def __enter__(self) -> Pipeline:
        self.stack: Stack = self._exit.enter_context(
            aws_stack(STRIPE_API_BASE=STRIPE_BASE, DISCORD_API_BASE=API_BASE, DISCORD_CLIENT_ID=CLIENT_ID, **self._env)
        )
        put_secret("/membergate/discord-bot-token", self.discord.bot_token)
        put_secret("/membergate/discord-client-secret", CLIENT_SECRET)
        self.sandbox = StripeSandbox(clock=self.clock.now, deliver=signed_delivery(WEBHOOK_SECRET, self.post_webhook),
                                     public_base_url=STRIPE_BASE)
        self._exit.enter_context(
            bootstrap.overridden(
                clock=self.clock,
                discord_transport=self.discord,
                stripe_http_client=WsgiStripeHttpClient(self.sandbox.wsgi_app, STRIPE_BASE),
            )
        )
        return self

    def __exit__(self, *exc: Any) -> None:
        self._exit.close()

    # --- HTTP routes --------------------------------------------------------------------------

    def call(self, function: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
        return load_handler(function).lambda_handler(http_event(method, path, **kw), LambdaContext())

    def post_webhook(self, payload: bytes, headers: dict[str, str]) -> int:
        """Deliver one signed Stripe event to the webhook route; its status code.

        Each delivery has its own API Gateway request id (``req-stripe-<n>``, n counting from 1):
        the correlation id its processing and access work are logged under."""
        self.delivered.append(json.loads(payload))
        reply = self.call("stripe_webhook", "POST", "/webhooks/stripe", body=payload,
                          headers={k.lower(): v for k, v in headers.items()},
                          request_id=f"req-stripe-{len(self.delivered)}")
        self.webhook_replies.append(reply)
        return reply["statusCode"]

    # --- queues -------------------------------------------------------------------------------

    def pump(self, rounds: int = 20) -> int:
        """Run the processor's pending invokes and the access consumer until nothing is left."""
        total = 0
        for _ in range(rounds):
            moved = self.stack.hand_overs.run_pending()
            moved += self._consume(self.stack.access_queue_url, "dispatch_access")
            total += moved
            if not moved:
                return total
        return total

    def _consume(self, url: str, function: str) -> int:
        sqs = boto3.client("sqs", region_name="us-east-1")
        # Message attributes too, as Lambda's event source mapping hands them over (the correlation id).
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  MessageAttributeNames=["All"], VisibilityTimeout=0)
        messages = got.get("Messages", [])
        if not messages:
            return 0
        result = load_handler(function).lambda_handler(sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:q"), LambdaContext())
        failed = failed_ids(result)
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages) - len(failed)

    def sweep(self) -> dict[str, Any]:
        report = load_handler("run_lifecycle").lambda_handler({"source": "aws.scheduler"}, LambdaContext())
        self.pump()
        return report

    def advance(self, seconds: int) -> None:
        self.clock.value += seconds

    def admin(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        from tests.support.aws import ADMIN_TOKEN

        headers = {"authorization": f"Bearer {ADMIN_TOKEN}", **kw.pop("headers", {})}
        reply = self.call("admin_api", method, path, headers=headers, **kw)
        return {"status": reply["statusCode"], "body": json.loads(reply["body"])}

