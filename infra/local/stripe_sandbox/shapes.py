"""Pure builders of Stripe objects and event envelopes, shaped like the API version asked for."""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe

# API 2025-03-31 ("basil") moved the period dates from the subscription to its items and made the
# invoice name its subscription under `parent` (docs.stripe.com/changelog/basil). Versions sort
# by their date prefix, whatever the release name after the dot.
NEW_SHAPES_SINCE = "2025-03-31"

_ID_ALPHABET = string.ascii_letters + string.digits
# Lengths of the random part, as seen in Stripe's own ids (fixtures3.json).
_ID_LENGTHS = {
    "cus": 14,
    "prod": 14,
    "si": 14,
    "req": 14,
    "cs_test": 58,
}


def default_api_version() -> str:
    """The version the installed SDK pins; Membergate registers its webhook endpoint with it."""
    return stripe.api_version


def is_new_shape(api_version: str | None) -> bool:
    return (api_version or default_api_version())[:10] >= NEW_SHAPES_SINCE


def new_id(prefix: str) -> str:
    """An id that looks like Stripe's: ``cus_QXg1o8vcGmoR32``, ``sub_1Pgc6rB7WZ01zgkWNy0Cn5nw``."""
    length = _ID_LENGTHS.get(prefix, 24)
    return f"{prefix}_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class ItemSpec:
    """One subscription item: a price (as built by ``make_price``) and its quantity."""

    id: str
    price: dict[str, Any]
    quantity: int
    created: int


@dataclass(frozen=True)
class LineSpec:
    """One invoice line for one subscription item over one service period."""

    id: str
    subscription_item: str
    price: dict[str, Any]
    quantity: int
    period_start: int
    period_end: int
    # A trial line keeps its price but costs nothing, and says so.
    amount: int | None = None
    description: str | None = None
    # Credit for unused time or charge for remaining time after a change of price or quantity.
    proration: bool = False


# Stripe Tax's rate for every sandbox customer: France's standard VAT (the account's country is FR).
SANDBOX_TAX_PERCENT = 20


@dataclass(frozen=True)
class TaxSpec:
    """Stripe Tax on one invoice: one rate (in percent) on every line, included in the prices or added
    on top, as the prices' ``tax_behavior`` says (Stripe: prices and tax behavior)."""

    percent: int
    behavior: str  # "inclusive" or "exclusive"
    rate_id: str = "txr_sandbox_vat"

    def line_tax(self, amount: int) -> int:
        """The tax of one line, rounded half up to the minor unit as Stripe does per line."""
        if amount <= 0:
            return 0
        if self.behavior == "inclusive":  # amount = net × (1 + p); tax = amount − net
            net = (amount * 100 * 2 + (100 + self.percent)) // (2 * (100 + self.percent))
            return amount - net
        return (amount * self.percent * 2 + 100) // 200


def _tax_entry(tax: TaxSpec, amount: int, taxable: int, new: bool) -> dict[str, Any]:
    if new:
        return {"amount": amount, "tax_behavior": tax.behavior, "tax_rate_details": {"tax_rate": tax.rate_id},
                "taxability_reason": "standard_rated", "taxable_amount": taxable, "type": "tax_rate_details"}
    return {"amount": amount, "inclusive": tax.behavior == "inclusive", "tax_rate": tax.rate_id,
            "taxability_reason": "standard_rated", "taxable_amount": taxable}


def _address() -> dict[str, Any]:
    return {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}


def make_product(
    *,
    id: str,
    name: str,
    created: int,
    default_price: str | None = None,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    active: bool = True,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "product",
        "active": active,
        "created": created,
        "default_price": default_price,
        "description": description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": dict(metadata or {}),
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def make_price(
    *,
    id: str,
    product: str,
    unit_amount: int | None,
    currency: str,
    created: int,
    interval: str | None = "month",
    interval_count: int = 1,
    trial_period_days: int | None = None,
    nickname: str | None = None,
    metadata: dict[str, str] | None = None,
    custom_unit_amount: dict[str, int | None] | None = None,
    api_version: str | None = None,
    lookup_key: str | None = None,
    active: bool = True,
    tax_behavior: str = "unspecified",
) -> dict[str, Any]:
    """A price; a pay-what-you-want price has ``custom_unit_amount`` (minimum/maximum/preset) and no unit amount."""
    recurring = None
    if interval is not None:
        recurring = {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "trial_period_days": trial_period_days,
            "usage_type": "licensed",
        }
        if not is_new_shape(api_version):
            # Metered billing's aggregate_usage was removed in basil.
            recurring["aggregate_usage"] = None
    return {
        "id": id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": dict(custom_unit_amount) if custom_unit_amount else None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": dict(metadata or {}),
        "nickname": nickname,
        "product": product,
        "recurring": recurring,
        "tax_behavior": tax_behavior,
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
    }


def make_plan(price: dict[str, Any], api_version: str | None = None) -> dict[str, Any]:
    """The legacy ``plan`` mirror Stripe still puts beside ``price`` on items and old lines."""
    recurring = price.get("recurring") or {}
    plan = {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": "licensed",
    }
    if not is_new_shape(api_version):
        plan["aggregate_usage"] = None
    return plan


def make_customer(
    *,
    id: str,
    created: int,
    invoice_prefix: str,
    metadata: dict[str, str] | None = None,
    email: str | None = None,
    name: str | None = None,
    description: str | None = None,
    phone: str | None = None,
    currency: str | None = None,
    delinquent: bool = False,
    next_invoice_sequence: int = 1,
    default_payment_method: str | None = None,
    api_version: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": currency,
        "default_source": None,
        "delinquent": delinquent,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": default_payment_method,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(metadata or {}),
        "name": name,
        "next_invoice_sequence": next_invoice_sequence,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def make_subscription_item(
    *,
    item: ItemSpec,
    subscription: str,
    period_start: int,
    period_end: int,
    api_version: str | None = None,
) -> dict[str, Any]:
    built = {
        "id": item.id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": item.created,
        "discounts": [],
        "metadata": {},
        "plan": make_plan(item.price, api_version),
        "price": dict(item.price),
        "quantity": item.quantity,
        "subscription": subscription,
        "tax_rates": [],
    }
    if is_new_shape(api_version):
        built["current_period_start"] = period_start
        built["current_period_end"] = period_end
    return built


def make_subscription(
    *,
    id: str,
    customer: str,
    items: Sequence[ItemSpec],
    status: str,
    created: int,
    start_date: int,
    billing_cycle_anchor: int,
    period_start: int,
    period_end: int,
    currency: str,
    metadata: dict[str, str] | None = None,
    latest_invoice: str | None = None,
    default_payment_method: str | None = None,
    cancel_at_period_end: bool = False,
    cancel_at: int | None = None,
    canceled_at: int | None = None,
    ended_at: int | None = None,
    cancellation_reason: str | None = None,
    cancellation_comment: str | None = None,
    cancellation_feedback: str | None = None,
    trial_start: int | None = None,
    trial_end: int | None = None,
    api_version: str | None = None,
    pause_collection: dict[str, Any] | None = None,
    schedule: str | None = None,
) -> dict[str, Any]:
    new = is_new_shape(api_version)
    built: dict[str, Any] = {
        "id": id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
        "billing_cycle_anchor": billing_cycle_anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic", "flexible": None},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": cancel_at,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "cancellation_details": {
            "comment": cancellation_comment,
            "feedback": cancellation_feedback,
            "reason": cancellation_reason,
        },
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": ended_at,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": {
            "object": "list",
            "data": [
                make_subscription_item(
                    item=item,
                    subscription=id,
                    period_start=period_start,
                    period_end=period_end,
                    api_version=api_version,
                )
                for item in items
            ],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={id}",
        },
        "latest_invoice": latest_invoice,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": dict(metadata or {}),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": pause_collection,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": schedule,
        "start_date": start_date,
        "status": status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": trial_start,
    }
    if not new:
        built["current_period_start"] = period_start
        built["current_period_end"] = period_end
        built["discount"] = None
        built["items"]["total_count"] = len(items)
        for gone in ("billing_schedules", "managed_payments"):
            built.pop(gone)
    return built


@dataclass(frozen=True)
class PhaseSpec:
    """A schedule phase as rendered: its dates, items (price id, quantity), proration and metadata."""

    start_date: int
    end_date: int
    items: Sequence[tuple[str, int]]
    currency: str
    proration_behavior: str
    metadata: dict[str, str]


def make_subscription_schedule(
    *,
    id: str,
    customer: str,
    subscription: str | None,
    created: int,
    status: str,
    end_behavior: str,
    phases: Sequence[PhaseSpec],
    current_phase: tuple[int, int] | None,
    metadata: dict[str, str] | None = None,
    released_at: int | None = None,
    released_subscription: str | None = None,
    canceled_at: int | None = None,
    completed_at: int | None = None,
    api_version: str | None = None,
) -> dict[str, Any]:
    """A subscription schedule (api/subscription_schedules/object) in the shape of ``api_version``."""
    new = is_new_shape(api_version)

    def phase(spec: PhaseSpec) -> dict[str, Any]:
        items = []
        for price, quantity in spec.items:
            item: dict[str, Any] = {"discounts": [], "metadata": {}, "price": price, "quantity": quantity,
                                    "tax_rates": []}
            if not new:
                item["billing_thresholds"] = None
            items.append(item)
        built_phase: dict[str, Any] = {
            "add_invoice_items": [],
            "application_fee_percent": None,
            "billing_cycle_anchor": None,
            "collection_method": None,
            "currency": spec.currency,
            "default_payment_method": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "end_date": spec.end_date,
            "invoice_settings": None,
            "items": items,
            "metadata": dict(spec.metadata),
            "on_behalf_of": None,
            "proration_behavior": spec.proration_behavior,
            "start_date": spec.start_date,
            "transfer_data": None,
            "trial_end": None,
        }
        if not new:
            built_phase["billing_thresholds"] = None
        return built_phase

    built: dict[str, Any] = {
        "id": id,
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"type": "classic", "flexible": None},
        "canceled_at": canceled_at,
        "completed_at": completed_at,
        "created": created,
        "current_phase": (
            {"start_date": current_phase[0], "end_date": current_phase[1]} if current_phase else None
        ),
        "customer": customer,
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
            "billing_cycle_anchor": "automatic",
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "days_until_due": None, "issuer": {"type": "self"}},
            "on_behalf_of": None,
            "transfer_data": None,
        },
        "end_behavior": end_behavior,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "phases": [phase(spec) for spec in phases],
        "released_at": released_at,
        "released_subscription": released_subscription,
        "status": status,
        "subscription": subscription,
        "test_clock": None,
    }
    if not new:
        built.pop("billing_mode")
        built["default_settings"]["billing_thresholds"] = None
    return built


def _line_description(price: dict[str, Any], quantity: int, product_name: str | None) -> str:
    each = format_amount(price["unit_amount"] or 0, price["currency"])
    return f"{quantity} × {product_name or price['product']} (at {each})"


def _unit_excluding_tax(price: dict[str, Any], tax: TaxSpec | None) -> str | None:
    if tax is None or tax.behavior != "inclusive" or price.get("unit_amount_decimal") is None:
        return price.get("unit_amount_decimal")
    net = Decimal(price["unit_amount_decimal"]) * 100 / (100 + tax.percent)
    return format(net.quantize(Decimal("0.000000000001")).normalize(), "f")


def make_invoice_line(
    *,
    line: LineSpec,
    invoice: str,
    subscription: str,
    subscription_metadata: dict[str, str],
    product_name: str | None = None,
    api_version: str | None = None,
    tax: TaxSpec | None = None,
) -> dict[str, Any]:
    amount = line.price["unit_amount"] * line.quantity if line.amount is None else line.amount
    line_tax = tax.line_tax(amount) if tax is not None else 0
    excluding = amount - line_tax if tax is not None and tax.behavior == "inclusive" else amount
    taxes = [_tax_entry(tax, line_tax, excluding, is_new_shape(api_version))] if tax is not None and amount > 0 else []
    built: dict[str, Any] = {
        "id": line.id,
        "object": "line_item",
        "amount": amount,
        "currency": line.price["currency"],
        "description": line.description or _line_description(line.price, line.quantity, product_name),
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice,
        "livemode": False,
        # For subscription lines Stripe shows the subscription's metadata here.
        "metadata": dict(subscription_metadata),
        "period": {"end": line.period_end, "start": line.period_start},
        "quantity": line.quantity,
        "subscription": subscription,
    }
    if is_new_shape(api_version):
        built.update(
            {
                "parent": {
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": line.proration,
                        "proration_details": {"credited_items": None},
                        "subscription": subscription,
                        "subscription_item": line.subscription_item,
                    },
                    "type": "subscription_item_details",
                },
                "pretax_credit_amounts": [],
                "pricing": {
                    "price_details": {"price": line.price["id"], "product": line.price["product"]},
                    "type": "price_details",
                    "unit_amount_decimal": line.price["unit_amount_decimal"],
                },
                "quantity_decimal": str(line.quantity),
                "subtotal": amount,
                "taxes": taxes,
            }
        )
    else:
        built.update(
            {
                "amount_excluding_tax": excluding,
                "invoice_item": None,
                "plan": make_plan(line.price, api_version),
                "price": dict(line.price),
                "proration": line.proration,
                "proration_details": {"credited_items": None},
                "subscription_item": line.subscription_item,
                "tax_amounts": taxes,
                "tax_rates": [],
                "type": "subscription",
                "unit_amount_excluding_tax": _unit_excluding_tax(line.price, tax),
            }
        )
    return built


def make_invoice(
    *,
    id: str,
    customer: str,
    customer_email: str | None,
    customer_name: str | None,
    subscription: str,
    subscription_metadata: dict[str, str],
    lines: Sequence[LineSpec],
    status: str,
    billing_reason: str,
    created: int,
    period_start: int,
    period_end: int,
    currency: str,
    amount_paid: int = 0,
    attempt_count: int = 0,
    attempted: bool = False,
    next_payment_attempt: int | None = None,
    number: str | None = None,
    hosted_invoice_url: str | None = None,
    finalized_at: int | None = None,
    paid_at: int | None = None,
    voided_at: int | None = None,
    payment_intent: str | None = None,
    charge: str | None = None,
    product_names: dict[str, str] | None = None,
    api_version: str | None = None,
    tax: TaxSpec | None = None,
) -> dict[str, Any]:
    new = is_new_shape(api_version)
    names = product_names or {}
    built_lines = [
        make_invoice_line(
            line=line,
            invoice=id,
            subscription=subscription,
            subscription_metadata=subscription_metadata,
            product_name=names.get(line.price["product"]),
            api_version=api_version,
            tax=tax,
        )
        for line in lines
    ]
    subtotal = sum(line["amount"] for line in built_lines)
    # Stripe Tax: an inclusive tax is inside the lines' amounts, an exclusive one is added to the total.
    line_taxes = [t for line in built_lines for t in line.get("taxes") or line.get("tax_amounts") or []]
    included = sum(t["amount"] for t in line_taxes if t.get("tax_behavior") == "inclusive" or t.get("inclusive") is True)
    added = sum(t["amount"] for t in line_taxes) - included
    total = subtotal + added
    total_taxes = ([_tax_entry(tax, included + added, sum(t["taxable_amount"] for t in line_taxes), new)]
                   if tax is not None and line_taxes else [])
    draft = status == "draft"
    # A total below zero (a downgrade's credit) is due as nothing; Stripe credits the balance.
    due = max(total, 0)
    remaining = 0 if status in ("paid", "void") else due - amount_paid
    built: dict[str, Any] = {
        "id": id,
        "object": "invoice",
        "account_country": "FR",
        "account_name": "Membergate local sandbox",
        "account_tax_ids": None,
        "amount_due": due,
        "amount_overpaid": 0,
        "amount_paid": amount_paid,
        "amount_remaining": remaining,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": attempt_count,
        "attempted": attempted,
        # Stripe keeps collecting automatically until the invoice is paid or voided.
        "auto_advance": status in ("draft", "open"),
        "automatic_tax": {
            "enabled": tax is not None,
            "liability": {"type": "self"} if tax is not None else None,
            "status": "complete" if tax is not None else None,
            "disabled_reason": None,
            "provider": "stripe" if tax is not None else None,
        },
        # Subscription drafts are finalised about an hour after invoice.created (docs:
        # billing/subscriptions/webhooks, "invoice.created gates renewals").
        "automatically_finalizes_at": created + 3600 if draft else None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "custom_fields": None,
        "customer": customer,
        "customer_account": None,
        "customer_address": None,
        "customer_email": customer_email,
        "customer_name": customer_name,
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": finalized_at,
        "ending_balance": None if draft else 0,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None if draft else hosted_invoice_url,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": built_lines,
            "has_more": False,
            "url": f"/v1/invoices/{id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": next_payment_attempt,
        "number": number,
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": dict(subscription_metadata), "subscription": subscription},
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period_end,
        "period_start": period_start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": {
            "amount_tax_display": None,
            "pdf": {"page_size": "auto"},
            "template": None,
            "template_version": None,
        },
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": status,
        "status_transitions": {
            "finalized_at": finalized_at,
            "marked_uncollectible_at": None,
            "paid_at": paid_at,
            "voided_at": voided_at,
        },
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal - included,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": subtotal - included,
        "total_pretax_credit_amounts": [],
        "total_taxes": total_taxes,
        "webhooks_delivered_at": None if draft else created,
    }
    if not new:
        for gone in ("parent", "total_pretax_credit_amounts", "total_taxes", "amount_overpaid"):
            built.pop(gone)
        built.update(
            {
                "subscription": subscription,
                "subscription_details": {"metadata": dict(subscription_metadata)},
                "subscription_proration_date": None,
                "paid": status == "paid",
                "paid_out_of_band": False,
                "charge": charge,
                "payment_intent": payment_intent,
                "discount": None,
                "quote": None,
                "tax": included + added if tax is not None else None,
                "total_tax_amounts": total_taxes,
                "application_fee_amount": None,
            }
        )
    return built


def make_checkout_session(
    *,
    id: str,
    created: int,
    expires_at: int,
    url: str | None,
    status: str,
    payment_status: str,
    customer: str | None,
    customer_email: str | None,
    client_reference_id: str | None,
    success_url: str | None,
    cancel_url: str | None,
    metadata: dict[str, str] | None,
    allow_promotion_codes: bool | None,
    currency: str,
    amount_subtotal: int,
    amount_total: int,
    subscription: str | None = None,
    invoice: str | None = None,
    customer_details: dict[str, Any] | None = None,
    payment_method_types: Sequence[str] = ("card", "sepa_debit"),
    mode: str = "subscription",
    payment_intent: str | None = None,
    customer_creation: str | None = None,
    invoice_creation: bool = False,
    api_version: str | None = None,
) -> dict[str, Any]:
    payment = mode == "payment"
    built: dict[str, Any] = {
        "id": id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": allow_promotion_codes,
        "amount_subtotal": amount_subtotal,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "status": None, "provider": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None
        if customer_details is None
        else {"business_name": None, "individual_name": None, "shipping_details": None},
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer,
        "customer_account": None,
        "customer_creation": customer_creation if payment else None,
        "customer_details": customer_details,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": invoice,
        # Payment mode says whether a post-payment invoice is made (never, here); subscriptions have invoices anyway.
        "invoice_creation": {
            "enabled": invoice_creation,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        }
        if payment
        else None,
        "livemode": False,
        "locale": None,
        "managed_payments": {"enabled": False},
        "metadata": dict(metadata or {}),
        "mode": mode,
        "origin_context": None,
        # Subscription-mode sessions pay through the first invoice, not a PaymentIntent of their own.
        "payment_intent": payment_intent if payment else None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": list(payment_method_types),
        "payment_status": payment_status,
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": None,
            "payment_method_save": None,
        },
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": status,
        "submit_type": None,
        "subscription": subscription,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        # Stripe clears the URL once the session is complete or expired.
        "url": url if status == "open" else None,
        "wallet_options": None,
    }
    if not is_new_shape(api_version):
        for gone in ("managed_payments", "integration_identifier", "origin_context"):
            built.pop(gone)
        built["shipping_details"] = None
    return built


# API 2026-10-28 ("endive") added after_expiration to portal sessions (changelog
# endive/2026-10-28/session-recovery-for-expired-customer-portal-sessions).
PORTAL_AFTER_EXPIRATION_SINCE = "2026-10-28"


def make_portal_session(
    *,
    id: str,
    customer: str,
    return_url: str | None,
    url: str,
    created: int,
    configuration: str,
    locale: str | None = None,
    api_version: str | None = None,
) -> dict[str, Any]:
    built: dict[str, Any] = {
        "id": id,
        "object": "billing_portal.session",
        "configuration": configuration,
        "created": created,
        "customer": customer,
        "customer_account": None,
        "flow": None,
        "livemode": False,
        "locale": locale,
        "on_behalf_of": None,
        "return_url": return_url,
        "url": url,
    }
    if (api_version or default_api_version())[:10] >= PORTAL_AFTER_EXPIRATION_SINCE:
        built["after_expiration"] = None
    return built


def make_customer_details(*, email: str | None, name: str | None) -> dict[str, Any]:
    return {
        "address": _address(),
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def _card_details(amount: int, fingerprint: str) -> dict[str, Any]:
    # Stripe's test Visa (4242…); three_d_secure stays null as for an unauthenticated charge.
    return {
        "amount_authorized": amount,
        "authorization_code": None,
        "brand": "visa",
        "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
        "country": "US",
        "exp_month": 12,
        "exp_year": 2034,
        "extended_authorization": {"status": "disabled"},
        "fingerprint": fingerprint,
        "funding": "credit",
        "incremental_authorization": {"status": "unavailable"},
        "installments": None,
        "last4": "4242",
        "mandate": None,
        "multicapture": {"status": "unavailable"},
        "network": "visa",
        "network_token": {"used": False},
        "network_transaction_id": None,
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": "unregulated",
        "three_d_secure": None,
        "transaction_link_id": None,
        "wallet": None,
    }


def card_fingerprint(number: str) -> str:
    """The card's ``fingerprint``: the same for the same card number, as Stripe's is within one account."""
    digest = hashlib.sha256(f"sandbox-card|{number}".encode()).digest()
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:16])


def make_card_payment_method(*, id: str, customer: str | None, created: int, number: str,
                             exp_month: int = 12, exp_year: int = 2034) -> dict[str, Any]:
    """A card PaymentMethod (api/payment_methods/object), as fixtures3.json's ``payment_method``."""
    return {
        "id": id,
        "object": "payment_method",
        "allow_redisplay": "always",
        "billing_details": {"address": _address(), "email": None, "name": None, "phone": None, "tax_id": None},
        "card": {
            "brand": "visa" if number.startswith("4") else "mastercard" if number[:1] in "25" else "unknown",
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US",
            "display_brand": "visa" if number.startswith("4") else "mastercard" if number[:1] in "25" else "unknown",
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": card_fingerprint(number),
            "funding": "credit",
            "generated_from": None,
            "last4": number[-4:],
            "networks": {"available": ["visa"], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": created,
        "customer": customer,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def _sepa_details(fingerprint: str) -> dict[str, Any]:
    return {
        "bank_code": "37040044",
        "branch_code": None,
        "country": "DE",
        "fingerprint": fingerprint,
        "last4": "3000",
        "mandate": new_id("mandate"),
    }


def make_payment_intent(
    *,
    id: str,
    amount: int,
    currency: str,
    created: int,
    status: str,
    customer: str | None,
    payment_method: str | None,
    payment_method_type: str = "card",
    latest_charge: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    last_payment_error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A PaymentIntent as Checkout's payment mode makes it (api/payment_intents/object)."""
    return {
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount if status == "succeeded" else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{id}_secret_{new_id('x')[2:]}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": last_payment_error,
        "latest_charge": latest_charge,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": dict(metadata or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": [payment_method_type],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def make_refund(
    *,
    id: str,
    amount: int,
    charge: str,
    currency: str,
    created: int,
    payment_intent: str | None,
    customer: str | None = None,
    payment_method: str | None = None,
    reason: str | None = None,
    status: str = "succeeded",
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge,
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "destination_details": {"card": {"reference": None, "reference_status": "pending",
                                         "reference_type": "acquirer_reference_number", "type": "refund"},
                                "type": "card"},
        "metadata": {},
        "payment_intent": payment_intent,
        "payment_method": payment_method,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


def make_charge(
    *,
    id: str,
    amount: int,
    currency: str,
    created: int,
    customer: str | None,
    payment_intent: str | None,
    payment_method: str,
    status: str = "succeeded",
    payment_method_type: str = "card",
    fingerprint: str = "Xt5EWLLDS7FJjR1c",
    description: str | None = None,
    billing_email: str | None = None,
    billing_name: str | None = None,
    amount_refunded: int = 0,
    refunds: Sequence[dict[str, Any]] = (),
    disputed: bool = False,
    failure_code: str | None = None,
    failure_message: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A charge (api/charges/object); its ``refunds`` list holds the refunds made so far."""
    paid = status == "succeeded"
    details = (
        {"card": _card_details(amount, fingerprint), "type": "card"}
        if payment_method_type == "card"
        else {"sepa_debit": _sepa_details(fingerprint), "type": "sepa_debit"}
    )
    return {
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if status != "failed" else 0,
        "amount_refunded": amount_refunded,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn") if paid else None,
        "billing_details": {
            "address": _address(),
            "email": billing_email,
            "name": billing_name,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "MEMBERGATE",
        "captured": status != "failed",
        "created": created,
        "currency": currency,
        "customer": customer,
        "description": description,
        "disputed": disputed,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(metadata or {}),
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network" if status != "failed" else "declined_by_network",
            "reason": None if status != "failed" else "generic_decline",
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": (
                "Payment complete." if status != "failed" else "The bank did not return any further details."
            ),
            "type": "authorized" if status != "failed" else "issuer_declined",
        },
        "paid": paid,
        "payment_intent": payment_intent,
        "payment_method": payment_method,
        "payment_method_details": details,
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{id}",
        "refunded": amount_refunded >= amount > 0,
        "refunds": {"object": "list", "data": list(refunds), "has_more": False, "url": f"/v1/charges/{id}/refunds"},
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def make_dispute(
    *,
    id: str,
    amount: int,
    charge: str,
    currency: str,
    created: int,
    payment_intent: str | None,
    status: str,
    reason: str = "fraudulent",
    evidence_due_by: int | None = None,
    customer_email: str | None = None,
) -> dict[str, Any]:
    """A dispute (api/disputes/object); ``status`` is needs_response, then won or lost."""
    evidence_keys = (
        "access_activity_log", "billing_address", "cancellation_policy", "cancellation_policy_disclosure",
        "cancellation_rebuttal", "customer_communication", "customer_email_address", "customer_name",
        "customer_purchase_ip", "customer_signature", "duplicate_charge_documentation",
        "duplicate_charge_explanation", "duplicate_charge_id", "product_description", "receipt", "refund_policy",
        "refund_policy_disclosure", "refund_refusal_explanation", "service_date", "service_documentation",
        "shipping_address", "shipping_carrier", "shipping_date", "shipping_documentation",
        "shipping_tracking_number", "uncategorized_file", "uncategorized_text",
    )
    evidence: dict[str, Any] = dict.fromkeys(evidence_keys)
    evidence["customer_email_address"] = customer_email
    evidence["enhanced_evidence"] = {}
    return {
        "id": id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge,
        "created": created,
        "currency": currency,
        "enhanced_eligibility_types": [],
        "evidence": evidence,
        "evidence_details": {
            "due_by": evidence_due_by,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network": "visa", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": reason,
        "status": status,
    }


def make_invoice_payment(
    *,
    id: str,
    invoice: str,
    amount: int,
    currency: str,
    created: int,
    payment_intent: str,
    paid_at: int | None,
) -> dict[str, Any]:
    """The link between an invoice and the PaymentIntent that paid it (api/invoice-payment/object)."""
    return {
        "id": id,
        "object": "invoice_payment",
        "amount_paid": amount if paid_at is not None else None,
        "amount_requested": amount,
        "created": created,
        "currency": currency,
        "invoice": invoice,
        "is_default": True,
        "livemode": False,
        "payment": {"charge": None, "payment_intent": payment_intent, "type": "payment_intent"},
        "status": "paid" if paid_at is not None else "open",
        "status_transitions": {"canceled_at": None, "paid_at": paid_at},
    }


def make_event(
    type: str,
    obj: dict[str, Any],
    created: int,
    api_version: str | None,
    previous_attributes: dict[str, Any] | None = None,
    *,
    id: str | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """An event envelope as a webhook endpoint receives it (docs: api/events/object).

    ``data.previous_attributes`` appears only on ``*.updated`` events, holding the old values of
    the fields that changed. ``request.id`` is null when Stripe acted on its own (a renewal).
    """
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": id or new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }


ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)


def format_amount(minor_units: int, currency: str) -> str:
    """``1000, "eur"`` → ``"10.00 EUR"``, without ever going through a float."""
    code = currency.upper()
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{minor_units} {code}"
    sign = "-" if minor_units < 0 else ""
    major, minor = divmod(abs(minor_units), 100)
    return f"{sign}{major}.{minor:02d} {code}"


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The old values of what changed, as Stripe reports them on ``*.updated`` events.

    Nested hashes report only their changed keys; lists (such as ``items.data``) are reported
    whole, as Stripe does.
    """
    changed: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changed[key] = previous_attributes(old, new)
        else:
            changed[key] = old
    return changed
