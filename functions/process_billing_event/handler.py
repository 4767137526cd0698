"""Billing events Lambda: applies queued Stripe events, one customer's events in order (FIFO)."""

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response

from membergate import bootstrap
from membergate.domain.errors import MalformedEventError
from membergate.observability import count, logger, metrics

# One failed message holds back only its own customer's group, not the whole batch.
batch = SqsFifoPartialProcessor(skip_group_on_error=True)


def handle_record(record) -> None:
    deps = bootstrap.processor()
    try:
        outcome = deps.processor.apply(record.body, now=bootstrap.clock().now())
    except MalformedEventError as error:
        # Recorded as failed in the ledger; retrying the same bytes cannot help.
        logger.error("stripe event unusable", extra={"reason": error.message, "message_id": record.message_id})
        count("StripeEventFailed")
        return
    logger.info("stripe event applied", extra={"status": outcome.status, "detail": outcome.detail})
    if outcome.alert:
        # A metric alarm on CreatorAlert reaches the creator; the log line says what to do.
        logger.warning("creator alert", extra={"alert": outcome.alert, "member_id": outcome.member_id})
        count("CreatorAlert")
    count({"processed": "StripeEventProcessed", "ignored": "StripeEventIgnored"}.get(outcome.status, "StripeEventDuplicate"))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=handle_record, processor=batch, context=context)
