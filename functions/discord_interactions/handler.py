"""Discord interactions Lambda: verify the Ed25519 signature, answer PING, queue a resync for /access."""

import json

from membergate import bootstrap
from membergate.adapters.discord import verify_interaction
from membergate.domain.errors import InvalidRequestError, MembergateError, UnauthorizedError
from membergate.domain.links import Links
from membergate.http.edge import MEMBER_BODY_LIMIT, raw_body
from membergate.http.errors import error_payload
from membergate.observability import logger, metrics
from membergate.services.interactions import handle_interaction


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event, context):
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    deps = bootstrap.interactions()
    try:
        raw = raw_body(event, MEMBER_BODY_LIMIT)
        signature = str(headers.get("x-signature-ed25519") or "")
        timestamp = str(headers.get("x-signature-timestamp") or "")
        key = deps.settings.discord_public_key
        # Checked before the body is read: an unsigned request learns nothing and changes nothing.
        if not (key and signature and timestamp and verify_interaction(key, signature, timestamp, raw)):
            raise UnauthorizedError("invalid request signature: Discord signs every interaction with your application's key")
        manage_url = Links(deps.settings.public_base_url).join(None)
        answer = handle_interaction(deps.stores, deps.queue, raw, manage_url)
    except RecursionError:
        return _error(InvalidRequestError("the interaction nests too deeply to be one Discord sends"))
    except MembergateError as error:
        return _error(error)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(answer.body)}


def _error(error: MembergateError) -> dict:
    logger.warning("discord interaction refused", extra={"reason": error.message})
    status, headers, payload = error_payload(error)
    return {"statusCode": status, "headers": headers, "body": payload}
