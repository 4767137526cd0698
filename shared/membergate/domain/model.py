"""The Membergate domain model: what a creator sells, who buys it, and what that entitles them to."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum


class Platform(str, Enum):
    DISCORD = "discord"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"


class MemberOrigin(str, Enum):
    """How a member came to exist."""

    JOIN = "join"  # bound an identity on the join page
    STRIPE = "stripe"  # a subscription made outside Membergate's checkout
    MIGRATION = "migration"  # imported from a free community moving to paid (services/migration.py)


class WorkKind(str, Enum):
    """What an access work item asks the dispatcher to do."""

    CONVERGE = "converge"  # bring access in line with the entitlements (skips what is known done)
    RESYNC = "resync"  # the same, but re-reads the platform and forgets a remembered refusal
    NOTIFY = "notify"  # send one member-facing message


class LedgerStatus(str, Enum):
    """Where a Stripe event stands in the ledger."""

    RECEIVED = "received"  # acknowledged by the intake; not applied yet (or applying, or retrying)
    # Applied, but the access work it produced could not be queued: the retry converges every
    # place of the member, since the saved projection no longer shows what changed.
    ACCESS_UNSENT = "access_unsent"
    PROCESSED = "processed"
    IGNORED = "ignored"  # a type or a price Membergate does not track
    FAILED = "failed"  # unusable as received; retrying the same bytes cannot help


TERMINAL_LEDGER_STATUSES = frozenset({LedgerStatus.PROCESSED, LedgerStatus.IGNORED, LedgerStatus.FAILED})


class MessageStatus(str, Enum):
    QUEUED = "queued"  # claimed, not yet delivered
    RETRYING = "retrying"  # a transient failure; queued again with backoff
    SENT = "sent"
    FAILED = "failed"  # the platform refused for good; see reason

    @property
    def final(self) -> bool:
        return self in (MessageStatus.SENT, MessageStatus.FAILED)


class OnRevoke(str, Enum):
    REMOVE_ROLE = "remove_role"
    KICK = "kick"


class OnGraceEnd(str, Enum):
    # Default: cancel the Stripe subscription so nobody pays for access they lost.
    CANCEL = "cancel"
    # The creator leaves it to Stripe's own retries; the member is told attempts continue.
    KEEP_RETRYING = "keep_retrying"


class PlanKind(str, Enum):
    SUBSCRIPTION = "subscription"  # recurring: access while the subscription is paid
    PASS = "pass"  # one payment, access for the plan's access_days (a workshop, a 30-day challenge)
    LIFETIME = "lifetime"  # one payment, access with no end (a founder price)

    @property
    def one_time(self) -> bool:
        return self is not PlanKind.SUBSCRIPTION


class EntitlementState(str, Enum):
    PENDING = "pending"
    ACTIVE = "active"
    GRACE = "grace"
    ENDED = "ended"

    @property
    def gives_access(self) -> bool:
        return self in (EntitlementState.ACTIVE, EntitlementState.GRACE)


class AccessState(str, Enum):
    """What Membergate last did (or could not do) about a member in a community."""

    PENDING = "pending"  # work queued, not yet applied
    AWAITING_IDENTITY = "awaiting_identity"  # entitled, but no chat account bound yet
    GRANTED = "granted"
    REVOKED = "revoked"
    NONE = "none"  # never had access and is not entitled: nothing to do
    RETRYING = "retrying"  # a transient failure; the work is queued again with backoff
    INVITED = "invited"  # a personal invite was sent; the member has not come in yet
    FAILED = "failed"  # cannot succeed without someone fixing something; see reason


class CheckoutGate(str, Enum):
    """Whether the Checkout Session that created a subscription has actually been paid.

    Lattice: UNSEEN < AWAITING < (PAID | FAILED), so any delivery order ends in the same place.
    """

    UNSEEN = "unseen"
    AWAITING = "awaiting"
    PAID = "paid"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return {"unseen": 0, "awaiting": 1, "paid": 2, "failed": 2}[self.value]


@dataclass(frozen=True)
class Community:
    id: str
    platform: Platform
    name: str
    # The place on its platform: Discord guild id, Telegram chat id, WhatsApp group id.
    external_id: str
    role_id: str | None
    on_revoke: OnRevoke
    locale: str
    created_at: int
    # WhatsApp only: how membership is managed (official | manual | gateway, domain/whatsapp.py)
    # and, in manual and official mode, the group's invite link the member receives.
    mode: str | None = None
    invite_link: str | None = None
    # Archived: no new plan may grant it; plans already granting it keep working until archived too.
    archived_at: int | None = None

    @property
    def guild_id(self) -> str | None:
        """The Discord server id (the admin API's name for a Discord community's place)."""
        return self.external_id if self.platform is Platform.DISCORD else None


@dataclass(frozen=True)
class PlanGrant:
    community_id: str
    role_id: str | None = None


@dataclass(frozen=True)
class CheckoutOptions:
    """What a plan asks of Stripe Checkout beyond its prices (Stripe's own parameter names)."""

    allow_promotion_codes: bool = True  # the member may enter a promotion code
    automatic_tax: bool = False  # Stripe Tax, where the deployment turned it on (STRIPE_TAX)
    phone_number_collection: bool = False  # Checkout asks for a phone number (the email it always asks)


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    stripe_price_ids: tuple[str, ...]
    grants: tuple[PlanGrant, ...]
    grace_days: int
    on_grace_end: OnGraceEnd
    created_at: int
    kind: PlanKind = PlanKind.SUBSCRIPTION
    access_days: int | None = None  # a pass's length; None for subscriptions and lifetime
    description: str = ""  # the creator's words on what is included, shown on the join page
    # Archived: the join link answers 410 and no new checkout starts; members keep their grants.
    archived_at: int | None = None
    checkout: CheckoutOptions = CheckoutOptions()
    # Days before each renewal the member is told it is coming (None: no notice).
    renewal_notice_days: int | None = 7
    # Days before a free trial ends the member is told the first charge is coming (None: none).
    trial_notice_days: int | None = 3
    # The creator's welcome, sent once on a member's first access ("" : the default in their language).
    welcome_message: str = ""
    # How many members may ever buy it (a founder price); None: no limit (domain/seats.py).
    seats: int | None = None
    # Free trial days Checkout gives a member whose identities never had a trial (domain/trials.py).
    trial_days: int | None = None
    # What a dispute on a payment for this plan does: "revoke", "keep", or "" for the deployment's
    # DISPUTE_POLICY (domain/grants.py::dispute_policy_for).
    dispute_policy: str = ""
    # When a member leaving this plan for a cheaper tier of its offer moves (domain/tiers.py): "immediate"
    # (prorated, Stripe's default) or "period_end" (they keep what they paid for until the period ends).
    # On the plan being left, because it is what the member paid for that the creator chooses to honour.
    downgrade: str = "immediate"

    @property
    def grace_seconds(self) -> int:
        return self.grace_days * 86_400


@dataclass(frozen=True)
class Identity:
    """A member's account on one platform: Discord user id, Telegram user id, WhatsApp E.164 phone."""

    platform: Platform
    external_id: str
    # How the member knows this account ("Alice (@alice)", "@bob"), shown on their pages instead
    # of the raw id; not part of the identity (a renamed account is the same account).
    handle: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Member:
    id: str
    created_at: int
    stripe_customer_id: str | None = None
    # At most one per platform; each (platform, external id) belongs to one member.
    identities: tuple[Identity, ...] = ()
    origin: MemberOrigin = MemberOrigin.JOIN

    def identity(self, platform: Platform) -> str | None:
        """This member's external id on ``platform``, or None when not bound."""
        for identity in self.identities:
            if identity.platform is platform:
                return identity.external_id
        return None

    def handle(self, platform: Platform) -> str | None:
        """How the member's account on ``platform`` is shown to them, when known."""
        return next((i.handle for i in self.identities if i.platform is platform), None)

    def with_identity(self, identity: Identity) -> Member:
        others = tuple(i for i in self.identities if i.platform is not identity.platform)
        return replace(self, identities=tuple(sorted(others + (identity,), key=lambda i: i.platform.value)))


@dataclass(frozen=True)
class PriceLine:
    """One subscription item, as much as billing and KPIs need. Amounts in minor units."""

    price_id: str
    currency: str
    unit_amount: int | None
    quantity: int
    interval: str | None
    interval_count: int


@dataclass(frozen=True)
class Entitlement:
    plan_id: str
    community_id: str
    role_id: str | None
    state: EntitlementState
    until: int | None  # epoch seconds; when this state ends unless something changes
    reason: str = ""  # why ended/pending, for messages and the creator's view
    # When it ended, as best known (0: unknown): of two ended sources, the later one's reason is
    # the one a removal tells. Not compared: the projection does not store it.
    ended_at: int = field(default=0, compare=False)


@dataclass(frozen=True)
class AccessRecord:
    member_id: str
    community_id: str
    state: AccessState
    reason: str = ""
    roles: tuple[str, ...] = ()
    updated_at: int = 0
    attempts: int = 0
    granted_at: int = 0  # when the current (or last) access episode began
    # A platform refusal that retrying cannot fix (e.g. missing_permissions): remembered so no
    # further request is sent for this member here until the creator resyncs after fixing it.
    refusal: str = ""


@dataclass(frozen=True)
class OAuthTokens:
    access_token: str
    refresh_token: str | None
    expires_at: int
    scope: str = ""


@dataclass(frozen=True)
class CheckoutAttempt:
    member_id: str
    plan_id: str
    attempt: int
    price_id: str = ""
    session_id: str | None = None
    url: str | None = None
    expires_at: int = 0


@dataclass(frozen=True)
class MessageKey:
    """A member-facing message is sent once per (member, kind, period)."""

    member_id: str
    kind: str
    period: str

    def __str__(self) -> str:
        return f"{self.kind}#{self.period}"


@dataclass(frozen=True)
class MessageRecord:
    """What became of one member-facing message (shown to the creator)."""

    kind: str
    period: str
    status: MessageStatus
    reason: str = ""
    at: int = 0


@dataclass(frozen=True)
class LedgerEntry:
    event_id: str
    type: str
    status: str
    created: int
    received_at: int
    customer_id: str | None = None
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)
