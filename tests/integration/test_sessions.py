"""Sessions and memberships cannot be taken over: fixation, claims, tokens at rest, through the handlers."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from tests.integration.test_member_journey import FORM, GUILD, PRICE, ROLE, USER, bind_discord, pay, setup_catalog
from tests.support import stripe_events as se
from tests.support.aws import WEBHOOK_SECRET
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration
ATTACKER = "800000000000000099"


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    discord.add_user(ATTACKER)
    with Pipeline(discord) as p:
        yield p


def cookie_of(reply: dict) -> str:
    return reply["cookies"][0].split(";")[0]


def connect(p: Pipeline, cookie: str | None, user: str, plan_id: str | None = None) -> dict:
    """Start → Discord consent as ``user`` → callback, all in the browser holding ``cookie``."""
    start = p.call("join", "GET", "/auth/discord/start" + (f"?plan_id={plan_id}" if plan_id else ""),
                   cookies=[cookie] if cookie else [])
    browser = cookie_of(start)
    query = parse_qs(urlsplit(start["headers"]["Location"]).query)
    code = p.discord.issue_code(user, query["redirect_uri"][0])
    return p.call("join", "GET", f"/auth/discord/callback?code={code}&state={query['state'][0]}", cookies=[browser])


def portal(p: Pipeline, cookie: str) -> dict:
    return p.call("start_checkout", "POST", "/billing/portal", body={}, cookies=[cookie])


def test_session_fixation_planted_cookie_no_longer_opens_the_victims_billing_portal(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    # Given an attacker who got a valid session cookie from the site and planted it in the victim's browser
    planted = cookie_of(p.call("join", "GET", f"/auth/discord/start?plan_id={plan_id}"))
    # When the victim, in that browser, connects Discord and pays
    back = connect(p, planted, USER, plan_id)
    assert back["statusCode"] == 303
    victim = cookie_of(back)
    pay(p, victim, plan_id)
    # Then the planted cookie opens nothing: the binding issued the victim a fresh session id
    assert victim != planted
    stolen = portal(p, planted)
    assert stolen["statusCode"] == 409 and json.loads(stolen["body"])["error"]["code"] == "identity_required"
    assert p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": True}, cookies=[planted])["statusCode"] == 409
    # And the victim's own session does
    assert portal(p, victim)["statusCode"] == 201


def claimable_member(p: Pipeline) -> tuple[str, str]:
    """A subscription made in the Stripe dashboard, and the claim token the creator sends for it."""
    event = se.subscription_event("customer.subscription.created", created=p.clock.value, price_id=PRICE,
                                  customer="cus_claim", sub_id="sub_claim")
    body, header = se.signed(event, WEBHOOK_SECRET, int(time.time()))
    assert p.call("stripe_webhook", "POST", "/webhooks/stripe", body=body, headers={"stripe-signature": header})["statusCode"] == 200
    p.pump()
    member_id = p.admin("GET", "/admin/members?stripe_customer_id=cus_claim")["body"]["members"][0]["id"]
    link = p.admin("POST", f"/admin/members/{member_id}/claim-link")["body"]["claim_url"]
    return member_id, link.rsplit("/", 1)[1]


def test_claim_with_a_planted_cookie_does_not_let_the_attacker_bind_the_paid_membership(pipeline):
    p = pipeline
    setup_catalog(p)
    member_id, token = claimable_member(p)
    # Given an attacker's session cookie planted in the member's browser
    planted = cookie_of(p.call("join", "GET", "/auth/discord/start"))
    # When the member opens their claim link in that browser
    opened = p.call("join", "GET", f"/claim/{token}", cookies=[planted])
    # Then the claim runs under a fresh session, not the planted one
    assert opened["statusCode"] == 302 and cookie_of(opened) != planted
    # When the attacker then connects their own Discord account with the planted cookie
    back = connect(p, planted, ATTACKER)
    assert back["statusCode"] in (200, 303)
    p.pump()
    # Then the paid membership is still unbound and the attacker got nothing from it
    member = p.admin("GET", f"/admin/members?member_id={member_id}")["body"]["members"][0]
    assert not [i for i in member["identities"] if i["platform"] == "discord"]
    assert ATTACKER not in p.discord.guilds[GUILD].members


def test_claim_then_binding_lands_on_the_membership_page_with_a_fresh_session(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    member_id, token = claimable_member(p)
    # Given the member opened the claim link
    claimed = cookie_of(p.call("join", "GET", f"/claim/{token}"))
    # When they connect Discord from a start link without a plan (e.g. typed or bookmarked)
    back = connect(p, claimed, USER)
    # Then they land on their plan's page, under a new session that shows their membership
    assert back["statusCode"] == 303 and back["headers"]["Location"].endswith(f"/join/{plan_id}")
    bound = cookie_of(back)
    assert bound != claimed
    page = p.call("join", "GET", f"/join/{plan_id}", cookies=[bound])
    assert page["statusCode"] == 200 and "subscription is active" in page["body"]
    # And the claim session no longer opens anything
    assert portal(p, claimed)["statusCode"] == 409
    assert "Connect Discord" in p.call("join", "GET", f"/join/{plan_id}", cookies=[claimed])["body"]


def test_binding_without_any_plan_lands_on_a_page_not_a_404(pipeline):
    p = pipeline
    setup_catalog(p)
    back = connect(p, None, USER)
    assert back["statusCode"] == 200 and back["headers"]["Content-Type"].startswith("text/html")
    assert "Discord account is connected" in back["body"] and back["cookies"]


def test_session_state_and_claim_tokens_are_stored_only_as_hashes(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    _, token = claimable_member(p)
    # Given a claim link, a started OAuth flow and a bound session
    start = p.call("join", "GET", f"/auth/discord/start?plan_id={plan_id}")
    state = parse_qs(urlsplit(start["headers"]["Location"]).query)["state"][0]
    session = bind_discord(p, plan_id).split("=", 1)[1]
    started = cookie_of(start).split("=", 1)[1]
    # When the whole table is read, as a leaked backup would be
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=p.stack.membership_table)["Items"]
    dump = json.dumps(items, default=repr)
    # Then no token appears in it, in any key or attribute
    for secret in (token, state, session, started):
        assert secret not in dump
    # And the tokens still work (the claim link still opens)
    assert p.call("join", "GET", f"/claim/{token}")["statusCode"] == 302


def test_form_checkout_follows_the_session_not_the_body(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    # When a form names a member id beside the plan
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={plan_id}&member_id=mbr_other",
                   cookies=[cookie], headers=FORM)
    # Then the form is refused with a page naming the field, and nothing was started
    assert reply["statusCode"] == 400 and reply["headers"]["Content-Type"].startswith("text/html")
    assert "member_id" in reply["body"]
