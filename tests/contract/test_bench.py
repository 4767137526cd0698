"""The benchmark's machinery at a tiny scale, so `make bench` cannot rot unnoticed (no timings here)."""

from __future__ import annotations

import pytest

from infra import bench_calls, bench_cost, bench_prices, bench_processor_calls, bench_sweep

pytestmark = pytest.mark.contract


def test_bench_sweep_more_members_same_due_reads_same_items():
    # Given 30 and then 300 members, 10 of them due each time
    # When one lifecycle sweep runs over each population
    small = bench_sweep.measure_sweep(members=30, due=10)
    large = bench_sweep.measure_sweep(members=300, due=10)
    # Then every due member is swept, with no Scan, and the reads follow the due members only
    assert small.swept == large.swept == 10
    assert small.reminders == 10
    assert small.scans == large.scans == 0
    assert small.items_read > 0 and small.read_calls > 0
    assert small.items_read == large.items_read
    assert bench_sweep.scales_with_due(small, large)


def test_bench_intake_calls_each_event_within_two_aws_calls():
    # When really-signed events of every kind reach the intake handler under moto
    figures = bench_calls.measure_intake_calls()
    # Then each case did what it is named after, within the budget, and the secret is fetched once
    assert bench_calls.outcomes_as_expected(figures) == []
    assert figures.ok
    by_case = {case.case: case for case in figures.cases}
    assert by_case["warm new event"].operations == ["dynamodb.PutItem", "lambda.Invoke"]
    assert by_case["large event (body by reference)"].operations == ["dynamodb.PutItem", "s3.PutObject", "lambda.Invoke"]
    assert by_case["other mode (livemode event, test endpoint)"].operations == ["sqs.SendMessage"]
    assert by_case["bad signature"].calls == 0
    assert figures.cold_start_secret_calls == 1


def test_bench_cost_model_from_measured_member_month_within_usage_budget():
    # Given one member's month measured through the real handlers
    month = bench_cost.measure_member_month()
    # When it is priced for 10,000 members (init times given: the import timing is not run here)
    model = bench_prices.build_cost_model(month, {name: 0.1 for name in bench_cost.FUNCTIONS})
    # Then the renewal took the subscribed events through intake and processor, and the usage fits
    assert month.renewal.stripe_events == 2 and month.renewal.api_requests == 2
    assert month.renewal.functions["process_billing_event"].invocations == 2
    assert month.renewal.write_units > 0 and month.renewal.read_units > 0
    assert month.idle_sweep.functions["run_lifecycle"].invocations == 1
    assert model.ok, f"usage ${model.usage_usd:.2f} over ${bench_prices.USAGE_BUDGET_USD}"
    assert model.fixed_usd > 0  # the fixed part is reported, never silently dropped


def test_bench_processor_calls_warm_billing_events_within_six_dynamodb_calls():
    # When a member's billing story is applied by the real processor under moto
    rows = bench_processor_calls.measure_processor_calls()
    by_label = {r.label: r for r in rows}
    # Then every event of a warm container costs at most 6 DynamoDB calls, the catalog is read
    # by the cold container only, and capacity units are counted
    warm = [r for r in rows if "cold" not in r.label]
    assert warm and all(r.calls <= 6 for r in warm), [(r.label, r.calls) for r in warm]
    assert by_label["customer.subscription.updated (renewal)"].operations == [
        "GetItem", "Query", "PutItem", "PutItem", "UpdateItem"]
    assert all(r.read_units > 0 and r.write_units > 0 for r in rows)
