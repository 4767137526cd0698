"""One free trial per card through the running local stack: Checkout attaches the card, its fingerprint decides."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.local.client import Client
from infra.local.stack import LOCAL_STRIPE_KEY
from tests.e2e.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

GUILD, ROLE = "956600000000000001", "956600000000000002"
# Cards no other e2e test pays with: the stack is shared, and a card that had a trial anywhere in it
# would end Ana's trial too (the rule under test). Stripe's Visa debit and Mastercard debit test cards.
SAME_CARD, OTHER_CARD = "4000 0566 5566 5556", "5200 8282 8282 8210"


def _trial_plan(stack) -> str:
    assert stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": "price_e2e_trial_card", "unit_amount": 900, "currency": "eur", "interval": "month",
        "product_name": "Trial club"}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Trial club", "guild_id": GUILD, "role_id": ROLE,
        "on_revoke": "remove_role"}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": "Trial club", "stripe_price_ids": ["price_e2e_trial_card"], "trial_days": 7,
        "grants": [{"community_id": community["id"]}]})
    assert plan.status == 201, plan.text
    return plan.json()["id"]


def _guild_members(stack) -> dict:
    return stack.get(f"/_local/discord/guilds/{GUILD}").json()["members"]


def _join_with_card(stack, plan_id: str, username: str, card_number: str, mistyped: tuple[str, ...] = ()) -> str:
    """Another person in their own browser: Discord, Checkout, the card typed (after ``mistyped`` ones,
    each refused on the page); -> their Stripe customer."""
    before = set(_guild_members(stack))
    browser = Client(stack.base_url, ADMIN_TOKEN)
    authorize = urlsplit(browser.get(f"/auth/discord/start?plan_id={plan_id}").location)
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    back = browser.post(authorize.path, form={**params, "username": username, "decision": "allow"})
    browser.follow(browser.get(back.location))
    to_stripe = browser.post("/checkout", form={"plan_id": plan_id, "waiver": "on"})
    assert to_stripe.status == 303, to_stripe.text
    for typo in mistyped:
        refused = browser.post(to_stripe.location, form={"outcome": "card", "card_number": typo})
        assert refused.status == 200 and "Your card number is incorrect." in refused.text, refused.text[:300]
    assert browser.post(to_stripe.location, form={"outcome": "card", "card_number": card_number}).status == 303
    deadline = time.monotonic() + 20
    while True:
        stack.post("/_local/drain")
        joined = set(_guild_members(stack)) - before
        if joined or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (user_id,) = joined
    return stack.get(f"/admin/members?discord_user_id={user_id}", admin=True).json()["members"][0]["stripe_customer_id"]


def _subscription(stack, customer: str) -> dict:
    # The processor ends a trial at Stripe from its own thread: drain until Stripe's answer is applied too.
    for _ in range(3):
        stack.post("/_local/drain")
    found = stack.get(f"/_local/stripe/v1/subscriptions?customer={customer}&status=all",
                      headers={"Authorization": f"Bearer {LOCAL_STRIPE_KEY}"}).json()["data"]
    assert len(found) == 1, found
    return found[0]


def _trial_audit(stack, since: int) -> list[tuple[str, str, str]]:
    entries = stack.get(f"/admin/audit?since={since}&limit=200", admin=True).json()["entries"]
    return [(e["action"], e["target"], e["actor"]) for e in entries if e["action"].startswith("trial.")]


def test_a_card_gets_one_free_trial_whichever_discord_account_and_email_use_it(stack):
    # Given a plan with a 7-day trial, and Ana's trial with the test Visa
    since = stack.get("/_local/clock").json()["epoch"] - 60
    plan_id = _trial_plan(stack)
    ana = _join_with_card(stack, plan_id, "trial-ana", SAME_CARD,
                          mistyped=("4242\r\n4242", "４２４２４２４２４２４２４２４２", "é" * 5000, "4" * 40))
    assert _subscription(stack, ana)["status"] == "trialing"
    # When Ben (another Discord account, another email) takes the trial with the same card,
    # and Cleo with another card
    ben = _join_with_card(stack, plan_id, "trial-ben", SAME_CARD.replace(" ", ""))
    cleo = _join_with_card(stack, plan_id, "trial-cleo", OTHER_CARD)
    # Then Ben's trial is ended at Stripe (his first month is billed now) and audited; his access stays (paid)
    ben_sub = _subscription(stack, ben)
    assert ben_sub["status"] == "active", ben_sub
    assert ben_sub["trial_end"] <= stack.get("/_local/clock").json()["epoch"]
    assert _trial_audit(stack, since) == [("trial.end", ben_sub["id"], "membergate")]
    member = stack.get(f"/admin/members?stripe_customer_id={ben}", admin=True).json()["members"][0]
    assert member["entitlements"][0]["state"] == "active"
    # And Ana's and Cleo's trials are untouched
    assert _subscription(stack, ana)["status"] == "trialing"
    assert _subscription(stack, cleo)["status"] == "trialing"
