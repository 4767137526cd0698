"""StripeBillingGateway: customers, Checkout Sessions, cancellations and the customer portal via the Stripe SDK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import stripe

from ..domain.errors import PermanentError, RetryableError
from ..domain.stripe_events import MEMBER_METADATA_KEY, PLAN_METADATA_KEY, customer_id_of, invoice_subscription_id, read_back_snapshot
from ..domain.billing import PriceInfo, SubscriptionSnapshot
from ..domain.reconcile import StripeEvent, StripeSubscription
from ..domain.checkout_terms import CheckoutTerms
from ..domain.consent import ACCEPTED, WAIVER_METADATA_KEY
from ..ports import CheckoutSession, PaidInvoice, ScheduledChange


class StripeBillingGateway:
    def __init__(self, client: stripe.StripeClient, portal_configuration: str = ""):
        self._client = client
        # `membergate init`'s portal configuration (empty: the account's default one).
        self._portal_configuration = portal_configuration
        # A price's amount, currency and interval never change at Stripe: one fetch per container.
        self._prices: dict[str, PriceInfo] = {}

    @classmethod
    def build(
        cls, api_key: str, api_base: str, http_client: Any = None, portal_configuration: str = ""
    ) -> StripeBillingGateway:
        # The SDK pins its own API version; the webhook endpoint must be registered with the same.
        return cls(
            stripe.StripeClient(
                api_key,
                base_addresses={"api": api_base},
                max_network_retries=2,
                http_client=http_client,
            ),
            portal_configuration,
        )

    def create_customer(self, member_id: str, idempotency_key: str) -> str:
        customer = self._call(
            self._client.v1.customers.create,
            {"metadata": {MEMBER_METADATA_KEY: member_id}},
            {"idempotency_key": idempotency_key},
        )
        return customer.id

    def create_checkout_session(
        self,
        *,
        customer_id: str,
        member_id: str,
        plan_id: str,
        price_ids: Sequence[str],
        success_url: str,
        cancel_url: str,
        expires_at: int,
        idempotency_key: str,
        mode: str = "subscription",
        terms: CheckoutTerms | None = None,
        trial_days: int | None = None,
    ) -> CheckoutSession:
        metadata = {MEMBER_METADATA_KEY: member_id, PLAN_METADATA_KEY: plan_id}
        # The session's own metadata only: the completed event carries it to the recorded consent.
        session_metadata = {**metadata, WAIVER_METADATA_KEY: ACCEPTED} if terms is not None and terms.page_waiver else metadata
        params: dict[str, Any] = {
            "mode": mode,
            "customer": customer_id,
            "client_reference_id": member_id,
            "line_items": [{"price": price_id, "quantity": 1} for price_id in price_ids],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": expires_at,
            "metadata": session_metadata,
            "allow_promotion_codes": True,
        }
        if mode == "subscription":
            # Session metadata is not copied to the subscription: this is what events carry.
            params["subscription_data"] = {"metadata": metadata}
            if trial_days:
                params["subscription_data"]["trial_period_days"] = trial_days
        else:
            # A one-time payment: the PaymentIntent carries the member too (refunds, disputes), and
            # an invoice gives the member a receipt.
            params["payment_intent_data"] = {"metadata": metadata}
            params["invoice_creation"] = {"enabled": True}
        if terms is not None:
            params.update(checkout_term_params(terms))
        session = self._call(self._client.v1.checkout.sessions.create, params, {"idempotency_key": idempotency_key})
        return CheckoutSession(id=session.id, url=session.url, expires_at=int(session.expires_at))

    def end_trial(self, subscription_id: str, idempotency_key: str) -> None:
        """A trial given to a card that already had one ends now (Stripe invoices from today)."""
        try:
            self._client.v1.subscriptions.update(subscription_id, {"trial_end": "now"}, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from None

    def set_collection_paused(self, subscription_id: str, paused: bool, idempotency_key: str) -> dict[str, Any] | None:
        """pause_collection {behavior: void} (Stripe voids the invoices, charges nothing) or "" to resume."""
        try:
            subscription = self._client.v1.subscriptions.update(
                subscription_id, {"pause_collection": {"behavior": "void"} if paused else ""},
                {"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return None  # deleted at Stripe: nothing left to bill
            raise _translate(exc) from None
        except stripe.StripeError as exc:
            raise _translate(exc) from None
        return subscription.to_dict()

    def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> None:
        try:
            self._client.v1.subscriptions.cancel(
                subscription_id, {"prorate": False}, {"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as exc:
            # Stripe answers resource_missing for a subscription already cancelled: what we wanted.
            # (It would also hide a key for another account; the key is checked by checkout.)
            if exc.code == "resource_missing":
                return
            raise _translate(exc) from None
        except stripe.StripeError as exc:
            raise _translate(exc) from None

    def switch_subscription_price(
        self, *, subscription_id: str, price_id: str, member_id: str, plan_id: str, idempotency_key: str
    ) -> None:
        subscription = self._call(self._client.v1.subscriptions.retrieve, subscription_id, {})
        items = subscription.to_dict().get("items", {}).get("data", [])
        if not items:
            raise PermanentError(f"Stripe subscription {subscription_id} has no item to switch", "stripe_no_item")
        params = {
            # Membergate's subscriptions have one item: the tier's price replaces it, prorated.
            "items": [{"id": items[0]["id"], "price": price_id, "quantity": 1}],
            "proration_behavior": "create_prorations",
            # Changing tier means staying: a pending cancellation would end the new tier too.
            "cancel_at_period_end": False,
            "metadata": {MEMBER_METADATA_KEY: member_id, PLAN_METADATA_KEY: plan_id},
        }
        self._call(
            lambda p, o: self._client.v1.subscriptions.update(subscription_id, p, o),
            params,
            {"idempotency_key": idempotency_key},
        )

    def schedule_price_change(
        self, *, subscription_id: str, price_id: str, member_id: str, plan_id: str, idempotency_key: str
    ) -> ScheduledChange:
        """Stripe's "downgrade at period end" (billing/subscriptions/subscription-schedules): a schedule
        made from the subscription (or the one it already has), then two phases: what it has now until
        the current period end, then the new price, with no proration; released after that phase."""
        subscription = self._call(self._client.v1.subscriptions.retrieve, subscription_id, {}).to_dict()
        schedule_id = _ref(subscription.get("schedule"))
        if schedule_id:
            schedule = self._call(self._client.v1.subscription_schedules.retrieve, schedule_id, {}).to_dict()
        else:
            # Keyed: a retry after a crash gets the schedule the first call made.
            schedule = self._call(self._client.v1.subscription_schedules.create,
                                  {"from_subscription": subscription_id},
                                  {"idempotency_key": f"{idempotency_key}-schedule"}).to_dict()
        phases = schedule.get("phases") or []
        started = (schedule.get("current_phase") or {}).get("start_date")
        current = next((p for p in phases if p.get("start_date") == started), phases[0] if phases else None)
        if current is None:
            raise PermanentError(f"Stripe schedule {schedule['id']} has no current phase", "stripe_no_phase")
        params = {
            "end_behavior": "release",
            "phases": [
                {"items": [{"price": _ref(i.get("price")), "quantity": i.get("quantity") or 1} for i in current["items"]],
                 "start_date": current["start_date"], "end_date": current["end_date"], "proration_behavior": "none"},
                # Stripe sets a phase's metadata on the subscription when the phase starts.
                {"items": [{"price": price_id, "quantity": 1}], "proration_behavior": "none",
                 "metadata": {MEMBER_METADATA_KEY: member_id, PLAN_METADATA_KEY: plan_id}},
            ],
        }
        self._call(lambda p, o: self._client.v1.subscription_schedules.update(schedule["id"], p, o), params,
                   {"idempotency_key": f"{idempotency_key}-phases"})
        return ScheduledChange(schedule["id"], int(current["end_date"]))

    def release_schedule(self, *, subscription_id: str, idempotency_key: str) -> None:
        subscription = self._call(self._client.v1.subscriptions.retrieve, subscription_id, {}).to_dict()
        schedule_id = _ref(subscription.get("schedule"))
        if not schedule_id:
            return  # nothing scheduled (released already, or never made): what was wanted
        self._call(lambda p, o: self._client.v1.subscription_schedules.release(schedule_id, p, o), {},
                   {"idempotency_key": idempotency_key})

    def expire_checkout_session(self, session_id: str) -> str:
        session = self._call(self._client.v1.checkout.sessions.retrieve, session_id, {})
        if session.status != "open":
            return str(session.status)
        expired = self._call(lambda p, o: self._client.v1.checkout.sessions.expire(session_id, p, o), {}, {})
        return str(expired.status)

    def create_portal_session(self, customer_id: str, return_url: str) -> str:
        # No idempotency key: each visit needs a fresh session (they are short-lived), and the SDK
        # adds its own key to its network retries.
        params = {"customer": customer_id, "return_url": return_url}
        if self._portal_configuration:
            params["configuration"] = self._portal_configuration
        session = self._call(self._client.v1.billing_portal.sessions.create, params, {})
        return session.url

    def invoice_paid_by(self, payment_intent: str) -> PaidInvoice | None:
        """Charges and PaymentIntents no longer name their invoice (API 2025-03-31): the
        InvoicePayment does (``GET /v1/invoice_payments?payment[payment_intent]=``), then the
        invoice names its subscription (``parent.subscription_details``, or top-level before)."""
        page = self._call(
            self._client.v1.invoice_payments.list,
            {"payment": {"type": "payment_intent", "payment_intent": payment_intent}, "limit": 1},
            {},
        )
        found = [p.to_dict() for p in page.data]
        if not found:
            return None
        invoice = found[0].get("invoice")
        invoice_id = invoice.get("id") if isinstance(invoice, dict) else invoice
        if not isinstance(invoice_id, str) or not invoice_id:
            return None
        inv = self._call(lambda p, o: self._client.v1.invoices.retrieve(invoice_id, p, o), {}, {}).to_dict()
        return PaidInvoice(invoice_id, invoice_subscription_id(inv), customer_id_of(inv))

    def fetch_subscription(self, subscription_id: str, read_at: int) -> SubscriptionSnapshot | None:
        try:
            subscription = self._client.v1.subscriptions.retrieve(subscription_id)
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return None
            raise _translate(exc) from None
        except stripe.StripeError as exc:
            raise _translate(exc) from None
        return read_back_snapshot(subscription.to_dict(), read_at)

    def describe_prices(self, price_ids: Sequence[str]) -> list[PriceInfo]:
        found = []
        for price_id in price_ids:
            if price_id not in self._prices:
                try:
                    price = self._client.v1.prices.retrieve(price_id)
                except stripe.InvalidRequestError as exc:
                    if exc.code == "resource_missing":
                        continue  # not cached: a price registered later shows on the next page
                    raise _translate(exc) from None
                except stripe.StripeError as exc:
                    raise _translate(exc) from None
                self._prices[price_id] = price_info(price.to_dict())
            found.append(self._prices[price_id])
        return found

    def list_subscriptions(
        self, created_gte: int, starting_after: str | None, limit: int = 100
    ) -> tuple[list[StripeSubscription], bool]:
        """One page of every subscription (any status) created at or after ``created_gte``, newest first."""
        params: dict[str, Any] = {"status": "all", "created": {"gte": created_gte}, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = self._call(self._client.v1.subscriptions.list, params, {})
        return [_listed_subscription(s) for s in (item.to_dict() for item in page.data)], bool(page.has_more)

    def list_live_subscriptions(
        self, starting_after: str | None, limit: int = 100
    ) -> tuple[list[StripeSubscription], bool]:
        """One page of every subscription not ended (Stripe's default: no ``status``), newest first."""
        params: dict[str, Any] = {"limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = self._call(self._client.v1.subscriptions.list, params, {})
        return [_listed_subscription(s) for s in (item.to_dict() for item in page.data)], bool(page.has_more)

    def list_undelivered_events(
        self, created_gte: int, starting_after: str | None, limit: int = 100
    ) -> tuple[list[StripeEvent], bool]:
        """One page of the events Stripe could not deliver to a webhook endpoint (the last 30 days at most)."""
        params: dict[str, Any] = {"delivery_success": False, "created": {"gte": created_gte}, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = self._call(self._client.v1.events.list, params, {})
        found = [
            StripeEvent(str(e.get("id")), str(e.get("type") or ""), int(e.get("created") or 0),
                        int(e.get("pending_webhooks") or 0))
            for e in (item.to_dict() for item in page.data)
        ]
        return found, bool(page.has_more)

    def _call(self, method: Any, params: Any, options: dict) -> Any:
        try:
            return method(params, options)
        except stripe.StripeError as exc:
            raise _translate(exc) from None


def _translate(exc: stripe.StripeError) -> Exception:
    if isinstance(exc, (stripe.RateLimitError, stripe.APIConnectionError)):
        return RetryableError(f"Stripe is unreachable or rate-limiting: {type(exc).__name__}")
    if isinstance(exc, stripe.AuthenticationError):
        return PermanentError(
            "Stripe rejected the API key: store a valid restricted key (rk_...) in the secret named by STRIPE_API_KEY_NAME",
            "stripe_auth",
        )
    if isinstance(exc, stripe.PermissionError):
        return PermanentError(
            "the Stripe key lacks a permission: give the restricted key write access to Customers, "
            "Checkout Sessions, Subscriptions and Customer portal (see docs/deploy.md)",
            "stripe_permission",
        )
    status = getattr(exc, "http_status", None) or 0
    if status >= 500 or status == 409:
        return RetryableError(f"Stripe failed ({status}); will retry")
    return PermanentError(f"Stripe refused the request: {exc.user_message or exc}", f"stripe_{exc.code or 'invalid_request'}")


def _id_of(value: Any) -> str:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def checkout_term_params(terms: CheckoutTerms) -> dict[str, Any]:
    """The Checkout Session parameters for ``terms``, as Stripe's API (2023-08-16 spec) names them."""
    params: dict[str, Any] = {
        "allow_promotion_codes": terms.allow_promotion_codes,
        "locale": terms.locale,
        "custom_text": {"submit": {"message": terms.submit_message}},
    }
    if terms.terms_of_service:
        # Stripe shows the terms URL set in the Dashboard (Settings → Public details) beside a checkbox.
        params["consent_collection"] = {"terms_of_service": "required"}
    if terms.automatic_tax:
        params["automatic_tax"] = {"enabled": True}
        # Stripe Tax needs the customer's address; Checkout collects it and saves it on the customer.
        params["customer_update"] = {"address": "auto", "name": "auto"}
        params["billing_address_collection"] = "required"
    if terms.phone_number_collection:
        params["phone_number_collection"] = {"enabled": True}
    return params


def price_info(price: dict) -> PriceInfo:
    """A Stripe price object as the join page needs it."""
    recurring = price.get("recurring") or {}
    return PriceInfo(
        id=price["id"],
        amount=price.get("unit_amount"),
        currency=str(price.get("currency") or "").lower(),
        type="recurring" if recurring else "one_time",
        interval=recurring.get("interval"),
        interval_count=int(recurring.get("interval_count") or 1),
        trial_days=recurring.get("trial_period_days"),
        nickname=price.get("nickname") or None,
        minimum=_custom_minimum(price),
        active=bool(price.get("active", True)),
    )


def _custom_minimum(price: dict) -> int | None:
    """Pay what you want: the least the member may pay (custom_unit_amount.minimum), when set."""
    custom = price.get("custom_unit_amount") or {}
    minimum = custom.get("minimum") if isinstance(custom, dict) else None
    return minimum if isinstance(minimum, int) and not isinstance(minimum, bool) else None


def _listed_subscription(s: dict[str, Any]) -> StripeSubscription:
    items = (s.get("items") or {}).get("data") or []
    prices = tuple(_id_of(i.get("price")) for i in items if isinstance(i, dict) and i.get("price"))
    return StripeSubscription(str(s.get("id")), _id_of(s.get("customer")), str(s.get("status") or ""),
                              int(s.get("created") or 0), prices)


def _ref(value: Any) -> str | None:
    """An id, whether Stripe sent it as a string or expanded the object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
