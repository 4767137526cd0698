"""The webhook intake's adapters: plain boto3 only (no PynamoDB, no Powertools utilities).

Attribute names match LedgerItem in dynamodb/models.py (a contract test reads these writes
back through the PynamoDB repository).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from ..domain.model import LedgerEntry

LEDGER_RETENTION_SECONDS = 400 * 86_400


def _ledger_item(entry: LedgerEntry, status: str, detail: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"STRIPE_EVENT#{entry.event_id}"},
        "event_id": {"S": entry.event_id},
        "type": {"S": entry.type},
        "status": {"S": status},
        "created": {"N": str(entry.created)},
        "received_at": {"N": str(entry.received_at)},
        "ledger_day": {"S": datetime.fromtimestamp(entry.received_at, tz=timezone.utc).strftime("%Y-%m-%d")},
        "expires_at_ttl": {"N": str(entry.received_at + LEDGER_RETENTION_SECONDS)},
    }
    if entry.customer_id:
        item["customer_id"] = {"S": entry.customer_id}
    if detail:
        item["detail"] = {"S": detail}
    return item


class DynamoEventLedger:
    def __init__(self, client: Any, table_name: str):
        self._client = client
        self._table = table_name

    def record_received(self, entry: LedgerEntry) -> str | None:
        # One call either way: the conditional put hands back the stored item when it fails.
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_ledger_item(entry, "received", ""),
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
            Item=_ledger_item(entry, "ignored", f"event type {entry.type} is not handled"),
        )


class SqsBillingEventQueue:
    def __init__(self, client: Any, queue_url: str):
        self._client = client
        self._url = queue_url

    def enqueue(self, event_id: str, group_id: str, body: str) -> None:
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=body,
            MessageGroupId=group_id[:128],
            MessageDeduplicationId=event_id[:128],
        )


class SecretsManagerWebhookSecrets:
    """Webhook signing secrets by name; value "whsec_new,whsec_old" (or a JSON list) during rotation.

    Cached for five minutes, so a rotation reaches running instances without a redeploy while
    costing one Secrets Manager call per instance per five minutes, not one per event.
    """

    CACHE_SECONDS = 300

    def __init__(self, client_factory: Any, name: str, clock: Any = time.monotonic):
        self._factory = client_factory
        self._name = name
        self._clock = clock
        self._cached: list[str] | None = None
        self._fetched_at = 0.0

    def get(self) -> list[str]:
        if self._cached is None or self._clock() - self._fetched_at >= self.CACHE_SECONDS:
            self._cached = parse_secret_list(read_secret(self._factory, self._name))
            self._fetched_at = self._clock()
        return self._cached


def parse_secret_list(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("[") or value.startswith("{"):
        parsed = json.loads(value)
        if isinstance(parsed, dict):
            parsed = [parsed.get("current"), parsed.get("previous")]
        return [str(v).strip() for v in parsed if v]
    return [v.strip() for v in value.split(",") if v.strip()]


def read_secret(client_factory: Any, name: str) -> str:
    """``ssm:/path`` reads an SSM SecureString; anything else is a Secrets Manager secret name."""
    if name.startswith("ssm:"):
        ssm = client_factory("ssm")
        return ssm.get_parameter(Name=name[4:], WithDecryption=True)["Parameter"]["Value"]
    sm = client_factory("secretsmanager")
    return sm.get_secret_value(SecretId=name)["SecretString"]
