"""The hosted pages: Checkout's pay page, the hosted invoice page (3-D Secure) and the customer portal."""

from __future__ import annotations

import html
from datetime import datetime, timezone

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .engine import BillingEngine
from .errors import SandboxError
from .objects import PortalSession, Session
from .shapes import format_amount

RULES = [
    Rule("/pay/<object_id>", methods=["GET", "POST"], endpoint="page.checkout"),
    Rule("/invoice/<object_id>", methods=["GET", "POST"], endpoint="page.invoice"),
    Rule("/portal/<object_id>", methods=["GET", "POST"], endpoint="page.portal"),
]


class Pages:
    """What a member sees in a browser; each POST acts through the engine as the member would."""

    def __init__(self, engine: BillingEngine):
        self.engine = engine

    def handle(self, request: Request, endpoint: str, args: dict[str, str]) -> Response:
        response: Response = getattr(self, endpoint)(request, **args)
        return response

    def checkout(self, request: Request, object_id: str) -> Response:
        error: SandboxError | None = None
        if request.method == "POST":
            try:
                with self.engine.lock:
                    asked = self.engine.sessions.get(object_id)
                    consent = (asked.options.get("consent_collection") or {}) if asked else {}
                if consent.get("terms_of_service") == "required" and request.form.get("terms_of_service") != "accepted":
                    # Stripe's page will not submit without the box ticked.
                    raise SandboxError(400, "Please agree to the terms of service to continue.")
                self.engine.pay(object_id, request.form.get("outcome", ""), _amount(request.form.get("amount")),
                                request.form.get("card_number"), request.form.get("card_expiry"),
                                request.form.get("promotion_code"))
            except SandboxError as exc:
                error = exc
            else:
                with self.engine.lock:
                    session = self.engine.sessions[object_id]
                    target = session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id)
                return Response(status=303, headers={"Location": target})
        with self.engine.lock:
            session = self.engine.sessions.get(object_id)
            if session is None:
                return page("Checkout not found", "<p>No such Checkout Session.</p>", 404)
            self.engine.expire_if_due(session, self.engine.now())
            body = self._checkout_html(session, error)
        self.engine.flush()
        status = 200 if error is None or error.status == 402 else error.status
        return page("Checkout (local Stripe sandbox)", body, status)

    def _checkout_html(self, session: Session, error: SandboxError | None) -> str:
        rows = []
        for li in session.line_items:
            price = self.engine.prices[li.price_id]
            product = self.engine.products.get(price.product_id)
            every = "once"
            if price.interval is not None:
                every = f"per {price.interval}"
                if price.interval_count > 1:
                    every = f"every {price.interval_count} {price.interval}s"
            cost = f"{format_amount(self.engine.line_item_amount(li), price.currency)} {every}"
            if price.custom_unit_amount is not None:
                cost = f"you choose: {_bounds(price.custom_unit_amount, price.currency)}"
            rows.append(
                f"<tr><td>{html.escape(product.name if product else price.id)}</td>"
                f"<td><code>{html.escape(price.id)}</code></td><td>× {li.quantity}</td>"
                f"<td>{cost}</td></tr>"
            )
        parts = [
            "<p class=note>Test mode: this is Membergate's local Stripe sandbox. No money moves.</p>",
            f"<table>{''.join(rows)}</table>",
            f"<p>Due today: <strong>{format_amount(self.engine.session_amount(session), session.currency)}"
            "</strong></p>",
        ]
        trial = self.engine.session_trial_days(session)
        if trial:
            parts.append(f"<p>Free trial: {trial} days.</p>")
        if error is not None:
            parts.append(f"<p class=error>{html.escape(error.message)}</p>")
        if session.status == "open":
            action = html.escape(f"{self.engine.public_base_url}/pay/{session.id}")
            custom = next(
                (self.engine.prices[li.price_id] for li in session.line_items
                 if self.engine.prices[li.price_id].custom_unit_amount is not None),
                None,
            )
            amount_field = ""
            if custom is not None:
                # The amount is typed in minor units, as the API takes it.
                amount_field = (
                    f"<p><label>Amount in minor units ({html.escape(custom.currency.upper())}): "
                    f"<input name=amount inputmode=numeric value='{self.engine.session_amount(session)}'></label></p>"
                )
            options = session.options
            if session.allow_promotion_codes:
                amount_field += "<p><label>Add promotion code <input name=promotion_code autocomplete=off></label></p>"
            if (options.get("phone_number_collection") or {}).get("enabled"):
                amount_field += "<p><label>Phone number <input name=phone type=tel autocomplete=tel></label></p>"
            if (options.get("automatic_tax") or {}).get("enabled"):
                amount_field += "<p class=note>Tax is computed from your billing address (Stripe Tax).</p>"
            if (options.get("consent_collection") or {}).get("terms_of_service") == "required":
                amount_field += ("<p><label><input type=checkbox name=terms_of_service value=accepted required> "
                                 "I agree to the Terms of Service</label></p>")
            submit_text = ((options.get("custom_text") or {}).get("submit") or {}).get("message")
            if submit_text:
                amount_field += f"<p class=note id=submit-text>{html.escape(submit_text)}</p>"
            parts.append(
                f"<form method=post action='{action}'>{amount_field}"
                "<p><label>Card number <input name=card_number inputmode=numeric autocomplete=cc-number "
                "placeholder='4242 4242 4242 4242'></label> <label>Expiry <input name=card_expiry "
                "autocomplete=cc-exp placeholder='12/34'></label></p>"
                "<button name=outcome value=card>Pay by card (succeeds)</button> "
                "<button name=outcome value=sepa>Pay by SEPA Direct Debit (settles later)</button> "
                "<button name=outcome value=decline>Pay with a card that is declined</button>"
                "</form>"
            )
            if session.cancel_url:
                parts.append(f"<p><a href='{html.escape(session.cancel_url)}'>Cancel and go back</a></p>")
        elif session.status == "complete":
            target = session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id)
            parts.append(f"<p>This checkout is complete. <a href='{html.escape(target)}'>Continue</a></p>")
        else:
            parts.append("<p>This checkout session has expired. Start again from the join page.</p>")
        return "\n".join(parts)

    def invoice(self, request: Request, object_id: str) -> Response:
        error: SandboxError | None = None
        if request.method == "POST":
            # The member authenticates on the hosted invoice page: the open invoice gets paid.
            try:
                with self.engine.lock:
                    invoice = self.engine.get_invoice(object_id)
                    sub = self.engine.get_subscription(invoice.subscription_id)
                    if invoice.status != "open" or sub.latest_invoice != invoice.id or sub.status != "past_due":
                        raise SandboxError(400, "This invoice cannot be paid here.")
                self.engine.renew(sub.id)
            except SandboxError as exc:
                error = exc
            else:
                return Response(status=303, headers={"Location": f"{self.engine.public_base_url}/invoice/{object_id}"})
        with self.engine.lock:
            invoice = self.engine.invoices.get(object_id)
            if invoice is None:
                return page("Invoice not found", "<p>No such invoice.</p>", 404)
            parts = [
                "<p class=note>Test mode: Membergate's local Stripe sandbox.</p>",
                f"<p>Invoice {html.escape(invoice.number or invoice.id)}: "
                f"<strong>{format_amount(invoice.total, invoice.currency)}</strong>, "
                f"{html.escape(invoice.status)}.</p>",
            ]
            if error is not None:
                parts.append(f"<p class=error>{html.escape(error.message)}</p>")
            if invoice.status == "open":
                action = html.escape(f"{self.engine.public_base_url}/invoice/{invoice.id}")
                parts.append(f"<form method=post action='{action}'><button>Authenticate and pay</button></form>")
        return page("Invoice (local Stripe sandbox)", "\n".join(parts), 200 if error is None else error.status)

    def portal(self, request: Request, object_id: str) -> Response:
        error: SandboxError | None = None
        if request.method == "POST":
            try:
                subscription_id, action = request.form.get("subscription", ""), request.form.get("action", "")
                self.engine.portal_action(object_id, subscription_id, action)
            except SandboxError as exc:
                error = exc
            else:
                return Response(status=303, headers={"Location": f"{self.engine.public_base_url}/portal/{object_id}"})
        with self.engine.lock:
            portal = self.engine.portal_sessions.get(object_id)
            if portal is None:
                return page("Billing portal not found", "<p>No such portal session.</p>", 404)
            body = self._portal_html(portal, error)
        return page("Your billing (local Stripe sandbox)", body, 200 if error is None else error.status)

    def _portal_html(self, portal: PortalSession, error: SandboxError | None) -> str:
        parts = [
            "<p class=note>Test mode: Membergate's local Stripe sandbox standing in for Stripe's customer portal.</p>"
        ]
        if error is not None:
            parts.append(f"<p class=error>{html.escape(error.message)}</p>")
        subs = sorted(
            (s for s in self.engine.subscriptions.values() if s.customer_id == portal.customer_id),
            key=lambda s: s.created,
            reverse=True,
        )
        if not subs:
            parts.append("<p>No subscriptions.</p>")
        action = html.escape(f"{self.engine.public_base_url}/portal/{portal.id}")
        for sub in subs:
            names, amount = [], 0
            for item in sub.items:
                price = self.engine.prices[item.price_id]
                product = self.engine.products.get(price.product_id)
                names.append(product.name if product else price.id)
                amount += (price.unit_amount or 0) * item.quantity
            every = sub.interval if sub.interval_count == 1 else f"{sub.interval_count} {sub.interval}s"
            parts.append(
                f"<h2>{html.escape(', '.join(names))}</h2>"
                f"<p>{format_amount(amount, sub.currency)} per {every} · <code>{html.escape(sub.id)}</code> · "
                f"status <strong>{html.escape(sub.status)}</strong></p>"
            )
            if sub.ended:
                continue
            if sub.cancel_at_period_end and sub.cancel_at:
                parts.append(f"<p>Cancels on {_day(sub.cancel_at)}.</p>")
            else:
                parts.append(f"<p>Current period ends on {_day(sub.period_end)}.</p>")
            buttons = []
            invoice = self.engine.open_invoice(sub) if sub.status == "past_due" else None
            if invoice is not None:
                parts.append(
                    f"<p class=error>The payment of {format_amount(invoice.total, invoice.currency)} failed "
                    f"(invoice {html.escape(invoice.number or invoice.id)}).</p>"
                )
                buttons.append("<button name=action value=pay>Update card and pay now</button>")
            if not sub.cancel_at_period_end:
                buttons.append("<button name=action value=cancel_at_period_end>Cancel at period end</button>")
            buttons.append("<button name=action value=cancel_now>Cancel now</button>")
            parts.append(
                f"<form method=post action='{action}'>"
                f"<input type=hidden name=subscription value='{html.escape(sub.id)}'>{' '.join(buttons)}</form>"
            )
        if portal.return_url:
            parts.append(f"<p><a href='{html.escape(portal.return_url)}'>Return to the site</a></p>")
        return "\n".join(parts)


def _bounds(bounds: dict[str, int | None], currency: str) -> str:
    low, high = bounds.get("minimum"), bounds.get("maximum")
    said = [f"at least {format_amount(low, currency)}" if low is not None else "",
            f"at most {format_amount(high, currency)}" if high is not None else ""]
    return ", ".join(part for part in said if part) or "any amount"


def _amount(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise SandboxError(400, "Enter the amount as a whole number of minor units (cents).", param="amount") from None


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


def page(title: str, body: str, status: int) -> Response:
    document = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
        "td{padding:.25rem .75rem}.note{color:#555}.error{color:#b00020;font-weight:600}"
        "button{margin:.25rem 0;padding:.5rem 1rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )
    return Response(document, status=status, content_type="text/html; charset=utf-8")

