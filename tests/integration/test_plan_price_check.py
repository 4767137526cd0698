"""Plan creation checks each price at Stripe (the local sandbox here) through the billing port."""

from __future__ import annotations

import pytest

from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline():
    with Pipeline(SpecCheckingDiscordTransport(), env={"PRICE_CHECK": "on"}) as p:
        p.sandbox.register_price("price_monthly", 900, "eur")
        p.sandbox.register_price("price_once", 4900, "eur", interval=None)
        yield p


def _plan(p: Pipeline, kind: str, *prices: str) -> dict:
    community = p.admin("POST", "/admin/communities", body={
        "platform": "discord", "name": "Club", "guild_id": "700000000000000001", "role_id": "700000000000000002"})
    community_id = community["body"]["id"] if community["status"] == 201 else p.admin("GET", "/admin/communities")[
        "body"]["communities"][0]["id"]
    body = {"name": kind, "kind": kind, "stripe_price_ids": list(prices), "grants": [{"community_id": community_id}]}
    if kind == "pass":
        body["access_days"] = 30
    return p.admin("POST", "/admin/plans", body=body)


@pytest.mark.parametrize("kind,price", [("subscription", "price_monthly"), ("lifetime", "price_once"), ("pass", "price_once")])
def test_plan_with_a_price_stripe_has_of_the_right_type_is_created(pipeline, kind, price):
    reply = _plan(pipeline, kind, price)
    assert reply["status"] == 201, reply


@pytest.mark.parametrize("kind,prices,says", [
    ("subscription", ("price_typo",), "price_typo does not exist"),
    ("subscription", ("price_monthly", "price_typo"), "price_typo does not exist"),
    ("subscription", ("price_once",), "needs a recurring one"),
    ("lifetime", ("price_monthly",), "needs a one-time one"),
    ("pass", ("price_monthly",), "needs a one-time one"),
])
def test_plan_with_an_unknown_or_unusable_price_is_400_naming_stripe_price_ids(pipeline, kind, prices, says):
    # Given prices the sandbox knows (a monthly and a one-off one)
    # When a plan is created with a price Stripe does not have, or of the wrong type for its kind
    reply = _plan(pipeline, kind, *prices)
    # Then 400 names the field and says what is wrong, and no plan (nor price claim) was stored
    assert reply["status"] == 400, reply
    assert reply["body"]["error"]["field"] == "stripe_price_ids" and says in reply["body"]["error"]["message"]
    assert pipeline.admin("GET", "/admin/plans")["body"]["plans"] == []
    assert _plan(pipeline, "subscription", "price_monthly")["status"] == 201


def _patch_prices(p: Pipeline, plan_id: str, *prices: str) -> dict:
    return p.admin("PATCH", f"/admin/plans/{plan_id}", body={"stripe_price_ids": list(prices)})


@pytest.mark.parametrize("prices,says", [
    (("price_typo",), "price_typo does not exist"),
    (("price_monthly", "price_typo"), "price_typo does not exist"),
    (("price_once",), "needs a recurring one"),
])
def test_plan_patch_with_an_unknown_or_unusable_price_is_400_and_keeps_the_prices(pipeline, prices, says):
    # Given a subscription plan selling the monthly price
    plan = _plan(pipeline, "subscription", "price_monthly")["body"]
    # When its prices are changed to one Stripe does not have, or a one-off one
    reply = _patch_prices(pipeline, plan["id"], *prices)
    # Then 400 names the field and says what is wrong, and the plan still sells what it sold
    assert reply["status"] == 400, reply
    assert reply["body"]["error"]["field"] == "stripe_price_ids" and says in reply["body"]["error"]["message"]
    assert pipeline.admin("GET", f"/admin/plans/{plan['id']}")["body"]["stripe_price_ids"] == ["price_monthly"]


def test_plan_patch_with_a_good_new_price_sells_it_and_members_on_the_old_one_keep_the_plan(pipeline):
    # Given a subscription plan selling the monthly price, and a new yearly price at Stripe
    pipeline.sandbox.register_price("price_yearly", 9000, "eur", interval="year")
    plan = _plan(pipeline, "subscription", "price_monthly")["body"]
    # When the plan's prices become the yearly one
    reply = _patch_prices(pipeline, plan["id"], "price_yearly", "price_yearly")
    # Then the plan sells it (once), and the old price still leads to the plan for its members
    assert reply["status"] == 200, reply
    assert reply["body"]["stripe_price_ids"] == ["price_yearly"]
    assert pipeline.admin("GET", f"/admin/plans/{plan['id']}")["body"]["stripe_price_ids"] == ["price_yearly"]
    from membergate.adapters.dynamodb.repositories import DynamoCatalogRepository

    catalog = DynamoCatalogRepository()
    assert catalog.plan_for_price("price_yearly").id == catalog.plan_for_price("price_monthly").id == plan["id"]


def test_plan_patch_with_a_price_another_plan_sells_is_409(pipeline):
    # Given two plans, each with its own price
    pipeline.sandbox.register_price("price_yearly", 9000, "eur", interval="year")
    first = _plan(pipeline, "subscription", "price_monthly")["body"]
    second = _plan(pipeline, "subscription", "price_yearly")["body"]
    # When the second is given the first one's price
    reply = _patch_prices(pipeline, second["id"], "price_monthly")
    # Then 409 says who sells it, and nothing changed
    assert reply["status"] == 409, reply
    assert first["id"] in reply["body"]["error"]["message"]
    assert pipeline.admin("GET", f"/admin/plans/{second['id']}")["body"]["stripe_price_ids"] == ["price_yearly"]


def test_plan_patch_without_prices_does_not_ask_stripe(pipeline):
    # Given a plan, and a Stripe that no longer has its price
    plan = _plan(pipeline, "subscription", "price_monthly")["body"]
    pipeline.sandbox.prices.pop("price_monthly")
    # When only its name changes
    reply = pipeline.admin("PATCH", f"/admin/plans/{plan['id']}", body={"name": "Renamed"})
    # Then the edit goes through
    assert reply["status"] == 200 and reply["body"]["name"] == "Renamed", reply
