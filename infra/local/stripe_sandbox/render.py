"""How the engine's objects look on the wire: each rendered in the shapes of an API version.

A mixin of the billing engine. Webhooks use the sandbox's own version; API answers the version
the request asked for (Stripe-Version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .objects import Customer, Invoice, LineItem, PortalSession, Price, Product, Schedule, Session, Subscription
from .shapes import (
    SANDBOX_TAX_PERCENT,
    ItemSpec,
    LineSpec,
    PhaseSpec,
    TaxSpec,
    make_checkout_session,
    make_customer,
    make_customer_details,
    make_invoice,
    make_portal_session,
    make_price,
    make_product,
    make_subscription,
    make_subscription_schedule,
)

if TYPE_CHECKING:
    from .engine import BillingEngine


class Rendering:
    """Stripe objects as dicts, from the engine's state."""

    def price_dict(self: BillingEngine, price: Price, version: str | None = None) -> dict:
        return make_price(
            id=price.id,
            product=price.product_id,
            unit_amount=price.unit_amount,
            currency=price.currency,
            created=price.created,
            interval=price.interval,
            interval_count=price.interval_count,
            trial_period_days=price.trial_period_days,
            nickname=price.nickname,
            metadata=price.metadata,
            custom_unit_amount=price.custom_unit_amount,
            api_version=version or self.api_version,
            lookup_key=price.lookup_key,
            active=price.active,
            tax_behavior=price.tax_behavior,
        )

    def product_dict(self: BillingEngine, product: Product) -> dict:
        return make_product(id=product.id, name=product.name, created=product.created, metadata=product.metadata,
                            description=product.description, active=product.active)

    def customer_dict(self: BillingEngine, customer: Customer, version: str | None = None) -> dict:
        return make_customer(
            id=customer.id,
            created=customer.created,
            invoice_prefix=customer.invoice_prefix,
            metadata=customer.metadata,
            email=customer.email,
            name=customer.name,
            description=customer.description,
            phone=customer.phone,
            currency=customer.currency,
            delinquent=customer.delinquent,
            next_invoice_sequence=customer.next_invoice_sequence,
            api_version=version or self.api_version,
        )

    def subscription_dict(self: BillingEngine, sub: Subscription, version: str | None = None) -> dict:
        version = version or self.api_version
        return make_subscription(
            id=sub.id,
            customer=sub.customer_id,
            items=[
                ItemSpec(
                    id=item.id,
                    price=self.price_dict(self.prices[item.price_id], version),
                    quantity=item.quantity,
                    created=item.created,
                )
                for item in sub.items
            ],
            status=sub.status,
            created=sub.created,
            start_date=sub.created,
            billing_cycle_anchor=sub.anchor,
            period_start=sub.period_start,
            period_end=sub.period_end,
            currency=sub.currency,
            metadata=sub.metadata,
            latest_invoice=sub.latest_invoice,
            default_payment_method=sub.default_payment_method,
            cancel_at_period_end=sub.cancel_at_period_end,
            cancel_at=sub.cancel_at,
            canceled_at=sub.canceled_at,
            ended_at=sub.ended_at,
            cancellation_reason=sub.cancellation_reason,
            cancellation_comment=sub.cancellation_comment,
            cancellation_feedback=sub.cancellation_feedback,
            trial_start=sub.trial_start,
            trial_end=sub.trial_end,
            pause_collection=dict(sub.pause_collection) if sub.pause_collection else None,
            schedule=sub.schedule_id,
            api_version=version,
        )

    def schedule_dict(self: BillingEngine, schedule: Schedule, version: str | None = None) -> dict:
        version = version or self.api_version
        now = self.now()
        current = next(
            ((p.start_date, p.end_date) for p in schedule.phases if p.start_date <= now < p.end_date), None
        ) if schedule.status == "active" else None
        return make_subscription_schedule(
            id=schedule.id,
            customer=schedule.customer_id,
            subscription=schedule.subscription_id,
            created=schedule.created,
            status=schedule.status,
            end_behavior=schedule.end_behavior,
            phases=[
                PhaseSpec(p.start_date, p.end_date, list(p.items), schedule.currency, p.proration_behavior,
                          p.metadata)
                for p in schedule.phases
            ],
            current_phase=current,
            metadata=schedule.metadata,
            released_at=schedule.released_at,
            released_subscription=schedule.released_subscription,
            canceled_at=schedule.canceled_at,
            completed_at=schedule.completed_at,
            api_version=version,
        )

    def invoice_dict(self: BillingEngine, inv: Invoice, version: str | None = None) -> dict:
        version = version or self.api_version
        customer = self.customers[inv.customer_id]
        prices = {line.price_id: self.price_dict(self.prices[line.price_id], version) for line in inv.lines}
        return make_invoice(
            id=inv.id,
            customer=inv.customer_id,
            customer_email=customer.email,
            customer_name=customer.name,
            subscription=inv.subscription_id,
            subscription_metadata=inv.subscription_metadata,
            lines=[
                LineSpec(
                    id=line.id,
                    subscription_item=line.item_id,
                    price=prices[line.price_id],
                    quantity=line.quantity,
                    period_start=line.period_start,
                    period_end=line.period_end,
                    amount=line.amount,
                    description=line.description,
                    proration=line.proration,
                )
                for line in inv.lines
            ],
            status=inv.status,
            billing_reason=inv.billing_reason,
            created=inv.created,
            period_start=inv.period_start,
            period_end=inv.period_end,
            currency=inv.currency,
            amount_paid=inv.amount_paid,
            attempt_count=inv.attempt_count,
            attempted=inv.attempted,
            next_payment_attempt=inv.next_payment_attempt,
            number=inv.number,
            hosted_invoice_url=f"{self.public_base_url}/invoice/{inv.id}",
            finalized_at=inv.finalized_at,
            paid_at=inv.paid_at,
            voided_at=inv.voided_at,
            payment_intent=inv.payment_intent,
            charge=inv.charge,
            product_names={p.id: p.name for p in self.products.values()},
            api_version=version,
            tax=inv.tax,
        )

    def session_dict(self: BillingEngine, session: Session, version: str | None = None) -> dict:
        customer = self.customers.get(session.customer_id) if session.customer_id else None
        details = None
        if session.status == "complete":
            # A guest (payment mode without a customer) still leaves the details typed at checkout;
            # Checkout asks a customer without an email for one, as Stripe's does.
            details = make_customer_details(
                email=(customer.email if customer else None) or self._buyer_email(session),
                name=customer.name if customer else None,
            )
        amount = self.session_amount(session)
        included, added = self.session_tax(session)
        built = make_checkout_session(
            id=session.id,
            created=session.created,
            expires_at=session.expires_at,
            url=f"{self.public_base_url}/pay/{session.id}",
            status=session.status,
            payment_status=session.payment_status,
            customer=session.customer_id,
            customer_email=session.customer_email,
            client_reference_id=session.client_reference_id,
            success_url=session.success_url,
            cancel_url=session.cancel_url,
            metadata=session.metadata,
            allow_promotion_codes=session.allow_promotion_codes,
            currency=session.currency,
            amount_subtotal=amount,
            amount_total=amount - session.discount + added,
            subscription=session.subscription_id,
            invoice=session.invoice_id,
            customer_details=details,
            mode=session.mode,
            payment_intent=session.payment_intent_id,
            customer_creation=session.customer_creation,
            invoice_creation=session.invoice_creation,
            api_version=version or self.api_version,
        )
        built["total_details"]["amount_tax"] = included + added
        built["total_details"]["amount_discount"] = session.discount
        if session.promotion_code_id:
            built["discounts"] = [{"coupon": next(p.coupon_id for p in self.promotion_codes.values()
                                                  if p.id == session.promotion_code_id),
                                   "promotion_code": session.promotion_code_id}]
        # Echo the Checkout options as Stripe shows them on the session.
        for key, value in session.options.items():
            if key == "custom_text":
                built["custom_text"] = {**built["custom_text"], **value}
            else:
                built[key] = value
        if session.status == "complete" and (session.options.get("consent_collection") or {}).get("terms_of_service") == "required":
            built["consent"] = {"promotions": None, "terms_of_service": "accepted"}
        return built

    def portal_session_dict(self: BillingEngine, portal: PortalSession, version: str | None = None) -> dict:
        return make_portal_session(
            id=portal.id,
            customer=portal.customer_id,
            return_url=portal.return_url,
            url=f"{self.public_base_url}/portal/{portal.id}",
            created=portal.created,
            configuration=portal.configuration,
            locale=portal.locale,
            api_version=version or self.api_version,
        )

    def session_amount(self: BillingEngine, session: Session) -> int:
        # With a trial nothing is due today, and Checkout shows 0 (billing/subscriptions/trials).
        if self.session_trial_days(session):
            return 0
        return sum(self.line_item_amount(li) for li in session.line_items)

    def session_tax(self: BillingEngine, session: Session) -> tuple[int, int]:
        """Stripe Tax on what is due today (automatic_tax enabled): (tax inside the prices, tax added on
        top), at the sandbox's one rate, by each price's tax_behavior; none for an unspecified price."""
        if self.session_trial_days(session) or not (session.options.get("automatic_tax") or {}).get("enabled"):
            return 0, 0
        included = added = 0
        for line_item in session.line_items:
            behavior = self.prices[line_item.price_id].tax_behavior
            if behavior not in ("inclusive", "exclusive"):
                continue
            tax = TaxSpec(SANDBOX_TAX_PERCENT, behavior).line_tax(self.line_item_amount(line_item))
            included, added = (included + tax, added) if behavior == "inclusive" else (included, added + tax)
        return included, added

    def line_item_amount(self: BillingEngine, line_item: LineItem) -> int:
        """What one line costs today; a pay-what-you-want line its chosen amount, else its preset or minimum."""
        price = self.prices[line_item.price_id]
        if price.custom_unit_amount is None:
            return (price.unit_amount or 0) * line_item.quantity
        if line_item.custom_amount is not None:
            return line_item.custom_amount
        return price.custom_unit_amount.get("preset") or price.custom_unit_amount.get("minimum") or 0

    def session_trial_days(self: BillingEngine, session: Session) -> int:
        if session.trial_period_days:
            return session.trial_period_days
        return max((self.prices[li.price_id].trial_period_days or 0 for li in session.line_items), default=0)
