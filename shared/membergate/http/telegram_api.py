"""Telegram over HTTP: the webhook (secret header first), the t.me deep link and the bot's one-time pay link."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from ..domain.errors import MalformedEventError, MembergateError, UnauthorizedError
from ..domain.model import Platform
from ..domain.telegram import SECRET_HEADER, parse_update, secret_matches
from ..domain.i18n import text
from ..services.telegram import TelegramUpdates, begin_telegram_link, begin_telegram_relink, continue_from_telegram
from .edge import FORM, JSON, MEMBER_BODY_LIMIT, body_text, guard_body, is_id, load_json, raw_body
from .errors import error_payload
from .member_api import _locale, html, redirect, session_cookie_value, set_session_cookie
from .pages import localized_page, message_page
from .resolver import json_response, make_resolver

WEBHOOK_PATH = "/webhooks/telegram"
RELINK_PATH = "/telegram/relink/"
# Telegram's updates are small (a message, a join request); a megabyte is far above any of them.
TELEGRAM_BODY_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class TelegramEdge:
    deps: Callable[[], Any]  # bootstrap.telegram()
    now: Callable[[], int]
    base_url: Callable[[APIGatewayHttpResolver], str]
    new_member_id: Callable[[], str]


def build_telegram_app(edge: TelegramEdge) -> APIGatewayHttpResolver:
    def require_secret(event: Mapping[str, Any]) -> None:
        # Before anything is read or stored: a request without Telegram's secret header is refused.
        if str(event.get("rawPath") or event.get("path") or "") != WEBHOOK_PATH:
            return
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        if not secret_matches(headers.get(SECRET_HEADER.lower()), edge.deps().webhook_secret()):
            raise UnauthorizedError(f"send the {SECRET_HEADER} header set with setWebhook (TELEGRAM_WEBHOOK_SECRET)")

    def bounded_body(event: Mapping[str, Any]) -> None:
        path = str(event.get("rawPath") or event.get("path") or "")
        if path.startswith(RELINK_PATH):  # the manage page's form
            guard_body(event, MEMBER_BODY_LIMIT, (FORM,))
            return
        guard_body(event, TELEGRAM_BODY_LIMIT, (JSON,))

    app = make_resolver(gates=[require_secret, bounded_body])

    @app.post(WEBHOOK_PATH)
    def webhook() -> Response:
        deps = edge.deps()
        text = body_text(raw_body(app.current_event.raw_event, TELEGRAM_BODY_LIMIT))
        try:
            update = parse_update(load_json(text) if text else None)
        except RecursionError:
            raise MalformedEventError("the body nests too deeply to be a Telegram update") from None
        updates = TelegramUpdates(deps.stores, deps.api, deps.queue, edge.base_url(app), edge.new_member_id,
                                  connectors=deps.connectors())
        outcome = updates.handle(update, edge.now())
        return json_response(200, {"ok": True, "outcome": outcome.kind})

    @app.get("/telegram/start/<plan_id>")
    def start(plan_id: str) -> Response:
        deps = edge.deps()
        now = edge.now()
        plan = deps.stores.catalog.get_plan(plan_id) if is_id(plan_id) else None
        places = [deps.stores.catalog.get_community(g.community_id) for g in plan.grants] if plan else []
        if plan is None or not any(c is not None and c.platform is Platform.TELEGRAM for c in places):
            return html(404, message_page("Plan not found", "This link is not valid for a Telegram group; ask the creator for the current join link."))
        session_id = session_cookie_value(app)
        session = deps.stores.sessions.get_session(session_id, now) if session_id else None
        try:
            link = begin_telegram_link(deps.stores, deps.api, session_member_id=session.member_id if session else None,
                                       plan_id=plan.id, now=now)
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page("Telegram is not reachable", error.message), headers)
        return redirect(link, 302)

    @app.post(RELINK_PATH + "<plan_id>")
    def relink(plan_id: str) -> Response:
        """The manage page's "use another Telegram account": a form post with the page's proof, answered
        with the bot's t.me link; /start there moves the membership to the account that sends it."""
        deps = edge.deps()
        now = edge.now()
        locale = _locale(app)
        plan = deps.stores.catalog.get_plan(plan_id) if is_id(plan_id) else None
        if plan is None:
            return html(404, localized_page(locale, "err.plan_not_found.title", "err.plan_not_found"))
        fields = {k: v[0] for k, v in parse_qs(app.current_event.decoded_body or "").items() if v}
        session_id = session_cookie_value(app)
        session = deps.stores.sessions.get_session(session_id, now) if session_id else None
        try:
            link = begin_telegram_relink(deps.stores, deps.api, session=session, proof=fields.get("proof"),
                                         plan_id=plan.id, now=now)
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(locale, "err.relink.title"), error.message, locale=locale), headers)
        return redirect(link)

    @app.get("/telegram/continue/<token>")
    def resume(token: str) -> Response:
        deps = edge.deps()
        base = edge.base_url(app)
        if not is_id(token):
            return html(400, message_page("This link doesn't work", "This link is not valid; send /start to the bot again for a new one."))
        try:
            session, plan_id = continue_from_telegram(deps.stores, token, session_cookie_value(app), edge.now())
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page("This link doesn't work", error.message), headers)
        return redirect(f"{base}/join/{plan_id}", cookies=[set_session_cookie(session.id, base.startswith("https://"))])

    return app
