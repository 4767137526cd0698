"""The billing engine, with no HTTP: state, event outbox, checkout and the subscription lifecycle.

Its other parts are mixins: ``render`` (objects as Stripe shapes them), ``payments`` (one-time
payments, refunds, disputes), ``items`` (plan changes with prorations), ``clock`` (time passing).
Every change happens under one lock; the events it causes are queued and delivered after the lock
is released, one customer's events one at a time and in emission order, different customers'
events at the same time (see ``flush``), as Stripe delivers them.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import stripe

from .clock import ClockAdvance
from .errors import SandboxError, lookup, no_such
from .items import ItemChanges
from .objects import (
    AUTOMATIC,
    DAY,
    INTERVALS,
    PAYMENT_METHOD_BEHAVIOURS,
    TEST_CARD_NUMBER,
    Charge,
    Customer,
    Dispute,
    Invoice,
    Item,
    Line,
    PortalConfiguration,
    PromotionCode,
    PortalSession,
    Price,
    Product,
    RequestInfo,
    Schedule,
    Session,
    Subscription,
    WebhookEndpoint,
    default_portal_features,
    shift,
)
from .payments import Payments
from .render import Rendering
from .schedules import Schedules
from .shapes import (
    SANDBOX_TAX_PERCENT,
    TaxSpec,
    format_amount,
    make_card_payment_method,
    make_event,
    new_id,
    previous_attributes,
)

logger = logging.getLogger(__name__)

DEFAULT_UNIT_AMOUNT = 1000
DEFAULT_CURRENCY = "eur"
OUTCOMES = ("card", "sepa", "decline")
# What a member can do in the customer portal (the sandbox's subset of Stripe's portal features).
PORTAL_ACTIONS = ("pay", "cancel_at_period_end", "cancel_now")
# Retries of a failed renewal: Stripe's custom schedule defaults (billing/revenue-recovery/smart-retries),
# 3, 5 then 7 days after the previous attempt; after the fourth attempt nothing more is scheduled.
RETRY_DELAYS_DAYS = (3, 5, 7)
# What Stripe writes on the charge of a subscription invoice.
_CHARGE_DESCRIPTIONS = {"subscription_create": "Subscription creation"}


class BillingEngine(Rendering, Payments, ClockAdvance, ItemChanges, Schedules):
    """Stripe's billing as Membergate sees it, in memory. One lock guards all state; events leave outside it.

    Deliveries happen after the lock is released, one at a time and in emission order per
    customer, so a webhook consumer may call back into the sandbox (even from the delivering
    thread) without deadlocking: what it causes is queued behind the event being delivered.
    Different customers' events go out concurrently (each flushing thread delivers), as Stripe
    does: ten members paying at once are not delivered one after the other.
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
        self.lock = threading.RLock()
        self.products: dict[str, Product] = {}
        self.prices: dict[str, Price] = {}
        self.customers: dict[str, Customer] = {}
        self.sessions: dict[str, Session] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.schedules: dict[str, Schedule] = {}
        self.invoices: dict[str, Invoice] = {}
        self.portal_sessions: dict[str, PortalSession] = {}
        self.charges: dict[str, Charge] = {}
        self.disputes: dict[str, Dispute] = {}
        self.promotion_codes: dict[str, PromotionCode] = {}  # by code, upper case (codes are case-insensitive)
        # The default portal configuration, as if saved once in the Dashboard (Stripe refuses
        # portal sessions until one exists).
        self.portal_configuration = new_id("bpc")
        created = self.now()
        self.portal_configurations: dict[str, PortalConfiguration] = {
            self.portal_configuration: PortalConfiguration(
                id=self.portal_configuration,
                created=created,
                updated=created,
                features=default_portal_features(),
                business_profile={"headline": None, "privacy_policy_url": None, "terms_of_service_url": None},
                is_default=True,
            )
        }
        # Endpoints registered through /v1/webhook_endpoints (`membergate init`): kept and listed.
        # Events still go to the one ``deliver`` the sandbox was built with, signed with its secret.
        self.webhook_endpoints: dict[str, WebhookEndpoint] = {}
        self._log: list[dict] = []
        self._outbox: deque[dict] = deque()
        self._delivering: set[str] = set()  # customers (lanes) with an event on its way
        self.delivery_errors: list[dict[str, str]] = []

    # --- public controls (also under /_control/...) ---------------------------------------------

    def register_price(
        self,
        price_id: str,
        unit_amount: int | None,
        currency: str,
        interval: str | None = "month",
        interval_count: int = 1,
        *,
        product_name: str | None = None,
        trial_period_days: int | None = None,
        custom_unit_amount: dict[str, int | None] | None = None,
        tax_behavior: str = "unspecified",
    ) -> dict:
        """Seed a price under an id of the stack's choosing, as if made in the Stripe Dashboard.

        ``interval=None`` makes a one-time price (a pass, lifetime access); ``custom_unit_amount``
        (``minimum``, ``maximum``, ``preset``) a pay-what-you-want one, which Stripe allows on
        one-time prices only.
        """
        amount, custom = self.validate_price(unit_amount, interval, interval_count, custom_unit_amount)
        with self.lock:
            now = self.now()
            product = self.new_product(product_name or price_id, now)
            self.prices[price_id] = Price(
                id=price_id,
                product_id=product.id,
                unit_amount=amount,
                currency=currency.lower(),
                interval=interval,
                interval_count=int(interval_count),
                created=now,
                trial_period_days=trial_period_days,
                custom_unit_amount=custom,
                tax_behavior=tax_behavior,
            )
            return self.price_dict(self.prices[price_id])

    @staticmethod
    def validate_price(
        unit_amount: int | None,
        interval: str | None,
        interval_count: int,
        custom_unit_amount: dict[str, int | None] | None,
    ) -> tuple[int | None, dict[str, int | None] | None]:
        """The checks Stripe makes on a new price; answers its ``(unit_amount, custom_unit_amount)``."""
        if interval is not None and (interval not in INTERVALS or interval_count < 1):
            raise SandboxError(400, f"Invalid recurring interval: {interval_count} {interval}", param="recurring")
        if custom_unit_amount is not None:
            if interval is not None:
                raise SandboxError(
                    400,
                    "custom_unit_amount is only supported for one-time prices (Stripe: pay what you want does not "
                    "work with subscriptions).",
                    param="custom_unit_amount",
                )
            if unit_amount is not None:
                raise SandboxError(
                    400,
                    "You may only specify one of these parameters: custom_unit_amount, unit_amount.",
                    code="parameters_exclusive",
                    param="unit_amount",
                )
            bounds = {key: custom_unit_amount.get(key) for key in ("maximum", "minimum", "preset")}
            low, high, preset = bounds["minimum"], bounds["maximum"], bounds["preset"]
            if any(v is not None and v < 0 for v in bounds.values()) or (
                low is not None and high is not None and low > high
            ):
                raise SandboxError(
                    400, "Invalid custom_unit_amount: 0 ≤ minimum ≤ maximum.", param="custom_unit_amount"
                )
            if preset is not None and not (low or 0) <= preset <= (high if high is not None else preset):
                raise SandboxError(
                    400, "custom_unit_amount[preset] must lie between minimum and maximum.", param="custom_unit_amount"
                )
            return None, bounds
        if unit_amount is None:
            raise SandboxError(
                400, "Missing required param: unit_amount.", code="parameter_missing", param="unit_amount"
            )
        if int(unit_amount) < 0:
            raise SandboxError(400, "Invalid unit_amount: must be at least 0", param="unit_amount")
        return int(unit_amount), None

    def create_promotion_code(self, code: str, percent_off: float | None, amount_off: int | None,
                              currency: str | None) -> dict:
        """A coupon (duration once) and its customer-facing code, as made in the Dashboard."""
        code = code.strip()
        if not code or len(code) > 500 or not code.isprintable():
            raise SandboxError(400, "Invalid code: use letters, digits and dashes.", param="code")
        if (percent_off is None) == (amount_off is None):
            raise SandboxError(400, "Specify exactly one of percent_off or amount_off.", param="percent_off")
        if percent_off is not None and not 0 < percent_off <= 100:
            raise SandboxError(400, "percent_off must be greater than 0 and at most 100.", param="percent_off")
        if amount_off is not None and (amount_off <= 0 or not currency):
            raise SandboxError(400, "amount_off must be positive, with a currency.", param="amount_off")
        with self.lock:
            if code.upper() in self.promotion_codes:
                raise SandboxError(400, "An active promotion code with `code` already exists.", param="code")
            promo = PromotionCode(id=new_id("promo"), code=code, coupon_id=new_id("coupon"), percent_off=percent_off,
                                  amount_off=amount_off, currency=currency.lower() if currency else None)
            self.promotion_codes[code.upper()] = promo
            return {"id": promo.id, "object": "promotion_code", "code": promo.code, "active": True,
                    "coupon": {"id": promo.coupon_id, "object": "coupon", "duration": "once",
                               "percent_off": promo.percent_off, "amount_off": promo.amount_off,
                               "currency": promo.currency}}

    def pay(self, session_id: str, outcome: str, amount: int | None = None, card_number: str | None = None,
            card_expiry: str | None = None, promotion_code: str | None = None) -> dict:
        """What the member does on the hosted page: ``card``, ``sepa`` or ``decline``.

        ``amount`` is what they chose to pay for a pay-what-you-want price (default: its preset,
        else its minimum). ``card_number`` is the card typed (default 4242…): a subscription's
        card is attached to the customer (``payment_method.attached``, its ``card.fingerprint`` the
        same for the same number). A decline raises a ``card_error`` SandboxError and leaves the
        session open, as Checkout does. ``card_expiry`` is the card's expiry typed as ``MM/YY`` (default
        12/34), so a card that lapses before a renewal can be saved. ``promotion_code`` is a code typed on a
        session with ``allow_promotion_codes`` (one-time payments only): it discounts what is charged.
        """
        number = _card_number(card_number) if outcome == "card" else TEST_CARD_NUMBER
        expiry = _card_expiry(card_expiry) if outcome == "card" else DEFAULT_CARD_EXPIRY
        request = self._page_request()
        return self.run(
            lambda now: self._pay(self.get_session(session_id), outcome, now, request, amount, number, expiry,
                                  promotion_code))

    def set_payment_method(self, customer_id: str, behaviour: str) -> dict:
        """What the customer's saved payment method does from now on when charged off-session."""
        if behaviour not in PAYMENT_METHOD_BEHAVIOURS:
            raise SandboxError(
                400,
                f"Unknown behaviour {behaviour!r}: use one of {', '.join(PAYMENT_METHOD_BEHAVIOURS)}",
                param="behaviour",
            )
        with self.lock:
            customer = self.get_customer(customer_id)
            customer.payment_method_behaviour = behaviour
            return self.customer_dict(customer)

    def renew(self, sub_id: str) -> dict:
        """The period ends and the renewal is paid; from ``past_due`` this is a successful retry."""
        return self.run(lambda now: self._renew(self.get_subscription(sub_id), now))

    def fail_renewal(self, sub_id: str) -> dict:
        """The period ends and the charge fails (or a retry of a ``past_due`` invoice fails)."""
        return self.run(lambda now: self._fail_renewal(self.get_subscription(sub_id), now))

    def action_required(self, sub_id: str) -> dict:
        """The renewal needs the member to authenticate (SCA); returns the invoice to pay."""
        return self.run(lambda now: self._action_required(self.get_subscription(sub_id), now))

    def settle_sepa(self, session_id: str, succeed: bool) -> dict:
        """The bank answers for a SEPA Direct Debit started at checkout (days later, in reality)."""
        return self.run(lambda now: self._settle_sepa(self.get_session(session_id), bool(succeed), now))

    def cancel(self, sub_id: str, at_period_end: bool = False) -> dict:
        """The member or the creator cancels (customer portal or Dashboard)."""
        request = RequestInfo(id=new_id("req"))
        return self.run(
            lambda now: self.cancel_subscription(self.get_subscription(sub_id), bool(at_period_end), now, request)
        )

    def portal_action(self, session_id: str, subscription_id: str, action: str) -> dict:
        """What the member does in the customer portal, one of ``PORTAL_ACTIONS``: ``pay`` (a new
        card pays the failed invoice of a ``past_due`` subscription), ``cancel_at_period_end`` or
        ``cancel_now``. Returns the subscription."""
        request = self._page_request()
        return self.run(
            lambda now: self._portal_action(self.get_portal_session(session_id), subscription_id, action, now, request)
        )

    def events(self) -> list[dict]:
        """Every event emitted so far, in order (deep copies)."""
        with self.lock:
            return copy.deepcopy(self._log)

    def undelivered_event_ids(self) -> set[str]:
        """Events the webhook endpoint never acknowledged (``delivery_success=false`` in Stripe's list)."""
        failures = list(getattr(self._deliver, "failures", ())) + list(self.delivery_errors)
        return {str(f.get("event_id")) for f in failures if f.get("event_id")}

    def subscription(self, sub_id: str) -> dict:
        with self.lock:
            return self.subscription_dict(self.get_subscription(sub_id))

    def checkout_session(self, session_id: str) -> dict:
        with self.lock:
            return self.session_dict(self.get_session(session_id))

    def invoice(self, invoice_id: str) -> dict:
        with self.lock:
            return self.invoice_dict(self.get_invoice(invoice_id))

    def customer(self, customer_id: str) -> dict:
        with self.lock:
            return self.customer_dict(self.get_customer(customer_id))

    # --- plumbing ------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self._clock())

    def run(self, action: Callable[[int], dict]) -> dict:
        try:
            with self.lock:
                return action(self.now())
        finally:
            self.flush()

    def _page_request(self) -> RequestInfo:
        return RequestInfo(id=new_id("req"))

    def emit(
        self,
        type: str,
        obj: dict,
        now: int,
        request: RequestInfo = AUTOMATIC,
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

    def flush(self) -> None:
        """Deliver what is queued: the oldest event of each customer nobody is delivering to yet.

        Returns when every queued event is delivered or on its way in another thread (which
        then delivers that customer's next events too)."""
        while True:
            with self.lock:
                event = next((e for e in self._outbox if _lane(e) not in self._delivering), None)
                if event is None:
                    return
                self._outbox.remove(event)
                lane = _lane(event)
                self._delivering.add(lane)
            try:
                self._deliver(copy.deepcopy(event))
            except Exception as exc:  # a broken consumer must not stop Stripe from carrying on
                logger.exception("delivering %s (%s) failed", event["id"], event["type"])
                with self.lock:
                    self.delivery_errors.append({"event_id": event["id"], "type": event["type"], "error": repr(exc)})
            finally:
                with self.lock:
                    self._delivering.discard(lane)

    @contextmanager
    def subscription_change(self, sub: Subscription, now: int, request: RequestInfo = AUTOMATIC) -> Iterator[None]:
        """Emit ``customer.subscription.updated`` with ``previous_attributes`` if anything changed."""
        before = self.subscription_dict(sub)
        yield
        after = self.subscription_dict(sub)
        changed = previous_attributes(before, after)
        if changed:
            self.emit("customer.subscription.updated", after, now, request, changed)

    # --- lookups -------------------------------------------------------------------------------

    def get_customer(self, customer_id: str) -> Customer:
        return lookup(self.customers, "customer", customer_id)

    def customer_exists(self, customer_id: str | None) -> bool:
        """Whether new work (a checkout, a portal session) may use this customer: known and not deleted."""
        customer = self.customers.get(customer_id or "")
        return customer is not None and not customer.deleted

    def delete_customer(self, customer: Customer, now: int, request: RequestInfo) -> dict:
        """Deleting a customer cancels their subscriptions at once, then says the customer is gone."""
        if customer.deleted:
            raise no_such("customer", customer.id)
        for sub in [s for s in self.subscriptions.values() if s.customer_id == customer.id and not s.ended]:
            self._end(sub, now, request)
        customer.deleted = True
        self.emit("customer.deleted", self.customer_dict(customer), now, request)
        return {"id": customer.id, "object": "customer", "deleted": True}

    def get_price(self, price_id: str) -> Price:
        return lookup(self.prices, "price", price_id)

    def get_session(self, session_id: str) -> Session:
        return lookup(self.sessions, "checkout.session", session_id)

    def get_subscription(self, sub_id: str) -> Subscription:
        return lookup(self.subscriptions, "subscription", sub_id)

    def get_invoice(self, invoice_id: str) -> Invoice:
        return lookup(self.invoices, "invoice", invoice_id)

    def get_portal_session(self, session_id: str) -> PortalSession:
        return lookup(self.portal_sessions, "billing_portal.session", session_id)

    # --- behaviour -----------------------------------------------------------------------------

    def new_product(self, name: str, now: int) -> Product:
        product = Product(id=new_id("prod"), name=name, created=now)
        self.products[product.id] = product
        return product

    def new_customer(self, now: int, request: RequestInfo, **fields: Any) -> Customer:
        customer = Customer(
            id=new_id("cus"),
            created=now,
            invoice_prefix=new_id("x")[2:10].upper(),
            metadata=fields.pop("metadata", {}),
            **fields,
        )
        self.customers[customer.id] = customer
        self.emit("customer.created", self.customer_dict(customer), now, request)
        return customer

    def expire_if_due(self, session: Session, now: int) -> None:
        if session.status == "open" and now >= session.expires_at:
            self.expire_session(session, now)

    def expire_session(self, session: Session, now: int, request: RequestInfo = AUTOMATIC) -> None:
        session.status = "expired"
        self.emit("checkout.session.expired", self.session_dict(session), now, request)

    def _pay(self, session: Session, outcome: str, now: int, request: RequestInfo, amount: int | None = None,
             card_number: str = TEST_CARD_NUMBER, card_expiry: tuple[int, int] = (12, 2034),
             promotion_code: str | None = None) -> dict:
        if outcome not in OUTCOMES:
            raise SandboxError(400, f"Unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}", param="outcome")
        self.expire_if_due(session, now)
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
        self._choose_amounts(session, amount)
        self._apply_promotion_code(session, promotion_code)
        if session.customer_id is None and (session.mode == "subscription" or session.customer_creation == "always"):
            # Subscription-mode Checkout always creates a customer when none was passed; payment
            # mode only with customer_creation=always (otherwise the buyer stays a guest).
            session.customer_id = self.new_customer(now, request, email=self._buyer_email(session)).id
        if session.mode == "payment":
            return self.pay_once(session, outcome, now, request)
        customer = self.customers[session.customer_id or ""]
        customer.currency = session.currency
        trial_days = self.session_trial_days(session)
        first = self.prices[session.line_items[0].price_id]
        assert first.interval is not None
        sub = Subscription(
            id=new_id("sub"),
            customer_id=customer.id,
            items=[
                Item(id=new_id("si"), price_id=li.price_id, quantity=li.quantity, created=now)
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
            automatic_tax=bool((session.options.get("automatic_tax") or {}).get("enabled")),
        )
        if trial_days:
            sub.trial_start, sub.trial_end = now, now + trial_days * DAY
            sub.anchor, sub.cycle, sub.period_end = sub.trial_end, -1, sub.trial_end
        self.subscriptions[sub.id] = sub
        if outcome == "card" and sub.default_payment_method:
            # Checkout saves the card to the customer before it creates the subscription; the event
            # carries the card's fingerprint (Stripe does not expand the subscription's default card).
            self.emit("payment_method.attached", make_card_payment_method(
                id=sub.default_payment_method, customer=customer.id, created=now, number=card_number,
                exp_month=card_expiry[0], exp_year=card_expiry[1]), now, request)
        # The first invoice's own period is the instant of creation; its line covers the first period.
        invoice = self._new_invoice(sub, "subscription_create", now, now, now, trial=bool(trial_days))
        sub.latest_invoice = invoice.id
        # Checkout creates the subscription `incomplete` and activates it once the first invoice is
        # paid (billing/subscriptions/overview: "incomplete ... pending payment"; the created event
        # may say incomplete, billing/subscriptions/webhooks).
        self.emit("customer.subscription.created", self.subscription_dict(sub), now, request)
        self.emit("invoice.created", self.invoice_dict(invoice), now, request)
        self._finalize(invoice, now, request)
        if trial_days:
            self._mark_paid(invoice, now)
            self._emit_invoice_paid(invoice, now, request)
            session.payment_status = "no_payment_required"
        elif outcome == "card":
            self._mark_paid(invoice, now)
            with self.subscription_change(sub, now, request):
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
        self.emit("checkout.session.completed", self.session_dict(session), now, request)
        return self.session_dict(session)

    def _buyer_email(self, session: Session) -> str:
        return session.customer_email or f"member-{session.id[-8:].lower()}@example.test"

    def _apply_promotion_code(self, session: Session, typed: str | None) -> None:
        """The code the member typed, checked as Checkout does; its discount is kept on the session."""
        if not typed or not typed.strip():
            return
        if not session.allow_promotion_codes:
            raise SandboxError(400, "This Checkout Session does not accept promotion codes.", param="promotion_code")
        if session.mode != "payment":
            raise SandboxError(400, "The local Stripe sandbox applies promotion codes to one-time payments only.",
                               param="promotion_code")
        promo = self.promotion_codes.get(typed.strip().upper())
        if promo is None or (promo.currency is not None and promo.currency != session.currency):
            raise SandboxError(400, "This code is invalid.", code="promotion_code_invalid", param="promotion_code")
        session.promotion_code_id = promo.id
        session.discount = promo.discount(self.session_amount(session))

    def _choose_amounts(self, session: Session, amount: int | None) -> None:
        """Fix the amount of each pay-what-you-want line, within its price's bounds."""
        for line_item in session.line_items:
            bounds = self.prices[line_item.price_id].custom_unit_amount
            if bounds is None:
                continue
            chosen = amount if amount is not None else bounds.get("preset") or bounds.get("minimum")
            if chosen is None:
                raise SandboxError(400, "Enter the amount you want to pay.", param="amount")
            low, high = bounds.get("minimum"), bounds.get("maximum")
            currency = self.prices[line_item.price_id].currency
            if low is not None and chosen < low:
                raise SandboxError(400, f"The amount must be at least {format_amount(low, currency)}.", param="amount")
            if high is not None and chosen > high:
                raise SandboxError(400, f"The amount must be at most {format_amount(high, currency)}.", param="amount")
            line_item.custom_amount = int(chosen)

    def _new_invoice(
        self,
        sub: Subscription,
        billing_reason: str,
        now: int,
        period_start: int,
        period_end: int,
        *,
        trial: bool = False,
        item_lines: bool = True,
        extra_lines: list[Line] | None = None,
    ) -> Invoice:
        lines = []
        for item in sub.items if item_lines else ():
            price = self.prices[item.price_id]
            product = self.products.get(price.product_id)
            lines.append(
                Line(
                    id=new_id("il"),
                    item_id=item.id,
                    price_id=price.id,
                    quantity=item.quantity,
                    period_start=sub.period_start,
                    period_end=sub.period_end,
                    amount=0 if trial else (price.unit_amount or 0) * item.quantity,
                    description=f"Trial period for {product.name if product else price.id}" if trial else None,
                )
            )
        if billing_reason == "subscription_cycle":
            # Prorations from item changes during the period are billed with the next renewal.
            lines += sub.pending_prorations
            sub.pending_prorations = []
        lines += extra_lines or []
        invoice = Invoice(
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
            tax=self._stripe_tax(sub),
        )
        self.invoices[invoice.id] = invoice
        return invoice

    def _stripe_tax(self, sub: Subscription) -> TaxSpec | None:
        """Stripe Tax on a subscription's invoice: one rate for everyone (the sandbox has no addresses,
        so every customer is taxed like one in the account's country), included in or added to the
        first price as its tax_behavior says; none for an unspecified price (Stripe asks for one)."""
        behavior = self.prices[sub.items[0].price_id].tax_behavior if sub.items else "unspecified"
        if not sub.automatic_tax or behavior not in ("inclusive", "exclusive"):
            return None
        return TaxSpec(SANDBOX_TAX_PERCENT, behavior)

    def _finalize(self, invoice: Invoice, now: int, request: RequestInfo = AUTOMATIC) -> None:
        customer = self.customers[invoice.customer_id]
        invoice.status = "open"
        invoice.finalized_at = now
        invoice.number = f"{customer.invoice_prefix}-{customer.next_invoice_sequence:04d}"
        customer.next_invoice_sequence += 1
        self.emit("invoice.finalized", self.invoice_dict(invoice), now, request)

    def _mark_paid(
        self, invoice: Invoice, now: int, *, new_attempt: bool = True, method_type: str = "card"
    ) -> None:
        invoice.status = "paid"
        invoice.amount_paid = invoice.amount_due
        invoice.paid_at = now
        invoice.attempted = True
        if new_attempt:
            invoice.attempt_count += 1
        invoice.next_payment_attempt = None
        if invoice.amount_due:
            invoice.payment_intent = invoice.payment_intent or new_id("pi")
            customer = self.customers[invoice.customer_id]
            # The charge is kept so that it can be refunded or disputed later (see payments.py).
            charge = Charge(
                id=new_id("ch"),
                customer_id=customer.id,
                amount=invoice.amount_due,
                currency=invoice.currency,
                created=now,
                payment_intent_id=invoice.payment_intent,
                payment_method_id=new_id("pm"),
                payment_method_type=method_type,
                invoice_id=invoice.id,
                description=_CHARGE_DESCRIPTIONS.get(invoice.billing_reason, "Subscription update"),
                invoice_payment_id=new_id("inpay"),
            )
            self.charges[charge.id] = charge
            invoice.charge = charge.id
        self.customers[invoice.customer_id].delinquent = False

    def _emit_invoice_paid(self, invoice: Invoice, now: int, request: RequestInfo = AUTOMATIC) -> None:
        # Both are sent for every successful payment; invoice.paid also covers paid out of band.
        self.emit("invoice.paid", self.invoice_dict(invoice), now, request)
        self.emit("invoice.payment_succeeded", self.invoice_dict(invoice), now, request)

    def _fail_attempt(self, invoice: Invoice, now: int) -> None:
        invoice.attempted = True
        invoice.attempt_count += 1
        invoice.payment_intent = invoice.payment_intent or new_id("pi")
        delays = RETRY_DELAYS_DAYS
        invoice.next_payment_attempt = (
            now + delays[invoice.attempt_count - 1] * DAY if invoice.attempt_count <= len(delays) else None
        )
        self.customers[invoice.customer_id].delinquent = True

    def _require_live(self, sub: Subscription) -> None:
        if sub.ended:
            raise SandboxError(
                400, f"Subscription {sub.id} has ended ({sub.status}); it cannot renew.", param="subscription"
            )
        if sub.status == "incomplete":
            raise SandboxError(
                400,
                f"Subscription {sub.id} awaits its first payment: settle its SEPA debit (settle_sepa) first.",
                param="subscription",
            )

    def open_invoice(self, sub: Subscription) -> Invoice | None:
        latest = self.invoices.get(sub.latest_invoice or "")
        return latest if latest is not None and latest.status == "open" else None

    def _roll_period(self, sub: Subscription, now: int) -> Invoice:
        """The period ends: the subscription moves on and its renewal invoice is drafted and finalised.

        Stripe advances the period at rollover whether or not the payment then succeeds
        (billing/subscriptions/overview, "payment failures").
        """
        old_start, old_end = sub.period_start, sub.period_end
        with self.subscription_change(sub, now):
            sub.cycle += 1
            sub.period_start = shift(sub.anchor, sub.cycle * sub.interval_count, sub.interval)
            sub.period_end = shift(sub.anchor, (sub.cycle + 1) * sub.interval_count, sub.interval)
            if sub.status == "trialing":
                sub.status = "active"
            # A cycle invoice's own period is the one that just ended; its lines cover the new one.
            invoice = self._new_invoice(sub, "subscription_cycle", now, old_start, old_end)
            sub.latest_invoice = invoice.id
        self.emit("invoice.created", self.invoice_dict(invoice), now)
        self._finalize(invoice, now)
        return invoice

    def _end(self, sub: Subscription, now: int, request: RequestInfo = AUTOMATIC) -> dict:
        schedule = self.schedule_of(sub)
        if schedule is not None:
            # A subscription canceled under a schedule takes the schedule with it.
            schedule.status, schedule.canceled_at = "canceled", now
            self.emit("subscription_schedule.canceled", self.schedule_dict(schedule), now, request)
        sub.status = "canceled"
        sub.ended_at = now
        sub.canceled_at = sub.canceled_at or now
        sub.cancellation_reason = sub.cancellation_reason or "cancellation_requested"
        # Deleted events carry the final object and no previous_attributes.
        obj = self.subscription_dict(sub)
        self.emit("customer.subscription.deleted", obj, now, request)
        return obj

    def _renew(self, sub: Subscription, now: int) -> dict:
        self._require_live(sub)
        # The control says the charge succeeds: so will the next ones, until told otherwise.
        self.customers[sub.customer_id].payment_method_behaviour = "succeeds"
        if sub.cancel_at_period_end:
            return self._end(sub, now)
        open_invoice = self.open_invoice(sub)
        if sub.status == "past_due" and open_invoice is not None:
            # A successful retry pays the invoice that failed; the period already moved on.
            return self._pay_open_invoice(sub, open_invoice, now)
        # A schedule's phase starting at this period end changes the price before the renewal bills it.
        self.advance_schedule(sub, now)
        invoice = self._roll_period(sub, now)
        if sub.pause_collection:
            # Collection paused (void): the period moves on, its invoice is voided, no charge.
            self._void_paused(invoice, now)
            return self.subscription_dict(sub)
        self._mark_paid(invoice, now)
        self._emit_invoice_paid(invoice, now)
        if sub.status != "active":
            with self.subscription_change(sub, now):
                sub.status = "active"
        return self.subscription_dict(sub)

    def _pay_open_invoice(
        self, sub: Subscription, invoice: Invoice, now: int, request: RequestInfo = AUTOMATIC, *, new_card: bool = False
    ) -> dict:
        self._mark_paid(invoice, now)
        self._emit_invoice_paid(invoice, now, request)
        # One update carries both changes: a separate past_due snapshot with the new card in the
        # same second would tie with the active one (and Membergate ranks past_due higher on ties).
        with self.subscription_change(sub, now, request):
            sub.status = "active"
            if new_card:
                sub.default_payment_method = new_id("pm")
                self.customers[sub.customer_id].payment_method_behaviour = "succeeds"
        return self.subscription_dict(sub)

    def _portal_action(
        self, portal: PortalSession, subscription_id: str, action: str, now: int, request: RequestInfo
    ) -> dict:
        if action not in PORTAL_ACTIONS:
            raise SandboxError(
                400, f"Unknown portal action {action!r}: use one of {', '.join(PORTAL_ACTIONS)}", param="action"
            )
        sub = self.subscriptions.get(subscription_id)
        if sub is None or sub.customer_id != portal.customer_id:
            # The portal only ever shows the session's own customer's subscriptions.
            raise no_such("subscription", subscription_id)
        if action == "pay":
            invoice = self.open_invoice(sub) if sub.status == "past_due" else None
            if invoice is None:
                raise SandboxError(400, f"Subscription {sub.id} has no failed payment to pay.", param="subscription")
            return self._pay_open_invoice(sub, invoice, now, request, new_card=True)
        self.cancel_subscription(sub, action == "cancel_at_period_end", now, request)
        return self.subscription_dict(sub)

    def _fail_renewal(self, sub: Subscription, now: int) -> dict:
        self._require_live(sub)
        # The card now declines: the automatic retries that follow (advance_clock) fail too.
        self.customers[sub.customer_id].payment_method_behaviour = "declines"
        if sub.cancel_at_period_end:
            return self._end(sub, now)
        invoice = self.open_invoice(sub) if sub.status == "past_due" else None
        if invoice is None:
            invoice = self._roll_period(sub, now)
        self._fail_attempt(invoice, now)
        self.emit("invoice.payment_failed", self.invoice_dict(invoice), now)
        with self.subscription_change(sub, now):
            sub.status = "past_due"
        return self.subscription_dict(sub)

    def _action_required(self, sub: Subscription, now: int) -> dict:
        self._require_live(sub)
        self.customers[sub.customer_id].payment_method_behaviour = "requires_action"
        if sub.cancel_at_period_end:
            raise SandboxError(400, f"Subscription {sub.id} ends at period end: there is no renewal to authenticate.")
        invoice = self.open_invoice(sub) if sub.status == "past_due" else None
        if invoice is None:
            invoice = self._roll_period(sub, now)
        # An off-session charge that needs 3DS fails with the PaymentIntent in requires_action:
        # Stripe sends invoice.payment_failed and invoice.payment_action_required, and the
        # subscription goes past_due (billing/subscriptions/webhooks, billing/migration/strong-customer-authentication).
        self._fail_attempt(invoice, now)
        self.emit("invoice.payment_failed", self.invoice_dict(invoice), now)
        self.emit("invoice.payment_action_required", self.invoice_dict(invoice), now)
        with self.subscription_change(sub, now):
            sub.status = "past_due"
        return self.invoice_dict(invoice)

    def _settle_sepa(self, session: Session, succeed: bool, now: int) -> dict:
        if not session.awaiting_async_payment:
            raise SandboxError(400, f"Checkout Session {session.id} has no delayed payment to settle.", param="session")
        if session.mode == "payment":
            return self.settle_once(session, succeed, now)
        sub = self.subscriptions[session.subscription_id or ""]
        invoice = self.invoices[session.invoice_id or ""]
        session.awaiting_async_payment = False
        if succeed:
            self._mark_paid(invoice, now, new_attempt=False, method_type="sepa_debit")
            self._emit_invoice_paid(invoice, now)
            if sub.status == "incomplete":
                with self.subscription_change(sub, now):
                    sub.status = "active"
            session.payment_status = "paid"
            self.emit("checkout.session.async_payment_succeeded", self.session_dict(session), now)
        else:
            invoice.next_payment_attempt = None
            self.customers[invoice.customer_id].delinquent = True
            self.emit("invoice.payment_failed", self.invoice_dict(invoice), now)
            self.emit("checkout.session.async_payment_failed", self.session_dict(session), now)
            if sub.status == "incomplete":
                # Stripe waits up to 23 h before expiring an incomplete subscription and voiding its
                # first invoice (billing/subscriptions/overview); the sandbox does it at once.
                with self.subscription_change(sub, now):
                    sub.status = "incomplete_expired"
                    sub.ended_at = now
                invoice.status, invoice.voided_at = "void", now
                self.emit("invoice.voided", self.invoice_dict(invoice), now)
        return self.session_dict(session)

    def cancel_subscription(
        self,
        sub: Subscription,
        at_period_end: bool,
        now: int,
        request: RequestInfo,
        comment: str | None = None,
        feedback: str | None = None,
    ) -> dict:
        if sub.ended:
            # Stripe treats a canceled subscription as gone for cancellation: 404 resource_missing
            # ("No such subscription"), which is what stripe-go's maintainers describe (issue 1887).
            raise no_such("subscription", sub.id)
        if at_period_end:
            self.refuse_if_scheduled(sub)
            with self.subscription_change(sub, now, request):
                self.schedule_cancellation(sub, now, comment, feedback)
            return self.subscription_dict(sub)
        sub.cancellation_comment = comment or sub.cancellation_comment
        sub.cancellation_feedback = feedback or sub.cancellation_feedback
        return self._end(sub, now, request)

    def schedule_cancellation(self, sub: Subscription, now: int, comment: str | None, feedback: str | None) -> None:
        if not sub.cancel_at_period_end:
            sub.cancel_at_period_end = True
            sub.cancel_at = sub.period_end
            sub.canceled_at = now
            sub.cancellation_reason = "cancellation_requested"
        sub.cancellation_comment = comment or sub.cancellation_comment
        sub.cancellation_feedback = feedback or sub.cancellation_feedback


def _lane(event: dict) -> str:
    """The customer an event is about (its lane: delivered in order among themselves), or ""."""
    obj = event.get("data", {}).get("object", {})
    customer = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) else ""


DEFAULT_CARD_EXPIRY = (12, 2034)


def _card_expiry(typed: str | None) -> tuple[int, int]:
    """The card's expiry typed on the pay page as ``MM/YY`` (or ``MM/YYYY``); 12/2034 when none is."""
    if typed is None or not typed.strip():
        return DEFAULT_CARD_EXPIRY
    month, _, year = typed.strip().partition("/")
    if not (month.isascii() and month.isdigit() and year.isascii() and year.isdigit() and len(year) in (2, 4)
            and 1 <= int(month) <= 12):
        raise SandboxError(402, "Your card's expiration date is incomplete.", type="card_error",
                           code="invalid_expiry_month", param="card_expiry")
    return int(month), int(year) + (2000 if len(year) == 2 else 0)


def _card_number(typed: str | None) -> str:
    """The digits of the card number typed on the pay page (spaces allowed), 4242… when none is."""
    if typed is None or not typed.strip():
        return TEST_CARD_NUMBER
    digits = typed.replace(" ", "")
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19):
        raise SandboxError(402, "Your card number is incorrect.", type="card_error", code="incorrect_number",
                           param="card_number")
    return digits
