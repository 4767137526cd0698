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
                "messageAttributes": _attributes(m.get("MessageAttributes") or {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def _attributes(received: dict[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's MessageAttributes in the shape Lambda's SQS records carry them."""
    return {
        name: {"stringValue": a.get("StringValue"), "binaryValue": a.get("BinaryValue"),
               "stringListValues": [], "binaryListValues": [], "dataType": a.get("DataType", "String")}
        for name, a in received.items()
    }


def failed_ids(result: dict[str, Any] | None) -> set[str]:
    """The messages a handler reported as failed (ReportBatchItemFailures)."""
    return {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
