"""WhatsApp Lambda: Meta's webhook (handshake and signed messages), the wa.me join step and the pay link."""

from membergate import bootstrap
from membergate.http.whatsapp_api import WhatsAppEdge, build_whatsapp_app
from membergate.observability import logger, metrics
from membergate.services.billing_events import new_member_id


def _base_url(app) -> str:
    configured = bootstrap.whatsapp().settings.public_base_url
    return configured or f"https://{app.current_event.request_context.domain_name}"


app = build_whatsapp_app(
    WhatsAppEdge(deps=bootstrap.whatsapp, now=lambda: bootstrap.clock().now(), base_url=_base_url,
                 new_member_id=new_member_id)
)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
