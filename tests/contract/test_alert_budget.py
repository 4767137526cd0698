"""Creator alerts stay inside the billing processor's budget of 6 DynamoDB calls per event."""

from __future__ import annotations

import pytest

from infra import bench_processor_calls
from tests.support import aws

pytestmark = pytest.mark.contract


def test_processor_with_alerts_on_every_billing_event_within_six_dynamodb_calls(monkeypatch):
    # Given a deployment with an alert channel set (alerts are recorded where they happen)
    plain = aws.aws_stack
    monkeypatch.setattr(bench_processor_calls, "aws_stack",
                        lambda **env: plain(ALERT_EMAIL="creator@example.com", **env))
    # When the bench's member story is applied by the real processor under moto
    rows = {r.label: r for r in bench_processor_calls.measure_processor_calls()}
    # Then the events that are alerts cost one PutItem more, and every event stays within 6 calls
    assert all(r.calls <= bench_processor_calls.BUDGET_DYNAMODB_CALLS_PER_EVENT for r in rows.values()), \
        [(r.label, r.calls) for r in rows.values()]
    assert rows["checkout.session.completed"].operations.count("PutItem") == 3
    assert rows["invoice.payment_failed"].operations == ["GetItem", "GetItem", "GetItem", "PutItem", "UpdateItem"]
    assert rows["customer.subscription.deleted"].operations.count("PutItem") == 3
    # And a renewal is no alert: no write more than without alerts
    assert rows["customer.subscription.updated (renewal)"].operations == [
        "GetItem", "Query", "PutItem", "PutItem", "UpdateItem"]
