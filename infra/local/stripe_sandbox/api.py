"""The subset of Stripe's REST API Membergate calls through the real stripe SDK (form-encoded, idempotent)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .engine import BillingEngine
from .errors import SandboxError, lookup, missing, no_such
from .items import ItemChange
from .objects import LineItem, PortalSession, Price, RequestInfo, Session
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
    Rule("/v1/billing_portal/sessions", methods=["POST"], endpoint="api.create_portal_session"),
    Rule("/v1/charges/<object_id>", methods=["GET"], endpoint="api.get_charge"),
    Rule("/v1/payment_intents/<object_id>", methods=["GET"], endpoint="api.get_payment_intent"),
    Rule("/v1/disputes/<object_id>", methods=["GET"], endpoint="api.get_dispute"),
    Rule("/v1/invoice_payments", methods=["GET"], endpoint="api.list_invoice_payments"),
    Rule("/v1/subscriptions", methods=["GET"], endpoint="api.list_subscriptions"),
    Rule("/v1/events", methods=["GET"], endpoint="api.list_events"),
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

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise SandboxError(400, f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
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
    }
)
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
            # Everything is validated before the first object is made: a refused request leaves nothing.
            product = self.engine.new_product(name, now)
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
        )
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
                ok = rendered not in ("canceled", "incomplete_expired")
            elif status == "all":
                ok = True
            elif status == "ended":
                ok = rendered in ("canceled", "incomplete_expired")
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
        if configuration != self.engine.portal_configuration:
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
        details = _hash(params, "cancellation_details")
        _check_params(details, CANCELLATION_DETAILS_PARAMS, "cancellation_details")
        metadata = _metadata(params)
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

