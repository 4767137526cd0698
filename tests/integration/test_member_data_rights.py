"""Members' data rights through the real handlers: export everything held, erase after access is gone."""

from __future__ import annotations

import pytest

from membergate import bootstrap
from membergate.domain.lifecycle import CardOnFile, card_expires_at
from membergate.domain.survey import SurveyAnswer
from membergate.services.kpis import history_from_stores
from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, pay, subscription_of
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

LIFETIME_PRICE = "price_rights_lifetime"
MONTHLY_PRICE = "price_rights_monthly"


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


def _plan(p: Pipeline, kind: str) -> str:
    if kind == "lifetime":
        p.sandbox.register_price(LIFETIME_PRICE, 19900, "eur", interval=None)
    else:
        p.sandbox.register_price(MONTHLY_PRICE, 900, "eur")
    community = p.admin("POST", "/admin/communities", body={
        "platform": "discord", "name": "Club", "guild_id": GUILD, "role_id": ROLE})["body"]
    plan = p.admin("POST", "/admin/plans", body={
        "name": kind, "kind": kind, "stripe_price_ids": [LIFETIME_PRICE if kind == "lifetime" else MONTHLY_PRICE],
        "grants": [{"community_id": community["id"]}]})
    assert plan["status"] == 201, plan
    return plan["body"]["id"]


def _member_id(p: Pipeline) -> str:
    return p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"][0]["id"]


def test_export_holds_identities_purchases_access_sessions_and_says_what_stripe_holds(pipeline):
    p = pipeline
    # Given a member who bound Discord and bought lifetime access
    plan_id = _plan(p, "lifetime")
    pay(p, bind_discord(p, plan_id), plan_id)
    member_id = _member_id(p)
    # When the creator exports the member's data
    reply = p.admin("GET", f"/admin/members/{member_id}/export")
    # Then everything held is there: account, purchase, entitlement, access, checkout, signed-in browser, events
    assert reply["status"] == 200, reply
    data = reply["body"]
    assert data["member"]["identities"] == [{"platform": "discord", "external_id": USER, "handle": "@user0003"}]
    assert [(x["plan_id"], x["kind"], x["amount"], x["currency"]) for x in data["purchases"]] == [
        (plan_id, "lifetime", 19900, "eur")]
    assert [e["state"] for e in data["entitlements"]] == ["active"]
    assert [a["state"] for a in data["access"]] == ["granted"]
    assert [c["plan_id"] for c in data["checkout_attempts"]] == [plan_id]
    assert [t["kind"] for t in data["tokens"]] == ["session"]
    assert "checkout.session.completed" in {e["type"] for e in data["stripe_events"]}
    assert data["erasure"] is None and "Stripe" in data["held_elsewhere"]


def test_erase_removes_access_first_then_personal_data_and_keeps_the_kpis(pipeline):
    p = pipeline
    # Given a lifetime member with the role, a signed-in browser, and the month's numbers
    plan_id = _plan(p, "lifetime")
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    member_id = _member_id(p)
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    # When the creator asks for the erasure
    asked = p.admin("POST", f"/admin/members/{member_id}/erase", body={"reason": "member's request by email"})
    # Then it waits for the access to go, through the dispatcher (the role is still there until it runs)
    assert asked["status"] == 202, asked
    assert asked["body"]["state"] == "revoking" and asked["body"]["waiting_for"][0]["state"] == "granted"
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    p.pump()
    assert p.discord.guilds[GUILD].members[USER] == set()
    # When asked again, once the access is gone (and a third time: idempotent)
    done = p.admin("POST", f"/admin/members/{member_id}/erase", body={"reason": "member's request by email"})
    again = p.admin("POST", f"/admin/members/{member_id}/erase", body={"reason": "another"})
    # Then the personal data is gone: no account, no session, no message; found by id only, pseudonymous
    assert done["status"] == 200 and done["body"]["state"] == "erased", done
    assert done["body"]["removed"]["identities"] == 1 and done["body"]["removed"]["sessions"] >= 1
    assert again == done
    assert p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"] == []
    export = p.admin("GET", f"/admin/members/{member_id}/export")["body"]
    assert export["member"]["identities"] == [] and export["tokens"] == [] and export["messages"] == []
    assert export["checkout_attempts"] == [] and export["erasure"]["state"] == "erased"
    assert bootstrap.admin().stores.sessions.get_session(cookie.split("=", 1)[1], p.clock.now()) is None
    # And the purchase stays (ended, reason erased) with its amount; the timeline records the erasure
    assert [(x["ended_reason"], x["amount"]) for x in export["purchases"]] == [("erased", 19900)]
    timeline = p.admin("GET", f"/admin/members/{member_id}/timeline")["body"]["entries"]
    assert [e["summary"] for e in timeline if e["kind"] == "erasure"] == [
        "erasure asked: member's request by email", "personal data erased"]


def test_erase_through_the_api_forgets_email_and_card_and_is_audited_once(pipeline):
    p = pipeline
    # Given a lifetime member with an email and a card on file, both in their export
    plan_id = _plan(p, "lifetime")
    pay(p, bind_discord(p, plan_id), plan_id)
    member_id = _member_id(p)
    stores = bootstrap.admin().stores
    customer_id = stores.members.get(member_id).stripe_customer_id
    stores.contacts.set_email(member_id, "ana@example.com")
    stores.cards.save_card(customer_id, CardOnFile("pm_ana", card_expires_at(8, 2031), p.clock.now()))
    before = p.admin("GET", f"/admin/members/{member_id}/export")["body"]
    assert before["email"] == "ana@example.com"
    assert before["card_on_file"] == {"payment_method_id": "pm_ana", "expires": "2031-08"}
    # When the creator erases them through the API until done (three calls: asked, done, again)
    for _ in range(3):
        p.admin("POST", f"/admin/members/{member_id}/erase", body={"reason": "member's request"})
        p.pump()
    # Then the export shows nothing personal: no account, name, email, card, message or session
    after = p.admin("GET", f"/admin/members/{member_id}/export")["body"]
    assert after["erasure"]["state"] == "erased" and after["erasure"]["removed"]["card_on_file"] == 1
    assert (after["member"]["identities"], after["email"], after["card_on_file"]) == ([], None, None)
    assert after["messages"] == [] and after["tokens"] == [] and after["checkout_attempts"] == []
    assert "pm_ana" not in str(after) and "ana@example.com" not in str(after)
    assert stores.members.get(member_id).identities == () and stores.contacts.email(member_id) is None
    # And the KPIs' pseudonymous customer id stays, the card kept only as "erased"
    assert after["member"]["stripe_customer_id"] == customer_id and stores.cards.card(customer_id).erased
    # And the audit log has the erasure once, with who asked and why
    since = p.clock.now() - 86_400
    entries = [e for e in p.admin("GET", f"/admin/audit?since={since}")["body"]["entries"] if e["target"] == member_id]
    assert [(e["action"], e["reason"], e["actor"].startswith("token:")) for e in entries] == [
        ("member.erase", "member's request", True)]


def test_survey_answer_is_exported_then_erased_with_the_member(pipeline):
    p = pipeline
    # Given a member who left a comment in the exit survey, shown in their export
    plan_id = _plan(p, "lifetime")
    pay(p, bind_discord(p, plan_id), plan_id)
    member_id = _member_id(p)
    stores = bootstrap.admin().stores
    stores.surveys.save_answer(SurveyAnswer(member_id, plan_id, "sub_gone", "p1", "too_expensive",
                                            "trop cher pour moi, Ana", p.clock.now()))
    before = p.admin("GET", f"/admin/members/{member_id}/export")["body"]
    assert [(a["choice"], a["comment"]) for a in before["survey_answers"]] == [("too_expensive", "trop cher pour moi, Ana")]
    # When the creator erases them until done
    for _ in range(3):
        p.admin("POST", f"/admin/members/{member_id}/erase", body={"reason": "member's request"})
        p.pump()
    # Then the answer is gone from the export, the store and the creator's survey list, and counted as removed
    after = p.admin("GET", f"/admin/members/{member_id}/export")["body"]
    assert after["survey_answers"] == [] and after["erasure"]["removed"]["survey_answers"] == 1
    assert stores.surveys.for_member(member_id) == []
    assert all(a.member_id != member_id for a in stores.surveys.answers(50))


def test_erase_with_a_live_subscription_is_409_until_cancelled_in_stripe(pipeline):
    p = pipeline
    # Given a paying subscriber
    plan_id = _plan(p, "subscription")
    pay(p, bind_discord(p, plan_id), plan_id)
    member_id = _member_id(p)
    # When the erasure is asked while the subscription charges
    refused = p.admin("POST", f"/admin/members/{member_id}/erase", body={"reason": "request"})
    # Then 409 says to cancel it in Stripe first, and nothing changed
    assert refused["status"] == 409 and refused["body"]["error"]["code"] == "subscription_live"
    assert "cancel it first" in refused["body"]["error"]["message"]
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    # When, days later, the creator cancels it in Stripe and asks again until done
    p.advance(3 * 86_400)
    p.sandbox.cancel(subscription_of(p))
    p.pump()
    kpis_before = p.admin("GET", "/admin/kpis")["body"]
    history_before = history_from_stores(bootstrap.admin().stores)
    first = p.admin("POST", f"/admin/members/{member_id}/erase", body={"reason": "request"})
    p.pump()
    last = p.admin("POST", f"/admin/members/{member_id}/erase", body={"reason": "request"})
    # Then it is erased (at once if the cancellation already took the role)
    assert first["status"] in (200, 202) and last["status"] == 200 and last["body"]["state"] == "erased"
    assert p.discord.guilds[GUILD].members[USER] == set()
    # And the numbers, and the history the KPI engine reads, are as before: it stays, pseudonymous
    kpis_after = p.admin("GET", "/admin/kpis")["body"]
    kept = ("mrr", "movements", "churn", "cohorts", "paying_members", "conversion")
    assert {k: kpis_after[k] for k in kept} == {k: kpis_before[k] for k in kept}
    assert history_from_stores(bootstrap.admin().stores) == history_before and history_before.observations


@pytest.mark.parametrize("method,path,body,status", [
    ("GET", "/admin/members/mbr_nobody/export", None, 404),
    ("POST", "/admin/members/mbr_nobody/erase", {"reason": "x"}, 404),
    ("GET", "/admin/members/mbr%0D%0Ax/export", None, 400),
    ("POST", "/admin/members/mbr_x/erase", {}, 400),
    ("POST", "/admin/members/mbr_x/erase", {"reason": "   "}, 400),
    ("POST", "/admin/members/mbr_x/erase", {"reason": "x" * 501}, 400),
    ("POST", "/admin/members/mbr_x/erase", {"reason": 3}, 400),
    ("DELETE", "/admin/members/mbr_x/export", None, 405),
])
def test_data_rights_routes_refuse_in_the_envelope(pipeline, method, path, body, status):
    reply = pipeline.admin(method, path, body=body)
    assert reply["status"] == status and set(reply["body"]["error"]) >= {"code", "message"}


def test_data_rights_routes_need_the_token_first(pipeline):
    for method, path in (("GET", "/admin/members/mbr_x/export"), ("POST", "/admin/members/mbr_x/erase")):
        reply = pipeline.call("admin_api", method, path, body={"reason": "x"}, headers={"authorization": "Bearer no"})
        assert reply["statusCode"] == 401


def test_retention_settings_set_the_ttl_of_ledger_entries_and_message_records():
    from tests.support.aws import REGION, aws_stack

    import boto3

    from membergate.domain.model import LedgerEntry, MessageKey

    with aws_stack(LEDGER_RETENTION_DAYS="40", MESSAGE_RETENTION_DAYS="30") as stack:
        # Given retention of 40 days for the ledger and 30 for message records
        now = 1_800_000_000
        # When the intake records an event and a message is claimed
        bootstrap.intake().ledger.record_received(LedgerEntry("evt_ttl", "invoice.paid", "received", now, now))
        bootstrap.admin().stores.messages.claim(MessageKey("mbr_ttl", "reminder", "2027-01"), now)
        # Then DynamoDB's TTL attribute says when each goes
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        ledger = dynamodb.get_item(TableName=stack.ledger_table, Key={"pk": {"S": "STRIPE_EVENT#evt_ttl"}})["Item"]
        message = dynamodb.get_item(TableName=stack.membership_table,
                                    Key={"pk": {"S": "MEMBER#mbr_ttl"}, "sk": {"S": "MESSAGE#reminder#2027-01"}})["Item"]
        assert int(ledger["expires_at_ttl"]["N"]) == now + 40 * 86_400
        assert int(message["expires_at_ttl"]["N"]) == now + 30 * 86_400


@pytest.mark.parametrize("kind", ["subscription", "lifetime"])
def test_export_shows_the_consent_the_member_gave_at_checkout(kind):
    # Given a deployment with terms (Checkout asks to tick the box) and a member who paid for a plan
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord, env={"TERMS_URL": "https://creator.example/terms"}) as p:
        plan_id = _plan(p, kind)
        session_id = pay(p, bind_discord(p, plan_id), plan_id)
        # When the creator exports the member's data
        data = p.admin("GET", f"/admin/members/{_member_id(p)}/export")["body"]
    # Then the subscription (or purchase) carries the ticked terms box and the version of the waiver text shown
    [bought] = data["subscriptions"] if kind == "subscription" else data["purchases"]
    consent = bought["consent"]
    assert consent["session_id"] == session_id and consent["terms_of_service"] == "accepted"
    assert consent["text_version"].startswith("sha256:") and len(consent["text_version"]) == len("sha256:") + 16
    assert consent["at"].endswith("Z")
