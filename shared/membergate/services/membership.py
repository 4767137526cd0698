"""Deriving a member's entitlements from their grants, and acting on what changed."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.billing import SubscriptionRecord, derive_entitlements
from ..domain.lifecycle import decide
from ..domain.model import Entitlement, Plan
from ..ports import AccessWork, AccessWorkQueue, MemberState, Stores


@dataclass(frozen=True)
class MemberView:
    records: list[SubscriptionRecord]
    plans: dict[str, Plan]
    entitlements: list[Entitlement]


def current_view(
    stores: Stores, member_id: str, now: int, records: list[SubscriptionRecord] | None = None
) -> MemberView:
    if records is None:
        records = stores.subscriptions.for_member(member_id)
    plans: dict[str, Plan] = {}
    for plan_id in {r.plan_id for r in records if r.plan_id}:
        plan = stores.catalog.get_plan(plan_id)
        if plan is not None:
            plans[plan_id] = plan
    community_roles = {}
    for plan in plans.values():
        for grant in plan.grants:
            if grant.community_id not in community_roles:
                community = stores.catalog.get_community(grant.community_id)
                community_roles[grant.community_id] = community.role_id if community else None
    entitlements = derive_entitlements(records, plans, community_roles, now)
    return MemberView(records, plans, entitlements)


def refresh_member(
    stores: Stores,
    queue: AccessWorkQueue,
    member_id: str,
    now: int,
    *,
    sweep_now: bool,
    state: MemberState | None = None,
) -> MemberView:
    """Recompute the projection; queue convergence for every community whose entitlement moved.

    ``sweep_now`` asks the lifecycle sweep to look at the member at once when reminders or
    cancellations may be due (the sweep's message claims keep those exactly-once).
    ``state``, when the caller has just read it (and put the subscriptions it saved since in
    it), saves reading the projection and the subscriptions again.
    """
    # The projection is read before the subscriptions it derives from, and written only if it
    # has not changed since: two events of one member applied at once cannot leave it stale
    # (the loser gets ConcurrentUpdateError and applies its event again).
    if state is None:
        stored, revision = stores.entitlements.read(member_id)
        view = current_view(stores, member_id, now)
    else:
        stored, revision = state.entitlements, state.revision
        view = current_view(stores, member_id, now, records=state.subscriptions)
    before = {_identity(e): e for e in stored}
    after = {_identity(e): e for e in view.entitlements}
    changed = {
        key[1]
        for key in before.keys() | after.keys()
        if _access_facts(before.get(key)) != _access_facts(after.get(key))
    }
    decision = decide(view.records, view.plans, now)
    due = now if sweep_now and (decision.reminders or decision.cancellations) else decision.next_due_at
    stores.entitlements.save(member_id, view.entitlements, due, expected_revision=revision)
    if changed:
        queue.send([AccessWork("converge", member_id, community_id) for community_id in sorted(changed)])
    return view


def _identity(e: Entitlement) -> tuple[str, str, str | None]:
    return (e.plan_id, e.community_id, e.role_id)


def _access_facts(e: Entitlement | None) -> tuple:
    if e is None:
        return (None,)
    return (e.state, e.until, e.reason)
