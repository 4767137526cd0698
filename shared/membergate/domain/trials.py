"""One free trial per identity: the same chat account, email or card never gets a second trial.

Each thing that identifies a member is kept only as a keyed hash (no phone, email or card
fingerprint in any key or item), so the record says "this was used for a trial" and nothing more."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .model import Identity

def trial_key(kind: str, value: str) -> str:
    """The stored key for one identifier: ``kind`` is a platform, "email" or "card"."""
    normal = value.strip().lower() if kind == "email" else value.strip()
    digest = hashlib.sha256(f"membergate-trial|{kind}|{normal}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}:{digest[:40]}"


def trial_keys(identities: Iterable[Identity], email: str | None = None, card_fingerprint: str | None = None) -> list[str]:
    """Every key a trial by this member would use (or that a past trial may have used)."""
    keys = [trial_key(i.platform.value, i.external_id) for i in identities if i.external_id]
    if email and email.strip():
        keys.append(trial_key("email", email))
    if card_fingerprint:
        keys.append(trial_key("card", card_fingerprint))
    return list(dict.fromkeys(keys))


def trial_days_for(plan_trial_days: int | None, already_used: bool) -> int | None:
    """The trial this checkout offers: the plan's, unless one of the member's identifiers had one."""
    if not plan_trial_days or already_used:
        return None
    return plan_trial_days


@dataclass(frozen=True)
class TrialStart:
    """A subscription seen trialing, with the card that backs it when the payload carries it."""

    subscription_id: str
    card_fingerprint: str | None


def trial_start(subscription: Mapping[str, Any]) -> TrialStart | None:
    """From a subscription object (customer.subscription.created/updated): its trial, if trialing.

    The card fingerprint is read from an expanded ``default_payment_method`` (``card.fingerprint``)
    when the payload has one; Stripe sends the id alone unless expanded, and then there is none."""
    if subscription.get("status") != "trialing" or not isinstance(subscription.get("id"), str):
        return None
    method = subscription.get("default_payment_method")
    card = method.get("card") if isinstance(method, Mapping) else None
    fingerprint = card.get("fingerprint") if isinstance(card, Mapping) else None
    return TrialStart(subscription["id"], fingerprint if isinstance(fingerprint, str) and fingerprint else None)

