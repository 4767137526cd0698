"""The Membergate domain model: what a creator sells, who buys it, and what that entitles them to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Platform(str, Enum):
    DISCORD = "discord"


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
    guild_id: str
    role_id: str | None
    on_revoke: OnRevoke
    locale: str
    created_at: int


@dataclass(frozen=True)
class PlanGrant:
    community_id: str
    role_id: str | None = None


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

    @property
    def grace_seconds(self) -> int:
        return self.grace_days * 86_400


@dataclass(frozen=True)
class Member:
    id: str
    created_at: int
    stripe_customer_id: str | None = None
    discord_user_id: str | None = None
    # How the member came to exist: "join" (bound an identity on the join page) or
    # "stripe" (a subscription made outside Membergate's checkout).
    origin: str = "join"


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
class LedgerEntry:
    event_id: str
    type: str
    status: str
    created: int
    received_at: int
    customer_id: str | None = None
    detail: str = ""
    extra: dict = field(default_factory=dict)
