"""Telegram Lambda: the bot's webhook (/start binds a member, join requests), the t.me link and the pay link."""

from membergate import bootstrap
from membergate.http.telegram_api import TelegramEdge, build_telegram_app
from membergate.observability import logger, metrics
from membergate.services.billing_events import new_member_id


def _base_url(app) -> str:
    configured = bootstrap.telegram().settings.public_base_url
    return configured or f"https://{app.current_event.request_context.domain_name}"


app = build_telegram_app(
    TelegramEdge(deps=bootstrap.telegram, now=lambda: bootstrap.clock().now(), base_url=_base_url,
                 new_member_id=new_member_id)
)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
