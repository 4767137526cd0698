"""The event shapes Lambda hands to Membergate's handlers, built for local runs and tests."""

from __future__ import annotations

from typing import Any

REGION = "us-east-1"


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """An SQS event source mapping's batch, from ReceiveMessage results (AttributeNames=All)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def failed_ids(result: dict[str, Any] | None) -> set[str]:
    """The messages a handler reported as failed (ReportBatchItemFailures)."""
    return {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
