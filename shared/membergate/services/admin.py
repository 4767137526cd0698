"""The creator's use cases: set up communities and plans, look members up, read the numbers."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

from ..domain.billing import grant_status, monthly_amount
from ..domain.errors import InvalidRequestError, NotFoundError
from ..domain.model import (
    AccessRecord,
    Community,
    Entitlement,
    EntitlementState,
    LedgerEntry,
    Member,
    MessageRecord,
    OnGraceEnd,
    OnRevoke,
    Plan,
    PlanGrant,
    PlanKind,
    Platform,
    WorkKind,
)
from ..ports import AccessWork, AccessWorkQueue, Stores
from .membership import current_view


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def create_whatsapp_community(
    stores: Stores, *, name: str, mode: str, invite_link: str | None, group_id: str | None, locale: str, now: int
) -> Community:
    """A WhatsApp group; presence is the access (no roles), so access ends by removal."""
    if mode == "manual" and not invite_link:
        raise InvalidRequestError(
            "manual mode needs the group's invite_link (WhatsApp: Group info → Invite via link → copy)", field="invite_link"
        )
    if mode != "manual" and not group_id:
        raise InvalidRequestError(
            f"{mode} mode needs the group_id ({'the Groups API group id' if mode == 'official' else 'the id your gateway uses'})",
            field="group_id",
        )
    # The invite code names a manual group: the same link twice is the same group.
    external_id = group_id or (invite_link or "").rsplit("/", 1)[-1]
    community = Community(
        id=_new_id("com"),
        platform=Platform.WHATSAPP,
        name=name,
        external_id=external_id,
        role_id=None,
        on_revoke=OnRevoke.KICK,
        locale=locale,
        created_at=now,
        mode=mode,
        invite_link=invite_link,
    )
    stores.catalog.add_community(community)
    return community


def create_community(
    stores: Stores,
    *,
    platform: str,
    name: str,
    guild_id: str | None = None,
    external_id: str | None = None,
    role_id: str | None,
    on_revoke: str,
    locale: str,
    now: int,
) -> Community:
    if on_revoke == OnRevoke.REMOVE_ROLE.value and not role_id:
        raise InvalidRequestError(
            "on_revoke 'remove_role' needs a role_id; give the community a role or choose 'kick'",
            field="role_id",
        )
    community = Community(
        id=_new_id("com"),
        platform=Platform(platform),
        name=name,
        external_id=external_id or guild_id or "",
        role_id=role_id,
        on_revoke=OnRevoke(on_revoke),
        locale=locale,
        created_at=now,
    )
    stores.catalog.add_community(community)
    return community


def create_plan(
    stores: Stores,
    *,
    name: str,
    stripe_price_ids: list[str],
    grants: list[tuple[str, str | None]],
    grace_days: int,
    on_grace_end: str,
    now: int,
    kind: str = PlanKind.SUBSCRIPTION.value,
    access_days: int | None = None,
) -> Plan:
    plan_kind = PlanKind(kind)
    if plan_kind is PlanKind.PASS and not access_days:
        raise InvalidRequestError("a pass needs access_days: how many days one payment gives", field="access_days")
    if plan_kind is not PlanKind.PASS and access_days is not None:
        raise InvalidRequestError(
            f"access_days is for passes; a {plan_kind.value} plan's access follows its "
            + ("subscription" if plan_kind is PlanKind.SUBSCRIPTION else "one payment, with no end"),
            field="access_days",
        )
    plan_grants = []
    for index, (community_id, role_id) in enumerate(grants):
        community = stores.catalog.get_community(community_id)
        if community is None:
            raise InvalidRequestError(
                f"community {community_id} does not exist; create it first with POST /admin/communities",
                field=f"grants[{index}].community_id",
            )
        if not (role_id or community.role_id) and community.on_revoke is OnRevoke.REMOVE_ROLE:
            raise InvalidRequestError(
                f"community {community_id} has no role and removes roles on revoke: give this grant a role_id",
                field=f"grants[{index}].role_id",
            )
        plan_grants.append(PlanGrant(community_id, role_id))
    plan = Plan(
        id=_new_id("pln"),
        name=name,
        stripe_price_ids=tuple(dict.fromkeys(stripe_price_ids)),
        grants=tuple(plan_grants),
        grace_days=grace_days,
        on_grace_end=OnGraceEnd(on_grace_end),
        created_at=now,
        kind=plan_kind,
        access_days=access_days,
    )
    stores.catalog.add_plan(plan)
    return plan


@dataclass(frozen=True)
class MemberDetails:
    member: Member
    entitlements: list[Entitlement]
    access: list[AccessRecord]
    messages: list[MessageRecord] = field(default_factory=list)


def find_members(
    stores: Stores,
    *,
    now: int,
    stripe_customer_id: str | None = None,
    member_id: str | None = None,
    discord_user_id: str | None = None,
    telegram_user_id: str | None = None,
    whatsapp_phone: str | None = None,
) -> list[MemberDetails]:
    member: Member | None = None
    by_identity = {
        Platform.DISCORD: discord_user_id,
        Platform.TELEGRAM: telegram_user_id,
        Platform.WHATSAPP: whatsapp_phone,
    }
    if member_id:
        member = stores.members.get(member_id)
    elif stripe_customer_id:
        member = stores.members.find_by_customer(stripe_customer_id)
    elif any(by_identity.values()):
        platform, external_id = next((p, v) for p, v in by_identity.items() if v)
        member = stores.members.find_by_identity(platform, external_id)
    else:
        raise InvalidRequestError(
            "give one of stripe_customer_id, member_id, discord_user_id, telegram_user_id or whatsapp_phone",
            field="stripe_customer_id",
        )
    if member is None:
        return []
    view = current_view(stores, member.id, now)
    messages = sorted(stores.messages.for_member(member.id), key=lambda m: (m.at, m.kind, m.period))
    return [MemberDetails(member, view.entitlements, stores.access.for_member(member.id), messages)]


@dataclass(frozen=True)
class Kpis:
    paying_members: int
    trialing_members: int
    members_in_grace: int
    members_with_access: int
    mrr: dict[str, int]  # currency -> minor units per month


def compute_kpis(stores: Stores, now: int) -> Kpis:
    """Read every subscription through its index (never a Scan); amounts stay integers."""
    plans = {p.id: p for p in stores.catalog.list_plans()}
    paying: set[str] = set()
    trialing: set[str] = set()
    grace: set[str] = set()
    access: set[str] = set()
    mrr: dict[str, Fraction] = defaultdict(Fraction)
    for record in stores.subscriptions.all_records():
        plan = plans.get(record.plan_id)
        if plan is None or record.latest is None:
            continue
        status = grant_status(record, plan, now)
        if not status.state.gives_access:
            continue
        access.add(record.member_id)
        if status.state is EntitlementState.GRACE:
            grace.add(record.member_id)
        if record.latest.status == "trialing":
            trialing.add(record.member_id)
            continue
        paying.add(record.member_id)
        for line in record.latest.lines:
            numerator, denominator = monthly_amount(line)
            if line.currency:
                mrr[line.currency] += Fraction(numerator, denominator)
    return Kpis(
        paying_members=len(paying),
        trialing_members=len(trialing),
        members_in_grace=len(grace),
        members_with_access=len(access),
        mrr={currency: int(amount + Fraction(1, 2)) for currency, amount in sorted(mrr.items())},
    )


def resync_member(stores: Stores, queue: AccessWorkQueue, member_id: str, now: int) -> list[str]:
    """Queue "converge" work for every community the member has (or had) an entitlement in.

    For after the creator fixed what an access failure named (a bot permission, a role order):
    the dispatcher recomputes and applies what the entitlements say now, nothing else.
    """
    if stores.members.get(member_id) is None:
        raise NotFoundError(f"member {member_id} does not exist")
    view = current_view(stores, member_id, now)
    communities = sorted({e.community_id for e in view.entitlements} | {a.community_id for a in stores.access.for_member(member_id)})
    if communities:
        queue.send([AccessWork(WorkKind.RESYNC, member_id, community_id) for community_id in communities])
    return communities


def recent_events(stores: Stores, now: int, limit: int) -> list[LedgerEntry]:
    return stores.ledger.recent(now, limit)
