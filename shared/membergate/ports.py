"""Ports: what the use cases need from the outside world, named by role, never by technology."""

from __future__ import annotations

import json

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from .domain.billing import SubscriptionRecord
from .domain.model import (
    AccessRecord,
    CheckoutAttempt,
    Community,
    Entitlement,
    LedgerEntry,
    Member,
    MessageKey,
    OAuthTokens,
    Plan,
)


class Clock(Protocol):
    def now(self) -> int:
        """Business time in epoch seconds (a controllable clock in the local stack)."""


# --- storage -------------------------------------------------------------------------------


class CatalogRepository(Protocol):
    def add_community(self, community: Community) -> None: ...
    def get_community(self, community_id: str) -> Community | None: ...
    def list_communities(self) -> list[Community]: ...
    def add_plan(self, plan: Plan) -> None:
        """Raise ConflictError if one of the plan's prices is already sold by another plan."""
    def get_plan(self, plan_id: str) -> Plan | None: ...
    def list_plans(self) -> list[Plan]: ...
    def plan_for_price(self, price_id: str) -> Plan | None: ...


class MemberRepository(Protocol):
    def get(self, member_id: str) -> Member | None: ...
    def create(self, member: Member) -> None: ...
    def find_by_customer(self, customer_id: str) -> Member | None: ...
    def find_by_discord(self, discord_user_id: str) -> Member | None: ...
    def attach_customer(self, member_id: str, customer_id: str) -> Member:
        """Bind a Stripe customer to a member once; return the member as stored.

        If the member already has another customer the stored one is kept (and returned).
        Raise ConflictError if the customer already belongs to another member."""
    def create_for_customer(self, customer_id: str, member_id: str, now: int) -> Member:
        """Create the member for a customer seen only in Stripe, or return the existing one."""
    def bind_discord(self, member_id: str, discord_user_id: str, sealed_tokens: bytes) -> None:
        """Raise ConflictError if that Discord account is bound to another member."""
    def save_discord_tokens(self, member_id: str, sealed_tokens: bytes) -> None: ...
    def load_discord_tokens(self, member_id: str) -> bytes | None: ...


class SubscriptionRepository(Protocol):
    def get(self, member_id: str, subscription_id: str) -> SubscriptionRecord | None: ...
    def save(self, record: SubscriptionRecord) -> SubscriptionRecord:
        """Optimistic: raise ConcurrentUpdateError if the record changed since it was read."""
    def for_member(self, member_id: str) -> list[SubscriptionRecord]: ...
    def all_records(self) -> Iterator[SubscriptionRecord]:
        """Every subscription, through an index (never a Scan); for KPIs."""


class EntitlementRepository(Protocol):
    def save(
        self,
        member_id: str,
        entitlements: Sequence[Entitlement],
        next_due_at: int | None,
        *,
        expected_revision: str | None = None,
    ) -> None:
        """Store the derived projection; only the derivation in services writes it.

        With ``expected_revision`` (from ``read``; "" when there was no projection yet) the write
        is optimistic: raise ConcurrentUpdateError if the projection changed since it was read."""
    def for_member(self, member_id: str) -> list[Entitlement]: ...
    def read(self, member_id: str) -> tuple[list[Entitlement], str]:
        """The projection and its revision ("" if there is none), for an optimistic save."""
    def due(self, now: int, limit: int) -> list[str]:
        """Member ids with something due at or before ``now``, read from an index of due items."""


class AccessRepository(Protocol):
    def get(self, member_id: str, community_id: str) -> AccessRecord | None: ...
    def save(self, record: AccessRecord) -> None: ...
    def for_member(self, member_id: str) -> list[AccessRecord]: ...


class MessageLog(Protocol):
    def claim(self, key: MessageKey, now: int) -> bool:
        """Record that a message is to be sent; False if it was already claimed."""
    def finish(self, key: MessageKey, status: str, reason: str, now: int) -> None: ...
    def status(self, key: MessageKey) -> str | None: ...


class CheckoutRepository(Protocol):
    def get_attempt(self, member_id: str, plan_id: str) -> CheckoutAttempt | None: ...
    def save_attempt(self, attempt: CheckoutAttempt) -> None: ...


class LedgerRepository(Protocol):
    def get(self, event_id: str) -> LedgerEntry | None: ...
    def mark(self, entry: LedgerEntry, now: int) -> None:
        """Set the entry's status and detail, creating it if the intake never recorded it."""
    def recent(self, now: int, limit: int) -> list[LedgerEntry]: ...


@dataclass(frozen=True)
class MemberState:
    """What the billing processor needs of one member, read together (one Query on DynamoDB).

    The entitlements projection is read no later than the subscriptions, so a projection
    derived from these subscriptions and saved with ``revision`` cannot overwrite a newer one."""

    member: Member
    subscriptions: list[SubscriptionRecord]
    entitlements: list[Entitlement]
    revision: str
    checkouts: dict[str, CheckoutAttempt]  # by plan id


class MemberStateReader(Protocol):
    def load(self, member_id: str) -> MemberState | None:
        """The member with their subscriptions, projection and checkout attempts; None if unknown."""


@dataclass(frozen=True)
class WebSession:
    id: str
    member_id: str | None
    expires_at: int


class WebSessionStore(Protocol):
    def create_session(self, session_id: str, expires_at: int) -> WebSession: ...
    def get_session(self, session_id: str, now: int) -> WebSession | None: ...
    def set_session_member(self, session_id: str, member_id: str) -> None: ...
    def put_oauth_state(self, state: str, session_id: str, plan_id: str | None, expires_at: int) -> None: ...
    def take_oauth_state(self, state: str, now: int) -> tuple[str, str | None] | None:
        """Return (session_id, plan_id) and delete the state: each is usable once."""
    def put_claim(self, token: str, member_id: str, expires_at: int) -> None:
        """A link the creator gives a member made outside Membergate, to bind their identity."""
    def get_claim(self, token: str, now: int) -> str | None:
        """The member a claim token stands for, or None if unknown or expired."""
    def hit(self, key: str, window_start: int, expires_at: int) -> int:
        """Count one request for ``key`` in the window; return the count so far."""


# --- intake (kept separate: the webhook path must stay import-light) ----------------------


class EventLedger(Protocol):
    def record_received(self, entry: LedgerEntry) -> str | None:
        """Conditionally create the entry; return None if created, else the stored status."""
    def record_ignored(self, entry: LedgerEntry) -> None: ...


class BillingEventDispatch(Protocol):
    """Hands a verified event to the billing processor without waiting for it (no polled queue)."""

    def hand_over(self, event_id: str, body: str, correlation_id: str | None) -> None:
        """Start the processor on the event asynchronously; a body too large to travel inline is
        stored first and travels by reference. Order is not promised: processing converges."""

    def report_wrong_mode(self, event_id: str, event_type: str, correlation_id: str | None) -> None:
        """Park the id of an event from the other Stripe mode where an operator's alarm sees it."""


# --- queues and outbound services -----------------------------------------------------------


@dataclass(frozen=True)
class AccessWork:
    """Bring ``member_id`` in ``community_id`` to what the entitlements say now (or notify)."""

    kind: str  # "converge" | "notify"
    member_id: str
    community_id: str
    message_kind: str | None = None
    message_period: str | None = None
    attempt: int = 0
    # Facts a message needs that are not stored elsewhere (e.g. the invoice's payment page).
    details: tuple[tuple[str, str], ...] = ()


def encode_work(work: AccessWork) -> str:
    payload = {
        "kind": work.kind,
        "member_id": work.member_id,
        "community_id": work.community_id,
        "message_kind": work.message_kind,
        "message_period": work.message_period,
        "attempt": work.attempt,
        "details": dict(work.details),
    }
    return json.dumps(payload, sort_keys=True)


def decode_work(body: str) -> AccessWork:
    payload = json.loads(body)
    return AccessWork(
        kind=payload["kind"],
        member_id=payload["member_id"],
        community_id=payload["community_id"],
        message_kind=payload.get("message_kind"),
        message_period=payload.get("message_period"),
        attempt=int(payload.get("attempt", 0)),
        details=tuple(sorted((payload.get("details") or {}).items())),
    )


class AccessWorkQueue(Protocol):
    def send(self, work: Iterable[AccessWork], delay_seconds: int = 0) -> None: ...


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    expires_at: int


class BillingGateway(Protocol):
    def create_customer(self, member_id: str, idempotency_key: str) -> str: ...
    def create_checkout_session(
        self,
        *,
        customer_id: str,
        member_id: str,
        plan_id: str,
        price_ids: Sequence[str],
        success_url: str,
        cancel_url: str,
        expires_at: int,
        idempotency_key: str,
    ) -> CheckoutSession: ...
    def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> None: ...
    def create_portal_session(self, customer_id: str, return_url: str) -> str:
        """The URL of a short-lived Stripe customer portal session (card, invoices, cancellation)."""

    def fetch_subscription(self, subscription_id: str) -> dict | None:
        """The subscription as Stripe has it now (a plain dict), or None if Stripe doesn't know it."""


@dataclass(frozen=True)
class GuildMember:
    user_id: str
    roles: frozenset[str]


class CommunityConnector(Protocol):
    """One chat platform's bot. Raises RetryableError or PermanentError(reason), nothing else."""

    def get_member(self, guild_id: str, user_id: str) -> GuildMember | None: ...
    def add_member(self, guild_id: str, user_id: str, access_token: str, roles: Sequence[str]) -> None: ...
    def add_role(self, guild_id: str, user_id: str, role_id: str) -> None: ...
    def remove_role(self, guild_id: str, user_id: str, role_id: str) -> None: ...
    def kick(self, guild_id: str, user_id: str) -> None: ...
    def send_dm(self, user_id: str, text: str) -> None: ...


class IdentityProvider(Protocol):
    def authorize_url(self, state: str, redirect_uri: str) -> str: ...
    def exchange_code(self, code: str, redirect_uri: str, now: int) -> OAuthTokens: ...
    def refresh(self, refresh_token: str, now: int) -> OAuthTokens: ...
    def user_id(self, access_token: str) -> str: ...


class TokenCipher(Protocol):
    def seal(self, plaintext: bytes) -> bytes: ...
    def open(self, sealed: bytes) -> bytes: ...


@dataclass(frozen=True)
class Stores:
    """The repositories a use case may need, built once in bootstrap."""

    catalog: CatalogRepository
    members: MemberRepository
    subscriptions: SubscriptionRepository
    entitlements: EntitlementRepository
    access: AccessRepository
    messages: MessageLog
    checkouts: CheckoutRepository
    ledger: LedgerRepository
    sessions: WebSessionStore
    # One read for the billing processor's per-member facts; None composes them from the above.
    states: MemberStateReader | None = None
