"""The sandbox's Stripe objects as it keeps them in memory, and the calendar arithmetic of billing periods."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .shapes import TaxSpec

DAY = 86_400
# The subscription statuses from which nothing comes back: the one place the sandbox decides
# whether a subscription has ended (billing/subscriptions/overview, "subscription statuses").
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
INTERVALS = ("day", "week", "month", "year")
# How a customer's saved payment method answers an off-session charge (a renewal, a retry):
# like Stripe's test cards 4242… (succeeds), 4000 0000 0000 0341 (declines once attached) and
# 4000 0027 6000 3184 (always asks the cardholder to authenticate).
PAYMENT_METHOD_BEHAVIOURS = ("succeeds", "declines", "requires_action")
# The card a member types on the pay page unless they type another (Stripe's test Visa).
TEST_CARD_NUMBER = "4242424242424242"
# customer.subscription.trial_will_end is sent this long before a trial ends (billing/subscriptions/trials).
TRIAL_WILL_END_NOTICE = 3 * DAY


def has_ended(status: str) -> bool:
    """Whether a subscription in ``status`` has ended for good."""
    return status in ENDED_STATUSES


@dataclass
class Product:
    id: str
    name: str
    created: int
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    active: bool = True


@dataclass
class Price:
    id: str
    product_id: str
    unit_amount: int
    currency: str
    interval: str | None
    interval_count: int
    created: int
    trial_period_days: int | None = None
    nickname: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # Pay what you want (one-time prices only, as in Stripe): unit_amount is then None.
    custom_unit_amount: dict[str, int | None] | None = None
    lookup_key: str | None = None
    active: bool = True
    # Stripe Tax: "inclusive" (the amount holds the tax), "exclusive" (added on top) or "unspecified".
    tax_behavior: str = "unspecified"

    @property
    def recurring(self) -> bool:
        return self.interval is not None


@dataclass
class Customer:
    id: str
    created: int
    invoice_prefix: str
    metadata: dict[str, str]
    email: str | None = None
    name: str | None = None
    description: str | None = None
    phone: str | None = None
    currency: str | None = None
    delinquent: bool = False
    next_invoice_sequence: int = 1
    # What the saved payment method does when charged off-session: one of PAYMENT_METHOD_BEHAVIOURS.
    payment_method_behaviour: str = "succeeds"
    deleted: bool = False


@dataclass
class LineItem:
    price_id: str
    quantity: int
    # The amount the member chose for a pay-what-you-want price, once they have.
    custom_amount: int | None = None


@dataclass
class Session:
    id: str
    created: int
    expires_at: int
    customer_id: str | None
    customer_email: str | None
    client_reference_id: str | None
    line_items: list[LineItem]
    success_url: str
    cancel_url: str | None
    metadata: dict[str, str]
    subscription_metadata: dict[str, str]
    trial_period_days: int | None
    allow_promotion_codes: bool | None
    currency: str
    status: str = "open"
    payment_status: str = "unpaid"
    subscription_id: str | None = None
    invoice_id: str | None = None
    awaiting_async_payment: bool = False
    mode: str = "subscription"
    customer_creation: str | None = None
    # invoice_creation[enabled]: accepted and shown; the post-payment invoice itself is not made.
    invoice_creation: bool = False
    payment_intent_id: str | None = None
    payment_intent_metadata: dict[str, str] = field(default_factory=dict)
    # locale, automatic_tax, consent_collection, custom_text, phone_number_collection... as the session shows them
    options: dict[str, Any] = field(default_factory=dict)
    # A promotion code the member typed on the page (allow_promotion_codes): what it took off today.
    promotion_code_id: str | None = None
    discount: int = 0


@dataclass
class PromotionCode:
    """A customer-facing code for a coupon (percent_off or amount_off, duration once): the sandbox
    applies it to a payment-mode Checkout Session only (a subscription's first invoice keeps its price)."""

    id: str
    code: str
    coupon_id: str
    percent_off: float | None
    amount_off: int | None
    currency: str | None

    def discount(self, subtotal: int) -> int:
        off = self.amount_off if self.amount_off is not None else round(subtotal * (self.percent_off or 0) / 100)
        return min(max(off, 0), subtotal)


@dataclass
class Item:
    id: str
    price_id: str
    quantity: int
    created: int


@dataclass
class Subscription:
    id: str
    customer_id: str
    items: list[Item]
    status: str
    created: int
    currency: str
    metadata: dict[str, str]
    interval: str
    interval_count: int
    # Periods are computed from the anchor so monthly billing keeps its day (31 Jan → 28 Feb → 31 Mar);
    # cycle -1 is the trial, whose period is (trial_start, trial_end).
    anchor: int
    cycle: int
    period_start: int
    period_end: int
    default_payment_method: str | None = None
    latest_invoice: str | None = None
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    cancellation_reason: str | None = None
    cancellation_comment: str | None = None
    cancellation_feedback: str | None = None
    trial_start: int | None = None
    trial_end: int | None = None
    session_id: str | None = None
    trial_will_end_sent: bool = False
    # pause_collection ({behavior, resumes_at}) while collection is paused; None when collecting.
    pause_collection: dict[str, Any] | None = None
    # Proration lines from item changes, billed on the next invoice (proration_behavior=create_prorations).
    pending_prorations: list[Line] = field(default_factory=list)
    # The subscription schedule managing it (``schedule`` on the wire), while one is attached.
    schedule_id: str | None = None
    # automatic_tax[enabled] of the Checkout Session that made it: its invoices get Stripe Tax.
    automatic_tax: bool = False

    @property
    def ended(self) -> bool:
        return has_ended(self.status)


@dataclass
class Line:
    id: str
    item_id: str
    price_id: str
    quantity: int
    period_start: int
    period_end: int
    amount: int
    description: str | None = None
    proration: bool = False


@dataclass
class Invoice:
    id: str
    customer_id: str
    subscription_id: str
    subscription_metadata: dict[str, str]
    lines: list[Line]
    billing_reason: str
    created: int
    period_start: int
    period_end: int
    currency: str
    status: str = "draft"
    amount_paid: int = 0
    attempt_count: int = 0
    attempted: bool = False
    next_payment_attempt: int | None = None
    number: str | None = None
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    payment_intent: str | None = None
    charge: str | None = None
    # Stripe Tax on this invoice (its subscription's automatic_tax and a price with a tax_behavior).
    tax: TaxSpec | None = None

    @property
    def total(self) -> int:
        # An exclusive tax is added to the lines; an inclusive one is already inside them.
        added = sum(self.tax.line_tax(line.amount) for line in self.lines) if self.tax and self.tax.behavior == "exclusive" else 0
        return sum(line.amount for line in self.lines) + added

    @property
    def amount_due(self) -> int:
        # A negative total (a downgrade's credit) goes to the customer's balance; nothing is due.
        return max(self.total, 0)


@dataclass
class Refund:
    id: str
    amount: int
    created: int


@dataclass
class Charge:
    """One payment that moved money (or tried to): a paid invoice or a payment-mode Checkout."""

    id: str
    customer_id: str | None
    amount: int
    currency: str
    created: int
    payment_intent_id: str
    payment_method_id: str
    payment_method_type: str = "card"
    status: str = "succeeded"
    invoice_id: str | None = None
    session_id: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    refunds: list[Refund] = field(default_factory=list)
    dispute_id: str | None = None
    # The InvoicePayment linking a subscription invoice to this charge's PaymentIntent (API 2025-03-31+).
    invoice_payment_id: str | None = None

    @property
    def amount_refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds)


@dataclass
class Dispute:
    id: str
    charge_id: str
    amount: int
    currency: str
    created: int
    status: str = "needs_response"


@dataclass
class PortalSession:
    id: str
    customer_id: str
    return_url: str | None
    created: int
    configuration: str
    locale: str | None = None


@dataclass
class WebhookEndpoint:
    """A webhook endpoint registered through the API (api/webhook_endpoints/object)."""

    id: str
    url: str
    enabled_events: list[str]
    api_version: str | None
    secret: str
    created: int
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    status: str = "enabled"


def default_portal_features() -> dict[str, Any]:
    """The portal features as Stripe renders them (portal_features), all off but invoice history."""
    return {
        "customer_update": {"allowed_updates": [], "enabled": False},
        "invoice_history": {"enabled": True},
        "payment_method_update": {"enabled": False},
        "subscription_cancel": {
            "cancellation_reason": {"enabled": False, "options": []},
            "enabled": False,
            "mode": "at_period_end",
            "proration_behavior": "none",
        },
        "subscription_pause": {"enabled": False},
        "subscription_update": {
            "default_allowed_updates": [],
            "enabled": False,
            "products": [],
            "proration_behavior": "none",
        },
    }


@dataclass
class PortalConfiguration:
    """A customer-portal configuration saved through the API (api/customer_portal/configurations/object)."""

    id: str
    created: int
    updated: int
    features: dict[str, Any]
    business_profile: dict[str, Any]
    default_return_url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    active: bool = True
    is_default: bool = False


@dataclass(frozen=True)
class RequestInfo:
    """What an event's ``request`` says: null id when Stripe acted on its own (a renewal)."""

    id: str | None = None
    idempotency_key: str | None = None


AUTOMATIC = RequestInfo()


def shift(timestamp: int, count: int, interval: str) -> int:
    """``timestamp`` moved by ``count`` intervals; months keep the day, clamped to the month's end."""
    if interval == "day":
        return timestamp + count * DAY
    if interval == "week":
        return timestamp + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    start = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return int(start.replace(year=year, month=month0 + 1, day=day).timestamp())


@dataclass
class SchedulePhase:
    """One phase of a subscription schedule: the items the subscription has from ``start_date`` to ``end_date``."""

    start_date: int
    end_date: int
    items: list[tuple[str, int]]  # (price id, quantity)
    proration_behavior: str = "create_prorations"
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Schedule:
    """A subscription schedule (api/subscription_schedules/object), made ``from_subscription``."""

    id: str
    customer_id: str
    subscription_id: str | None
    created: int
    currency: str
    phases: list[SchedulePhase]
    status: str = "active"  # not_started | active | completed | released | canceled
    end_behavior: str = "release"
    metadata: dict[str, str] = field(default_factory=dict)
    released_at: int | None = None
    released_subscription: str | None = None
    canceled_at: int | None = None
    completed_at: int | None = None

    @property
    def live(self) -> bool:
        return self.status in ("not_started", "active")
