"""The subset of Stripe's REST API Membergate calls through the real stripe SDK (form-encoded, idempotent)."""

from __future__ import annotations

import copy
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .engine import BillingEngine
from .errors import SandboxError, lookup, missing, no_such
from .items import PRORATION_BEHAVIORS, ItemChange
from .objects import (
    LineItem,
    PortalConfiguration,
    PortalSession,
    Price,
    RequestInfo,
    Schedule,
    SchedulePhase,
    Session,
    WebhookEndpoint,
    shift,
    default_portal_features,
    has_ended,
)
from .shapes import new_id

# Checkout: expires_at must fall 30 minutes to 24 hours after creation (api/checkout/sessions/create).
MIN_SESSION_SECONDS = 30 * 60
MAX_SESSION_SECONDS = 24 * 60 * 60

RULES = [
    Rule("/v1/customers", methods=["POST"], endpoint="api.create_customer"),
    Rule("/v1/customers/<object_id>", methods=["GET"], endpoint="api.get_customer"),
    Rule("/v1/customers/<object_id>", methods=["DELETE"], endpoint="api.delete_customer"),
    Rule("/v1/prices", methods=["POST"], endpoint="api.create_price"),
    Rule("/v1/prices/<object_id>", methods=["GET"], endpoint="api.get_price"),
    Rule("/v1/checkout/sessions", methods=["POST"], endpoint="api.create_checkout_session"),
    Rule("/v1/checkout/sessions/<object_id>", methods=["GET"], endpoint="api.get_checkout_session"),
    Rule("/v1/checkout/sessions/<object_id>/expire", methods=["POST"], endpoint="api.expire_checkout_session"),
    Rule("/v1/subscriptions/<object_id>", methods=["GET"], endpoint="api.get_subscription"),
    Rule("/v1/subscriptions/<object_id>", methods=["POST"], endpoint="api.update_subscription"),
    Rule("/v1/subscriptions/<object_id>", methods=["DELETE"], endpoint="api.cancel_subscription"),
    Rule("/v1/invoices/<object_id>", methods=["GET"], endpoint="api.get_invoice"),
    Rule("/v1/subscription_schedules", methods=["POST"], endpoint="api.create_schedule"),
    Rule("/v1/subscription_schedules/<object_id>", methods=["GET"], endpoint="api.get_schedule"),
    Rule("/v1/subscription_schedules/<object_id>", methods=["POST"], endpoint="api.update_schedule"),
    Rule("/v1/subscription_schedules/<object_id>/release", methods=["POST"], endpoint="api.release_schedule"),
    Rule("/v1/subscription_schedules/<object_id>/cancel", methods=["POST"], endpoint="api.cancel_schedule"),
    Rule("/v1/billing_portal/sessions", methods=["POST"], endpoint="api.create_portal_session"),
    Rule("/v1/charges/<object_id>", methods=["GET"], endpoint="api.get_charge"),
    Rule("/v1/payment_intents/<object_id>", methods=["GET"], endpoint="api.get_payment_intent"),
    Rule("/v1/disputes/<object_id>", methods=["GET"], endpoint="api.get_dispute"),
    Rule("/v1/invoice_payments", methods=["GET"], endpoint="api.list_invoice_payments"),
    Rule("/v1/subscriptions", methods=["GET"], endpoint="api.list_subscriptions"),
    Rule("/v1/events", methods=["GET"], endpoint="api.list_events"),
    # What `membergate init` sets up and `membergate doctor` checks.
    Rule("/v1/products", methods=["POST"], endpoint="api.create_product"),
    Rule("/v1/products", methods=["GET"], endpoint="api.list_products"),
    Rule("/v1/products/<object_id>", methods=["GET"], endpoint="api.get_product"),
    Rule("/v1/prices", methods=["GET"], endpoint="api.list_prices"),
    Rule("/v1/webhook_endpoints", methods=["POST"], endpoint="api.create_webhook_endpoint"),
    Rule("/v1/webhook_endpoints", methods=["GET"], endpoint="api.list_webhook_endpoints"),
    Rule("/v1/webhook_endpoints/<object_id>", methods=["GET"], endpoint="api.get_webhook_endpoint"),
    Rule("/v1/webhook_endpoints/<object_id>", methods=["POST"], endpoint="api.update_webhook_endpoint"),
    Rule("/v1/webhook_endpoints/<object_id>", methods=["DELETE"], endpoint="api.delete_webhook_endpoint"),
    Rule("/v1/billing_portal/configurations", methods=["POST"], endpoint="api.create_portal_configuration"),
    Rule("/v1/billing_portal/configurations", methods=["GET"], endpoint="api.list_portal_configurations"),
    Rule("/v1/billing_portal/configurations/<object_id>", methods=["GET"], endpoint="api.get_portal_configuration"),
]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, indent=2),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


@dataclass(frozen=True)
class _Stored:
    fingerprint: str
    status: int
    body: bytes


# --- form parsing (what stripe-python sends: a[b][0][c]=v, expand[]=x) ----------------------------

MAX_PARAM_DEPTH = 8
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise SandboxError(400, f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        if len(parts) > MAX_PARAM_DEPTH:
            # Stripe's params nest a few levels at most; deeper is refused, not recursed into.
            raise SandboxError(400, f"Invalid parameter name: {key[:80]} nests more than {MAX_PARAM_DEPTH} levels",
                               param=key[:80])
        node = root
        for depth, part in enumerate(parts):
            if part == "":
                part = str(len(node))
            if depth == len(parts) - 1:
                if isinstance(node.get(part), dict):
                    raise SandboxError(400, f"Invalid value for {key}: expected a hash", param=key)
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise SandboxError(400, f"Invalid hash for {key}", param=key)
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _check_params(params: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    for key in params:
        if key not in allowed:
            name = f"{prefix}[{key}]" if prefix else key
            raise SandboxError(
                400,
                f"Received unknown parameter: {name} (the local Stripe sandbox implements what Membergate uses)",
                code="parameter_unknown",
                param=name,
            )


def _enum(params: Mapping[str, Any], name: str, allowed: Any, param: str) -> str | None:
    value = _str(params, name)
    if value is not None and value not in allowed:
        raise SandboxError(400, f"Invalid {param}: must be one of {', '.join(sorted(allowed))}", param=param)
    return value


def _enabled(params: Mapping[str, Any], name: str) -> bool | None:
    """A ``{enabled: bool}`` hash (automatic_tax, phone_number_collection): None when not given."""
    if params.get(name) in (None, ""):
        return None
    options = _hash(params, name)
    _check_params(options, frozenset({"enabled"}), name)
    try:
        enabled = _bool(options, "enabled")
    except SandboxError:
        raise SandboxError(400, f"Invalid boolean: {options.get('enabled')}", param=f"{name}[enabled]") from None
    if enabled is None:
        raise missing(f"{name}[enabled]")
    return enabled


def _checkout_options(params: Mapping[str, Any], customer_id: str | None) -> dict[str, Any]:
    """Checkout's presentation and consent options, checked as Stripe checks them; what the session echoes."""
    echoed: dict[str, Any] = {}
    locale = _enum(params, "locale", CHECKOUT_LOCALES, "locale")
    if locale is not None:
        echoed["locale"] = locale
    collection = _enum(params, "billing_address_collection", ("auto", "required"), "billing_address_collection")
    if collection is not None:
        echoed["billing_address_collection"] = collection
    update = _hash(params, "customer_update")
    _check_params(update, frozenset({"address", "name", "shipping"}), "customer_update")
    for key in update:
        _enum(update, key, ("auto", "never"), f"customer_update[{key}]")
    if update and customer_id is None:
        raise SandboxError(400, "customer_update can only be used with customer.", param="customer_update")
    tax = _enabled(params, "automatic_tax")
    if tax is not None:
        if tax and customer_id is not None and update.get("address") not in ("auto", "never"):
            # Sandbox customers have no address: Stripe refuses the same way without customer_update.
            raise SandboxError(
                400,
                "Automatic tax calculation in Checkout requires a valid address on the Customer. Add a valid "
                "address to the Customer or set either `customer_update[address]` to 'auto' or 'never'.",
                param="automatic_tax[enabled]",
            )
        echoed["automatic_tax"] = {"enabled": tax, "liability": {"type": "self"} if tax else None,
                                   "status": "requires_location_inputs" if tax else None, "provider": None}
    phone = _enabled(params, "phone_number_collection")
    if phone is not None:
        echoed["phone_number_collection"] = {"enabled": phone}
    consent = _hash(params, "consent_collection")
    _check_params(consent, frozenset({"promotions", "terms_of_service"}), "consent_collection")
    if consent:
        echoed["consent_collection"] = {
            "payment_method_reuse_agreement": None,
            "promotions": _enum(consent, "promotions", ("auto", "none"), "consent_collection[promotions]"),
            "terms_of_service": _enum(consent, "terms_of_service", ("none", "required"),
                                      "consent_collection[terms_of_service]"),
        }
    custom = _hash(params, "custom_text")
    _check_params(custom, CUSTOM_TEXT_POSITIONS, "custom_text")
    texts: dict[str, Any] = {}
    for position, value in custom.items():
        where = f"custom_text[{position}]"
        if value == "":
            texts[position] = None
            continue
        if not isinstance(value, dict):
            raise SandboxError(400, f"Invalid object: {where} must be a hash or an empty string", param=where)
        _check_params(value, frozenset({"message"}), where)
        message = _str(value, "message", required=True)
        assert message is not None
        if len(message) > CUSTOM_TEXT_LIMIT:
            raise SandboxError(400, f"{where}[message] must be at most {CUSTOM_TEXT_LIMIT} characters.",
                               param=f"{where}[message]")
        texts[position] = {"message": message}
    if texts:
        echoed["custom_text"] = texts
    return echoed


def _str(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str):
        raise SandboxError(400, f"Invalid string: {name} must be a string", param=name)
    return value


def _int(params: Mapping[str, Any], name: str, *, required: bool = False, param: str | None = None) -> int | None:
    value = params.get(name)
    label = param or name
    if value is None or value == "":
        if required:
            raise missing(label)
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SandboxError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=label) from None


def _bool(params: Mapping[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise SandboxError(400, f"Invalid boolean: {value}", param=name)


def _hash(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise SandboxError(400, f"Invalid object: {name} must be a hash", param=name)
    return value


def _created_filter(params: Mapping[str, Any]) -> Any:
    """``created[gte]=…`` and friends (or ``created=…`` exactly), as a predicate on a timestamp."""
    raw = params.get("created")
    if raw is None or raw == "":
        return lambda at: True
    if not isinstance(raw, dict):
        exact = _int(params, "created", param="created")
        return lambda at: at == exact
    _check_params(raw, CREATED_PARAMS, "created")
    bounds = {op: _int(raw, op, param=f"created[{op}]") for op in CREATED_PARAMS}
    checks = {"gt": lambda at, b: at > b, "gte": lambda at, b: at >= b, "lt": lambda at, b: at < b,
              "lte": lambda at, b: at <= b}
    return lambda at: all(checks[op](at, b) for op, b in bounds.items() if b is not None)


def _page(params: Mapping[str, Any], found: list[dict], url: str) -> dict:
    """A list page: ``limit`` 1-100 (default 10) after the object ``starting_after`` names."""
    limit = _int(params, "limit") or 10
    if not 1 <= limit <= 100:
        raise SandboxError(400, "Invalid integer: limit must be between 1 and 100", param="limit")
    after = _str(params, "starting_after")
    if after is not None:
        ids = [item["id"] for item in found]
        if after not in ids:
            raise SandboxError(400, f"No such object: '{after}'", code="resource_missing", param="starting_after")
        found = found[ids.index(after) + 1:]
    return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": url}


def _metadata(params: Mapping[str, Any], name: str = "metadata") -> dict[str, str]:
    """Metadata as Stripe checks it: at most 50 keys, keys ≤ 40 chars, values ≤ 500 chars."""
    raw = _hash(params, name)
    if len(raw) > 50:
        raise SandboxError(400, f"Invalid {name}: at most 50 keys are allowed", param=name)
    for key, value in raw.items():
        if not isinstance(value, str):
            raise SandboxError(400, f"Invalid value for {name}[{key}]: must be a string", param=f"{name}[{key}]")
        if len(key) > 40:
            raise SandboxError(400, f"Invalid {name}: keys must be at most 40 characters", param=f"{name}[{key}]")
        if len(value) > 500:
            raise SandboxError(400, f"Invalid {name}: values must be at most 500 characters", param=f"{name}[{key}]")
    return dict(raw)


def _url(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = _str(params, name, required=required)
    if value is not None and urlsplit(value).scheme not in ("http", "https"):
        raise SandboxError(400, f"Not a valid URL: {name}", code="url_invalid", param=name)
    return value


CUSTOMER_PARAMS = frozenset({"metadata", "email", "name", "description", "phone", "preferred_locales", "expand"})
PRICE_PARAMS = frozenset(
    {
        "currency",
        "unit_amount",
        "custom_unit_amount",
        "product",
        "product_data",
        "recurring",
        "nickname",
        "metadata",
        "lookup_key",
        "active",
        "tax_behavior",
        "transfer_lookup_key",
        "expand",
    }
)
# Accepted and ignored: presentation choices with no effect on what Membergate reads back.
SESSION_IGNORED_PARAMS = frozenset(
    {
        "payment_method_types",
        "payment_method_collection",
        "tax_id_collection",
        "expand",
    }
)
# Checked as Stripe's spec (2023-08-16) defines them and echoed on the session, as Stripe does.
SESSION_CHECKOUT_OPTIONS = frozenset(
    {
        "locale",
        "billing_address_collection",
        "customer_update",
        "automatic_tax",
        "consent_collection",
        "custom_text",
        "phone_number_collection",
    }
)
CHECKOUT_LOCALES = frozenset(
    "auto bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hr hu id it ja ko lt lv ms mt nb nl pl pt pt-BR ro "
    "ru sk sl sv th tr vi zh zh-HK zh-TW".split()
)
CUSTOM_TEXT_POSITIONS = frozenset({"shipping_address", "submit"})
CUSTOM_TEXT_LIMIT = 1000
SESSION_PARAMS = SESSION_IGNORED_PARAMS | SESSION_CHECKOUT_OPTIONS | {
    "mode",
    "customer",
    "customer_email",
    "client_reference_id",
    "line_items",
    "success_url",
    "cancel_url",
    "expires_at",
    "metadata",
    "subscription_data",
    "payment_intent_data",
    "customer_creation",
    "invoice_creation",
    "allow_promotion_codes",
    "discounts",
}
MODES = ("subscription", "payment")
PAYMENT_INTENT_DATA_PARAMS = frozenset({"metadata", "description"})
CUSTOM_UNIT_AMOUNT_PARAMS = frozenset({"enabled", "minimum", "maximum", "preset"})
RECURRING_PARAMS = frozenset({"interval", "interval_count", "trial_period_days", "usage_type"})
SUBSCRIPTION_DATA_PARAMS = frozenset({"metadata", "trial_period_days", "description"})
LINE_ITEM_PARAMS = frozenset({"price", "quantity", "price_data", "adjustable_quantity", "tax_rates"})
UPDATE_SUBSCRIPTION_PARAMS = frozenset(
    {
        "cancel_at_period_end",
        "metadata",
        "cancellation_details",
        "proration_behavior",
        "items",
        "payment_behavior",
        "expand",
        "trial_end",
        "pause_collection",
    }
)
CREATE_SCHEDULE_PARAMS = frozenset({"from_subscription", "customer", "phases", "start_date", "end_behavior",
                                    "metadata", "expand"})
UPDATE_SCHEDULE_PARAMS = frozenset({"phases", "end_behavior", "proration_behavior", "metadata", "expand"})
PHASE_PARAMS = frozenset({"items", "start_date", "end_date", "iterations", "proration_behavior", "metadata"})
PHASE_ITEM_PARAMS = frozenset({"price", "quantity", "metadata"})
RELEASE_SCHEDULE_PARAMS = frozenset({"preserve_cancel_date", "expand"})
CANCEL_SCHEDULE_PARAMS = frozenset({"invoice_now", "prorate", "expand"})
END_BEHAVIORS = ("release", "cancel")
PAUSE_COLLECTION_PARAMS = frozenset({"behavior", "resumes_at"})
PAUSE_BEHAVIORS = frozenset({"keep_as_draft", "mark_uncollectible", "void"})
UPDATE_ITEM_PARAMS = frozenset({"id", "price", "quantity", "deleted", "metadata"})
PORTAL_SESSION_PARAMS = frozenset({"customer", "return_url", "configuration", "locale", "expand"})
CANCEL_SUBSCRIPTION_PARAMS = frozenset({"prorate", "invoice_now", "cancellation_details", "expand"})
CANCELLATION_DETAILS_PARAMS = frozenset({"comment", "feedback"})
GET_PARAMS = frozenset({"expand"})
INVOICE_PAYMENTS_PARAMS = frozenset({"invoice", "payment", "limit", "status", "expand"})
LIST_SUBSCRIPTIONS_PARAMS = frozenset({"customer", "status", "created", "limit", "starting_after", "expand"})
LIST_EVENTS_PARAMS = frozenset({"type", "types", "created", "delivery_success", "limit", "starting_after", "expand"})
CREATED_PARAMS = frozenset({"gt", "gte", "lt", "lte"})
# Subscription.status values a list can filter on, besides "all" and "ended" (api/subscriptions/list).
SUBSCRIPTION_STATUSES = frozenset({"active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired",
                                   "trialing", "paused"})


PRODUCT_PARAMS = frozenset({"name", "id", "metadata", "description", "active", "expand"})
LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "expand"})
LIST_PRODUCTS_PARAMS = LIST_PARAMS | {"active", "ids", "created"}
LIST_PRICES_PARAMS = LIST_PARAMS | {"product", "active", "currency", "type", "lookup_keys", "created"}
CREATE_WEBHOOK_ENDPOINT_PARAMS = frozenset(
    {"url", "enabled_events", "api_version", "description", "metadata", "connect", "expand"}
)
UPDATE_WEBHOOK_ENDPOINT_PARAMS = frozenset({"url", "enabled_events", "disabled", "description", "metadata", "expand"})
# Stripe allows 16 webhook endpoints per account and mode.
MAX_WEBHOOK_ENDPOINTS = 16
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
EVENT_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
CREATE_PORTAL_CONFIGURATION_PARAMS = frozenset(
    {"business_profile", "features", "default_return_url", "login_page", "metadata", "expand"}
)
BUSINESS_PROFILE_PARAMS = frozenset({"headline", "privacy_policy_url", "terms_of_service_url"})
PORTAL_FEATURES = {
    "customer_update": frozenset({"enabled", "allowed_updates"}),
    "invoice_history": frozenset({"enabled"}),
    "payment_method_update": frozenset({"enabled"}),
    "subscription_cancel": frozenset({"enabled", "mode", "proration_behavior", "cancellation_reason"}),
    "subscription_pause": frozenset({"enabled"}),
    "subscription_update": frozenset({"enabled", "default_allowed_updates", "products", "proration_behavior"}),
}
PORTAL_PRORATIONS = ("always_invoice", "create_prorations", "none")


# --- the API ---------------------------------------------------------------------------------


class StripeApi:
    """Answers ``/v1/...`` as Stripe does: test keys only, the request's Stripe-Version, replays by idempotency key."""

    def __init__(self, engine: BillingEngine):
        self.engine = engine
        self._idempotent: dict[str, _Stored] = {}

    def handle(self, request: Request, endpoint: str, args: dict[str, str]) -> Response:
        request_id = new_id("req")
        idempotency_key = request.headers.get("Idempotency-Key")
        headers = {"Request-Id": request_id, "Stripe-Version": self.engine.api_version}
        try:
            self._authenticate(request)
            version = self._request_version(request)
            headers["Stripe-Version"] = version
            if request.method == "POST":
                params = parse_form(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
            else:
                params = parse_form(parse_qsl(request.query_string.decode(), keep_blank_values=True))
        except SandboxError as error:
            return json_response(error.status, error.body(), headers)
        # Stripe replays POSTs by idempotency key; GET and DELETE are idempotent by definition and
        # ignore the header (api/idempotent_requests).
        replayable = request.method == "POST" and bool(idempotency_key)
        if replayable:
            headers["Idempotency-Key"] = idempotency_key or ""
            if len(idempotency_key or "") > 255:
                error = SandboxError(
                    400, "Idempotency keys can be at most 255 characters long.", param="Idempotency-Key"
                )
                return json_response(error.status, error.body(), headers)
        fingerprint = json.dumps([request.method, request.path, params], sort_keys=True)
        handler = getattr(self, endpoint)
        info = RequestInfo(id=request_id, idempotency_key=idempotency_key)
        try:
            with self.engine.lock:
                stored = self._idempotent.get(idempotency_key or "") if replayable else None
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        raise SandboxError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try using a key other than '{idempotency_key}' if you meant to "
                            "execute a different request.",
                            type="idempotency_error",
                        )
                    return Response(
                        stored.body,
                        status=stored.status,
                        headers={**headers, "Idempotent-Replayed": "true"},
                        content_type="application/json",
                    )
                try:
                    status, body = 200, handler(params, version, info, **args)
                except SandboxError as error:
                    status, body = error.status, error.body()
                payload = json.dumps(body, indent=2).encode()
                # Only requests that began executing are saved; a 4xx was refused before that.
                if replayable and status < 400:
                    self._idempotent[idempotency_key or ""] = _Stored(fingerprint, status, payload)
        except SandboxError as error:
            return json_response(error.status, error.body(), headers)
        finally:
            self.engine.flush()
        return Response(payload, status=status, headers=headers, content_type="application/json")

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        key: str | None = None
        if header.startswith("Bearer "):
            key = header[len("Bearer ") :].strip()
        elif request.authorization is not None and request.authorization.type == "basic":
            key = request.authorization.username
        if not key:
            raise SandboxError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not key.startswith(("sk_test_", "rk_test_")):
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
            raise SandboxError(
                401,
                f"Invalid API Key provided: {masked}. The local Stripe sandbox accepts test-mode keys "
                "only (sk_test_... or rk_test_...).",
            )

    def _request_version(self, request: Request) -> str:
        version = request.headers.get("Stripe-Version")
        if not version:
            return self.engine.api_version
        if not re.match(r"^\d{4}-\d{2}-\d{2}", version):
            raise SandboxError(400, f"Invalid Stripe API version: {version}", code="api_version_invalid")
        return version

    def create_customer(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, CUSTOMER_PARAMS)
        customer = self.engine.new_customer(
            self.engine.now(),
            info,
            metadata=_metadata(params),
            email=_str(params, "email"),
            name=_str(params, "name"),
            description=_str(params, "description"),
            phone=_str(params, "phone"),
        )
        return self.engine.customer_dict(customer, version)

    def get_customer(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        customer = self.engine.get_customer(object_id)
        if customer.deleted:
            # Stripe answers a deleted customer with its stub, not a 404.
            return {"id": customer.id, "object": "customer", "deleted": True}
        return self.engine.customer_dict(customer, version)

    def delete_customer(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, frozenset())
        return self.engine.delete_customer(self.engine.get_customer(object_id), self.engine.now(), info)

    def create_price(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, PRICE_PARAMS)
        now = self.engine.now()
        currency = _str(params, "currency", required=True)
        assert currency is not None
        unit_amount = _int(params, "unit_amount")
        custom = _hash(params, "custom_unit_amount")
        _check_params(custom, CUSTOM_UNIT_AMOUNT_PARAMS, "custom_unit_amount")
        if custom and _bool(custom, "enabled") is not True:
            raise missing("custom_unit_amount[enabled]")
        bounds = (
            {key: _int(custom, key, param=f"custom_unit_amount[{key}]") for key in ("maximum", "minimum", "preset")}
            if custom
            else None
        )
        recurring = _hash(params, "recurring")
        _check_params(recurring, RECURRING_PARAMS, "recurring")
        interval = _str(recurring, "interval", required=bool(recurring)) if recurring else None
        if interval is not None and interval not in ("day", "week", "month", "year"):
            raise SandboxError(400, f"Invalid recurring[interval]: {interval}", param="recurring[interval]")
        interval_count = _int(recurring, "interval_count", param="recurring[interval_count]") or 1
        if interval_count < 1:
            raise SandboxError(400, "recurring[interval_count] must be at least 1.", param="recurring[interval_count]")
        trial_days = _int(recurring, "trial_period_days", param="recurring[trial_period_days]")
        amount, custom_amount = self.engine.validate_price(unit_amount, interval, interval_count, bounds)
        nickname, metadata = _str(params, "nickname"), _metadata(params)
        tax_behavior = _str(params, "tax_behavior") or "unspecified"
        if tax_behavior not in ("inclusive", "exclusive", "unspecified"):
            raise SandboxError(400, "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified",
                               param="tax_behavior")
        lookup_key = _str(params, "lookup_key")
        if lookup_key is not None and len(lookup_key) > 200:
            raise SandboxError(400, "lookup_key must be at most 200 characters.", param="lookup_key")
        holder = next((p for p in self.engine.prices.values() if lookup_key and p.lookup_key == lookup_key), None)
        if holder is not None and not _bool(params, "transfer_lookup_key"):
            # Stripe keeps lookup keys unique: a second price takes one only with transfer_lookup_key.
            raise SandboxError(
                400,
                f"A price ({holder.id}) already uses that lookup key. Pass transfer_lookup_key=true to move it.",
                param="lookup_key",
            )
        active = _bool(params, "active")
        product_id = _str(params, "product")
        product_data = _hash(params, "product_data")
        if bool(product_id) == bool(product_data):
            raise SandboxError(
                400,
                "You must specify either `product` or `product_data` when creating a price.",
                code="parameters_exclusive" if product_id else "parameter_missing",
                param="product",
            )
        if product_id is not None:
            if product_id not in self.engine.products:
                raise SandboxError(400, f"No such product: '{product_id}'", code="resource_missing", param="product")
            product = self.engine.products[product_id]
        else:
            _check_params(product_data, frozenset({"name", "metadata"}), "product_data")
            name = _str(product_data, "name")
            if name is None:
                raise missing("product_data[name]")
            product_metadata = _metadata(product_data, "metadata")
            # Everything is validated before the first object is made: a refused request leaves nothing.
            product = self.engine.new_product(name, now)
            product.metadata = product_metadata
            self.engine.emit("product.created", self.engine.product_dict(product), now, info)
        price = Price(
            id=new_id("price"),
            product_id=product.id,
            unit_amount=amount,
            currency=currency.lower(),
            interval=interval,
            interval_count=interval_count,
            created=now,
            trial_period_days=trial_days,
            nickname=nickname,
            metadata=metadata,
            custom_unit_amount=custom_amount,
            lookup_key=lookup_key,
            active=active is not False,
            tax_behavior=tax_behavior,
        )
        if holder is not None:
            holder.lookup_key = None
        self.engine.prices[price.id] = price
        self.engine.emit("price.created", self.engine.price_dict(price), now, info)
        return self.engine.price_dict(price, version)

    def get_price(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self.engine.price_dict(self.engine.get_price(object_id), version)

    def create_checkout_session(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, SESSION_PARAMS)
        now = self.engine.now()
        mode = _str(params, "mode", required=True)
        if mode not in MODES:
            raise SandboxError(
                400, f"The local Stripe sandbox supports mode=subscription or mode=payment, not {mode!r}.", param="mode"
            )
        for name, only_in in (("subscription_data", "subscription"), ("payment_intent_data", "payment"),
                              ("customer_creation", "payment"), ("invoice_creation", "payment")):
            if params.get(name) not in (None, "") and mode != only_in:
                raise SandboxError(400, f"You can not pass `{name}` in `{mode}` mode.", param=name)
        customer_creation = _str(params, "customer_creation")
        if customer_creation not in (None, "always", "if_required"):
            raise SandboxError(400, f"Invalid customer_creation: {customer_creation}", param="customer_creation")
        if customer_creation and params.get("customer") not in (None, ""):
            raise SandboxError(
                400,
                "You may only specify one of these parameters: customer, customer_creation.",
                code="parameters_exclusive",
                param="customer_creation",
            )
        payment_intent_data = _hash(params, "payment_intent_data")
        _check_params(payment_intent_data, PAYMENT_INTENT_DATA_PARAMS, "payment_intent_data")
        invoice_creation = _hash(params, "invoice_creation")
        _check_params(invoice_creation, frozenset({"enabled", "invoice_data"}), "invoice_creation")
        if invoice_creation and _bool(invoice_creation, "enabled") is None:
            raise missing("invoice_creation[enabled]")
        customer_id = _str(params, "customer")
        customer_email = _str(params, "customer_email")
        if customer_id and customer_email:
            raise SandboxError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                code="parameters_exclusive",
                param="customer_email",
            )
        if customer_id is not None and not self.engine.customer_exists(customer_id):
            raise SandboxError(400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer")
        if params.get("allow_promotion_codes") not in (None, "") and params.get("discounts") not in (None, ""):
            raise SandboxError(
                400,
                "You may only specify one of these parameters: allow_promotion_codes, discounts.",
                code="parameters_exclusive",
                param="discounts",
            )
        options = _checkout_options(params, customer_id)
        line_items = self._line_items(params, mode)
        prices = [self.engine.prices[li.price_id] for li in line_items]
        if {p.currency for p in prices} != {prices[0].currency}:
            raise SandboxError(400, "All line items must use prices in the same currency.", param="line_items")
        if {(p.interval, p.interval_count) for p in prices} != {(prices[0].interval, prices[0].interval_count)}:
            raise SandboxError(
                400,
                "All prices on a subscription must have the same `recurring.interval` and `recurring.interval_count`.",
                param="line_items",
            )
        success_url = _url(params, "success_url", required=True)
        cancel_url = _url(params, "cancel_url")
        expires_at = _int(params, "expires_at")
        if expires_at is None:
            expires_at = now + MAX_SESSION_SECONDS
        elif expires_at < now + MIN_SESSION_SECONDS:
            raise SandboxError(
                400,
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                param="expires_at",
            )
        elif expires_at > now + MAX_SESSION_SECONDS:
            raise SandboxError(
                400,
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        client_reference_id = _str(params, "client_reference_id")
        if client_reference_id is not None and len(client_reference_id) > 200:
            raise SandboxError(400, "client_reference_id must be at most 200 characters.", param="client_reference_id")
        subscription_data = _hash(params, "subscription_data")
        _check_params(subscription_data, SUBSCRIPTION_DATA_PARAMS, "subscription_data")
        trial_days = _int(subscription_data, "trial_period_days", param="subscription_data[trial_period_days]")
        if trial_days is not None and not 1 <= trial_days <= 730:
            raise SandboxError(
                400,
                "subscription_data[trial_period_days] must be between 1 and 730.",
                param="subscription_data[trial_period_days]",
            )
        session = Session(
            id=new_id("cs_test"),
            created=now,
            expires_at=expires_at,
            customer_id=customer_id,
            customer_email=customer_email,
            client_reference_id=client_reference_id,
            line_items=line_items,
            success_url=success_url or "",
            cancel_url=cancel_url,
            metadata=_metadata(params),
            subscription_metadata=_metadata(subscription_data),
            trial_period_days=trial_days,
            allow_promotion_codes=_bool(params, "allow_promotion_codes"),
            currency=prices[0].currency,
            mode=mode,
            customer_creation=(customer_creation or "if_required") if mode == "payment" else None,
            payment_intent_metadata=_metadata(payment_intent_data),
            invoice_creation=bool(_bool(invoice_creation, "enabled")),
            options=options,
        )
        self.engine.sessions[session.id] = session
        return self.engine.session_dict(session, version)

    def _line_items(self, params: dict, mode: str) -> list[LineItem]:
        raw = params.get("line_items")
        if raw in (None, "", []):
            raise missing("line_items")
        if not isinstance(raw, list):
            raise SandboxError(400, "Invalid array: line_items must be a list", param="line_items")
        items = []
        for index, entry in enumerate(raw):
            where = f"line_items[{index}]"
            if not isinstance(entry, dict):
                raise SandboxError(400, f"Invalid object: {where}", param=where)
            _check_params(entry, LINE_ITEM_PARAMS, where)
            if "price_data" in entry:
                raise SandboxError(
                    400,
                    "The local Stripe sandbox does not support price_data: pass a price id.",
                    param=f"{where}[price_data]",
                )
            price_id = _str(entry, "price")
            if price_id is None:
                raise SandboxError(
                    400,
                    f"You must specify either `price` or `price_data` in `{where}`.",
                    code="parameter_missing",
                    param=f"{where}[price]",
                )
            quantity = _int(entry, "quantity", param=f"{where}[quantity]")
            if quantity is None:
                raise SandboxError(
                    400,
                    f"Quantity is required. Add `quantity` to `{where}`.",
                    code="parameter_missing",
                    param=f"{where}[quantity]",
                )
            if quantity < 1:
                raise SandboxError(400, f"{where}[quantity] must be at least 1.", param=f"{where}[quantity]")
            price = self.engine.prices.get(price_id)
            if price is None:
                # As Stripe: a price must exist (register it with POST /_control/prices or /v1/prices).
                raise SandboxError(
                    400, f"No such price: '{price_id}'", code="resource_missing", param=f"{where}[price]"
                )
            if mode == "subscription" and not price.recurring:
                raise SandboxError(
                    400,
                    "You must specify at least one recurring price in `subscription` mode when using prices "
                    "(the local sandbox takes recurring prices only).",
                    param=f"{where}[price]",
                )
            if mode == "payment" and price.recurring:
                raise SandboxError(
                    400,
                    "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
                    "mode or use only one-time prices.",
                    param=f"{where}[price]",
                )
            if price.custom_unit_amount is not None and quantity != 1:
                raise SandboxError(
                    400, f"{where}[quantity] must be 1 for a price with custom_unit_amount.", param=f"{where}[quantity]"
                )
            items.append(LineItem(price_id=price_id, quantity=quantity))
        return items

    def get_checkout_session(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        session = self.engine.get_session(object_id)
        self.engine.expire_if_due(session, self.engine.now())
        return self.engine.session_dict(session, version)

    def get_charge(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self.engine.charge_dict(lookup(self.engine.charges, "charge", object_id))

    def get_payment_intent(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        # The sandbox keeps payment intents through the charge they made.
        charge = next((c for c in self.engine.charges.values() if c.payment_intent_id == object_id), None)
        if charge is None:
            raise no_such("payment_intent", object_id)
        return self.engine.payment_intent_dict(charge)

    def get_dispute(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self.engine.dispute_dict(lookup(self.engine.disputes, "dispute", object_id))

    def list_invoice_payments(self, params: dict, version: str, info: RequestInfo) -> dict:
        """``?invoice=in_…`` or ``?payment[type]=payment_intent&payment[payment_intent]=pi_…``: how a
        charge is traced back to its invoice (and so its subscription) since API 2025-03-31."""
        _check_params(params, INVOICE_PAYMENTS_PARAMS)
        invoice_id = _str(params, "invoice")
        payment = _hash(params, "payment")
        _check_params(payment, frozenset({"type", "payment_intent"}), "payment")
        intent = _str(payment, "payment_intent")
        found = [
            self.engine.invoice_payment_dict(charge)
            for charge in self.engine.charges.values()
            if charge.invoice_payment_id is not None
            and (invoice_id is None or charge.invoice_id == invoice_id)
            and (intent is None or charge.payment_intent_id == intent)
        ]
        limit = _int(params, "limit") or 10
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": "/v1/invoice_payments"}

    def list_subscriptions(self, params: dict, version: str, info: RequestInfo) -> dict:
        """Newest first, ``starting_after`` pages on; without ``status`` canceled ones are left out, as in Stripe."""
        _check_params(params, LIST_SUBSCRIPTIONS_PARAMS)
        status = _str(params, "status")
        if status is not None and status not in SUBSCRIPTION_STATUSES | {"all", "ended"}:
            raise SandboxError(400, f"Invalid status: must be one of {', '.join(sorted(SUBSCRIPTION_STATUSES))}, all "
                               "or ended", param="status")
        customer = _str(params, "customer")
        created = _created_filter(params)

        def wanted(sub: Any) -> bool:
            rendered = self.engine.subscription_dict(sub, version)["status"]
            if status in (None, ""):
                ok = not has_ended(rendered)
            elif status == "all":
                ok = True
            elif status == "ended":
                ok = has_ended(rendered)
            else:
                ok = rendered == status
            return ok and (customer is None or sub.customer_id == customer) and created(sub.created)

        found = [s for s in self.engine.subscriptions.values() if wanted(s)]
        found.sort(key=lambda s: (s.created, s.id), reverse=True)
        return _page(params, [self.engine.subscription_dict(s, version) for s in found], "/v1/subscriptions")

    def list_events(self, params: dict, version: str, info: RequestInfo) -> dict:
        """Newest first; ``delivery_success=false`` keeps the events the webhook endpoint never acknowledged."""
        _check_params(params, LIST_EVENTS_PARAMS)
        kind = _str(params, "type")
        kinds = params.get("types") or []
        delivered = _bool(params, "delivery_success")
        created = _created_filter(params)
        failed = self.engine.undelivered_event_ids()
        found = [
            e for e in self.engine.events()
            if created(int(e["created"])) and (kind is None or e["type"] == kind) and (not kinds or e["type"] in kinds)
            and (delivered is None or (e["id"] not in failed) == delivered)
        ]
        found.reverse()
        return _page(params, found, "/v1/events")

    def expire_checkout_session(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        session = self.engine.get_session(object_id)
        now = self.engine.now()
        self.engine.expire_if_due(session, now)
        if session.status != "open":
            raise SandboxError(
                400,
                f"Only Checkout Sessions with a status in [\"open\"] can be expired. This one is {session.status}.",
                param="session",
            )
        self.engine.expire_session(session, now, info)
        return self.engine.session_dict(session, version)

    def create_portal_session(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, PORTAL_SESSION_PARAMS)
        customer_id = _str(params, "customer", required=True)
        if not self.engine.customer_exists(customer_id):
            raise SandboxError(400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer")
        configuration = _str(params, "configuration") or self.engine.portal_configuration
        saved = self.engine.portal_configurations.get(configuration)
        if saved is None or not saved.active:
            raise SandboxError(
                400, f"No such configuration: '{configuration}'", code="resource_missing", param="configuration"
            )
        # Stripe expires a portal session the member does not visit soon; the sandbox keeps them.
        portal = PortalSession(
            id=new_id("bps"),
            customer_id=customer_id or "",
            return_url=_url(params, "return_url"),
            created=self.engine.now(),
            configuration=configuration,
            locale=_str(params, "locale"),
        )
        self.engine.portal_sessions[portal.id] = portal
        return self.engine.portal_session_dict(portal, version)

    def get_subscription(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self.engine.subscription_dict(self.engine.get_subscription(object_id), version)

    def get_invoice(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self.engine.invoice_dict(self.engine.get_invoice(object_id), version)

    def update_subscription(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, UPDATE_SUBSCRIPTION_PARAMS)
        sub = self.engine.get_subscription(object_id)
        now = self.engine.now()
        at_period_end = _bool(params, "cancel_at_period_end")
        if at_period_end:
            self.engine.refuse_if_scheduled(sub)
        details = _hash(params, "cancellation_details")
        _check_params(details, CANCELLATION_DETAILS_PARAMS, "cancellation_details")
        metadata = _metadata(params)
        pausing = "pause_collection" in params
        pause = _pause_collection(params) if pausing else None
        if sub.ended and pausing:
            raise SandboxError(400, "A canceled subscription can only update its cancellation_details and metadata.",
                               param="pause_collection")
        if sub.ended and at_period_end is not None:
            raise SandboxError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        comment, feedback = _str(details, "comment"), _str(details, "feedback")
        changes = self._item_changes(params)
        proration_behavior = _str(params, "proration_behavior") or "create_prorations"
        _str(params, "payment_behavior")
        trial_end = _str(params, "trial_end")
        if trial_end is not None:
            # Only "now" (a timestamp would move the trial; Membergate never does): the trial ends and
            # the first period is billed at once, as at a trial's natural end.
            if trial_end != "now":
                raise SandboxError(400, "The sandbox takes trial_end=now only.", param="trial_end")
            if sub.status != "trialing":
                raise SandboxError(400, f"Subscription {sub.id} is not trialing.", param="trial_end")
            self.engine.end_trial_now(sub, now)
            return self.engine.subscription_dict(sub, version)

        def apply_the_rest() -> None:
            if pausing:
                sub.pause_collection = pause
            if at_period_end:
                self.engine.schedule_cancellation(sub, now, comment, feedback)
            else:
                if at_period_end is False:
                    # Undoing a scheduled cancellation (billing/subscriptions/cancel#reactivating).
                    sub.cancel_at_period_end = False
                    sub.cancel_at = sub.canceled_at = sub.cancellation_reason = None
                sub.cancellation_comment = comment or sub.cancellation_comment
                sub.cancellation_feedback = feedback or sub.cancellation_feedback
            for key, value in metadata.items():
                # An empty value unsets the key (api/metadata).
                if value == "":
                    sub.metadata.pop(key, None)
                else:
                    sub.metadata[key] = value

        if changes:
            # Everything else in the request was checked first: a refused change leaves nothing behind.
            # One request, one customer.subscription.updated, whatever it changed.
            self.engine.update_items(sub, changes, proration_behavior, now, info, also=apply_the_rest)
        else:
            with self.engine.subscription_change(sub, now, info):
                apply_the_rest()
        return self.engine.subscription_dict(sub, version)

    # --- subscription schedules (billing/subscriptions/subscription-schedules) -----------------------

    def create_schedule(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, CREATE_SCHEDULE_PARAMS)
        sub_id = _str(params, "from_subscription")
        if sub_id is None:
            raise SandboxError(400, "The sandbox makes schedules from_subscription only (pass from_subscription).",
                               code="parameter_missing", param="from_subscription")
        for other in ("customer", "phases", "start_date", "end_behavior"):
            if other in params:
                raise SandboxError(
                    400, f"You cannot set `{other}` if `from_subscription` is set.", param=other)
        sub = self.engine.get_subscription(sub_id)
        schedule = self.engine.schedule_from_subscription(sub, _metadata(params), self.engine.now(), info)
        return self.engine.schedule_dict(schedule, version)

    def get_schedule(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self.engine.schedule_dict(self.engine.get_schedule(object_id), version)

    def update_schedule(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, UPDATE_SCHEDULE_PARAMS)
        schedule = self.engine.get_schedule(object_id)
        end_behavior = _enum(params, "end_behavior", END_BEHAVIORS, "end_behavior")
        default_proration = _enum(params, "proration_behavior", PRORATION_BEHAVIORS, "proration_behavior")
        metadata = _metadata(params)
        phases = self._phases(params, schedule, default_proration or "create_prorations") if "phases" in params \
            else list(schedule.phases)
        self.engine.set_phases(schedule, phases, end_behavior, metadata, self.engine.now(), info)
        return self.engine.schedule_dict(schedule, version)

    def release_schedule(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, RELEASE_SCHEDULE_PARAMS)
        _bool(params, "preserve_cancel_date")
        schedule = self.engine.get_schedule(object_id)
        self.engine.release_schedule(schedule, self.engine.now(), info)
        return self.engine.schedule_dict(schedule, version)

    def cancel_schedule(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, CANCEL_SCHEDULE_PARAMS)
        _bool(params, "invoice_now")
        _bool(params, "prorate")
        schedule = self.engine.get_schedule(object_id)
        self.engine.cancel_schedule(schedule, self.engine.now(), info)
        return self.engine.schedule_dict(schedule, version)

    def _phases(self, params: dict, schedule: Schedule, default_proration: str) -> list[SchedulePhase]:
        raw = params.get("phases")
        if not isinstance(raw, list) or not raw:
            raise SandboxError(400, "Invalid array: phases must be a non-empty list", param="phases")
        sub = self.engine.get_subscription(schedule.subscription_id or "")
        phases: list[SchedulePhase] = []
        for index, entry in enumerate(raw):
            where = f"phases[{index}]"
            if not isinstance(entry, dict):
                raise SandboxError(400, f"Invalid object: {where}", param=where)
            _check_params(entry, PHASE_PARAMS, where)
            items = entry.get("items")
            if not isinstance(items, list) or not items:
                raise SandboxError(400, f"Missing required param: {where}[items].", code="parameter_missing",
                                   param=f"{where}[items]")
            chosen: list[tuple[str, int]] = []
            for at, item in enumerate(items):
                spot = f"{where}[items][{at}]"
                if not isinstance(item, dict):
                    raise SandboxError(400, f"Invalid object: {spot}", param=spot)
                _check_params(item, PHASE_ITEM_PARAMS, spot)
                price_id = _str(item, "price", required=True) or ""
                price = self.engine.prices.get(price_id)
                if price is None:
                    raise SandboxError(400, f"No such price: '{price_id}'", code="resource_missing",
                                       param=f"{spot}[price]")
                if not price.recurring or price.currency != sub.currency or \
                        (price.interval, price.interval_count) != (sub.interval, sub.interval_count):
                    raise SandboxError(
                        400,
                        f"The sandbox schedules recurring prices on the subscription's currency and interval "
                        f"({sub.currency}, every {sub.interval_count} {sub.interval}) only.",
                        param=f"{spot}[price]",
                    )
                quantity = _int(item, "quantity", param=f"{spot}[quantity]") or 1
                if quantity < 1:
                    raise SandboxError(400, f"{spot}[quantity] must be at least 1.", param=f"{spot}[quantity]")
                chosen.append((price_id, quantity))
            start = entry.get("start_date")
            if start in (None, ""):
                start_date = phases[-1].end_date if phases else sub.period_start
            elif start == "now":
                start_date = self.engine.now()
            else:
                start_date = _int(entry, "start_date", param=f"{where}[start_date]") or 0
            end_date = _int(entry, "end_date", param=f"{where}[end_date]")
            iterations = _int(entry, "iterations", param=f"{where}[iterations]")
            if end_date is not None and iterations is not None:
                raise SandboxError(400, "You may only specify one of these parameters: end_date, iterations.",
                                   param=f"{where}[iterations]")
            if end_date is None:
                if iterations is None and index < len(raw) - 1:
                    raise SandboxError(400, f"{where} needs end_date or iterations (only the last phase may "
                                       "omit both).", param=f"{where}[end_date]")
                end_date = shift(start_date, (iterations or 1) * sub.interval_count, sub.interval)
            proration = _enum(entry, "proration_behavior", PRORATION_BEHAVIORS, f"{where}[proration_behavior]")
            phases.append(SchedulePhase(start_date, end_date, chosen, proration or default_proration,
                                        _metadata(entry)))
        return phases

    @staticmethod
    def _item_changes(params: dict) -> list[ItemChange]:
        raw = params.get("items")
        if raw in (None, ""):
            return []
        if not isinstance(raw, list):
            raise SandboxError(400, "Invalid array: items must be a list", param="items")
        changes = []
        for index, entry in enumerate(raw):
            where = f"items[{index}]"
            if not isinstance(entry, dict):
                raise SandboxError(400, f"Invalid object: {where}", param=where)
            _check_params(entry, UPDATE_ITEM_PARAMS, where)
            changes.append(
                ItemChange(
                    id=_str(entry, "id"),
                    price_id=_str(entry, "price"),
                    quantity=_int(entry, "quantity", param=f"{where}[quantity]"),
                    deleted=bool(_bool(entry, "deleted")),
                )
            )
        return changes

    def cancel_subscription(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, CANCEL_SUBSCRIPTION_PARAMS)
        details = _hash(params, "cancellation_details")
        _check_params(details, CANCELLATION_DETAILS_PARAMS, "cancellation_details")
        _bool(params, "prorate")
        _bool(params, "invoice_now")
        sub = self.engine.get_subscription(object_id)
        comment, feedback = _str(details, "comment"), _str(details, "feedback")
        self.engine.cancel_subscription(sub, False, self.engine.now(), info, comment, feedback)
        return self.engine.subscription_dict(sub, version)


    # --- setup objects: products, price lists, webhook endpoints, portal configurations --------------

    def create_product(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, PRODUCT_PARAMS)
        name = _str(params, "name", required=True)
        assert name is not None
        metadata = _metadata(params)
        description = _description(params)
        active = _bool(params, "active")
        product_id = _str(params, "id")
        if product_id is not None and product_id in self.engine.products:
            raise SandboxError(400, f"Product already exists: '{product_id}'", code="resource_already_exists",
                               param="id")
        now = self.engine.now()
        product = self.engine.new_product(name, now)
        if product_id is not None:
            # A product id of the caller's choosing, as Stripe allows.
            del self.engine.products[product.id]
            product.id = product_id
            self.engine.products[product.id] = product
        product.metadata, product.description, product.active = metadata, description, active is not False
        self.engine.emit("product.created", self.engine.product_dict(product), now, info)
        return self.engine.product_dict(product)

    def get_product(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self.engine.product_dict(lookup(self.engine.products, "product", object_id))

    def list_products(self, params: dict, version: str, info: RequestInfo) -> dict:
        """Newest first; ``active`` and ``ids[]`` filter as in Stripe."""
        _check_params(params, LIST_PRODUCTS_PARAMS)
        active = _bool(params, "active")
        ids = params.get("ids") or []
        if not isinstance(ids, list):
            raise SandboxError(400, "Invalid array: ids must be a list", param="ids")
        created = _created_filter(params)
        found = [
            p for p in self.engine.products.values()
            if (active is None or p.active == active) and (not ids or p.id in ids) and created(p.created)
        ]
        found.reverse()
        return _page(params, [self.engine.product_dict(p) for p in found], "/v1/products")

    def list_prices(self, params: dict, version: str, info: RequestInfo) -> dict:
        """Newest first; ``product``, ``active``, ``currency``, ``type`` and ``lookup_keys[]`` filter."""
        _check_params(params, LIST_PRICES_PARAMS)
        product = _str(params, "product")
        active = _bool(params, "active")
        currency = _str(params, "currency")
        kind = _enum(params, "type", ("one_time", "recurring"), "type")
        keys = params.get("lookup_keys") or []
        if not isinstance(keys, list):
            raise SandboxError(400, "Invalid array: lookup_keys must be a list", param="lookup_keys")
        if len(keys) > 10:
            raise SandboxError(400, "lookup_keys takes at most 10 keys.", param="lookup_keys")
        created = _created_filter(params)
        found = [
            p for p in self.engine.prices.values()
            if (product is None or p.product_id == product) and (active is None or p.active == active)
            and (currency is None or p.currency == currency.lower())
            and (kind is None or (kind == "recurring") == (p.interval is not None))
            and (not keys or p.lookup_key in keys) and created(p.created)
        ]
        found.reverse()
        return _page(params, [self.engine.price_dict(p, version) for p in found], "/v1/prices")

    def create_webhook_endpoint(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, CREATE_WEBHOOK_ENDPOINT_PARAMS)
        url = _webhook_url(params)
        events = _enabled_events(params, required=True)
        api_version = _str(params, "api_version")
        if api_version is not None and not API_VERSION.match(api_version):
            raise SandboxError(400, f"Invalid api_version: {api_version}", code="api_version_invalid",
                               param="api_version")
        if _bool(params, "connect"):
            raise SandboxError(400, "The local Stripe sandbox has no Connect: leave connect out.", param="connect")
        if len(self.engine.webhook_endpoints) >= MAX_WEBHOOK_ENDPOINTS:
            raise SandboxError(
                400, f"You have reached the maximum of {MAX_WEBHOOK_ENDPOINTS} test webhook endpoints.", param="url"
            )
        description = _description(params)
        endpoint = WebhookEndpoint(
            id=new_id("we"),
            url=url,
            enabled_events=events,
            api_version=api_version,
            secret="whsec_" + secrets.token_urlsafe(24),
            created=self.engine.now(),
            description=description,
            metadata=_metadata(params),
        )
        self.engine.webhook_endpoints[endpoint.id] = endpoint
        # The signing secret is shown once, in the answer to the create call (as Stripe does).
        return {**_webhook_endpoint_dict(endpoint), "secret": endpoint.secret}

    def get_webhook_endpoint(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return _webhook_endpoint_dict(lookup(self.engine.webhook_endpoints, "webhook_endpoint", object_id))

    def list_webhook_endpoints(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, LIST_PARAMS)
        found = sorted(self.engine.webhook_endpoints.values(), key=lambda e: e.created, reverse=True)
        return _page(params, [_webhook_endpoint_dict(e) for e in found], "/v1/webhook_endpoints")

    def update_webhook_endpoint(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, UPDATE_WEBHOOK_ENDPOINT_PARAMS)
        endpoint = lookup(self.engine.webhook_endpoints, "webhook_endpoint", object_id)
        # Everything is checked before anything changes: a refused update leaves the endpoint as it was.
        url = _webhook_url(params) if params.get("url") not in (None, "") else None
        events = _enabled_events(params, required=False) if params.get("enabled_events") not in (None, "") else None
        disabled = _bool(params, "disabled")
        description = _description(params)
        metadata = _metadata(params)
        if url is not None:
            endpoint.url = url
        if events is not None:
            endpoint.enabled_events = events
        if disabled is not None:
            endpoint.status = "disabled" if disabled else "enabled"
        if description is not None:
            endpoint.description = description
        for key, value in metadata.items():
            if value == "":
                endpoint.metadata.pop(key, None)
            else:
                endpoint.metadata[key] = value
        return _webhook_endpoint_dict(endpoint)

    def delete_webhook_endpoint(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, frozenset())
        endpoint = lookup(self.engine.webhook_endpoints, "webhook_endpoint", object_id)
        del self.engine.webhook_endpoints[endpoint.id]
        return {"id": endpoint.id, "object": "webhook_endpoint", "deleted": True}

    def create_portal_configuration(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, CREATE_PORTAL_CONFIGURATION_PARAMS)
        if params.get("business_profile") in (None, ""):
            raise missing("business_profile")
        profile = _hash(params, "business_profile")
        _check_params(profile, BUSINESS_PROFILE_PARAMS, "business_profile")
        headline = _str(profile, "headline")
        if headline is not None and len(headline) > 60:
            raise SandboxError(400, "business_profile[headline] must be at most 60 characters.",
                               param="business_profile[headline]")
        for name in ("privacy_policy_url", "terms_of_service_url"):
            _url(profile, name)
        if params.get("features") in (None, ""):
            raise missing("features")
        features = self._portal_features(_hash(params, "features"))
        return_url = _url(params, "default_return_url")
        login = _hash(params, "login_page")
        _check_params(login, frozenset({"enabled"}), "login_page")
        now = self.engine.now()
        configuration = PortalConfiguration(
            id=new_id("bpc"),
            created=now,
            updated=now,
            features=features,
            business_profile={"headline": headline, "privacy_policy_url": _str(profile, "privacy_policy_url"),
                              "terms_of_service_url": _str(profile, "terms_of_service_url")},
            default_return_url=return_url,
            metadata=_metadata(params),
        )
        self.engine.portal_configurations[configuration.id] = configuration
        return _portal_configuration_dict(configuration)

    def get_portal_configuration(self, params: dict, version: str, info: RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        found = lookup(self.engine.portal_configurations, "billing_portal.configuration", object_id)
        return _portal_configuration_dict(found)

    def list_portal_configurations(self, params: dict, version: str, info: RequestInfo) -> dict:
        _check_params(params, LIST_PARAMS | {"active", "is_default"})
        active, is_default = _bool(params, "active"), _bool(params, "is_default")
        found = [
            c for c in sorted(self.engine.portal_configurations.values(), key=lambda c: c.created, reverse=True)
            if (active is None or c.active == active) and (is_default is None or c.is_default == is_default)
        ]
        return _page(params, [_portal_configuration_dict(c) for c in found], "/v1/billing_portal/configurations")

    def _portal_features(self, raw: dict[str, Any]) -> dict[str, Any]:
        """``features`` as Stripe checks them (features_creation_param), merged over the defaults."""
        _check_params(raw, frozenset(PORTAL_FEATURES), "features")
        features = default_portal_features()
        for name, value in raw.items():
            where = f"features[{name}]"
            if not isinstance(value, dict):
                raise SandboxError(400, f"Invalid object: {where} must be a hash", param=where)
            _check_params(value, PORTAL_FEATURES[name], where)
            try:
                enabled = _bool(value, "enabled")
            except SandboxError:
                raise SandboxError(400, f"Invalid boolean: {where}[enabled]", param=f"{where}[enabled]") from None
            if enabled is None and name != "subscription_pause":
                raise missing(f"{where}[enabled]")
            feature = features[name]
            feature["enabled"] = bool(enabled)
            if name == "subscription_cancel":
                mode = _enum(value, "mode", ("at_period_end", "immediately"), f"{where}[mode]")
                proration = _enum(value, "proration_behavior", PORTAL_PRORATIONS, f"{where}[proration_behavior]")
                feature["mode"] = mode or feature["mode"]
                feature["proration_behavior"] = proration or feature["proration_behavior"]
                reason = _hash(value, "cancellation_reason")
                _check_params(reason, frozenset({"enabled", "options"}), f"{where}[cancellation_reason]")
                if reason:
                    options = _str_list(reason, "options", f"{where}[cancellation_reason][options]")
                    feature["cancellation_reason"] = {"enabled": bool(_bool(reason, "enabled")), "options": options}
            elif name == "subscription_update":
                allowed = _str_list(value, "default_allowed_updates", f"{where}[default_allowed_updates]")
                bad = [a for a in allowed if a not in ("price", "promotion_code", "quantity")]
                if bad:
                    raise SandboxError(400, f"Invalid {where}[default_allowed_updates]: {bad[0]}",
                                       param=f"{where}[default_allowed_updates]")
                feature["default_allowed_updates"] = allowed
                feature["products"] = self._portal_products(value, where)
                proration = _enum(value, "proration_behavior", PORTAL_PRORATIONS, f"{where}[proration_behavior]")
                feature["proration_behavior"] = proration or feature["proration_behavior"]
                if feature["enabled"] and not feature["products"]:
                    raise missing(f"{where}[products]")
            elif name == "customer_update":
                feature["allowed_updates"] = _str_list(value, "allowed_updates", f"{where}[allowed_updates]")
        return features

    def _portal_products(self, value: dict[str, Any], where: str) -> list[dict[str, Any]]:
        raw = value.get("products")
        if raw in (None, ""):
            return []
        if not isinstance(raw, list):
            raise SandboxError(400, f"Invalid array: {where}[products] must be a list", param=f"{where}[products]")
        products = []
        for index, entry in enumerate(raw):
            at = f"{where}[products][{index}]"
            if not isinstance(entry, dict):
                raise SandboxError(400, f"Invalid object: {at}", param=at)
            _check_params(entry, frozenset({"product", "prices"}), at)
            product = _str(entry, "product", required=True)
            prices = _str_list(entry, "prices", f"{at}[prices]")
            if product not in self.engine.products:
                raise SandboxError(400, f"No such product: '{product}'", code="resource_missing", param=f"{at}[product]")
            for price_id in prices:
                price = self.engine.prices.get(price_id)
                if price is None or price.product_id != product:
                    raise SandboxError(400, f"Price '{price_id}' is not a price of product '{product}'.",
                                       code="resource_missing", param=f"{at}[prices]")
                if price.interval is None:
                    raise SandboxError(400, f"Price '{price_id}' is not recurring: the portal switches between "
                                       "recurring prices only.", param=f"{at}[prices]")
            if not prices:
                raise missing(f"{at}[prices]")
            products.append({"prices": prices, "product": product})
        return products


def _pause_collection(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """``pause_collection``: a {behavior, resumes_at} hash pauses, "" resumes (api/subscriptions/update)."""
    raw = params.get("pause_collection")
    if raw == "":
        return None
    if not isinstance(raw, dict):
        raise SandboxError(400, "Invalid pause_collection: give a hash with behavior, or \"\" to resume",
                           param="pause_collection")
    _check_params(raw, PAUSE_COLLECTION_PARAMS, "pause_collection")
    behavior = _enum(raw, "behavior", PAUSE_BEHAVIORS, "pause_collection[behavior]")
    if behavior is None:
        raise SandboxError(400, "Missing required param: pause_collection[behavior].", param="pause_collection[behavior]")
    if behavior != "void":
        # Drafts kept or marked uncollectible would need invoice states the sandbox does not model.
        raise SandboxError(400, "The sandbox takes pause_collection[behavior]=void only.",
                           param="pause_collection[behavior]")
    if _int(raw, "resumes_at", param="pause_collection[resumes_at]") is not None:
        raise SandboxError(400, "The sandbox does not resume on a date: resume with pause_collection=\"\".",
                           param="pause_collection[resumes_at]")
    return {"behavior": behavior, "resumes_at": None}


def _description(params: Mapping[str, Any]) -> str | None:
    value = _str(params, "description")
    if value is not None and len(value) > 5000:
        raise SandboxError(400, "description must be at most 5000 characters.", param="description")
    return value


def _str_list(params: Mapping[str, Any], name: str, label: str) -> list[str]:
    raw = params.get(name)
    if raw in (None, ""):
        return []
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise SandboxError(400, f"Invalid array: {label} must be a list of strings", param=label)
    return list(raw)


def _webhook_url(params: Mapping[str, Any]) -> str:
    url = _str(params, "url", required=True)
    assert url is not None
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unclosed [ipv6 and the like
        valid = False
    if not valid or len(url) > 2048 or any(ord(c) < 33 or ord(c) > 126 for c in url):
        raise SandboxError(400, "Invalid URL: url must be an absolute http(s) URL of printable ASCII characters.",
                           code="url_invalid", param="url")
    return url


def _enabled_events(params: Mapping[str, Any], *, required: bool) -> list[str]:
    raw = params.get("enabled_events")
    if raw in (None, "", []):
        if required:
            raise missing("enabled_events")
        return []
    if not isinstance(raw, list):
        raise SandboxError(400, "Invalid array: enabled_events must be a list", param="enabled_events")
    events: list[str] = []
    for index, value in enumerate(raw):
        if not isinstance(value, str) or not (value == "*" or EVENT_TYPE.match(value)):
            raise SandboxError(400, f"Invalid enabled_events[{index}]: {str(value)[:80]!r} is not an event type",
                               param=f"enabled_events[{index}]")
        if value not in events:
            events.append(value)
    return events


def _webhook_endpoint_dict(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """A webhook endpoint as Stripe shows it after creation: ``secret`` is left out."""
    return {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "api_version": endpoint.api_version,
        "application": None,
        "created": endpoint.created,
        "description": endpoint.description,
        "enabled_events": list(endpoint.enabled_events),
        "livemode": False,
        "metadata": dict(endpoint.metadata),
        "status": endpoint.status,
        "url": endpoint.url,
    }


def _portal_configuration_dict(configuration: PortalConfiguration) -> dict[str, Any]:
    return {
        "id": configuration.id,
        "object": "billing_portal.configuration",
        "active": configuration.active,
        "application": None,
        "business_profile": dict(configuration.business_profile),
        "created": configuration.created,
        "default_return_url": configuration.default_return_url,
        "features": copy.deepcopy(configuration.features),
        "is_default": configuration.is_default,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": dict(configuration.metadata),
        "updated": configuration.updated,
    }
