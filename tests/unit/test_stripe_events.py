"""Reading Stripe events by the fields present, across API versions."""

from __future__ import annotations

import pytest

from membergate.domain.errors import MalformedEventError
from membergate.domain.model import CheckoutGate
from membergate.domain.stripe_events import (
    checkout_completion,
    invoice_fact,
    parse_event,
    subscription_snapshot,
)
from tests.support.specs import stripe_fixture

pytestmark = pytest.mark.unit


def envelope(obj: dict, type_: str, created: int = 1_800_000_000, api_version=None) -> dict:
    return {
        "id": "evt_1",
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


def test_subscription_snapshot_new_shape_reads_period_from_items():
    # Given Stripe's current subscription example (period dates on the items, api_version null)
    sub = stripe_fixture("subscription")
    sub["pause_collection"] = None
    sub["metadata"] = {"membergate_member_id": "mbr_1"}
    event = parse_event(envelope(sub, "customer.subscription.updated"))
    # When it is read
    snapshot = subscription_snapshot(event)
    # Then the period end comes from the item, money in minor units, our member hint kept
    assert snapshot.current_period_end == sub["items"]["data"][0]["current_period_end"]
    assert snapshot.lines[0].unit_amount == 2000
    assert snapshot.lines[0].currency == "usd"
    assert snapshot.lines[0].interval == "month"
    assert snapshot.member_id_hint == "mbr_1"
    assert snapshot.cancel_at_period_end is True


def test_subscription_snapshot_old_shape_reads_top_level_period():
    # Given a 2023-era subscription: period on the subscription, items without dates
    sub = {
        "id": "sub_old",
        "object": "subscription",
        "customer": "cus_old",
        "status": "active",
        "current_period_end": 1_802_592_000,
        "cancel_at_period_end": False,
        "cancel_at": None,
        "pause_collection": None,
        "metadata": {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_1",
                    "object": "subscription_item",
                    "quantity": 2,
                    "price": {"id": "price_y", "currency": "JPY", "unit_amount": 12000, "recurring": {"interval": "year", "interval_count": 1}},
                }
            ],
        },
    }
    snapshot = subscription_snapshot(parse_event(envelope(sub, "customer.subscription.created", api_version="2023-10-16")))
    assert snapshot.current_period_end == 1_802_592_000
    assert snapshot.lines[0].currency == "jpy"
    assert snapshot.lines[0].quantity == 2
    assert snapshot.pause_collection is False


def test_subscription_snapshot_pause_collection_detected():
    sub = stripe_fixture("subscription")  # the fixture has pause_collection set
    assert subscription_snapshot(parse_event(envelope(sub, "customer.subscription.updated"))).pause_collection


def test_invoice_new_shape_subscription_under_parent():
    # Given a current invoice naming its subscription under parent.subscription_details
    inv = stripe_fixture("invoice")
    inv["parent"]["subscription_details"]["subscription"] = "sub_new"
    fact = invoice_fact(parse_event(envelope(inv, "invoice.paid")))
    assert fact.subscription_id == "sub_new"
    assert fact.amount_due == 1000


def test_invoice_old_shape_subscription_top_level():
    inv = {"id": "in_1", "object": "invoice", "customer": "cus_1", "subscription": "sub_old", "currency": "eur",
           "amount_due": 500, "amount_paid": 500, "paid": True, "status": "paid"}
    assert invoice_fact(parse_event(envelope(inv, "invoice.paid"))).subscription_id == "sub_old"


@pytest.mark.parametrize(
    ("type_", "payment_status", "gate"),
    [
        ("checkout.session.completed", "paid", CheckoutGate.PAID),
        ("checkout.session.completed", "no_payment_required", CheckoutGate.PAID),
        ("checkout.session.completed", "unpaid", CheckoutGate.AWAITING),
        ("checkout.session.async_payment_succeeded", "paid", CheckoutGate.PAID),
        ("checkout.session.async_payment_failed", "unpaid", CheckoutGate.FAILED),
    ],
)
def test_checkout_completion_gate(type_, payment_status, gate):
    session = stripe_fixture("checkout.session")
    session.update(mode="subscription", payment_status=payment_status, customer="cus_1",
                   subscription="sub_1", client_reference_id="mbr_1")
    completion = checkout_completion(parse_event(envelope(session, type_)))
    assert completion.gate is gate
    assert completion.member_id == "mbr_1"
    assert completion.subscription_id == "sub_1"


@pytest.mark.parametrize(
    "raw",
    [[], {"type": "x"}, {"id": "evt", "type": "x", "created": "soon", "data": {"object": {}}},
     {"id": "evt", "type": "x", "created": 1, "data": {}}, {"id": "evt", "type": "x", "created": True, "data": {"object": {}}}],
)
def test_parse_event_malformed_rejected(raw):
    with pytest.raises(MalformedEventError):
        parse_event(raw)
