"""Admin API Lambda: the creator's bearer-protected API over communities, plans, members, KPIs."""

from membergate import bootstrap
from membergate.http.admin_api import build_admin_app
from membergate.observability import logger, metrics
from membergate.services.kpis import write_daily_snapshots


def _base_url(app) -> str:
    configured = bootstrap.admin().settings.public_base_url
    return configured or f"https://{app.current_event.request_context.domain_name}"


app = build_admin_app(
    stores_factory=lambda: bootstrap.admin().stores,
    queue_factory=lambda: bootstrap.admin().queue,
    admin_token=lambda: bootstrap.admin().admin_token(),
    now=lambda: bootstrap.clock().now(),
    public_base_url=_base_url,
    time_zone=lambda: bootstrap.admin().settings.time_zone,
    connectors=lambda: bootstrap.admin().connectors(),
    preflight_on_register=lambda: bootstrap.admin().settings.community_preflight,
    reconcile_store=bootstrap.reconcile_store,
    start_reconcile=bootstrap.start_reconcile,
    tasks_factory=bootstrap.whatsapp_store,
    price_reader=lambda: billing.describe_prices if (billing := bootstrap.admin().billing) is not None else None,
    removal_undo_days=lambda: bootstrap.admin().settings.removal_undo_days,
    health_probe=lambda: bootstrap.admin().health_probe,
    health_targets=lambda: bootstrap.admin().health_targets,
    billing_factory=lambda: bootstrap.admin().stripe,
)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event, context):
    if "requestContext" not in event:  # the KpiSnapshots schedule (template.yaml), not an HTTP request
        run = write_daily_snapshots(bootstrap.admin().stores, bootstrap.clock().now())
        logger.info("kpi snapshots written", extra={"days": run.days_written, "through": str(run.through)})
        return {"days_written": run.days_written, "through": str(run.through)}
    return app.resolve(event, context)
