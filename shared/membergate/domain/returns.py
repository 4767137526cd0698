"""Access coming back after a removal the member was told about: when to say so, and what changed."""

from __future__ import annotations

from collections.abc import Sequence

# Sent by the access dispatcher once per removal (the message's period is the removal's id), never
# on a first access (that is the welcome) nor after an undo (services/removals.undo sends its own).
ACCESS_BACK = "access_back"

# What changed, by what the access had ended for (the removal's reason), when the plan removed is
# the one giving access again; another plan giving it is said as such ("other").
_CAUSES = {
    "dispute": "dispute_closed",
    "refunded": "paid_again",
    "grace_expired": "paid_again",
    "payment_failed": "paid_again",
    "unpaid": "paid_again",
    "paused": "resumed",
    "cancelled_at_period_end": "subscribed_again",
    "canceled": "subscribed_again",
    "incomplete_expired": "subscribed_again",
    "pass_expired": "bought_again",
}
CAUSES = frozenset({*_CAUSES.values(), "other", "again"})


def return_cause(removed_reason: str, removed_plan: str | None, granting: Sequence[str]) -> str:
    """The words' key (``msg.back.<cause>``) for what brought the access back.

    ``granting``: the plans giving access now. The removal's own reason speaks only when its plan
    is among them (a lost-then-won dispute on the same subscription); otherwise another plan gives
    the access and the member is told that one does."""
    if removed_plan and removed_plan in granting:
        return _CAUSES.get(removed_reason, "again")
    return "other" if granting else "again"
