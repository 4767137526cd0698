"""Free -> paid migration: create it, import the free members, announce the offer, track it, extend it.

Imported members keep access to the community's paid places until the deadline through a grant
with source ``migration``; the deadline then acts by itself (the grant ends and the existing sweep
removes access from whoever did not take a paid grant). The announcement travels as NOTIFY work
through the access work queue, so the dispatcher's rate limits, retries and email fallback apply.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from dataclasses import dataclass, replace

from ..domain.errors import ConcurrentUpdateError, ConflictError, InvalidRequestError, MembergateError, NotFoundError, PermanentError, RetryableError
from ..domain.migration import (
    MAX_MESSAGE,
    MIGRATION_OFFER,
    REACHED_DM,
    REACHED_EMAIL,
    REACHED_NONE,
    REACHED_POST,
    InvalidLine,
    Migration,
    MigrationMember,
    check_deadline,
    grant_end,
    migration_grant,
    migration_grant_id,
    moved_grant,
    offer_words,
    parse_import,
    reached,
)
from ..domain.access import Capability
from ..domain.billing import PriceInfo
from ..domain.grants import SOURCE_ACCESS_CODE, SOURCE_MANUAL
from ..domain.links import Links
from ..domain.messages import format_date, render
from ..domain.model import (
    Community,
    Identity,
    Member,
    MemberOrigin,
    MessageKey,
    MessageStatus,
    Plan,
    Platform,
)
from ..ports import (
    AccessWork,
    AccessWorkQueue,
    AnnouncementPoster,
    CommunityConnector,
    MemberLink,
    MigrationStore,
    Stores,
    WebSession,
    notify_work,
)
from .controls import _index, _refresh, audit
from .identity import fresh_session
from .membership import current_view, refresh_member
from .removals import member_removals

PriceReader = Callable[[Sequence[str]], list[PriceInfo]]  # the billing port's describe_prices

OFFER = "offer"  # MemberLink purpose: the announcement's personal join link
# The personal link outlives the deadline: a member may still take the offer a little late.
OFFER_LINK_GRACE = 30 * 86_400
PAGE = 200  # members read per page when walking a migration


def _store(stores: Stores) -> MigrationStore:
    if stores.migrations is None:
        raise RuntimeError("no migration store wired into Stores")
    return stores.migrations


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def get_migration(stores: Stores, migration_id: str) -> Migration:
    migration = _store(stores).get(migration_id)
    if migration is None:
        raise NotFoundError(f"migration {migration_id} does not exist; create one with POST /admin/migrations")
    return migration


def _offer(stores: Stores, migration: Migration) -> tuple[Community, Plan]:
    community = stores.catalog.get_community(migration.community_id)
    plan = stores.catalog.get_plan(migration.plan_id)
    if community is None or plan is None:
        raise NotFoundError(f"migration {migration.id} names a community or plan that no longer exists")
    return community, plan


def create_migration(
    stores: Stores, *, community_id: str, plan_id: str, deadline: int, message: str, actor: str, now: int,
    announcement_channel_id: str | None = None, regular_plan_id: str | None = None,
) -> Migration:
    community = stores.catalog.get_community(community_id)
    if community is None:
        raise InvalidRequestError(f"community {community_id} does not exist; list them with GET /admin/communities",
                                  field="community_id")
    plan = stores.catalog.get_plan(plan_id)
    if plan is None:
        raise InvalidRequestError(f"plan {plan_id} does not exist; list them with GET /admin/plans", field="plan_id")
    if plan.archived_at is not None:
        raise InvalidRequestError(f"plan {plan_id} is archived; offer a plan on sale", field="plan_id")
    if all(g.community_id != community_id for g in plan.grants):
        raise InvalidRequestError(
            f"plan {plan_id} does not grant community {community_id}; offer a plan that gives its paid places",
            field="plan_id",
        )
    if regular_plan_id is not None and (regular_plan_id == plan_id or stores.catalog.get_plan(regular_plan_id) is None):
        raise InvalidRequestError(
            f"regular_plan_id {regular_plan_id} is not another existing plan; give the plan whose price the founder "
            "price is compared with (GET /admin/plans), or leave it out", field="regular_plan_id")
    check_deadline(deadline, now)
    if len(message) > MAX_MESSAGE:
        raise InvalidRequestError(f"message: at most {MAX_MESSAGE} characters", field="message")
    if announcement_channel_id and community.platform is not Platform.DISCORD:
        raise InvalidRequestError("announcement_channel_id is for Discord servers; a Telegram group is posted in "
                                  "itself", field="announcement_channel_id")
    migration = Migration(_new_id("mig"), community_id, plan_id, deadline, message, now,
                          announcement_channel_id=announcement_channel_id, regular_plan_id=regular_plan_id)
    _store(stores).create(migration)
    audit(stores, actor=actor, action="migration.create", target=migration.id, now=now,
          detail={"community_id": community_id, "plan_id": plan_id, "deadline": str(deadline)})
    return migration


# --- import ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    imported: int  # people added to this migration by this request
    already_members: int  # people this migration already had (the same file imported again)
    invalid: list[InvalidLine]


def import_members(
    stores: Stores, queue: AccessWorkQueue, *, migration_id: str, text: str, actor: str, now: int
) -> ImportResult:
    """Each valid line becomes a member with that identity and a migration grant until the deadline.

    Idempotent: a person already imported keeps their one grant; nothing is written twice."""
    migration = get_migration(stores, migration_id)
    community, _ = _offer(stores, migration)
    if migration.deadline <= now:
        raise ConflictError(f"migration {migration_id}'s deadline has passed; extend it first to import more members")
    rows, invalid = parse_import(text, community.platform)
    imported = already = 0
    for row in rows:
        member_id, new = _member_for(stores, Identity(community.platform, row.external_id, row.name), now)
        # A member made by this very row has no email and no grant yet: nothing to read first
        # (each read is a round trip, and a request has 15 s for its rows).
        if row.email and stores.contacts is not None and (new or not stores.contacts.email(member_id)):
            stores.contacts.set_email(member_id, row.email)
        grant_id = migration_grant_id(migration.id, member_id)
        if new or stores.grants.get(member_id, grant_id) is None:
            grant = migration_grant(migration, member_id, now)
            _index(stores).index_grant(grant_id, member_id)
            stores.grants.save(grant)
            _refresh(stores, queue, member_id, now)
        if _store(stores).add_member(MigrationMember(migration.id, member_id, now)):
            imported += 1
        else:
            already += 1
    audit(stores, actor=actor, action="migration.import", target=migration.id, now=now,
          detail={"imported": str(imported), "already_members": str(already), "invalid": str(len(invalid))})
    return ImportResult(imported, already, invalid)


def _member_for(stores: Stores, identity: Identity, now: int) -> tuple[str, bool]:
    """The member with this identity (made if none): (member id, made by this call)."""
    found = stores.members.find_by_identity(identity.platform, identity.external_id)
    if found is not None:
        return found.id, False
    # The id follows from the identity: an import retried after a timeout finds the same member.
    digest = hashlib.sha256(f"{identity.platform.value}:{identity.external_id}".encode()).hexdigest()[:16]
    member = Member(id=f"mbr_m{digest}", created_at=now, identities=(identity,), origin=MemberOrigin.MIGRATION)
    new = False
    if stores.members.get(member.id) is None:
        try:
            stores.members.create(member)
            new = True
        except ConflictError:
            pass  # created by a concurrent import of the same line
    try:
        stores.members.bind_identity(member.id, identity)
    except ConflictError:
        bound = stores.members.find_by_identity(identity.platform, identity.external_id)
        if bound is None:
            raise
        return bound.id, False
    return member.id, new


# --- tracking -------------------------------------------------------------------------------

PAID = "paid"
PENDING = "pending"


@dataclass(frozen=True)
class MemberProgress:
    member_id: str
    external_id: str | None
    state: str  # paid | pending
    reached: str  # dm | post | email | none
    loses_access_at_deadline: bool


@dataclass(frozen=True)
class _Catalog:
    """Plans and communities read once per walk, not once per member."""

    plans: dict[str, Plan]
    communities: dict[str, Community]

    @classmethod
    def load(cls, stores: Stores) -> _Catalog:
        return cls({p.id: p for p in stores.catalog.list_plans()}, {c.id: c for c in stores.catalog.list_communities()})


def _progress(
    stores: Stores, migration: Migration, community: Community, entry: MigrationMember, now: int,
    catalog: _Catalog | None = None,
) -> MemberProgress:
    known = catalog or _Catalog.load(stores)
    # One read of the member's partition (member, subscriptions, grants) where the store offers it:
    # status pages cost per member, so every read counts (the admin function has 15 s).
    state = stores.states.load(entry.member_id) if stores.states is not None else None
    if state is not None:
        member: Member | None = state.member
        records, grants = state.subscriptions, state.grants
    else:
        member = stores.members.get(entry.member_id)
        records = stores.subscriptions.for_member(entry.member_id)
        grants = stores.grants.for_member(entry.member_id)
    # Read as the extension being applied will leave it (a page may not have reached this member yet).
    own = migration_grant_id(migration.id, entry.member_id)
    grants = [moved_grant(g, migration.deadline) if g.grant_id == own and not g.ended_reason else g for g in grants]
    facts: dict[str, Any] = {"records": records, "grants": grants, "plans": known.plans, "communities": known.communities}
    # Settled: a paid grant (subscription, pass, lifetime) gives the community now, or one the creator
    # gave them on purpose (a manual grant, an access code); the migration's own grant never counts.
    paid = _has_paid(stores, entry.member_id, {community.id}, now, facts, given=_SETTLED_GIVEN)
    loses = any(r.community_id == community.id
                for r in member_removals(stores, entry.member_id, now, migration.deadline, facts=facts))
    outcomes = [
        (m.status.value, m.reason) for m in stores.messages.for_member(entry.member_id)
        if m.kind == MIGRATION_OFFER and m.period.startswith(f"{migration.id}:")
    ]
    return MemberProgress(
        entry.member_id, member.identity(community.platform) if member else None, PAID if paid else PENDING,
        reached(outcomes, posted=migration.posted_at is not None), loses,
    )


def _entries(
    stores: Stores, migration_id: str, cursor: str | None, limit: int | None
) -> tuple[Iterable[MigrationMember], str | None]:
    """One page of the migration's members and the cursor of the next (every member when ``limit`` is None)."""
    if limit is None:
        return _walk(stores, migration_id), None
    return _store(stores).members(migration_id, cursor, limit)


def _walk(stores: Stores, migration_id: str) -> Iterator[MigrationMember]:
    after: str | None = None
    while True:
        entries, after = _store(stores).members(migration_id, after, PAGE)
        yield from entries
        if after is None:
            return


@dataclass(frozen=True)
class MigrationStatus:
    migration: Migration
    imported: int
    paid: int
    pending: int
    reached: dict[str, int]
    would_lose_access_at_deadline: int
    next_cursor: str | None = None  # the counts cover one page; add up the next ones from here


STATUS_PAGE = 50  # members counted per status request when none is asked (about 5 s under moto)


def status(
    stores: Stores, migration_id: str, now: int, *, cursor: str | None = None, limit: int | None = STATUS_PAGE,
) -> MigrationStatus:
    """Where the migration stands; the loss preview is the removal preview's own rule (services/removals.py).

    Bounded: the counts cover at most ``limit`` members after ``cursor`` (each member is two reads and
    the admin function has 15 s); the caller adds pages up until ``next_cursor`` is None. Counters kept
    on the migration item would need a write on the billing path whenever a member pays, which has a
    fixed call budget, and would drift when a grant ends by time alone: paging reads the truth.
    ``limit`` None walks every member (scripts and tests, not a Lambda request)."""
    migration = get_migration(stores, migration_id)
    community, _ = _offer(stores, migration)
    counts = {PAID: 0, PENDING: 0}
    reach = {REACHED_DM: 0, REACHED_POST: 0, REACHED_EMAIL: 0, REACHED_NONE: 0}
    losing = 0
    catalog = _Catalog.load(stores)
    entries, next_cursor = _entries(stores, migration_id, cursor, limit)
    for entry in entries:
        progress = _progress(stores, migration, community, entry, now, catalog)
        counts[progress.state] += 1
        reach[progress.reached] += 1
        losing += progress.loses_access_at_deadline
    return MigrationStatus(migration, counts[PAID] + counts[PENDING], counts[PAID], counts[PENDING], reach, losing,
                           next_cursor)


def member_page(
    stores: Stores, migration_id: str, *, state: str | None, cursor: str | None, limit: int, now: int
) -> tuple[list[MemberProgress], str | None]:
    migration = get_migration(stores, migration_id)
    community, _ = _offer(stores, migration)
    out: list[MemberProgress] = []
    after = cursor
    catalog = _Catalog.load(stores)
    while len(out) < limit:
        entries, next_after = _store(stores).members(migration_id, after, limit)
        for index, entry in enumerate(entries):
            progress = _progress(stores, migration, community, entry, now, catalog)
            if state is None or progress.state == state:
                out.append(progress)
            if len(out) == limit:
                more = index < len(entries) - 1 or next_after is not None
                return out, (entry.member_id if more else None)
        if next_after is None:
            return out, None
        after = next_after
    return out, None


# --- announcement ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Announcement:
    queued: int  # members the offer is now on its way to
    already_reached: int  # reached by an earlier announcement: not written to again
    in_flight: int  # an earlier announcement to them is still being delivered
    posted: bool = False  # the offer is (now or already) posted in the place
    post_problem: str = ""  # why it could not be posted (nothing to post with, refused, try again later)
    next_cursor: str | None = None  # announce again from here; None when every imported member was handled


def _offer_token(stores: Stores, migration: Migration, member_id: str, now: int) -> str:
    token = secrets.token_urlsafe(24)
    if stores.member_links is None:
        raise RuntimeError("no member link store wired into Stores")
    expires = max(migration.deadline, now) + OFFER_LINK_GRACE
    stores.member_links.put_link(hashlib.sha256(token.encode()).hexdigest(), MemberLink(member_id, OFFER, migration.plan_id, expires))
    return token


def offer_text(stores: Stores, migration: Migration, plan: Plan, locale: str, prices: PriceReader | None) -> str:
    """The offer with its price (and the regular one beside it), read once per announce request the way
    the join page reads prices; the plan's name alone when Stripe is not configured or does not answer."""
    if prices is None:
        return plan.name
    regular = stores.catalog.get_plan(migration.regular_plan_id) if migration.regular_plan_id else None
    try:
        offered = prices(list(plan.stripe_price_ids)) if plan.stripe_price_ids else []
        usual = prices(list(regular.stripe_price_ids)) if regular is not None and regular.stripe_price_ids else []
    except MembergateError:
        return plan.name
    return offer_words(plan.name, offered, usual, locale)


def _post(
    migration: Migration, community: Community, plan: Plan, connector: CommunityConnector | None, links: Links,
    offer: str = "",
) -> str:
    """Post the offer in the place where the platform allows it; "" when posted, else why not.

    One request per migration (not a loop): a rate limit answers "try again" rather than waiting."""
    if connector is None or Capability.POST_ANNOUNCEMENT not in connector.capabilities:
        return f"no_post: {community.platform.value} gives Membergate no way to post in this place"
    text = render("migration_post", community.locale, community=community.name, plan=offer or plan.name,
                  date=format_date(migration.deadline, community.locale), join_url=links.join(plan.id),
                  note=("\n\n" + migration.message) if migration.message else "")
    poster: AnnouncementPoster = connector  # type: ignore[assignment]  # it declared the capability
    try:
        poster.post_announcement(community, migration.announcement_channel_id, text, f"{migration.id}:post")
    except PermanentError as error:
        return f"{error.reason}: {error.message}"
    except RetryableError as error:
        return f"retry: {error.message}; announce again later to post"
    return ""


def announce(
    stores: Stores, queue: AccessWorkQueue, *, migration_id: str, actor: str, now: int,
    connectors: Mapping[Platform, CommunityConnector] | None = None, links: Links | None = None,
    cursor: str | None = None, limit: int | None = None, prices: PriceReader | None = None,
) -> Announcement:
    """Send the offer to every imported member not reached yet (once per member per migration), and
    post it once in the place where the platform allows it (Discord channel, Telegram group).

    With a limit, handles at most that many members after cursor (a Lambda request has 15 s): the
    post and the round counter belong to the first page (cursor None); later pages continue it."""
    migration = get_migration(stores, migration_id)
    community, plan = _offer(stores, migration)
    problem = ""
    first = cursor is None
    offer = offer_text(stores, migration, plan, community.locale, prices)
    if first and migration.posted_at is None and links is not None:
        problem = _post(migration, community, plan, (connectors or {}).get(community.platform), links, offer)
        if not problem:
            migration = replace(migration, posted_at=now)
    round_ = migration.announcements + 1 if first else max(migration.announcements, 1)
    queued = done = flying = 0
    batch: list[AccessWork] = []
    next_cursor: str | None = None
    if limit is None:
        members: Iterable[MigrationMember] = _walk(stores, migration_id)
    else:
        members, next_cursor = _store(stores).members(migration_id, cursor, limit)
    for entry in members:
        offers = [m for m in stores.messages.for_member(entry.member_id)
                  if m.kind == MIGRATION_OFFER and m.period.startswith(f"{migration.id}:")]
        if any(m.status is MessageStatus.SENT for m in offers):
            done += 1
            continue
        if any(not m.status.final for m in offers):
            flying += 1  # queued or retrying: the dispatcher is still on it
            continue
        period = f"{migration.id}:{round_}"
        # Claimed now, not when the dispatcher gets to it: an announce repeated meanwhile sees it in flight.
        stores.messages.claim(MessageKey(entry.member_id, MIGRATION_OFFER, period), now)
        details = (("ends_at", str(migration.deadline)), ("offer_token", _offer_token(stores, migration, entry.member_id, now)),
                   ("plan_id", migration.plan_id), ("note", migration.message), ("offer", offer))
        batch.append(notify_work(entry.member_id, community.id, MIGRATION_OFFER, period, details))
        queued += 1
        if len(batch) == 10:
            queue.send(batch)
            batch = []
    if batch:
        queue.send(batch)
    if first:
        _store(stores).save(replace(migration, announcements=round_))
    audit(stores, actor=actor, action="migration.announce", target=migration.id, now=now,
          detail={"queued": str(queued), "already_reached": str(done), "round": str(round_),
                  "posted": "yes" if migration.posted_at is not None else (problem or "no")[:200]})
    return Announcement(queued, done, flying, migration.posted_at is not None, problem, next_cursor)


# --- deadline -------------------------------------------------------------------------------


# Members one extend request handles when none is asked: about 3 table calls each (one read of the
# member's partition, the grant, the projection); ~0.3 s a member on the local moto stack of a busy
# 2-core machine, so 50 stay within the CLI's 20 s there, and take a few seconds on DynamoDB.
EXTEND_PAGE = 50


@dataclass(frozen=True)
class Extension:
    migration: Migration
    moved: int  # pending members whose grant this request moved to the deadline
    already: int  # pending members whose grant already ended there (an earlier page, a repeat)
    next_cursor: str | None = None  # extend again with it; None once every member was handled


def extend(
    stores: Stores, queue: AccessWorkQueue, *, migration_id: str, deadline: int, reason: str, actor: str, now: int,
    cursor: str | None = None, limit: int | None = EXTEND_PAGE, shorten: bool = False,
) -> Extension:
    """Move the deadline at once, then the pending members' migration grants in bounded pages.

    The first page (cursor None) writes the new deadline on the migration before touching any grant;
    each page then moves at most ``limit`` members' grants after ``cursor`` (a Lambda request has
    15 s; a 5,000-member community is 50 pages the CLI sends one after the other). Idempotent: a
    grant already ending at the deadline is counted in ``already`` and not written again, so a page
    repeated, or the whole extension started again after a crash, converges on the same state. A
    member whose grant no page has reached yet keeps access past the old deadline all the same: the
    sweep and the dispatcher read the migration's deadline when a migration grant lapses
    (services/migration_deadline.py). A later page carrying another deadline than the migration's is
    refused (another extension started since): start again without cursor. ``limit`` None walks every
    member (scripts and tests, not a Lambda request). A deadline earlier than the current one is
    refused unless ``shorten`` says it is meant (a mistyped date would end every pending member's
    access sooner than announced); a cursor that is not one of the migration's members is refused
    rather than read as the end of the walk."""
    check_deadline(deadline, now)
    migration = get_migration(stores, migration_id)
    community, _ = _offer(stores, migration)
    if cursor is None and deadline < migration.deadline and not shorten:
        raise ConflictError(
            f"migration {migration_id}'s deadline is {format_date(migration.deadline, 'en')}; "
            f"{format_date(deadline, 'en')} is earlier and would end every pending member's access sooner than "
            'announced. To move it earlier on purpose, send "shorten": true (CLI: --shorten)'
        )
    if cursor is not None and stores.grants.get(cursor, migration_grant_id(migration.id, cursor)) is None:
        raise InvalidRequestError(
            f"cursor {cursor} is not a member of migration {migration_id}: extend again without a cursor "
            "(every page is idempotent) to move every member to the deadline",
            field="cursor",
        )
    if cursor is not None and migration.deadline != deadline:
        raise ConflictError(
            f"migration {migration_id}'s deadline is now {format_date(migration.deadline, 'en')}, not "
            f"{format_date(deadline, 'en')}: another extension "
            "started since; extend again without cursor to move every member to the deadline you want"
        )
    previous = migration.deadline
    if cursor is None and migration.deadline != deadline:
        migration = replace(migration, deadline=deadline)
        _store(stores).save(migration)  # first: the sweep reads it for grants no page reached yet
    moved = already = 0
    catalog = _Catalog.load(stores)
    entries, next_cursor = _entries(stores, migration_id, cursor, limit)
    for entry in entries:
        outcome = _move(stores, queue, migration, community, entry.member_id, catalog, now)
        moved += outcome == "moved"
        already += outcome == "already"
    if cursor is None:
        audit(stores, actor=actor, action="migration.extend", target=migration.id, now=now, reason=reason,
              detail={"deadline": str(deadline), "from": str(previous), "members": str(moved)})
    return Extension(migration, moved, already, next_cursor)


def _move(
    stores: Stores, queue: AccessWorkQueue, migration: Migration, community: Community, member_id: str,
    catalog: _Catalog, now: int,
) -> str:
    """Move one member's migration grant to the migration's deadline: "moved", "already", or "" (paid,
    ended by the creator, none). One read of the member's partition where the store offers it."""
    state = stores.states.load(member_id) if stores.states is not None else None
    if state is not None:
        records, grants = state.subscriptions, state.grants
    else:
        records, grants = stores.subscriptions.for_member(member_id), stores.grants.for_member(member_id)
    grant_id = migration_grant_id(migration.id, member_id)
    grant = next((g for g in grants if g.grant_id == grant_id), None)
    if grant is None or grant.ended_reason:
        return ""  # ended by the creator (DELETE /admin/grants/{id}): not brought back
    if grant_end(grant) == migration.deadline:
        return "already"
    facts: dict[str, Any] = {"plans": catalog.plans, "communities": catalog.communities, "records": records, "grants": grants}
    if _has_paid(stores, member_id, {community.id}, now, facts):
        return ""
    fresh = moved_grant(grant, migration.deadline)
    stores.grants.save(fresh)
    if state is not None:
        try:
            # The end moves, not the state: usually no work for the dispatcher, only the sweep's due time.
            refresh_member(stores, queue, member_id, now, sweep_now=False,
                           state=replace(state, grants=[fresh if g.grant_id == grant_id else g for g in grants]))
            return "moved"
        except ConcurrentUpdateError:
            pass  # a billing event landed meanwhile: derive again from what is stored
    _refresh(stores, queue, member_id, now)
    return "moved"


# --- the member's personal link --------------------------------------------------------------


def open_offer(stores: Stores, token: str, old_session_id: str | None, now: int) -> tuple[WebSession, str]:
    """Open an announcement's personal link: a fresh session for the member it was made for (their
    account is already known: no second connection step), and the offer's plan to show."""
    link = stores.member_links.get_link(hashlib.sha256(token.encode()).hexdigest()) if stores.member_links else None
    if link is None or link.purpose != OFFER or link.expires_at <= now:
        raise NotFoundError("this offer link has expired or is not valid: open the join link the creator shared instead")
    plan = stores.catalog.get_plan(link.plan_id)
    if plan is not None and _has_paid(stores, link.member_id, {g.community_id for g in plan.grants}, now):
        # Once the offer is taken, the link no longer signs anybody in (it may have been forwarded):
        # the member manages their membership by connecting their account, as every member does.
        raise ConflictError("you have already taken this offer: open the join link and connect your account to manage it")
    return fresh_session(stores, link.member_id, old_session_id, now), link.plan_id


# What the creator gave that settles a migrated member in the status's ``paid`` (not the migration grant).
_SETTLED_GIVEN = frozenset({SOURCE_MANUAL, SOURCE_ACCESS_CODE})


def _has_paid(
    stores: Stores, member_id: str, community_ids: set[str], now: int, facts: dict[str, Any] | None = None,
    given: frozenset[str] = frozenset(),
) -> bool:
    """A paid grant gives one of the communities now; ``given``: grant sources the creator gave that count too."""
    known = dict(facts) if facts else {}
    if "records" not in known:
        view = current_view(stores, member_id, now)
        known.update(records=view.records, grants=view.grants)
    known["grants"] = [g for g in known["grants"] if not g.given or g.source in given]
    paid = current_view(stores, member_id, now, **known)
    return any(e.community_id in community_ids and e.state.gives_access for e in paid.entitlements)
