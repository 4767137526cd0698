"""Stripe webhook intake Lambda: verify the raw body, record it, hand it to the processor, answer fast.

Import-light on purpose (no Stripe SDK, no settings library, no X-Ray SDK): see make bench.
"""

import base64
import json
import time

from membergate import bootstrap
from membergate.domain.errors import MalformedEventError, SignatureError
from membergate.http.errors import error_payload
from membergate.observability import count, logger, metrics
from membergate.services.intake import accept_stripe_webhook

OUTCOME_METRICS = {"duplicate": "StripeEventDuplicate", "ignored_type": "StripeEventIgnored",
                   "ignored_livemode": "StripeEventWrongMode"}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event, context):
    deps = bootstrap.intake()
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
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
        logger.warning("stripe webhook rejected", extra={"reason": error.message})
        count("StripeWebhookRejected")
        status, response_headers, payload = error_payload(error)
        return {"statusCode": status, "headers": response_headers, "body": payload}
    logger.info("stripe webhook accepted", extra={"event_id": result.event_id, "type": result.event_type, "outcome": result.outcome})
    count(OUTCOME_METRICS.get(result.outcome, "StripeEventQueued"))
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"received": True, "event_id": result.event_id, "outcome": result.outcome}),
    }
