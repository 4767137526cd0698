"""Reconcile Lambda (weekly schedule, or started by POST /admin/reconcile): drift report, allowed fixes."""

from membergate import bootstrap
from membergate.domain.errors import ReconcileRunningError
from membergate.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    # POST /admin/reconcile took the lease for this run; the schedule's run takes its own.
    holder = event.get("lease_holder") if isinstance(event, dict) else None
    try:
        # Stop with time to store the cursor: the next run continues where this one stopped.
        report = bootstrap.reconcile().reconciler.run(
            bootstrap.clock().now(), time_left=lambda: context.get_remaining_time_in_millis() / 1000 - 25,
            holder=holder if isinstance(holder, str) and holder else None,
        )
    except ReconcileRunningError as running:
        logger.info("reconcile skipped: another run holds the lease", extra={"started_at": running.started_at})
        return {"skipped": True, "running_since": running.started_at}
    summary = report.to_dict()
    logger.info("reconcile run", extra={"complete": summary["complete"], "counts": summary["counts"],
                                        "pages_read": summary["pages_read"], "auto_fixed": summary["auto_fixed"]})
    return {"complete": summary["complete"], "counts": summary["counts"], "pages_read": summary["pages_read"]}
