"""Billing during a dispute: which change of a subscription's payment collection a dispute step asks for.

Rules, written here and tested:
* Under the revoke policy the member has no access while a dispute is open, so they are not billed
  either: the step that first sees the dispute open pauses collection (Stripe's pause_collection with
  behavior void: renewal invoices are voided, nothing is charged, the subscription stays).
* The step that sees an open dispute won resumes collection, only if Membergate paused it: a pause
  the creator made (collection already paused when the dispute opened) is never undone.
* A lost dispute changes nothing here: the lifecycle sweep cancels the subscription (lifecycle.py).
* The change is decided on the transition of the stored status (which only moves forward, see
  grants.merge_dispute), so a duplicate event, or one older than what is stored, asks for nothing;
  a dispute first seen closed (its opening delivered late) was never paused and is never resumed.
* Under keep, or for a subscription already ended or being cancelled, nothing is asked.
"""

from __future__ import annotations

from .grants import DISPUTE_KEEP

PAUSE = "pause"
RESUME = "resume"


def collection_change(before: str, after: str, policy: str, *, live: bool, paused: bool = False,
                      ours: bool = False) -> str | None:
    """PAUSE, RESUME or None for a subscription whose stored dispute moves from ``before`` to ``after``;
    ``paused``: its collection is paused now; ``ours``: Membergate paused it for this dispute."""
    if policy == DISPUTE_KEEP or not live:
        return None
    if before == "" and after == "open" and not paused:
        return PAUSE
    if before == "open" and after == "won" and ours:
        return RESUME
    return None


def collection_key(subscription_id: str, change: str) -> str:
    """One Stripe idempotency key per subscription and change: a retried step is applied once."""
    return f"membergate-dispute-{change}-{subscription_id}"
