"""run_lifecycle: the scheduled sweep over members with something due, and only those."""

from __future__ import annotations

from dataclasses import dataclass, replace

from datetime import datetime, timezone

from ..domain.alerts import AlertKind
from ..domain.billing import SubscriptionRecord, merge_snapshot
from ..domain.errors import RetryableError
from ..domain.lifecycle import (
    CANCELLATION_RECEIPT,
    CARD_EXPIRING,
    CardOnFile,
    GRACE_ENDING,
    GRACE_STARTED,
    UNCANCELLED,
    LifecycleDecision,
    Reminder,
    decide,
)
from ..domain.model import MessageKey
from ..ports import AccessWorkQueue, BillingGateway, Stores, notify_work
from .alerts import AlertRecorder, record_alert
from .membership import refresh_member
from .member_links import issue_portal_link
from .survey import issue_survey_link

SWEEP_BATCH = 500


@dataclass(frozen=True)
class SweepReport:
    members: int
    reminders: int
    cancellations: int
    errors: int


def run_lifecycle(
    *,
    stores: Stores,
    billing: BillingGateway,
    access_queue: AccessWorkQueue,
    now: int,
    limit: int = SWEEP_BATCH,
    alerts: AlertRecorder | None = None,
    time_zone: str = "UTC",
) -> SweepReport:
    """``alerts``: where a late legal notice is reported to the creator; ``time_zone``: the
    creator's, where the legal notice's calendar months are counted."""
    members = reminders = cancellations = errors = 0
    for member_id in stores.entitlements.due(now, limit):
        members += 1
        try:
            sent, cancelled = _sweep_member(stores, billing, access_queue, member_id, now, alerts, time_zone)
        except RetryableError:
            # Left due: the next run tries again (e.g. Stripe unreachable while cancelling).
            errors += 1
            continue
        reminders += sent
        cancellations += cancelled
    return SweepReport(members, reminders, cancellations, errors)


def _recheck_with_stripe(
    stores: Stores, billing: BillingGateway, records: list[SubscriptionRecord], decision: LifecycleDecision, now: int
) -> list[SubscriptionRecord]:
    """Read each subscription about to be cancelled back from Stripe first.

    Cancelling is the one irreversible step: if a payment went through and its webhook is late
    (or lost its same-second tie to the past_due one), Stripe's answer, newer than any event we
    hold, keeps a paying member from being cancelled.
    """
    by_id = {r.subscription_id: r for r in records}
    for cancellation in decision.cancellations:
        snapshot = billing.fetch_subscription(cancellation.subscription_id, now)
        if snapshot is None:
            continue
        record = by_id[cancellation.subscription_id]
        by_id[record.subscription_id] = stores.subscriptions.save(merge_snapshot(record, snapshot))
    return list(by_id.values())


def _details(plan_id: str, reminder: Reminder) -> tuple[tuple[str, str], ...]:
    details = [("plan_id", plan_id), ("subscription_id", reminder.subscription_id)]
    if reminder.grace_ends_at is not None:
        details.append(("grace_ends_at", str(reminder.grace_ends_at)))
    if reminder.ends_at is not None:
        details.append(("ends_at", str(reminder.ends_at)))
    return tuple(details)


def _survey(stores: Stores, member_id: str, plan_id: str, reminder: Reminder, now: int) -> tuple[tuple[str, str], ...]:
    """A cancellation receipt carries a link to the one-question exit survey."""
    if reminder.kind != CANCELLATION_RECEIPT or stores.surveys is None:
        return ()
    token = issue_survey_link(stores.surveys, member_id=member_id, plan_id=plan_id,
                              subscription_id=reminder.subscription_id, period=reminder.period, now=now)
    return (("survey_token", token),)


def _portal(stores: Stores, member_id: str, plan_id: str, reminder: Reminder, now: int) -> tuple[tuple[str, str], ...]:
    """A payment reminder links straight to Stripe's billing portal, to update the card in one tap."""
    if reminder.kind not in (GRACE_STARTED, GRACE_ENDING, CARD_EXPIRING) or stores.member_links is None:
        return ()
    return (("portal_token", issue_portal_link(stores.member_links, member_id, plan_id, now)),)


def _cards(stores: Stores, records: list[SubscriptionRecord]) -> dict[str, CardOnFile]:
    """The card on file of each customer paying for these subscriptions (one read per customer)."""
    if stores.cards is None:
        return {}
    found = {}
    for customer_id in sorted({r.customer_id for r in records if r.customer_id}):
        card = stores.cards.card(customer_id)
        if card is not None:
            found[customer_id] = card
    return found


def _late_legal_notice(alerts: AlertRecorder | None, member_id: str, plan_id: str, reminder: Reminder, now: int) -> None:
    """Tell the creator a legal renewal notice went out after its window (sent once: after its claim)."""
    if not reminder.late or reminder.ends_at is None:
        return
    renewal = datetime.fromtimestamp(reminder.ends_at, timezone.utc).strftime("%Y-%m-%d")
    record_alert(alerts, AlertKind.LEGAL_NOTICE_LATE, f"legal_notice_late:{member_id}:{reminder.period}", now,
                 member_id=member_id, subject=plan_id,
                 detail=f"renewal {renewal}, {reminder.subscription_id}: notice sent late, the member may "
                        "terminate at any time (L215-1)")


def _sweep_member(
    stores: Stores, billing: BillingGateway, access_queue: AccessWorkQueue, member_id: str, now: int,
    alerts: AlertRecorder | None = None, time_zone: str = "UTC",
) -> tuple[int, int]:
    records = stores.subscriptions.for_member(member_id)
    plans = {}
    for record in records:
        if record.plan_id and record.plan_id not in plans:
            plan = stores.catalog.get_plan(record.plan_id)
            if plan is not None:
                plans[plan.id] = plan
    decision = decide(records, plans, now, _cards(stores, records), time_zone=time_zone)
    sent = 0
    for reminder in decision.reminders:
        plan = plans[reminder.plan_id]
        key = MessageKey(member_id, reminder.kind, reminder.period)
        if reminder.kind == UNCANCELLED and stores.messages.status(MessageKey(member_id, CANCELLATION_RECEIPT, reminder.period)) is None:
            continue  # nothing said about the cancellation: nothing to take back
        if not plan.grants or not stores.messages.claim(key, now):
            continue
        access_queue.send([notify_work(
            member_id, plan.grants[0].community_id, reminder.kind, reminder.period,
            _details(plan.id, reminder) + _survey(stores, member_id, plan.id, reminder, now)
            + _portal(stores, member_id, plan.id, reminder, now),
        )])
        sent += 1
        _late_legal_notice(alerts, member_id, plan.id, reminder, now)
    cancelled = 0
    if decision.cancellations:
        records = _recheck_with_stripe(stores, billing, records, decision, now)
        decision = decide(records, plans, now, time_zone=time_zone)
    by_id = {r.subscription_id: r for r in records}
    for cancellation in decision.cancellations:
        billing.cancel_subscription(cancellation.subscription_id, cancellation.idempotency_key)
        stores.subscriptions.save(replace(by_id[cancellation.subscription_id], cancel_requested_at=now))
        cancelled += 1
    # Recompute the projection (grace may just have ended) and set the next due time.
    refresh_member(stores, access_queue, member_id, now, sweep_now=False, time_zone=time_zone)
    return sent, cancelled
