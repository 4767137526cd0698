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
