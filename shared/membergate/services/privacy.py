"""Members' data rights (GDPR arts. 15, 17, 20): export everything Membergate holds on a member, erase it.

Erasure runs in two steps so that the member loses access the normal way first:
1. asked: the erasure is recorded, the member's one-time purchases end with reason ``erased``, the
   entitlements are derived again and the dispatcher takes the access away (it still knows the
   member's platform accounts, which it needs to remove a role or a member);
2. done (the same request again, once no community shows the member with access): platform
   accounts and the names shown with them, sealed OAuth tokens, messages, checkout attempts, sessions,
   claim links, the email, the card on file (which payment method, its expiry) and the exit-survey
   answers (the choice and the free text) are deleted.
The erasure is audited here (``member.erase``, once, when first asked), whichever edge asked for it.
What the KPIs need (subscriptions, purchases, entitlements, access states) stays under the
member's opaque id and Stripe customer id: pseudonymous, the person behind them known only to Stripe,
which keeps its own records (the creator erases there separately: Dashboard → customer → Delete).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from ..domain.errors import ConflictError, NotFoundError
from ..domain.grants import OneTimeGrant
from ..domain.lifecycle import CardOnFile, erased_card
from ..domain.survey import SurveyAnswer
from ..domain.billing import SubscriptionRecord
from ..domain.model import (
    AccessRecord,
    AccessState,
    CheckoutAttempt,
    Entitlement,
    LedgerEntry,
    Member,
    MessageRecord,
    WorkKind,
)
from ..ports import AccessWork, AccessWorkQueue, ErasureRecord, HeldToken, PrivacyStore, Stores
from .controls import audit
from .membership import current_view, refresh_member

log = logging.getLogger(__name__)

ERASED = "erased"  # the reason a purchase ends with when its member is erased
# Stripe statuses after which a subscription neither charges nor gives access.
_FINISHED = frozenset({"canceled", "incomplete_expired"})
# Access states in which Membergate may still have something on the platform for the member.
_HOLDING = frozenset({AccessState.GRANTED, AccessState.PENDING, AccessState.RETRYING, AccessState.INVITED})
# How many ledger entries the export looks through for the member's Stripe events (31 days kept).
LEDGER_LOOKBACK = 1000


@dataclass(frozen=True)
class MemberExport:
    member: Member
    subscriptions: list[SubscriptionRecord]
    purchases: list[OneTimeGrant]
    entitlements: list[Entitlement]
    access: list[AccessRecord]
    messages: list[MessageRecord]
    checkout_attempts: list[CheckoutAttempt]
    tokens: list[HeldToken]
    events: list[LedgerEntry]
    erasure: ErasureRecord | None
    email: str | None = None  # where messages go when the platform cannot carry them
    card: CardOnFile | None = None  # the customer's card on file (payment method, expiry); None once erased
    survey_answers: list[SurveyAnswer] = field(default_factory=list)  # why they left, in their words


def _privacy(stores: Stores) -> PrivacyStore:
    if stores.privacy is None:  # a wiring mistake, not something a request can cause
        raise RuntimeError("this function's Stores have no privacy store; see bootstrap.admin()")
    return stores.privacy


def _member(stores: Stores, member_id: str) -> Member:
    member = stores.members.get(member_id)
    if member is None:
        raise NotFoundError(f"member {member_id} does not exist; find them with GET /admin/members?q=")
    return member


def export_member(stores: Stores, member_id: str, now: int) -> MemberExport:
    """Everything Membergate holds on the member (art. 15 and 20): read-only."""
    member = _member(stores, member_id)
    privacy = _privacy(stores)
    view = current_view(stores, member_id, now)
    events = []
    if member.stripe_customer_id:
        events = [e for e in stores.ledger.recent(now, LEDGER_LOOKBACK) if e.customer_id == member.stripe_customer_id]
    return MemberExport(
        member=member,
        subscriptions=view.records,
        purchases=view.grants,
        entitlements=view.entitlements,
        access=stores.access.for_member(member_id),
        messages=sorted(stores.messages.for_member(member_id), key=lambda m: (m.at, m.kind, m.period)),
        checkout_attempts=privacy.checkout_attempts(member_id),
        tokens=privacy.held_tokens(member_id, now),
        events=events,
        erasure=privacy.erasure(member_id),
        email=stores.contacts.email(member_id) if stores.contacts is not None else None,
        card=_card(stores, member),
        survey_answers=stores.surveys.for_member(member_id) if stores.surveys is not None else [],
    )


def _card(stores: Stores, member: Member) -> CardOnFile | None:
    if stores.cards is None or not member.stripe_customer_id:
        return None
    card = stores.cards.card(member.stripe_customer_id)
    return card if card is not None and not card.erased else None


@dataclass(frozen=True)
class Erasure:
    record: ErasureRecord
    # Communities where the member still has (or may have) access: the erasure waits for these.
    waiting_for: list[tuple[str, str]] = field(default_factory=list)  # (community id, access state)

    @property
    def done(self) -> bool:
        return self.record.erased_at is not None


class SubscriptionLiveError(ConflictError):
    code = "subscription_live"


def erase_member(
    stores: Stores, queue: AccessWorkQueue, member_id: str, reason: str, now: int, *, actor: str,
) -> Erasure:
    """Ask for (or finish) a member's erasure; idempotent: call again until ``done``.

    ``actor`` (who asked: the admin token's fingerprint) goes into the audit log when first asked."""
    member = _member(stores, member_id)
    privacy = _privacy(stores)
    record = privacy.erasure(member_id)
    if record is not None and record.erased_at is not None:
        return Erasure(record)
    live = [r.subscription_id for r in stores.subscriptions.for_member(member_id)
            if r.latest is not None and r.latest.status not in _FINISHED]
    if live:
        # Erasing would leave them paying for access they can no longer get: cancelling is the creator's call.
        raise SubscriptionLiveError(
            f"member {member_id} still has a Stripe subscription ({', '.join(sorted(live))}); cancel it first "
            "(Stripe Dashboard → the subscription → Cancel immediately), then ask for the erasure again"
        )
    asked_before = record is not None
    if record is None:
        record = ErasureRecord(member_id, reason, requested_at=now)
        privacy.record_erasure(record)
        log.info("member erasure asked", extra={"member_id": member_id})
        if stores.audit is not None:
            audit(stores, actor=actor, action="member.erase", target=member_id, now=now, member_id=member_id, reason=reason)
    for grant in stores.grants.for_member(member_id):
        if not grant.ended_reason:
            stores.grants.save(replace(grant, ended_reason=ERASED))
    # The normal path: entitlements derived again, the dispatcher converges each community that moved.
    view = refresh_member(stores, queue, member_id, now, sweep_now=False)
    entitled = {e.community_id for e in view.entitlements if e.state.gives_access}
    waiting = sorted(
        (a.community_id, a.state.value)
        for a in stores.access.for_member(member_id)
        if a.state in _HOLDING or a.roles or a.community_id in entitled
    )
    if waiting:
        if asked_before:
            # Still there on a later call (a failure fixed since, a drift): look at the platform again.
            queue.send([AccessWork(WorkKind.RESYNC, member_id, community_id) for community_id, _ in waiting])
        return Erasure(record, waiting)
    removed = privacy.erase_personal_data(member_id)
    if _card(stores, member) is not None and member.stripe_customer_id and stores.cards is not None:
        # Kept as "erased" under the pseudonymous customer id: a later payment_method.* event from
        # Stripe then finds it and keeps nothing (services/billing_events.py), at no extra read.
        stores.cards.save_card(member.stripe_customer_id, erased_card(now))
        removed["card_on_file"] = 1
    if stores.surveys is not None:
        answers = stores.surveys.erase_member(member_id)
        if answers:
            removed["survey_answers"] = answers
    record = replace(record, erased_at=now, removed=tuple(sorted(removed.items())))
    privacy.record_erasure(record)
    log.info("member erased", extra={"member_id": member_id, "removed": removed})
    return Erasure(record)
