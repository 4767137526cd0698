"""Signed webhook delivery: each event posted as Stripe posts it, signed with the wall clock, retried."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from membergate.domain.signature import signature_header

logger = logging.getLogger(__name__)


class SignedDelivery:
    """Posts each event as Stripe does: one serialisation, signed with the wall clock, retried."""

    def __init__(
        self,
        secret: str,
        post: Callable[[bytes, dict], int],
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.05,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._secret = secret
        self._post = post
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self._wall_clock = wall_clock
        self._sleep = sleep
        self.failures: list[dict[str, Any]] = []

    def __call__(self, event: dict) -> None:
        payload = json.dumps(event, indent=2).encode()
        last: str = ""
        for attempt in range(1, self._attempts + 1):
            # Signature tolerance is checked against the receiver's wall clock, never business
            # time; each attempt is signed afresh, as Stripe re-signs every retry.
            header = signature_header(self._secret, int(self._wall_clock()), payload)
            try:
                status = self._post(payload, {"Stripe-Signature": header, "Content-Type": "application/json"})
            except Exception as exc:  # connection refused and the like: Stripe retries those too
                last = repr(exc)
            else:
                if 200 <= status < 300:
                    return
                last = f"HTTP {status}"
            if attempt < self._attempts and self._backoff > 0:
                self._sleep(self._backoff * 2 ** (attempt - 1))
        # Stripe retries for days and then gives up; locally the failure is recorded and logged.
        failure = {
            "event_id": event.get("id"),
            "type": event.get("type"),
            "attempts": self._attempts,
            "last_error": last,
        }
        self.failures.append(failure)
        logger.warning("webhook delivery failed: %s", failure)


def signed_delivery(
    secret: str,
    post: Callable[[bytes, dict], int],
    *,
    attempts: int = 3,
    backoff_seconds: float = 0.05,
) -> SignedDelivery:
    """A ``deliver`` for StripeSandbox that signs like Stripe and POSTs through ``post``."""
    return SignedDelivery(secret, post, attempts=attempts, backoff_seconds=backoff_seconds)
