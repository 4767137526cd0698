"""apply_stripe_event: fold one queued Stripe event into subscriptions, grants and access work."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..domain.billing import PAYMENT_SLACK, SubscriptionRecord, merge_checkout_gate, merge_snapshot
from ..domain.errors import MalformedEventError, RetryableError
from ..domain.grants import DISPUTE_POLICIES, DISPUTE_REVOKE, OneTimeGrant, merge_grant
from ..domain.funnel import PAID
from ..domain.model import CheckoutGate, LedgerEntry, Plan, WorkKind
from ..domain.stripe_events import (
    CHARGE_EVENTS,
    CHECKOUT_EVENTS,
    CUSTOMER_EVENTS,
    INVOICE_EVENTS,
    SUBSCRIPTION_EVENTS,
    ChargeFact,
    StripeEvent,
    charge_fact,
    customer_email,
    checkout_completion,
    invoice_fact,
    parse_event,
    subscription_snapshot,
)
from ..ports import AccessWork, AccessWorkQueue, MemberState, Stores
from .funnel import count_step
from .kpis import mark_late
from .membership import refresh_member

TERMINAL_LEDGER_STATUSES = frozenset({"processed", "ignored", "failed"})


@dataclass(frozen=True)
class Outcome:
    status: str  # "processed" | "ignored" | "duplicate"
    detail: str = ""
    member_id: str | None = None
    alert: str = ""  # something the creator must act on (a dispute): logged as an alert and counted


def new_member_id() -> str:
    return f"mbr_{uuid.uuid4().hex[:20]}"


class BillingEventProcessor:
    """Converges on state rather than replaying history: every handler is idempotent."""

    def __init__(
        self,
        stores: Stores,
        access_queue: AccessWorkQueue,
        id_factory: Callable[[], str] = new_member_id,
        dispute_policy: str = DISPUTE_REVOKE,
    ):
        if dispute_policy not in DISPUTE_POLICIES:
            raise ValueError(f"dispute policy {dispute_policy!r}: use one of {', '.join(DISPUTE_POLICIES)}")
        self.stores = stores
        self.access_queue = access_queue
        self.new_id = id_factory
        self.dispute_policy = dispute_policy

    def apply(self, body: str, now: int) -> Outcome:
        try:
            event = parse_event(json.loads(body))
        except ValueError as exc:
            raise MalformedEventError(f"queued body is not JSON: {exc}") from None
        existing = self.stores.ledger.get(event.id)
        if existing is not None and existing.status in TERMINAL_LEDGER_STATUSES:
            return Outcome("duplicate", existing.detail)
        try:
            outcome = self._dispatch(event, now)
        except MalformedEventError as exc:
            self.stores.ledger.mark(self._entry(event, "failed", exc.message, now), now)
            raise
        self.stores.ledger.mark(self._entry(event, outcome.status, outcome.detail, now), now)
        return outcome

    @staticmethod
    def _entry(event: StripeEvent, status: str, detail: str, now: int) -> LedgerEntry:
        return LedgerEntry(event.id, event.type, status, event.created, now, event.customer_id, detail)

    def _dispatch(self, event: StripeEvent, now: int) -> Outcome:
        if event.type in SUBSCRIPTION_EVENTS:
            return self.sync_subscription(event, now)
        if event.type in CHECKOUT_EVENTS:
            return self.apply_checkout(event, now)
        if event.type in INVOICE_EVENTS:
            return self.apply_invoice(event, now)
        if event.type in CHARGE_EVENTS:
            return self.apply_charge(event, now)
        if event.type in CUSTOMER_EVENTS:
            return self.apply_customer_deleted(event, now)
        return Outcome("ignored", f"event type {event.type} is not handled")

    # -- subscriptions ---------------------------------------------------------------------

    def sync_subscription(self, event: StripeEvent, now: int) -> Outcome:
        snapshot = subscription_snapshot(event)
        plan = self._plan_for(snapshot.price_ids)
        state = self._known_state(snapshot.member_id_hint, snapshot.customer_id)
        record = _subscription(state, snapshot.subscription_id) if state else None
        if plan is None and record is None:
            prices = ", ".join(snapshot.price_ids) or "none"
            return Outcome("ignored", f"no plan sells price(s) {prices}; add them to a plan to track this subscription")
        if state is None:
            state = self._new_member_state(snapshot.customer_id, now)
        member = state.member
        record = record or SubscriptionRecord(
            subscription_id=snapshot.subscription_id,
            member_id=member.id,
            customer_id=snapshot.customer_id,
            plan_id=plan.id if plan else "",
        )
        merged = merge_snapshot(record, snapshot)
        # The plan follows the newest snapshot's price (an upgrade moves the grant), and a stale
        # snapshot never moves it back.
        latest_plan = plan if merged.latest is snapshot else (self._plan_for(merged.latest.price_ids) if merged.latest else None)
        if latest_plan is not None:
            merged = replace(merged, plan_id=latest_plan.id)
        saved = self.stores.subscriptions.save(merged)
        # After the save: a snapshot run reading the history after this mark sees the event.
        mark_late(self.stores, snapshot.created, event.id, now)
        self._refresh(member.id, now, _with_subscription(state, saved))
        return Outcome("processed", f"subscription {snapshot.subscription_id} is {merged.status}", member.id)

    # -- checkout ----------------------------------------------------------------------------

    def apply_checkout(self, event: StripeEvent, now: int) -> Outcome:
        completion = checkout_completion(event)
        if completion.mode == "payment":
            return self.apply_one_time_payment(event, now)
        if completion.mode != "subscription" or not completion.subscription_id:
            return Outcome("ignored", f"checkout session in {completion.mode or 'unknown'} mode sells no subscription")
        state = self._state(completion.member_id) if completion.member_id else None
        if state is None and completion.customer_id:
            state = self._known_state(None, completion.customer_id)
            if state is None:
                state = self._new_member_state(completion.customer_id, now)
        if state is None:
            return Outcome("ignored", "checkout session names neither a known member nor a customer")
        member = state.member
        if completion.customer_id and member.stripe_customer_id != completion.customer_id:
            member = self.stores.members.attach_customer(member.id, completion.customer_id, known=member)
        record = _subscription(state, completion.subscription_id) or SubscriptionRecord(
            subscription_id=completion.subscription_id,
            member_id=member.id,
            customer_id=completion.customer_id or "",
            plan_id="",
        )
        saved = self.stores.subscriptions.save(merge_checkout_gate(record, completion.gate))
        if saved.checkout_gate is CheckoutGate.PAID and record.checkout_gate is not CheckoutGate.PAID:
            # Counted when the gate first turns paid, so a redelivered event counts once.
            count_step(self.stores, completion.plan_id, PAID, event.created)
        if saved.checkout_gate is not record.checkout_gate and saved.history:
            # A settled (or failed) delayed payment puts the subscription in (or out of) the KPIs
            # from its first day.
            mark_late(self.stores, saved.history[0].created, event.id, now)
        self._remember_email(member.id, event)
        self._close_attempt(state, completion.plan_id, completion.session_id)
        self._refresh(member.id, now, _with_subscription(state, saved))
        return Outcome(
            "processed",
            f"checkout {completion.session_id} for subscription {completion.subscription_id}: {completion.gate.value}",
            member.id,
        )

    def apply_one_time_payment(self, event: StripeEvent, now: int) -> Outcome:
        """A paid payment-mode session of a pass or lifetime plan becomes a one-time grant."""
        completion = checkout_completion(event)
        plan = self.stores.catalog.get_plan(completion.plan_id) if completion.plan_id else None
        if plan is None or not plan.kind.one_time:
            return Outcome(
                "ignored",
                f"payment session {completion.session_id} names no pass or lifetime plan "
                f"({completion.plan_id or 'no membergate_plan_id in its metadata'})",
            )
        state = self._state(completion.member_id) if completion.member_id else None
        if state is None and completion.customer_id:
            state = self._known_state(None, completion.customer_id)
            if state is None:
                state = self._new_member_state(completion.customer_id, now)
        if state is None:
            return Outcome("ignored", "payment session names neither a known member nor a customer")
        member = state.member
        if completion.customer_id and member.stripe_customer_id != completion.customer_id:
            member = self.stores.members.attach_customer(member.id, completion.customer_id, known=member)
        seen = OneTimeGrant(
            grant_id=completion.session_id,
            member_id=member.id,
            plan_id=plan.id,
            kind=plan.kind,
            paid_at=event.created,
            access_seconds=plan.access_days * 86_400 if plan.access_days else None,
            gate=completion.gate,
            amount=completion.amount_total,
            currency=completion.currency,
            payment_intent=completion.payment_intent or "",
        )
        stored = next((g for g in state.grants if g.grant_id == seen.grant_id), None)
        grant = merge_grant(stored, seen)
        self.stores.grants.save(grant)
        if grant.gate is CheckoutGate.PAID and (stored is None or stored.gate is not CheckoutGate.PAID):
            count_step(self.stores, plan.id, PAID, event.created)
        self._remember_email(member.id, event)
        self._close_attempt(state, plan.id, completion.session_id)
        others = [g for g in state.grants if g.grant_id != grant.grant_id]
        self._refresh(member.id, now, replace(state, grants=[*others, grant]))
        return Outcome("processed", f"{plan.kind.value} {plan.id} bought in {completion.session_id}: {grant.gate.value}",
                       member.id)

    def _close_attempt(self, state: MemberState, plan_id: str | None, session_id: str) -> None:
        """A completed session is never handed out again; the next checkout starts a new attempt."""
        if not plan_id:
            return
        if self.stores.states is not None:
            attempt = state.checkouts.get(plan_id)
        else:
            attempt = self.stores.checkouts.get_attempt(state.member.id, plan_id)
        if attempt is not None and attempt.session_id == session_id:
            self.stores.checkouts.save_attempt(replace(attempt, session_id=None, url=None, expires_at=0))

    # -- refunds, disputes, deleted customers ------------------------------------------------

    def apply_charge(self, event: StripeEvent, now: int) -> Outcome:
        """A full refund ends the grant it paid for; a dispute follows the policy; partial refunds do nothing."""
        fact = charge_fact(event)
        grant = self.stores.grants.find_by_payment_intent(fact.payment_intent) if fact.payment_intent else None
        if grant is None:
            if fact.member_id:
                # Our checkout's payment, but its checkout.session.completed has not been applied
                # yet (delivery order is not guaranteed): let the queue bring this event back.
                raise RetryableError(
                    f"payment {fact.payment_intent} of member {fact.member_id} has no grant yet; retrying later"
                )
            if event.type == "charge.refunded":
                return self.apply_subscription_refund(fact, now)
            return Outcome(
                "ignored",
                f"{event.type} for payment {fact.payment_intent or 'unknown'}: no pass or lifetime grant was paid by it",
            )
        if event.type == "charge.refunded":
            if not fact.fully_refunded:
                return Outcome("processed", f"partial refund of {grant.grant_id}: access unchanged", grant.member_id)
            seen = replace(grant, ended_reason="refunded")
        else:
            seen = replace(grant, dispute=fact.dispute, dispute_policy=self.dispute_policy)
        merged = merge_grant(grant, seen)
        self.stores.grants.save(merged)
        self._refresh(grant.member_id, now)
        detail = f"{event.type} for {grant.kind.value} {grant.plan_id} ({grant.grant_id}): " + (
            f"ended ({merged.end_reason})" if merged.end_reason else "access kept"
        )
        # The creator must answer a dispute in Stripe before its deadline: the handler raises an alert.
        alert = (
            f"dispute {merged.dispute} on {grant.grant_id} of member {grant.member_id}: answer it in the Stripe "
            "dashboard (Payments > Disputes) before its evidence deadline"
            if event.type.startswith("charge.dispute.")
            else ""
        )
        return Outcome("processed", detail, grant.member_id, alert=alert)

    def apply_subscription_refund(self, fact: ChargeFact, now: int) -> Outcome:
        """A full refund of a subscription's latest payment ends that grant until the next payment.

        Renewal charges carry none of our metadata and (since 2025-03-31) no invoice either: the
        refunded charge is matched to the customer's subscription paid last at or before it.
        """
        member = self.stores.members.find_by_customer(fact.customer_id) if fact.customer_id else None
        records = self.stores.subscriptions.for_member(member.id) if member else []
        if member is None or not records:
            return Outcome("ignored", f"refund of payment {fact.payment_intent or 'unknown'}: no grant was paid by it")
        if not fact.fully_refunded:
            return Outcome("processed", f"partial refund of payment {fact.payment_intent}: access unchanged", member.id)
        when = fact.charge_created if fact.charge_created is not None else now
        paid_before = [r for r in records if r.last_paid_at is not None and r.last_paid_at <= when + PAYMENT_SLACK]
        if paid_before:
            record = max(paid_before, key=lambda r: (r.last_paid_at, r.subscription_id))
        elif len(records) == 1:
            record = records[0]
        else:
            return Outcome("ignored", f"refund of payment {fact.payment_intent}: it matches none of "
                                      f"{len(records)} subscriptions of member {member.id}")
        self.stores.subscriptions.save(
            replace(record, refunded_payment_at=max(record.refunded_payment_at or 0, when))
        )
        self._refresh(member.id, now)
        return Outcome("processed", f"refund of subscription {record.subscription_id}'s payment of {when}: "
                                    "its grant ends until the next payment", member.id)

    def apply_customer_deleted(self, event: StripeEvent, now: int) -> Outcome:
        """A customer deleted in Stripe ends their one-time grants (Stripe cancels their subscriptions itself)."""
        customer_id = event.customer_id
        member = self.stores.members.find_by_customer(customer_id) if customer_id else None
        if member is None:
            return Outcome("ignored", f"customer {customer_id or 'unknown'} belongs to no member")
        ended = 0
        for grant in self.stores.grants.for_member(member.id):
            if grant.given:  # the creator's gift was never Stripe's to end
                continue
            merged = merge_grant(grant, replace(grant, ended_reason="customer_deleted"))
            if merged != grant:
                self.stores.grants.save(merged)
                ended += 1
        self._refresh(member.id, now)
        return Outcome("processed", f"customer {customer_id} deleted: {ended} grant(s) ended", member.id)

    # -- invoices ----------------------------------------------------------------------------

    def apply_invoice(self, event: StripeEvent, now: int) -> Outcome:
        # Status never comes from invoices (subscription snapshots carry it); invoices only
        # feed messages and the creator's ledger.
        fact = invoice_fact(event)
        member_id = self.stores.members.member_id_for_customer(fact.customer_id) if fact.customer_id else None
        # A paid invoice may give a refunded grant back: one read of the member (projection
        # first); the other invoice events read the member alone.
        state = self._state(member_id) if member_id and event.type == "invoice.paid" else None
        member = state.member if state else (self.stores.members.get(member_id) if member_id else None)
        if member is None:
            return Outcome("ignored", f"invoice {fact.invoice_id} is for a customer no member has")
        detail = (
            f"invoice {fact.invoice_id} {event.type.split('.', 1)[1]}: "
            f"{fact.amount_paid if event.type == 'invoice.paid' else fact.amount_due} {fact.currency}"
        )
        if event.type == "invoice.paid" and fact.subscription_id:
            record = _subscription(state, fact.subscription_id) if state else None
            paid_at = fact.paid_at if fact.paid_at is not None else event.created
            if state is not None and record is not None and (record.last_paid_at or 0) < paid_at:
                # A payment after a refunded one gives the grant back (see last_payment_refunded).
                saved = self.stores.subscriptions.save(replace(record, last_paid_at=paid_at))
                self._refresh(member.id, now, _with_subscription(state, saved))
        if event.type == "invoice.payment_action_required" and fact.subscription_id:
            record = self.stores.subscriptions.get(member.id, fact.subscription_id)
            plan = self.stores.catalog.get_plan(record.plan_id) if record and record.plan_id else None
            if plan is not None and plan.grants:
                self.access_queue.send(
                    [
                        AccessWork(
                            WorkKind.NOTIFY,
                            member.id,
                            plan.grants[0].community_id,
                            message_kind="payment_action_required",
                            message_period=fact.invoice_id,
                            details=(("invoice_url", fact.hosted_invoice_url or ""), ("plan_id", plan.id)),
                        )
                    ]
                )
        return Outcome("processed", detail, member.id)

    # -- helpers -----------------------------------------------------------------------------

    def _remember_email(self, member_id: str, event: StripeEvent) -> None:
        """Keep the buyer's email: messages their platform refuses (DMs closed) go there instead."""
        email = customer_email(event.object)
        if email and self.stores.contacts is not None:
            self.stores.contacts.set_email(member_id, email)

    def _plan_for(self, price_ids: tuple[str, ...]) -> Plan | None:
        for price_id in price_ids:
            plan = self.stores.catalog.plan_for_price(price_id)
            if plan is not None:
                return plan
        return None

    def _known_state(self, member_hint: str | None, customer_id: str) -> MemberState | None:
        if member_hint:
            state = self._state(member_hint)
            if state is not None:
                if state.member.stripe_customer_id != customer_id:
                    attached = self.stores.members.attach_customer(member_hint, customer_id, known=state.member)
                    state = replace(state, member=attached)
                return state
        member = self.stores.members.find_by_customer(customer_id)
        return self._state(member.id) if member else None

    def _state(self, member_id: str) -> MemberState | None:
        """One read on DynamoDB; composed from the repositories (projection first) otherwise."""
        if self.stores.states is not None:
            return self.stores.states.load(member_id)
        entitlements, revision = self.stores.entitlements.read(member_id)
        member = self.stores.members.get(member_id)
        if member is None:
            return None
        records = self.stores.subscriptions.for_member(member_id)
        grants = self.stores.grants.for_member(member_id)
        return MemberState(member, records, entitlements, revision, checkouts={}, grants=grants)

    def _new_member_state(self, customer_id: str, now: int) -> MemberState:
        # Made outside Membergate's checkout (dashboard, payment link, existing subscriber):
        # the member exists from the customer and access waits for an identity to be bound.
        new_id = self.new_id()
        member = self.stores.members.create_for_customer(customer_id, new_id, now)
        if member.id == new_id:
            # Created by this very call: nothing else of theirs exists yet, nothing to read.
            return MemberState(member, [], [], "", {})
        return self._state(member.id) or MemberState(member, [], [], "", {})

    def _refresh(self, member_id: str, now: int, state: MemberState | None = None) -> None:
        refresh_member(self.stores, self.access_queue, member_id, now, sweep_now=True, state=state)


def _subscription(state: MemberState, subscription_id: str) -> SubscriptionRecord | None:
    return next((r for r in state.subscriptions if r.subscription_id == subscription_id), None)


def _with_subscription(state: MemberState, saved: SubscriptionRecord) -> MemberState:
    """The state as it is after this use case saved ``saved`` (the projection read stays as read)."""
    others = [r for r in state.subscriptions if r.subscription_id != saved.subscription_id]
    return replace(state, subscriptions=[*others, saved])
