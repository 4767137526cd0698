"""Ports: what the use cases need from the outside world, named by role, never by technology."""

from __future__ import annotations

import json

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from .domain.access import Capability, Presence, PresenceState
from .domain.alerts import Alert, DigestState
from .domain.billing import PriceInfo, SubscriptionRecord, SubscriptionSnapshot
from .domain.checkout_terms import CheckoutTerms
from .domain.controls import AccessCode, AuditEntry, Removal
from .domain.seats import SeatTake
from .domain.funnel import FunnelCount
from .domain.kpis import DaySnapshot
from .domain.grants import OneTimeGrant
from .domain.holds import CommunityHold
from .domain.migration import Migration, MigrationMember
from .domain.lifecycle import CardOnFile, EmailOnFile
from .domain.preflight import Preflight
from .domain.reconcile import StripeEvent, StripeSubscription
from .domain.survey import SurveyAnswer, SurveyLink
from .domain.model import (
    AccessRecord,
    CheckoutAttempt,
    Community,
    Entitlement,
    Identity,
    LedgerEntry,
    Member,
    MessageKey,
    MessageRecord,
    MessageStatus,
    OAuthTokens,
    Plan,
    Platform,
    WorkKind,
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
    def update_plan(self, plan: Plan) -> None:
        """Store an edited plan's name, grace and archive date (prices: set_plan_prices; grants never change)."""
    def set_plan_prices(self, plan_id: str, price_ids: tuple[str, ...]) -> None:
        """Sell ``price_ids`` from this plan; ConflictError if one is sold by another plan. A price
        taken off the plan keeps pointing to it, so members already paying it keep their plan."""
    def update_community(self, community: Community) -> None:
        """Store an edited community's name, locale, removal mode and archive date (its place and
        role never change: they key the members' access)."""


class MemberRepository(Protocol):
    def get(self, member_id: str) -> Member | None: ...
    def create(self, member: Member) -> None: ...
    def find_by_customer(self, customer_id: str) -> Member | None: ...
    def member_id_for_customer(self, customer_id: str) -> str | None:
        """The member a Stripe customer belongs to, without reading the member (one read)."""
    def find_by_identity(self, platform: Platform, external_id: str) -> Member | None: ...
    def attach_customer(self, member_id: str, customer_id: str, known: Member | None = None) -> Member:
        """Bind a Stripe customer to a member once; return the member as stored.

        If the member already has another customer the stored one is kept (and returned).
        Raise ConflictError if the customer already belongs to another member. ``known`` is the
        member as the caller has just read it: the store need not read it back."""
    def create_for_customer(self, customer_id: str, member_id: str, now: int) -> Member:
        """Create the member for a customer seen only in Stripe, or return the existing one."""
    def bind_identity(self, member_id: str, identity: Identity, sealed_credentials: bytes | None = None) -> None:
        """Bind a platform account to a member (one LINK per identity, created conditionally).

        Raise ConflictError if that account is bound to another member."""
    def replace_identity(self, member_id: str, identity: Identity) -> Identity | None:
        """Relink: bind ``identity`` in place of the member's account on that platform; return the old one.

        The old account's link and stored credentials are dropped. Raise ConflictError if the new
        account is bound to another member, NotFoundError if the member does not exist."""
    def save_credentials(self, member_id: str, platform: Platform, sealed: bytes) -> None:
        """Per-identity secrets (e.g. Discord OAuth tokens), sealed by the caller."""
    def load_credentials(self, member_id: str, platform: Platform) -> bytes | None: ...
    def page(self, limit: int, after: str | None = None) -> tuple[list[Member], str | None]:
        """Members in id order after ``after``, through an index (never a Scan); the id to continue
        after, or None at the end."""


class SubscriptionRepository(Protocol):
    def get(self, member_id: str, subscription_id: str) -> SubscriptionRecord | None: ...
    def save(self, record: SubscriptionRecord) -> SubscriptionRecord:
        """Optimistic: raise ConcurrentUpdateError if the record changed since it was read."""
    def for_member(self, member_id: str) -> list[SubscriptionRecord]: ...
    def all_records(self) -> Iterator[SubscriptionRecord]:
        """Every subscription, through an index (never a Scan); for KPIs."""


class GrantRepository(Protocol):
    """One-time grants (passes, lifetime purchases), one per paid Checkout Session."""

    def get(self, member_id: str, grant_id: str) -> OneTimeGrant | None: ...
    def save(self, grant: OneTimeGrant) -> None: ...
    def for_member(self, member_id: str) -> list[OneTimeGrant]: ...
    def find_by_payment_intent(self, payment_intent: str) -> OneTimeGrant | None:
        """The grant a payment paid for (refunds and disputes name only the payment)."""
    def all_paid(self) -> Iterator[OneTimeGrant]:
        """Every grant bought through Checkout (the KPIs' one-time and lifetime revenue)."""


class GivenGrantIndex(Protocol):
    """Finds a grant the creator gave (manual, access code) by its id alone."""

    def member_for_grant(self, grant_id: str) -> str | None: ...
    def index_grant(self, grant_id: str, member_id: str) -> None: ...


class AuditLog(Protocol):
    """Every admin action, kept for the creator (no expiry)."""

    def record(self, entry: AuditEntry) -> None: ...
    def page(self, since: int, now: int, limit: int, after: tuple[int, str] | None) -> tuple[list[AuditEntry], tuple[int, str] | None]:
        """Entries at or after ``since`` (oldest first), after the (at, id) position ``after``; the
        position to continue from, or None when every entry up to ``now`` was read."""
    def for_member(self, member_id: str) -> list[AuditEntry]: ...


class MigrationStore(Protocol):
    """Free -> paid migrations and the people imported into each (services/migration.py)."""

    def create(self, migration: Migration) -> None: ...
    def get(self, migration_id: str) -> Migration | None: ...
    def save(self, migration: Migration) -> None:
        """Store a changed deadline or announcement count."""
    def add_member(self, entry: MigrationMember) -> bool:
        """Record one imported person (one conditional write); False if already in the migration."""
    def members(self, migration_id: str, after: str | None, limit: int) -> tuple[list[MigrationMember], str | None]:
        """Imported members in member id order after ``after``; the id to continue after, or None at the end."""
class RemovalLog(Protocol):
    """Removals the dispatcher made, one record per id (domain/controls.removal_id)."""

    def record(self, removal: Removal) -> bool:
        """Keep it unless its id is already kept; True when this call kept it."""
    def get(self, removal_id: str) -> Removal | None: ...
    def page(self, since: int, now: int, limit: int, after: tuple[int, str] | None) -> tuple[list[Removal], tuple[int, str] | None]:
        """Removals made at or after ``since`` and up to ``now``, newest first, before the (at, id)
        position ``after``; the position to continue from, or None when all were read."""
    def mark_undone(self, removal_id: str, at: int, grant_id: str) -> bool:
        """Mark it undone unless it already is; True when this call marked it."""
    def clear_undone(self, removal_id: str) -> None:
        """Forget an undo whose grant could not be given (so the creator can try again)."""


class SeatStore(Protocol):
    """Seats of plans with a limit: a conditional counter per plan and one hold per (plan, member)."""

    def take(self, plan_id: str, member_id: str, seats: int, now: int) -> SeatTake:
        """Hold a seat for the member unless they hold one; SOLD_OUT when ``seats`` are all taken."""
    def attach(self, plan_id: str, member_id: str, session_id: str, previous_session_id: str | None) -> None:
        """The checkout session the hold waits on: set on a fresh hold, moved from the member's
        previous open session (never from a paid one, whose attempt no longer names it)."""
    def release(self, plan_id: str, member_id: str, session_id: str | None) -> bool:
        """Give the seat back if the hold waits on ``session_id`` (None: a hold whose session was
        never created); True when this call gave it back."""
    def taken(self, plan_id: str) -> int: ...
    def held_by(self, plan_id: str, member_id: str) -> bool:
        """Whether the member holds one of the plan's seats (an open checkout, or paid for good)."""
    def keep(self, plan_id: str, member_id: str, subscription_id: str) -> None:
        """A tier switch paid for the member's seat: it now waits on their subscription, whatever
        session it waited on, so no checkout.session.expired gives it back."""


class CheckoutLocks(Protocol):
    """One lease per (member, community) while a Checkout Session for it is being made (services/checkout.py)."""

    def acquire(self, member_id: str, community_id: str, holder: str, now: int, ttl: int) -> bool:
        """Take the lease unless another holder has it and it has not run out (a conditional write)."""
    def release(self, member_id: str, community_id: str, holder: str) -> None:
        """Give the lease back if ``holder`` still has it."""


class TrialLedger(Protocol):
    """Free trials given, by hashed identifier (domain/trials.trial_keys): never the identifier itself."""

    def used(self, keys: Sequence[str]) -> bool:
        """Whether any of these identifiers already had a trial."""
    def mark(self, keys: Sequence[str], subscription_id: str, now: int) -> list[str]:
        """Keep the keys as used by this trialing subscription; those another one used first."""


class TrialEnder(Protocol):
    """Stripe's side of ending a free trial now (``trial_end=now``): the member is charged from today."""

    def end_trial(self, subscription_id: str, idempotency_key: str) -> None: ...


class AccessCodeStore(Protocol):
    """Access codes, stored by the code's SHA-256 only."""

    def add(self, code_hash: str, code: AccessCode) -> None: ...
    def find(self, code_hash: str) -> AccessCode | None: ...
    def take_use(self, code_hash: str, now: int) -> bool:
        """Count one redemption if a use is left and the code has not expired (one conditional
        write: two members racing for the last use cannot both get it)."""
    def give_back_use(self, code_hash: str) -> None:
        """Undo take_use when the grant it paid for could not be written."""


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


class CommunityHolds(Protocol):
    """Community-scoped refusals (domain/holds.py) and the members whose work was skipped behind them."""

    def get(self, community_id: str) -> CommunityHold | None: ...
    def hold(self, hold: CommunityHold) -> CommunityHold:
        """Record the hold and return the one standing (a hold already standing is kept, with its ``since``)."""
    def note_member(self, hold: CommunityHold, member_id: str) -> None:
        """Remember a member whose work was skipped (or refused) under the hold, to resync on release."""
    def claim_probe(self, community_id: str, now: int) -> bool:
        """Take the right to try the platform again now; False when another took it within PROBE_INTERVAL."""
    def release(self, community_id: str) -> list[str]:
        """Forget the hold; return the members held behind it (to resync)."""


class MessageLog(Protocol):
    def claim(self, key: MessageKey, now: int) -> bool:
        """Record that a message is to be sent; False if it was already claimed."""
    def finish(self, key: MessageKey, status: MessageStatus, reason: str, now: int) -> None:
        """Record an outcome (sent, failed, or retrying with the reason)."""
    def status(self, key: MessageKey) -> MessageStatus | None: ...
    def for_member(self, member_id: str) -> list[MessageRecord]: ...
    def claimed_at(self, key: MessageKey) -> int | None:
        """When the message was claimed (its first attempt starts then); None if never."""


class SurveyStore(Protocol):
    """Exit survey links (by token digest) and the members' answers."""

    def put_link(self, token_digest: str, link: SurveyLink) -> None: ...
    def get_link(self, token_digest: str) -> SurveyLink | None: ...
    def save_answer(self, answer: SurveyAnswer) -> None: ...
    def answers(self, limit: int) -> list[SurveyAnswer]:
        """Newest first."""
    def for_member(self, member_id: str) -> list[SurveyAnswer]: ...
    def erase_member(self, member_id: str) -> int:
        """Delete the member's answers (choice and free text); how many were deleted."""


@dataclass(frozen=True)
class MemberLink:
    """What a personal link in a member message stands for (stored under its token's digest)."""

    member_id: str
    purpose: str  # "portal": Stripe's billing portal for this member
    plan_id: str
    expires_at: int


class MemberLinkStore(Protocol):
    def put_link(self, token_digest: str, link: MemberLink) -> None: ...
    def get_link(self, token_digest: str) -> MemberLink | None: ...


class FunnelLog(Protocol):
    """Join funnel counters, one per (plan, day, step), days in the creator's time zone."""

    def day_of(self, at: int) -> date:
        """The creator's day ``at`` falls in (the day a step is counted on)."""
    def count(self, plan_id: str, step: str, at: int) -> None:
        """Add one to ``step`` of ``plan_id`` on the day ``at`` falls in (an atomic ADD)."""
    def counts(self, start: date, end: date) -> list[FunnelCount]:
        """Every counter of the days ``start``..``end`` (inclusive)."""


@dataclass(frozen=True)
class SnapshotState:
    """Where the daily KPI snapshots stand: written for every closed day through ``through``, except
    the days a late or back-dated event touched (``dirty``: ``<YYYY-MM-DD>#<why>`` marks)."""

    through: date | None = None
    dirty: frozenset[str] = frozenset()

    @property
    def dirty_from(self) -> date | None:
        days = [date.fromisoformat(mark.split("#", 1)[0]) for mark in self.dirty]
        return min(days, default=None)


class KpiSnapshotStore(Protocol):
    """One KPI snapshot per closed day, in the creator's time zone (``time_zone``)."""

    time_zone: str

    def day_of(self, at: int) -> date: ...
    def mark_dirty(self, day: date, why: str) -> None:
        """The days from ``day`` on must be recomputed; ``why`` (an event id) keeps each mark apart,
        so a run clearing the marks it saw never clears one added meanwhile."""
    def state(self) -> SnapshotState: ...
    def read(self, start: date, end: date) -> list[DaySnapshot]: ...
    def write(self, snapshots: Sequence[DaySnapshot], through: date, seen: frozenset[str]) -> None:
        """Store ``snapshots``, then record that every closed day through ``through`` is written
        and clear the dirty marks ``seen`` (only those)."""


class ContactStore(Protocol):
    """A member's email address (from Stripe's checkout), for messages their platform cannot carry."""

    def set_email(self, member_id: str, email: str) -> None: ...
    def email(self, member_id: str) -> str | None: ...
    def contact(self, member_id: str) -> EmailOnFile | None:
        """The email with the ``created`` of the Stripe event that said it (one read, as email())."""
    def keep_email(self, member_id: str, seen: EmailOnFile) -> bool:
        """Store ``seen`` unless what is stored is newer (domain.lifecycle.merge_email's rule), in one
        conditional write (no read first); True when stored."""


class CardStore(Protocol):
    """The card on file per Stripe customer (payment_method.* and customer.updated events), for the
    card-expiry warning; keyed by customer so an event arriving before the member is known still counts."""

    def card(self, customer_id: str) -> CardOnFile | None: ...
    def save_card(self, customer_id: str, card: CardOnFile) -> None: ...
    def save_if_newer(self, customer_id: str, card: CardOnFile) -> bool:
        """Store ``card`` in one conditional write when no card is kept, or the kept one is older and
        not erased; False (nothing written) otherwise: then read, merge_card and save_card."""


class Mailer(Protocol):
    """Email to a member (SES)."""

    def send(self, to: str, subject: str, body: str) -> None:
        """Raise PermanentError when refused for good (unverified sender, bad address), RetryableError
        when it may work later (throttled, unreachable)."""


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
    grants: list[OneTimeGrant] = field(default_factory=list)  # passes and lifetime purchases


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
    def delete_session(self, session_id: str) -> None:
        """Revoke a session (its id is replaced at every binding and claim); unknown ids are fine."""
    def put_oauth_state(self, state: str, session_id: str, plan_id: str | None, expires_at: int) -> None: ...
    def take_oauth_state(self, state: str, now: int) -> tuple[str, str | None] | None:
        """Return (session_id as given to put_oauth_state, plan_id) and delete the state: each is usable once."""
    def put_claim(self, token: str, member_id: str, expires_at: int) -> None:
        """A link the creator gives a member made outside Membergate, to bind their identity."""
    def get_claim(self, token: str, now: int) -> str | None:
        """The member a claim token stands for, or None if unknown or expired."""
    def hit(self, key: str, window_start: int, expires_at: int) -> int:
        """Count one request for ``key`` in the window; return the count so far."""


# --- members' data rights (GDPR) --------------------------------------------------------------


@dataclass(frozen=True)
class ErasureRecord:
    """The creator's erasure of a member: asked (access being removed), then done."""

    member_id: str
    reason: str
    requested_at: int
    erased_at: int | None = None
    removed: tuple[tuple[str, int], ...] = ()  # (what, how many items), once done


@dataclass(frozen=True)
class HeldToken:
    """A browser session or claim link of a member; stored only as a digest, shown by kind and expiry."""

    kind: str  # session | claim
    expires_at: int


class PrivacyStore(Protocol):
    """What a member's export and erasure need beyond the other repositories."""

    def erasure(self, member_id: str) -> ErasureRecord | None: ...
    def record_erasure(self, record: ErasureRecord) -> None: ...
    def held_tokens(self, member_id: str, now: int) -> list[HeldToken]: ...
    def checkout_attempts(self, member_id: str) -> list[CheckoutAttempt]: ...
    def erase_personal_data(self, member_id: str) -> dict[str, int]:
        """Delete the member's platform accounts (and their links), sealed credentials, messages,
        checkout attempts, sessions and claim links; return how many items of each went.
        Subscriptions, purchases, entitlements and access records stay under the member's opaque id
        (the KPIs' history); idempotent."""


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

    kind: WorkKind
    member_id: str
    community_id: str
    message_kind: str | None = None
    message_period: str | None = None
    attempt: int = 0
    # Facts a message needs that are not stored elsewhere (e.g. the invoice's payment page).
    details: tuple[tuple[str, str], ...] = ()
    # What the platform showed before this item was re-queued (a rate-limit wait), so the
    # retry does not read the member again: (presence state, roles).
    observed: Presence | None = None

    def __post_init__(self) -> None:
        # Callers may name the kind by its value ("notify"); the enum is the one owner.
        object.__setattr__(self, "kind", WorkKind(self.kind))


def notify_work(
    member_id: str, community_id: str, kind: str, period: str | None, details: tuple[tuple[str, str], ...] = ()
) -> AccessWork:
    """The one builder of message work: ``kind`` sent at most once per (member, kind, period),
    ``details`` the facts its text needs that are not stored elsewhere."""
    return AccessWork(WorkKind.NOTIFY, member_id, community_id, message_kind=kind, message_period=period, details=details)


def encode_work(work: AccessWork) -> str:
    payload: dict[str, object] = {
        "kind": work.kind.value,
        "member_id": work.member_id,
        "community_id": work.community_id,
        "message_kind": work.message_kind,
        "message_period": work.message_period,
        "attempt": work.attempt,
        "details": dict(work.details),
    }
    if work.observed is not None:
        payload["observed"] = {"state": work.observed.state.value, "roles": sorted(work.observed.roles)}
    return json.dumps(payload, sort_keys=True)


def decode_work(body: str) -> AccessWork:
    payload = json.loads(body)
    observed = payload.get("observed")
    return AccessWork(
        kind=WorkKind(payload["kind"]),
        member_id=payload["member_id"],
        community_id=payload["community_id"],
        message_kind=payload.get("message_kind"),
        message_period=payload.get("message_period"),
        attempt=int(payload.get("attempt", 0)),
        details=tuple(sorted((payload.get("details") or {}).items())),
        observed=Presence(PresenceState(observed["state"]), frozenset(observed.get("roles") or ()))
        if isinstance(observed, dict)
        else None,
    )


class AccessWorkQueue(Protocol):
    def send(self, work: Iterable[AccessWork], delay_seconds: int = 0) -> None: ...


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    expires_at: int


@dataclass(frozen=True)
class ScheduledChange:
    """A price change Stripe will make at ``at`` (the subscription's period end), by schedule ``schedule_id``."""

    schedule_id: str
    at: int


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
        mode: str = "subscription",
        terms: CheckoutTerms | None = None,
        trial_days: int | None = None,
    ) -> CheckoutSession:
        """``mode`` "payment" sells a one-time price (a pass, lifetime access); ``terms``: promotion codes,
        Stripe Tax, phone collection, the terms checkbox and the consent text (None: promotion codes only);
        ``trial_days``: a free trial (``subscription_data.trial_period_days``), None for none."""
    def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> None: ...
    def switch_subscription_price(
        self, *, subscription_id: str, price_id: str, member_id: str, plan_id: str, idempotency_key: str
    ) -> None:
        """Move a live subscription to another price of the same offer, prorated (a tier change)."""
    def schedule_price_change(
        self, *, subscription_id: str, price_id: str, member_id: str, plan_id: str, idempotency_key: str
    ) -> ScheduledChange:
        """Move a live subscription to another price at its current period end, without proration: a
        subscription schedule (made from the subscription, or the one it has) with two phases."""
    def release_schedule(self, *, subscription_id: str, idempotency_key: str) -> None:
        """Release the subscription's schedule, if it has one: a change it scheduled will not happen."""
    def expire_checkout_session(self, session_id: str) -> str:
        """Expire a session if still open; return its final status ("expired" or "complete")."""
    def create_portal_session(self, customer_id: str, return_url: str) -> str:
        """The URL of a short-lived Stripe customer portal session (card, invoices, cancellation)."""

    def fetch_subscription(self, subscription_id: str, read_at: int) -> SubscriptionSnapshot | None:
        """The subscription as Stripe has it now, as a snapshot seen at ``read_at`` (its event id
        ``stripe-read-<read_at>``), or None if Stripe doesn't know it."""

    def describe_prices(self, price_ids: Sequence[str]) -> list[PriceInfo]:
        """What each price charges (amount, currency, interval), in the order asked; prices Stripe
        doesn't know are left out. Cached per container: prices are immutable at Stripe."""


@dataclass(frozen=True)
class GuildMember:
    user_id: str
    roles: frozenset[str]


class CommunityConnector(Protocol):
    """What one platform's bot can do in a place (Discord guild, Telegram chat, WhatsApp group).

    ``capabilities`` says which of these the platform supports; the pure planner
    (domain/access.py) only asks for those. Every method raises RetryableError (RateLimitedError
    for a wait) or PermanentError(reason) and nothing else; ``user`` is the member's external id
    on this connector's platform.
    """

    platform: Platform
    capabilities: frozenset[Capability]
    # A connector whose abilities depend on the place (WhatsApp: the community's mode) also has
    # ``capabilities_for(community) -> frozenset[Capability]``; the dispatcher asks it first.

    def check_member(self, community: Community, user: str) -> Presence:
        """Whether the member is in the place and with which roles (UNKNOWN if it cannot tell)."""
    def add_member(self, community: Community, user: str, roles: Sequence[str], credential: str | None) -> None:
        """Bring the member in with ``roles`` (Discord: guilds.join with the member's OAuth token)."""
    def grant_role(self, community: Community, user: str, role_id: str) -> None: ...
    def revoke_role(self, community: Community, user: str, role_id: str) -> None: ...
    def remove_member(self, community: Community, user: str) -> None: ...
    def create_invite(self, community: Community, user: str, now: int) -> str:
        """A personal invite link only ``user`` can use (join request approved for them alone)."""
    def approve_join(self, community: Community, user: str) -> None: ...
    def decline_join(self, community: Community, user: str) -> None: ...
    def send_message(self, user: str, text: str, idempotency_key: str) -> None:
        """Send ``text`` to the member; the same key never posts twice (Discord: the nonce)."""
    def preflight(self, community: Community, role_ids: Sequence[str]) -> Preflight:
        """With Capability.PREFLIGHT: whether the bot can do what ``community`` needs for ``role_ids``."""


class AnnouncementPoster(Protocol):
    """A connector with Capability.POST_ANNOUNCEMENT: one message to the whole place (a migration's offer)."""

    def post_announcement(self, community: Community, channel_id: str | None, text: str, idempotency_key: str) -> None:
        """Post ``text`` where every member reads it (Discord: the channel ``channel_id``; Telegram: the
        group itself); raises as a connector does (PermanentError with the reason when it cannot)."""


class MemberLister(Protocol):
    """A platform that can list a place's members page by page (Discord: List Guild Members)."""

    def list_members(self, community: Community, after: str, limit: int) -> list[GuildMember]:
        """Members with a user id above ``after``, in id order, at most ``limit``; raises as a connector does."""


@dataclass(frozen=True)
class PaidInvoice:
    """The invoice a PaymentIntent paid, and the subscription and customer it bills."""

    invoice_id: str
    subscription_id: str | None
    customer_id: str | None


class PaymentLookup(Protocol):
    """Stripe's answer to "which invoice did this payment pay?" (a dispute names only the payment)."""

    def invoice_paid_by(self, payment_intent: str) -> PaidInvoice | None:
        """None when no invoice was paid by it (a one-time payment); raises RetryableError when Stripe is down."""


class CollectionPauser(Protocol):
    """Stripe's pause_collection on a subscription: paused with behavior void (its invoices are voided,
    nothing is charged) while a dispute on one of its payments is open under the revoke policy."""

    def set_collection_paused(self, subscription_id: str, paused: bool, idempotency_key: str) -> dict[str, Any] | None:
        """Pause (or resume) collection; the subscription as Stripe has it after (None: Stripe no longer
        has it). Raises RetryableError when Stripe is down, PermanentError when it refuses."""


class SubscriptionReader(Protocol):
    """Stripe's answer to "what is this subscription now?", asked when two of its events tie in one second
    (domain/billing.py tie rule)."""

    def fetch_subscription(self, subscription_id: str, read_at: int) -> SubscriptionSnapshot | None:
        """The subscription as a snapshot seen at ``read_at`` (None: Stripe no longer knows it).
        Raises RetryableError when Stripe is down, PermanentError when it refuses."""


class BillingReader(Protocol):
    """Stripe's own view, read for reconciliation (lists, page by page, newest first)."""

    def list_subscriptions(
        self, created_gte: int, starting_after: str | None, limit: int = 100
    ) -> tuple[list[StripeSubscription], bool]: ...
    def list_undelivered_events(
        self, created_gte: int, starting_after: str | None, limit: int = 100
    ) -> tuple[list[StripeEvent], bool]: ...
    def list_live_subscriptions(
        self, starting_after: str | None, limit: int = 100
    ) -> tuple[list[StripeSubscription], bool]:
        """One page of the subscriptions not ended (Stripe's default list), with their prices, newest first."""
    def fetch_subscription(self, subscription_id: str, read_at: int) -> SubscriptionSnapshot | None:
        """As SubscriptionReader: reconciliation reads back a subscription whose plan drifted."""


class ReconcileStore(Protocol):
    """The run in progress (its cursor and the report so far) and the latest finished report."""

    def load_run(self) -> dict[str, Any] | None: ...
    def save_run(self, run: dict[str, Any]) -> None: ...
    def clear_run(self) -> None: ...
    def save_latest(self, report: dict[str, Any]) -> None: ...
    def latest(self) -> dict[str, Any] | None: ...
    def acquire_lease(self, holder: str, now: int, seconds: int) -> int | None:
        """Take the one-run lease for ``seconds`` (a conditional write: free, expired, or already
        ``holder``'s); None when taken, else when the live lease's run started."""
    def release_lease(self, holder: str) -> None:
        """Give the lease back if ``holder`` still has it."""


class IdentityProvider(Protocol):
    def authorize_url(self, state: str, redirect_uri: str) -> str: ...
    def exchange_code(self, code: str, redirect_uri: str, now: int) -> OAuthTokens: ...
    def refresh(self, refresh_token: str, now: int) -> OAuthTokens: ...
    def user_id(self, access_token: str) -> str: ...
    def account(self, access_token: str) -> Identity:
        """The authorizing account with the handle the member knows it by (Discord: GET /users/@me)."""


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
    grants: GrantRepository
    # One read for the billing processor's per-member facts; None composes them from the above.
    states: MemberStateReader | None = None
    # Members' data rights (export, erasure); None where a function never needs them.
    privacy: PrivacyStore | None = None
    # Exit surveys; None (e.g. in unit tests) sends cancellation receipts without the question.
    surveys: SurveyStore | None = None
    # Members' email addresses; None (e.g. in unit tests) means none are kept.
    contacts: ContactStore | None = None
    # Cards on file per customer (card-expiry warnings); None: no warning is sent.
    cards: CardStore | None = None
    # Personal links in messages (payment reminders' billing link); None: messages link the join page.
    member_links: MemberLinkStore | None = None
    # Creator controls (services/controls.py); bootstrap always builds them.
    audit: AuditLog | None = None
    given_grants: GivenGrantIndex | None = None
    access_codes: AccessCodeStore | None = None
    # Free -> paid migrations (services/migration.py); bootstrap always builds it.
    migrations: MigrationStore | None = None
    # Removals made (services/access.py records, services/removals.py lists and undoes).
    removals: RemovalLog | None = None
    # Seats of plans with a limit (services/checkout.py); None: plans with seats cannot be sold.
    seats: SeatStore | None = None
    # One checkout at a time per (member, community): two tabs cannot open two tiers' sessions at once.
    checkout_locks: CheckoutLocks | None = None
    # Free trials given, one per identity (services/checkout.py asks, the billing processor records).
    trials: TrialLedger | None = None
    # Join funnel counters (views, identities bound, checkouts, paid); None: nothing is counted.
    funnel: FunnelLog | None = None
    # Daily KPI snapshots; None: every period is computed from the whole history.
    kpi_snapshots: KpiSnapshotStore | None = None
    # Community-scoped platform refusals (domain/holds.py); None: refusals are remembered per member only.
    holds: CommunityHolds | None = None


# --- creator alerts (services/alerts.py) ------------------------------------------------------


class AlertStore(Protocol):
    """What happened, recorded as it happens (one write), read back by the hourly digest."""

    def record(self, alert: Alert) -> None: ...
    def between(self, since: int, until: int) -> list[Alert]:
        """Alerts recorded at ``since`` <= at < ``until``, oldest first."""
    def digest_state(self) -> tuple[DigestState | None, int]:
        """The last digest and its revision (0: none yet)."""
    def save_digest_state(self, state: DigestState, revision: int) -> bool:
        """Save if the stored revision is still ``revision``; False when another run saved first."""


class AlertChannel(Protocol):
    """Where the creator reads digests: a private Discord channel, a Telegram chat, an inbox."""

    name: str

    def send(self, subject: str, text: str, digest_id: str) -> None:
        """Post once; raise RetryableError (try again next run) or PermanentError (fix the setting)."""


# --- setup (`membergate init`, services/setup.py) ----------------------------------------------


@dataclass(frozen=True)
class SetupPrice:
    id: str
    product_id: str
    unit_amount: int | None
    currency: str
    interval: str | None


@dataclass(frozen=True)
class SetupEndpoint:
    id: str
    url: str
    enabled_events: tuple[str, ...]
    api_version: str | None
    status: str


class StripeSetup(Protocol):
    """The Stripe account objects Membergate needs, found and made through the Stripe API.

    Every method raises PermanentError with a message naming what to do (a missing permission of a
    restricted key, a refused key, Stripe unreachable)."""

    api_version: str

    def price_by_lookup_key(self, lookup_key: str) -> SetupPrice | None: ...
    def product_by_metadata(self, key: str, value: str) -> str | None: ...
    def create_product(self, name: str, metadata: dict[str, str], idempotency_key: str) -> str: ...
    def create_price(
        self, product_id: str, unit_amount: int, currency: str, interval: str, lookup_key: str, idempotency_key: str
    ) -> SetupPrice: ...
    def webhook_endpoints(self) -> list[SetupEndpoint]: ...
    def create_webhook_endpoint(self, url: str, events: Sequence[str], api_version: str) -> tuple[SetupEndpoint, str]:
        """The endpoint and its signing secret (Stripe shows the secret only here)."""
    def update_webhook_endpoint(self, endpoint_id: str, events: Sequence[str]) -> SetupEndpoint:
        """Set the events and enable it."""
    def portal_configuration_by_metadata(self, key: str, value: str | None) -> str | None:
        """The id of an active configuration with that metadata (``value`` None: any value)."""
    def create_portal_configuration(
        self, product_id: str, price_ids: Sequence[str], headline: str, metadata: dict[str, str]
    ) -> str: ...


class ParameterStore(Protocol):
    """SSM Parameter Store SecureStrings: the stack reads its secrets from these names."""

    def get(self, name: str) -> str | None: ...
    def put(self, name: str, value: str) -> None: ...


class WebhookRegistrar(Protocol):
    """A bot platform told where to post its updates (Telegram's setWebhook with the secret token)."""

    def register(self, url: str, secret: str) -> str:
        """Register and answer the bot's name, for the summary."""
# --- deployment health (services/health.py, GET /admin/health) ------------------------------------


class DeploymentProbe(Protocol):
    """What the health check reads about the deployment itself; never a secret's value."""

    def secret_state(self, name: str) -> str:
        """"present", "empty" (set but blank) or "missing" for the SSM parameter ``name``;
        raises RetryableError when it cannot tell (denied, timed out)."""
    def schedule_state(self, name: str) -> str:
        """"ENABLED", "DISABLED" or "missing" for the EventBridge schedule ``name``; raises as above."""
    def queue_depth(self, url: str) -> int:
        """ApproximateNumberOfMessages of the queue at ``url``; raises as above."""
