"""Billing events Lambda: applies one Stripe event handed over by the intake (asynchronous invoke).

Lambda retries a failed invoke twice with backoff, then sends it to the dead-letter queue
(EventInvokeConfig in template.yaml). Order is not promised and not needed: processing converges.
"""

from membergate import bootstrap
from membergate.domain.errors import ConcurrentUpdateError, MalformedEventError
from membergate.observability import count, logger, metrics

# Two events of one member applied at the same moment: the loser of the optimistic lock reads
# again and re-applies at once, rather than waiting for Lambda's retry a minute later.
CONCURRENT_UPDATE_ATTEMPTS = 4


def apply_with_retries(processor, body: str, now_fn):
    for attempt in range(1, CONCURRENT_UPDATE_ATTEMPTS + 1):
        try:
            return processor.apply(body, now=now_fn())
        except ConcurrentUpdateError as error:
            if attempt == CONCURRENT_UPDATE_ATTEMPTS:
                raise
            logger.info("stripe event raced another one; applying again", extra={"reason": error.message, "attempt": attempt})


@logger.inject_lambda_context(correlation_id_path="correlation_id")
@metrics.log_metrics
def lambda_handler(event, context):
    deps = bootstrap.processor()
    event_id = event.get("event_id")
    try:
        body = deps.bodies.read(event)
        outcome = apply_with_retries(deps.processor, body, bootstrap.clock().now)
    except MalformedEventError as error:
        # Recorded as failed in the ledger; retrying the same bytes cannot help.
        logger.error("stripe event unusable", extra={"reason": error.message, "event_id": event_id})
        count("StripeEventFailed")
        return {"event_id": event_id, "status": "failed"}
    logger.info("stripe event applied", extra={"event_id": event_id, "status": outcome.status, "detail": outcome.detail})
    if outcome.alert:
        # A metric alarm on CreatorAlert reaches the creator; the log line says what to do.
        logger.warning("creator alert", extra={"alert": outcome.alert, "member_id": outcome.member_id})
        count("CreatorAlert")
    count({"processed": "StripeEventProcessed", "ignored": "StripeEventIgnored"}.get(outcome.status, "StripeEventDuplicate"))
    return {"event_id": event_id, "status": outcome.status}
