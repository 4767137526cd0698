"""What a member agreed to at Checkout: the terms box and the version of the waiver text shown."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Stripe's ``consent.terms_of_service`` once the member ticked the box (the only value it takes).
ACCEPTED = "accepted"
# Session metadata saying the member ticked the join page's waiver box (deployments without TermsUrl,
# where Stripe cannot show a terms box): set only on sessions the box was ticked for.
WAIVER_METADATA_KEY = "membergate_waiver"


@dataclass(frozen=True)
class CheckoutConsent:
    """Proof kept on Membergate's side of what the member agreed to when paying (EU withdrawal right:
    immediate access needs the member's express consent and acknowledgement of losing the right)."""

    session_id: str  # the Checkout Session that recorded it
    at: int  # the event's created second
    terms_of_service: str = ""  # "accepted", or "" (no terms box: the deployment has no TermsUrl)
    # "sha256:<16 hex>" of the text shown above the pay button (custom_text.submit.message), the
    # waiver's wording in the member's language; "" when none was shown.
    text_version: str = ""
    # "accepted": the member ticked the join page's waiver box before the session was made (no
    # TermsUrl, so Stripe showed no terms box); "" otherwise.
    waiver: str = ""

    @property
    def express(self) -> bool:
        """The member ticked a box: a recorded, express consent (the text alone is not one)."""
        return self.terms_of_service == ACCEPTED or self.waiver == ACCEPTED


def text_version(message: str) -> str:
    """A short, stable name for one wording: the same text always gives the same version."""
    return "sha256:" + hashlib.sha256(message.encode("utf-8")).hexdigest()[:16] if message else ""


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def checkout_consent(session: Mapping[str, Any], at: int) -> CheckoutConsent:
    """Read from a Checkout Session object (``consent``, ``custom_text``, our ``metadata``), as in Stripe's spec."""
    terms = _dict(session.get("consent")).get("terms_of_service")
    waiver = _dict(session.get("metadata")).get(WAIVER_METADATA_KEY)
    message = _dict(_dict(session.get("custom_text")).get("submit")).get("message")
    return CheckoutConsent(
        session_id=str(session.get("id") or ""),
        at=at,
        terms_of_service=ACCEPTED if terms == ACCEPTED else "",
        text_version=text_version(message) if isinstance(message, str) else "",
        waiver=ACCEPTED if waiver == ACCEPTED else "",
    )


def keep_consent(stored: CheckoutConsent | None, seen: CheckoutConsent | None) -> CheckoutConsent | None:
    """The consent first recorded stays (a redelivered or later event never replaces the proof);
    of two at once the accepted one, then the earlier, so any order gives the same result."""
    if stored is None or seen is None:
        return stored or seen
    return min(stored, seen, key=lambda c: (not c.express, c.at, c.session_id, c.text_version, c.waiver))
