"""Money that moved once: payment-mode Checkout (passes, lifetime, pay what you want), refunds and disputes.

A mixin of the billing engine (``BillingEngine`` in engine.py), which holds the state and the
event outbox; nothing here speaks HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SandboxError, lookup
from .objects import DAY, Charge, Dispute, Refund, RequestInfo, Session
from .shapes import make_charge, make_dispute, make_invoice_payment, make_payment_intent, make_refund, new_id

if TYPE_CHECKING:
    from .engine import BillingEngine

DISPUTE_OUTCOMES = ("won", "lost")
# Card networks give the merchant a few weeks to answer a dispute; Stripe shows the deadline.
EVIDENCE_DAYS = 21
# What a payment intent says while its charge is in each state.
_INTENT_STATUS = {"succeeded": "succeeded", "pending": "processing", "failed": "requires_payment_method"}


class Payments:
    """One-time payments and what can happen to a charge afterwards."""

    # --- public controls -----------------------------------------------------------------------

    def refund_last_payment(self: BillingEngine, customer_id: str, amount: int | None = None) -> dict:
        """Refund the customer's latest successful charge (all that is left of it, or ``amount``)."""
        return self.run(lambda now: self._refund(self._last_charge(customer_id), amount, now))

    def dispute_last_payment(self: BillingEngine, customer_id: str) -> dict:
        """The cardholder disputes the customer's latest successful charge; answers the dispute."""
        return self.run(lambda now: self._open_dispute(self._last_charge(customer_id), now))

    def close_dispute(self: BillingEngine, dispute_id: str, outcome: str) -> dict:
        """The card network decides: ``won`` (funds come back) or ``lost``."""
        return self.run(lambda now: self._close_dispute(lookup(self.disputes, "dispute", dispute_id), outcome, now))

    # --- rendering -----------------------------------------------------------------------------

    def charge_dict(self: BillingEngine, charge: Charge) -> dict:
        customer = self.customers.get(charge.customer_id or "")
        return make_charge(
            id=charge.id,
            amount=charge.amount,
            currency=charge.currency,
            created=charge.created,
            customer=charge.customer_id,
            payment_intent=charge.payment_intent_id,
            payment_method=charge.payment_method_id,
            status=charge.status,
            payment_method_type=charge.payment_method_type,
            description=charge.description,
            billing_email=customer.email if customer else None,
            billing_name=customer.name if customer else None,
            amount_refunded=charge.amount_refunded,
            refunds=[self.refund_dict(charge, refund) for refund in reversed(charge.refunds)],
            disputed=charge.dispute_id is not None,
            failure_code="generic_decline" if charge.status == "failed" else None,
            failure_message="The bank declined the debit." if charge.status == "failed" else None,
            metadata=charge.metadata,
        )

    def refund_dict(self: BillingEngine, charge: Charge, refund: Refund) -> dict:
        return make_refund(
            id=refund.id,
            amount=refund.amount,
            charge=charge.id,
            currency=charge.currency,
            created=refund.created,
            payment_intent=charge.payment_intent_id,
            customer=charge.customer_id,
            payment_method=charge.payment_method_id,
        )

    def dispute_dict(self: BillingEngine, dispute: Dispute) -> dict:
        charge = self.charges[dispute.charge_id]
        customer = self.customers.get(charge.customer_id or "")
        return make_dispute(
            id=dispute.id,
            amount=dispute.amount,
            charge=charge.id,
            currency=dispute.currency,
            created=dispute.created,
            payment_intent=charge.payment_intent_id,
            status=dispute.status,
            evidence_due_by=dispute.created + EVIDENCE_DAYS * DAY,
            customer_email=customer.email if customer else None,
        )

    def invoice_payment_dict(self: BillingEngine, charge: Charge) -> dict:
        assert charge.invoice_id is not None and charge.invoice_payment_id is not None
        return make_invoice_payment(
            id=charge.invoice_payment_id,
            invoice=charge.invoice_id,
            amount=charge.amount,
            currency=charge.currency,
            created=charge.created,
            payment_intent=charge.payment_intent_id,
            paid_at=charge.created if charge.status == "succeeded" else None,
        )

    def payment_intent_dict(self: BillingEngine, charge: Charge, status: str | None = None) -> dict:
        """The intent behind a payment-mode charge; ``status`` overrides it for the moment of creation."""
        status = status or _INTENT_STATUS[charge.status]
        return make_payment_intent(
            id=charge.payment_intent_id,
            amount=charge.amount,
            currency=charge.currency,
            created=charge.created,
            status=status,
            customer=charge.customer_id,
            payment_method=None if status == "requires_payment_method" else charge.payment_method_id,
            payment_method_type=charge.payment_method_type,
            latest_charge=None if status == "requires_payment_method" and charge.status != "failed" else charge.id,
            description=charge.description,
            metadata=charge.metadata,
            last_payment_error=(
                {
                    "code": "payment_intent_payment_attempt_failed",
                    "type": "card_error" if charge.payment_method_type == "card" else "invalid_request_error",
                }
                if charge.status == "failed"
                else None
            ),
        )

    # --- behaviour -----------------------------------------------------------------------------

    def pay_once(self: BillingEngine, session: Session, outcome: str, now: int, request: RequestInfo) -> dict:
        """A payment-mode Checkout Session paid by card (at once) or SEPA debit (settles later).

        Checkout makes a PaymentIntent and its charge; no invoice and no subscription
        (payments/checkout/how-checkout-works, invoice_creation off).
        """
        method_type = "card" if outcome == "card" else "sepa_debit"
        charge = Charge(
            id=new_id("ch"),
            customer_id=session.customer_id,
            # Less a promotion code's discount; exclusive tax on top.
            amount=self.session_amount(session) - session.discount + self.session_tax(session)[1],
            currency=session.currency,
            created=now,
            payment_intent_id=new_id("pi"),
            payment_method_id=new_id("pm"),
            payment_method_type=method_type,
            status="succeeded" if outcome == "card" else "pending",
            session_id=session.id,
            metadata=dict(session.payment_intent_metadata),
        )
        self.charges[charge.id] = charge
        session.payment_intent_id = charge.payment_intent_id
        if session.customer_id:
            self.customers[session.customer_id].currency = session.currency
        self.emit("payment_intent.created", self.payment_intent_dict(charge, "requires_payment_method"), now, request)
        if outcome == "card":
            self.emit("charge.succeeded", self.charge_dict(charge), now, request)
            self.emit("payment_intent.succeeded", self.payment_intent_dict(charge), now, request)
            session.payment_status = "paid"
        else:
            self.emit("payment_intent.processing", self.payment_intent_dict(charge), now, request)
            self.emit("charge.pending", self.charge_dict(charge), now, request)
            session.payment_status = "unpaid"
            session.awaiting_async_payment = True
        session.status = "complete"
        self.emit("checkout.session.completed", self.session_dict(session), now, request)
        return self.session_dict(session)

    def settle_once(self: BillingEngine, session: Session, succeed: bool, now: int) -> dict:
        """The bank answers for the SEPA debit of a payment-mode session."""
        charge = next(c for c in self.charges.values() if c.payment_intent_id == session.payment_intent_id)
        session.awaiting_async_payment = False
        if succeed:
            charge.status = "succeeded"
            self.emit("charge.succeeded", self.charge_dict(charge), now)
            self.emit("payment_intent.succeeded", self.payment_intent_dict(charge), now)
            session.payment_status = "paid"
            self.emit("checkout.session.async_payment_succeeded", self.session_dict(session), now)
        else:
            charge.status = "failed"
            self.emit("charge.failed", self.charge_dict(charge), now)
            self.emit("payment_intent.payment_failed", self.payment_intent_dict(charge), now)
            self.emit("checkout.session.async_payment_failed", self.session_dict(session), now)
        return self.session_dict(session)

    def _last_charge(self: BillingEngine, customer_id: str) -> Charge:
        self.get_customer(customer_id)
        # dicts keep insertion order: the last succeeded charge is the latest payment.
        paid = [c for c in self.charges.values() if c.customer_id == customer_id and c.status == "succeeded"]
        if not paid:
            raise SandboxError(400, f"Customer {customer_id} has no successful payment.", param="customer")
        return paid[-1]

    def _refund(self: BillingEngine, charge: Charge, amount: int | None, now: int) -> dict:
        left = charge.amount - charge.amount_refunded
        if charge.dispute_id is not None:
            raise SandboxError(
                400, f"Charge {charge.id} has been charged back; cannot issue a refund.", code="charge_disputed"
            )
        if left <= 0:
            raise SandboxError(400, f"Charge {charge.id} has already been refunded.", code="charge_already_refunded")
        amount = left if amount is None else int(amount)
        if not 0 < amount <= left:
            raise SandboxError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                code="amount_too_large",
                param="amount",
            )
        refund = Refund(id=new_id("re"), amount=amount, created=now)
        charge.refunds.append(refund)
        request = RequestInfo(id=new_id("req"))
        self.emit("refund.created", self.refund_dict(charge, refund), now, request)
        self.emit("charge.refunded", self.charge_dict(charge), now, request)
        return self.refund_dict(charge, refund)

    def _open_dispute(self: BillingEngine, charge: Charge, now: int) -> dict:
        if charge.dispute_id is not None:
            raise SandboxError(
                400, f"Charge {charge.id} is already disputed ({charge.dispute_id}).", code="charge_disputed"
            )
        dispute = Dispute(
            id=new_id("dp"),
            charge_id=charge.id,
            amount=charge.amount - charge.amount_refunded,
            currency=charge.currency,
            created=now,
        )
        self.disputes[dispute.id] = dispute
        charge.dispute_id = dispute.id
        # The disputed amount leaves the balance when the dispute opens (disputes/how-disputes-work).
        self.emit("charge.dispute.created", self.dispute_dict(dispute), now)
        self.emit("charge.dispute.funds_withdrawn", self.dispute_dict(dispute), now)
        return self.dispute_dict(dispute)

    def _close_dispute(self: BillingEngine, dispute: Dispute, outcome: str, now: int) -> dict:
        if outcome not in DISPUTE_OUTCOMES:
            raise SandboxError(400, f"Unknown outcome {outcome!r}: use won or lost.", param="outcome")
        if dispute.status in DISPUTE_OUTCOMES:
            raise SandboxError(400, f"Dispute {dispute.id} is already closed ({dispute.status}).")
        dispute.status = outcome
        self.emit("charge.dispute.closed", self.dispute_dict(dispute), now)
        if outcome == "won":
            self.emit("charge.dispute.funds_reinstated", self.dispute_dict(dispute), now)
        return self.dispute_dict(dispute)
