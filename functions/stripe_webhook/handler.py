"""Stripe webhook intake Lambda: verify the raw body, record it, hand it to the processor, answer fast.

Import-light on purpose (no Stripe SDK, no settings library, no X-Ray SDK): see make bench.
"""

import json
import time

from membergate import bootstrap
from membergate.domain.errors import MalformedEventError, MembergateError, SignatureError
from membergate.http.edge import STRIPE_WEBHOOK_BODY_LIMIT, raw_body
from membergate.http.errors import error_payload
from membergate.observability import count, logger, metrics
from membergate.services.intake import accept_stripe_webhook

OUTCOME_METRICS = {"duplicate": "StripeEventDuplicate", "ignored_type": "StripeEventIgnored",
                   "ignored_livemode": "StripeEventWrongMode"}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event, context):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        raw = raw_body(event, STRIPE_WEBHOOK_BODY_LIMIT)  # 413 beyond Lambda's own payload limit
    except MembergateError as error:  # too large, or not base64
        return _rejected(error)
    deps = bootstrap.intake()
    try:
        result = accept_stripe_webhook(
            body=raw,
            signature_header=headers.get("stripe-signature"),
            secrets=deps.secrets.get(),
            wall_clock_now=time.time(),  # tolerance is measured on the real clock, always
            received_at=bootstrap.clock().now(),
            livemode=deps.settings.livemode,
            ledger=deps.ledger,
            dispatch=deps.dispatch,
            # The API's request id: the processor and the dispatcher log it for this event too.
            correlation_id=logger.get_correlation_id(),
        )
    except (SignatureError, MalformedEventError) as error:
        return _rejected(error)
    logger.info("stripe webhook accepted", extra={"event_id": result.event_id, "type": result.event_type, "outcome": result.outcome})
    count(OUTCOME_METRICS.get(result.outcome, "StripeEventQueued"))
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"received": True, "event_id": result.event_id, "outcome": result.outcome}),
    }


def _rejected(error: MembergateError) -> dict:
    logger.warning("stripe webhook rejected", extra={"reason": error.message})
    count("StripeWebhookRejected")
    status, response_headers, payload = error_payload(error)
    response_headers["X-Content-Type-Options"] = "nosniff"
    return {"statusCode": status, "headers": response_headers, "body": payload}
