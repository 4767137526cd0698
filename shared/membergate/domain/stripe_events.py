"""Reading Stripe events by the fields present, whatever the API version that shaped them.

The webhook endpoint's own API version decides a payload's shape and ``api_version`` in an
event may be null, so nothing here looks at it. Since 2025-03-31 ("basil") period dates live on
subscription items and an invoice names its subscription under
``parent.subscription_details.subscription``; older endpoints still send top-level fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from .billing import SubscriptionSnapshot
from .consent import CheckoutConsent, checkout_consent
from .errors import MalformedEventError
from .lifecycle import CardOnFile, card_expires_at
from .model import CheckoutGate, PriceLine
from .trials import trial_key

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
        "customer.subscription.trial_will_end",
    }
)
CHECKOUT_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
    }
)
INVOICE_EVENTS = frozenset(
    {"invoice.paid", "invoice.payment_failed", "invoice.payment_action_required"}
)
# Money coming back (refunds, disputes) and a customer removed from Stripe end grants.
CHARGE_EVENTS = frozenset({"charge.refunded", "charge.dispute.created", "charge.dispute.closed"})
CUSTOMER_EVENTS = frozenset({"customer.deleted"})
# An expired Checkout Session gives back the seat it held (plans with seats: domain/seats.py).
EXPIRY_EVENTS = frozenset({"checkout.session.expired"})
# What a customer's email and card on file are now: the SES fallback's address, the card warning.
CUSTOMER_FACT_EVENTS = frozenset(
    {"customer.updated", "payment_method.attached", "payment_method.updated", "payment_method.automatically_updated"}
)
HANDLED_EVENT_TYPES = (
    SUBSCRIPTION_EVENTS | CHECKOUT_EVENTS | INVOICE_EVENTS | CHARGE_EVENTS | CUSTOMER_EVENTS | EXPIRY_EVENTS
    | CUSTOMER_FACT_EVENTS
)

# Metadata keys Membergate's checkout writes on the session and the subscription (session
# metadata is not copied to the subscription, so both get them).
MEMBER_METADATA_KEY = "membergate_member_id"
PLAN_METADATA_KEY = "membergate_plan_id"


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: int
    livemode: bool
    api_version: str | None
    object: dict[str, Any]

    @property
    def customer_id(self) -> str | None:
        return customer_id_of(self.object)


@dataclass(frozen=True)
class CheckoutCompletion:
    session_id: str
    mode: str
    customer_id: str | None
    subscription_id: str | None
    member_id: str | None
    gate: CheckoutGate
    plan_id: str | None = None
    amount_total: int = 0
    currency: str = ""
    payment_intent: str | None = None
    consent: CheckoutConsent | None = None  # what the member agreed to on the page (completed sessions)
    # The tax in amount_total (total_details.amount_tax: inclusive and exclusive, Stripe Tax); 0 when none.
    amount_tax: int = 0


@dataclass(frozen=True)
class ChargeFact:
    """What a refund or dispute event says about the payment it concerns."""

    payment_intent: str | None
    charge_id: str | None
    customer_id: str | None
    member_id: str | None  # our metadata on the PaymentIntent, copied to its charges
    fully_refunded: bool = False
    dispute: str = ""  # "" | open | won | lost
    charge_created: int | None = None
    dispute_id: str | None = None


@dataclass(frozen=True)
class InvoiceFact:
    invoice_id: str
    customer_id: str | None
    subscription_id: str | None
    status: str | None
    currency: str
    amount_due: int
    amount_paid: int
    attempt_count: int
    next_payment_attempt: int | None
    hosted_invoice_url: str | None
    billing_reason: str | None
    paid_at: int | None = None
    # The tax included in its prices, as a rate of the net amount (None: the invoice does not say).
    tax_inclusive_rate: Fraction | None = None


def parse_event(raw: Any) -> StripeEvent:
    if not isinstance(raw, dict):
        raise MalformedEventError("the body is not a JSON object")
    event_id = raw.get("id")
    event_type = raw.get("type")
    created = raw.get("created")
    data = raw.get("data")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEventError("the event has no id")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEventError("the event has no type")
    if not isinstance(created, int) or isinstance(created, bool):
        raise MalformedEventError("the event has no integer 'created'")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEventError("the event has no data.object")
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=created,
        livemode=bool(raw.get("livemode", False)),
        api_version=raw.get("api_version"),
        object=data["object"],
    )


def customer_id_of(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return _id(obj.get("id"))
    return _id(obj.get("customer"))


def _id(value: Any) -> str | None:
    """Stripe fields may hold an id or, when expanded, the object itself."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        inner = value.get("id")
        return inner if isinstance(inner, str) and inner else None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def customer_email(obj: dict[str, Any]) -> str | None:
    """The buyer's email from a Checkout Session (customer_details.email), if it looks like one."""
    return valid_email(_dict(obj.get("customer_details")).get("email"))


def customer_object_email(obj: dict[str, Any]) -> str | None:
    """A Customer object's email (customer.updated), if it looks like one."""
    return valid_email(obj.get("email")) if obj.get("object") == "customer" else None


def card_on_file(event: StripeEvent) -> CardOnFile | None:
    """What the event says about the card the customer's next charge goes to.

    A card PaymentMethod (payment_method.*) gives its expiry; a Customer names its default payment
    method (invoice_settings.default_payment_method), with the expiry only when expanded."""
    obj = event.object
    if obj.get("object") == "customer":
        default = _dict(obj.get("invoice_settings")).get("default_payment_method")
        default_id = _id(default)
        if default_id is None:
            return None
        return CardOnFile(default_id, _card_expiry(default) if isinstance(default, dict) else None, event.created)
    if obj.get("object") != "payment_method" or obj.get("type") != "card":
        return None
    pm_id = _id(obj.get("id"))
    expires = _card_expiry(obj)
    fingerprint = _dict(obj.get("card")).get("fingerprint")
    key = trial_key("card", fingerprint) if isinstance(fingerprint, str) and fingerprint.strip() else None
    return CardOnFile(pm_id, expires, event.created, trial_key=key) if pm_id and expires is not None else None


def _card_expiry(payment_method: dict[str, Any]) -> int | None:
    card = _dict(payment_method.get("card"))
    month, year = _int_or_none(card.get("exp_month")), _int_or_none(card.get("exp_year"))
    if month is None or year is None or not 1 <= month <= 12 or not 2000 <= year <= 2200:
        return None
    return card_expires_at(month, year)


def valid_email(email: Any) -> str | None:
    if not isinstance(email, str) or len(email) > 254 or email.count("@") != 1:
        return None
    if any(c.isspace() or not c.isprintable() for c in email):
        return None  # CR/LF or spaces would let it inject headers or recipients
    return email


def subscription_snapshot(event: StripeEvent) -> SubscriptionSnapshot:
    sequence = 0 if event.type == "customer.subscription.created" else 2 if event.type == "customer.subscription.deleted" else 1
    return replace(snapshot_of(event.object, created=event.created, source_id=event.id, livemode=event.livemode,
                               what=event.type), sequence=sequence)


def read_back_snapshot(sub: dict[str, Any], read_at: int) -> SubscriptionSnapshot:
    """A subscription read from Stripe's API (not from an event) as a snapshot seen at ``read_at``."""
    return snapshot_of(sub, created=read_at, source_id=f"stripe-read-{read_at}", livemode=sub.get("livemode") is True,
                       what="subscription read back from Stripe")


def snapshot_of(sub: dict[str, Any], *, created: int, source_id: str, livemode: bool, what: str) -> SubscriptionSnapshot:
    """A subscription object (from an event or read back from Stripe) as seen at ``created``."""
    if sub.get("object") not in (None, "subscription"):
        raise MalformedEventError(f"{what} carries a {sub.get('object')}, not a subscription")
    sub_id = _id(sub.get("id"))
    customer = _id(sub.get("customer"))
    status = sub.get("status")
    if not sub_id or not customer or not isinstance(status, str):
        raise MalformedEventError("the subscription lacks id, customer or status")
    lines = tuple(_price_line(item) for item in _items(sub))
    metadata = _dict(sub.get("metadata"))
    member_hint = metadata.get(MEMBER_METADATA_KEY)
    return SubscriptionSnapshot(
        sequence=1,  # a read-back is the state at ``created``, as an update is; events set their own
        subscription_id=sub_id,
        customer_id=customer,
        status=status,
        created=created,
        event_id=source_id,
        cancel_at_period_end=bool(sub.get("cancel_at_period_end", False)),
        cancel_at=_int_or_none(sub.get("cancel_at")),
        current_period_end=_period_end(sub),
        pause_collection=bool(sub.get("pause_collection")),
        lines=lines,
        member_id_hint=member_hint if isinstance(member_hint, str) and member_hint else None,
        livemode=livemode,
        schedule_id=_id(sub.get("schedule")) or None,
    )


def _items(sub: dict[str, Any]) -> list[dict[str, Any]]:
    items = sub.get("items")
    if isinstance(items, dict) and isinstance(items.get("data"), list):
        return [i for i in items["data"] if isinstance(i, dict)]
    return []


def _period_end(sub: dict[str, Any]) -> int | None:
    # Old shape: on the subscription. New shape (2025-03-31+): on each item; the earliest end is
    # when the subscription as a whole renews (items share an anchor in practice).
    top = _int_or_none(sub.get("current_period_end"))
    if top is not None:
        return top
    ends = [e for e in (_int_or_none(i.get("current_period_end")) for i in _items(sub)) if e is not None]
    return min(ends) if ends else None


def _price_line(item: dict[str, Any]) -> PriceLine:
    price = item.get("price") if isinstance(item.get("price"), dict) else None
    plan = item.get("plan") if isinstance(item.get("plan"), dict) else None
    source = price or plan or {}
    recurring = source.get("recurring") if isinstance(source.get("recurring"), dict) else None
    if price is not None:
        amount = _int_or_none(price.get("unit_amount"))
        interval = recurring.get("interval") if recurring else None
        interval_count = _int_or_none(recurring.get("interval_count")) if recurring else None
    else:  # pre-2020 "plan" objects put amount and interval at top level
        amount = _int_or_none(source.get("amount"))
        interval = source.get("interval")
        interval_count = _int_or_none(source.get("interval_count"))
    quantity = _int_or_none(item.get("quantity"))
    return PriceLine(
        price_id=_id(source.get("id")) or "",
        currency=str(source.get("currency") or "").lower(),
        unit_amount=amount,
        quantity=quantity if quantity is not None else 1,
        interval=interval if isinstance(interval, str) else None,
        interval_count=interval_count or 1,
    )


def checkout_completion(event: StripeEvent) -> CheckoutCompletion:
    session = event.object
    session_id = _id(session.get("id"))
    if not session_id:
        raise MalformedEventError("the checkout session has no id")
    payment_status = session.get("payment_status")
    if event.type == "checkout.session.async_payment_failed":
        gate = CheckoutGate.FAILED
    elif event.type == "checkout.session.async_payment_succeeded":
        gate = CheckoutGate.PAID
    elif payment_status in ("paid", "no_payment_required"):
        gate = CheckoutGate.PAID
    else:
        gate = CheckoutGate.AWAITING
    metadata = _dict(session.get("metadata"))
    member_id = session.get("client_reference_id") or metadata.get(MEMBER_METADATA_KEY)
    return CheckoutCompletion(
        session_id=session_id,
        mode=str(session.get("mode") or ""),
        customer_id=_id(session.get("customer")),
        subscription_id=_id(session.get("subscription")),
        member_id=member_id if isinstance(member_id, str) and member_id else None,
        gate=gate,
        plan_id=metadata.get(PLAN_METADATA_KEY) if isinstance(metadata.get(PLAN_METADATA_KEY), str) else None,
        amount_total=_int_or_none(session.get("amount_total")) or 0,
        currency=str(session.get("currency") or "").lower(),
        payment_intent=_id(session.get("payment_intent")),
        consent=checkout_consent(session, event.created) if gate is not CheckoutGate.FAILED else None,
        amount_tax=max(_int_or_none(_dict(session.get("total_details")).get("amount_tax")) or 0, 0),
    )


def charge_fact(event: StripeEvent) -> ChargeFact:
    obj = event.object
    if event.type == "charge.refunded":
        if obj.get("object") not in (None, "charge"):
            raise MalformedEventError(f"{event.type} carries a {obj.get('object')}, not a charge")
        amount = _int_or_none(obj.get("amount")) or 0
        refunded = _int_or_none(obj.get("amount_refunded")) or 0
        metadata = _dict(obj.get("metadata"))
        member = metadata.get(MEMBER_METADATA_KEY)
        return ChargeFact(
            payment_intent=_id(obj.get("payment_intent")),
            charge_id=_id(obj.get("id")),
            customer_id=_id(obj.get("customer")),
            member_id=member if isinstance(member, str) and member else None,
            # Partial refunds change nothing: only all of the money back ends the grant.
            fully_refunded=obj.get("refunded") is True or (amount > 0 and refunded >= amount),
            charge_created=_int_or_none(obj.get("created")),
        )
    if obj.get("object") not in (None, "dispute"):
        raise MalformedEventError(f"{event.type} carries a {obj.get('object')}, not a dispute")
    status = obj.get("status")
    if event.type == "charge.dispute.closed":
        # Stripe closes a dispute as won or lost (warning_closed: an inquiry that went nowhere).
        dispute = "won" if status in ("won", "warning_closed") else "lost"
    else:
        dispute = "open"
    return ChargeFact(
        payment_intent=_id(obj.get("payment_intent")),
        charge_id=_id(obj.get("charge")),
        customer_id=None,
        member_id=None,
        dispute=dispute,
        dispute_id=_id(obj.get("id")),
    )


def invoice_fact(event: StripeEvent) -> InvoiceFact:
    inv = event.object
    invoice_id = _id(inv.get("id"))
    if not invoice_id:
        raise MalformedEventError("the invoice has no id")
    transitions = inv.get("status_transitions")
    return InvoiceFact(
        invoice_id=invoice_id,
        customer_id=_id(inv.get("customer")),
        subscription_id=invoice_subscription_id(inv),
        status=inv.get("status") if isinstance(inv.get("status"), str) else None,
        currency=str(inv.get("currency") or "").lower(),
        amount_due=_int_or_none(inv.get("amount_due")) or 0,
        amount_paid=_int_or_none(inv.get("amount_paid")) or 0,
        attempt_count=_int_or_none(inv.get("attempt_count")) or 0,
        next_payment_attempt=_int_or_none(inv.get("next_payment_attempt")),
        hosted_invoice_url=inv.get("hosted_invoice_url") if isinstance(inv.get("hosted_invoice_url"), str) else None,
        billing_reason=inv.get("billing_reason") if isinstance(inv.get("billing_reason"), str) else None,
        paid_at=_int_or_none(transitions.get("paid_at")) if isinstance(transitions, dict) else None,
        tax_inclusive_rate=inclusive_tax_rate(inv),
    )


def inclusive_tax_rate(inv: dict[str, Any]) -> Fraction | None:
    """The tax an invoice's prices already include, as a rate of their net amount; 0 when they include none.

    A price says whether it includes tax (``tax_behavior``) but not how much: Stripe Tax picks the
    rate from the customer's address. The invoice says both. Stripe's ``subtotal`` is before exclusive
    tax and ``subtotal_excluding_tax`` before any tax, item discounts in both (Stripe API, *The Invoice
    object*), so ``subtotal / subtotal_excluding_tax − 1`` is exactly the included tax's rate: 1,200
    with 20 % included gives 1,200 / 1,000 − 1 = 1/5; an exclusive or untaxed invoice gives 0.
    Dividing the price by ``1 + rate`` then gives the invoice's own ``total_excluding_tax``.
    Older payloads without ``subtotal_excluding_tax`` are read from their inclusive tax amounts
    (``total_taxes`` with ``tax_behavior=inclusive``, or ``total_tax_amounts`` with ``inclusive``).
    None when there is nothing to go by (a zero invoice, no tax fields): the price then stands as is.
    """
    subtotal = _int_or_none(inv.get("subtotal"))
    if subtotal is None or subtotal <= 0:
        return None
    excluding = _int_or_none(inv.get("subtotal_excluding_tax"))
    if excluding is not None:
        return Fraction(subtotal, excluding) - 1 if 0 < excluding <= subtotal else None
    taxes = inv.get("total_taxes")
    if isinstance(taxes, list):
        included = [_int_or_none(t.get("amount")) for t in taxes
                    if isinstance(t, dict) and t.get("tax_behavior") == "inclusive"]
    else:
        amounts = inv.get("total_tax_amounts")
        if not isinstance(amounts, list):
            return None
        included = [_int_or_none(t.get("amount")) for t in amounts if isinstance(t, dict) and t.get("inclusive") is True]
    tax = sum(a for a in included if a is not None and a > 0)
    return Fraction(tax, subtotal - tax) if tax < subtotal else None


def invoice_subscription_id(inv: dict[str, Any]) -> str | None:
    parent = inv.get("parent")
    if isinstance(parent, dict):
        details = parent.get("subscription_details")
        if isinstance(details, dict):
            found = _id(details.get("subscription"))
            if found:
                return found
    found = _id(inv.get("subscription"))
    if found:
        return found
    # Some shapes only name it on the lines.
    lines = inv.get("lines")
    if isinstance(lines, dict) and isinstance(lines.get("data"), list):
        for line in lines["data"]:
            if not isinstance(line, dict):
                continue
            lparent = line.get("parent")
            if isinstance(lparent, dict):
                details = lparent.get("subscription_item_details")
                if isinstance(details, dict) and _id(details.get("subscription")):
                    return _id(details.get("subscription"))
            if _id(line.get("subscription")):
                return _id(line.get("subscription"))
    return None
