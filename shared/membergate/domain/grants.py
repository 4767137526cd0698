"""One-time grants (passes, lifetime purchases): what a paid Checkout Session in payment mode gives.

Rules, written here and tested:
* A pass gives ``access_seconds`` from its payment. Passes of one plan bought while another is
  still running chain: each starts when the previous one ends, so paying again early never loses
  days. Windows are derived from the set of grants (sorted by payment time, then id), never
  stored, so any delivery order gives the same windows.
* A lifetime grant gives access with no end.
* A grant paid by a delayed method (SEPA) gives nothing until the payment succeeded; a failed
  delayed payment ends it. ``ended_reason`` (refunded, dispute) ends it for good; merging keeps it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .billing import GrantStatus
from .model import CheckoutGate, EntitlementState, PlanKind


@dataclass(frozen=True)
class OneTimeGrant:
    grant_id: str  # the Checkout Session id: one grant per paid session
    member_id: str
    plan_id: str
    kind: PlanKind  # PASS or LIFETIME
    paid_at: int  # the event's created second (Stripe time, not arrival time)
    access_seconds: int | None  # copied from the plan at purchase: later edits don't change it
    gate: CheckoutGate = CheckoutGate.PAID
    ended_reason: str = ""
    amount: int = 0  # minor units
    currency: str = ""


def merge_grant(stored: OneTimeGrant | None, seen: OneTimeGrant) -> OneTimeGrant:
    """Fold what one event says into the stored grant; commutative and idempotent."""
    if stored is None:
        return seen
    gate = seen.gate if seen.gate.rank > stored.gate.rank else stored.gate
    return replace(
        stored,
        gate=gate,
        paid_at=min(stored.paid_at, seen.paid_at),
        ended_reason=stored.ended_reason or seen.ended_reason,
        amount=stored.amount or seen.amount,
        currency=stored.currency or seen.currency,
    )


def windows(grants: Iterable[OneTimeGrant]) -> dict[str, tuple[int, int | None]]:
    """grant id -> (start, end) for every grant that counts; end None means forever."""
    out: dict[str, tuple[int, int | None]] = {}
    by_plan: dict[str, list[OneTimeGrant]] = defaultdict(list)
    for grant in grants:
        if grant.gate is CheckoutGate.PAID and not grant.ended_reason:
            by_plan[grant.plan_id].append(grant)
    for plan_grants in by_plan.values():
        running_end: int | None = None
        for grant in sorted(plan_grants, key=lambda g: (g.paid_at, g.grant_id)):
            if grant.kind is PlanKind.LIFETIME or grant.access_seconds is None:
                out[grant.grant_id] = (grant.paid_at, None)
                continue
            start = max(grant.paid_at, running_end or 0)
            end = start + grant.access_seconds
            out[grant.grant_id] = (start, end)
            running_end = end
    return out


def one_time_status(grant: OneTimeGrant, window: tuple[int, int | None] | None, now: int) -> GrantStatus:
    """Entitlement given by one grant at ``now`` (pure)."""
    if grant.ended_reason:
        return GrantStatus(EntitlementState.ENDED, None, grant.ended_reason)
    if grant.gate is CheckoutGate.FAILED:
        return GrantStatus(EntitlementState.ENDED, None, "payment_failed")
    if grant.gate is not CheckoutGate.PAID or window is None:
        return GrantStatus(EntitlementState.PENDING, None, "awaiting_payment")
    start, end = window
    if end is None:
        return GrantStatus(EntitlementState.ACTIVE, None, "")
    if now >= end:
        return GrantStatus(EntitlementState.ENDED, None, "pass_expired")
    if now < start:
        # A pass bought ahead while another runs: the running one gives access meanwhile.
        return GrantStatus(EntitlementState.PENDING, start, "pass_queued")
    return GrantStatus(EntitlementState.ACTIVE, end, "")


def statuses(grants: Iterable[OneTimeGrant], now: int) -> list[tuple[OneTimeGrant, GrantStatus]]:
    listed = list(grants)
    spans = windows(listed)
    return [(g, one_time_status(g, spans.get(g.grant_id), now)) for g in listed]


def upcoming_ends(grants: Iterable[OneTimeGrant], now: int) -> list[int]:
    """When the sweep must look again: the ends (and queued starts) of passes still ahead."""
    times: list[int] = []
    for start, end in windows(grants).values():
        times.extend(t for t in (start, end) if t is not None and t > now)
    return times
