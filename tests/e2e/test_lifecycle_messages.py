"""Lifecycle messages through the local stack's HTTP API: notices before renewal, failures, leaving."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_local_stack import business_now, buy_through_the_stack

pytestmark = pytest.mark.e2e
DAY = 86_400


def subscription_of(stack, customer: str) -> dict:
    events = stack.get("/_local/stripe/_control/events").json()["data"]
    created = [e for e in events if e["type"] == "customer.subscription.created"
               and e["data"]["object"]["customer"] == customer]
    sub_id = created[-1]["data"]["object"]["id"]
    return stack.get(f"/_local/stripe/_control/subscriptions/{sub_id}").json()


def period_end(sub: dict) -> int:
    return sub.get("current_period_end") or min(i["current_period_end"] for i in sub["items"]["data"])


def dms_to(stack, user_id: str) -> list[str]:
    return [d["content"] for d in stack.get("/_local/discord/dms").json()["dms"] if d["user_id"] == user_id]


def _eventually(probe, stack, seconds: float = 30.0):
    """The probe's answer once it has one: on a busy machine the sweep's message may still be on
    its way when the first drain returns (the clock's sweep runs beside the consumers)."""
    deadline = time.monotonic() + seconds
    while not (found := probe()) and time.monotonic() < deadline:
        stack.post("/_local/drain")
        time.sleep(0.2)
    return found


def messages_of(stack, customer: str) -> list[dict]:
    return stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"][0]["messages"]


def advance_to(stack, epoch: int) -> None:
    moved = stack.post("/_local/clock", json_body={"advance_seconds": max(0, epoch - business_now(stack))})
    assert moved.status == 200, moved.text


def test_renewal_notice_arrives_n_days_ahead_exactly_once(stack):
    # Given a monthly subscriber on a plan with the default 7-day renewal notice
    user_id, customer = buy_through_the_stack(
        stack, guild="955500000000000021", role="955500000000000022", kind="subscription", username="notice-nina",
        price={"price_id": "price_e2e_notice", "unit_amount": 1200, "currency": "eur", "interval": "month",
               "product_name": "Monthly with notice"})
    end = period_end(subscription_of(stack, customer))
    # When business time reaches 8 days before the renewal
    advance_to(stack, end - 8 * DAY)
    # Then nothing is said yet
    assert not [m for m in dms_to(stack, user_id) if "renews on" in m]
    # When it reaches 7 days before, then a day later, then the sweep runs again
    advance_to(stack, end - 7 * DAY)
    advance_to(stack, end - 6 * DAY)
    stack.post("/_local/drain")
    # Then the member got one notice, naming the renewal date and the manage link
    notices = [m for m in dms_to(stack, user_id) if "renews on" in m]
    assert len(notices) == 1, notices
    assert "Monthly with notice" in notices[0] and "?manage=1" in notices[0]
    sent = [m for m in messages_of(stack, customer) if m["kind"] == "renewal_notice"]
    assert [m["state"] for m in sent] == ["sent"]


def test_cancellation_receipt_survey_answer_readable_by_creator_and_uncancel_says_so(stack):
    # Given a monthly subscriber
    user_id, customer = buy_through_the_stack(
        stack, guild="955500000000000031", role="955500000000000032", kind="subscription", username="leaving-lea",
        price={"price_id": "price_e2e_leave", "unit_amount": 1500, "currency": "eur", "interval": "month",
               "product_name": "Monthly to leave"})
    sub = subscription_of(stack, customer)
    end = period_end(sub)
    # When they cancel at period end and the sweep runs
    assert stack.post(f"/_local/stripe/_control/subscriptions/{sub['id']}/cancel",
                      json_body={"at_period_end": True}).status == 200
    stack.post("/_local/drain")
    stack.post("/_local/clock", json_body={"advance_seconds": 60})
    stack.post("/_local/drain")
    # Then one receipt names the exact end date, and links to the exit survey
    receipts = [m for m in dms_to(stack, user_id) if "cancellation of" in m]
    assert len(receipts) == 1, dms_to(stack, user_id)
    from datetime import datetime, timezone
    assert datetime.fromtimestamp(end, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC") in receipts[0]
    survey_path = "/survey/" + receipts[0].split("/survey/")[1].split()[0]
    # When the member opens the survey, answers with hostile free text, and a forged token is tried
    page = stack.get(survey_path)
    assert page.status == 200 and "too_expensive" in page.text
    assert stack.post("/survey/forged-token", form={"choice": "other"}).status == 404
    assert stack.post(survey_path, form={"choice": "not-a-choice"}).status == 400
    done = stack.post(survey_path, form={"choice": "too_expensive", "comment": "trop cher\r\npour moi é"})
    assert done.status == 200, done.text
    # Then the creator reads the answer, in the list and in the member's timeline
    answers = stack.get("/admin/surveys", admin=True).json()["answers"]
    mine = [a for a in answers if a["subscription_id"] == sub["id"]]
    assert [(a["choice"], a["comment"]) for a in mine] == [("too_expensive", "trop cher pour moi é")]
    member_id = mine[0]["member_id"]
    timeline = stack.get(f"/admin/members/{member_id}/timeline", admin=True).json()["entries"]
    assert any(e["kind"] == "survey" and e["detail"]["choice"] == "too_expensive" for e in timeline)
    # When they take the cancellation back before the end
    sandbox_key = {"Authorization": "Bearer sk_test_local"}
    resumed = stack.post(f"/_local/stripe/v1/subscriptions/{sub['id']}", form={"cancel_at_period_end": "false"},
                         headers=sandbox_key)
    assert resumed.status == 200, resumed.text
    stack.post("/_local/drain")
    stack.post("/_local/clock", json_body={"advance_seconds": 60})
    stack.post("/_local/drain")
    # Then they are told everything continues, once, and keep their access
    assert len([m for m in dms_to(stack, user_id) if "continues" in m]) == 1
    assert stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"][0][
        "entitlements"][0]["state"] == "active"


def test_message_refused_on_discord_goes_by_email_recorded_by_ses(stack):
    # Given a subscriber whose Discord DMs are closed
    user_id, customer = buy_through_the_stack(
        stack, guild="955500000000000051", role="955500000000000052", kind="subscription", username="closed-cleo",
        price={"price_id": "price_e2e_mail", "unit_amount": 1500, "currency": "eur", "interval": "month",
               "product_name": "Monthly by mail"})
    assert stack.post(f"/_local/discord/users/{user_id}/dms", json_body={"open": False}).status == 200
    sub = subscription_of(stack, customer)
    before = len(stack.get("/_local/mail").json()["mail"])
    # When they cancel and the receipt is sent
    assert stack.post(f"/_local/stripe/_control/subscriptions/{sub['id']}/cancel",
                      json_body={"at_period_end": True}).status == 200
    stack.post("/_local/drain")
    stack.post("/_local/clock", json_body={"advance_seconds": 60})
    stack.post("/_local/drain")
    # Then no DM went out, and SES (moto) recorded one email to the address typed at checkout
    assert not [m for m in dms_to(stack, user_id) if "cancellation of" in m]
    mail = stack.get("/_local/mail").json()["mail"][before:]
    assert len(mail) == 1, (mail, messages_of(stack, customer))
    assert mail[0]["to"] and mail[0]["to"][0].endswith("@example.test")
    assert mail[0]["from"] == "members@membergate.local"
    assert "cancellation of Monthly by mail" in mail[0]["body"] and "/survey/" in mail[0]["body"]
    assert "Guild closed-cleo" in mail[0]["subject"]
    # And the creator sees the message sent, by email, with why
    receipt = [m for m in messages_of(stack, customer) if m["kind"] == "cancellation_receipt"]
    assert [(m["state"], m["reason"]) for m in receipt] == [("sent", "by email (dms_closed)")]



def test_failed_payment_message_carries_a_link_straight_to_the_billing_portal(stack):
    # Given a subscriber whose card now declines
    user_id, customer = buy_through_the_stack(
        stack, guild="955500000000000061", role="955500000000000062", kind="subscription", username="declined-dan",
        price={"price_id": "price_e2e_declined", "unit_amount": 1500, "currency": "eur", "interval": "month",
               "product_name": "Monthly declined"})
    assert stack.post(f"/_local/stripe/_control/customers/{customer}/payment_method",
                      json_body={"behaviour": "declines"}).status == 200
    end = period_end(subscription_of(stack, customer))
    # When the renewal fails and the sweep runs
    advance_to(stack, end + 60)
    stack.post("/_local/drain")
    stack.post("/_local/clock", json_body={"advance_seconds": 60})
    stack.post("/_local/drain")
    # Then the member is told, with their personal billing link
    failed = _eventually(lambda: [m for m in dms_to(stack, user_id) if "didn't go through" in m], stack)
    assert len(failed) == 1, dms_to(stack, user_id)
    link = "/billing/portal/" + failed[0].split("/billing/portal/")[1].split()[0]
    # When they open it (from any browser: no session needed)
    opened = stack.get(link)
    # Then it leads to Stripe's customer portal for their customer
    assert opened.status == 303, opened.text
    assert "/_local/stripe/portal/" in opened.location
    # And a forged or malformed link is a page saying what to do, never a 5xx
    forged = stack.get("/billing/portal/forged-token")
    assert forged.status == 404 and "Manage billing" in forged.text
    assert stack.get("/billing/portal/%0D%0Abad").status in (400, 404)


def test_survey_and_portal_link_routes_refuse_hostile_input_without_5xx(stack):
    # Given the member-facing routes added for the lifecycle messages, and the creator's list
    nested = ("[" * 40 + "]" * 40).encode()
    cases = [
        ("GET", "/survey/%C3%A9t%C3%A9", {}),
        ("GET", "/survey/%0D%0Ainjected", {}),
        ("POST", "/survey/unknown-token", {"data": b"choice=\xff\xfe", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("POST", "/survey/unknown-token", {"data": nested, "headers": {"Content-Type": "application/json"}}),
        ("POST", "/survey/unknown-token", {"data": b"a" * 70_000, "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("POST", "/survey/unknown-token", {"data": b"{}", "headers": {"Content-Type": "text/plain"}}),
        ("GET", "/billing/portal/%E2%9C%93", {}),
        ("GET", "/billing/portal/" + "a" * 300, {}),
    ]
    for method, path, kw in cases:
        # When each hostile request arrives
        reply = stack.request(method, path, **kw)
        # Then it is refused with a 4xx: an HTML page, or the JSON error envelope from the edge
        assert 400 <= reply.status < 500, (method, path, reply.status, reply.text[:200])
        if "json" in reply.headers.get("content-type", ""):
            assert set(reply.json()["error"]) >= {"code", "message"}
    # And the creator's list needs the admin token and checks its query
    assert stack.get("/admin/surveys").status == 401
    bad = stack.get("/admin/surveys?limit=abc", admin=True)
    assert bad.status in (400, 422) and "error" in bad.json()
    assert stack.get("/admin/surveys?limit=5", admin=True).status == 200


def test_welcome_on_first_access_on_discord_once_and_by_email_when_dms_are_closed(stack):
    from infra.local.discord_standin import snowflake_for

    # Given a member who buys with DMs open, and another whose DMs are closed before they pay
    closed = snowflake_for("welcome-wes")
    assert stack.post(f"/_local/discord/users/{closed}/dms", json_body={"open": False}).status == 200
    before = len(stack.get("/_local/mail").json()["mail"])
    user_id, customer = buy_through_the_stack(
        stack, guild="955500000000000071", role="955500000000000072", kind="subscription", username="welcome-wendy",
        price={"price_id": "price_e2e_welcome", "unit_amount": 900, "currency": "eur", "interval": "month",
               "product_name": "Monthly welcome"})
    wes, wes_customer = buy_through_the_stack(
        stack, guild="955500000000000073", role="955500000000000074", kind="subscription", username="welcome-wes",
        price={"price_id": "price_e2e_welcome_mail", "unit_amount": 900, "currency": "eur", "interval": "month",
               "product_name": "Monthly welcome by mail"})
    assert wes == closed
    # When the queues are drained again (a repeated convergence) and the creator resyncs
    stack.post("/_local/drain")
    member_id = stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"][0]["id"]
    assert stack.post(f"/admin/members/{member_id}/resync", admin=True).status in (200, 202)
    stack.post("/_local/drain")
    # Then the first got one welcome on Discord, after the role, with the rules and their manage link
    welcomes = [m for m in dms_to(stack, user_id) if m.startswith("Welcome to Guild welcome-wendy")]
    assert len(welcomes) == 1, dms_to(stack, user_id)
    assert "rules" in welcomes[0] and "?manage=1" in welcomes[0]
    assert [m["state"] for m in messages_of(stack, customer) if m["kind"] == "welcome"] == ["sent"]
    # And the second got it by email through SES (moto), recorded as sent by email
    mail = [m for m in stack.get("/_local/mail").json()["mail"][before:] if "Welcome to Guild welcome-wes" in m["body"]]
    assert len(mail) == 1 and mail[0]["to"][0].endswith("@example.test")
    assert not dms_to(stack, wes)
    sent = [(m["state"], m["reason"]) for m in messages_of(stack, wes_customer) if m["kind"] == "welcome"]
    assert sent == [("sent", "by email (dms_closed)")]


def _pay_as(stack, plan_id: str, username: str) -> None:
    """The member's own browser: Discord sign-in (same username, same Discord account), then Checkout by card."""
    from urllib.parse import parse_qs, urlsplit

    from infra.local.client import Client
    from tests.e2e.conftest import ADMIN_TOKEN

    browser = Client(stack.base_url, ADMIN_TOKEN)
    authorize = urlsplit(browser.get(f"/auth/discord/start?plan_id={plan_id}").location)
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    back = browser.post(authorize.path, form={**params, "username": username, "decision": "allow"})
    browser.follow(browser.get(back.location))
    to_stripe = browser.post("/checkout", form={"plan_id": plan_id, "waiver": "on"})
    assert to_stripe.status == 303, to_stripe.text
    assert browser.post(to_stripe.location, form={"outcome": "card"}).status == 303


def test_trial_ending_notice_arrives_through_the_clock_once_before_the_first_charge(stack):
    # Given a plan with a 7-day free trial (the member is told 3 days before it ends, the default)
    guild, role = "955500000000000083", "955500000000000084"
    price = {"price_id": "price_e2e_trial", "unit_amount": 1100, "currency": "eur", "interval": "month",
             "product_name": "Monthly with a trial"}
    assert stack.post("/_local/stripe/_control/prices", json_body=price).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Guild trial-tess", "guild_id": guild, "role_id": role}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": price["product_name"], "kind": "subscription", "stripe_price_ids": [price["price_id"]],
        "grants": [{"community_id": community["id"]}], "trial_days": 7})
    assert plan.status == 201, plan.text
    # When a member starts the trial through Checkout
    _pay_as(stack, plan.json()["id"], "trial-tess")
    members = _eventually(lambda: stack.get(f"/_local/discord/guilds/{guild}").json()["members"], stack)
    (user_id, roles), = members.items()
    assert role in roles
    customer = stack.get(f"/admin/members?discord_user_id={user_id}", admin=True).json()["members"][0][
        "stripe_customer_id"]
    sub = subscription_of(stack, customer)
    assert sub["status"] == "trialing", sub
    trial_end = sub["trial_end"]
    # When business time reaches 4 days before the trial ends: nothing is said yet
    advance_to(stack, trial_end - 4 * DAY)
    stack.post("/_local/drain")
    assert not [m for m in dms_to(stack, user_id) if "free trial" in m]
    # When it reaches 3 days before, then a day later (the sweep runs each time)
    advance_to(stack, trial_end - 3 * DAY + 60)
    advance_to(stack, trial_end - 2 * DAY)
    # Then one notice names the plan and the first charge date, and the creator sees it sent
    from datetime import datetime, timezone

    notices = _eventually(lambda: [m for m in dms_to(stack, user_id) if "free trial" in m], stack)
    assert len(notices) == 1, dms_to(stack, user_id)
    assert "Monthly with a trial" in notices[0]
    assert datetime.fromtimestamp(trial_end, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC") in notices[0]
    assert [m["state"] for m in messages_of(stack, customer) if m["kind"] == "trial_ending"] == ["sent"]


def test_member_kicked_when_cancelled_pays_again_and_is_back_in_as_the_same_member(stack):
    # Given a subscriber of a community that kicks members who leave
    guild, role = "955500000000000091", "955500000000000092"
    user_id, customer = buy_through_the_stack(
        stack, guild=guild, role=role, kind="subscription", username="again-abe",
        price={"price_id": "price_e2e_again", "unit_amount": 1300, "currency": "eur", "interval": "month",
               "product_name": "Monthly again"})
    member = stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"][0]
    communities = stack.get("/admin/communities", admin=True).json()["communities"]
    community_id = next(c["id"] for c in communities if c["guild_id"] == guild)
    patched = stack.request("PATCH", f"/admin/communities/{community_id}", admin=True,
                            json_body={"on_revoke": "kick"})
    assert patched.status == 200, patched.text
    # When the subscription is cancelled now (not at period end)
    sub = subscription_of(stack, customer)
    assert stack.post(f"/_local/stripe/_control/subscriptions/{sub['id']}/cancel",
                      json_body={"at_period_end": False}).status == 200

    def guild_members() -> dict:
        return stack.get(f"/_local/discord/guilds/{guild}").json()["members"]

    # Then they are told, then removed from the server
    assert _eventually(lambda: user_id not in guild_members(), stack), guild_members()
    assert [m for m in dms_to(stack, user_id) if "Come back any time" in m]
    # When they pay again for the same plan, from their own browser
    _pay_as(stack, member["entitlements"][0]["plan_id"], "again-abe")
    # Then they are back in the server with the role, as the same member, welcomed only the first time
    assert _eventually(lambda: role in (guild_members().get(user_id) or []), stack), guild_members()
    again = stack.get(f"/admin/members?discord_user_id={user_id}", admin=True).json()["members"]
    assert [m["id"] for m in again] == [member["id"]]
    assert any(e["state"] == "active" for e in again[0]["entitlements"]), again[0]["entitlements"]
    assert len([m for m in dms_to(stack, user_id) if m.startswith("Welcome to")]) == 1
