"""The ``/_control`` routes: what Stripe, the bank or the Dashboard would do, on demand (local stack only).

They take no key: the local stack never listens beyond 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .api import json_response
from .engine import DEFAULT_CURRENCY, DEFAULT_UNIT_AMOUNT, BillingEngine
from .errors import SandboxError, missing

RULES = [
    Rule("/_control/events", methods=["GET"], endpoint="control.events"),
    Rule("/_control/prices", methods=["POST"], endpoint="control.register_price"),
    Rule("/_control/promotion_codes", methods=["POST"], endpoint="control.promotion_code"),
    Rule("/_control/subscriptions/<object_id>", methods=["GET"], endpoint="control.subscription"),
    Rule("/_control/subscriptions/<object_id>/<action>", methods=["POST"], endpoint="control.subscription_action"),
    Rule("/_control/checkout/sessions/<object_id>/<action>", methods=["POST"], endpoint="control.session_action"),
    Rule("/_control/customers/<object_id>/<action>", methods=["POST"], endpoint="control.customer_action"),
    Rule("/_control/disputes/<object_id>/<action>", methods=["POST"], endpoint="control.dispute_action"),
]


class Controls:
    """Billing events on demand: renew, fail a renewal, ask for 3-D Secure, cancel, settle a SEPA debit,
    refund or dispute a payment, close a dispute, change how a customer's card behaves."""

    def __init__(self, engine: BillingEngine):
        self.engine = engine

    def handle(self, request: Request, endpoint: str, args: dict[str, str]) -> Response:
        try:
            body = _control_body(request)
            if endpoint == "events":
                return json_response(200, {"object": "list", "data": self.engine.events()})
            if endpoint == "subscription":
                return json_response(200, self.engine.subscription(args["object_id"]))
            if endpoint == "register_price":
                if not body.get("price_id"):
                    raise missing("price_id")
                return json_response(200, self._register_price(body))
            if endpoint == "promotion_code":
                # {"code", "percent_off"} or {"code", "amount_off", "currency"}: a coupon (once) and its code.
                percent = body.get("percent_off")
                return json_response(200, self.engine.create_promotion_code(
                    str(body.get("code") or ""), float(percent) if percent not in (None, "") else None,
                    _optional_int(body, "amount_off"), str(body["currency"]) if body.get("currency") else None))
            object_id, action = args["object_id"], args["action"]
            if endpoint == "subscription_action":
                actions: dict[str, Callable[[], dict]] = {
                    "renew": lambda: self.engine.renew(object_id),
                    "fail_renewal": lambda: self.engine.fail_renewal(object_id),
                    "action_required": lambda: self.engine.action_required(object_id),
                    "cancel": lambda: self.engine.cancel(object_id, _truthy(body.get("at_period_end"))),
                }
            elif endpoint == "customer_action":
                actions = {
                    "refund_last_payment": lambda: self.engine.refund_last_payment(
                        object_id, _optional_int(body, "amount")
                    ),
                    "dispute_last_payment": lambda: self.engine.dispute_last_payment(object_id),
                    "payment_method": lambda: self.engine.set_payment_method(
                        object_id, str(body.get("behaviour") or "")
                    ),
                }
            elif endpoint == "dispute_action":
                actions = {"close": lambda: self.engine.close_dispute(object_id, str(body.get("outcome") or ""))}
            else:
                actions = {
                    "pay": lambda: self.engine.pay(
                        object_id, str(body.get("outcome") or ""), _optional_int(body, "amount"),
                        str(body["card_number"]) if body.get("card_number") is not None else None,
                        str(body["card_expiry"]) if body.get("card_expiry") is not None else None,
                        str(body["promotion_code"]) if body.get("promotion_code") is not None else None,
                    ),
                    "settle_sepa": lambda: self.engine.settle_sepa(object_id, _truthy(body.get("succeed", True))),
                }
            if action not in actions:
                raise SandboxError(404, f"Unknown control action: {action}")
            return json_response(200, actions[action]())
        except SandboxError as error:
            return json_response(error.status, error.body())
        except (TypeError, ValueError) as exc:
            error = SandboxError(400, f"Invalid control request: {exc}")
            return json_response(error.status, error.body())


    def _register_price(self, body: dict[str, Any]) -> dict:
        """``{"price_id", "unit_amount", "currency", "interval", "interval_count", "product_name",
        "trial_period_days", "tax_behavior"}``; ``"type": "one_time"`` (or ``"interval": null``) for a one-time price,
        ``"custom_unit_amount": {"minimum", "maximum", "preset"}`` for pay what you want (one-time)."""
        if not body.get("price_id"):
            raise missing("price_id")
        custom = body.get("custom_unit_amount")
        if custom is not None and not isinstance(custom, dict):
            raise SandboxError(400, "custom_unit_amount must be an object.", param="custom_unit_amount")
        one_time = body.get("type") == "one_time" or ("interval" in body and body["interval"] is None)
        if body.get("type") not in (None, "one_time", "recurring"):
            raise SandboxError(400, "type must be one_time or recurring.", param="type")
        return self.engine.register_price(
            str(body["price_id"]),
            None if custom else int(body.get("unit_amount", DEFAULT_UNIT_AMOUNT)),
            str(body.get("currency") or DEFAULT_CURRENCY),
            None if one_time or custom else str(body.get("interval") or "month"),
            int(body.get("interval_count") or 1),
            product_name=body.get("product_name"),
            trial_period_days=int(body["trial_period_days"]) if body.get("trial_period_days") else None,
            custom_unit_amount=(
                {key: _optional_int(custom, key) for key in ("minimum", "maximum", "preset")} if custom else None
            ),
            tax_behavior=_tax_behavior(body),
        )


def _tax_behavior(body: dict[str, Any]) -> str:
    behavior = body.get("tax_behavior") or "unspecified"
    if behavior not in ("inclusive", "exclusive", "unspecified"):
        raise SandboxError(400, "tax_behavior must be inclusive, exclusive or unspecified.", param="tax_behavior")
    return str(behavior)


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SandboxError(400, f"{name} must be a whole number.", param=name)
    return int(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


def _control_body(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = dict(request.args)
    if request.method == "POST":
        if request.is_json:
            try:
                data = request.get_json(silent=True)
            except RecursionError:
                # json gives up on deep nesting with a RecursionError, not a decode error: a 400 like any bad body.
                raise SandboxError(400, "The control body is nested too deeply.") from None
            if data is not None and not isinstance(data, dict):
                raise SandboxError(400, "The control body must be a JSON object.")
            body.update(data or {})
        else:
            body.update(request.form)
    return body

