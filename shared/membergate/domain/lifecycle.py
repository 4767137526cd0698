"""Time-driven rules: which reminders are due, when grace runs out, when to look again."""

from __future__ import annotations

from dataclasses import dataclass

from .billing import SubscriptionRecord, grant_status, scheduled_end
from .model import EntitlementState, OnGraceEnd, Plan

DAY = 86_400
# The "grace is ending" reminder goes out a day before the end, or halfway for short graces.
MAX_REMINDER_LEAD = DAY


@dataclass(frozen=True)
class Reminder:
    kind: str  # "grace_started" | "grace_ending"
    subscription_id: str
    plan_id: str
    period: str  # one message per (member, kind, period)
    grace_ends_at: int


@dataclass(frozen=True)
class Cancellation:
    subscription_id: str
    idempotency_key: str


@dataclass(frozen=True)
class LifecycleDecision:
    reminders: tuple[Reminder, ...]
    cancellations: tuple[Cancellation, ...]
    next_due_at: int | None


def reminder_lead(plan: Plan) -> int:
    return min(MAX_REMINDER_LEAD, plan.grace_seconds // 2)


def decide(records: list[SubscriptionRecord], plans: dict[str, Plan], now: int) -> LifecycleDecision:
    reminders: list[Reminder] = []
    cancellations: list[Cancellation] = []
    upcoming: list[int] = []
    for record in records:
        plan = plans.get(record.plan_id)
        if plan is None or record.latest is None:
            continue
        status = grant_status(record, plan, now)
        since = record.past_due_since
        if record.status == "past_due" and since is not None:
            grace_end = since + plan.grace_seconds
            period = f"{record.subscription_id}:{since}"
            if status.state is EntitlementState.GRACE:
                reminders.append(Reminder("grace_started", record.subscription_id, plan.id, period, grace_end))
                ending_at = grace_end - reminder_lead(plan)
                if now >= ending_at:
                    reminders.append(Reminder("grace_ending", record.subscription_id, plan.id, period, grace_end))
                else:
                    upcoming.append(ending_at)
                upcoming.append(grace_end)
            elif (
                status.reason == "grace_expired"
                and plan.on_grace_end is OnGraceEnd.CANCEL
                and record.cancel_requested_at is None
            ):
                cancellations.append(
                    Cancellation(record.subscription_id, f"membergate-grace-end-{record.subscription_id}-{since}")
                )
        elif status.state is EntitlementState.ACTIVE:
            end = scheduled_end(record.latest)
            if end is not None and end > now:
                upcoming.append(end)
    future = [t for t in upcoming if t > now]
    return LifecycleDecision(tuple(reminders), tuple(cancellations), min(future) if future else None)

