"""A downgrade that waits for the period end, through the running local stack's HTTP API and its business clock."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.local.client import Client
from infra.local.stack import LOCAL_STRIPE_KEY
from tests.e2e.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

# Ids no other e2e test or demo uses (the stack is shared).
GUILD, BRONZE_ROLE, GOLD_ROLE = "971000000000000101", "971000000000000102", "971000000000000103"
STRIPE = {"Authorization": f"Bearer {LOCAL_STRIPE_KEY}"}


def _tiers(stack) -> tuple[str, str]:
    # Daily prices: the period ends a day later, so the shared business clock moves one day, not a month.
    for price, amount in (("price_e2e_down_gold", 3000), ("price_e2e_down_bronze", 1000)):
        assert stack.post("/_local/stripe/_control/prices", json_body={
            "price_id": price, "unit_amount": amount, "currency": "eur", "interval": "day",
            "product_name": "Downgrade club"}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Downgrade club", "guild_id": GUILD, "role_id": BRONZE_ROLE,
        "on_revoke": "remove_role"}).json()
    grants = {"grants": [{"community_id": community["id"]}]}
    bronze = stack.post("/admin/plans", admin=True, json_body={
        "name": "Bronze", "stripe_price_ids": ["price_e2e_down_bronze"], **grants})
    gold = stack.post("/admin/plans", admin=True, json_body={
        "name": "Gold", "stripe_price_ids": ["price_e2e_down_gold"], "downgrade": "period_end",
        "grants": [{"community_id": community["id"], "role_id": GOLD_ROLE}]})
    assert bronze.status == gold.status == 201, (bronze.text, gold.text)
    return bronze.json()["id"], gold.json()["id"]


def _roles(stack) -> dict:
    stack.post("/_local/drain")
    return stack.get(f"/_local/discord/guilds/{GUILD}").json()["members"]


def _join(stack, plan_id: str) -> str:
    """A member in their own browser: Discord, then Checkout with the test card; -> their Discord user id."""
    browser = Client(stack.base_url, ADMIN_TOKEN)
    authorize = urlsplit(browser.get(f"/auth/discord/start?plan_id={plan_id}").location)
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    back = browser.post(authorize.path, form={**params, "username": "downgrade-dee", "decision": "allow"})
    browser.follow(browser.get(back.location))
    to_stripe = browser.post("/checkout", form={"plan_id": plan_id, "waiver": "on"})
    assert to_stripe.status == 303, to_stripe.text
    assert browser.post(to_stripe.location, form={"outcome": "card"}).status == 303
    deadline = time.monotonic() + 20
    while not _roles(stack) and time.monotonic() < deadline:
        time.sleep(0.2)
    (user_id,) = _roles(stack)
    return user_id


def test_downgrade_waits_for_the_period_end_on_the_stack_clock(stack):
    # Given Dee paying Gold (30.00 a day), whose plan makes downgrades wait, with Bronze at 10.00
    bronze, gold = _tiers(stack)
    user_id = _join(stack, gold)
    assert set(_roles(stack)[user_id]) == {GOLD_ROLE}
    member = stack.get(f"/admin/members?discord_user_id={user_id}", admin=True).json()["members"][0]
    # When the creator switches her to Bronze through the admin API
    switched = stack.post(f"/admin/members/{member['id']}/switch", admin=True,
                          json_body={"plan_id": bronze, "reason": "asked by email"})
    # Then it waits for the period end: she keeps Gold, and her record says where and when
    assert switched.status == 200 and switched.json()["effective"] == "period_end", switched.text
    assert set(_roles(stack)[user_id]) == {GOLD_ROLE}
    pending = stack.get(f"/admin/members?member_id={member['id']}", admin=True).json()["members"][0]["pending_switches"]
    assert [p["plan_id"] for p in pending] == [bronze]
    # When the stack's clock passes the period end (Stripe's renewal runs first)
    subscription = stack.get(f"/_local/stripe/v1/subscriptions?customer={member['stripe_customer_id']}",
                             headers=STRIPE).json()["data"][0]
    end = subscription["items"]["data"][0]["current_period_end"]
    now = stack.get("/_local/clock").json()["epoch"]
    assert stack.post("/_local/clock", json_body={"advance_seconds": end - now + 60}).status == 200
    # Then she is on Bronze: its role only, billed 10.00 with no proration, nothing pending any more
    deadline = time.monotonic() + 20
    while set(_roles(stack)[user_id]) != {BRONZE_ROLE} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(_roles(stack)[user_id]) == {BRONZE_ROLE}
    renewed = stack.get(f"/_local/stripe/v1/subscriptions/{subscription['id']}", headers=STRIPE).json()
    assert renewed["items"]["data"][0]["price"]["id"] == "price_e2e_down_bronze"
    invoice = stack.get(f"/_local/stripe/v1/invoices/{renewed['latest_invoice']}", headers=STRIPE).json()
    assert invoice["amount_paid"] == 1000
    assert not any(line["parent"]["subscription_item_details"]["proration"] for line in invoice["lines"]["data"])
    after = stack.get(f"/admin/members?member_id={member['id']}", admin=True).json()["members"][0]
    assert after["pending_switches"] == []
