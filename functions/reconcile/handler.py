"""Reconcile Lambda (weekly schedule, or started by POST /admin/reconcile): drift report, allowed fixes."""

from membergate import bootstrap
from membergate.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    # Stop with time to store the cursor: the next run continues where this one stopped.
    report = bootstrap.reconcile().reconciler.run(
        bootstrap.clock().now(), time_left=lambda: context.get_remaining_time_in_millis() / 1000 - 25
    )
    summary = report.to_dict()
    logger.info("reconcile run", extra={"complete": summary["complete"], "counts": summary["counts"],
                                        "pages_read": summary["pages_read"], "auto_fixed": summary["auto_fixed"]})
    return {"complete": summary["complete"], "counts": summary["counts"], "pages_read": summary["pages_read"]}
