"""Real-shaped Stripe events for tests, built with the local sandbox's builders, any API version."""

from __future__ import annotations

import json
from typing import Any

from infra.local import stripe_shapes as shapes
from infra.local.stripe_sandbox import shapes as sandbox_shapes
from membergate.domain.signature import signature_header

NEW = shapes.default_api_version()
OLD = "2024-06-20"
DAY = 86_400


def price(price_id: str = "price_monthly", amount: int = 900, currency: str = "eur", interval: str = "month",
          created: int = 1_700_000_000, api_version: str | None = NEW, tax_behavior: str = "unspecified") -> dict[str, Any]:
    return shapes.make_price(id=price_id, product="prod_test", unit_amount=amount, currency=currency,
                             created=created, interval=interval, api_version=api_version, tax_behavior=tax_behavior)


def subscription(
    *,
    sub_id: str = "sub_1",
    customer: str = "cus_1",
    status: str = "active",
    created: int,
    price_id: str = "price_monthly",
    amount: int = 900,
    currency: str = "eur",
    interval: str = "month",
    quantity: int = 1,
    period_start: int | None = None,
    period_end: int | None = None,
    cancel_at_period_end: bool = False,
    member_id: str | None = None,
    api_version: str | None = NEW,
) -> dict[str, Any]:
    start = period_start if period_start is not None else created
    end = period_end if period_end is not None else start + 30 * DAY
    item = shapes.ItemSpec(id=f"si_{sub_id}", price=price(price_id, amount, currency, interval, api_version=api_version),
                           quantity=quantity, created=created)
    return shapes.make_subscription(
        id=sub_id,
        customer=customer,
        items=[item],
        status=status,
        created=created,
        start_date=created,
        billing_cycle_anchor=start,
        period_start=start,
        period_end=end,
        currency=currency,
        metadata={"membergate_member_id": member_id} if member_id else {},
        cancel_at_period_end=cancel_at_period_end,
        api_version=api_version,
    )


def event(type_: str, obj: dict[str, Any], created: int, api_version: str | None = NEW, event_id: str | None = None) -> dict[str, Any]:
    return shapes.make_event(type_, obj, created, api_version, id=event_id)


def subscription_event(type_: str = "customer.subscription.updated", *, created: int, event_id: str | None = None,
                       api_version: str | None = NEW, **kw: Any) -> dict[str, Any]:
    return event(type_, subscription(created=created, api_version=api_version, **kw), created, api_version, event_id)


def checkout_completed(
    *,
    created: int,
    member_id: str | None,
    customer: str = "cus_1",
    sub_id: str = "sub_1",
    payment_status: str = "paid",
    type_: str = "checkout.session.completed",
    event_id: str | None = None,
    api_version: str | None = NEW,
) -> dict[str, Any]:
    session = shapes.make_checkout_session(
        id="cs_test_1",
        created=created,
        expires_at=created + 3600,
        url=None,
        status="complete",
        payment_status=payment_status,
        customer=customer,
        customer_email=None,
        client_reference_id=member_id,
        success_url="https://example.com/ok",
        cancel_url="https://example.com/no",
        metadata={"membergate_member_id": member_id} if member_id else {},
        allow_promotion_codes=True,
        currency="eur",
        amount_subtotal=900,
        amount_total=900,
        subscription=sub_id,
        mode="subscription",
        api_version=api_version,
    )
    return event(type_, session, created, api_version, event_id)


def invoice_event(
    type_: str,
    *,
    created: int,
    sub_id: str = "sub_1",
    customer: str = "cus_1",
    amount: int = 900,
    currency: str = "eur",
    status: str = "paid",
    api_version: str | None = NEW,
    hosted_invoice_url: str | None = "https://invoice.stripe.com/i/test",
    tax: shapes.TaxSpec | None = None,
    invoice_id: str = "in_1",
    interval: str = "month",
) -> dict[str, Any]:
    """An invoice event; ``tax`` makes it carry Stripe Tax (its prices then say the same ``tax_behavior``)."""
    behavior = tax.behavior if tax is not None else "unspecified"
    line = shapes.LineSpec(id="il_1", subscription_item=f"si_{sub_id}",
                           price=price(amount=amount, currency=currency, interval=interval, api_version=api_version,
                                       tax_behavior=behavior),
                           quantity=1, period_start=created, period_end=created + 30 * DAY)
    invoice = shapes.make_invoice(
        id=invoice_id,
        customer=customer,
        customer_email=None,
        customer_name=None,
        subscription=sub_id,
        subscription_metadata={},
        lines=[line],
        status=status,
        billing_reason="subscription_cycle",
        created=created,
        period_start=created,
        period_end=created + 30 * DAY,
        currency=currency,
        amount_paid=0,
        hosted_invoice_url=hosted_invoice_url,
        api_version=api_version,
        tax=tax,
    )
    if status == "paid":  # what was paid is the total, tax added on top included
        invoice["amount_paid"] = invoice["amount_due"]
    return event(type_, invoice, created, api_version)


def signed(event_dict: dict[str, Any], secret: str, at: int) -> tuple[bytes, str]:
    """The exact bytes Stripe would send and their Stripe-Signature header."""
    body = json.dumps(event_dict).encode()
    return body, signature_header(secret, at, body)


def payment_completed(
    *,
    created: int,
    member_id: str | None,
    plan_id: str | None,
    session_id: str = "cs_test_pay_1",
    customer: str = "cus_1",
    amount: int = 4900,
    payment_status: str = "paid",
    type_: str = "checkout.session.completed",
    event_id: str | None = None,
    api_version: str | None = NEW,
    payment_intent: str = "pi_test_pay_1",
    amount_tax: int = 0,
) -> dict[str, Any]:
    """A payment-mode Checkout Session (a pass or lifetime price), as Membergate's checkout makes it;
    ``amount_tax`` is the tax Stripe Tax put in ``amount`` (``total_details.amount_tax``)."""
    metadata = {k: v for k, v in (("membergate_member_id", member_id), ("membergate_plan_id", plan_id)) if v}
    session = shapes.make_checkout_session(
        id=session_id,
        created=created,
        expires_at=created + 3600,
        url=None,
        status="complete",
        payment_status=payment_status,
        customer=customer,
        customer_email=None,
        client_reference_id=member_id,
        success_url="https://example.com/ok",
        cancel_url="https://example.com/no",
        metadata=metadata,
        allow_promotion_codes=True,
        currency="eur",
        amount_subtotal=amount,
        amount_total=amount,
        subscription=None,
        mode="payment",
        payment_intent=payment_intent,
        api_version=api_version,
    )
    session["total_details"]["amount_tax"] = amount_tax
    return event(type_, session, created, api_version, event_id)


def charge_refunded(
    *,
    created: int,
    refunded: int,
    amount: int = 4900,
    payment_intent: str = "pi_test_pay_1",
    member_id: str | None = "mbr_1",
    plan_id: str | None = "pln_pass",
    customer: str = "cus_1",
    event_id: str | None = None,
) -> dict[str, Any]:
    """charge.refunded for a payment-mode charge; its metadata is the PaymentIntent's (our checkout's)."""
    metadata = {k: v for k, v in (("membergate_member_id", member_id), ("membergate_plan_id", plan_id)) if v}
    refunds = [sandbox_shapes.make_refund(id="re_test_1", amount=refunded, charge="ch_test_1", currency="eur",
                                  created=created, payment_intent=payment_intent, customer=customer,
                                  payment_method="pm_test_1")]
    charge = sandbox_shapes.make_charge(id="ch_test_1", amount=amount, currency="eur", created=created - DAY,
                                customer=customer, payment_intent=payment_intent, payment_method="pm_test_1",
                                amount_refunded=refunded, refunds=refunds, metadata=metadata)
    return event("charge.refunded", charge, created, NEW, event_id)


def dispute_event(
    type_: str = "charge.dispute.created",
    *,
    created: int,
    status: str = "needs_response",
    payment_intent: str = "pi_test_pay_1",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A dispute event: it names the charge and payment, never the customer nor our metadata."""
    dispute = sandbox_shapes.make_dispute(id="dp_test_1", amount=4900, charge="ch_test_1", currency="eur", created=created,
                                  payment_intent=payment_intent, status=status, evidence_due_by=created + 21 * DAY)
    return event(type_, dispute, created, NEW, event_id)


def customer_deleted(*, created: int, customer: str = "cus_1", event_id: str | None = None) -> dict[str, Any]:
    obj = shapes.make_customer(id=customer, created=created - 30 * DAY, invoice_prefix="TEST")
    obj["deleted"] = True
    return event("customer.deleted", obj, created, NEW, event_id)


def payment_method_event(type_: str = "payment_method.attached", *, created: int, pm_id: str = "pm_1",
                         customer: str = "cus_1", exp_month: int = 8, exp_year: int = 2030) -> dict[str, Any]:
    """A card PaymentMethod event, shaped as Stripe's own fixture (specs/stripe/fixtures3.json)."""
    from tests.support.specs import stripe_fixture

    pm = json.loads(json.dumps(stripe_fixture("payment_method")))
    pm.update(id=pm_id, customer=customer, created=created, type="card")
    pm["card"].update(exp_month=exp_month, exp_year=exp_year)
    return event(type_, pm, created)


def customer_updated(*, created: int, customer: str = "cus_1", email: str | None = "alice@example.com",
                     default_payment_method: str | None = None) -> dict[str, Any]:
    obj = sandbox_shapes.make_customer(id=customer, created=created, invoice_prefix="MG1", email=email,
                                       default_payment_method=default_payment_method)
    return event("customer.updated", obj, created)
