"""apply_stripe_event: fold one queued Stripe event into subscriptions, grants and access work."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..domain.billing import ENDED_STATUSES, GRACE_MIN_NOTICE, PAYMENT_SLACK, SubscriptionRecord, merge_checkout_gate, merge_snapshot
from ..domain.billing import SubscriptionSnapshot, needs_read_back, read_back_at
from ..domain.disputes import PAUSE, collection_change, collection_key
from ..domain.errors import ConcurrentUpdateError, MalformedEventError, PermanentError, RetryableError
from ..domain.controls import AuditEntry
from ..domain.consent import keep_consent
from ..domain.funnel import PAID
from ..domain.grants import DISPUTE_POLICIES, DISPUTE_REVOKE, OneTimeGrant, dispute_policy_for, merge_dispute, merge_grant
from ..domain.model import TERMINAL_LEDGER_STATUSES, CheckoutGate, LedgerEntry, LedgerStatus, Member, Plan, WorkKind
from ..domain.stripe_events import (
    CHARGE_EVENTS,
    CHECKOUT_EVENTS,
    EXPIRY_EVENTS,
    CUSTOMER_EVENTS,
    CUSTOMER_FACT_EVENTS,
    INVOICE_EVENTS,
    SUBSCRIPTION_EVENTS,
    ChargeFact,
    CheckoutCompletion,
    StripeEvent,
    charge_fact,
    card_on_file,
    customer_email,
    customer_object_email,
    checkout_completion,
    invoice_fact,
    parse_event,
    snapshot_of,
    subscription_snapshot,
)
from ..domain.trials import trial_key, trial_keys, trial_start
from ..ports import AccessWork, AccessWorkQueue, CollectionPauser, MemberState, PaymentLookup, Stores, TrialEnder, notify_work
from ..ports import SubscriptionReader
from .alerts import AlertRecorder, billing_alert, record_alert
from .checkout import release_seat
from .controls import audit
from .funnel import count_step
from .kpis import mark_late
from .membership import refresh_member
from ..domain.lifecycle import EmailOnFile, merge_card, merge_email


log = logging.getLogger(__name__)


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
        payments: PaymentLookup | None = None,
        alerts: AlertRecorder | None = None,
        trial_ender: TrialEnder | None = None,
        collection: CollectionPauser | None = None,
        reader: SubscriptionReader | None = None,
        grace_min_notice: int = GRACE_MIN_NOTICE,
    ):
        if dispute_policy not in DISPUTE_POLICIES:
            raise ValueError(f"dispute policy {dispute_policy!r}: use one of {', '.join(DISPUTE_POLICIES)}")
        self.stores = stores
        self.access_queue = access_queue
        self.new_id = id_factory
        self.dispute_policy = dispute_policy
        # Finds the subscription a disputed payment paid (through its invoice); None: disputes
        # on subscription payments are only reported.
        self.payments = payments
        self.alerts = alerts  # None: no creator alert channel is set, nothing is recorded
        # Ends a trial at Stripe (trial_end=now) when its card already had one; None: only audited.
        self.trial_ender = trial_ender
        # Pauses a disputed subscription's billing at Stripe while access is revoked (domain/disputes.py);
        # None: the dispute is only reported and the subscription keeps billing.
        self.collection = collection
        # Reads a subscription back from Stripe when two of its events tie in one second (domain/billing.py);
        # None: the ordering rule's pick stands until the subscription's next event.
        self.reader = reader
        # A failed payment learnt of late never removes the member sooner than this after it arrived.
        self.grace_min_notice = grace_min_notice

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
            self.stores.ledger.mark(self._entry(event, LedgerStatus.FAILED, exc.message, now), now)
            raise
        except ConcurrentUpdateError:
            raise  # nothing was saved: the next attempt sees the change and queues its work
        except RetryableError as exc:
            # The state may be saved while its access work was not queued (the queue refused the
            # send): the projection now matches the state, so the retry would see nothing changed.
            self._remember_access_unsent(event, exc, now)
            raise
        if existing is not None and existing.status == LedgerStatus.ACCESS_UNSENT and outcome.member_id:
            self._converge_every_place(outcome.member_id)
        self.stores.ledger.mark(self._entry(event, outcome.status, outcome.detail, now), now)
        return outcome

    def _remember_access_unsent(self, event: StripeEvent, error: RetryableError, now: int) -> None:
        try:
            self.stores.ledger.mark(self._entry(event, LedgerStatus.ACCESS_UNSENT, error.message, now), now)
        except RetryableError:
            # The store is down too: the weekly reconciliation is then what restores the access.
            pass

    def _converge_every_place(self, member_id: str) -> None:
        """The retry of an event whose access work was lost: converge every place the member has
        an entitlement for (converging is idempotent, so a place already right costs one read)."""
        entitlements, _ = self.stores.entitlements.read(member_id)
        communities = sorted({e.community_id for e in entitlements})
        if communities:
            self.access_queue.send([AccessWork(WorkKind.CONVERGE, member_id, c) for c in communities])

    @staticmethod
    def _entry(event: StripeEvent, status: str, detail: str, now: int) -> LedgerEntry:
        # Stored as the plain value (an Enum member would serialise as its name in places).
        return LedgerEntry(event.id, event.type, LedgerStatus(status).value, event.created, now, event.customer_id, detail)

    def _dispatch(self, event: StripeEvent, now: int) -> Outcome:
        outcome = self._apply_event(event, now)
        if self.alerts is not None and outcome.status == "processed" and (found := billing_alert(event, outcome.detail)):
            # Before the ledger says processed: a crash in between records it again, never loses it.
            record_alert(self.alerts, found[0], event.id, now, member_id=outcome.member_id or "", subject=found[1],
                         detail=found[2])
        return outcome

    def _apply_event(self, event: StripeEvent, now: int) -> Outcome:
        if event.type in SUBSCRIPTION_EVENTS:
            return self.sync_subscription(event, now)
        if event.type in CHECKOUT_EVENTS:
            return self.apply_checkout(event, now)
        if event.type in EXPIRY_EVENTS:
            return self.apply_checkout_expired(event)
        if event.type in INVOICE_EVENTS:
            return self.apply_invoice(event, now)
        if event.type in CHARGE_EVENTS:
            return self.apply_charge(event, now)
        if event.type in CUSTOMER_EVENTS:
            return self.apply_customer_deleted(event, now)
        if event.type in CUSTOMER_FACT_EVENTS:
            return self.apply_customer_facts(event)
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
        merged = merge_snapshot(record, snapshot, removal_floor=now + self.grace_min_notice)
        read_note = ""
        if record.latest is not None and needs_read_back(record.latest, snapshot):
            merged, read_note = self._settle_tie(merged, snapshot, now)
        # The plan follows the newest snapshot's price (an upgrade moves the grant), and a stale
        # snapshot never moves it back.
        latest_plan = plan if merged.latest is snapshot else (self._plan_for(merged.latest.price_ids) if merged.latest else None)
        if latest_plan is not None:
            merged = replace(merged, plan_id=latest_plan.id)
        saved = self.stores.subscriptions.save(merged)
        # After the save: a snapshot run reading the history after this mark sees the event.
        mark_late(self.stores, snapshot.created, event.id, now)
        self._refresh(member.id, now, _with_subscription(state, saved))
        if event.type == "customer.subscription.created" or record.status != "trialing":
            # A trial is noted once, by the event that starts it (created, or the update entering the trial;
            # a retry of created notes it again): later trialing snapshots (trial_will_end...) cost nothing.
            self._note_trial(event, member, now)
        return Outcome("processed", f"subscription {snapshot.subscription_id} is {merged.status}{read_note}", member.id)

    def _settle_tie(self, merged: SubscriptionRecord, tied: SubscriptionSnapshot,
                    now: int) -> tuple[SubscriptionRecord, str]:
        """Two events of one subscription in one second saying different things: Stripe's current answer,
        read after both existed, decides (domain/billing.py tie rule). Before anything is saved, so
        Stripe unreachable (RetryableError) leaves the event to be retried, nothing merged on a guess."""
        if self.reader is None:
            return merged, ""
        try:
            fresh = self.reader.fetch_subscription(tied.subscription_id, read_back_at(tied.created, now))
        except PermanentError as error:
            # Retrying cannot help (the key may not read subscriptions): the ordering rule's pick stands
            # until the subscription's next event, as before reads existed.
            log.warning("same-second tie kept as ordered: Stripe refused the read back",
                        extra={"subscription_id": tied.subscription_id, "reason": error.message,
                               "hint": "give the restricted key read access to Subscriptions (docs/deploy.md)"})
            return merged, ""
        except MalformedEventError as error:
            # Stripe's answer, not the event, is unusable: the event must not be marked failed for it.
            log.warning("same-second tie kept as ordered: Stripe's answer is not a usable subscription",
                        extra={"subscription_id": tied.subscription_id, "reason": error.message})
            return merged, ""
        if fresh is None or fresh.subscription_id != tied.subscription_id:
            log.warning("same-second tie kept as ordered: Stripe no longer knows the subscription",
                        extra={"subscription_id": tied.subscription_id})
            return merged, ""
        return (merge_snapshot(merged, fresh, removal_floor=now + self.grace_min_notice),
                " (same-second tie read back from Stripe)")

    # -- checkout ----------------------------------------------------------------------------

    def apply_checkout(self, event: StripeEvent, now: int) -> Outcome:
        completion = checkout_completion(event)
        if completion.mode == "payment":
            return self.apply_one_time_payment(event, now)
        if completion.mode != "subscription" or not completion.subscription_id:
            return Outcome("ignored", f"checkout session in {completion.mode or 'unknown'} mode sells no subscription")
        found = self._paying_member(completion, now)
        if found is None:
            return Outcome("ignored", "checkout session names neither a known member nor a customer")
        state, member = found
        record = _subscription(state, completion.subscription_id) or SubscriptionRecord(
            subscription_id=completion.subscription_id,
            member_id=member.id,
            customer_id=completion.customer_id or "",
            plan_id="",
        )
        # The page's consent is kept with the subscription it started, in the same write.
        gated = replace(merge_checkout_gate(record, completion.gate), consent=keep_consent(record.consent, completion.consent))
        saved = self.stores.subscriptions.save(gated)
        if saved.checkout_gate is CheckoutGate.PAID and record.checkout_gate is not CheckoutGate.PAID:
            # Counted when the gate first turns paid, so a redelivered event counts once.
            count_step(self.stores, completion.plan_id, PAID, event.created)
        if saved.checkout_gate is not record.checkout_gate and saved.history:
            # A settled (or failed) delayed payment puts the subscription in (or out of) the KPIs
            # from its first day.
            mark_late(self.stores, saved.history[0].created, event.id, now)
        self._remember_email(member.id, event)
        email = customer_email(event.object)
        if email and saved.status == "trialing" and self.stores.trials is not None:
            # Stripe makes the subscription before the Checkout completes: a new member's trial usually
            # starts with no email known yet, so the email this Checkout names is kept for that trial here.
            self.stores.trials.mark([trial_key("email", email)], saved.subscription_id, now)
        self._close_attempt(state, completion.plan_id, completion.session_id)
        self._refresh(member.id, now, _with_subscription(state, saved))
        return Outcome(
            "processed",
            f"checkout {completion.session_id} for subscription {completion.subscription_id}: {completion.gate.value}",
            member.id,
        )

    def apply_checkout_expired(self, event: StripeEvent) -> Outcome:
        """An expired session was never paid: the seat it held goes back on sale."""
        completion = checkout_completion(event)
        if release_seat(self.stores, plan_id=completion.plan_id, member_id=completion.member_id,
                        session_id=completion.session_id):
            return Outcome("processed", f"checkout {completion.session_id} expired: its seat of {completion.plan_id} is free again",
                           completion.member_id)
        return Outcome("ignored", f"checkout {completion.session_id} expired holding no seat")

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
        found = self._paying_member(completion, now)
        if found is None:
            return Outcome("ignored", "payment session names neither a known member nor a customer")
        state, member = found
        seen = OneTimeGrant(
            grant_id=completion.session_id,
            member_id=member.id,
            plan_id=plan.id,
            kind=plan.kind,
            paid_at=event.created,
            access_seconds=plan.access_days * 86_400 if plan.access_days else None,
            gate=completion.gate,
            amount=completion.amount_total,
            tax=min(completion.amount_tax, completion.amount_total),  # one-time revenue is net of it
            currency=completion.currency,
            payment_intent=completion.payment_intent or "",
            consent=completion.consent,
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
            if fact.payment_intent and self.payments is not None:
                return self.apply_subscription_dispute(event, fact, now)
            return Outcome(
                "ignored",
                f"{event.type} for payment {fact.payment_intent or 'unknown'}: no pass or lifetime grant was paid by it",
            )
        if event.type == "charge.refunded":
            if not fact.fully_refunded:
                return Outcome("processed", f"partial refund of {grant.grant_id}: access unchanged", grant.member_id)
            seen = replace(grant, ended_reason="refunded")
        else:
            # The policy recorded when the dispute was first seen stays (the plan's may have been edited since).
            policy = grant.dispute_policy if grant.dispute else self._dispute_policy(grant.plan_id)
            seen = replace(grant, dispute=fact.dispute, dispute_policy=policy)
        merged = merge_grant(grant, seen)
        self.stores.grants.save(merged)
        self._refresh(grant.member_id, now)
        detail = f"{event.type} for {grant.kind.value} {grant.plan_id} ({grant.grant_id}): " + (
            f"ended ({merged.end_reason})" if merged.end_reason else "access kept"
        )
        # The creator must answer a dispute in Stripe before its deadline: the handler raises an alert.
        alert = ""
        if event.type.startswith("charge.dispute."):
            alert = (f"dispute {merged.dispute} on {grant.grant_id} of member {grant.member_id}: "
                     + _dispute_advice(merged.dispute, merged.end_reason == "dispute"))
            self._audit_dispute(event, fact, grant.member_id, grant.grant_id, merged.dispute, merged.end_reason)
        return Outcome("processed", detail, grant.member_id, alert=alert)

    def apply_subscription_dispute(self, event: StripeEvent, fact: ChargeFact, now: int) -> Outcome:
        """A dispute on a subscription's payment: the payment's invoice names the subscription.

        Neither the dispute nor (since 2025-03-31) its charge names an invoice: Stripe's
        InvoicePayment for the PaymentIntent does. The dispute status only moves forward; the
        policy in force when the dispute was first seen stays with it.
        """
        assert self.payments is not None and fact.payment_intent
        try:
            paid = self.payments.invoice_paid_by(fact.payment_intent)
        except PermanentError as error:
            # Retrying cannot help (e.g. the key lacks Invoices: Read): the creator is told what to fix.
            return Outcome("ignored", f"{event.type} for payment {fact.payment_intent}: Stripe did not say which "
                                      f"invoice it paid ({error.message})",
                           alert=f"a dispute ({fact.dispute_id or 'unknown id'}) could not be matched to a subscription: "
                                 f"{error.message}; give the Stripe key Invoices: Read, and answer the dispute in the "
                                 "Stripe dashboard (Payments > Disputes)")
        if paid is None or not paid.subscription_id:
            return Outcome("ignored", f"{event.type} for payment {fact.payment_intent}: no pass, lifetime purchase "
                                      "or subscription invoice was paid by it")
        member = self.stores.members.find_by_customer(paid.customer_id) if paid.customer_id else None
        record = self.stores.subscriptions.get(member.id, paid.subscription_id) if member else None
        if member is None or record is None:
            # The subscription's own events create it: let the queue bring this one back.
            raise RetryableError(f"dispute on subscription {paid.subscription_id}'s invoice {paid.invoice_id}: "
                                 "subscription not known yet; retrying later")
        seen = merge_dispute(record.dispute, fact.dispute)
        saved = replace(record, dispute=seen, dispute_policy=record.dispute_policy or self._dispute_policy(record.plan_id))
        # Before the save: a failed Stripe call leaves the stored status as it was, so the retry asks again.
        saved, billing = self._follow_collection(record, saved, now)
        if saved != record:
            self.stores.subscriptions.save(saved)
        self._refresh(member.id, now)
        ends = saved.disputed
        self._audit_dispute(event, fact, member.id, record.subscription_id, seen, "dispute" if ends else "", billing)
        alert = (f"dispute {seen} on subscription {record.subscription_id} (invoice {paid.invoice_id}) of member "
                 f"{member.id}: " + _dispute_advice(seen, ends) + (f"; {billing}" if billing else ""))
        detail = (f"{event.type} for subscription {record.subscription_id} (invoice {paid.invoice_id}): "
                  + ("ended (dispute)" if ends else "access kept"))
        return Outcome("processed", detail, member.id, alert=alert)

    def _follow_collection(self, record: SubscriptionRecord, saved: SubscriptionRecord,
                           now: int) -> tuple[SubscriptionRecord, str]:
        """Pause (or resume) the subscription's billing at Stripe as the dispute step asks; the record with
        Stripe's answer folded in (access follows at once), and what was done, for the creator."""
        live = record.status not in ENDED_STATUSES and record.cancel_requested_at is None
        paused = bool(record.latest and record.latest.pause_collection)
        change = collection_change(record.dispute, saved.dispute, saved.dispute_policy, live=live, paused=paused,
                                   ours=record.dispute_paused)
        if change is None or self.collection is None:
            return saved, ""
        pausing = change == PAUSE
        try:
            fresh = self.collection.set_collection_paused(record.subscription_id, pausing,
                                                          collection_key(record.subscription_id, change))
        except PermanentError as error:
            # Retrying cannot help (the subscription ended meanwhile, the key may not write subscriptions):
            # the dispute still counts, and the creator is told what to do by hand.
            return saved, (f"billing could not be {'paused' if pausing else 'resumed'} at Stripe ({error.message}): "
                           f"{'pause' if pausing else 'resume'} payment collection of {record.subscription_id} in the "
                           "Stripe dashboard (Subscriptions)")
        saved = replace(saved, dispute_paused=pausing)
        if fresh is not None:
            snapshot = snapshot_of(fresh, created=now, source_id=f"stripe-{change}-{now}",
                                   livemode=record.latest.livemode if record.latest else False,
                                   what=f"subscription after {change} collection")
            saved = merge_snapshot(saved, snapshot)
        return saved, ("billing paused at Stripe until the dispute closes (its invoices are voided, nothing is charged)"
                       if pausing else "billing resumed at Stripe")

    def _dispute_policy(self, plan_id: str) -> str:
        """The disputed plan's policy, else the deployment's. Read fresh (list_plans reloads the
        processor's catalog snapshot): a creator's edit counts from the next dispute, and disputes
        are rare enough for the one Query."""
        plan = next((p for p in self.stores.catalog.list_plans() if p.id == plan_id), None) if plan_id else None
        return dispute_policy_for(plan.dispute_policy if plan else "", self.dispute_policy)

    def _audit_dispute(self, event: StripeEvent, fact: ChargeFact, member_id: str, target: str, status: str,
                       ended: str, billing: str = "") -> None:
        """The creator's audit log keeps every dispute step (one entry per event: retries rewrite it)."""
        if self.stores.audit is None:
            return
        self.stores.audit.record(AuditEntry(
            f"aud_{event.created:x}_{event.id}", event.created, "stripe", f"dispute.{status}", target, member_id,
            _dispute_advice(status, ended == "dispute"),
            {"dispute_id": fact.dispute_id or "", "payment_intent": fact.payment_intent or "",
             "access": "revoked" if ended == "dispute" else "kept"} | ({"billing": billing} if billing else {}),
        ))

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

    def apply_customer_facts(self, event: StripeEvent) -> Outcome:
        """Keep what Stripe says the customer's email (customer.updated) and card on file are now.

        The card is kept per customer, so an event arriving before the member is known still counts."""
        customer_id = event.customer_id
        if not customer_id:
            return Outcome("ignored", f"{event.type} names no customer")
        said: list[str] = []
        card = card_on_file(event)
        erased = False
        if card is not None and self.stores.cards is not None:
            # A card with its expiry and trial key is all merge_card would keep when it is the newest news:
            # one conditional write then (the DynamoDB budget); otherwise read, merge, write.
            if card.expires_at is not None and card.trial_key and self.stores.cards.save_if_newer(customer_id, card):
                merged = card
            else:
                current = self.stores.cards.card(customer_id)
                merged = merge_card(current, card)
                if merged != current:
                    self.stores.cards.save_card(customer_id, merged)
            erased = merged.erased
            said.append("member erased: card not kept" if merged.erased else f"card on file {merged.payment_method_id}")
        # The member's id is all that is needed here: one read of the customer's link, not of the member too.
        member_id = self.stores.members.member_id_for_customer(customer_id)
        if (member_id is not None and card is not None and card.trial_key and not erased
                and event.type == "payment_method.attached"):  # an erased member's card is not looked at
            said.append(self._note_card_trial(member_id, card.trial_key, event.created, event.id))
        email = customer_object_email(event.object)
        if member_id is not None and email:
            said.append(self._follow_email(member_id, EmailOnFile(email, event.created)))
        return Outcome("processed", "; ".join(said) or "nothing Membergate keeps changed", member_id)

    def _follow_email(self, member_id: str, seen: EmailOnFile) -> str:
        """The email changed in Stripe (the member or the creator edited it): messages follow it.
        Never for an erased member (or one being erased): what was deleted stays deleted. A late,
        older event never puts an old address back (merge_email; the same calls as before)."""
        if self.stores.contacts is None:
            return "emails are not kept"
        if self.stores.privacy is not None and self.stores.privacy.erasure(member_id) is not None:
            return "member erased: email not kept"
        current = self.stores.contacts.contact(member_id)
        merged = merge_email(current, seen)
        if merged == current:
            return "email unchanged" if current.email == seen.email else "older than the email on file: not kept"
        # Conditional: an event applied meanwhile by another processor, if newer, stays.
        stored = self.stores.contacts.keep_email(member_id, merged)
        if not stored:
            return "older than the email on file: not kept"
        return "email unchanged" if current is not None and current.email == seen.email else "email updated"

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
                # The same write keeps the tax its prices include, for MRR net of tax (docs/kpis.md).
                rate = fact.tax_inclusive_rate if fact.tax_inclusive_rate is not None else record.tax_inclusive_rate
                saved = self.stores.subscriptions.save(replace(record, last_paid_at=paid_at, tax_inclusive_rate=rate))
                self._refresh(member.id, now, _with_subscription(state, saved))
        if event.type == "invoice.payment_action_required" and fact.subscription_id:
            record = self.stores.subscriptions.get(member.id, fact.subscription_id)
            plan = self.stores.catalog.get_plan(record.plan_id) if record and record.plan_id else None
            if plan is not None and plan.grants:
                self.access_queue.send([notify_work(
                    member.id, plan.grants[0].community_id, "payment_action_required", fact.invoice_id,
                    (("invoice_url", fact.hosted_invoice_url or ""), ("plan_id", plan.id)),
                )])
        return Outcome("processed", detail, member.id)

    # -- helpers -----------------------------------------------------------------------------

    def _note_trial(self, event: StripeEvent, member: Member, now: int) -> None:
        """A trialing subscription uses up a trial for the member's accounts, email and card. The card
        is the expanded default payment method's, else the one payment_method.attached kept earlier."""
        started = trial_start(event.object)
        if started is None or self.stores.trials is None:
            return
        card = trial_key("card", started.card_fingerprint) if started.card_fingerprint else None
        if card is None and self.stores.cards is not None and event.customer_id:
            kept = self.stores.cards.card(event.customer_id)
            card = kept.trial_key if kept is not None and not kept.erased else None
        email = self.stores.contacts.email(member.id) if self.stores.contacts is not None else None
        self._use_trial(member.id, started.subscription_id, trial_keys(member.identities, email) + ([card] if card else []),
                        card, now, event.id)

    def _note_card_trial(self, member_id: str, card: str, now: int, event_id: str) -> str:
        """A card attached after its trialing subscription was seen: the same rule as _note_trial."""
        if self.stores.trials is None:
            return "trials are not kept"
        trialing = [r for r in self.stores.subscriptions.for_member(member_id) if r.status == "trialing"]
        for record in trialing:
            self._use_trial(member_id, record.subscription_id, [card], card, now, event_id)
        return f"card checked for {len(trialing)} trial(s)"

    def _use_trial(self, member_id: str, subscription_id: str, keys: list[str], card: str | None, now: int,
                   event_id: str) -> None:
        """One rule, two sources: mark the keys; a card another trial used first ends this one, audited."""
        if self.stores.trials is None:
            return
        repeated = self.stores.trials.mark(keys, subscription_id, now)
        if card is None or card not in repeated:
            return
        # The attach and the subscription event (and a later trialing snapshot) all see the repeat:
        # the first event to claim this subscription's end acts, the others stop (its own retry acts again).
        if self.stores.trials.mark([trial_key("trial-end", subscription_id)], event_id, now):
            return
        ended = self.trial_ender is not None
        if self.trial_ender is not None:
            self.trial_ender.end_trial(subscription_id, idempotency_key=f"membergate-trial-end-{subscription_id}")
        if self.stores.audit is not None:
            audit(self.stores, actor="membergate", action="trial.end" if ended else "trial.repeat",
                  target=subscription_id, now=now, member_id=member_id,
                  reason="this card already had a free trial" + ("" if ended else "; end it in the Stripe dashboard"))

    def _remember_email(self, member_id: str, event: StripeEvent) -> None:
        """Keep the buyer's email: messages their platform refuses (DMs closed) go there instead."""
        email = customer_email(event.object)
        if email and self.stores.contacts is not None:
            # One conditional write, no read: a newer customer.updated already applied stays.
            self.stores.contacts.keep_email(member_id, EmailOnFile(email, event.created))

    def _plan_for(self, price_ids: tuple[str, ...]) -> Plan | None:
        for price_id in price_ids:
            plan = self.stores.catalog.plan_for_price(price_id)
            if plan is not None:
                return plan
        return None

    def _paying_member(self, completion: CheckoutCompletion, now: int) -> tuple[MemberState, Member] | None:
        """Who a completed session pays for: the member its metadata names, else its customer's member,
        else a new member for that customer; the session's customer is attached to them."""
        state = self._state(completion.member_id) if completion.member_id else None
        if state is None and completion.customer_id:
            state = self._known_state(None, completion.customer_id)
            if state is None:
                state = self._new_member_state(completion.customer_id, now)
        if state is None:
            return None
        member = state.member
        if completion.customer_id and member.stripe_customer_id != completion.customer_id:
            member = self.stores.members.attach_customer(member.id, completion.customer_id, known=member)
        return state, member

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


def _dispute_advice(status: str, revoked: bool) -> str:
    """What the creator reads about a dispute: what happened to access, and what to do next."""
    if status == "won":
        return "dispute won: access is back, nothing to do"
    if status == "lost":
        if revoked:
            return "dispute lost: access stays ended, and a subscription it paid is cancelled so the member is not charged again"
        return "dispute lost: access kept (dispute policy keep: the plan's dispute_policy, else DISPUTE_POLICY)"
    return ("access suspended until it closes" if revoked
            else "access kept (dispute policy keep: the plan's dispute_policy, else DISPUTE_POLICY)") + (
        "; answer it in the Stripe dashboard (Payments > Disputes) before its evidence deadline")


def _subscription(state: MemberState, subscription_id: str) -> SubscriptionRecord | None:
    return next((r for r in state.subscriptions if r.subscription_id == subscription_id), None)


def _with_subscription(state: MemberState, saved: SubscriptionRecord) -> MemberState:
    """The state as it is after this use case saved ``saved`` (the projection read stays as read)."""
    others = [r for r in state.subscriptions if r.subscription_id != saved.subscription_id]
    return replace(state, subscriptions=[*others, saved])
