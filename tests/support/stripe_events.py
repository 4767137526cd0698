"""Real-shaped Stripe events for tests, built with the local sandbox's builders, any API version."""

from __future__ import annotations

import json
from typing import Any

from infra.local import stripe_shapes as shapes
from membergate.domain.signature import signature_header

NEW = shapes.default_api_version()
OLD = "2024-06-20"
DAY = 86_400


def price(price_id: str = "price_monthly", amount: int = 900, currency: str = "eur", interval: str = "month",
          created: int = 1_700_000_000, api_version: str | None = NEW) -> dict[str, Any]:
    return shapes.make_price(id=price_id, product="prod_test", unit_amount=amount, currency=currency,
                             created=created, interval=interval, api_version=api_version)


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
) -> dict[str, Any]:
    line = shapes.LineSpec(id="il_1", subscription_item=f"si_{sub_id}", price=price(amount=amount, currency=currency, api_version=api_version),
                           quantity=1, period_start=created, period_end=created + 30 * DAY)
    invoice = shapes.make_invoice(
        id="in_1",
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
        amount_paid=amount if status == "paid" else 0,
        hosted_invoice_url=hosted_invoice_url,
        api_version=api_version,
    )
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
) -> dict[str, Any]:
    """A payment-mode Checkout Session (a pass or lifetime price), as Membergate's checkout makes it."""
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
        api_version=api_version,
    )
    return event(type_, session, created, api_version, event_id)
