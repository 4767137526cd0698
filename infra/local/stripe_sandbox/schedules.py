"""Subscription schedules made ``from_subscription``: a change (another price) that waits for a period end.

A mixin of the billing engine, behind ``/v1/subscription_schedules`` (billing/subscriptions/subscription-schedules).
What Membergate needs of it, as Stripe does it:

- ``from_subscription`` attaches a schedule to a live subscription with one phase, its current items
  until the current period end (the subscription's ``schedule`` is set: ``customer.subscription.updated``);
- an update sets the phases; the sandbox schedules changes at the subscription's period ends only,
  on its own interval (the current phase must keep the subscription's items and start);
- at a period end that starts a phase, the phase's items and metadata are applied without proration
  (``customer.subscription.updated``), then the renewal is invoiced at the new price;
- when the last phase ends, ``end_behavior: release`` releases the subscription (``schedule`` cleared);
- ``release`` does that at once (the pending change is gone); ``cancel`` cancels the subscription now.

Each change of a schedule is announced with ``subscription_schedule.created|updated|released|canceled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SandboxError, lookup
from .objects import AUTOMATIC, Item, RequestInfo, Schedule, SchedulePhase, Subscription, shift
from .shapes import new_id

if TYPE_CHECKING:
    from .engine import BillingEngine


class Schedules:
    """Subscription schedules attached to live subscriptions."""

    def get_schedule(self: BillingEngine, schedule_id: str) -> Schedule:
        return lookup(self.schedules, "subscription_schedule", schedule_id)

    def schedule_of(self: BillingEngine, sub: Subscription) -> Schedule | None:
        schedule = self.schedules.get(sub.schedule_id or "")
        return schedule if schedule is not None and schedule.live else None

    def refuse_if_scheduled(self: BillingEngine, sub: Subscription) -> None:
        """Stripe refuses to set a cancellation on a subscription a schedule manages: release it first."""
        schedule = self.schedule_of(sub)
        if schedule is not None:
            raise SandboxError(
                400,
                f"The subscription is managed by the subscription schedule `{schedule.id}`, and updating any "
                "cancelation behavior directly is not allowed. Please update the schedule instead.",
                param="cancel_at_period_end",
            )

    def schedule_from_subscription(
        self: BillingEngine, sub: Subscription, metadata: dict[str, str], now: int, request: RequestInfo
    ) -> Schedule:
        if sub.ended:
            raise SandboxError(400, f"Subscription {sub.id} is canceled: it cannot be managed by a schedule.",
                               param="from_subscription")
        if sub.schedule_id is not None:
            raise SandboxError(
                400,
                f"You cannot migrate a subscription that is already attached to a schedule: `{sub.schedule_id}`.",
                param="from_subscription",
            )
        phase = SchedulePhase(
            start_date=sub.period_start,
            end_date=sub.period_end,
            items=[(item.price_id, item.quantity) for item in sub.items],
        )
        schedule = Schedule(
            id=new_id("sub_sched"),
            customer_id=sub.customer_id,
            subscription_id=sub.id,
            created=now,
            currency=sub.currency,
            phases=[phase],
            metadata=dict(metadata),
        )
        self.schedules[schedule.id] = schedule
        with self.subscription_change(sub, now, request):
            sub.schedule_id = schedule.id
        self.emit("subscription_schedule.created", self.schedule_dict(schedule), now, request)
        return schedule

    def set_phases(
        self: BillingEngine, schedule: Schedule, phases: list[SchedulePhase], end_behavior: str | None,
        metadata: dict[str, str], now: int, request: RequestInfo,
    ) -> None:
        if not schedule.live:
            raise SandboxError(400, f"You cannot update a subscription schedule that is {schedule.status}.")
        sub = self.get_subscription(schedule.subscription_id or "")
        if not phases:
            raise SandboxError(400, "A subscription schedule needs at least one phase.", param="phases")
        first = phases[0]
        if (first.start_date, sorted(first.items)) != (
            sub.period_start, sorted((item.price_id, item.quantity) for item in sub.items)
        ):
            raise SandboxError(
                400,
                "The sandbox schedules changes at period ends only: phases[0] must keep the subscription's "
                "current items and start_date (its current_period_start).",
                param="phases[0]",
            )
        for index, phase in enumerate(phases):
            if phase.end_date <= phase.start_date:
                raise SandboxError(400, f"phases[{index}] ends before it starts.", param=f"phases[{index}][end_date]")
            if index and phase.start_date != phases[index - 1].end_date:
                raise SandboxError(400, "Phases must be contiguous: each starts when the previous one ends.",
                                   param=f"phases[{index}][start_date]")
            if not self._on_period_boundary(sub, phase.start_date):
                raise SandboxError(
                    400,
                    f"The sandbox starts phases at the subscription's period ends only; phases[{index}] does not.",
                    param=f"phases[{index}][start_date]",
                )
        schedule.phases = phases
        if end_behavior is not None:
            schedule.end_behavior = end_behavior
        schedule.metadata.update(metadata)
        self.emit("subscription_schedule.updated", self.schedule_dict(schedule), now, request)

    @staticmethod
    def _on_period_boundary(sub: Subscription, at: int) -> bool:
        if at == sub.period_start:
            return True
        for cycle in range(sub.cycle + 1, sub.cycle + 1 + 1200):
            boundary = shift(sub.anchor, cycle * sub.interval_count, sub.interval)
            if boundary >= at:
                return boundary == at
        return False

    def release_schedule(self: BillingEngine, schedule: Schedule, now: int, request: RequestInfo) -> None:
        """Stop the schedule, leave the subscription as it is now (api/subscription_schedules/release)."""
        if not schedule.live:
            raise SandboxError(
                400, f"You cannot release a subscription schedule that is currently in the `{schedule.status}` status. "
                "It must be in `not_started` or `active`.")
        sub = self.subscriptions.get(schedule.subscription_id or "")
        schedule.status, schedule.released_at = "released", now
        schedule.released_subscription, schedule.subscription_id = schedule.subscription_id, None
        if sub is not None:
            with self.subscription_change(sub, now, request):
                sub.schedule_id = None
        self.emit("subscription_schedule.released", self.schedule_dict(schedule), now, request)

    def cancel_schedule(self: BillingEngine, schedule: Schedule, now: int, request: RequestInfo) -> None:
        """Cancel the schedule and its subscription at once (api/subscription_schedules/cancel)."""
        if not schedule.live:
            raise SandboxError(
                400, f"You cannot cancel a subscription schedule that is currently in the `{schedule.status}` status. "
                "It must be in `not_started` or `active`.")
        sub = self.get_subscription(schedule.subscription_id or "")
        schedule.status, schedule.canceled_at = "canceled", now
        self.emit("subscription_schedule.canceled", self.schedule_dict(schedule), now, request)
        self.cancel_subscription(sub, False, now, request, None, None)

    def advance_schedule(self: BillingEngine, sub: Subscription, at: int) -> None:
        """At a period end: start the phase due then (its items, no proration), or release after the last one."""
        schedule = self.schedule_of(sub)
        if schedule is None:
            return
        boundary = sub.period_end
        upcoming = next((p for p in schedule.phases if p.start_date == boundary), None)
        if upcoming is not None:
            with self.subscription_change(sub, at):
                # A phase boundary changes prices without prorations: the renewal bills the new one.
                old = {item.price_id: item for item in sub.items}
                sub.items = [
                    Item(old[price].id if price in old else new_id("si"), price, quantity, at)
                    for price, quantity in upcoming.items
                ]
                for key, value in upcoming.metadata.items():
                    if value == "":
                        sub.metadata.pop(key, None)
                    else:
                        sub.metadata[key] = value
            self.emit("subscription_schedule.updated", self.schedule_dict(schedule), at)
            return
        last = schedule.phases[-1]
        if last.end_date <= boundary:
            if schedule.end_behavior == "cancel":
                sub.cancel_at_period_end = True  # ends at this period end (the caller ends it)
                schedule.status, schedule.completed_at = "completed", at
                self.emit("subscription_schedule.completed", self.schedule_dict(schedule), at)
                return
            self.release_schedule(schedule, at, AUTOMATIC)
