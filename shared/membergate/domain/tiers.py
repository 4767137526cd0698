"""Tiers of one offer: plans that grant the same community, and what picking another tier means.

Rule: a member never holds two live subscriptions for one offer. Picking another tier while a
subscription of the offer is live SWITCHES that subscription's price (Stripe prorates) instead of
selling a second one; picking the tier already held is refused; picking any tier while a first
payment of the offer is still settling (SEPA, SCA) waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .billing import SubscriptionRecord, grant_status
from .model import EntitlementState, Plan


class MoveKind(str, Enum):
    NEW = "new"  # no live subscription in this offer: a Checkout Session sells one
    SAME = "same"  # already live on this very plan: nothing to buy
    SWITCH = "switch"  # live on another tier: update that subscription's price
    SETTLING = "settling"  # a payment for this offer is still settling: wait


@dataclass(frozen=True)
class TierMove:
    kind: MoveKind
    subscription_id: str | None = None
    from_plan_id: str | None = None


def offer_of(plan: Plan) -> frozenset[str]:
    """The communities a plan grants: plans sharing one are tiers of the same offer."""
    return frozenset(grant.community_id for grant in plan.grants)


def are_tiers(a: Plan, b: Plan) -> bool:
    return bool(offer_of(a) & offer_of(b))


def choose_move(target: Plan, records: list[SubscriptionRecord], plans: dict[str, Plan], now: int) -> TierMove:
    """What buying ``target`` means for a member holding ``records`` (pure)."""
    same: TierMove | None = None
    switch: TierMove | None = None
    settling: TierMove | None = None
    for record in sorted(records, key=lambda r: r.subscription_id):
        plan = plans.get(record.plan_id)
        if plan is None or not (plan.id == target.id or are_tiers(plan, target)):
            continue
        status = grant_status(record, plan, now)
        if status.state in (EntitlementState.ACTIVE, EntitlementState.GRACE):
            if plan.id == target.id:
                same = same or TierMove(MoveKind.SAME, record.subscription_id, plan.id)
            else:
                switch = switch or TierMove(MoveKind.SWITCH, record.subscription_id, plan.id)
        elif status.state is EntitlementState.PENDING and status.reason in ("awaiting_payment", "incomplete"):
            settling = settling or TierMove(MoveKind.SETTLING, record.subscription_id, plan.id)
    return same or switch or settling or TierMove(MoveKind.NEW)
