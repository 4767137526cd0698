"""Time moving on, as with a Stripe test clock: renewals, trial ends, retries, scheduled cancellations.

A mixin of the billing engine. ``advance_clock`` does, in time order and at the time each was due,
everything Stripe would have done between the last call and the clock's now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .objects import TRIAL_WILL_END_NOTICE, Invoice, Subscription

if TYPE_CHECKING:
    from .engine import BillingEngine

# A bound on the work of one advance (a daily price over ten years is 3,650 renewals).
MAX_STEPS = 10_000
# Statuses in which a period end bills the next period (an incomplete subscription waits for its
# first payment; an ended one is gone).
_BILLED = frozenset({"trialing", "active", "past_due"})


class ClockAdvance:
    """Brings billing up to the engine's clock."""

    def advance_clock(self: BillingEngine) -> dict:
        """Do what fell due up to now; answers ``{"now", "events"}`` (the number of events sent)."""

        def advance(now: int) -> dict:
            before = len(self._log)
            for _ in range(MAX_STEPS):
                due = self._next_due(now)
                if due is None:
                    break
                at, step = due
                step(at)
            return {"now": now, "events": len(self._log) - before}

        return self.run(advance)

    def _next_due(self: BillingEngine, now: int) -> tuple[int, Callable[[int], None]] | None:
        """The earliest thing due at or before ``now``: (when, what to do at that time)."""
        found: list[tuple[int, int, Callable[[int], None]]] = []
        for order, session in enumerate(self.sessions.values()):
            if session.status == "open" and session.expires_at <= now:
                found.append((session.expires_at, order, lambda at, s=session: self.expire_if_due(s, at)))
        for order, sub in enumerate(self.subscriptions.values()):
            if sub.ended:
                continue
            notice = (sub.trial_end or 0) - TRIAL_WILL_END_NOTICE
            if sub.status == "trialing" and not sub.trial_will_end_sent and notice <= now:
                found.append((notice, order, lambda at, s=sub: self._trial_will_end(s, at)))
            invoice = self.open_invoice(sub) if sub.status == "past_due" else None
            if invoice is not None and invoice.next_payment_attempt is not None and invoice.next_payment_attempt <= now:
                found.append((invoice.next_payment_attempt, order, lambda at, s=sub, i=invoice: self._retry(s, i, at)))
            if sub.status in _BILLED and sub.period_end <= now:
                found.append((sub.period_end, order, lambda at, s=sub: self._period_ends(s, at)))
        if not found:
            return None
        at, _, step = min(found, key=lambda entry: (entry[0], entry[1]))
        return at, step

    def _trial_will_end(self: BillingEngine, sub: Subscription, at: int) -> None:
        sub.trial_will_end_sent = True
        self.emit("customer.subscription.trial_will_end", self.subscription_dict(sub), at)

    def _period_ends(self: BillingEngine, sub: Subscription, at: int) -> None:
        # A schedule's phase starting here changes the price first: the renewal bills the new one.
        self.advance_schedule(sub, at)
        if sub.cancel_at_period_end:
            self._end(sub, at)
            return
        # A trial that ends bills its first period; an active subscription its next one.
        invoice = self._roll_period(sub, at)
        self._charge(sub, invoice, at)

    def end_trial_now(self: BillingEngine, sub: Subscription, at: int) -> None:
        """``trial_end=now``: the trial stops here and the first period, from now, is billed now."""
        sub.trial_end = at
        sub.anchor, sub.cycle, sub.period_end = at, -1, at
        self._period_ends(sub, at)

    def _retry(self: BillingEngine, sub: Subscription, invoice: Invoice, at: int) -> None:
        self._charge(sub, invoice, at)

    def _void_paused(self: BillingEngine, invoice: Invoice, at: int) -> None:
        """Collection paused with behavior void: the period's invoice is voided, nothing is charged
        and the subscription stays as it is (billing/subscriptions/pause-payment)."""
        invoice.status, invoice.voided_at = "void", at
        invoice.next_payment_attempt = None
        self.emit("invoice.voided", self.invoice_dict(invoice), at)

    def _charge(self: BillingEngine, sub: Subscription, invoice: Invoice, at: int) -> None:
        """Charge the customer's saved payment method for ``invoice``, off-session."""
        if sub.pause_collection:
            self._void_paused(invoice, at)
            return
        behaviour = self.customers[sub.customer_id].payment_method_behaviour
        if behaviour == "succeeds" or invoice.amount_due == 0:
            self._mark_paid(invoice, at)
            self._emit_invoice_paid(invoice, at)
            if sub.status != "active":
                with self.subscription_change(sub, at):
                    sub.status = "active"
            return
        self._fail_attempt(invoice, at)
        self.emit("invoice.payment_failed", self.invoice_dict(invoice), at)
        if behaviour == "requires_action":
            self.emit("invoice.payment_action_required", self.invoice_dict(invoice), at)
        if sub.status != "past_due":
            with self.subscription_change(sub, at):
                sub.status = "past_due"
        if invoice.next_payment_attempt is None:
            # Every retry failed: Stripe's default setting then cancels the subscription
            # (billing/revenue-recovery/smart-retries, "subscription status after all retries fail").
            sub.cancellation_reason = "payment_failed"
            self._end(sub, at)
