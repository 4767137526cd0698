"""Stripe webhook signature verification (HMAC-SHA256 over the raw body), rotation-aware.

Deliberately free of the Stripe SDK: importing it costs as much as boto3 and the intake must
answer fast. ``Webhook.construct_event`` also takes a single secret, and rotation needs several.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from .errors import SignatureError

DEFAULT_TOLERANCE_SECONDS = 300


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    # Stripe sends ASCII only; anything else is forged, and would make the comparison raise.
    if not header.isascii():
        raise SignatureError("Stripe-Signature contains non-ASCII characters")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("Stripe-Signature has a non-numeric timestamp") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("Stripe-Signature has no timestamp")
    if not signatures:
        raise SignatureError("Stripe-Signature has no v1 signature")
    return timestamp, signatures


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Iterable[str],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless some v1 in ``header`` matches some secret, recently enough."""
    timestamp, candidates = parse_signature_header(header)
    matched = False
    for secret in secrets:
        if not secret:
            continue
        expected = compute_signature(secret, timestamp, payload)
        # Bytes, not str: compare_digest raises on non-ASCII str, and a forged header must not 500.
        if any(hmac.compare_digest(expected.encode(), c.encode("ascii", "replace")) for c in candidates):
            matched = True
            break
    if not matched:
        raise SignatureError("no signature matches the configured webhook secret(s)")
    # Only old timestamps are rejected, as Stripe's libraries do.
    if tolerance > 0 and timestamp < now - tolerance:
        raise SignatureError("the signature timestamp is outside the tolerance window")


def signature_header(secret: str, timestamp: int, payload: bytes) -> str:
    """What Stripe would send; used by the local sandbox and tests."""
    return f"t={timestamp},v1={compute_signature(secret, timestamp, payload)}"
