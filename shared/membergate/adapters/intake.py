"""The webhook intake's adapters and the hand-over to the processor: plain boto3 only (no PynamoDB).

Attribute names match LedgerItem in dynamodb/models.py (a contract test reads these writes
back through the PynamoDB repository).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..domain.errors import MalformedEventError, RetryableError
from ..domain.model import LedgerEntry
from .secrets import CachedSecrets, parse_secret_list

LEDGER_RETENTION_SECONDS = 400 * 86_400


# Every event writes the by_day index twice (received, then processed). One partition per day
# would take every write of the day: at 1,000 events/s that is 2,000 WCU/s on one partition,
# twice what a partition accepts. Spread by event id over this many, readers query them all.
LEDGER_DAY_SHARDS = 10


def ledger_day(epoch: int) -> str:
    """The UTC day an event was received."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


def ledger_day_shard(day: str, shard: int) -> str:
    return f"{day}#{shard}"


def ledger_day_partition(epoch: int, event_id: str) -> str:
    """The by_day partition key older versions wrote: the day, and a shard chosen by the event id."""
    return ledger_day_shard(ledger_day(epoch), zlib.crc32(event_id.encode()) % LEDGER_DAY_SHARDS)


def ledger_span_shard(shard: int) -> str:
    return f"span#{shard}"


def ledger_span_partition(event_id: str) -> str:
    """The by_day index's partition key now: a shard chosen by the event id, the same every day.

    received_at (the index's sort key) then orders a shard over any span, so "the newest N
    entries" is one Query a shard (LEDGER_DAY_SHARDS in all) instead of one a day and shard (341
    for a quiet month). Writes spread over the shards as before. Entries written by older
    versions keep their ``<day>#<shard>`` key; readers still walk those days (repositories.py)."""
    return ledger_span_shard(zlib.crc32(event_id.encode()) % LEDGER_DAY_SHARDS)


def _ledger_item(entry: LedgerEntry, status: str, detail: str, retention: int = LEDGER_RETENTION_SECONDS) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"STRIPE_EVENT#{entry.event_id}"},
        "event_id": {"S": entry.event_id},
        "type": {"S": entry.type},
        "status": {"S": status},
        "created": {"N": str(entry.created)},
        "received_at": {"N": str(entry.received_at)},
        "ledger_day": {"S": ledger_span_partition(entry.event_id)},
        "expires_at_ttl": {"N": str(entry.received_at + retention)},
    }
    if entry.customer_id:
        item["customer_id"] = {"S": entry.customer_id}
    if detail:
        item["detail"] = {"S": detail}
    return item


class DynamoEventLedger:
    def __init__(self, client: Any, table_name: str, retention_seconds: int = LEDGER_RETENTION_SECONDS):
        self._client = client
        self._table = table_name
        self._retention = retention_seconds  # DynamoDB's TTL deletes the entry after (LEDGER_RETENTION_DAYS)

    def record_received(self, entry: LedgerEntry) -> str | None:
        # One call either way: the conditional put hands back the stored item when it fails.
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_ledger_item(entry, "received", "", self._retention),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            old = exc.response.get("Item") or {}
            return old.get("status", {}).get("S", "received")

    def record_ignored(self, entry: LedgerEntry) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=_ledger_item(entry, "ignored", f"event type {entry.type} is not handled", self._retention),
        )


# Lambda's asynchronous invoke accepts 256 KiB; the envelope's own fields and JSON escaping of
# the body need the rest. Anything larger is stored in the bucket and travels by reference.
INLINE_PAYLOAD_LIMIT = 240 * 1024
ENVELOPE_SOURCE = "membergate.stripe_webhook"


def body_key(event_id: str) -> str:
    """One object per event id: a redelivery overwrites the same bytes instead of adding any."""
    return f"events/{event_id}.json"


def encode_envelope(event_id: str, body: str, correlation_id: str | None, *, body_ref: dict | None = None) -> bytes:
    envelope: dict[str, Any] = {"source": ENVELOPE_SOURCE, "event_id": event_id, "correlation_id": correlation_id}
    if body_ref is not None:
        envelope["body_ref"] = body_ref
    else:
        envelope["body"] = body
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8")


class LambdaEventDispatch:
    """The billing processor's hand-over: one asynchronous Lambda invoke (InvocationType=Event).

    Lambda keeps the invoke, retries it with backoff (EventInvokeConfig) and sends what still
    fails to the dead-letter queue, so nothing is polled while idle. ``invoke`` is swapped for an
    in-process one by the local stack and tests; the S3 and SQS calls are the real ones.
    ``s3`` and ``sqs`` build their clients on first use: most events need neither (a body over the
    inline limit, an event in the wrong mode), and building an S3 client loads s3transfer, about
    a quarter of a cold start.
    """

    def __init__(
        self,
        *,
        invoke: Callable[[bytes], None],
        s3: Callable[[], Any],
        bucket: str,
        sqs: Callable[[], Any],
        dead_letter_queue_url: str,
        inline_limit: int = INLINE_PAYLOAD_LIMIT,
    ):
        self._invoke = invoke
        self._s3 = s3
        self._bucket = bucket
        self._sqs = sqs
        self._dlq = dead_letter_queue_url
        self._inline_limit = inline_limit

    def hand_over(self, event_id: str, body: str, correlation_id: str | None) -> None:
        payload = encode_envelope(event_id, body, correlation_id)
        if len(payload) > self._inline_limit:
            key = body_key(event_id)
            self._s3().put_object(Bucket=self._bucket, Key=key, Body=body.encode("utf-8"),
                                ContentType="application/json")
            payload = encode_envelope(event_id, body, correlation_id, body_ref={"bucket": self._bucket, "key": key})
        self._invoke(payload)

    def report_wrong_mode(self, event_id: str, event_type: str, correlation_id: str | None) -> None:
        self._sqs().send_message(
            QueueUrl=self._dlq,
            MessageBody=json.dumps({"reason": "wrong_mode", "event_id": event_id, "type": event_type,
                                    "correlation_id": correlation_id,
                                    "what_to_do": "this endpoint acts on one Stripe mode (STRIPE_MODE); point the "
                                                  "other mode's webhook at its own deployment or remove it"}),
            MessageAttributes=_correlation_attribute(correlation_id),
        )


def _correlation_attribute(correlation_id: str | None) -> dict[str, Any]:
    if not correlation_id:
        return {}
    return {"correlation_id": {"DataType": "String", "StringValue": correlation_id}}


def lambda_async_invoker(client: Any, function_name: str) -> Callable[[bytes], None]:
    def invoke(payload: bytes) -> None:
        response = client.invoke(FunctionName=function_name, InvocationType="Event", Payload=payload)
        if response.get("StatusCode") != 202:  # anything else means Lambda did not keep it
            raise RetryableError(f"Lambda did not accept the event for {function_name} ({response.get('StatusCode')})")

    return invoke


class EventBodies:
    """The processor's side of the hand-over: the event's raw body, inline or from the bucket."""

    def __init__(self, s3: Any):
        self._s3 = s3

    def read(self, envelope: dict[str, Any]) -> str:
        if "body" in envelope:
            return str(envelope["body"])
        ref = envelope.get("body_ref")
        if not isinstance(ref, dict):
            raise MalformedEventError("the hand-over carries neither a body nor a reference to one")
        try:
            got = self._s3.get_object(Bucket=ref["bucket"], Key=ref["key"])
        except self._s3.exceptions.NoSuchKey:
            # Not "failed" and never "processed": the ledger keeps "received", Lambda retries and
            # then parks the invoke in the dead-letter queue, and a Stripe redelivery hands it over again.
            raise RetryableError(
                f"the body of event {envelope.get('event_id')} is not in the bucket; resend the event from "
                "the Stripe Dashboard (Developers > Events) once the cause is fixed"
            ) from None
        return got["Body"].read().decode("utf-8")


class WebhookSecrets:
    """The webhook signing secrets, by name; "whsec_new,whsec_old" while rotating."""

    def __init__(self, secrets: CachedSecrets, name: str):
        self._secrets = secrets
        self._name = name

    def get(self) -> list[str]:
        return parse_secret_list(self._secrets.get(self._name))
