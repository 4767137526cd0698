"""WhatsApp routes: Meta's webhook (handshake, signed messages), the wa.me join step and the pay link."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from ..domain.errors import MembergateError, PermanentError, RetryableError, SignatureError
from ..domain.model import Platform
from ..domain.whatsapp import parse_webhook, verify_signature, verify_subscription
from ..observability import count, logger
from ..services.whatsapp import handle_inbound, open_pay_link, plan_locale, start_join
from .edge import body_text, is_id, load_json, raw_body
from .member_api import html, redirect, session_cookie_value, set_session_cookie
from .pages import localized_page
from .resolver import error_response, make_resolver

# Meta's webhook payloads are a few KiB; a megabyte leaves room and refuses floods early.
WHATSAPP_WEBHOOK_BODY_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class WhatsAppEdge:
    """What the WhatsApp app needs, resolved lazily by the handler (composition root)."""

    deps: Callable[[], Any]  # bootstrap.whatsapp()
    now: Callable[[], int]
    base_url: Callable[[APIGatewayHttpResolver], str]
    new_member_id: Callable[[], str]


def build_whatsapp_app(edge: WhatsAppEdge) -> APIGatewayHttpResolver:
    app = make_resolver()

    @app.get("/webhooks/whatsapp")
    def handshake() -> Response:
        params = app.current_event.query_string_parameters or {}
        challenge = verify_subscription(params, edge.deps().verify_token())
        return Response(200, "text/plain; charset=utf-8", challenge)

    @app.post("/webhooks/whatsapp")
    def webhook() -> Response:
        event = app.current_event
        raw = raw_body(event.raw_event, WHATSAPP_WEBHOOK_BODY_LIMIT)
        deps = edge.deps()
        try:
            verify_signature(raw, event.headers.get("x-hub-signature-256"), deps.app_secret())
        except SignatureError as error:
            count("WhatsAppWebhookRejected")
            # Checked before the body is parsed or anything stored: 401, as Meta's docs expect.
            return error_response(401, "invalid_signature", error.message, "X-Hub-Signature-256")
        try:
            batch = parse_webhook(load_json(body_text(raw)))
        except MembergateError as error:  # not UTF-8, not JSON, nested too deep
            return error_response(400, "malformed_event", error.message, "body")
        except (ValueError, RecursionError) as error:
            return error_response(400, "malformed_event", f"the body is not a WhatsApp webhook: {str(error)[:120]}", "body")
        now = edge.now()
        base = edge.base_url(app)
        outcomes = []
        for message in batch.messages:
            try:
                outcome = handle_inbound(deps.stores, message, base_url=base, now=now, new_member_id=edge.new_member_id)
            except MembergateError as error:  # an odd phone: skip this message, keep the batch
                logger.warning("whatsapp message skipped", extra={"reason": error.message})
                continue
            outcomes.append(outcome.outcome)
            if outcome.outcome != "duplicate":
                # The message opened (or renewed) this phone's 24-hour window for free-form text.
                deps.window.record_inbound(outcome.phone, now)
            if outcome.reply:
                _reply(deps, outcome.phone, outcome.reply)
        if batch.skipped:
            logger.warning("whatsapp webhook items not understood", extra={"skipped": batch.skipped})
        return Response(200, "application/json", json.dumps({"received": True, "outcomes": outcomes}))

    @app.get("/whatsapp/start/<plan_id>")
    def start(plan_id: str) -> Response:
        deps = edge.deps()
        now = edge.now()
        plan = deps.stores.catalog.get_plan(plan_id) if is_id(plan_id) else None
        places = [deps.stores.catalog.get_community(g.community_id) for g in plan.grants] if plan else []
        locale = plan_locale(deps.stores, plan.id) if plan else "en"
        if plan is None or not any(c is not None and c.platform is Platform.WHATSAPP for c in places):
            return html(404, localized_page(locale, "err.plan_not_found.title", "err.plan_not_found"))
        if not deps.settings.whatsapp_business_number:
            return html(404, localized_page(locale, "err.whatsapp.title", "err.whatsapp.off"))
        session_id = session_cookie_value(app)
        session = deps.stores.sessions.get_session(session_id, now) if session_id else None
        started = start_join(deps.stores, plan.id, deps.settings.whatsapp_business_number, now,
                             session_member_id=session.member_id if session else None)
        return redirect(started.link, 302)

    @app.get("/whatsapp/pay/<token>")
    def pay(token: str) -> Response:
        deps = edge.deps()
        base = edge.base_url(app)
        if not is_id(token):
            return html(400, localized_page("en", "err.link.title", "err.whatsapp.pay_link"))
        try:
            session, plan_id = open_pay_link(deps.stores, token, session_cookie_value(app), edge.now())
        except MembergateError:
            return html(400, localized_page("en", "err.link.title", "err.whatsapp.pay_link"))
        # The join page, now signed in as the phone's member, shows the plan's prices and pay button.
        return redirect(f"{base}/join/{plan_id}", cookies=[set_session_cookie(session.id, base.startswith("https://"))])

    return app


def _reply(deps: Any, phone: str, text: str) -> None:
    """Send the reply as text (the member's message just opened the 24-hour window).

    A failed reply does not fail the webhook: the binding is done, and Meta redelivering the
    message would only find its code used. The member can write again for a fresh answer."""
    try:
        deps.cloud().send_text(phone, text, preview_url=True)
    except (RetryableError, PermanentError) as error:
        count("WhatsAppReplyFailed")
        logger.warning("whatsapp reply not sent", extra={"reason": error.message})
