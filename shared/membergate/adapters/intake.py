"""The webhook intake's adapters: plain boto3 only (no PynamoDB, no Powertools utilities).

Attribute names match LedgerItem in dynamodb/models.py (a contract test reads these writes
back through the PynamoDB repository).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..domain.model import LedgerEntry
from .secrets import CachedSecrets, parse_secret_list

LEDGER_RETENTION_SECONDS = 400 * 86_400


def ledger_day(epoch: int) -> str:
    """The by_day index's partition: the UTC day an event was received."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


def _ledger_item(entry: LedgerEntry, status: str, detail: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"STRIPE_EVENT#{entry.event_id}"},
        "event_id": {"S": entry.event_id},
        "type": {"S": entry.type},
        "status": {"S": status},
        "created": {"N": str(entry.created)},
        "received_at": {"N": str(entry.received_at)},
        "ledger_day": {"S": ledger_day(entry.received_at)},
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


class WebhookSecrets:
    """The webhook signing secrets, by name; "whsec_new,whsec_old" while rotating."""

    def __init__(self, secrets: CachedSecrets, name: str):
        self._secrets = secrets
        self._name = name

    def get(self) -> list[str]:
        return parse_secret_list(self._secrets.get(self._name))
