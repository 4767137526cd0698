"""AWS adapters other than DynamoDB: the access queue and the token ciphers (data key or KMS key)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from ..domain.errors import PermanentError, RetryableError
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


TOKEN_CONTEXT = b"membergate-oauth"
_SEALED_VERSION = 1
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def parse_token_keys(value: str) -> list[tuple[str, bytes]]:
    """``"k2:<base64 32 bytes>,k1:<...>"`` → [(key id, key)], the first one sealing, all opening."""
    keys: list[tuple[str, bytes]] = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        key_id, _, encoded = entry.partition(":")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            key = b""
        if not _KEY_ID.fullmatch(key_id.strip()) or len(key) != 32:
            raise PermanentError(
                "the token key parameter must hold 'id:<base64 of 32 random bytes>' entries, newest first "
                "(docs/deploy.md, 'Token sealing key'); fix the parameter's value",
                "token_keys_invalid",
            )
        keys.append((key_id.strip(), key))
    if not keys:
        raise PermanentError(
            "the token key parameter is empty: put 'k1:<base64 of 32 random bytes>' in it (docs/deploy.md)",
            "token_keys_invalid",
        )
    return keys


class DataKeyTokenCipher:
    """AES-256-GCM with a data key kept in an SSM SecureString: no $1/month KMS key.

    Sealed blob: version (1 byte) | key id length (1) | key id | nonce (12) | ciphertext + tag.
    The key id travels in the blob so tokens sealed before a rotation still open while their key
    stays listed in the parameter; the key id and the purpose are authenticated with the data.
    """

    def __init__(self, keys_value: Callable[[], str]):
        self._keys_value = keys_value
        self._parsed: tuple[str, list[tuple[str, bytes]]] | None = None

    def _keys(self) -> list[tuple[str, bytes]]:
        value = self._keys_value()  # cached by the caller; re-read after a rotation
        if self._parsed is None or self._parsed[0] != value:
            self._parsed = (value, parse_token_keys(value))
        return self._parsed[1]

    def seal(self, plaintext: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key_id, key = self._keys()[0]
        kid = key_id.encode()
        nonce = os.urandom(_NONCE_BYTES)  # random 96-bit nonces: safe far beyond any member count
        header = bytes([_SEALED_VERSION, len(kid)]) + kid
        return header + nonce + AESGCM(key).encrypt(nonce, plaintext, TOKEN_CONTEXT + header)

    def open(self, sealed: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        unreadable = PermanentError(
            "the member's stored Discord authorization cannot be opened (altered, or sealed with a key no "
            "longer listed in the token key parameter): they must reconnect Discord from the join page",
            "discord_authorization_unreadable",
        )
        if len(sealed) < 2 or sealed[0] != _SEALED_VERSION:
            raise unreadable
        end = 2 + sealed[1]
        header, nonce, body = sealed[:end], sealed[end : end + _NONCE_BYTES], sealed[end + _NONCE_BYTES :]
        key = dict(self._keys()).get(header[2:].decode("ascii", "replace"))
        if key is None or len(nonce) != _NONCE_BYTES:
            raise unreadable
        try:
            return AESGCM(key).decrypt(nonce, body, TOKEN_CONTEXT + header)
        except InvalidTag:
            raise unreadable from None


class KmsTokenCipher:
    """The option TokenSealing=kms: a dedicated KMS key ($1/month) seals every member's OAuth tokens."""

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


class AwsDeploymentProbe:
    """The deployment's own parts for GET /admin/health: SSM parameters, Scheduler schedules, SQS queues.

    ``clients`` builds clients with short timeouts and few retries (bootstrap.py): the health
    check answers the creator's terminal within API Gateway's 30 s, so one slow call must not eat it."""

    def __init__(self, clients: Callable[[str], Any]):
        self._clients = clients

    def secret_state(self, name: str) -> str:
        from .secrets import read_secret

        try:
            value = read_secret(self._clients, name)
        except Exception as exc:  # botocore's errors are built at runtime: matched by code below
            if _error_code(exc) == "ParameterNotFound":
                return "missing"
            raise RetryableError(f"SSM answered {_error_code(exc) or type(exc).__name__}") from None
        # Only whether it is blank leaves this method, never the value.
        return "present" if value.strip() else "empty"

    def schedule_state(self, name: str) -> str:
        try:
            found = self._clients("scheduler").get_schedule(Name=name)
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return "missing"
            raise RetryableError(f"EventBridge Scheduler answered {_error_code(exc) or type(exc).__name__}") from None
        return str(found.get("State") or "ENABLED")

    def queue_depth(self, url: str) -> int:
        try:
            found = self._clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        except Exception as exc:
            raise RetryableError(f"SQS answered {_error_code(exc) or type(exc).__name__}") from None
        return int(found.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
