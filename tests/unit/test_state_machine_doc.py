"""docs/state-machine.md is checked row by row against the code that derives access."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from membergate.domain.billing import SubscriptionRecord, SubscriptionSnapshot, grant_status, merge_snapshot
from membergate.domain.grants import OneTimeGrant, one_time_status, windows
from membergate.domain.lifecycle import decide
from membergate.domain.model import CheckoutGate, OnGraceEnd, Plan, PlanGrant, PlanKind, PriceLine

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"
T0, DAY = 1_800_000_000, 86_400
PLAN = Plan("pln_m", "Monthly", ("price_m",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0)


def table(name: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"<!-- table:{name} -->", 1)[1].split("<!-- /table -->", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in body.strip().splitlines()]
    return [r for r in rows[2:] if r and r[0]]  # header and separator first


def subscription_record(fact: str) -> tuple[SubscriptionRecord, int]:
    """The record a row describes, and when it is looked at."""
    status = re.match(r"`([a-z_]+)`", fact).group(1)
    cancel = "cancel at period end" in fact
    snap = SubscriptionSnapshot("sub_1", "cus_1", status, T0, "evt_1", cancel_at_period_end=cancel,
                                current_period_end=T0 + 30 * DAY, lines=(PriceLine("price_m", "eur", 900, 1, "month", 1),))
    record = merge_snapshot(SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_m"), snap)
    at = T0 + DAY
    if "period over" in fact or "grace over" in fact:
        at = T0 + 31 * DAY
    if "fully refunded" in fact:
        record = replace(record, last_paid_at=T0, refunded_payment_at=T0)
    if "disputed" in fact or "dispute" in fact:
        outcome = "won" if "won" in fact else "lost" if "lost" in fact else "open"
        record = replace(record, dispute=outcome, dispute_policy="keep" if "(keep)" in fact else "revoke")
    if "followed by a renewal" in fact:
        record = replace(record, last_paid_at=T0 + 30 * DAY, refunded_payment_at=T0)
        at = T0 + 30 * DAY + 60
    return record, at


@pytest.mark.parametrize("row", table("subscription"), ids=lambda r: r[0])
def test_subscription_row_matches_grant_status(row):
    fact, access, reason = row[0], row[1], row[2]
    record, at = subscription_record(fact)
    status = grant_status(record, PLAN, at)
    assert (status.state.value, status.reason) == (access, reason)


ONE_TIME_FACTS = {
    "paid, within its days": ({}, DAY),
    "paid, days over": ({}, 31 * DAY),
    "SEPA payment settling": ({"gate": CheckoutGate.AWAITING}, DAY),
    "SEPA payment failed": ({"gate": CheckoutGate.FAILED}, DAY),
    "paid": ({}, 400 * DAY),
    "partial refund": ({}, DAY),  # a partial refund records nothing (tests/unit/test_refunds_disputes.py)
    "full refund": ({"ended_reason": "refunded"}, DAY),
    "dispute open (revoke)": ({"dispute": "open"}, DAY),
    "dispute lost (revoke)": ({"dispute": "lost"}, DAY),
    "dispute won (revoke)": ({"dispute": "won"}, DAY),
    "dispute open (keep)": ({"dispute": "open", "dispute_policy": "keep"}, DAY),
    "customer deleted": ({"ended_reason": "customer_deleted"}, DAY),
}


@pytest.mark.parametrize("row", table("one_time"), ids=lambda r: f"{r[0]}: {r[1]}")
def test_one_time_row_matches_one_time_status(row):
    kind, fact, access, reason = row[0], row[1], row[2], row[3]
    fields, after = ONE_TIME_FACTS[fact]
    plan_kind = PlanKind(kind)
    grant = OneTimeGrant("cs_1", "mbr_1", "pln_x", plan_kind, T0, 30 * DAY if plan_kind is PlanKind.PASS else None,
                         **fields)
    status = one_time_status(grant, windows([grant]).get("cs_1"), T0 + after)
    assert (status.state.value, status.reason) == (access, reason)


def test_every_handled_event_type_is_named_in_the_document():
    from membergate.domain.stripe_events import HANDLED_EVENT_TYPES

    text = DOC.read_text(encoding="utf-8")
    assert {t for t in HANDLED_EVENT_TYPES if f"`{t}`" not in text} == set()


@pytest.mark.parametrize(("fact", "key"), [
    ("`active`, latest payment fully refunded", f"membergate-refund-sub_1-{T0}"),
    ("`active`, dispute lost (revoke)", "membergate-dispute-lost-sub_1"),
    ("`active`, a payment disputed (`charge.dispute.created`, revoke)", None),
    ("`active`, a payment disputed (keep)", None),
    ("`active`, dispute won", None),
])
def test_rows_saying_subscription_cancelled_are_the_ones_the_sweep_cancels(fact, key):
    # Given the row's record (its text says "subscription cancelled" exactly when a key is expected)
    (row,) = [r for r in table("subscription") if r[0].startswith(fact)]
    record, at = subscription_record(row[0])
    # When the lifecycle decides
    decision = decide([record], {PLAN.id: PLAN}, at)
    # Then the subscription is cancelled at Stripe under that key, or not at all
    assert [c.idempotency_key for c in decision.cancellations] == ([key] if key else [])
    assert ("subscription cancelled" in row[3]) == (key is not None)
