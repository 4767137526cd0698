"""The benchmark's machinery at a tiny scale, so `make bench` cannot rot unnoticed (no timings here)."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest

from infra import bench_calls, bench_cost, bench_imports, bench_prices, bench_processor_calls, bench_sweep
from infra.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parents[2]

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


@pytest.fixture(scope="module")
def measured_month() -> bench_cost.MonthFigures:
    return bench_cost.measure_member_month()


def _billing_off_polled_fifo(template: dict) -> dict:
    """The template once billing events reach the processor by asynchronous invoke (issue 8): no
    FIFO queue polled, no alarm on a FIFO dead-letter queue. A no-op when that is already so."""
    shaped = copy.deepcopy(template)
    resources = shaped["Resources"]
    fifo = {name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"
            and r["Properties"].get("FifoQueue")}
    for resource in resources.values():
        events = resource.get("Properties", {}).get("Events", {})
        for name in [n for n, e in events.items() if e["Type"] == "SQS" and e["Properties"]["Queue"]["Fn::GetAtt"][0] in fifo]:
            del events[name]
    for name in [n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
                 and any(d["Value"].get("Fn::GetAtt", [""])[0] in fifo for d in r["Properties"].get("Dimensions", []))]:
        del resources[name]
    return shaped


def test_bench_cost_model_from_measured_member_month_prices_the_template(measured_month):
    # Given one member's month measured through the real handlers
    month = measured_month
    # When it is priced for 10,000 members (init times given: the import timing is not run here)
    model = bench_prices.build_cost_model(month, {name: 0.1 for name in bench_cost.FUNCTIONS})
    # Then the renewal took the subscribed events through intake and processor
    assert month.renewal.stripe_events == 2 and month.renewal.api_requests == 2
    assert month.renewal.functions["process_billing_event"].invocations == 2
    assert month.renewal.write_units > 0 and month.renewal.read_units > 0
    assert month.idle_sweep.functions["run_lifecycle"].invocations == 1
    # And the fixed part is what template.yaml declares: no KMS key, no custom metric, SSM at $0
    assert month.emf_metrics == set() and month.renewal.kms == 0
    assert model.polled_queues["AccessQueue"] is False
    fixed = {line.what: line.fixed_usd for line in model.lines if line.fixed_usd}
    assert not any("KMS" in what or "metric" in what or "SecureString" in what for what in fixed)
    assert model.fixed_usd > 0  # the fixed part is reported, never silently dropped


FIXED_MS_PER_INVOCATION = 100  # a fixed input: measured durations depend on the machine's load


def _with_fixed_durations(month: bench_cost.MonthFigures, ms: int = FIXED_MS_PER_INVOCATION) -> bench_cost.MonthFigures:
    """The measured month with every invocation billed ``ms``: counts stay measured, time is an input."""
    def fixed(usage: bench_cost.Usage) -> bench_cost.Usage:
        functions = {name: dataclasses.replace(use, billed_ms=use.invocations * ms) for name, use in usage.functions.items()}
        return dataclasses.replace(usage, functions=functions)

    return dataclasses.replace(month, renewal=fixed(month.renewal), failed_payment=fixed(month.failed_payment),
                               idle_sweep=fixed(month.idle_sweep),
                               reconcile_fixed=fixed(month.reconcile_fixed),
                               reconcile_per_member=fixed(month.reconcile_per_member),
                               first_invocation_extra_ms={name: 0.0 for name in month.first_invocation_extra_ms})


def test_bench_cost_model_lambda_duration_is_billed_ms_times_memory_times_price(measured_month):
    # Given the measured month's counts with every invocation billed a fixed 100 ms
    month = _with_fixed_durations(measured_month)
    # When it is priced at 10,000 members
    model = bench_prices.build_cost_model(month, {name: 0.0 for name in bench_cost.FUNCTIONS})
    # Then the duration line is invocations x 100 ms x the template's memory x the GB-s price, by hand
    per_member = {name: (1 - model.failed_payment_share) * month.renewal.functions.get(name, bench_cost.FunctionUse()).invocations
                  + model.failed_payment_share * month.failed_payment.functions.get(name, bench_cost.FunctionUse()).invocations
                  for name in bench_cost.FUNCTIONS}
    gb_s = sum(per_member[name] * model.members * FIXED_MS_PER_INVOCATION / 1000 * model.memory_mb.get(name, 512) / 1024
               for name in bench_cost.FUNCTIONS)
    duration = next(line for line in model.lines if line.service == "Lambda" and line.what.startswith("duration"))
    assert duration.usage_usd > 0
    assert duration.usage_usd == pytest.approx(gb_s * bench_prices.PRICES["lambda_gb_s"].usd)


def test_bench_cost_model_usage_grows_with_members_and_fixed_part_does_not(measured_month):
    # Given the measured counts with fixed durations and the template with billing off the polled FIFO queue
    month = _with_fixed_durations(measured_month)
    shaped = _billing_off_polled_fifo(load_template(ROOT / "template.yaml"))
    # When it is priced at 1,000, 10,000 and 100,000 members
    models = {n: bench_prices.build_cost_model(month, {name: 0.1 for name in bench_cost.FUNCTIONS}, members=n,
                                               template=shaped) for n in bench_prices.MEMBER_SCALES}
    # Then usage grows with members, the fixed part is the template's alone, and one queue is polled
    assert models[1_000].usage_usd < models[10_000].usage_usd < models[100_000].usage_usd
    assert models[1_000].fixed_usd == models[10_000].fixed_usd == models[100_000].fixed_usd
    assert list(models[10_000].polled_queues) == ["AccessQueue"]
    # And the fixed part (no timing in it) is within its budget; the total's budget, which prices
    # measured durations, is checked by `make bench` (PASS/OVER per budget), not by this test
    assert models[10_000].fixed_usd <= bench_prices.FIXED_BUDGET_USD, models[10_000].fixed_usd


def test_bench_prices_each_name_its_aws_pricing_page():
    for key, price in bench_prices.PRICES.items():
        assert price.source.startswith("https://aws.amazon.com/") and price.source.endswith("/pricing/") or \
            price.source.endswith("/pricing/on-demand/"), key
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", bench_prices.PRICES_AS_OF)


def test_bench_first_event_probe_really_takes_an_event_through_a_fresh_intake():
    # When the full cold start is measured once (fresh interpreter, moto server over HTTP)
    figures = bench_imports.measure_first_event(runs=1)
    # Then the timed run imported the handler and queued a really-signed event (no timing asserted here)
    assert figures.statuses == ["200 queued"]
    assert figures.first_event_median_s > 0 and figures.boto3_median_s > 0
    assert figures.budget_ratio == 2.2
    # And its breakdown covers each step, with the botocore data the event really opened: the trimmed
    # models and endpoints, never botocore's 1.2 MB endpoints.json or a whole service model
    assert set(figures.phases_median_s) == {"handler import", "AWS SDK and adapters import", "session and clients",
                                            "secret read (SSM client, GetParameter)", "the event (verify, PutItem, Invoke)"}
    assert "membergate/adapters/botocore_models/endpoints.json" in figures.data_files
    assert not [f for f in figures.data_files if f.startswith("botocore/data/endpoints")], figures.data_files
    assert not [f for f in figures.data_files if f.endswith("service-2.json.gz")], figures.data_files
    assert sorted(f for f in figures.data_files if f.endswith("service-2.json")) == [
        "membergate/adapters/botocore_models/dynamodb/2012-08-10/service-2.json",
        "membergate/adapters/botocore_models/lambda/2015-03-31/service-2.json",
        "membergate/adapters/botocore_models/ssm/2014-11-06/service-2.json",
    ]


def test_intake_handler_import_leaves_the_ports_and_most_of_the_domain_unloaded():
    import json
    import subprocess
    import sys

    # Given a fresh interpreter with Lambda's path, when the intake handler is imported
    code = ("import sys; sys.path[:0] = ['functions/stripe_webhook', 'shared']; import handler; "
            "import json; print(json.dumps(sorted(m for m in sys.modules if m.startswith('membergate'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parents[2]), env={**bench_imports.INTAKE_ENV})
    loaded = json.loads(out.stdout)
    # Then ports.py (which imports most of the domain) and the domain the intake does not use stay unloaded
    assert "membergate.ports" not in loaded
    assert not {"membergate.domain.kpis", "membergate.domain.reconcile", "membergate.domain.whatsapp"} & set(loaded)
    assert "membergate.services.intake" in loaded  # the probe really imported the intake


def test_bench_processor_calls_every_billing_event_within_six_dynamodb_calls():
    # When a member's billing story, and a customer new to Membergate, are applied by the real processor under moto
    rows = bench_processor_calls.measure_processor_calls()
    by_label = {r.label: r for r in rows}
    # Then every event costs at most 6 DynamoDB calls of its own, the cold container's first included,
    # the catalog is read by the cold container only (two Queries), and capacity units are counted
    assert len(rows) == 8 and all(r.calls <= 6 for r in rows), [(r.label, r.calls) for r in rows]
    assert [r.catalog_calls for r in rows] == [2, 0, 0, 0, 0, 0, 0, 0]
    assert by_label["customer.subscription.created (cold container)"].operations == [
        "GetItem", "Query", "TransactWriteItems", "PutItem", "PutItem", "UpdateItem"]
    assert by_label["customer.subscription.created (new customer, no member id)"].operations == [
        "GetItem", "GetItem", "TransactWriteItems", "PutItem", "PutItem", "UpdateItem"]
    assert by_label["customer.subscription.updated (renewal)"].operations == [
        "GetItem", "Query", "PutItem", "PutItem", "UpdateItem"]
    assert all(r.read_units > 0 and r.write_units > 0 for r in rows)


def test_bench_processor_calls_of_the_one_trial_per_card_rule():
    # When a trial whose card is attached before its subscription event, and one whose card comes after,
    # are applied by the real processor under moto after the member's story
    rows = bench_processor_calls.measure_processor_calls(with_trials=True)
    by_label = {r.label: r for r in rows}
    # Then a card attached before or after the trial stays within 6 calls (the card kept in one conditional
    # write, the member's trials looked for, the card's key kept when one is trialing), and a later trialing
    # snapshot costs nothing more than any snapshot (the trial is noted once)
    assert len(rows) == 14
    assert by_label["payment_method.attached (before the subscription)"].operations == [
        "GetItem", "PutItem", "GetItem", "Query", "UpdateItem"]
    assert by_label["payment_method.attached (after the trialing subscription)"].operations == [
        "GetItem", "PutItem", "GetItem", "Query", "PutItem", "UpdateItem"]
    assert by_label["customer.subscription.trial_will_end"].operations == [
        "GetItem", "Query", "PutItem", "PutItem", "UpdateItem"]
    # And the event that starts the trial goes over the budget of 6, pinned here: it reads the kept card
    # and the email, then keeps every key in one transaction (8)
    assert by_label["customer.subscription.created (trialing, card seen before)"].operations == [
        "GetItem", "Query", "PutItem", "PutItem", "GetItem", "GetItem", "TransactWriteItems", "UpdateItem"]
    # And the trial's Checkout completing after the trialing subscription keeps the buyer's email for the
    # trial: one PutItem more than any Checkout naming an email (7)
    assert by_label["checkout.session.completed (trial)"].operations == [
        "GetItem", "Query", "PutItem", "PutItem", "PutItem", "PutItem", "UpdateItem"]
