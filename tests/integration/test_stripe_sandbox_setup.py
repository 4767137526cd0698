"""The sandbox's setup objects through the real stripe SDK: products, price lists, webhook endpoints, portal configurations."""

from __future__ import annotations

import json
from functools import lru_cache

import pytest
import stripe
from werkzeug.test import Client

from infra.local.stripe_sandbox import StripeSandbox, WsgiStripeHttpClient
from membergate.domain.stripe_events import HANDLED_EVENT_TYPES
from tests.support.specs import missing_spec, specs_dir, stripe_openapi

pytestmark = pytest.mark.integration

BASE = "http://127.0.0.1:3000/_local/stripe"
T0 = 1_800_000_000
HOOK = "https://hooks.example.com/webhooks/stripe"


@pytest.fixture
def sandbox() -> StripeSandbox:
    return StripeSandbox(lambda: T0, lambda event: None, BASE)


@pytest.fixture
def client(sandbox: StripeSandbox) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_local", base_addresses={"api": BASE}, http_client=WsgiStripeHttpClient(sandbox.wsgi_app, BASE)
    )


def raw(sandbox: StripeSandbox, method: str, path: str, data: str | None = None, key: str = "sk_test_local"):
    response = Client(sandbox.wsgi_app).open(
        path, method=method, data=data, headers={"Authorization": f"Bearer {key}"},
        content_type="application/x-www-form-urlencoded",
    )
    return response.status_code, json.loads(response.get_data())


@lru_cache(maxsize=1)
def _spec_schemas() -> dict | None:
    if not (specs_dir() / "stripe" / "spec3.yaml").exists():
        return None
    return stripe_openapi("Stripe's schemas cannot be checked")["components"]["schemas"]


def spec_schema(name: str) -> dict:
    """A schema of Stripe's OpenAPI spec; skips (fails under CI) when the specs are absent."""
    schemas = _spec_schemas()
    if schemas is None:
        missing_spec(f"no Stripe OpenAPI spec under {specs_dir()}")
    assert schemas is not None
    return schemas[name]


# --- products and prices ----------------------------------------------------------------------------


def test_products_create_with_metadata_listed_newest_first_and_read_back(client) -> None:
    # Given two products
    first = client.v1.products.create({"name": "Gold", "metadata": {"membergate_plan": "gold"}})
    second = client.v1.products.create({"name": "Silver"})
    # When they are listed and one is read back
    listed = client.v1.products.list({"limit": 10})
    fetched = client.v1.products.retrieve(first.id)
    # Then the list is newest first and the metadata is kept
    assert [p.id for p in listed.data] == [second.id, first.id]
    assert fetched.metadata.to_dict() == {"membergate_plan": "gold"} and fetched.name == "Gold"


def test_prices_list_filters_by_product_active_and_lookup_key(client) -> None:
    # Given a product with an active and an inactive price, and another product's price
    gold = client.v1.products.create({"name": "Gold"})
    monthly = client.v1.prices.create({"product": gold.id, "currency": "eur", "unit_amount": 900,
                                       "recurring": {"interval": "month"}, "lookup_key": "membergate:gold"})
    client.v1.prices.create({"product": gold.id, "currency": "eur", "unit_amount": 9000,
                             "recurring": {"interval": "year"}, "active": False})
    client.v1.prices.create({"product_data": {"name": "Other", "metadata": {"k": "v"}}, "currency": "eur",
                             "unit_amount": 100})
    # When prices are listed with filters
    by_product = client.v1.prices.list({"product": gold.id, "active": True})
    by_key = client.v1.prices.list({"lookup_keys": ["membergate:gold"]})
    # Then only the matching prices come back, with their lookup key
    assert [p.id for p in by_product.data] == [monthly.id]
    assert [p.id for p in by_key.data] == [monthly.id] and by_key.data[0].lookup_key == "membergate:gold"


def test_prices_create_taken_lookup_key_refused_unless_transferred(client) -> None:
    # Given a price holding a lookup key
    first = client.v1.prices.create({"product_data": {"name": "Gold"}, "currency": "eur", "unit_amount": 900,
                                     "lookup_key": "membergate:gold"})
    params = {"product": first.product, "currency": "eur", "unit_amount": 1000, "lookup_key": "membergate:gold"}
    # When a second price asks for it, then with transfer_lookup_key
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.prices.create(params)
    moved = client.v1.prices.create({**params, "transfer_lookup_key": True})
    # Then the first is refused and the transfer moves the key
    assert refused.value.param == "lookup_key"
    assert client.v1.prices.retrieve(first.id).lookup_key is None and moved.lookup_key == "membergate:gold"


def test_products_create_without_name_is_refused_with_the_param(sandbox) -> None:
    # Given / When a product without a name, and one with an unknown param
    missing = raw(sandbox, "POST", "/v1/products", "metadata[a]=b")
    unknown = raw(sandbox, "POST", "/v1/products", "name=x&shippable_x=1")
    # Then both are 400s naming the param
    assert missing[0] == 400 and missing[1]["error"]["param"] == "name"
    assert unknown[0] == 400 and unknown[1]["error"]["code"] == "parameter_unknown"


# --- webhook endpoints --------------------------------------------------------------------------------


def test_webhook_endpoints_secret_shown_on_create_only(client) -> None:
    # Given an endpoint registered with the handled events and the SDK's pinned version
    events = sorted(HANDLED_EVENT_TYPES)
    created = client.v1.webhook_endpoints.create(
        {"url": HOOK, "enabled_events": events, "api_version": stripe.api_version}
    )
    # When it is read back and listed
    fetched = client.v1.webhook_endpoints.retrieve(created.id)
    listed = client.v1.webhook_endpoints.list()
    # Then the secret came with the create answer only, and the rest is as registered
    assert created.secret.startswith("whsec_") and "secret" not in fetched
    assert fetched.enabled_events == events and fetched.api_version == stripe.api_version
    assert fetched.status == "enabled" and fetched.url == HOOK
    assert [e.id for e in listed.data] == [created.id]


def test_webhook_endpoints_update_events_disable_and_delete(client) -> None:
    # Given an endpoint
    created = client.v1.webhook_endpoints.create({"url": HOOK, "enabled_events": ["invoice.paid"]})
    # When its events change, it is disabled, then deleted
    updated = client.v1.webhook_endpoints.update(
        created.id, {"enabled_events": ["invoice.paid", "customer.deleted"], "disabled": True}
    )
    deleted = client.v1.webhook_endpoints.delete(created.id)
    # Then each answer shows it, and it is gone
    assert updated.enabled_events == ["invoice.paid", "customer.deleted"] and updated.status == "disabled"
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.webhook_endpoints.retrieve(created.id)
    assert gone.value.http_status == 404


@pytest.mark.parametrize(
    "body, param",
    [
        ("enabled_events[]=invoice.paid", "url"),
        ("url=ftp%3A%2F%2Fx&enabled_events[]=invoice.paid", "url"),
        ("url=https%3A%2F%2Fh%C3%A9.example%2Fx%0D%0A&enabled_events[]=invoice.paid", "url"),
        ("url=http%3A%2F%2F%5Bbad&enabled_events[]=invoice.paid", "url"),
        (f"url={HOOK}", "enabled_events"),
        (f"url={HOOK}&enabled_events[]=not+an+event", "enabled_events[0]"),
        (f"url={HOOK}&enabled_events[]=invoice.paid&api_version=yesterday", "api_version"),
        (f"url={HOOK}&enabled_events[a][b]=c", "enabled_events"),
        (f"url={HOOK}&enabled_events[]=invoice.paid&description=" + "a" * 5001, "description"),
        (f"url={HOOK}&enabled_events" + "[a]" * 500 + "=x", ("enabled_events" + "[a]" * 500)[:80]),
    ],
)
def test_webhook_endpoints_create_hostile_input_is_a_400_naming_the_param(sandbox, body, param) -> None:
    # Given / When a create with a bad url, events or version
    status, answer = raw(sandbox, "POST", "/v1/webhook_endpoints", body)
    # Then Stripe's 400, naming the param; nothing is kept
    assert status == 400 and answer["error"]["param"] == param
    assert sandbox.webhook_endpoints == {}


def test_webhook_endpoints_live_key_is_refused(sandbox) -> None:
    # Given / When a live key registers an endpoint
    status, answer = raw(sandbox, "POST", "/v1/webhook_endpoints", f"url={HOOK}&enabled_events[]=*",
                         key="sk_" + "live_abcdefghijkl")  # assembled: not a key to secret scanners
    # Then the sandbox refuses it as an invalid key
    assert status == 401 and "test-mode keys only" in answer["error"]["message"]


def test_webhook_endpoint_shape_has_the_spec_required_fields(client) -> None:
    # Given a created endpoint
    created = client.v1.webhook_endpoints.create({"url": HOOK, "enabled_events": ["*"]})
    schema = spec_schema("webhook_endpoint")
    # When / Then it has every field the spec requires and none it does not define
    body = created.to_dict()
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])


# --- portal configurations ------------------------------------------------------------------------------


def portal_params(client) -> dict:
    gold = client.v1.products.create({"name": "Gold"})
    prices = [
        client.v1.prices.create({"product": gold.id, "currency": "eur", "unit_amount": amount,
                                 "recurring": {"interval": interval}}).id
        for amount, interval in ((900, "month"), (9000, "year"))
    ]
    return {
        "business_profile": {"headline": "Gold members"},
        "features": {
            "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
            "payment_method_update": {"enabled": True},
            "subscription_update": {"enabled": True, "default_allowed_updates": ["price"],
                                    "products": [{"product": gold.id, "prices": prices}],
                                    "proration_behavior": "create_prorations"},
        },
        "metadata": {"membergate": "gold"},
    }


def test_portal_configurations_create_list_and_serve_portal_sessions(client) -> None:
    # Given a configuration saved through the API
    created = client.v1.billing_portal.configurations.create(portal_params(client))
    customer = client.v1.customers.create({})
    # When it is listed and a portal session uses it
    listed = client.v1.billing_portal.configurations.list({"is_default": False})
    session = client.v1.billing_portal.sessions.create({"customer": customer.id, "configuration": created.id})
    # Then it is kept as given and serves sessions; the Dashboard default still exists beside it
    assert [c.id for c in listed.data] == [created.id]
    assert created.features.subscription_cancel.mode == "at_period_end"
    assert created.features.subscription_update.products[0].prices and created.metadata.to_dict() == {"membergate": "gold"}
    assert session.configuration == created.id
    assert len(client.v1.billing_portal.configurations.list().data) == 2


def test_portal_configurations_shape_has_the_spec_required_fields(client) -> None:
    # Given a created configuration
    body = client.v1.billing_portal.configurations.create(portal_params(client)).to_dict()
    schema = spec_schema("billing_portal.configuration")
    features = spec_schema("portal_features")
    # Then it has the spec's fields, features included
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    assert set(body["features"]) == set(features["properties"])


@pytest.mark.parametrize(
    "mutate, param",
    [
        (lambda p: p.pop("features"), "features"),
        (lambda p: p.pop("business_profile"), "business_profile"),
        (lambda p: p["features"]["subscription_cancel"].update(mode="someday"), "features[subscription_cancel][mode]"),
        (lambda p: p["features"]["subscription_update"]["products"][0].update(prices=["price_nope"]),
         "features[subscription_update][products][0][prices]"),
        (lambda p: p["features"].update(gift_cards={"enabled": True}), "features[gift_cards]"),
        (lambda p: p["business_profile"].update(headline="x" * 61), "business_profile[headline]"),
        (lambda p: p["features"]["payment_method_update"].update(enabled="maybe"),
         "features[payment_method_update][enabled]"),
    ],
)
def test_portal_configurations_create_bad_params_are_refused(client, mutate, param) -> None:
    # Given valid params spoilt one way
    params = portal_params(client)
    mutate(params)
    # When / Then the create is refused, naming the param
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.billing_portal.configurations.create(params)
    assert refused.value.param == param
