"""Join Lambda: the join page and the Discord OAuth2 binding that comes before payment."""

from membergate import bootstrap
from membergate.http.member_api import Edge, build_join_app
from membergate.observability import logger, metrics
from membergate.services.billing_events import new_member_id


def _base_url(app) -> str:
    configured = bootstrap.join().settings.public_base_url
    return configured or f"https://{app.current_event.request_context.domain_name}"


app = build_join_app(Edge(deps=bootstrap.join, now=lambda: bootstrap.clock().now(), base_url=_base_url), new_member_id)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
