"""One-time grants (passes, lifetime purchases): what a paid Checkout Session in payment mode gives.

Rules, written here and tested:
* A pass gives ``access_seconds`` from its payment. Passes of one plan bought while another is
  still running chain: each starts when the previous one ends, so paying again early never loses
  days. Windows are derived from the set of grants (sorted by payment time, then id), never
  stored, so any delivery order gives the same windows.
* A lifetime grant gives access with no end.
* A grant the creator gives (``source`` manual or access_code, domain/controls.py) runs from its
  start for its own length (or forever) and never chains with bought passes.
* A grant paid by a delayed method (SEPA) gives nothing until the payment succeeded; a failed
  delayed payment ends it. ``ended_reason`` (refunded, customer_deleted) ends it for good; merging
  keeps the smallest reason so that any delivery order stores the same one.
* A dispute moves up the lattice ``"" < open < won = lost`` (a closed dispute never reopens). Under
  the ``revoke`` policy (the default) an open or lost dispute ends the grant with reason
  ``dispute``; a won dispute restores it. Under ``keep`` a dispute changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .billing import GrantStatus
from .consent import CheckoutConsent, keep_consent
from .model import CheckoutGate, EntitlementState, PlanKind


DISPUTE_REVOKE = "revoke"
DISPUTE_KEEP = "keep"
DISPUTE_POLICIES = (DISPUTE_REVOKE, DISPUTE_KEEP)
_DISPUTE_RANK = {"": 0, "open": 1, "won": 2, "lost": 2}


def dispute_policy_for(plan_policy: str, default: str) -> str:
    """The policy a new dispute on a payment for a plan follows: the plan's own, else the deployment's."""
    return plan_policy if plan_policy in DISPUTE_POLICIES else default


def merge_dispute(stored: str, seen: str) -> str:
    """Dispute statuses only move forward; two closed outcomes (never both in practice) settle on lost."""
    rank_stored, rank_seen = _DISPUTE_RANK.get(stored, 0), _DISPUTE_RANK.get(seen, 0)
    if rank_seen != rank_stored:
        return seen if rank_seen > rank_stored else stored
    return "lost" if "lost" in (stored, seen) else stored  # the cautious outcome wins a tie


SOURCE_CHECKOUT = "checkout"
SOURCE_MANUAL = "manual"
SOURCE_ACCESS_CODE = "access_code"

_REASON_RANK = {"refunded": 0, "customer_deleted": 1}


def merge_reason(a: str, b: str) -> str:
    """The reason that ends a grant for good: the money coming back names it before anything else."""
    return min((r for r in (a, b) if r), key=lambda r: (_REASON_RANK.get(r, 9), r), default="")


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
    amount: int = 0  # minor units, what the member paid (tax included)
    currency: str = ""
    payment_intent: str = ""  # how later charge events (refunds, disputes) find this grant
    dispute: str = ""  # "" | open | won | lost
    dispute_policy: str = DISPUTE_REVOKE  # the policy in force when the dispute was first seen
    source: str = SOURCE_CHECKOUT  # checkout | manual | access_code
    reason: str = ""  # the creator's words for a manual grant ("moderator", "compensation")
    consent: CheckoutConsent | None = None  # what the member agreed to on the Checkout page (bought grants)
    # Only this place of the plan ("": every place): an undo gives back the one place removed.
    community_id: str = ""
    # When ``ended_reason`` was set, where known (the creator's revoke): which ending took access away.
    ended_at: int = 0
    # The tax inside ``amount`` (Checkout's total_details.amount_tax, Stripe Tax): revenue is amount − tax.
    tax: int = 0

    @property
    def given(self) -> bool:
        """Given by the creator (manual or access code) rather than paid through Stripe."""
        return self.source != SOURCE_CHECKOUT

    @property
    def end_reason(self) -> str:
        """Why this grant gives nothing any more, whatever the payment gate says; "" if it still may."""
        if self.ended_reason:
            return self.ended_reason
        if self.dispute in ("open", "lost") and self.dispute_policy != DISPUTE_KEEP:
            return "dispute"
        return ""


def merge_grant(stored: OneTimeGrant | None, seen: OneTimeGrant) -> OneTimeGrant:
    """Fold what one event says into the stored grant; commutative and idempotent."""
    if stored is None:
        return seen
    gate = seen.gate if seen.gate.rank > stored.gate.rank else stored.gate
    return replace(
        stored,
        gate=gate,
        paid_at=min(stored.paid_at, seen.paid_at),
        ended_reason=merge_reason(stored.ended_reason, seen.ended_reason),
        ended_at=stored.ended_at or seen.ended_at,
        amount=stored.amount or seen.amount,
        tax=stored.tax or seen.tax,
        currency=stored.currency or seen.currency,
        payment_intent=stored.payment_intent or seen.payment_intent,
        dispute=merge_dispute(stored.dispute, seen.dispute),
        dispute_policy=_merge_policy(stored, seen),
        consent=keep_consent(stored.consent, seen.consent),
    )


def _merge_policy(stored: OneTimeGrant, seen: OneTimeGrant) -> str:
    # The policy that counts is the one recorded with the dispute; a grant without a dispute
    # carries the default, which must not override a recorded one.
    if stored.dispute and not seen.dispute:
        return stored.dispute_policy
    if seen.dispute and not stored.dispute:
        return seen.dispute_policy
    return min(stored.dispute_policy, seen.dispute_policy)


def windows(grants: Iterable[OneTimeGrant]) -> dict[str, tuple[int, int | None]]:
    """grant id -> (start, end) for every grant that counts; end None means forever."""
    out: dict[str, tuple[int, int | None]] = {}
    by_plan: dict[str, list[OneTimeGrant]] = defaultdict(list)
    for grant in grants:
        if grant.gate is not CheckoutGate.PAID or grant.end_reason:
            continue
        if grant.given:
            # Its own window: a manual grant never pushes a bought pass later, nor waits for one.
            length = grant.access_seconds
            out[grant.grant_id] = (grant.paid_at, None if length is None else grant.paid_at + length)
            continue
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
    # An ending by an event (revoked, refunded, dispute): its time where it was kept (a revoke),
    # else the grant's start, the latest time known to be before it.
    if grant.end_reason:
        ended_at = grant.ended_at if grant.ended_reason and grant.ended_at else grant.paid_at
        return GrantStatus(EntitlementState.ENDED, None, grant.end_reason, ended_at)
    if grant.gate is CheckoutGate.FAILED:
        return GrantStatus(EntitlementState.ENDED, None, "payment_failed", grant.paid_at)
    if grant.gate is not CheckoutGate.PAID or window is None:
        return GrantStatus(EntitlementState.PENDING, None, "awaiting_payment")
    start, end = window
    if end is None:
        return GrantStatus(EntitlementState.ACTIVE, None, "")
    if now >= end:
        return GrantStatus(EntitlementState.ENDED, None, "grant_expired" if grant.given else "pass_expired", end)
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
