"""Lifecycle sweep Lambda (scheduled): reminders, grace expiry, cancellations, for due members only."""

from dataclasses import asdict

from membergate import bootstrap
from membergate.observability import count, logger, metrics
from membergate.services.alerts import send_digest
from membergate.services.lifecycle import run_lifecycle


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    deps = bootstrap.lifecycle()
    report = run_lifecycle(stores=deps.stores, billing=deps.billing, access_queue=deps.queue, now=bootstrap.clock().now(),
                           alerts=bootstrap.alert_recorder(), time_zone=deps.settings.time_zone)
    logger.info("lifecycle sweep done", extra=asdict(report))
    # Only non-zero counts: a metric emitted every five minutes is billed all month.
    if report.reminders:
        count("RemindersQueued", report.reminders)
    if report.cancellations:
        count("SubscriptionsCancelledAtGraceEnd", report.cancellations)
    _creator_alerts(deps.stores)
    return asdict(report)


def _creator_alerts(stores) -> None:
    """The creator's alert digest: at most one an hour, nothing when nothing happened."""
    alerts = bootstrap.alert_digest()
    if not alerts.channels:
        return
    settings = alerts.settings
    digest = send_digest(alerts.store, alerts.channels, bootstrap.clock().now(), enabled=settings.alert_kinds,
                         locale=settings.alert_locale, dashboard_url=alerts.dashboard_url, surveys=stores.surveys)
    if digest.action != "skip":
        logger.info("creator alert digest", extra=asdict(digest))
    if digest.failed:
        logger.warning("creator alert digest not delivered everywhere", extra={"failed": digest.failed})
