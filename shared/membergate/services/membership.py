"""Deriving a member's entitlements from their grants, and acting on what changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..domain.billing import SubscriptionRecord, derive_entitlements
from ..domain.grants import OneTimeGrant, statuses, upcoming_ends
from ..domain.lifecycle import decide
from ..domain.model import Community, Entitlement, EntitlementState, Plan, WorkKind
from ..ports import AccessWork, AccessWorkQueue, MemberState, Stores
from .migration_deadline import catch_up


@dataclass(frozen=True)
class MemberView:
    records: list[SubscriptionRecord]
    plans: dict[str, Plan]
    entitlements: list[Entitlement]
    grants: list[OneTimeGrant]


def current_view(
    stores: Stores,
    member_id: str,
    now: int,
    *,
    records: list[SubscriptionRecord] | None = None,
    grants: list[OneTimeGrant] | None = None,
    plans: Mapping[str, Plan] | None = None,
    communities: Mapping[str, Community] | None = None,
) -> MemberView:
    """The member's records, one-time grants, plans and derived entitlements.

    ``records`` and ``grants``, when given, were just read by the caller (the billing processor's
    one read of the member); ``plans`` and ``communities`` were read once for a whole batch."""
    if records is None:
        records = stores.subscriptions.for_member(member_id)
    if grants is None:
        grants = stores.grants.for_member(member_id)
    found: dict[str, Plan] = {}
    for plan_id in {r.plan_id for r in records if r.plan_id} | {g.plan_id for g in grants}:
        plan = plans.get(plan_id) if plans is not None else stores.catalog.get_plan(plan_id)
        if plan is not None:
            found[plan_id] = plan
    community_roles = {}
    for plan in found.values():
        for grant in plan.grants:
            if grant.community_id not in community_roles:
                if communities is not None:
                    community = communities.get(grant.community_id)
                else:
                    community = stores.catalog.get_community(grant.community_id)
                community_roles[grant.community_id] = community.role_id if community else None
    counted = statuses(grants, now)
    one_time = [(grant.plan_id, status) for grant, status in counted if not grant.community_id]
    scoped = [(grant.plan_id, grant.community_id, status) for grant, status in counted if grant.community_id]
    entitlements = derive_entitlements(records, found, community_roles, now, one_time, scoped)
    return MemberView(records, found, entitlements, grants)


def refresh_member(
    stores: Stores,
    queue: AccessWorkQueue,
    member_id: str,
    now: int,
    *,
    sweep_now: bool,
    state: MemberState | None = None,
    time_zone: str = "UTC",
) -> MemberView:
    """Recompute the projection; queue convergence for every community whose entitlement moved.

    ``sweep_now`` asks the lifecycle sweep to look at the member at once when reminders or
    cancellations may be due (the sweep's message claims keep those exactly-once).
    ``time_zone``: the creator's, as the sweep has it (the legal notice's calendar months); others
    schedule in UTC, at most about a day off, and the sweep's own refresh puts the time right.
    ``state``, when the caller has just read it (and put what it saved since in it), saves
    reading the projection, the subscriptions and the grants again.
    """
    # The projection is read before the subscriptions it derives from, and written only if it
    # has not changed since: two events of one member applied at once cannot leave it stale
    # (the loser gets ConcurrentUpdateError and applies its event again).
    if state is None:
        stored, revision = stores.entitlements.read(member_id)
        view = current_view(stores, member_id, now)
    else:
        stored, revision = state.entitlements, state.revision
        view = current_view(stores, member_id, now, records=state.subscriptions, grants=state.grants)
    changed = _changed(stored, view)
    if changed:
        # A migration grant that lapsed while its extension was still being applied follows the
        # migration's new deadline instead of removing access (services/migration_deadline.py).
        caught = catch_up(stores, view.grants, now)
        if caught is not None:
            view = current_view(stores, member_id, now, records=view.records, grants=caught)
            changed = _changed(stored, view)
    decision = decide(view.records, view.plans, now)
    if time_zone != "UTC":  # the sweep's own refresh: the legal notice's months in the creator's zone
        decision = decide(view.records, view.plans, now, time_zone=time_zone)
    due = now if sweep_now and (decision.reminders or decision.cancellations) else decision.next_due_at
    # A pass's end (or a queued pass's start) is due too: the sweep ends access on time.
    ahead = [t for t in (due, *upcoming_ends(view.grants, now)) if t is not None]
    due = min(ahead) if ahead else None
    stores.entitlements.save(member_id, view.entitlements, due, expected_revision=revision)
    if changed:
        queue.send([AccessWork(WorkKind.CONVERGE, member_id, community_id) for community_id in sorted(changed)])
    return view


def _changed(stored: list[Entitlement], view: MemberView) -> set[str]:
    """Communities whose access facts moved between the stored projection and ``view``."""
    before = {_identity(e): e for e in stored}
    after = {_identity(e): e for e in view.entitlements}
    return {
        key[1]
        for key in before.keys() | after.keys()
        if _access_facts(before.get(key)) != _access_facts(after.get(key))
        and not _pending_from_nothing(before.get(key), after.get(key))
    }


def _identity(e: Entitlement) -> tuple[str, str, str | None]:
    return (e.plan_id, e.community_id, e.role_id)


def _pending_from_nothing(before: Entitlement | None, after: Entitlement | None) -> bool:
    """A new entitlement that gives nothing yet (a subscription still incomplete, a pass queued):
    nothing for the platform to do, and its next change (paid, expired) queues the work. Every
    new member's checkout starts so; converging on it cost a platform read per payment that
    delayed the payments behind it."""
    return before is None and after is not None and after.state is EntitlementState.PENDING


def _access_facts(e: Entitlement | None) -> tuple[object, ...]:
    # Not ``until``: a renewal moves a subscription's period end (its until) every period, and
    # access depends on the state alone; converging on it would wake the dispatcher each renewal.
    if e is None:
        return (None,)
    return (e.state, e.reason)
