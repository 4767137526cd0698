"""Consent without a TermsUrl: the join page's required waiver box, refused unticked, recorded like Stripe's box."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, pay
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

PRICE = "price_waiver_monthly"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _plan(p: Pipeline, locale: str) -> str:
    p.sandbox.register_price(PRICE, 900, "eur")
    community = p.admin("POST", "/admin/communities", body={
        "platform": "discord", "name": "Club", "guild_id": GUILD, "role_id": ROLE, "locale": locale})["body"]
    plan = p.admin("POST", "/admin/plans", body={
        "name": "Monthly", "stripe_price_ids": [PRICE], "grants": [{"community_id": community["id"]}]})
    assert plan["status"] == 201, plan
    return plan["body"]["id"]


def _pipeline(env: dict[str, str] | None = None) -> Pipeline:
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    return Pipeline(discord, env=env or {})


@pytest.mark.parametrize(("locale", "box", "refusal"), [
    ("en", "I ask for immediate access and I give up my 14-day right of withdrawal", "tick the box"),
    ("fr", "Je demande l&#x27;accès immédiat et je renonce à mon droit de rétractation", "coche la case"),
])
def test_checkout_without_terms_url_unticked_box_is_refused_in_the_members_language(locale, box, refusal):
    with _pipeline() as p:
        # Given a deployment without TermsUrl and a member on the join page
        plan_id = _plan(p, locale)
        cookie = bind_discord(p, plan_id)
        page = p.call("join", "GET", f"/join/{plan_id}", cookies=[cookie])["body"]
        # When the member presses pay without ticking the box (form), and a JSON caller omits it
        form = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={plan_id}", cookies=[cookie], headers=FORM)
        api = p.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": False}, cookies=[cookie])
        # Then the page shows a required box; both are refused 400 (a page in their language, the envelope)
        # and no Checkout Session is made
        assert "<input type=checkbox name=waiver value=on required>" in page and box in page
        assert form["statusCode"] == 400 and "text/html" in form["headers"]["Content-Type"], form
        assert refusal in form["body"] and f"<html lang={locale}>" in form["body"]
        error = json.loads(api["body"])["error"]
        assert api["statusCode"] == 400 and error["code"] == "waiver_required"
        assert error["field"] == "waiver" and "tick the box" in error["message"]
        assert p.sandbox.sessions == {}


def test_checkout_without_terms_url_ticked_box_is_recorded_as_express_consent():
    with _pipeline() as p:
        # Given a deployment without TermsUrl and a member who ticks the join page's box and pays
        plan_id = _plan(p, "en")
        session_id = pay(p, bind_discord(p, plan_id), plan_id)
        session = p.sandbox.session_dict(p.sandbox.sessions[session_id])
        member_id = p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"][0]["id"]
        # When the creator exports the member's data
        data = p.admin("GET", f"/admin/members/{member_id}/export")["body"]
    # Then the session carried the tick and no Stripe terms box, and the consent is kept like Stripe's:
    # session, time and the version of the waiver text shown beside the pay button
    assert session["metadata"]["membergate_waiver"] == "accepted" and not session.get("consent_collection")
    consent = data["subscriptions"][0]["consent"]
    assert consent["session_id"] == session_id and consent["waiver"] == "accepted"
    assert consent["terms_of_service"] is None and consent["at"].endswith("Z")
    assert consent["text_version"].startswith("sha256:")


def test_checkout_with_terms_url_shows_no_page_box_and_stripe_asks_for_the_terms():
    with _pipeline({"TERMS_URL": "https://creator.example/terms"}) as p:
        # Given a deployment with TermsUrl
        plan_id = _plan(p, "en")
        cookie = bind_discord(p, plan_id)
        page = p.call("join", "GET", f"/join/{plan_id}", cookies=[cookie])["body"]
        # When the member pays without any page box
        reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={plan_id}", cookies=[cookie], headers=FORM)
        session = p.sandbox.session_dict(p.sandbox.sessions[reply["headers"]["Location"].rsplit("/", 1)[1]])
    # Then Stripe's own terms box collects the consent, as before
    assert "name=waiver" not in page and reply["statusCode"] == 303, reply
    assert session["consent_collection"]["terms_of_service"] == "required"
    assert "membergate_waiver" not in session["metadata"]
