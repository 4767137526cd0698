"""Lifecycle sweep Lambda (scheduled): reminders, grace expiry, cancellations, for due members only."""

from dataclasses import asdict

from membergate import bootstrap
from membergate.observability import count, logger, metrics
from membergate.services.lifecycle import run_lifecycle


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    deps = bootstrap.lifecycle()
    report = run_lifecycle(stores=deps.stores, billing=deps.billing, access_queue=deps.queue, now=bootstrap.clock().now())
    logger.info("lifecycle sweep done", extra=asdict(report))
    # Only non-zero counts: a metric emitted every five minutes is billed all month.
    if report.reminders:
        count("RemindersQueued", report.reminders)
    if report.cancellations:
        count("SubscriptionsCancelledAtGraceEnd", report.cancellations)
    return asdict(report)
