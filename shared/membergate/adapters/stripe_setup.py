"""StripeSetupApi: products, prices, webhook endpoints and portal configurations via the Stripe SDK, for `membergate init` and `doctor`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import stripe

from ..domain.errors import PermanentError
from ..ports import SetupEndpoint, SetupPrice

_T = TypeVar("_T")

# What a restricted key needs for each call (Dashboard → Developers → API keys → restricted key).
PERMISSIONS = {
    "products": "Products: Write",
    "prices": "Prices: Write",
    "webhook_endpoints": "Webhook Endpoints: Write",
    "portal": "Customer portal: Write",
}


class StripeSetupApi:
    def __init__(self, client: stripe.StripeClient, api_version: str = stripe.api_version):
        self._client = client
        # The SDK sends its pinned version; endpoints are registered with the same (stripe_billing.py).
        self.api_version = api_version

    @classmethod
    def build(cls, api_key: str, api_base: str, http_client: Any = None) -> StripeSetupApi:
        return cls(stripe.StripeClient(api_key, base_addresses={"api": api_base}, max_network_retries=2,
                                       http_client=http_client))

    def price_by_lookup_key(self, lookup_key: str) -> SetupPrice | None:
        found = self._call("prices", lambda: self._client.v1.prices.list({"lookup_keys": [lookup_key], "limit": 1}))
        return _price(found.data[0]) if found.data else None

    def product_by_metadata(self, key: str, value: str) -> str | None:
        def find() -> str | None:
            for product in self._client.v1.products.list({"limit": 100, "active": True}).auto_paging_iter():
                if _dict(product).get("metadata", {}).get(key) == value:
                    return str(product.id)
            return None

        return self._call("products", find)

    def create_product(self, name: str, metadata: dict[str, str], idempotency_key: str) -> str:
        product = self._call("products", lambda: self._client.v1.products.create(
            {"name": name, "metadata": metadata}, {"idempotency_key": idempotency_key}))
        return str(product.id)

    def create_price(self, product_id: str, unit_amount: int, currency: str, interval: str, lookup_key: str,
                     idempotency_key: str) -> SetupPrice:
        price = self._call("prices", lambda: self._client.v1.prices.create(
            {"product": product_id, "unit_amount": unit_amount, "currency": currency,
             "recurring": {"interval": interval}, "lookup_key": lookup_key, "transfer_lookup_key": True},
            {"idempotency_key": idempotency_key}))
        return _price(price)

    def webhook_endpoints(self) -> list[SetupEndpoint]:
        return self._call("webhook_endpoints", lambda: [
            _endpoint(e) for e in self._client.v1.webhook_endpoints.list({"limit": 100}).auto_paging_iter()])

    def create_webhook_endpoint(self, url: str, events: Sequence[str], api_version: str) -> tuple[SetupEndpoint, str]:
        made = self._call("webhook_endpoints", lambda: self._client.v1.webhook_endpoints.create(
            {"url": url, "enabled_events": list(events), "api_version": api_version,
             "description": "Membergate (membergate init)"}))
        return _endpoint(made), str(made.secret)

    def update_webhook_endpoint(self, endpoint_id: str, events: Sequence[str]) -> SetupEndpoint:
        return _endpoint(self._call("webhook_endpoints", lambda: self._client.v1.webhook_endpoints.update(
            endpoint_id, {"enabled_events": list(events), "disabled": False})))

    def portal_configuration_by_metadata(self, key: str, value: str | None) -> str | None:
        def find() -> str | None:
            listed = self._client.v1.billing_portal.configurations.list({"limit": 100, "active": True})
            for configuration in listed.auto_paging_iter():
                found = _dict(configuration).get("metadata", {}).get(key)
                if found is not None and (value is None or found == value):
                    return str(configuration.id)
            return None

        return self._call("portal", find)

    def create_portal_configuration(self, product_id: str, price_ids: Sequence[str], headline: str,
                                    metadata: dict[str, str]) -> str:
        params: dict[str, Any] = {
            "business_profile": {"headline": headline},
            "features": {
                "subscription_cancel": {"enabled": True, "mode": "at_period_end", "proration_behavior": "none"},
                "payment_method_update": {"enabled": True},
                "invoice_history": {"enabled": True},
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "products": [{"product": product_id, "prices": list(price_ids)}],
                    "proration_behavior": "create_prorations",
                },
            },
            "metadata": metadata,
        }
        made = self._call("portal", lambda: self._client.v1.billing_portal.configurations.create(params))
        return str(made.id)

    @staticmethod
    def _call(area: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except stripe.PermissionError:
            raise PermanentError(
                f"the Stripe key lacks the permission {PERMISSIONS[area]}: grant it to the restricted key "
                "(Dashboard → Developers → API keys → Edit) or run init with a secret key (sk_...)",
                "stripe_permission") from None
        except stripe.AuthenticationError:
            raise PermanentError("Stripe refused the key: copy a current secret or restricted key from "
                                 "Dashboard → Developers → API keys", "stripe_key_refused") from None
        except stripe.APIConnectionError:
            raise PermanentError("cannot reach Stripe: check your connection (or --stripe-api-base), then re-run; "
                                 "nothing made so far is made twice", "stripe_unreachable") from None
        except stripe.StripeError as error:
            message = getattr(error, "user_message", None) or str(error) or type(error).__name__
            raise PermanentError(f"Stripe refused a setup call ({message}); fix it and re-run", "stripe_refused") from None


def _dict(obj: Any) -> dict[str, Any]:
    # The SDK's objects are not dicts (their .get raises): read their data as one.
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _price(obj: Any) -> SetupPrice:
    price = _dict(obj)
    recurring = price.get("recurring") or {}
    return SetupPrice(id=str(price["id"]), product_id=str(price["product"]), unit_amount=price.get("unit_amount"),
                      currency=str(price["currency"]), interval=recurring.get("interval"))


def _endpoint(obj: Any) -> SetupEndpoint:
    endpoint = _dict(obj)
    return SetupEndpoint(id=str(endpoint["id"]), url=str(endpoint["url"]),
                         enabled_events=tuple(endpoint.get("enabled_events") or ()),
                         api_version=endpoint.get("api_version"), status=str(endpoint.get("status") or "enabled"))
