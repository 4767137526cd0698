"""In-memory fakes for the ports: they record what happened so tests can assert outcomes."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from membergate.domain.funnel import FunnelCount
from membergate.domain.grants import OneTimeGrant
from membergate.domain.billing import SubscriptionRecord, SubscriptionSnapshot
from membergate.domain.stripe_events import read_back_snapshot
from membergate.domain.errors import ConcurrentUpdateError, ConflictError, NotFoundError, PermanentError
from membergate.domain.model import (
    AccessRecord,
    CheckoutAttempt,
    Community,
    Entitlement,
    Identity,
    LedgerEntry,
    Member,
    MemberOrigin,
    MessageKey,
    MessageRecord,
    MessageStatus,
    OAuthTokens,
    Plan,
    Platform,
)
from membergate.domain.access import Capability, Presence, PresenceState
from membergate.domain.kpis import DaySnapshot
from membergate.ports import AccessWork, CheckoutSession, ScheduledChange, SnapshotState, Stores, WebSession
from .holds import FakeHolds


class FakeCatalog:
    def __init__(self) -> None:
        self.communities: dict[str, Community] = {}
        self.plans: dict[str, Plan] = {}
        self.prices: dict[str, str] = {}

    def add_community(self, community: Community) -> None:
        for other in self.communities.values():
            if (other.platform, other.external_id) == (community.platform, community.external_id):
                raise ConflictError(f"this {community.platform.value} place is already registered as community {other.id}")
        self.communities[community.id] = community

    def get_community(self, community_id: str) -> Community | None:
        return self.communities.get(community_id)

    def list_communities(self) -> list[Community]:
        return list(self.communities.values())

    def add_plan(self, plan: Plan) -> None:
        for price in plan.stripe_price_ids:
            if price in self.prices:
                raise ConflictError(f"price {price} is already sold by plan {self.prices[price]}")
        for price in plan.stripe_price_ids:
            self.prices[price] = plan.id
        self.plans[plan.id] = plan

    def get_plan(self, plan_id: str) -> Plan | None:
        return self.plans.get(plan_id)

    def list_plans(self) -> list[Plan]:
        return list(self.plans.values())

    def plan_for_price(self, price_id: str) -> Plan | None:
        plan_id = self.prices.get(price_id)
        return self.plans.get(plan_id) if plan_id else None

    def update_plan(self, plan: Plan) -> None:
        stored = self.plans[plan.id]
        self.plans[plan.id] = replace(
            stored, name=plan.name, grace_days=plan.grace_days, on_grace_end=plan.on_grace_end, archived_at=plan.archived_at,
            checkout=plan.checkout, renewal_notice_days=plan.renewal_notice_days,
            trial_notice_days=plan.trial_notice_days, welcome_message=plan.welcome_message,
            dispute_policy=plan.dispute_policy, downgrade=plan.downgrade,
        )

    def set_plan_prices(self, plan_id: str, price_ids: tuple[str, ...]) -> None:
        for price in price_ids:
            if self.prices.get(price, plan_id) != plan_id:
                raise ConflictError(f"price {price} is already sold by plan {self.prices[price]}")
        for price in price_ids:
            self.prices[price] = plan_id
        self.plans[plan_id] = replace(self.plans[plan_id], stripe_price_ids=price_ids)


class FakeMembers:
    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.by_customer: dict[str, str] = {}
        self.by_identity: dict[tuple[Platform, str], str] = {}
        self.credentials: dict[tuple[str, Platform], bytes] = {}

    def get(self, member_id: str) -> Member | None:
        return self.members.get(member_id)

    def create(self, member: Member) -> None:
        if member.id in self.members:
            raise ConflictError(f"member {member.id} exists")
        self.members[member.id] = member

    def find_by_customer(self, customer_id: str) -> Member | None:
        member_id = self.by_customer.get(customer_id)
        return self.members.get(member_id) if member_id else None

    def member_id_for_customer(self, customer_id: str) -> str | None:
        return self.by_customer.get(customer_id)

    def find_by_identity(self, platform: Platform, external_id: str) -> Member | None:
        member_id = self.by_identity.get((platform, external_id))
        return self.members.get(member_id) if member_id else None

    def attach_customer(self, member_id: str, customer_id: str, known: Member | None = None) -> Member:
        owner = self.by_customer.setdefault(customer_id, member_id)
        if owner != member_id:
            raise ConflictError(f"customer {customer_id} belongs to {owner}")
        member = self.members[member_id]
        if member.stripe_customer_id is None:
            member = replace(member, stripe_customer_id=customer_id)
            self.members[member_id] = member
        return member

    def create_for_customer(self, customer_id: str, member_id: str, now: int) -> Member:
        owner = self.by_customer.setdefault(customer_id, member_id)
        if owner == member_id and member_id not in self.members:
            self.members[member_id] = Member(member_id, now, stripe_customer_id=customer_id, origin=MemberOrigin.STRIPE)
        return self.members[owner]

    def bind_identity(self, member_id: str, identity: Identity, sealed_credentials: bytes | None = None) -> None:
        owner = self.by_identity.setdefault((identity.platform, identity.external_id), member_id)
        if owner != member_id:
            raise ConflictError(f"{identity.platform.value} {identity.external_id} belongs to {owner}")
        self.members[member_id] = self.members[member_id].with_identity(identity)
        if sealed_credentials is not None:
            self.credentials[(member_id, identity.platform)] = sealed_credentials

    def replace_identity(self, member_id: str, identity: Identity) -> Identity | None:
        if member_id not in self.members:
            raise NotFoundError(f"member {member_id} does not exist")
        old = self.members[member_id].identity(identity.platform)
        if old == identity.external_id:
            return identity
        self.bind_identity(member_id, identity)
        if old is not None:
            self.by_identity.pop((identity.platform, old), None)
            self.credentials.pop((member_id, identity.platform), None)
        return Identity(identity.platform, old) if old is not None else None

    def save_credentials(self, member_id: str, platform: Platform, sealed: bytes) -> None:
        self.credentials[(member_id, platform)] = sealed

    def load_credentials(self, member_id: str, platform: Platform) -> bytes | None:
        return self.credentials.get((member_id, platform))

    def page(self, limit: int, after: str | None = None) -> tuple[list[Member], str | None]:
        ids = sorted(i for i in self.members if after is None or i > after)
        return [self.members[i] for i in ids[:limit]], (ids[limit - 1] if len(ids) > limit else None)


class FakeSubscriptions:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], SubscriptionRecord] = {}

    def get(self, member_id: str, subscription_id: str) -> SubscriptionRecord | None:
        return self.records.get((member_id, subscription_id))

    def save(self, record: SubscriptionRecord) -> SubscriptionRecord:
        key = (record.member_id, record.subscription_id)
        stored = self.records.get(key)
        if (stored.version if stored else None) != record.version:
            raise ConcurrentUpdateError(f"{record.subscription_id} changed")
        saved = replace(record, version=(record.version or 0) + 1)
        self.records[key] = saved
        return saved

    def for_member(self, member_id: str) -> list[SubscriptionRecord]:
        return [r for (m, _), r in sorted(self.records.items()) if m == member_id]

    def all_records(self) -> Iterator[SubscriptionRecord]:
        return iter(list(self.records.values()))


class FakeEntitlements:
    def __init__(self) -> None:
        self.projections: dict[str, list[Entitlement]] = {}
        self.revisions: dict[str, str] = {}
        self.due_at: dict[str, int] = {}

    def save(self, member_id: str, entitlements: Sequence[Entitlement], next_due_at: int | None, *,
             expected_revision: str | None = None) -> None:
        current = self.revisions.get(member_id, "")
        if expected_revision is not None and expected_revision != current:
            raise ConcurrentUpdateError(f"entitlements of {member_id} changed while being derived")
        self.revisions[member_id] = str(int(current or 0) + 1)
        self.projections[member_id] = list(entitlements)
        if next_due_at is None:
            self.due_at.pop(member_id, None)
        else:
            self.due_at[member_id] = next_due_at

    def for_member(self, member_id: str) -> list[Entitlement]:
        return list(self.projections.get(member_id, []))

    def read(self, member_id: str) -> tuple[list[Entitlement], str]:
        return self.for_member(member_id), self.revisions.get(member_id, "")

    def due(self, now: int, limit: int) -> list[str]:
        return [m for m, t in sorted(self.due_at.items(), key=lambda kv: kv[1]) if t <= now][:limit]


class FakeAccess:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], AccessRecord] = {}

    def get(self, member_id: str, community_id: str) -> AccessRecord | None:
        return self.records.get((member_id, community_id))

    def save(self, record: AccessRecord) -> None:
        self.records[(record.member_id, record.community_id)] = record

    def for_member(self, member_id: str) -> list[AccessRecord]:
        return [r for (m, _), r in sorted(self.records.items()) if m == member_id]


class FakeMessages:
    def __init__(self) -> None:
        self.items: dict[MessageKey, tuple[MessageStatus, str]] = {}
        self.at: dict[MessageKey, int] = {}
        self.claimed: dict[MessageKey, int] = {}

    def claim(self, key: MessageKey, now: int) -> bool:
        if key in self.items:
            return False
        self.items[key] = (MessageStatus.QUEUED, "")
        self.at[key] = now
        self.claimed[key] = now
        return True

    def claimed_at(self, key: MessageKey) -> int | None:
        return self.claimed.get(key)

    def finish(self, key: MessageKey, status: MessageStatus, reason: str, now: int) -> None:
        self.items[key] = (MessageStatus(status), reason)
        self.at[key] = now

    def status(self, key: MessageKey) -> MessageStatus | None:
        found = self.items.get(key)
        return found[0] if found else None

    def for_member(self, member_id: str) -> list[MessageRecord]:
        return [
            MessageRecord(key.kind, key.period, status, reason, self.at.get(key, 0))
            for key, (status, reason) in self.items.items()
            if key.member_id == member_id
        ]


class FakeCheckouts:
    def __init__(self) -> None:
        self.attempts: dict[tuple[str, str], CheckoutAttempt] = {}

    def get_attempt(self, member_id: str, plan_id: str) -> CheckoutAttempt | None:
        return self.attempts.get((member_id, plan_id))

    def save_attempt(self, attempt: CheckoutAttempt) -> None:
        self.attempts[(attempt.member_id, attempt.plan_id)] = attempt


class FakeLedger:
    """Both the processor's LedgerRepository and the intake's EventLedger."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self.calls = 0

    def get(self, event_id: str) -> LedgerEntry | None:
        return self.entries.get(event_id)

    def mark(self, entry: LedgerEntry, now: int) -> None:
        stored = self.entries.get(entry.event_id, entry)
        self.entries[entry.event_id] = replace(stored, status=entry.status, detail=entry.detail)

    def recent(self, now: int, limit: int) -> list[LedgerEntry]:
        return sorted(self.entries.values(), key=lambda e: -e.received_at)[:limit]

    def record_received(self, entry: LedgerEntry) -> str | None:
        self.calls += 1
        if entry.event_id in self.entries:
            return self.entries[entry.event_id].status
        self.entries[entry.event_id] = entry
        return None

    def record_ignored(self, entry: LedgerEntry) -> None:
        self.calls += 1
        self.entries[entry.event_id] = replace(entry, status="ignored", detail="not handled")


class FakeSessions:
    def __init__(self) -> None:
        self.sessions: dict[str, WebSession] = {}
        self.states: dict[str, tuple[str, str | None, int]] = {}
        self.counters: dict[str, int] = {}
        self.claims: dict[str, tuple[str, int]] = {}

    def create_session(self, session_id: str, expires_at: int) -> WebSession:
        session = WebSession(session_id, None, expires_at)
        self.sessions[session_id] = session
        return session

    def get_session(self, session_id: str, now: int) -> WebSession | None:
        session = self.sessions.get(session_id)
        return session if session and session.expires_at > now else None

    def set_session_member(self, session_id: str, member_id: str) -> None:
        self.sessions[session_id] = replace(self.sessions[session_id], member_id=member_id)

    def delete_session(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)

    def put_oauth_state(self, state: str, session_id: str, plan_id: str | None, expires_at: int) -> None:
        self.states[state] = (session_id, plan_id, expires_at)

    def take_oauth_state(self, state: str, now: int) -> tuple[str, str | None] | None:
        found = self.states.pop(state, None)
        if found is None or found[2] <= now:
            return None
        return found[0], found[1]

    def put_claim(self, token: str, member_id: str, expires_at: int) -> None:
        self.claims[token] = (member_id, expires_at)

    def get_claim(self, token: str, now: int) -> str | None:
        found = self.claims.get(token)
        return found[0] if found and found[1] > now else None

    def hit(self, key: str, window_start: int, expires_at: int) -> int:
        full = f"{key}#{window_start}"
        self.counters[full] = self.counters.get(full, 0) + 1
        return self.counters[full]


class FakeGrants:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], OneTimeGrant] = {}

    def get(self, member_id: str, grant_id: str) -> OneTimeGrant | None:
        return self.items.get((member_id, grant_id))

    def save(self, grant: OneTimeGrant) -> None:
        self.items[(grant.member_id, grant.grant_id)] = grant

    def for_member(self, member_id: str) -> list[OneTimeGrant]:
        return [g for (m, _), g in sorted(self.items.items()) if m == member_id]

    def find_by_payment_intent(self, payment_intent: str) -> OneTimeGrant | None:
        return next((g for g in self.items.values() if g.payment_intent == payment_intent), None)

    def all_paid(self):
        return [g for g in self.items.values() if not g.given]


def fake_stores() -> Stores:
    return Stores(
        catalog=FakeCatalog(),
        members=FakeMembers(),
        subscriptions=FakeSubscriptions(),
        entitlements=FakeEntitlements(),
        access=FakeAccess(),
        messages=FakeMessages(),
        checkouts=FakeCheckouts(),
        ledger=FakeLedger(),
        sessions=FakeSessions(),
        grants=FakeGrants(),
        funnel=FakeFunnel(),
        kpi_snapshots=FakeKpiSnapshots(),
        holds=FakeHolds(),
    )


class FakeQueue:
    """Access work queue and the billing processor's hand-over in one."""

    def __init__(self) -> None:
        self.work: list[tuple[AccessWork, int]] = []
        self.billing: list[tuple[str, str, str | None]] = []
        self.wrong_mode: list[tuple[str, str]] = []

    def send(self, work: Iterable[AccessWork], delay_seconds: int = 0) -> None:
        self.work.extend((w, delay_seconds) for w in work)

    def hand_over(self, event_id: str, body: str, correlation_id: str | None) -> None:
        self.billing.append((event_id, body, correlation_id))

    def report_wrong_mode(self, event_id: str, event_type: str, correlation_id: str | None) -> None:
        self.wrong_mode.append((event_id, event_type))

    def take(self) -> list[AccessWork]:
        out = [w for w, _ in self.work]
        self.work.clear()
        return out


class FakeBilling:
    def __init__(self) -> None:
        self.customers: dict[str, str] = {}
        self.sessions: dict[str, CheckoutSession] = {}
        self.session_params: dict[str, dict] = {}
        self.cancelled: list[str] = []
        self.cancel_keys: list[tuple[str, str]] = []  # every cancel call: (subscription, idempotency key)
        self.remote: dict[str, dict] = {}  # what Stripe would answer to a subscription retrieve
        self.fetched: list[str] = []
        self.portal_sessions: list[tuple[str, str, str]] = []  # (customer, return_url, url)
        self.fail_with: Exception | None = None
        self.switches: list[dict] = []  # switch_subscription_price calls (idempotent by params)
        self.scheduled: list[dict] = []  # schedule_price_change calls (idempotent by params)
        self.releases: list[dict] = []  # release_schedule calls, every one
        self.period_ends: dict[str, int] = {}  # subscription id -> its current period end
        self.expired: list[str] = []
        self.session_status: dict[str, str] = {}  # what expire_checkout_session finds
        self.prices: dict = {}  # price id -> PriceInfo, what describe_prices answers
        self.price_lookups: list[list[str]] = []
        self._ids = itertools.count(1)

    def create_customer(self, member_id: str, idempotency_key: str) -> str:
        if idempotency_key not in self.customers:
            self.customers[idempotency_key] = f"cus_fake{next(self._ids)}"
        return self.customers[idempotency_key]

    def create_checkout_session(self, **params) -> CheckoutSession:
        if self.fail_with:
            raise self.fail_with
        key = params["idempotency_key"]
        if key in self.sessions:
            if self.session_params[key] != params:
                raise PermanentError("idempotency key reused with other parameters", "stripe_idempotency_error")
            return self.sessions[key]
        n = next(self._ids)
        session = CheckoutSession(f"cs_test_fake{n}", f"https://checkout.test/cs_test_fake{n}", params["expires_at"])
        self.sessions[key] = session
        self.session_params[key] = params
        return session

    def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> None:
        if self.fail_with:
            raise self.fail_with
        self.cancel_keys.append((subscription_id, idempotency_key))
        if subscription_id not in self.cancelled:
            self.cancelled.append(subscription_id)

    def switch_subscription_price(self, **params) -> None:
        if self.fail_with:
            raise self.fail_with
        if params not in self.switches:
            self.switches.append(params)

    def schedule_price_change(self, **params) -> ScheduledChange:
        """Records the call; the change is due at the subscription's period end as ``remote`` or
        ``period_ends`` says (Stripe's answer), else a fixed time."""
        if self.fail_with:
            raise self.fail_with
        if params not in self.scheduled:
            self.scheduled.append(params)
        return ScheduledChange(f"sub_sched_{params['subscription_id']}",
                               self.period_ends.get(params["subscription_id"], 1_900_000_000))

    def release_schedule(self, **params) -> None:
        if self.fail_with:
            raise self.fail_with
        self.releases.append(params)

    def expire_checkout_session(self, session_id: str) -> str:
        self.expired.append(session_id)
        return self.session_status.get(session_id, "expired")

    def fetch_subscription(self, subscription_id: str, read_at: int) -> SubscriptionSnapshot | None:
        if self.fail_with:
            raise self.fail_with
        self.fetched.append(subscription_id)
        # Parsed as the Stripe adapter parses its answer: tests give the remote side Stripe's shape.
        remote = self.remote.get(subscription_id)
        return read_back_snapshot(remote, read_at) if remote is not None else None

    def describe_prices(self, price_ids) -> list:
        if self.fail_with:
            raise self.fail_with
        self.price_lookups.append(list(price_ids))
        return [self.prices[p] for p in price_ids if p in self.prices]

    def create_portal_session(self, customer_id: str, return_url: str) -> str:
        if self.fail_with:
            raise self.fail_with
        url = f"https://billing.test/p/session/bps_fake{next(self._ids)}"
        self.portal_sessions.append((customer_id, return_url, url))
        return url


@dataclass
class FakeGuild:
    members: dict[str, set[str]] = field(default_factory=dict)


class FakeConnector:
    """A Discord-like community behind the CommunityConnector port: members with roles, DMs,
    injectable failures, and every call counted (so tests can assert requests not sent)."""

    platform = Platform.DISCORD
    capabilities = frozenset(
        {Capability.CHECK_MEMBER, Capability.ADD_MEMBER, Capability.ROLES, Capability.REMOVE_MEMBER, Capability.MESSAGE}
    )

    def __init__(self) -> None:
        self.guilds: dict[str, FakeGuild] = {}
        self.dms: list[tuple[str, str]] = []
        self.closed_dms: set[str] = set()
        self.actions: list[tuple] = []
        self.calls: list[str] = []
        self.fail_next: list[Exception] = []
        self.fail_on: dict[str, list[Exception]] = {}  # call name -> failures for its next calls
        self.message_keys: list[str] = []
        # Keys whose first send is accepted but answered with this error (a lost answer).
        self.lose_answer_for: dict[str, Exception] = {}

    def _fail(self, call: str) -> None:
        self.calls.append(call)
        if self.fail_on.get(call):
            raise self.fail_on[call].pop(0)
        if self.fail_next:
            raise self.fail_next.pop(0)

    def guild(self, guild_id: str) -> FakeGuild:
        return self.guilds.setdefault(guild_id, FakeGuild())

    def roles_of(self, guild_id: str, user_id: str) -> set[str] | None:
        return self.guild(guild_id).members.get(user_id)

    def check_member(self, community: Community, user: str) -> Presence:
        self._fail("check_member")
        roles = self.guild(community.external_id).members.get(user)
        return Presence(PresenceState.ABSENT) if roles is None else Presence(PresenceState.PRESENT, frozenset(roles))

    def add_member(self, community: Community, user: str, roles: Sequence[str], credential: str | None) -> None:
        self._fail("add_member")
        if not credential:
            raise PermanentError("no token", "discord_authorization_expired")
        self.guild(community.external_id).members.setdefault(user, set()).update(roles)
        self.actions.append(("add_member", community.external_id, user, tuple(roles)))

    def grant_role(self, community: Community, user: str, role_id: str) -> None:
        self._fail("grant_role")
        self.guild(community.external_id).members.setdefault(user, set()).add(role_id)
        self.actions.append(("add_role", community.external_id, user, role_id))

    def revoke_role(self, community: Community, user: str, role_id: str) -> None:
        self._fail("revoke_role")
        self.guild(community.external_id).members.get(user, set()).discard(role_id)
        self.actions.append(("remove_role", community.external_id, user, role_id))

    def remove_member(self, community: Community, user: str) -> None:
        self._fail("remove_member")
        self.guild(community.external_id).members.pop(user, None)
        self.actions.append(("kick", community.external_id, user))

    def create_invite(self, community: Community, user: str, now: int) -> str:
        raise PermanentError("not supported", "unsupported_action")

    def approve_join(self, community: Community, user: str) -> None:
        raise PermanentError("not supported", "unsupported_action")

    def decline_join(self, community: Community, user: str) -> None:
        raise PermanentError("not supported", "unsupported_action")

    def send_message(self, user: str, text: str, idempotency_key: str) -> None:
        self._fail("send_message")
        if user in self.closed_dms:
            raise PermanentError("cannot send messages to this user", "dms_closed")
        if idempotency_key in self.message_keys:
            return  # like Discord's enforce_nonce: the same key never posts twice
        self.message_keys.append(idempotency_key)
        self.dms.append((user, text))
        self.actions.append(("dm", user))
        lost = self.lose_answer_for.pop(idempotency_key, None)
        if lost is not None:
            raise lost


class FakeIdentity:
    def __init__(self) -> None:
        self.codes: dict[str, str] = {}  # code -> discord user id
        self.handles: dict[str, str] = {}  # discord user id -> handle GET /users/@me would name
        self.refreshed = 0

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        return f"https://discord.test/oauth2/authorize?state={state}&redirect_uri={redirect_uri}"

    def exchange_code(self, code: str, redirect_uri: str, now: int) -> OAuthTokens:
        if code not in self.codes:
            raise PermanentError("invalid code", "invalid_grant")
        return OAuthTokens(f"access-{self.codes[code]}", f"refresh-{self.codes[code]}", now + 604_800, "identify guilds.join")

    def refresh(self, refresh_token: str, now: int) -> OAuthTokens:
        if not refresh_token.startswith("refresh-"):
            raise PermanentError("invalid grant", "discord_authorization_expired")
        self.refreshed += 1
        user = refresh_token.removeprefix("refresh-")
        return OAuthTokens(f"access2-{user}", refresh_token, now + 604_800, "identify guilds.join")

    def user_id(self, access_token: str) -> str:
        return access_token.split("-", 1)[1]

    def account(self, access_token: str) -> Identity:
        user = self.user_id(access_token)
        return Identity(Platform.DISCORD, user, self.handles.get(user))


class FakeCipher:
    def seal(self, plaintext: bytes) -> bytes:
        return b"sealed:" + bytes(reversed(plaintext))

    def open(self, sealed: bytes) -> bytes:
        assert sealed.startswith(b"sealed:")
        return bytes(reversed(sealed[len(b"sealed:") :]))



class FakeFunnel:
    """Funnel counters in memory, days in UTC (or the time zone given)."""

    def __init__(self, time_zone: str = "UTC") -> None:
        self.time_zone = time_zone
        self.hits: dict[tuple[str, date, str], int] = {}

    def day_of(self, at: int) -> date:
        from membergate.domain.kpis import day_of

        return day_of(at, self.time_zone)

    def count(self, plan_id: str, step: str, at: int) -> None:
        key = (plan_id, self.day_of(at), step)
        self.hits[key] = self.hits.get(key, 0) + 1

    def counts(self, start: date, end: date) -> list[FunnelCount]:
        return [FunnelCount(p, d, s, n) for (p, d, s), n in sorted(self.hits.items()) if start <= d <= end]


class FakeKpiSnapshots:
    """Daily KPI snapshots in memory; records what was read and written so tests can see the store used."""

    def __init__(self, time_zone: str = "UTC") -> None:
        self.time_zone = time_zone
        self.snapshots: dict[date, DaySnapshot] = {}
        self.through: date | None = None
        self.dirty: set[str] = set()
        self.reads: list[tuple[date, date]] = []

    def day_of(self, at: int) -> date:
        from membergate.domain.kpis import day_of

        return day_of(at, self.time_zone)

    def mark_dirty(self, day: date, why: str) -> None:
        self.dirty.add(f"{day.isoformat()}#{why}")

    def state(self) -> SnapshotState:
        return SnapshotState(self.through, frozenset(self.dirty))

    def read(self, start: date, end: date) -> list[DaySnapshot]:
        self.reads.append((start, end))
        return [s for d, s in sorted(self.snapshots.items()) if start <= d <= end]

    def write(self, snapshots: Sequence[DaySnapshot], through: date, seen: frozenset[str]) -> None:
        self.snapshots.update({s.day: s for s in snapshots})
        self.through = through
        self.dirty -= seen
