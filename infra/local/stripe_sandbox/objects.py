"""The sandbox's Stripe objects as it keeps them in memory, and the calendar arithmetic of billing periods."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timezone

DAY = 86_400
# The subscription statuses from which nothing comes back: the one place the sandbox decides
# whether a subscription has ended (billing/subscriptions/overview, "subscription statuses").
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
INTERVALS = ("day", "week", "month", "year")


def has_ended(status: str) -> bool:
    """Whether a subscription in ``status`` has ended for good."""
    return status in ENDED_STATUSES


@dataclass
class Product:
    id: str
    name: str
    created: int


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


@dataclass
class LineItem:
    price_id: str
    quantity: int


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

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


@dataclass
class PortalSession:
    id: str
    customer_id: str
    return_url: str | None
    created: int
    configuration: str
    locale: str | None = None


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
