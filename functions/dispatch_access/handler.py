"""Access dispatch Lambda: converges members' community access and sends their messages."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from membergate import bootstrap
from membergate.domain.model import AccessState
from membergate.observability import count, logger, metrics
from membergate.services.access_worker import access_work_first, handle_access_message, send_held_messages

OUTCOME_METRICS = {AccessState.GRANTED: "AccessGranted", AccessState.REVOKED: "AccessRevoked"}

batch = BatchProcessor(event_type=EventType.SQS)


def handle_record(record, catalog=None, held_messages=None) -> None:
    deps = bootstrap.dispatcher()
    # The webhook's (or admin request's) id travels as a message attribute: log under it (one line per item).
    logger.set_correlation_id((record.message_attributes.get("correlation_id") or {}).get("stringValue"))
    result = handle_access_message(
        record.body,
        dispatcher=deps.dispatcher,
        queue=deps.queue,
        max_attempts=deps.settings.max_attempts,
        now=bootstrap.clock().now(),
        catalog=catalog,
        held_messages=held_messages,
    )
    if result is not None:
        logger.info("access work done", extra={"state": getattr(result.state, "value", "message"), "actions": len(result.actions)})
    # Counted only when something was done on the platform (a converge can be a no-op).
    if result is not None and result.actions and result.state in OUTCOME_METRICS:
        count(OUTCOME_METRICS[result.state])


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    deps = bootstrap.dispatcher()
    # Plans and communities are read once per batch, not once per member.
    catalog = deps.dispatcher.load_catalog()
    # Access first: roles and kicks of the whole batch, then messages (queued ones and the
    # welcomes held back meanwhile), so no member's role waits behind another member's DMs.
    records = access_work_first(event.get("Records") or [], lambda record: record.get("body") or "")
    held: list = []
    response = process_partial_response(
        event={**event, "Records": records},
        record_handler=lambda record: handle_record(record, catalog, held),
        processor=batch,
        context=context,
    )
    send_held_messages(
        held,
        dispatcher=deps.dispatcher,
        queue=deps.queue,
        max_attempts=deps.settings.max_attempts,
        now=bootstrap.clock().now(),
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        catalog=catalog,
    )
    return response
