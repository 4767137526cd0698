"""A moto-backed AWS account with Membergate's tables, queues, key and SSM secrets, plus its env."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from membergate import bootstrap

WEBHOOK_SECRET = "whsec_test_current"
ADMIN_TOKEN = "admin-test-token"
REGION = "us-east-1"
# A fixed data key for the token cipher (base64 of 32 bytes), as the creator's parameter holds it.
TOKEN_KEYS = "k1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="


def put_secret(name: str, value: str) -> None:
    """Create or replace an SSM SecureString parameter, as the creator does before deploying."""
    boto3.client("ssm", region_name=REGION).put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


@dataclass(frozen=True)
class Stack:
    membership_table: str
    ledger_table: str
    dead_letter_queue_url: str
    event_bodies_bucket: str
    access_queue_url: str
    key_id: str
    env: dict[str, str]
    # Lambda's asynchronous invoke of the processor, held until a test runs it (run_pending()).
    hand_overs: Any = field(default=None, compare=False)

    def pending_events(self) -> list[dict[str, Any]]:
        """The envelopes handed to the processor and not run yet, in order."""
        return [json.loads(p) for p in self.hand_overs.pending()]

    def take_pending_events(self) -> list[dict[str, Any]]:
        """Like pending_events, and forget them (as if every invoke were lost)."""
        events = self.pending_events()
        self.hand_overs.discard_pending()
        return events

    def sqs(self):
        return boto3.client("sqs", region_name=REGION)

    def drain(self, queue_url: str) -> list[dict]:
        """Receive (and delete) everything visible on a queue."""
        client = self.sqs()
        out: list[dict] = []
        while True:
            got = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                         MessageAttributeNames=["All"])
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                client.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            out.extend(messages)


def create_resources(prefix: str = "mg") -> Stack:
    from tests.support.tables import create_tables

    membership, ledger = create_tables(prefix)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName=f"{prefix}-dead-letters")["QueueUrl"]
    access = sqs.create_queue(QueueName=f"{prefix}-access")["QueueUrl"]
    bucket = f"{prefix}-event-bodies"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    key_id = boto3.client("kms", region_name=REGION).create_key(Description="membergate tokens")["KeyMetadata"]["KeyId"]
    secrets = {
        "/membergate/stripe-webhook-secrets": WEBHOOK_SECRET,
        "/membergate/stripe-api-key": "sk_test_local",
        "/membergate/discord-bot-token": "bot-token-test",
        "/membergate/discord-client-secret": "client-secret-test",
        "/membergate/admin-token": ADMIN_TOKEN,
        "/membergate/token-keys": TOKEN_KEYS,
        "/membergate/whatsapp-access-token": "EAAfaketoken123",
        "/membergate/whatsapp-app-secret": "0123456789abcdef0123456789abcdef",
        "/membergate/whatsapp-verify-token": "verify-me-0123",
    }
    ssm = boto3.client("ssm", region_name=REGION)  # one client for all nine: each new one costs ~10 ms
    for name, value in secrets.items():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    env = {
        "POWERTOOLS_SERVICE_NAME": "membergate",
        "POWERTOOLS_METRICS_NAMESPACE": "Membergate",
        "AWS_REGION": REGION,
        "MEMBERSHIP_TABLE": membership,
        "LEDGER_TABLE": ledger,
        "PROCESSOR_FUNCTION_NAME": f"{prefix}-process-billing-event",
        "EVENT_BODIES_BUCKET": bucket,
        "DEAD_LETTER_QUEUE_URL": dlq,
        "HEALTH_DEAD_LETTER_QUEUE": dlq,  # GET /admin/health reads its depth
        "ACCESS_QUEUE_URL": access,
        "STRIPE_MODE": "test",
        "STRIPE_WEBHOOK_SECRETS_NAME": "/membergate/stripe-webhook-secrets",
        "STRIPE_API_KEY_NAME": "/membergate/stripe-api-key",
        "STRIPE_API_BASE": "http://stripe.invalid",
        "DISCORD_API_BASE": "https://discord.com/api/v10",
        "DISCORD_OAUTH_BASE": "https://discord.com/oauth2",
        "DISCORD_BOT_TOKEN_NAME": "/membergate/discord-bot-token",
        "DISCORD_CLIENT_ID": "123456789012345678",
        "DISCORD_CLIENT_SECRET_NAME": "/membergate/discord-client-secret",
        "ADMIN_TOKEN_NAME": "/membergate/admin-token",
        "TOKEN_SEALING": "parameter",
        "TOKEN_KEYS_NAME": "/membergate/token-keys",
        "TOKEN_KEY_ID": key_id,  # used only with TOKEN_SEALING=kms
        "PUBLIC_BASE_URL": "https://members.example.com",
        # Registration reads the guild only in tests that give Discord a fake transport (Pipeline).
        "COMMUNITY_PREFLIGHT": "off",
        # The WhatsApp webhook's settings (no phone number id: no WhatsApp connector unless a test sets one).
        "WHATSAPP_ACCESS_TOKEN_NAME": "/membergate/whatsapp-access-token",
        "WHATSAPP_APP_SECRET_NAME": "/membergate/whatsapp-app-secret",
        "WHATSAPP_VERIFY_TOKEN_NAME": "/membergate/whatsapp-verify-token",
        # Plan creation reads prices at Stripe only in tests that run the Stripe sandbox (PRICE_CHECK=on).
        "PRICE_CHECK": "off",
    }
    return Stack(membership, ledger, dlq, bucket, access, key_id, env)


@contextmanager
def aws_stack(**env_overrides: str) -> Iterator[Stack]:
    """The whole test runs inside mock_aws; bootstrap caches are reset on the way in and out."""
    from infra.local.async_invoke import LocalAsyncInvoke
    from tests.support.apigw import LambdaContext
    from tests.support.handlers import load_handler

    with mock_aws():
        stack = create_resources()
        dlq_url = stack.dead_letter_queue_url
        hand_overs = LocalAsyncInvoke(
            lambda event, context: load_handler("process_billing_event").lambda_handler(event, context),
            function_arn="arn:aws:lambda:us-east-1:123456789012:function:mg-process-billing-event",
            context_factory=LambdaContext,
            on_failure=lambda record: boto3.client("sqs", region_name=REGION).send_message(
                QueueUrl=dlq_url, MessageBody=record),
            max_concurrency=0,
        )
        stack = Stack(**{**stack.__dict__, "hand_overs": hand_overs})
        saved = {k: os.environ.get(k) for k in {**stack.env, **env_overrides}}
        os.environ.update({**stack.env, **env_overrides})
        bootstrap._reset_caches()
        previous_invoke = bootstrap._overrides.billing_invoke
        bootstrap._overrides.billing_invoke = hand_overs
        try:
            yield stack
        finally:
            bootstrap._overrides.billing_invoke = previous_invoke
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            bootstrap._reset_caches()
