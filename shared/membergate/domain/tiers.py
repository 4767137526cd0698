"""Tiers of one offer: plans that grant the same community, and what picking another tier means.

Rule: a member never holds two live subscriptions for one offer. Picking another tier while a
subscription of the offer is live SWITCHES that subscription's price (Stripe prorates) instead of
selling a second one; picking the tier already held is refused; picking any tier while a first
payment of the offer is still settling (SEPA, SCA) waits for it. A downgrade may wait for the
period end instead, when the plan being left says so (``waits_for_period_end``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

from .billing import PriceInfo, SubscriptionRecord, grant_status, monthly_amount
from .model import EntitlementState, Plan, PriceLine


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


# Rough lengths, only to rank intervals against each other (a year is nearer a month than a week is).
_INTERVAL_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def _period_days(interval: str | None, count: int) -> float:
    return _INTERVAL_DAYS.get(interval or "", 30) * max(count, 1)


def switch_price(current: PriceLine, offered: Sequence[PriceInfo]) -> PriceInfo | None:
    """The target tier's price a switch lands on when the switch names none (pure).

    Stripe cannot move a subscription to another currency, and a member who pays monthly expects
    to keep paying monthly: the same currency and interval first; in that currency, the nearest
    interval next (ties: the plan's order); no price in that currency: None, the caller refuses."""
    same_currency = [p for p in offered if p.currency.lower() == current.currency.lower() and p.type == "recurring"]
    if not same_currency:
        return None
    wanted = _period_days(current.interval, current.interval_count)
    ranked = sorted(
        enumerate(same_currency),
        key=lambda pair: (abs(math.log(_period_days(pair[1].interval, pair[1].interval_count) / wanted)), pair[0]),
    )
    return ranked[0][1]


# When a member leaving a plan for a cheaper tier moves (Plan.downgrade, the creator's choice).
DOWNGRADE_IMMEDIATE = "immediate"
DOWNGRADE_PERIOD_END = "period_end"
DOWNGRADE_TIMINGS = (DOWNGRADE_IMMEDIATE, DOWNGRADE_PERIOD_END)

class Direction(str, Enum):
    UP = "up"  # the target tier costs more per month
    DOWN = "down"  # it costs less per month
    LEVEL = "level"  # the same per month
    UNKNOWN = "unknown"  # an amount or interval unknown (pay what you want), or another currency


def _per_month(line: PriceLine) -> Fraction | None:
    """A price per month (intervals normalised as the KPIs do: domain/billing.py::monthly_amount)."""
    if line.unit_amount is None or line.interval not in ("day", "week", "month", "year"):
        return None
    numerator, denominator = monthly_amount(line)
    return Fraction(numerator, denominator)


def direction(current: PriceLine | None, target: PriceInfo | None) -> Direction:
    """Whether moving from the subscription's current price to ``target`` is up or down, per month (pure)."""
    if current is None or target is None or current.currency.lower() != target.currency.lower():
        return Direction.UNKNOWN
    now = _per_month(current)
    then = _per_month(PriceLine(target.id, target.currency, target.amount, 1, target.interval, target.interval_count))
    if now is None or then is None:
        return Direction.UNKNOWN
    return Direction.DOWN if then < now else Direction.UP if then > now else Direction.LEVEL


def waits_for_period_end(leaving: Plan, current: PriceLine | None, target: PriceInfo | None) -> bool:
    """Whether a switch from ``leaving`` (on ``current``) to ``target`` waits for the period end (pure).

    Only a downgrade waits, and only when the plan being left says so: an upgrade, a level move, or
    a move whose direction cannot be told (another currency, a pay-what-you-want price) is immediate
    and prorated. A downgrade that also changes the billing interval (yearly to monthly) is immediate
    too: Stripe would restart the billing cycle at the change, which is what an immediate switch does."""
    if leaving.downgrade != DOWNGRADE_PERIOD_END or direction(current, target) is not Direction.DOWN:
        return False
    assert current is not None and target is not None
    return (current.interval, current.interval_count) == (target.interval, target.interval_count)
