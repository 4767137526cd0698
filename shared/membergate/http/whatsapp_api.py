"""WhatsApp routes: Meta's webhook (handshake, signed messages), the wa.me join step and the pay link."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from ..domain.errors import MembergateError, NotFoundError, RetryableError, PermanentError, SignatureError
from ..domain.whatsapp import parse_webhook, verify_signature, verify_subscription
from ..observability import count, logger
from ..services.whatsapp import handle_inbound, open_pay_link, start_join
from .edge import is_id, raw_body
from .errors import error_payload
from .member_api import html, redirect, set_session_cookie
from .pages import message_page, pay_page
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
            batch = parse_webhook(json.loads(raw))
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

    @app.get("/whatsapp/start")
    def start() -> Response:
        plan_id = (app.current_event.query_string_parameters or {}).get("plan_id")
        if not is_id(plan_id):
            return html(404, message_page("Plan not found", "This join link is not valid; ask the creator for the current one."))
        deps = edge.deps()
        if not deps.settings.whatsapp_business_number:
            return html(404, message_page("WhatsApp is not set up", "This community does not take WhatsApp sign-ups yet; ask the creator."))
        try:
            started = start_join(deps.stores, plan_id, deps.settings.whatsapp_business_number, edge.now())
        except NotFoundError:
            return html(404, message_page("Plan not found", "This join link is not valid; ask the creator for the current one."))
        return redirect(started.link, 302)

    @app.get("/whatsapp/pay/<token>")
    def pay(token: str) -> Response:
        if not is_id(token):
            return html(400, message_page("This link doesn't work", "this link is not valid; send the join code again from WhatsApp"))
        deps = edge.deps()
        try:
            session, plan_id = open_pay_link(deps.stores, token, edge.now())
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page("This link doesn't work", error.message), headers)
        plan = deps.stores.catalog.get_plan(plan_id)
        if plan is None:
            return html(404, message_page("Plan not found", "This plan no longer exists; ask the creator for the current join link."))
        cookie = set_session_cookie(session.id, edge.base_url(app).startswith("https://"))
        return html(200, pay_page(plan_id=plan.id, plan_name=plan.name), cookies=[cookie])

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
