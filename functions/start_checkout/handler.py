"""Checkout Lambda: POST /checkout (Stripe Checkout Session) and POST /billing/portal (customer portal)."""

from membergate import bootstrap
from membergate.http.member_api import Edge, build_checkout_app
from membergate.observability import logger, metrics


def _base_url(app) -> str:
    configured = bootstrap.checkout().settings.public_base_url
    return configured or f"https://{app.current_event.request_context.domain_name}"


app = build_checkout_app(Edge(deps=bootstrap.checkout, now=lambda: bootstrap.clock().now(), base_url=_base_url))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
