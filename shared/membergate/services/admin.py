"""The creator's use cases: set up communities and plans, look members up, read the numbers."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from dataclasses import dataclass, field, replace
from fractions import Fraction

from .. import deadline
from ..domain.billing import SubscriptionRecord, grant_status, monthly_amount
from ..domain.access import Capability
from ..domain.errors import ConflictError, InvalidRequestError, NotFoundError, PermanentError, RetryableError
from ..domain.grants import DISPUTE_POLICIES
from ..domain.tiers import DOWNGRADE_TIMINGS
from ..domain.preflight import Check, Preflight
from ..domain.whatsapp import normalise_phone
from ..domain.prices import price_problems
from ..domain.messages import welcome_problem
from ..domain.billing import PriceInfo
from ..domain.model import (
    CheckoutOptions,
    AccessRecord,
    Community,
    Entitlement,
    EntitlementState,
    Identity,
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


log = logging.getLogger(__name__)

# The billing port's describe_prices: the prices Stripe knows among those asked.
PriceReader = Callable[[Sequence[str]], list[PriceInfo]]


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def _e164(phone: str, field: str) -> str:
    try:
        return normalise_phone(phone, assume_international=True)
    except InvalidRequestError as error:
        raise InvalidRequestError(error.message, field=field) from None


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
    connectors: Mapping[Platform, Any] | None = None,
) -> Community:
    """Register a place once; with a connector that can, only after its preflight passes."""
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
    # The duplicate is known here without asking the platform, so it is refused before the preflight.
    if community.platform is Platform.TELEGRAM and any(
        c.platform is community.platform and c.external_id == community.external_id
        for c in stores.catalog.list_communities()
    ):
        raise ConflictError(
            f"the Telegram chat {community.external_id} is already a community here; use that community "
            "(GET /admin/communities) instead of registering the chat twice"
        )
    result = run_preflight(connectors or {}, community, [role_id] if role_id else [])
    if result is not None and not result.ok:
        raise PreflightFailedError(result)
    stores.catalog.add_community(community)
    return community


class PreflightFailedError(ConflictError):
    """The bot cannot yet do what the community needs; the message lists each fix."""

    code = "preflight_failed"

    def __init__(self, result: Preflight):
        super().__init__(f"Membergate's bot cannot manage this place yet: {result.summary()} Then try again.")
        self.result = result


def run_preflight(connectors: Mapping[Platform, Any], community: Community, role_ids: Sequence[str]) -> Preflight | None:
    """The platform's preflight, or None when its connector has none here."""
    connector = connectors.get(community.platform)
    if connector is None or Capability.PREFLIGHT not in connector.capabilities:
        return None
    try:
        result: Preflight = connector.preflight(community, role_ids)
        return result
    except PermanentError as exc:
        # A refused bot token or similar: a failed check with the platform's own advice, not a 502.
        return Preflight((Check("bot_reachable", False, str(exc)),))


def granted_roles(stores: Stores, community: Community) -> list[str]:
    """Every role Membergate may give in the community: its own and the ones its plans name."""
    roles = {community.role_id} if community.role_id else set()
    for plan in stores.catalog.list_plans():
        roles |= {g.role_id for g in plan.grants if g.community_id == community.id and g.role_id}
    return sorted(roles)


def check_community(
    stores: Stores, connectors: Mapping[Platform, Any], community_id: str, queue: AccessWorkQueue | None = None
) -> Preflight | None:
    """POST /admin/communities/{id}/check: the preflight again, after the creator fixed something.

    A check that passes releases the community's hold (domain/holds.py) and queues a resync of
    every member held behind it."""
    community = stores.catalog.get_community(community_id)
    if community is None:
        raise NotFoundError(f"community {community_id} does not exist; list them with GET /admin/communities")
    result = _preflight_within_deadline(stores, connectors, community)
    holds = stores.holds
    if result is not None and result.ok and queue is not None and holds is not None and holds.get(community.id) is not None:
        held = holds.release(community.id)
        if held:
            queue.send([AccessWork(WorkKind.RESYNC, member_id, community.id) for member_id in held])
    return result


def _preflight_within_deadline(stores: Stores, connectors: Mapping[Platform, Any], community: Community) -> Preflight | None:
    started = time.monotonic()
    # The admin function stops after 15 s: the adapters give each request only what is left of this.
    with deadline.within(lambda: CHECK_SECONDS - (time.monotonic() - started)):
        try:
            return run_preflight(connectors, community, granted_roles(stores, community))
        except RetryableError as error:
            if not isinstance(error, deadline.DeadlineExceededError) and time.monotonic() - started < CHECK_SECONDS * 0.9:
                raise  # a platform error of its own, with its own advice
            raise RetryableError(
                f"{community.platform.value.capitalize()} did not answer within {CHECK_SECONDS:g} s; "
                "check again in a few minutes (its status page says whether it is down)"
            ) from error


# POST /admin/communities/{id}/check answers within this, whatever the platform does.
CHECK_SECONDS = 10.0


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
    description: str = "",
    checkout: Mapping[str, bool] | None = None,
    prices: PriceReader | None = None,
    renewal_notice_days: int | None = 7,
    trial_notice_days: int | None = 3,
    welcome_message: str = "",
    seats: int | None = None,
    trial_days: int | None = None,
    dispute_policy: str = "",
    downgrade: str = "immediate",
) -> Plan:
    """With ``prices`` (the billing port's describe_prices), every price is checked at Stripe first."""
    welcome_message = _checked_welcome(welcome_message)
    plan_kind = PlanKind(kind)
    _check_trial(plan_kind, trial_days)
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
        if community.archived_at is not None:
            raise InvalidRequestError(
                f"community {community_id} is archived; grant an open community (GET /admin/communities)",
                field=f"grants[{index}].community_id",
            )
        if not (role_id or community.role_id) and community.on_revoke is OnRevoke.REMOVE_ROLE:
            raise InvalidRequestError(
                f"community {community_id} has no role and removes roles on revoke: give this grant a role_id",
                field=f"grants[{index}].role_id",
            )
        plan_grants.append(PlanGrant(community_id, role_id))
    if prices is not None:
        problems = price_problems(plan_kind, list(dict.fromkeys(stripe_price_ids)), prices(stripe_price_ids))
        if problems:
            raise InvalidRequestError("; ".join(problems), field="stripe_price_ids")
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
        description=description.strip(),
        checkout=CheckoutOptions(**(checkout or {})),
        renewal_notice_days=renewal_notice_days,
        trial_notice_days=trial_notice_days,
        welcome_message=welcome_message,
        seats=seats,
        trial_days=trial_days,
        dispute_policy=_checked_dispute_policy(dispute_policy),
        downgrade=_checked_downgrade(plan_kind, downgrade),
    )
    stores.catalog.add_plan(plan)
    return plan


@dataclass(frozen=True)
class PendingSwitch:
    """A tier change waiting for its subscription's period end (a downgrade the plan being left makes wait)."""

    subscription_id: str
    from_plan_id: str
    plan_id: str
    at: int


@dataclass(frozen=True)
class MemberDetails:
    member: Member
    entitlements: list[Entitlement]
    access: list[AccessRecord]
    messages: list[MessageRecord] = field(default_factory=list)
    pending_switches: list[PendingSwitch] = field(default_factory=list)


def pending_switches(records: Iterable[SubscriptionRecord]) -> list[PendingSwitch]:
    """The member's tier changes still waiting, from Membergate's own records (no Stripe call)."""
    return [
        PendingSwitch(r.subscription_id, r.plan_id, p.plan_id, p.at)
        for r in sorted(records, key=lambda r: r.subscription_id)
        if (p := r.pending_change) is not None
    ]


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
        # Phones are stored as E.164: "33612345678" (a "+" lost in the query string) finds the member too.
        Platform.WHATSAPP: _e164(whatsapp_phone, "whatsapp_phone") if whatsapp_phone else None,
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
    return [MemberDetails(member, view.entitlements, stores.access.for_member(member.id), messages,
                          pending_switches(view.records))]


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
        # Net of the tax its prices include, as its latest paid invoice showed (docs/kpis.md, "Tax").
        net = 1 + (record.tax_inclusive_rate or 0)
        for line in record.latest.lines:
            numerator, denominator = monthly_amount(line)
            if line.currency:
                mrr[line.currency] += Fraction(numerator, denominator) / net
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


@dataclass(frozen=True)
class Relink:
    member_id: str
    identity: Identity
    previous: str | None  # the account that had access before, on the same platform
    revoked: list[str]  # communities where the old account's access was taken away now
    failed: list[tuple[str, str]]  # (community, reason) where it could not be: shown, retried by the creator
    queued: list[str]  # communities re-converged for the new account


def relink_identity(
    stores: Stores,
    queue: AccessWorkQueue,
    connectors: Mapping[Platform, Any],
    member_id: str,
    platform: str,
    external_id: str,
    now: int,
    *,
    handle: str | None = None,
    sealed_credentials: bytes | None = None,
) -> Relink:
    """Move a member's access from one platform account to another: the old one loses it.

    The member's own relink (manage page) passes the new account's handle and OAuth tokens, stored
    before any access work is queued so the dispatcher finds them."""
    if Platform(platform) is Platform.WHATSAPP:
        external_id = _e164(external_id, "external_id")  # stored and shown as E.164
    identity = Identity(Platform(platform), external_id, handle)
    previous = stores.members.replace_identity(member_id, identity)
    if sealed_credentials is not None:
        stores.members.save_credentials(member_id, identity.platform, sealed_credentials)
    old = previous.external_id if previous is not None and previous.external_id != external_id else None
    revoked: list[str] = []
    failed: list[tuple[str, str]] = []
    if old is not None:
        for record in stores.access.for_member(member_id):
            community = stores.catalog.get_community(record.community_id)
            if community is None or community.platform is not identity.platform:
                continue
            if not (record.roles or record.granted_at):
                continue
            connector = connectors.get(community.platform)
            if connector is None:
                failed.append((community.id, f"no {community.platform.value} connector here: remove {old} by hand"))
                continue
            try:
                # Where access is presence, not a role (Telegram), the old account is taken out.
                roleless = Capability.ROLES not in connector.capabilities
                if (community.on_revoke is OnRevoke.KICK or roleless) and Capability.REMOVE_MEMBER in connector.capabilities:
                    connector.remove_member(community, old)
                else:
                    for role_id in record.roles or ((community.role_id,) if community.role_id else ()):
                        connector.revoke_role(community, old, role_id)
                revoked.append(community.id)
            except (RetryableError, PermanentError) as exc:
                failed.append((community.id, str(exc)))
    queued = resync_member(stores, queue, member_id, now)
    log.info("identity relinked", extra={"member_id": member_id, "platform": platform, "revoked": revoked,
                                         "failed": [c for c, _ in failed]})
    return Relink(member_id, identity, old, revoked, failed, queued)


# --- member list, search and timeline -------------------------------------------------------

# How many members one list request reads at most while filtering: a filtered page may come back
# shorter than ``limit`` with a next_cursor, so no request walks the whole table.
LIST_READ_BUDGET = 500


@dataclass(frozen=True)
class MemberFilters:
    state: str | None = None  # an entitlement state (pending, active, grace, ended) or "none"
    plan_id: str | None = None
    community_id: str | None = None
    platform: str | None = None  # has an identity on this platform
    search: str | None = None  # the dashboard's search box (search_member_page), other filters applied on top


def _matches(details: MemberDetails, filters: MemberFilters) -> bool:
    entitlements = details.entitlements
    if filters.plan_id and not any(e.plan_id == filters.plan_id for e in entitlements):
        return False
    if filters.community_id and not any(e.community_id == filters.community_id for e in entitlements):
        return False
    if filters.platform and details.member.identity(Platform(filters.platform)) is None:
        return False
    if filters.state == "none":
        return not entitlements
    if filters.state and not any(
        e.state.value == filters.state
        and (not filters.plan_id or e.plan_id == filters.plan_id)
        and (not filters.community_id or e.community_id == filters.community_id)
        for e in entitlements
    ):
        return False
    return True


def member_matches(details: MemberDetails, filters: MemberFilters) -> bool:
    return _matches(details, filters)


def _details(stores: Stores, member: Member, now: int) -> MemberDetails:
    view = current_view(stores, member.id, now)
    messages = sorted(stores.messages.for_member(member.id), key=lambda m: (m.at, m.kind, m.period))
    return MemberDetails(member, view.entitlements, stores.access.for_member(member.id), messages,
                         pending_switches(view.records))


# A search reads at most this many members per request (then answers with a next_cursor). A
# bounded scan, not an index: handles and emails change on other items (binding, checkout), and a
# search key kept on the listed item would cost a write on each of those paths (the billing
# processor's included, which has no call to spare); a creator's search is rare and a page of 500
# is one Query plus BatchGets, so a few thousand members answer in a few pages.
SEARCH_READ_BUDGET = 500
_ID = re.compile(r"\+?[A-Za-z0-9_-]{1,128}")


def search_terms(member: Member, email: str | None) -> list[str]:
    """What a case-insensitive prefix search matches: each handle, each word of it without
    ``@`` and brackets ("Alice (@alice)" -> "alice (@alice)", "alice", "alice"), and the email."""
    terms: list[str] = []
    for identity in member.identities:
        if identity.handle:
            handle = identity.handle.casefold()
            terms.append(handle)
            terms += [w.strip("@()[]<>,") for w in handle.split()]
    if email:
        terms.append(email.casefold())
    return [t for t in terms if t]


def search_member_page(
    stores: Stores, query: str, now: int, *, limit: int, cursor: str | None
) -> tuple[list[MemberDetails], str | None]:
    """Members whose id, Stripe customer id or any platform account id is ``query`` (exact, first
    page only), then those with a handle, name or email starting with it (case-insensitive,
    a leading ``@`` ignored), paged with the member list's cursor (SEARCH_READ_BUDGET a request)."""
    found: dict[str, Member] = {}
    if cursor is None:
        for member in search_members_exact(stores, query):
            found.setdefault(member.id, member)
    prefix = query.strip().casefold()
    bare = prefix.lstrip("@")
    # Emails are read (one per member) only for a query that reaches its "@" ("alice@", "alice@exa"):
    # a handle or name search then costs no read per member.
    emails = stores.contacts is not None and "@" in prefix[1:]
    after, read = cursor, 0
    while prefix and len(found) < limit and read < SEARCH_READ_BUDGET:
        members, last = stores.members.page(min(100, SEARCH_READ_BUDGET - read), after)
        read += len(members)
        for member in members:
            after = member.id
            email = stores.contacts.email(member.id) if emails and stores.contacts is not None else None
            if member.id not in found and any(
                t.startswith(prefix) or (bare and t.startswith(bare)) for t in search_terms(member, email)
            ):
                found[member.id] = member
                if len(found) >= limit:
                    break
        if last is None and (not members or after == members[-1].id):
            after = None
            break
    return [_details(stores, m, now) for m in found.values()], after


def search_members_exact(stores: Stores, query: str) -> list[Member]:
    if not _ID.fullmatch(query):
        return []  # only an id is looked up by key (no hostile string reaches the store)
    candidates = [stores.members.get(query), stores.members.find_by_customer(query)]
    candidates += [stores.members.find_by_identity(platform, query) for platform in Platform]
    return [m for m in candidates if m is not None]


def list_members(
    stores: Stores, *, now: int, limit: int, cursor: str | None, filters: MemberFilters
) -> tuple[list[MemberDetails], str | None]:
    """One page of members in id order; the cursor is the last member id read (opaque to callers)."""
    found: list[MemberDetails] = []
    after = cursor
    read = 0
    while len(found) < limit and read < LIST_READ_BUDGET:
        members, after = stores.members.page(min(limit - len(found), LIST_READ_BUDGET - read), after)
        read += len(members)
        found += [d for d in (_details(stores, m, now) for m in members) if _matches(d, filters)]
        if after is None:
            break
    return found, after


@dataclass(frozen=True)
class TimelineEntry:
    at: int
    kind: str  # joined, subscription, payment, entitlement, access, message, survey
    summary: str
    detail: dict[str, str | int | None] = field(default_factory=dict)


def member_timeline(stores: Stores, member_id: str, now: int) -> list[TimelineEntry]:
    """Everything that happened to one member, oldest first, from the stored history."""
    member = stores.members.get(member_id)
    if member is None:
        raise NotFoundError(f"member {member_id} does not exist; list members with GET /admin/members")
    entries = [TimelineEntry(member.created_at, "joined", f"member created ({member.origin.value})")]
    for record in stores.subscriptions.for_member(member_id):
        for observation in record.observations:
            entries.append(
                TimelineEntry(
                    observation.created,
                    "subscription",
                    f"subscription {record.subscription_id} {observation.status}",
                    {"subscription_id": record.subscription_id, "plan_id": record.plan_id, "status": observation.status},
                )
            )
    for grant in stores.grants.for_member(member_id):
        entries.append(
            TimelineEntry(
                grant.paid_at,
                "payment",
                f"{grant.kind.value} for plan {grant.plan_id} paid",
                {"plan_id": grant.plan_id, "amount": grant.amount, "currency": grant.currency or None},
            )
        )
    view = current_view(stores, member_id, now)
    for entitlement in view.entitlements:
        entries.append(
            TimelineEntry(
                now,
                "entitlement",
                f"{entitlement.state.value} in community {entitlement.community_id} (plan {entitlement.plan_id})",
                {"plan_id": entitlement.plan_id, "community_id": entitlement.community_id, "state": entitlement.state.value},
            )
        )
    for access in stores.access.for_member(member_id):
        entries.append(
            TimelineEntry(
                access.updated_at,
                "access",
                f"access {access.state.value} in community {access.community_id}" + (f": {access.reason}" if access.reason else ""),
                {"community_id": access.community_id, "state": access.state.value},
            )
        )
    for message in stores.messages.for_member(member_id):
        entries.append(
            TimelineEntry(
                message.at,
                "message",
                f"message {message.kind} {message.status.value}" + (f": {message.reason}" if message.reason else ""),
                {"kind": message.kind, "state": message.status.value},
            )
        )
    erasure = stores.privacy.erasure(member_id) if stores.privacy is not None else None
    if erasure is not None:  # no audit store yet: the member's timeline is the erasure's record
        entries.append(TimelineEntry(erasure.requested_at, "erasure", f"erasure asked: {erasure.reason}",
                                     {"state": "revoking"}))
        if erasure.erased_at is not None:
            entries.append(TimelineEntry(erasure.erased_at, "erasure", "personal data erased",
                                         {"state": "erased", **dict(erasure.removed)}))
    for answer in stores.surveys.for_member(member_id) if stores.surveys is not None else ():
        entries.append(
            TimelineEntry(
                answer.at,
                "survey",
                f"exit survey: {answer.choice}" + (f": {answer.comment}" if answer.comment else ""),
                {"plan_id": answer.plan_id, "choice": answer.choice, "comment": answer.comment or None},
            )
        )
    for action in stores.audit.for_member(member_id) if stores.audit is not None else ():
        entries.append(
            TimelineEntry(
                action.at,
                "admin",
                f"{action.action} by {action.actor}" + (f": {action.reason}" if action.reason else ""),
                {"action": action.action, "target": action.target, "actor": action.actor, "reason": action.reason or None},
            )
        )
    return sorted(entries, key=lambda e: (e.at, e.kind, e.summary))


def filter_events(
    entries: list[LedgerEntry], *, status: str | None = None, type_: str | None = None, since: int | None = None
) -> list[LedgerEntry]:
    return [
        e
        for e in entries
        if (status is None or e.status == status)
        and (type_ is None or e.type == type_)
        and (since is None or e.received_at >= since)
    ]


# --- plan edits and archive -----------------------------------------------------------------


def _check_trial(kind: PlanKind, trial_days: int | None) -> None:
    if trial_days is not None and kind is not PlanKind.SUBSCRIPTION:
        raise InvalidRequestError(
            f"trial_days is for subscriptions; a {kind.value} plan is paid once (give a manual grant or an "
            "access code to let someone try it)",
            field="trial_days",
        )


def update_plan(
    stores: Stores, plan_id: str, *, name: str | None = None, grace_days: int | None = None, on_grace_end: str | None = None,
    checkout: Mapping[str, bool | None] | None = None,
    notices: Mapping[str, int | None] | None = None,
    welcome_message: str | None = None,
    stripe_price_ids: list[str] | None = None, prices: PriceReader | None = None,
    seats: int | None = None, set_seats: bool = False,
    trial_days: int | None = None, set_trial_days: bool = False,
    dispute_policy: str | None = None,
    downgrade: str | None = None,
) -> Plan:
    """Edit what members see and how long grace lasts; a change of grace applies from the next derivation.
    Checkout options given apply to checkouts started from now on. ``notices`` holds only the notice
    settings given (renewal_notice_days, trial_notice_days; None turns one off); a welcome_message
    of "" goes back to the default welcome, None leaves it as it is. New prices are checked at Stripe
    (with ``prices``) by the rules of creation; members already paying a removed price keep the plan."""
    plan = stores.catalog.get_plan(plan_id)
    if plan is None:
        raise NotFoundError(f"plan {plan_id} does not exist; list them with GET /admin/plans")
    notices = notices or {}
    wanted = tuple(dict.fromkeys(stripe_price_ids)) if stripe_price_ids is not None else plan.stripe_price_ids
    if wanted != plan.stripe_price_ids:
        if prices is not None:
            problems = price_problems(plan.kind, list(wanted), prices(list(wanted)))
            if problems:
                raise InvalidRequestError("; ".join(problems), field="stripe_price_ids")
        stores.catalog.set_plan_prices(plan.id, wanted)
        plan = replace(plan, stripe_price_ids=wanted)
    edited = replace(
        plan,
        renewal_notice_days=notices.get("renewal_notice_days", plan.renewal_notice_days),
        trial_notice_days=notices.get("trial_notice_days", plan.trial_notice_days),
        welcome_message=plan.welcome_message if welcome_message is None else _checked_welcome(welcome_message),
    )
    edited = replace(
        edited,
        name=plan.name if name is None else name,
        grace_days=plan.grace_days if grace_days is None else grace_days,
        on_grace_end=plan.on_grace_end if on_grace_end is None else OnGraceEnd(on_grace_end),
        checkout=replace(plan.checkout, **{k: v for k, v in (checkout or {}).items() if v is not None}),
        seats=seats if set_seats else plan.seats,
        trial_days=trial_days if set_trial_days else plan.trial_days,
        # None: unchanged; "": back to the deployment's policy. A dispute already seen keeps its own.
        dispute_policy=plan.dispute_policy if dispute_policy is None else _checked_dispute_policy(dispute_policy),
        # Applies to switches made from now on; one already waiting for its period end stays as scheduled.
        downgrade=plan.downgrade if downgrade is None else _checked_downgrade(plan.kind, downgrade),
    )
    if set_trial_days:
        _check_trial(plan.kind, trial_days)
    if edited != plan:
        stores.catalog.update_plan(edited)
    return edited


def _checked_downgrade(kind: PlanKind, downgrade: str) -> str:
    if downgrade not in DOWNGRADE_TIMINGS:
        raise InvalidRequestError(f"downgrade {downgrade!r}: use one of {', '.join(DOWNGRADE_TIMINGS)}",
                                  field="downgrade")
    if downgrade != "immediate" and kind is not PlanKind.SUBSCRIPTION:
        raise InvalidRequestError(f"downgrade {downgrade!r} is for subscriptions: a {kind.value} plan is bought once, "
                                  "never switched from", field="downgrade")
    return downgrade


def _checked_dispute_policy(policy: str) -> str:
    if policy and policy not in DISPUTE_POLICIES:
        raise InvalidRequestError(f"dispute_policy {policy!r}: use one of {', '.join(DISPUTE_POLICIES)}, or leave it "
                                  "out for the deployment's DisputePolicy", field="dispute_policy")
    return policy


def _checked_welcome(message: str) -> str:
    """The creator's welcome text as stored (trimmed, Windows line ends made plain), or a 400 saying what to change."""
    message = message.replace("\r\n", "\n")
    problem = welcome_problem(message)
    if problem is not None:
        raise InvalidRequestError(problem, field="welcome_message")
    return message.strip()


def archive_plan(stores: Stores, plan_id: str, now: int) -> Plan:
    """Close the offer: the join link answers 410; members keep their access until their grants end.

    Idempotent: archiving twice keeps the first date."""
    plan = stores.catalog.get_plan(plan_id)
    if plan is None:
        raise NotFoundError(f"plan {plan_id} does not exist; list them with GET /admin/plans")
    if plan.archived_at is not None:
        return plan
    archived = replace(plan, archived_at=now)
    stores.catalog.update_plan(archived)
    return archived


# --- community edits and archive ------------------------------------------------------------


def update_community(
    stores: Stores, community_id: str, *, name: str | None = None, locale: str | None = None, on_revoke: str | None = None
) -> Community:
    """Edit a community's name, member-message language and (Discord) removal mode; only what is given changes."""
    community = stores.catalog.get_community(community_id)
    if community is None:
        raise NotFoundError(f"community {community_id} does not exist; list them with GET /admin/communities")
    if on_revoke is not None and community.platform is not Platform.DISCORD:
        raise InvalidRequestError(
            f"a {community.platform.value} community has no roles: ending access always takes the member out",
            field="on_revoke",
        )
    if on_revoke == OnRevoke.REMOVE_ROLE.value and not community.role_id:
        raise InvalidRequestError(
            "on_revoke 'remove_role' needs the community's role_id; this community has none, so keep 'kick'",
            field="on_revoke",
        )
    edited = replace(
        community,
        name=community.name if name is None else name,
        locale=community.locale if locale is None else locale,
        on_revoke=community.on_revoke if on_revoke is None else OnRevoke(on_revoke),
    )
    if edited != community:
        stores.catalog.update_community(edited)
    return edited


def archive_community(stores: Stores, community_id: str, now: int) -> Community:
    """No new plan may grant it; plans granting it keep selling until archived, members keep their
    access until their grants end. Idempotent: archiving twice keeps the first date."""
    community = stores.catalog.get_community(community_id)
    if community is None:
        raise NotFoundError(f"community {community_id} does not exist; list them with GET /admin/communities")
    if community.archived_at is not None:
        return community
    archived = replace(community, archived_at=now)
    stores.catalog.update_community(archived)
    return archived
