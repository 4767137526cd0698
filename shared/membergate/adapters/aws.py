"""AWS adapters other than DynamoDB: the access queue and the token cipher."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..domain.errors import RetryableError
from ..ports import AccessWork, encode_work


class SqsAccessWorkQueue:
    def __init__(self, client: Any, queue_url: str, correlation_id: Callable[[], str | None] = lambda: None):
        self._client = client
        self._url = queue_url
        # The id of the request (or webhook) that caused the work, as a message attribute: the
        # dispatcher logs under it, so one payment's logs are found from its webhook.
        self._correlation_id = correlation_id

    def send(self, work: Iterable[AccessWork], delay_seconds: int = 0) -> None:
        items = list(work)
        correlation_id = self._correlation_id()
        attributes = (
            {"correlation_id": {"DataType": "String", "StringValue": correlation_id}} if correlation_id else {}
        )
        for start in range(0, len(items), 10):  # SQS batches hold at most 10 messages
            batch = items[start : start + 10]
            response = self._client.send_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "MessageBody": encode_work(w), "DelaySeconds": min(max(delay_seconds, 0), 900),
                     "MessageAttributes": attributes}
                    for i, w in enumerate(batch)
                ],
            )
            if response.get("Failed"):
                raise RetryableError(f"SQS refused {len(response['Failed'])} access work message(s)")


class KmsTokenCipher:
    """One KMS key seals every member's OAuth tokens (a secret per member would cost $0.40/month)."""

    def __init__(self, client: Any, key_id: str):
        self._client = client
        self._key_id = key_id

    def seal(self, plaintext: bytes) -> bytes:
        return self._client.encrypt(
            KeyId=self._key_id, Plaintext=plaintext, EncryptionContext={"purpose": "membergate-oauth"}
        )["CiphertextBlob"]

    def open(self, sealed: bytes) -> bytes:
        return self._client.decrypt(
            CiphertextBlob=sealed, KeyId=self._key_id, EncryptionContext={"purpose": "membergate-oauth"}
        )["Plaintext"]
