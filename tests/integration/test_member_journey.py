"""The member's journey through the real handlers: join, bind Discord, pay, renew, fail, recover, removal."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.test import Client

from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import STRIPE_BASE, Pipeline

pytestmark = pytest.mark.integration

DAY = 86_400
GUILD, ROLE, USER = "700000000000000001", "700000000000000002", "800000000000000003"
PRICE = "price_journey_monthly"
PUBLIC = "https://members.example.com"  # PUBLIC_BASE_URL in tests/support/aws.py
FORM = {"content-type": "application/x-www-form-urlencoded"}


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
    # Binding issues a fresh session id (session fixation): the browser's new cookie
    bound = back["cookies"][0].split(";")[0]
    assert bound != cookie
    return bound


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
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={plan_id}&waiver=on", cookies=[cookie],
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
    # And they were welcomed once, on Discord
    assert [t for _, t in p.discord.delivered] == [p.discord.delivered[0][1]]
    assert p.discord.delivered[0][1].startswith("Welcome to Club")
    welcomed = len(p.discord.delivered)

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
    assert len(p.discord.delivered) == welcomed + 1
    # And once more a day before the end
    p.advance(2 * DAY)
    p.sweep()
    assert len(p.discord.delivered) == welcomed + 2
    # When grace runs out
    p.advance(DAY)
    p.sweep()
    p.pump()
    # Then the reminders and the receipt were sent (no second welcome), the role is gone and Stripe stopped billing
    texts = [text for _, text in p.discord.delivered[welcomed:]]
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
    cookie = bind_discord(p, plan_id)
    first = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": True}, cookies=[cookie])
    again = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": True}, cookies=[cookie])
    assert first["statusCode"] == again["statusCode"] == 201
    assert json.loads(first["body"]) == json.loads(again["body"])
    assert set(json.loads(first["body"])) == {"checkout_url", "session_id"}
    # One Stripe customer for the member, reused
    assert member_view(p)["stripe_customer_id"].startswith("cus_")
    unknown = p.call("start_checkout", "POST", "/checkout", body={"plan_id": "pln_nope"}, cookies=[cookie])
    assert unknown["statusCode"] == 404 and json.loads(unknown["body"])["error"]["code"] == "not_found"
    malformed = p.call("start_checkout", "POST", "/checkout", body={"price_id": "price_x"}, cookies=[cookie])
    assert malformed["statusCode"] == 400 and json.loads(malformed["body"])["error"]["field"] == "plan_id"
    not_json = p.call("start_checkout", "POST", "/checkout", body="{oops", headers={"content-type": "application/json"})
    assert not_json["statusCode"] == 400


def test_checkout_member_id_in_body_is_refused_whether_or_not_it_exists(pipeline):
    # (Behaviour changed on purpose: /checkout used to start a Checkout on any member id it was given.)
    p = pipeline
    # Given a bound member, and a stranger's browser with no session
    plan_id = setup_catalog(p)
    bind_discord(p, plan_id)
    member_id = member_view(p)["id"]
    # When the stranger names that member, or an id that does not exist
    real = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "member_id": member_id})
    fake = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "member_id": "mbr_nobody"})
    # Then both are refused the same way, naming the field, and no Stripe customer was made
    assert real["statusCode"] == fake["statusCode"] == 400
    assert json.loads(real["body"]) == json.loads(fake["body"])
    assert json.loads(real["body"])["error"]["field"] == "member_id"
    assert member_view(p)["stripe_customer_id"] is None


def test_checkout_without_bound_identity_is_refused(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    reply = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": True})
    assert reply["statusCode"] == 409
    assert json.loads(reply["body"])["error"]["code"] == "identity_required"


def test_checkout_throttled_per_client(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    statuses = [p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": True}, source_ip="198.51.100.9")["statusCode"]
                for _ in range(12)]
    assert statuses[:10] == [409] * 10
    assert statuses[10:] == [429, 429]
    other = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": True}, source_ip="198.51.100.10")
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


def subscription_of(p: Pipeline) -> str:
    return next(e["data"]["object"]["id"] for e in p.delivered if e["type"] == "customer.subscription.created")


def test_journey_grace_member_fixes_card_in_billing_portal_and_keeps_role(pipeline):
    p = pipeline
    # Given a paying member whose renewal failed: in grace, role kept, reminded with their billing link
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    welcomed = len(p.discord.delivered)  # the welcome on first access
    sub_id = subscription_of(p)
    p.advance(30 * DAY)
    p.sandbox.fail_renewal(sub_id)
    p.pump()
    p.advance(60)
    p.sweep()
    assert member_view(p)["entitlements"][0]["state"] == "grace"
    (_, reminder), = p.discord.delivered[welcomed:]
    # (The reminder links straight to the portal, personal to the member: no session needed.)
    token = reminder.split(f"{PUBLIC}/billing/portal/")[1].split()[0]
    direct = p.call("start_checkout", "GET", f"/billing/portal/{token}")
    assert direct["statusCode"] == 303, direct
    # When they open their membership page in the browser they subscribed with, a month later
    page = p.call("join", "GET", f"/join/{plan_id}?manage=1", cookies=[cookie])
    # Then, their week-long session having expired, they are asked for the right Discord account
    assert "Connect the Discord account you subscribed with to manage your billing" in page["body"]
    assert "Manage billing" not in page["body"]
    # When they connect it again
    cookie = bind_discord(p, plan_id)
    page = p.call("join", "GET", f"/join/{plan_id}?manage=1", cookies=[cookie])
    # Then they see their grace state and the manage button, not a second checkout
    assert page["statusCode"] == 200
    assert "Manage billing (card, invoices, cancel)" in page["body"] and "didn't go through" in page["body"]
    assert "Continue to payment" not in page["body"]
    # When they press it
    reply = p.call("start_checkout", "POST", "/billing/portal", body=f"plan_id={plan_id}", cookies=[cookie], headers=FORM)
    # Then they are sent to Stripe's portal for their own customer
    assert reply["statusCode"] == 303, reply
    location = reply["headers"]["Location"]
    assert location.startswith(f"{STRIPE_BASE}/portal/bps_")
    browser = Client(p.sandbox.wsgi_app)
    portal_path = location[len(STRIPE_BASE):]
    portal = browser.get(portal_path)
    text = portal.get_data(as_text=True)
    assert portal.status_code == 200 and sub_id in text and "Update card and pay now" in text
    assert f"href='{PUBLIC}/join/{plan_id}'" in text
    # When they update their card and pay there
    p.advance(3600)
    clicked = browser.post(portal_path, data={"subscription": sub_id, "action": "pay"})
    assert clicked.status_code == 303
    p.pump()
    # Then every event was acknowledged, the member is active again and never lost the role
    assert all(r["statusCode"] == 200 for r in p.webhook_replies)
    assert p.sandbox.subscription(sub_id)["status"] == "active"
    member = member_view(p)
    assert member["entitlements"][0]["state"] == "active"
    assert member["access"][0]["state"] == "granted"
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    assert not p.discord.requests_to("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}")
    # And when the old grace end passes, nothing is taken away and no farewell is sent
    p.advance(4 * DAY)
    p.sweep()
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    assert len(p.discord.delivered) == welcomed + 1
    assert "subscription is active" in p.call("join", "GET", f"/join/{plan_id}", cookies=[cookie])["body"]


def test_billing_portal_json_caller_gets_201_portal_url(pipeline):
    p = pipeline
    # Given a member who paid
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    member_view(p)
    pay(p, cookie, plan_id)
    # When a JSON caller asks for their portal, with and without the plan to come back to
    with_plan = p.call("start_checkout", "POST", "/billing/portal", body={"plan_id": plan_id}, cookies=[cookie])
    bare = p.call("start_checkout", "POST", "/billing/portal", body={}, cookies=[cookie])
    # Then each gets a fresh portal session leading back to the plan's join page
    assert with_plan["statusCode"] == bare["statusCode"] == 201
    for reply in (with_plan, bare):
        body = json.loads(reply["body"])
        assert set(body) == {"portal_url"} and body["portal_url"].startswith(f"{STRIPE_BASE}/portal/bps_")
        portal = Client(p.sandbox.wsgi_app).get(body["portal_url"][len(STRIPE_BASE):]).get_data(as_text=True)
        assert f"href='{PUBLIC}/join/{plan_id}'" in portal
    assert json.loads(with_plan["body"]) != json.loads(bare["body"])


def test_billing_portal_refusals_say_what_to_do(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    # Given a browser that never connected Discord
    form = p.call("start_checkout", "POST", "/billing/portal", body=f"plan_id={plan_id}", headers=FORM)
    # Then the form answers with a page naming the account to connect
    assert form["statusCode"] == 409 and form["headers"]["Content-Type"].startswith("text/html")
    assert "connect the Discord account you subscribed with" in form["body"]
    anonymous = p.call("start_checkout", "POST", "/billing/portal", body={})
    assert anonymous["statusCode"] == 409 and json.loads(anonymous["body"])["error"]["code"] == "identity_required"
    # Given a member who connected but never subscribed
    cookie = bind_discord(p, plan_id)
    member_id = member_view(p)["id"]
    page = p.call("join", "GET", f"/join/{plan_id}?manage=1", cookies=[cookie])["body"]
    assert "no subscription for this Discord account" in page and "Manage billing" not in page
    none = p.call("start_checkout", "POST", "/billing/portal", body={}, cookies=[cookie])
    error = json.loads(none["body"])["error"]
    assert none["statusCode"] == 409 and error["code"] == "no_subscription"
    assert "choose a plan from the join page" in error["message"]
    # And a member id alone opens nothing: only the member's own session does
    by_id = p.call("start_checkout", "POST", "/billing/portal", body={"member_id": member_id})
    assert by_id["statusCode"] == 400 and json.loads(by_id["body"])["error"]["field"] == "member_id"
    # And unknown plans, and bodies that are not objects, are refused plainly
    no_plan = p.call("start_checkout", "POST", "/billing/portal", body={"plan_id": "pln_nope"}, cookies=[cookie])
    assert no_plan["statusCode"] == 404
    extra = p.call("start_checkout", "POST", "/billing/portal", body={"price_id": "x"}, cookies=[cookie])
    assert extra["statusCode"] == 400 and json.loads(extra["body"])["error"]["field"] == "price_id"
    listed = p.call("start_checkout", "POST", "/billing/portal", body="[]", headers={"content-type": "application/json"})
    assert listed["statusCode"] == 400


def test_billing_portal_throttled_per_client_apart_from_checkout(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    # Given a client that used up its checkout allowance
    for _ in range(11):
        p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": True}, source_ip="198.51.100.9")
    # When it then asks for billing portals
    statuses = [p.call("start_checkout", "POST", "/billing/portal", body={}, source_ip="198.51.100.9")["statusCode"]
                for _ in range(12)]
    # Then the portal has its own allowance, then 429 with Retry-After
    assert statuses[:10] == [409] * 10 and statuses[10:] == [429, 429]
    limited = p.call("start_checkout", "POST", "/billing/portal", body={}, source_ip="198.51.100.9")
    assert int(limited["headers"]["Retry-After"]) >= 1
    assert "billing page requests" in json.loads(limited["body"])["error"]["message"]


def test_subscription_made_in_stripe_dashboard_is_claimed_with_a_link(pipeline):
    from tests.support import stripe_events as se
    from tests.support.aws import WEBHOOK_SECRET
    import time as _time

    p = pipeline
    plan_id = setup_catalog(p)
    # Given a subscription created in the Stripe dashboard for a price the plan sells
    event = se.subscription_event("customer.subscription.created", created=p.clock.value, price_id=PRICE,
                                  customer="cus_dashboard", sub_id="sub_dashboard")
    body, header = se.signed(event, WEBHOOK_SECRET, int(_time.time()))
    assert p.call("stripe_webhook", "POST", "/webhooks/stripe", body=body,
                  headers={"stripe-signature": header})["statusCode"] == 200
    p.pump()
    found = p.admin("GET", "/admin/members?stripe_customer_id=cus_dashboard")["body"]["members"][0]
    assert found["entitlements"][0]["state"] == "active"
    assert found["access"][0]["state"] == "awaiting_identity"
    # When the creator sends the member a claim link and the member opens it and connects Discord
    link = p.admin("POST", f"/admin/members/{found['id']}/claim-link")
    assert link["status"] == 201
    token = link["body"]["claim_url"].rsplit("/", 1)[1]
    opened = p.call("join", "GET", f"/claim/{token}")
    assert opened["statusCode"] == 302 and "/auth/discord/start" in opened["headers"]["Location"]
    cookie = opened["cookies"][0].split(";")[0]
    start = p.call("join", "GET", f"/auth/discord/start?plan_id={plan_id}", cookies=[cookie])
    query = parse_qs(urlsplit(start["headers"]["Location"]).query)
    code = p.discord.issue_code(USER, query["redirect_uri"][0])
    back = p.call("join", "GET", f"/auth/discord/callback?code={code}&state={query['state'][0]}", cookies=[cookie])
    assert back["statusCode"] == 303
    p.pump()
    # Then that membership is bound to the Discord account and access is delivered
    after = p.admin("GET", "/admin/members?stripe_customer_id=cus_dashboard")["body"]["members"][0]
    assert after["id"] == found["id"] and after["identities"] == [{"platform": "discord", "external_id": USER}]
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    # And the link no longer logs anybody in
    again = p.call("join", "GET", f"/claim/{token}")
    assert again["statusCode"] == 400 and "already connected" in again["body"]


def test_access_failure_is_visible_and_resync_applies_after_the_fix(pipeline):
    p = pipeline
    # Given a role placed above the bot's own role (a classic Discord setup mistake)
    p.discord.guilds[GUILD].roles_above_bot.add(ROLE)
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    member = member_view(p)
    # Then the failure is shown with a reason that says what to fix
    assert member["access"][0]["state"] == "failed"
    assert member["access"][0]["reason"].startswith("missing_permissions")
    # When the creator fixes the role order and asks for a resync
    p.discord.guilds[GUILD].roles_above_bot.clear()
    resync = p.admin("POST", f"/admin/members/{member['id']}/resync")
    assert resync["status"] == 202 and resync["body"]["communities"] == [member["access"][0]["community_id"]]
    p.pump()
    # Then the member gets the role
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    assert member_view(p)["access"][0]["state"] == "granted"
    assert p.admin("POST", "/admin/members/mbr_nobody/resync")["status"] == 404
