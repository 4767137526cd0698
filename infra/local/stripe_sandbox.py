"""An in-process Stripe sandbox: the API Membergate calls, hosted checkout and portal pages, billing controls."""

from __future__ import annotations

import calendar
import copy
import html
import io
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import stripe
from stripe._http_client import HTTPClient
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from membergate.domain.signature import signature_header

from .stripe_shapes import (
    ItemSpec,
    LineSpec,
    format_amount,
    make_checkout_session,
    make_customer,
    make_customer_details,
    make_event,
    make_invoice,
    make_portal_session,
    make_price,
    make_product,
    make_subscription,
    new_id,
    previous_attributes,
)

logger = logging.getLogger(__name__)

DEFAULT_UNIT_AMOUNT = 1000
DEFAULT_CURRENCY = "eur"
OUTCOMES = ("card", "sepa", "decline")
# What a member can do in the customer portal (the sandbox's subset of Stripe's portal features).
PORTAL_ACTIONS = ("pay", "cancel_at_period_end", "cancel_now")
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
# Checkout: expires_at must fall 30 minutes to 24 hours after creation (api/checkout/sessions/create).
MIN_SESSION_SECONDS = 30 * 60
MAX_SESSION_SECONDS = 24 * 60 * 60
# Retries of a failed renewal: Stripe's custom schedule defaults (billing/revenue-recovery/smart-retries),
# 3, 5 then 7 days after the previous attempt; after the fourth attempt nothing more is scheduled.
RETRY_DELAYS_DAYS = (3, 5, 7)
DAY = 86_400
NOTE_KEY = "membergate_sandbox_note"
AUTO_PRICE_NOTE = "auto-created by the local Stripe sandbox: this price id was never registered"


class SandboxError(Exception):
    """An error Stripe would answer with: HTTP status plus the ``{"error": {...}}`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "code": self.code, "message": self.message}
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        return {"error": error}


_T = TypeVar("_T")


def _lookup(store: Mapping[str, _T], kind: str, object_id: str) -> _T:
    found = store.get(object_id)
    if found is None:
        raise _no_such(kind, object_id)
    return found


def _missing(param: str) -> SandboxError:
    return SandboxError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def _no_such(kind: str, object_id: str) -> SandboxError:
    return SandboxError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")


# --- state -------------------------------------------------------------------------------------


@dataclass
class _Product:
    id: str
    name: str
    created: int


@dataclass
class _Price:
    id: str
    product_id: str
    unit_amount: int
    currency: str
    interval: str | None
    interval_count: int
    created: int
    trial_period_days: int | None = None
    nickname: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class _Customer:
    id: str
    created: int
    invoice_prefix: str
    metadata: dict[str, str]
    email: str | None = None
    name: str | None = None
    description: str | None = None
    phone: str | None = None
    currency: str | None = None
    delinquent: bool = False
    next_invoice_sequence: int = 1


@dataclass
class _LineItem:
    price_id: str
    quantity: int


@dataclass
class _Session:
    id: str
    created: int
    expires_at: int
    customer_id: str | None
    customer_email: str | None
    client_reference_id: str | None
    line_items: list[_LineItem]
    success_url: str
    cancel_url: str | None
    metadata: dict[str, str]
    subscription_metadata: dict[str, str]
    trial_period_days: int | None
    allow_promotion_codes: bool | None
    currency: str
    status: str = "open"
    payment_status: str = "unpaid"
    subscription_id: str | None = None
    invoice_id: str | None = None
    awaiting_async_payment: bool = False


@dataclass
class _Item:
    id: str
    price_id: str
    quantity: int
    created: int


@dataclass
class _Subscription:
    id: str
    customer_id: str
    items: list[_Item]
    status: str
    created: int
    currency: str
    metadata: dict[str, str]
    interval: str
    interval_count: int
    # Periods are computed from the anchor so monthly billing keeps its day (31 Jan → 28 Feb → 31 Mar);
    # cycle -1 is the trial, whose period is (trial_start, trial_end).
    anchor: int
    cycle: int
    period_start: int
    period_end: int
    default_payment_method: str | None = None
    latest_invoice: str | None = None
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    cancellation_reason: str | None = None
    cancellation_comment: str | None = None
    cancellation_feedback: str | None = None
    trial_start: int | None = None
    trial_end: int | None = None
    session_id: str | None = None


@dataclass
class _Line:
    id: str
    item_id: str
    price_id: str
    quantity: int
    period_start: int
    period_end: int
    amount: int
    description: str | None = None


@dataclass
class _Invoice:
    id: str
    customer_id: str
    subscription_id: str
    subscription_metadata: dict[str, str]
    lines: list[_Line]
    billing_reason: str
    created: int
    period_start: int
    period_end: int
    currency: str
    status: str = "draft"
    amount_paid: int = 0
    attempt_count: int = 0
    attempted: bool = False
    next_payment_attempt: int | None = None
    number: str | None = None
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    payment_intent: str | None = None
    charge: str | None = None

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


@dataclass
class _PortalSession:
    id: str
    customer_id: str
    return_url: str | None
    created: int
    configuration: str
    locale: str | None = None


@dataclass(frozen=True)
class _RequestInfo:
    """What an event's ``request`` says: null id when Stripe acted on its own (a renewal)."""

    id: str | None = None
    idempotency_key: str | None = None


AUTOMATIC = _RequestInfo()


@dataclass(frozen=True)
class _Stored:
    fingerprint: str
    status: int
    body: bytes


def shift(timestamp: int, count: int, interval: str) -> int:
    """``timestamp`` moved by ``count`` intervals; months keep the day, clamped to the month's end."""
    if interval == "day":
        return timestamp + count * DAY
    if interval == "week":
        return timestamp + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    start = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return int(start.replace(year=year, month=month0 + 1, day=day).timestamp())


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


def _str(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str):
        raise SandboxError(400, f"Invalid string: {name} must be a string", param=name)
    return value


def _int(params: Mapping[str, Any], name: str, *, required: bool = False, param: str | None = None) -> int | None:
    value = params.get(name)
    label = param or name
    if value is None or value == "":
        if required:
            raise _missing(label)
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
        "locale",
        "payment_method_types",
        "billing_address_collection",
        "customer_update",
        "payment_method_collection",
        "tax_id_collection",
        "automatic_tax",
        "consent_collection",
        "custom_text",
        "expand",
    }
)
SESSION_PARAMS = SESSION_IGNORED_PARAMS | {
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
    "allow_promotion_codes",
    "discounts",
}
RECURRING_PARAMS = frozenset({"interval", "interval_count", "trial_period_days", "usage_type"})
SUBSCRIPTION_DATA_PARAMS = frozenset({"metadata", "trial_period_days", "description"})
LINE_ITEM_PARAMS = frozenset({"price", "quantity", "price_data", "adjustable_quantity", "tax_rates"})
UPDATE_SUBSCRIPTION_PARAMS = frozenset(
    {"cancel_at_period_end", "metadata", "cancellation_details", "proration_behavior", "expand"}
)
PORTAL_SESSION_PARAMS = frozenset({"customer", "return_url", "configuration", "locale", "expand"})
CANCEL_SUBSCRIPTION_PARAMS = frozenset({"prorate", "invoice_now", "cancellation_details", "expand"})
CANCELLATION_DETAILS_PARAMS = frozenset({"comment", "feedback"})
GET_PARAMS = frozenset({"expand"})


# --- the sandbox -------------------------------------------------------------------------------


class StripeSandbox:
    """Stripe as Membergate sees it, in memory. One lock guards all state; events leave outside it.

    Deliveries happen after the lock is released, one at a time and in emission order, so a
    webhook consumer may call back into the sandbox (even from the delivering thread) without
    deadlocking: what it causes is queued behind the event being delivered.
    """

    def __init__(
        self,
        clock: Callable[[], int],
        deliver: Callable[[dict], None],
        public_base_url: str,
        api_version: str = stripe.api_version,
    ):
        self._clock = clock
        self._deliver = deliver
        self.public_base_url = public_base_url.rstrip("/")
        self.api_version = api_version
        self._lock = threading.RLock()
        self._products: dict[str, _Product] = {}
        self._prices: dict[str, _Price] = {}
        self._customers: dict[str, _Customer] = {}
        self._sessions: dict[str, _Session] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._invoices: dict[str, _Invoice] = {}
        self._portal_sessions: dict[str, _PortalSession] = {}
        # The default portal configuration, as if saved once in the Dashboard (Stripe refuses
        # portal sessions until one exists).
        self.portal_configuration = new_id("bpc")
        self._idempotent: dict[str, _Stored] = {}
        self._log: list[dict] = []
        self._outbox: deque[dict] = deque()
        self._delivering = False
        self.delivery_errors: list[dict[str, str]] = []
        self._routes = Map(
            [
                Rule("/v1/customers", methods=["POST"], endpoint="api_create_customer"),
                Rule("/v1/customers/<object_id>", methods=["GET"], endpoint="api_get_customer"),
                Rule("/v1/prices", methods=["POST"], endpoint="api_create_price"),
                Rule("/v1/prices/<object_id>", methods=["GET"], endpoint="api_get_price"),
                Rule("/v1/checkout/sessions", methods=["POST"], endpoint="api_create_checkout_session"),
                Rule("/v1/checkout/sessions/<object_id>", methods=["GET"], endpoint="api_get_checkout_session"),
                Rule("/v1/subscriptions/<object_id>", methods=["GET"], endpoint="api_get_subscription"),
                Rule("/v1/subscriptions/<object_id>", methods=["POST"], endpoint="api_update_subscription"),
                Rule("/v1/subscriptions/<object_id>", methods=["DELETE"], endpoint="api_cancel_subscription"),
                Rule("/v1/invoices/<object_id>", methods=["GET"], endpoint="api_get_invoice"),
                Rule("/v1/billing_portal/sessions", methods=["POST"], endpoint="api_create_portal_session"),
                Rule("/pay/<object_id>", methods=["GET", "POST"], endpoint="page_checkout"),
                Rule("/invoice/<object_id>", methods=["GET", "POST"], endpoint="page_invoice"),
                Rule("/portal/<object_id>", methods=["GET", "POST"], endpoint="page_portal"),
                Rule("/_control/events", methods=["GET"], endpoint="control_events"),
                Rule("/_control/prices", methods=["POST"], endpoint="control_register_price"),
                Rule("/_control/subscriptions/<object_id>", methods=["GET"], endpoint="control_subscription"),
                Rule(
                    "/_control/subscriptions/<object_id>/<action>",
                    methods=["POST"],
                    endpoint="control_subscription_action",
                ),
                Rule(
                    "/_control/checkout/sessions/<object_id>/<action>",
                    methods=["POST"],
                    endpoint="control_session_action",
                ),
            ],
            strict_slashes=False,
        )

    # --- public controls (also under /_control/...) ---------------------------------------------

    def register_price(
        self,
        price_id: str,
        unit_amount: int,
        currency: str,
        interval: str = "month",
        interval_count: int = 1,
        *,
        product_name: str | None = None,
        trial_period_days: int | None = None,
    ) -> dict:
        """Seed a price under an id of the stack's choosing, as if made in the Stripe Dashboard."""
        if interval not in ("day", "week", "month", "year") or interval_count < 1:
            raise SandboxError(400, f"Invalid recurring interval: {interval_count} {interval}", param="recurring")
        with self._lock:
            now = self._now()
            product = self._new_product(product_name or price_id, now)
            price = _Price(
                id=price_id,
                product_id=product.id,
                unit_amount=int(unit_amount),
                currency=currency.lower(),
                interval=interval,
                interval_count=int(interval_count),
                created=now,
                trial_period_days=trial_period_days,
            )
            self._prices[price_id] = price
            return self._price_dict(price)

    def pay(self, session_id: str, outcome: str) -> dict:
        """What the member does on the hosted page: ``card``, ``sepa`` or ``decline``.

        A decline raises a ``card_error`` SandboxError and leaves the session open, as Checkout does.
        """
        return self._run(lambda now: self._pay(self._session(session_id), outcome, now, self._page_request()))

    def renew(self, sub_id: str) -> dict:
        """The period ends and the renewal is paid; from ``past_due`` this is a successful retry."""
        return self._run(lambda now: self._renew(self._subscription(sub_id), now))

    def fail_renewal(self, sub_id: str) -> dict:
        """The period ends and the charge fails (or a retry of a ``past_due`` invoice fails)."""
        return self._run(lambda now: self._fail_renewal(self._subscription(sub_id), now))

    def action_required(self, sub_id: str) -> dict:
        """The renewal needs the member to authenticate (SCA); returns the invoice to pay."""
        return self._run(lambda now: self._action_required(self._subscription(sub_id), now))

    def settle_sepa(self, session_id: str, succeed: bool) -> dict:
        """The bank answers for a SEPA Direct Debit started at checkout (days later, in reality)."""
        return self._run(lambda now: self._settle_sepa(self._session(session_id), bool(succeed), now))

    def cancel(self, sub_id: str, at_period_end: bool = False) -> dict:
        """The member or the creator cancels (customer portal or Dashboard)."""
        request = _RequestInfo(id=new_id("req"))
        return self._run(lambda now: self._cancel(self._subscription(sub_id), bool(at_period_end), now, request))

    def portal_action(self, session_id: str, subscription_id: str, action: str) -> dict:
        """What the member does in the customer portal, one of ``PORTAL_ACTIONS``: ``pay`` (a new
        card pays the failed invoice of a ``past_due`` subscription), ``cancel_at_period_end`` or
        ``cancel_now``. Returns the subscription."""
        request = self._page_request()
        return self._run(
            lambda now: self._portal_action(self._portal_session(session_id), subscription_id, action, now, request)
        )

    def events(self) -> list[dict]:
        """Every event emitted so far, in order (deep copies)."""
        with self._lock:
            return copy.deepcopy(self._log)

    def subscription(self, sub_id: str) -> dict:
        with self._lock:
            return self._subscription_dict(self._subscription(sub_id))

    def checkout_session(self, session_id: str) -> dict:
        with self._lock:
            return self._session_dict(self._session(session_id))

    def invoice(self, invoice_id: str) -> dict:
        with self._lock:
            return self._invoice_dict(self._invoice(invoice_id))

    def customer(self, customer_id: str) -> dict:
        with self._lock:
            return self._customer_dict(self._customer(customer_id))

    # --- plumbing ------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def _run(self, action: Callable[[int], dict]) -> dict:
        try:
            with self._lock:
                return action(self._now())
        finally:
            self._flush()

    def _page_request(self) -> _RequestInfo:
        return _RequestInfo(id=new_id("req"))

    def _emit(
        self,
        type: str,
        obj: dict,
        now: int,
        request: _RequestInfo = AUTOMATIC,
        previous: dict | None = None,
    ) -> None:
        event = make_event(
            type,
            obj,
            now,
            self.api_version,
            previous,
            request_id=request.id,
            idempotency_key=request.idempotency_key,
        )
        self._log.append(event)
        self._outbox.append(event)

    def _flush(self) -> None:
        while True:
            with self._lock:
                if self._delivering or not self._outbox:
                    return
                event = self._outbox.popleft()
                self._delivering = True
            try:
                self._deliver(copy.deepcopy(event))
            except Exception as exc:  # a broken consumer must not stop Stripe from carrying on
                logger.exception("delivering %s (%s) failed", event["id"], event["type"])
                with self._lock:
                    self.delivery_errors.append({"event_id": event["id"], "type": event["type"], "error": repr(exc)})
            finally:
                with self._lock:
                    self._delivering = False

    @contextmanager
    def _subscription_change(self, sub: _Subscription, now: int, request: _RequestInfo = AUTOMATIC) -> Iterator[None]:
        """Emit ``customer.subscription.updated`` with ``previous_attributes`` if anything changed."""
        before = self._subscription_dict(sub)
        yield
        after = self._subscription_dict(sub)
        changed = previous_attributes(before, after)
        if changed:
            self._emit("customer.subscription.updated", after, now, request, changed)

    # --- lookups -------------------------------------------------------------------------------

    def _customer(self, customer_id: str) -> _Customer:
        return _lookup(self._customers, "customer", customer_id)

    def _price(self, price_id: str) -> _Price:
        return _lookup(self._prices, "price", price_id)

    def _session(self, session_id: str) -> _Session:
        return _lookup(self._sessions, "checkout.session", session_id)

    def _subscription(self, sub_id: str) -> _Subscription:
        return _lookup(self._subscriptions, "subscription", sub_id)

    def _invoice(self, invoice_id: str) -> _Invoice:
        return _lookup(self._invoices, "invoice", invoice_id)

    def _portal_session(self, session_id: str) -> _PortalSession:
        return _lookup(self._portal_sessions, "billing_portal.session", session_id)

    # --- rendering (webhooks use the sandbox's version, API answers the request's) -------------

    def _price_dict(self, price: _Price, version: str | None = None) -> dict:
        return make_price(
            id=price.id,
            product=price.product_id,
            unit_amount=price.unit_amount,
            currency=price.currency,
            created=price.created,
            interval=price.interval,
            interval_count=price.interval_count,
            trial_period_days=price.trial_period_days,
            nickname=price.nickname,
            metadata=price.metadata,
            api_version=version or self.api_version,
        )

    def _product_dict(self, product: _Product) -> dict:
        return make_product(id=product.id, name=product.name, created=product.created)

    def _customer_dict(self, customer: _Customer, version: str | None = None) -> dict:
        return make_customer(
            id=customer.id,
            created=customer.created,
            invoice_prefix=customer.invoice_prefix,
            metadata=customer.metadata,
            email=customer.email,
            name=customer.name,
            description=customer.description,
            phone=customer.phone,
            currency=customer.currency,
            delinquent=customer.delinquent,
            next_invoice_sequence=customer.next_invoice_sequence,
            api_version=version or self.api_version,
        )

    def _subscription_dict(self, sub: _Subscription, version: str | None = None) -> dict:
        version = version or self.api_version
        return make_subscription(
            id=sub.id,
            customer=sub.customer_id,
            items=[
                ItemSpec(
                    id=item.id,
                    price=self._price_dict(self._prices[item.price_id], version),
                    quantity=item.quantity,
                    created=item.created,
                )
                for item in sub.items
            ],
            status=sub.status,
            created=sub.created,
            start_date=sub.created,
            billing_cycle_anchor=sub.anchor,
            period_start=sub.period_start,
            period_end=sub.period_end,
            currency=sub.currency,
            metadata=sub.metadata,
            latest_invoice=sub.latest_invoice,
            default_payment_method=sub.default_payment_method,
            cancel_at_period_end=sub.cancel_at_period_end,
            cancel_at=sub.cancel_at,
            canceled_at=sub.canceled_at,
            ended_at=sub.ended_at,
            cancellation_reason=sub.cancellation_reason,
            cancellation_comment=sub.cancellation_comment,
            cancellation_feedback=sub.cancellation_feedback,
            trial_start=sub.trial_start,
            trial_end=sub.trial_end,
            api_version=version,
        )

    def _invoice_dict(self, inv: _Invoice, version: str | None = None) -> dict:
        version = version or self.api_version
        customer = self._customers[inv.customer_id]
        prices = {line.price_id: self._price_dict(self._prices[line.price_id], version) for line in inv.lines}
        return make_invoice(
            id=inv.id,
            customer=inv.customer_id,
            customer_email=customer.email,
            customer_name=customer.name,
            subscription=inv.subscription_id,
            subscription_metadata=inv.subscription_metadata,
            lines=[
                LineSpec(
                    id=line.id,
                    subscription_item=line.item_id,
                    price=prices[line.price_id],
                    quantity=line.quantity,
                    period_start=line.period_start,
                    period_end=line.period_end,
                    amount=line.amount,
                    description=line.description,
                )
                for line in inv.lines
            ],
            status=inv.status,
            billing_reason=inv.billing_reason,
            created=inv.created,
            period_start=inv.period_start,
            period_end=inv.period_end,
            currency=inv.currency,
            amount_paid=inv.amount_paid,
            attempt_count=inv.attempt_count,
            attempted=inv.attempted,
            next_payment_attempt=inv.next_payment_attempt,
            number=inv.number,
            hosted_invoice_url=f"{self.public_base_url}/invoice/{inv.id}",
            finalized_at=inv.finalized_at,
            paid_at=inv.paid_at,
            voided_at=inv.voided_at,
            payment_intent=inv.payment_intent,
            charge=inv.charge,
            product_names={p.id: p.name for p in self._products.values()},
            api_version=version,
        )

    def _session_dict(self, session: _Session, version: str | None = None) -> dict:
        customer = self._customers.get(session.customer_id) if session.customer_id else None
        details = None
        if session.status == "complete" and customer is not None:
            details = make_customer_details(email=customer.email, name=customer.name)
        amount = self._session_amount(session)
        return make_checkout_session(
            id=session.id,
            created=session.created,
            expires_at=session.expires_at,
            url=f"{self.public_base_url}/pay/{session.id}",
            status=session.status,
            payment_status=session.payment_status,
            customer=session.customer_id,
            customer_email=session.customer_email,
            client_reference_id=session.client_reference_id,
            success_url=session.success_url,
            cancel_url=session.cancel_url,
            metadata=session.metadata,
            allow_promotion_codes=session.allow_promotion_codes,
            currency=session.currency,
            amount_subtotal=amount,
            amount_total=amount,
            subscription=session.subscription_id,
            invoice=session.invoice_id,
            customer_details=details,
            api_version=version or self.api_version,
        )

    def _portal_session_dict(self, portal: _PortalSession, version: str | None = None) -> dict:
        return make_portal_session(
            id=portal.id,
            customer=portal.customer_id,
            return_url=portal.return_url,
            url=f"{self.public_base_url}/portal/{portal.id}",
            created=portal.created,
            configuration=portal.configuration,
            locale=portal.locale,
            api_version=version or self.api_version,
        )

    def _session_amount(self, session: _Session) -> int:
        # With a trial nothing is due today, and Checkout shows 0 (billing/subscriptions/trials).
        if self._session_trial_days(session):
            return 0
        return sum(self._prices[li.price_id].unit_amount * li.quantity for li in session.line_items)

    def _session_trial_days(self, session: _Session) -> int:
        if session.trial_period_days:
            return session.trial_period_days
        return max((self._prices[li.price_id].trial_period_days or 0 for li in session.line_items), default=0)

    # --- behaviour -----------------------------------------------------------------------------

    def _new_product(self, name: str, now: int) -> _Product:
        product = _Product(id=new_id("prod"), name=name, created=now)
        self._products[product.id] = product
        return product

    def _new_customer(self, now: int, request: _RequestInfo, **fields: Any) -> _Customer:
        customer = _Customer(
            id=new_id("cus"),
            created=now,
            invoice_prefix=new_id("x")[2:10].upper(),
            metadata=fields.pop("metadata", {}),
            **fields,
        )
        self._customers[customer.id] = customer
        self._emit("customer.created", self._customer_dict(customer), now, request)
        return customer

    def _auto_price(self, price_id: str, now: int) -> _Price:
        # Scripts and seeds use price ids this Stripe never saw: invent a plausible monthly price
        # rather than fail, and say so on the object.
        product = self._new_product(price_id, now)
        price = _Price(
            id=price_id,
            product_id=product.id,
            unit_amount=DEFAULT_UNIT_AMOUNT,
            currency=DEFAULT_CURRENCY,
            interval="month",
            interval_count=1,
            created=now,
            metadata={NOTE_KEY: AUTO_PRICE_NOTE},
        )
        self._prices[price_id] = price
        return price

    def _expire_if_due(self, session: _Session, now: int) -> None:
        if session.status == "open" and now >= session.expires_at:
            session.status = "expired"
            self._emit("checkout.session.expired", self._session_dict(session), now)

    def _pay(self, session: _Session, outcome: str, now: int, request: _RequestInfo) -> dict:
        if outcome not in OUTCOMES:
            raise SandboxError(400, f"Unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}", param="outcome")
        self._expire_if_due(session, now)
        if session.status == "expired":
            raise SandboxError(400, "This Checkout Session has expired.", code="checkout_session_expired")
        if session.status != "open":
            raise SandboxError(400, "This Checkout Session is no longer active: it is already complete.")
        if outcome == "decline":
            # Checkout keeps the session open and lets the member try again; nothing is created.
            raise SandboxError(
                402,
                "Your card was declined.",
                type="card_error",
                code="card_declined",
                decline_code="generic_decline",
            )
        if session.customer_id is None:
            # Subscription-mode Checkout always creates a customer when none was passed.
            email = session.customer_email or f"member-{session.id[-8:].lower()}@example.test"
            session.customer_id = self._new_customer(now, request, email=email).id
        customer = self._customers[session.customer_id]
        customer.currency = session.currency
        trial_days = self._session_trial_days(session)
        first = self._prices[session.line_items[0].price_id]
        assert first.interval is not None
        sub = _Subscription(
            id=new_id("sub"),
            customer_id=customer.id,
            items=[
                _Item(id=new_id("si"), price_id=li.price_id, quantity=li.quantity, created=now)
                for li in session.line_items
            ],
            status="trialing" if trial_days else "incomplete",
            created=now,
            currency=session.currency,
            metadata=dict(session.subscription_metadata),
            interval=first.interval,
            interval_count=first.interval_count,
            anchor=now,
            cycle=0,
            period_start=now,
            period_end=shift(now, first.interval_count, first.interval),
            default_payment_method=new_id("pm"),
            session_id=session.id,
        )
        if trial_days:
            sub.trial_start, sub.trial_end = now, now + trial_days * DAY
            sub.anchor, sub.cycle, sub.period_end = sub.trial_end, -1, sub.trial_end
        self._subscriptions[sub.id] = sub
        # The first invoice's own period is the instant of creation; its line covers the first period.
        invoice = self._new_invoice(sub, "subscription_create", now, now, now, trial=bool(trial_days))
        sub.latest_invoice = invoice.id
        # Checkout creates the subscription `incomplete` and activates it once the first invoice is
        # paid (billing/subscriptions/overview: "incomplete ... pending payment"; the created event
        # may say incomplete, billing/subscriptions/webhooks).
        self._emit("customer.subscription.created", self._subscription_dict(sub), now, request)
        self._emit("invoice.created", self._invoice_dict(invoice), now, request)
        self._finalize(invoice, now, request)
        if trial_days:
            self._mark_paid(invoice, now)
            self._emit_invoice_paid(invoice, now, request)
            session.payment_status = "no_payment_required"
        elif outcome == "card":
            self._mark_paid(invoice, now)
            with self._subscription_change(sub, now, request):
                sub.status = "active"
            self._emit_invoice_paid(invoice, now, request)
            session.payment_status = "paid"
        else:
            # SEPA Direct Debit is a delayed notification method: the debit is "processing" for
            # days, the invoice stays open, the subscription stays incomplete and the session
            # completes unpaid (payments/checkout/fulfill-orders, "delayed notification").
            invoice.attempted, invoice.attempt_count = True, 1
            session.payment_status = "unpaid"
            session.awaiting_async_payment = True
        session.status = "complete"
        session.subscription_id, session.invoice_id = sub.id, invoice.id
        self._emit("checkout.session.completed", self._session_dict(session), now, request)
        return self._session_dict(session)

    def _new_invoice(
        self,
        sub: _Subscription,
        billing_reason: str,
        now: int,
        period_start: int,
        period_end: int,
        *,
        trial: bool = False,
    ) -> _Invoice:
        lines = []
        for item in sub.items:
            price = self._prices[item.price_id]
            product = self._products.get(price.product_id)
            lines.append(
                _Line(
                    id=new_id("il"),
                    item_id=item.id,
                    price_id=price.id,
                    quantity=item.quantity,
                    period_start=sub.period_start,
                    period_end=sub.period_end,
                    amount=0 if trial else price.unit_amount * item.quantity,
                    description=f"Trial period for {product.name if product else price.id}" if trial else None,
                )
            )
        invoice = _Invoice(
            id=new_id("in"),
            customer_id=sub.customer_id,
            subscription_id=sub.id,
            subscription_metadata=dict(sub.metadata),
            lines=lines,
            billing_reason=billing_reason,
            created=now,
            period_start=period_start,
            period_end=period_end,
            currency=sub.currency,
        )
        self._invoices[invoice.id] = invoice
        return invoice

    def _finalize(self, invoice: _Invoice, now: int, request: _RequestInfo = AUTOMATIC) -> None:
        customer = self._customers[invoice.customer_id]
        invoice.status = "open"
        invoice.finalized_at = now
        invoice.number = f"{customer.invoice_prefix}-{customer.next_invoice_sequence:04d}"
        customer.next_invoice_sequence += 1
        self._emit("invoice.finalized", self._invoice_dict(invoice), now, request)

    def _mark_paid(self, invoice: _Invoice, now: int, *, new_attempt: bool = True) -> None:
        invoice.status = "paid"
        invoice.amount_paid = invoice.total
        invoice.paid_at = now
        invoice.attempted = True
        if new_attempt:
            invoice.attempt_count += 1
        invoice.next_payment_attempt = None
        if invoice.total:
            invoice.payment_intent = invoice.payment_intent or new_id("pi")
            invoice.charge = new_id("ch")
        self._customers[invoice.customer_id].delinquent = False

    def _emit_invoice_paid(self, invoice: _Invoice, now: int, request: _RequestInfo = AUTOMATIC) -> None:
        # Both are sent for every successful payment; invoice.paid also covers paid out of band.
        self._emit("invoice.paid", self._invoice_dict(invoice), now, request)
        self._emit("invoice.payment_succeeded", self._invoice_dict(invoice), now, request)

    def _fail_attempt(self, invoice: _Invoice, now: int) -> None:
        invoice.attempted = True
        invoice.attempt_count += 1
        invoice.payment_intent = invoice.payment_intent or new_id("pi")
        delays = RETRY_DELAYS_DAYS
        invoice.next_payment_attempt = (
            now + delays[invoice.attempt_count - 1] * DAY if invoice.attempt_count <= len(delays) else None
        )
        self._customers[invoice.customer_id].delinquent = True

    def _require_live(self, sub: _Subscription) -> None:
        if sub.status in ENDED_STATUSES:
            raise SandboxError(
                400, f"Subscription {sub.id} has ended ({sub.status}); it cannot renew.", param="subscription"
            )
        if sub.status == "incomplete":
            raise SandboxError(
                400,
                f"Subscription {sub.id} awaits its first payment: settle its SEPA debit (settle_sepa) first.",
                param="subscription",
            )

    def _open_invoice(self, sub: _Subscription) -> _Invoice | None:
        latest = self._invoices.get(sub.latest_invoice or "")
        return latest if latest is not None and latest.status == "open" else None

    def _roll_period(self, sub: _Subscription, now: int) -> _Invoice:
        """The period ends: the subscription moves on and its renewal invoice is drafted and finalised.

        Stripe advances the period at rollover whether or not the payment then succeeds
        (billing/subscriptions/overview, "payment failures").
        """
        old_start, old_end = sub.period_start, sub.period_end
        with self._subscription_change(sub, now):
            sub.cycle += 1
            sub.period_start = shift(sub.anchor, sub.cycle * sub.interval_count, sub.interval)
            sub.period_end = shift(sub.anchor, (sub.cycle + 1) * sub.interval_count, sub.interval)
            if sub.status == "trialing":
                sub.status = "active"
            # A cycle invoice's own period is the one that just ended; its lines cover the new one.
            invoice = self._new_invoice(sub, "subscription_cycle", now, old_start, old_end)
            sub.latest_invoice = invoice.id
        self._emit("invoice.created", self._invoice_dict(invoice), now)
        self._finalize(invoice, now)
        return invoice

    def _end(self, sub: _Subscription, now: int, request: _RequestInfo = AUTOMATIC) -> dict:
        sub.status = "canceled"
        sub.ended_at = now
        sub.canceled_at = sub.canceled_at or now
        sub.cancellation_reason = sub.cancellation_reason or "cancellation_requested"
        # Deleted events carry the final object and no previous_attributes.
        obj = self._subscription_dict(sub)
        self._emit("customer.subscription.deleted", obj, now, request)
        return obj

    def _renew(self, sub: _Subscription, now: int) -> dict:
        self._require_live(sub)
        if sub.cancel_at_period_end:
            return self._end(sub, now)
        open_invoice = self._open_invoice(sub)
        if sub.status == "past_due" and open_invoice is not None:
            # A successful retry pays the invoice that failed; the period already moved on.
            return self._pay_open_invoice(sub, open_invoice, now)
        invoice = self._roll_period(sub, now)
        self._mark_paid(invoice, now)
        self._emit_invoice_paid(invoice, now)
        if sub.status != "active":
            with self._subscription_change(sub, now):
                sub.status = "active"
        return self._subscription_dict(sub)

    def _pay_open_invoice(
        self, sub: _Subscription, invoice: _Invoice, now: int, request: _RequestInfo = AUTOMATIC, *, new_card: bool = False
    ) -> dict:
        self._mark_paid(invoice, now)
        self._emit_invoice_paid(invoice, now, request)
        # One update carries both changes: a separate past_due snapshot with the new card in the
        # same second would tie with the active one (and Membergate ranks past_due higher on ties).
        with self._subscription_change(sub, now, request):
            sub.status = "active"
            if new_card:
                sub.default_payment_method = new_id("pm")
        return self._subscription_dict(sub)

    def _portal_action(
        self, portal: _PortalSession, subscription_id: str, action: str, now: int, request: _RequestInfo
    ) -> dict:
        if action not in PORTAL_ACTIONS:
            raise SandboxError(400, f"Unknown portal action {action!r}: use one of {', '.join(PORTAL_ACTIONS)}", param="action")
        sub = self._subscriptions.get(subscription_id)
        if sub is None or sub.customer_id != portal.customer_id:
            # The portal only ever shows the session's own customer's subscriptions.
            raise _no_such("subscription", subscription_id)
        if action == "pay":
            invoice = self._open_invoice(sub) if sub.status == "past_due" else None
            if invoice is None:
                raise SandboxError(400, f"Subscription {sub.id} has no failed payment to pay.", param="subscription")
            return self._pay_open_invoice(sub, invoice, now, request, new_card=True)
        self._cancel(sub, action == "cancel_at_period_end", now, request)
        return self._subscription_dict(sub)

    def _fail_renewal(self, sub: _Subscription, now: int) -> dict:
        self._require_live(sub)
        if sub.cancel_at_period_end:
            return self._end(sub, now)
        invoice = self._open_invoice(sub) if sub.status == "past_due" else None
        if invoice is None:
            invoice = self._roll_period(sub, now)
        self._fail_attempt(invoice, now)
        self._emit("invoice.payment_failed", self._invoice_dict(invoice), now)
        with self._subscription_change(sub, now):
            sub.status = "past_due"
        return self._subscription_dict(sub)

    def _action_required(self, sub: _Subscription, now: int) -> dict:
        self._require_live(sub)
        if sub.cancel_at_period_end:
            raise SandboxError(400, f"Subscription {sub.id} ends at period end: there is no renewal to authenticate.")
        invoice = self._open_invoice(sub) if sub.status == "past_due" else None
        if invoice is None:
            invoice = self._roll_period(sub, now)
        # An off-session charge that needs 3DS fails with the PaymentIntent in requires_action:
        # Stripe sends invoice.payment_failed and invoice.payment_action_required, and the
        # subscription goes past_due (billing/subscriptions/webhooks, billing/migration/strong-customer-authentication).
        self._fail_attempt(invoice, now)
        self._emit("invoice.payment_failed", self._invoice_dict(invoice), now)
        self._emit("invoice.payment_action_required", self._invoice_dict(invoice), now)
        with self._subscription_change(sub, now):
            sub.status = "past_due"
        return self._invoice_dict(invoice)

    def _settle_sepa(self, session: _Session, succeed: bool, now: int) -> dict:
        if not session.awaiting_async_payment:
            raise SandboxError(400, f"Checkout Session {session.id} has no delayed payment to settle.", param="session")
        sub = self._subscriptions[session.subscription_id or ""]
        invoice = self._invoices[session.invoice_id or ""]
        session.awaiting_async_payment = False
        if succeed:
            self._mark_paid(invoice, now, new_attempt=False)
            self._emit_invoice_paid(invoice, now)
            if sub.status == "incomplete":
                with self._subscription_change(sub, now):
                    sub.status = "active"
            session.payment_status = "paid"
            self._emit("checkout.session.async_payment_succeeded", self._session_dict(session), now)
        else:
            invoice.next_payment_attempt = None
            self._customers[invoice.customer_id].delinquent = True
            self._emit("invoice.payment_failed", self._invoice_dict(invoice), now)
            self._emit("checkout.session.async_payment_failed", self._session_dict(session), now)
            if sub.status == "incomplete":
                # Stripe waits up to 23 h before expiring an incomplete subscription and voiding its
                # first invoice (billing/subscriptions/overview); the sandbox does it at once.
                with self._subscription_change(sub, now):
                    sub.status = "incomplete_expired"
                    sub.ended_at = now
                invoice.status, invoice.voided_at = "void", now
                self._emit("invoice.voided", self._invoice_dict(invoice), now)
        return self._session_dict(session)

    def _cancel(
        self,
        sub: _Subscription,
        at_period_end: bool,
        now: int,
        request: _RequestInfo,
        comment: str | None = None,
        feedback: str | None = None,
    ) -> dict:
        if sub.status in ENDED_STATUSES:
            # Stripe treats a canceled subscription as gone for cancellation: 404 resource_missing
            # ("No such subscription"), which is what stripe-go's maintainers describe (issue 1887).
            raise _no_such("subscription", sub.id)
        if at_period_end:
            with self._subscription_change(sub, now, request):
                self._schedule_cancellation(sub, now, comment, feedback)
            return self._subscription_dict(sub)
        sub.cancellation_comment = comment or sub.cancellation_comment
        sub.cancellation_feedback = feedback or sub.cancellation_feedback
        return self._end(sub, now, request)

    def _schedule_cancellation(self, sub: _Subscription, now: int, comment: str | None, feedback: str | None) -> None:
        if not sub.cancel_at_period_end:
            sub.cancel_at_period_end = True
            sub.cancel_at = sub.period_end
            sub.canceled_at = now
            sub.cancellation_reason = "cancellation_requested"
        sub.cancellation_comment = comment or sub.cancellation_comment
        sub.cancellation_feedback = feedback or sub.cancellation_feedback

    # --- WSGI ----------------------------------------------------------------------------------

    def wsgi_app(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self._routes.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed):
            error = SandboxError(
                404,
                f"Unrecognized request URL ({request.method}: {request.path}). "
                "The local Stripe sandbox implements only the endpoints Membergate calls.",
            )
            response = self._json(error.status, error.body())
        else:
            if endpoint.startswith("api_"):
                response = self._api(request, endpoint, args)
            elif endpoint.startswith("page_"):
                response = getattr(self, f"_{endpoint}")(request, **args)
            else:
                response = self._control(request, endpoint, args)
        return response(environ, start_response)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.wsgi_app(environ, start_response)

    def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
        return Response(
            json.dumps(body, indent=2),
            status=status,
            headers=dict(headers or {}),
            content_type="application/json",
        )

    # --- the API -------------------------------------------------------------------------------

    def _api(self, request: Request, endpoint: str, args: dict[str, str]) -> Response:
        request_id = new_id("req")
        idempotency_key = request.headers.get("Idempotency-Key")
        headers = {"Request-Id": request_id, "Stripe-Version": self.api_version}
        try:
            self._authenticate(request)
            version = self._request_version(request)
            headers["Stripe-Version"] = version
            if request.method == "POST":
                params = parse_form(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
            else:
                params = parse_form(parse_qsl(request.query_string.decode(), keep_blank_values=True))
        except SandboxError as error:
            return self._json(error.status, error.body(), headers)
        # Stripe replays POSTs by idempotency key; GET and DELETE are idempotent by definition and
        # ignore the header (api/idempotent_requests).
        replayable = request.method == "POST" and bool(idempotency_key)
        if replayable:
            headers["Idempotency-Key"] = idempotency_key or ""
            if len(idempotency_key or "") > 255:
                error = SandboxError(
                    400, "Idempotency keys can be at most 255 characters long.", param="Idempotency-Key"
                )
                return self._json(error.status, error.body(), headers)
        fingerprint = json.dumps([request.method, request.path, params], sort_keys=True)
        handler = getattr(self, f"_{endpoint}")
        info = _RequestInfo(id=request_id, idempotency_key=idempotency_key)
        try:
            with self._lock:
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
            return self._json(error.status, error.body(), headers)
        finally:
            self._flush()
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
            return self.api_version
        if not re.match(r"^\d{4}-\d{2}-\d{2}", version):
            raise SandboxError(400, f"Invalid Stripe API version: {version}", code="api_version_invalid")
        return version

    def _api_create_customer(self, params: dict, version: str, info: _RequestInfo) -> dict:
        _check_params(params, CUSTOMER_PARAMS)
        customer = self._new_customer(
            self._now(),
            info,
            metadata=_metadata(params),
            email=_str(params, "email"),
            name=_str(params, "name"),
            description=_str(params, "description"),
            phone=_str(params, "phone"),
        )
        return self._customer_dict(customer, version)

    def _api_get_customer(self, params: dict, version: str, info: _RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self._customer_dict(self._customer(object_id), version)

    def _api_create_price(self, params: dict, version: str, info: _RequestInfo) -> dict:
        _check_params(params, PRICE_PARAMS)
        now = self._now()
        currency = _str(params, "currency", required=True)
        unit_amount = _int(params, "unit_amount", required=True)
        assert currency is not None and unit_amount is not None
        if unit_amount < 0:
            raise SandboxError(400, "Invalid unit_amount: must be at least 0", param="unit_amount")
        recurring = _hash(params, "recurring")
        _check_params(recurring, RECURRING_PARAMS, "recurring")
        interval = _str(recurring, "interval", required=bool(recurring)) if recurring else None
        if interval is not None and interval not in ("day", "week", "month", "year"):
            raise SandboxError(400, f"Invalid recurring[interval]: {interval}", param="recurring[interval]")
        interval_count = _int(recurring, "interval_count", param="recurring[interval_count]") or 1
        if interval_count < 1:
            raise SandboxError(400, "recurring[interval_count] must be at least 1.", param="recurring[interval_count]")
        trial_days = _int(recurring, "trial_period_days", param="recurring[trial_period_days]")
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
            if product_id not in self._products:
                raise SandboxError(400, f"No such product: '{product_id}'", code="resource_missing", param="product")
            product = self._products[product_id]
        else:
            _check_params(product_data, frozenset({"name", "metadata"}), "product_data")
            name = _str(product_data, "name")
            if name is None:
                raise _missing("product_data[name]")
            # Everything is validated before the first object is made: a refused request leaves nothing.
            product = self._new_product(name, now)
            self._emit("product.created", self._product_dict(product), now, info)
        price = _Price(
            id=new_id("price"),
            product_id=product.id,
            unit_amount=unit_amount,
            currency=currency.lower(),
            interval=interval,
            interval_count=interval_count,
            created=now,
            trial_period_days=trial_days,
            nickname=nickname,
            metadata=metadata,
        )
        self._prices[price.id] = price
        self._emit("price.created", self._price_dict(price), now, info)
        return self._price_dict(price, version)

    def _api_get_price(self, params: dict, version: str, info: _RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self._price_dict(self._price(object_id), version)

    def _api_create_checkout_session(self, params: dict, version: str, info: _RequestInfo) -> dict:
        _check_params(params, SESSION_PARAMS)
        now = self._now()
        mode = _str(params, "mode", required=True)
        if mode != "subscription":
            raise SandboxError(
                400, f"The local Stripe sandbox supports mode=subscription only, not {mode!r}.", param="mode"
            )
        customer_id = _str(params, "customer")
        customer_email = _str(params, "customer_email")
        if customer_id and customer_email:
            raise SandboxError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                code="parameters_exclusive",
                param="customer_email",
            )
        if customer_id is not None and customer_id not in self._customers:
            raise SandboxError(400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer")
        if params.get("allow_promotion_codes") not in (None, "") and params.get("discounts") not in (None, ""):
            raise SandboxError(
                400,
                "You may only specify one of these parameters: allow_promotion_codes, discounts.",
                code="parameters_exclusive",
                param="discounts",
            )
        line_items = self._line_items(params, now)
        prices = [self._prices[li.price_id] for li in line_items]
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
        session = _Session(
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
        )
        self._sessions[session.id] = session
        return self._session_dict(session, version)

    def _line_items(self, params: dict, now: int) -> list[_LineItem]:
        raw = params.get("line_items")
        if raw in (None, "", []):
            raise _missing("line_items")
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
            price = self._prices.get(price_id) or self._auto_price(price_id, now)
            if price.interval is None:
                raise SandboxError(
                    400,
                    "You must specify at least one recurring price in `subscription` mode when using prices "
                    "(the local sandbox takes recurring prices only).",
                    param=f"{where}[price]",
                )
            items.append(_LineItem(price_id=price_id, quantity=quantity))
        return items

    def _api_get_checkout_session(self, params: dict, version: str, info: _RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        session = self._session(object_id)
        self._expire_if_due(session, self._now())
        return self._session_dict(session, version)

    def _api_create_portal_session(self, params: dict, version: str, info: _RequestInfo) -> dict:
        _check_params(params, PORTAL_SESSION_PARAMS)
        customer_id = _str(params, "customer", required=True)
        if customer_id not in self._customers:
            raise SandboxError(400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer")
        configuration = _str(params, "configuration") or self.portal_configuration
        if configuration != self.portal_configuration:
            raise SandboxError(
                400, f"No such configuration: '{configuration}'", code="resource_missing", param="configuration"
            )
        # Stripe expires a portal session the member does not visit soon; the sandbox keeps them.
        portal = _PortalSession(
            id=new_id("bps"),
            customer_id=customer_id or "",
            return_url=_url(params, "return_url"),
            created=self._now(),
            configuration=configuration,
            locale=_str(params, "locale"),
        )
        self._portal_sessions[portal.id] = portal
        return self._portal_session_dict(portal, version)

    def _api_get_subscription(self, params: dict, version: str, info: _RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self._subscription_dict(self._subscription(object_id), version)

    def _api_get_invoice(self, params: dict, version: str, info: _RequestInfo, object_id: str) -> dict:
        _check_params(params, GET_PARAMS)
        return self._invoice_dict(self._invoice(object_id), version)

    def _api_update_subscription(self, params: dict, version: str, info: _RequestInfo, object_id: str) -> dict:
        _check_params(params, UPDATE_SUBSCRIPTION_PARAMS)
        sub = self._subscription(object_id)
        now = self._now()
        at_period_end = _bool(params, "cancel_at_period_end")
        details = _hash(params, "cancellation_details")
        _check_params(details, CANCELLATION_DETAILS_PARAMS, "cancellation_details")
        metadata = _metadata(params)
        if sub.status in ENDED_STATUSES and at_period_end is not None:
            raise SandboxError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        comment, feedback = _str(details, "comment"), _str(details, "feedback")
        with self._subscription_change(sub, now, info):
            if at_period_end:
                self._schedule_cancellation(sub, now, comment, feedback)
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
        return self._subscription_dict(sub, version)

    def _api_cancel_subscription(self, params: dict, version: str, info: _RequestInfo, object_id: str) -> dict:
        _check_params(params, CANCEL_SUBSCRIPTION_PARAMS)
        details = _hash(params, "cancellation_details")
        _check_params(details, CANCELLATION_DETAILS_PARAMS, "cancellation_details")
        _bool(params, "prorate")
        _bool(params, "invoice_now")
        sub = self._subscription(object_id)
        self._cancel(sub, False, self._now(), info, _str(details, "comment"), _str(details, "feedback"))
        return self._subscription_dict(sub, version)

    # --- hosted pages --------------------------------------------------------------------------

    def _page_checkout(self, request: Request, object_id: str) -> Response:
        error: SandboxError | None = None
        if request.method == "POST":
            try:
                self.pay(object_id, request.form.get("outcome", ""))
            except SandboxError as exc:
                error = exc
            else:
                with self._lock:
                    session = self._sessions[object_id]
                    target = session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id)
                return Response(status=303, headers={"Location": target})
        with self._lock:
            session = self._sessions.get(object_id)
            if session is None:
                return _page("Checkout not found", "<p>No such Checkout Session.</p>", 404)
            self._expire_if_due(session, self._now())
            body = self._checkout_html(session, error)
        self._flush()
        status = 200 if error is None or error.status == 402 else error.status
        return _page("Checkout (local Stripe sandbox)", body, status)

    def _checkout_html(self, session: _Session, error: SandboxError | None) -> str:
        rows = []
        for li in session.line_items:
            price = self._prices[li.price_id]
            product = self._products.get(price.product_id)
            every = f"per {price.interval}"
            if price.interval_count > 1:
                every = f"every {price.interval_count} {price.interval}s"
            rows.append(
                f"<tr><td>{html.escape(product.name if product else price.id)}</td>"
                f"<td><code>{html.escape(price.id)}</code></td><td>× {li.quantity}</td>"
                f"<td>{format_amount(price.unit_amount * li.quantity, price.currency)} {every}</td></tr>"
            )
        parts = [
            "<p class=note>Test mode: this is Membergate's local Stripe sandbox. No money moves.</p>",
            f"<table>{''.join(rows)}</table>",
            f"<p>Due today: <strong>{format_amount(self._session_amount(session), session.currency)}</strong></p>",
        ]
        trial = self._session_trial_days(session)
        if trial:
            parts.append(f"<p>Free trial: {trial} days.</p>")
        if error is not None:
            parts.append(f"<p class=error>{html.escape(error.message)}</p>")
        if session.status == "open":
            action = html.escape(f"{self.public_base_url}/pay/{session.id}")
            parts.append(
                f"<form method=post action='{action}'>"
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

    def _page_invoice(self, request: Request, object_id: str) -> Response:
        error: SandboxError | None = None
        if request.method == "POST":
            # The member authenticates on the hosted invoice page: the open invoice gets paid.
            try:
                with self._lock:
                    invoice = self._invoice(object_id)
                    sub = self._subscription(invoice.subscription_id)
                    if invoice.status != "open" or sub.latest_invoice != invoice.id or sub.status != "past_due":
                        raise SandboxError(400, "This invoice cannot be paid here.")
                self.renew(sub.id)
            except SandboxError as exc:
                error = exc
            else:
                return Response(status=303, headers={"Location": f"{self.public_base_url}/invoice/{object_id}"})
        with self._lock:
            invoice = self._invoices.get(object_id)
            if invoice is None:
                return _page("Invoice not found", "<p>No such invoice.</p>", 404)
            parts = [
                "<p class=note>Test mode: Membergate's local Stripe sandbox.</p>",
                f"<p>Invoice {html.escape(invoice.number or invoice.id)}: "
                f"<strong>{format_amount(invoice.total, invoice.currency)}</strong>, "
                f"{html.escape(invoice.status)}.</p>",
            ]
            if error is not None:
                parts.append(f"<p class=error>{html.escape(error.message)}</p>")
            if invoice.status == "open":
                action = html.escape(f"{self.public_base_url}/invoice/{invoice.id}")
                parts.append(f"<form method=post action='{action}'><button>Authenticate and pay</button></form>")
        return _page("Invoice (local Stripe sandbox)", "\n".join(parts), 200 if error is None else error.status)

    def _page_portal(self, request: Request, object_id: str) -> Response:
        error: SandboxError | None = None
        if request.method == "POST":
            try:
                self.portal_action(object_id, request.form.get("subscription", ""), request.form.get("action", ""))
            except SandboxError as exc:
                error = exc
            else:
                return Response(status=303, headers={"Location": f"{self.public_base_url}/portal/{object_id}"})
        with self._lock:
            portal = self._portal_sessions.get(object_id)
            if portal is None:
                return _page("Billing portal not found", "<p>No such portal session.</p>", 404)
            body = self._portal_html(portal, error)
        return _page("Your billing (local Stripe sandbox)", body, 200 if error is None else error.status)

    def _portal_html(self, portal: _PortalSession, error: SandboxError | None) -> str:
        parts = ["<p class=note>Test mode: Membergate's local Stripe sandbox standing in for Stripe's customer portal.</p>"]
        if error is not None:
            parts.append(f"<p class=error>{html.escape(error.message)}</p>")
        subs = sorted(
            (s for s in self._subscriptions.values() if s.customer_id == portal.customer_id),
            key=lambda s: s.created,
            reverse=True,
        )
        if not subs:
            parts.append("<p>No subscriptions.</p>")
        action = html.escape(f"{self.public_base_url}/portal/{portal.id}")
        for sub in subs:
            names, amount = [], 0
            for item in sub.items:
                price = self._prices[item.price_id]
                product = self._products.get(price.product_id)
                names.append(product.name if product else price.id)
                amount += price.unit_amount * item.quantity
            every = sub.interval if sub.interval_count == 1 else f"{sub.interval_count} {sub.interval}s"
            parts.append(
                f"<h2>{html.escape(', '.join(names))}</h2>"
                f"<p>{format_amount(amount, sub.currency)} per {every} · <code>{html.escape(sub.id)}</code> · "
                f"status <strong>{html.escape(sub.status)}</strong></p>"
            )
            if sub.status in ENDED_STATUSES:
                continue
            if sub.cancel_at_period_end and sub.cancel_at:
                parts.append(f"<p>Cancels on {_day(sub.cancel_at)}.</p>")
            else:
                parts.append(f"<p>Current period ends on {_day(sub.period_end)}.</p>")
            buttons = []
            invoice = self._open_invoice(sub) if sub.status == "past_due" else None
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

    # --- JSON controls (local stack only, no key: never exposed beyond 127.0.0.1) --------------

    def _control(self, request: Request, endpoint: str, args: dict[str, str]) -> Response:
        try:
            body = _control_body(request)
            if endpoint == "control_events":
                return self._json(200, {"object": "list", "data": self.events()})
            if endpoint == "control_subscription":
                return self._json(200, self.subscription(args["object_id"]))
            if endpoint == "control_register_price":
                if not body.get("price_id"):
                    raise _missing("price_id")
                price = self.register_price(
                    str(body["price_id"]),
                    int(body.get("unit_amount", DEFAULT_UNIT_AMOUNT)),
                    str(body.get("currency") or DEFAULT_CURRENCY),
                    str(body.get("interval") or "month"),
                    int(body.get("interval_count") or 1),
                    product_name=body.get("product_name"),
                    trial_period_days=int(body["trial_period_days"]) if body.get("trial_period_days") else None,
                )
                return self._json(200, price)
            object_id, action = args["object_id"], args["action"]
            if endpoint == "control_subscription_action":
                actions: dict[str, Callable[[], dict]] = {
                    "renew": lambda: self.renew(object_id),
                    "fail_renewal": lambda: self.fail_renewal(object_id),
                    "action_required": lambda: self.action_required(object_id),
                    "cancel": lambda: self.cancel(object_id, _truthy(body.get("at_period_end"))),
                }
            else:
                actions = {
                    "pay": lambda: self.pay(object_id, str(body.get("outcome") or "")),
                    "settle_sepa": lambda: self.settle_sepa(object_id, _truthy(body.get("succeed", True))),
                }
            if action not in actions:
                raise SandboxError(404, f"Unknown control action: {action}")
            return self._json(200, actions[action]())
        except SandboxError as error:
            return self._json(error.status, error.body())
        except (TypeError, ValueError) as exc:
            error = SandboxError(400, f"Invalid control request: {exc}")
            return self._json(error.status, error.body())


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


def _control_body(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = dict(request.args)
    if request.method == "POST":
        if request.is_json:
            data = request.get_json(silent=True)
            if data is not None and not isinstance(data, dict):
                raise SandboxError(400, "The control body must be a JSON object.")
            body.update(data or {})
        else:
            body.update(request.form)
    return body


def _page(title: str, body: str, status: int) -> Response:
    document = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
        "td{padding:.25rem .75rem}.note{color:#555}.error{color:#b00020;font-weight:600}"
        "button{margin:.25rem 0;padding:.5rem 1rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )
    return Response(document, status=status, content_type="text/html; charset=utf-8")


# --- delivery ----------------------------------------------------------------------------------


class SignedDelivery:
    """Posts each event as Stripe does: one serialisation, signed with the wall clock, retried."""

    def __init__(
        self,
        secret: str,
        post: Callable[[bytes, dict], int],
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.05,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._secret = secret
        self._post = post
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self._wall_clock = wall_clock
        self._sleep = sleep
        self.failures: list[dict[str, Any]] = []

    def __call__(self, event: dict) -> None:
        payload = json.dumps(event, indent=2).encode()
        last: str = ""
        for attempt in range(1, self._attempts + 1):
            # Signature tolerance is checked against the receiver's wall clock, never business
            # time; each attempt is signed afresh, as Stripe re-signs every retry.
            header = signature_header(self._secret, int(self._wall_clock()), payload)
            try:
                status = self._post(payload, {"Stripe-Signature": header, "Content-Type": "application/json"})
            except Exception as exc:  # connection refused and the like: Stripe retries those too
                last = repr(exc)
            else:
                if 200 <= status < 300:
                    return
                last = f"HTTP {status}"
            if attempt < self._attempts and self._backoff > 0:
                self._sleep(self._backoff * 2 ** (attempt - 1))
        # Stripe retries for days and then gives up; locally the failure is recorded and logged.
        failure = {"event_id": event.get("id"), "type": event.get("type"), "attempts": self._attempts, "last_error": last}
        self.failures.append(failure)
        logger.warning("webhook delivery failed: %s", failure)


def signed_delivery(
    secret: str,
    post: Callable[[bytes, dict], int],
    *,
    attempts: int = 3,
    backoff_seconds: float = 0.05,
) -> SignedDelivery:
    """A ``deliver`` for StripeSandbox that signs like Stripe and POSTs through ``post``."""
    return SignedDelivery(secret, post, attempts=attempts, backoff_seconds=backoff_seconds)


# --- the SDK, in process -----------------------------------------------------------------------


class WsgiStripeHttpClient(HTTPClient):
    """A stripe-python HTTP client that hands requests to a WSGI app instead of the network.

    ``base_url`` is what the StripeClient is given as its API base (``base_addresses={"api": ...}``):
    the prefix under which ``app`` (normally ``sandbox.wsgi_app``) is mounted.
    """

    name = "wsgi"

    def __init__(self, app: Callable, base_url: str):
        super().__init__()
        self._app = app
        self._base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        body, status, response_headers = self._send(method, url, headers, post_data)
        return body.decode("utf-8"), status, response_headers

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        body, status, response_headers = self._send(method, url, headers, post_data)
        return io.BytesIO(body), status, response_headers

    def _send(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any
    ) -> tuple[bytes, int, dict[str, str]]:
        if not url.startswith(self._base_url + "/"):
            raise stripe.APIConnectionError(f"{url} is not under the sandbox base {self._base_url}")
        if isinstance(post_data, str):
            post_data = post_data.encode("utf-8")
        response = Client(self._app).open(
            url[len(self._base_url) :],
            base_url=self._base_url,
            method=method.upper(),
            headers=list((headers or {}).items()),
            data=post_data,
        )
        # Lower-case header names, as the SDK's own urllib client returns them.
        return response.get_data(), response.status_code, {k.lower(): v for k, v in response.headers.items()}

    def close(self) -> None:
        pass
