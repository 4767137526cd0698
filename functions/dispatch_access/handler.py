"""Access dispatch Lambda: converges members' community access and sends their messages."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from membergate import bootstrap
from membergate.services.access_worker import handle_access_message
from membergate.observability import logger, metrics

batch = BatchProcessor(event_type=EventType.SQS)


def handle_record(record) -> None:
    deps = bootstrap.dispatcher()
    handle_access_message(
        record.body,
        dispatcher=deps.dispatcher,
        queue=deps.queue,
        max_attempts=deps.settings.max_attempts,
        now=bootstrap.clock().now(),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=handle_record, processor=batch, context=context)
