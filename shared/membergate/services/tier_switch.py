"""switch_tier: the creator moves a member's live subscription to another tier of its offer (admin API, CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.errors import ConflictError, InvalidRequestError, NoSubscriptionError, NotFoundError, SoldOutError
from ..domain.tiers import MoveKind, choose_move
from ..ports import BillingGateway, Stores
from .checkout import TierSwitch, keep_current_tier, price_for_switch, switch_subscription
from .controls import audit
from .membership import current_view


@dataclass(frozen=True)
class TierSwitched:
    switch: TierSwitch
    price_id: str
    audit_id: str


def switch_tier(
    stores: Stores, billing: BillingGateway, *, member_id: str, plan_id: str, price_id: str | None, reason: str,
    actor: str, now: int,
) -> TierSwitched:
    """The same switch a member makes from their join or manage page (services/checkout.py), by the creator.

    Only a live subscription of the offer can be switched: the admin API cannot open a Checkout for
    the member, so anything else is a 409 saying what to do instead. Stripe prorates; the access
    follows from the subscription.updated event like any switch. Audited with who, when and why."""
    member = stores.members.get(member_id)
    if member is None:
        raise NotFoundError(f"member {member_id} does not exist; list members with GET /admin/members")
    plan = stores.catalog.get_plan(plan_id)
    if plan is None:
        raise NotFoundError(f"plan {plan_id} does not exist; list plans with GET /admin/plans")
    if plan.archived_at is not None:
        raise ConflictError(f"{plan.name} is archived (no longer sold): switch the member to a tier still sold")
    if plan.kind.one_time:
        raise ConflictError(
            f"{plan.name} is bought once, not switched to; to give it, use POST /admin/members/{member_id}/grants")
    chosen = price_id or plan.stripe_price_ids[0]
    if chosen not in plan.stripe_price_ids:
        raise InvalidRequestError(f"price {chosen} is not one of {plan.name}'s prices {list(plan.stripe_price_ids)}",
                                  field="price_id")
    view = current_view(stores, member.id, now)
    move = choose_move(plan, view.records, view.plans, now)
    held = next((r for r in view.records if r.subscription_id == move.subscription_id), None)
    if move.kind is MoveKind.SAME and held is not None and held.pending_change is not None:
        # The tier the member is on while a downgrade waits: the downgrade is undone, they stay.
        pending = held.pending_change
        kept = keep_current_tier(stores, billing, held, now)
        entry = audit(stores, actor=actor, action="subscription.switch", target=kept.subscription_id, now=now,
                      member_id=member.id, reason=reason,
                      detail={"from_plan_id": plan.id, "plan_id": plan.id, "price_id": chosen,
                              "released_plan_id": pending.plan_id, "effective": "now"})
        return TierSwitched(kept, chosen, entry.id)
    if move.kind is MoveKind.SAME:
        raise ConflictError(f"the member is already on {plan.name}: nothing to switch")
    if move.kind is MoveKind.SETTLING:
        raise ConflictError(
            "the member's payment for this offer is still being confirmed by their bank; switch once "
            f"GET /admin/members?member_id={member_id} (or membergate member {member_id}) shows it active")
    if move.kind is not MoveKind.SWITCH:
        raise NoSubscriptionError(
            f"the member has no live subscription of {plan.name}'s offer to switch. Send them the join link "
            f"/join/{plan.id} to subscribe, or give access with POST /admin/members/{member_id}/grants")
    # No price named: the one in the subscription's currency nearest its interval, not the plan's first.
    chosen = price_for_switch(billing, plan, move, view.records, price_id)
    try:
        switch = switch_subscription(stores, billing, member.id, plan, chosen, move, view.records, now)
    except SoldOutError:
        # The member's page words it for the member; here the creator reads it and can act.
        raise SoldOutError(
            f"{plan.name} is sold out: all {plan.seats} places are taken. Raise its seats with "
            f"PATCH /admin/plans/{plan.id} {{\"seats\": …}}, or pick another tier"
        ) from None
    entry = audit(stores, actor=actor, action="subscription.switch", target=switch.subscription_id, now=now,
                  member_id=member.id, reason=reason,
                  detail={"from_plan_id": switch.from_plan_id, "plan_id": plan.id, "price_id": chosen}
                  | ({"effective": "period_end", "at": str(switch.at)} if switch.effective == "period_end" else {}))
    return TierSwitched(switch, chosen, entry.id)
