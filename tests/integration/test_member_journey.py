"""The member's journey through the real handlers: join, bind Discord, pay, renew, fail, removal."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

DAY = 86_400
GUILD, ROLE, USER = "700000000000000001", "700000000000000002", "800000000000000003"
PRICE = "price_journey_monthly"


def setup_catalog(p: Pipeline, **plan_extra) -> str:
    p.sandbox.register_price(PRICE, 900, "eur")
    community = p.admin("POST", "/admin/communities", body={
        "platform": "discord", "name": "Club", "guild_id": GUILD, "role_id": ROLE, "on_revoke": "remove_role"})
    assert community["status"] == 201, community
    plan = p.admin("POST", "/admin/plans", body={
        "name": "Monthly", "stripe_price_ids": [PRICE], "grants": [{"community_id": community["body"]["id"]}], **plan_extra})
    assert plan["status"] == 201, plan
    return plan["body"]["id"]


def bind_discord(p: Pipeline, plan_id: str) -> str:
    """Join page → Discord authorize → callback; returns the browser's session cookie."""
    start = p.call("join", "GET", f"/auth/discord/start?plan_id={plan_id}")
    assert start["statusCode"] == 302
    cookie = start["cookies"][0].split(";")[0]
    query = parse_qs(urlsplit(start["headers"]["Location"]).query)
    assert query["scope"] == ["identify guilds.join"]
    code = p.discord.issue_code(USER, query["redirect_uri"][0])
    back = p.call("join", "GET", f"/auth/discord/callback?code={code}&state={query['state'][0]}", cookies=[cookie])
    assert back["statusCode"] == 303, back
    assert back["headers"]["Location"].endswith(f"/join/{plan_id}")
    return cookie


def member_view(p: Pipeline) -> dict:
    found = p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"]
    return found[0] if found else {}


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


def pay(p: Pipeline, cookie: str, plan_id: str, outcome: str = "card") -> str:
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={plan_id}", cookies=[cookie],
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert reply["statusCode"] == 303, reply
    session_id = re.search(r"(cs_test_\w+)", reply["headers"]["Location"]).group(1)
    p.sandbox.pay(session_id, outcome)
    p.pump()
    return session_id


def test_journey_pay_renew_fail_grace_removal(pipeline):
    p = pipeline
    # Given a community, a monthly plan and a member who bound Discord on the join page
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    page = p.call("join", "GET", f"/join/{plan_id}", cookies=[cookie])
    assert "Continue to payment" in page["body"]
    # When they pay by card
    pay(p, cookie, plan_id)
    # Then every webhook was acknowledged and they are in the server with the role
    assert all(r["statusCode"] == 200 for r in p.webhook_replies)
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    member = member_view(p)
    assert member["entitlements"][0]["state"] == "active"
    assert member["access"][0]["state"] == "granted"
    kpis = p.admin("GET", "/admin/kpis")["body"]
    assert kpis["active_paying_members"] == 1 and kpis["mrr"] == {"eur": 900}
    sub_id = next(e["data"]["object"]["id"] for e in p.delivered if e["type"] == "customer.subscription.created")

    # When a month later the renewal succeeds, then the next one fails
    p.advance(30 * DAY)
    p.sandbox.renew(sub_id)
    p.pump()
    assert member_view(p)["entitlements"][0]["state"] == "active"
    p.advance(30 * DAY)
    p.sandbox.fail_renewal(sub_id)
    p.pump()
    # Then the member is in grace, still in the server, and reminded once
    assert member_view(p)["entitlements"][0]["state"] == "grace"
    p.advance(60)
    p.sweep()
    p.sweep()
    assert len(p.discord.delivered) == 1
    # And once more a day before the end
    p.advance(2 * DAY)
    p.sweep()
    assert len(p.discord.delivered) == 2
    # When grace runs out
    p.advance(DAY)
    p.sweep()
    p.pump()
    # Then the reminders and the receipt were sent, the role is gone and Stripe stopped billing
    texts = [text for _, text in p.discord.delivered]
    assert len(texts) == 3 and "/join/" in texts[-1]
    assert p.discord.guilds[GUILD].members[USER] == set()
    assert p.sandbox.subscription(sub_id)["status"] == "canceled"
    final = member_view(p)
    assert final["entitlements"][0]["state"] == "ended"
    assert final["access"][0]["state"] == "revoked"


def test_journey_sepa_grants_only_after_settlement(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    session_id = pay(p, cookie, plan_id, outcome="sepa")
    assert USER not in p.discord.guilds[GUILD].members
    assert member_view(p)["entitlements"][0]["state"] == "pending"
    p.advance(2 * DAY)
    p.sandbox.settle_sepa(session_id, succeed=True)
    p.pump()
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}


def test_checkout_json_retry_returns_same_session_and_errors_are_clear(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    bind_discord(p, plan_id)
    member_id = member_view(p)["id"]
    first = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "member_id": member_id})
    again = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "member_id": member_id})
    assert first["statusCode"] == again["statusCode"] == 201
    assert json.loads(first["body"]) == json.loads(again["body"])
    assert set(json.loads(first["body"])) == {"checkout_url", "session_id"}
    # One Stripe customer for the member, reused
    assert member_view(p)["stripe_customer_id"].startswith("cus_")
    unknown = p.call("start_checkout", "POST", "/checkout", body={"plan_id": "pln_nope", "member_id": member_id})
    assert unknown["statusCode"] == 404 and json.loads(unknown["body"])["error"]["code"] == "not_found"
    malformed = p.call("start_checkout", "POST", "/checkout", body={"member_id": member_id})
    assert malformed["statusCode"] == 400 and json.loads(malformed["body"])["error"]["field"] == "plan_id"
    not_json = p.call("start_checkout", "POST", "/checkout", body="{oops", headers={"content-type": "application/json"})
    assert not_json["statusCode"] == 400


def test_checkout_without_bound_identity_is_refused(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    reply = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id})
    assert reply["statusCode"] == 409
    assert json.loads(reply["body"])["error"]["code"] == "identity_required"


def test_checkout_throttled_per_client(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    statuses = [p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id}, source_ip="198.51.100.9")["statusCode"]
                for _ in range(12)]
    assert statuses[:10] == [409] * 10
    assert statuses[10:] == [429, 429]
    other = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id}, source_ip="198.51.100.10")
    assert other["statusCode"] == 409


def test_oauth_callback_from_another_browser_is_refused(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    start = p.call("join", "GET", f"/auth/discord/start?plan_id={plan_id}")
    query = parse_qs(urlsplit(start["headers"]["Location"]).query)
    code = p.discord.issue_code(USER, query["redirect_uri"][0])
    stolen = p.call("join", "GET", f"/auth/discord/callback?code={code}&state={query['state'][0]}")
    assert stolen["statusCode"] == 400
    assert "another browser" in stolen["body"]
