"""Issue-6 flows through the local stack's HTTP API that had none: a lifetime purchase refunded in full,
the card-expiring warning, Stripe Tax at checkout, every message by email too (EmailMessages=always), the
French annual renewal notice (L215-1), the removals preview, the creator's switch of a member's tier."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.e2e.test_billing_flows_stack import connect, offer, pay, purchases, refund, roles_of, to_stripe
from tests.e2e.test_lifecycle_messages import _eventually, advance_to, dms_to, messages_of, period_end, subscription_of
from tests.e2e.test_local_stack import business_now, entitlement_of

pytestmark = pytest.mark.e2e
DAY = 86_400


def test_lifetime_purchase_refunded_in_full_ends_the_grant_and_the_role(stack):
    # Given lifetime access bought through the stack (guild/role/price ids used by no other test)
    plan_id, guild, role = offer(stack, tag="11", kind="lifetime", prices=[{
        "price_id": "price_e2e_gaps_life_refund", "unit_amount": 19900, "type": "one_time", "currency": "eur",
        "product_name": "Founder, refunded"}])
    browser = connect(stack, plan_id, "gaps-lifetime-lou")
    user_id, customer = pay(stack, browser, to_stripe(browser, plan_id), guild)
    assert entitlement_of(stack, customer)["state"] == "active"
    assert role in roles_of(stack, guild, user_id)
    # When the creator refunds the whole payment at Stripe
    refund(stack, customer)
    # Then the lifetime grant ends with reason refunded, the purchase says so, and the role goes
    ended = entitlement_of(stack, customer)
    assert (ended["plan_id"], ended["state"], ended["reason"]) == (plan_id, "ended", "refunded"), ended
    assert purchases(stack, customer) == [(plan_id, 19900, "eur", "refunded")]
    assert role not in roles_of(stack, guild, user_id)


def test_card_expiring_before_the_renewal_warns_the_member_once_a_week_ahead(stack):
    # Given a monthly subscriber whose card (typed on Stripe's page) expires at the end of this month,
    # before the renewal
    plan_id, guild, role = offer(stack, tag="12", kind="subscription", prices=[{
        "price_id": "price_e2e_gaps_card_expiring", "unit_amount": 1400, "currency": "eur", "interval": "month",
        "product_name": "Monthly, card expiring"}])
    browser = connect(stack, plan_id, "gaps-expiry-erin")
    today = datetime.fromtimestamp(business_now(stack), tz=timezone.utc)
    user_id, customer = pay(stack, browser, to_stripe(browser, plan_id), guild,
                            card_expiry=f"{today.month:02d}/{today.year % 100:02d}")
    end = period_end(subscription_of(stack, customer))

    def warnings() -> list[str]:
        return [m for m in dms_to(stack, user_id) if "expires before your next payment" in m]

    # When business time reaches 8 days before the renewal: nothing is said yet
    advance_to(stack, end - 8 * DAY)
    stack.post("/_local/drain")
    assert not warnings()
    # When it reaches 7 days before, then a day later (the sweep runs each time)
    advance_to(stack, end - 7 * DAY + 60)
    advance_to(stack, end - 6 * DAY)
    # Then one warning names the plan and links to their billing portal to add a card; the creator sees it sent
    sent = _eventually(warnings, stack)
    assert len(sent) == 1, dms_to(stack, user_id)
    assert "Monthly, card expiring" in sent[0] and "/billing/portal/" in sent[0]
    assert [m["state"] for m in messages_of(stack, customer) if m["kind"] == "card_expiring"] == ["sent"]
    assert role in roles_of(stack, guild, user_id)


def test_stripe_tax_on_checkout_asks_stripe_for_automatic_tax_with_the_billing_address_and_grants_access(stack):
    # Given a deployment with StripeTax on (tests/e2e/conftest.py) and a plan with automatic tax
    plan_id, guild, role = offer(stack, tag="13", kind="subscription", checkout={"automatic_tax": True}, prices=[{
        "price_id": "price_e2e_gaps_tax", "unit_amount": 1500, "currency": "eur", "interval": "month",
        "product_name": "Monthly, tax added"}])
    browser = connect(stack, plan_id, "gaps-tax-tina")
    pay_page = to_stripe(browser, plan_id)
    # When the member reaches Stripe's page
    page = browser.get(pay_page)
    # Then it says Stripe Tax computes the tax from their billing address
    assert page.status == 200 and "Tax is computed from your billing address (Stripe Tax)." in page.text, page.text
    # When they pay
    user_id, customer = pay(stack, browser, pay_page, guild)
    # Then the session Stripe completed had automatic tax on, collecting the address onto the customer
    (session,) = [e["data"]["object"] for e in stack.get("/_local/stripe/_control/events").json()["data"]
                  if e["type"] == "checkout.session.completed" and e["data"]["object"]["customer"] == customer]
    assert session["automatic_tax"]["enabled"] is True, session["automatic_tax"]
    assert session["billing_address_collection"] == "required"
    # And the member has access like any other
    assert entitlement_of(stack, customer)["state"] == "active"
    assert role in roles_of(stack, guild, user_id)


def test_email_messages_always_sends_the_welcome_by_email_recorded_by_ses_as_well_as_on_discord(stack):
    # Given a deployment with EmailMessages always (tests/e2e/conftest.py) and a member whose DMs are open
    plan_id, guild, role = offer(stack, tag="14", kind="subscription", prices=[{
        "price_id": "price_e2e_gaps_mail_always", "unit_amount": 800, "currency": "eur", "interval": "month",
        "product_name": "Monthly, mail too"}])
    before = len(stack.get("/_local/mail").json()["mail"])
    browser = connect(stack, plan_id, "gaps-mail-mia")
    # When they pay and get access
    user_id, customer = pay(stack, browser, to_stripe(browser, plan_id), guild)

    def mailed() -> list[dict]:
        return [m for m in stack.get("/_local/mail").json()["mail"][before:]
                if "Welcome to Guild flows 14" in m["body"]]

    # Then the welcome is on Discord, and SES (moto) recorded the same welcome to the address typed at checkout
    welcomes = _eventually(lambda: [m for m in dms_to(stack, user_id) if m.startswith("Welcome to Guild flows 14")],
                           stack)
    assert len(welcomes) == 1, dms_to(stack, user_id)
    mail = _eventually(mailed, stack)
    assert len(mail) == 1 and mail[0]["to"][0].endswith("@example.test"), mail
    assert mail[0]["body"].strip() == welcomes[0].strip()
    # And the creator sees it sent on Discord and by email
    assert [(m["state"], m["reason"]) for m in messages_of(stack, customer) if m["kind"] == "welcome"] == [
        ("sent", "and by email")]


def test_french_annual_renewal_notice_goes_out_once_three_months_before_the_tacit_renewal(stack):
    # Given a yearly subscriber of a French-speaking community
    plan_id, guild, role = offer(stack, tag="15", kind="subscription", prices=[{
        "price_id": "price_e2e_gaps_yearly_fr", "unit_amount": 9900, "currency": "eur", "interval": "year",
        "product_name": "Annuel, reconduit"}])
    community_id = next(c["id"] for c in stack.get("/admin/communities", admin=True).json()["communities"]
                        if c.get("guild_id") == guild)
    patched = stack.request("PATCH", f"/admin/communities/{community_id}", admin=True, json_body={"locale": "fr"})
    assert patched.status == 200, patched.text
    browser = connect(stack, plan_id, "gaps-annuel-anais")
    user_id, customer = pay(stack, browser, to_stripe(browser, plan_id), guild)
    end = period_end(subscription_of(stack, customer))

    def legal() -> list[str]:
        return [m for m in dms_to(stack, user_id) if "reconduit automatiquement" in m]

    # When business time reaches 93 days before the renewal (three calendar months are 89 to 92 days)
    advance_to(stack, end - 93 * DAY)
    stack.post("/_local/drain")
    # Then nothing is said yet
    assert not legal()
    # When it reaches 89 days before, then a day later (the sweep runs each time)
    advance_to(stack, end - 89 * DAY)
    advance_to(stack, end - 88 * DAY)
    # Then one notice, in French, names the plan, the renewal date and the way to cancel, citing L215-1
    sent = _eventually(legal, stack)
    assert len(sent) == 1, dms_to(stack, user_id)
    assert "Annuel, reconduit" in sent[0] and "L215-1" in sent[0] and "?manage=1" in sent[0], sent[0]
    assert [m["state"] for m in messages_of(stack, customer) if m["kind"] == "renewal_legal_notice"] == ["sent"]
    assert role in roles_of(stack, guild, user_id)


def member_id_of(stack, customer: str) -> str:
    return stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"][0]["id"]


def test_removals_preview_lists_a_member_in_grace_one_cancelling_at_period_end_and_a_pass(stack):
    # Given a monthly subscriber whose renewal failed (in grace now)
    grace_plan, grace_guild, _ = offer(stack, tag="16", kind="subscription", prices=[{
        "price_id": "price_e2e_gaps_preview_grace", "unit_amount": 700, "currency": "eur", "interval": "month",
        "product_name": "Monthly, in grace"}])
    browser = connect(stack, grace_plan, "gaps-grace-gus")
    _, grace_customer = pay(stack, browser, to_stripe(browser, grace_plan), grace_guild)
    assert stack.post(f"/_local/stripe/_control/customers/{grace_customer}/payment_method",
                      json_body={"behaviour": "declines"}).status == 200
    advance_to(stack, period_end(subscription_of(stack, grace_customer)) + 60)
    assert _eventually(lambda: entitlement_of(stack, grace_customer)["state"] == "grace", stack), \
        entitlement_of(stack, grace_customer)
    # and a monthly subscriber who cancelled at period end, and a 30-day pass holder
    leaving_plan, leaving_guild, _ = offer(stack, tag="17", kind="subscription", prices=[{
        "price_id": "price_e2e_gaps_preview_leaving", "unit_amount": 700, "currency": "eur", "interval": "month",
        "product_name": "Monthly, leaving"}])
    browser = connect(stack, leaving_plan, "gaps-leaving-liv")
    _, leaving_customer = pay(stack, browser, to_stripe(browser, leaving_plan), leaving_guild)
    sub = subscription_of(stack, leaving_customer)
    assert stack.post(f"/_local/stripe/_control/subscriptions/{sub['id']}/cancel",
                      json_body={"at_period_end": True}).status == 200
    pass_plan, pass_guild, _ = offer(stack, tag="18", kind="pass", access_days=30, prices=[{
        "price_id": "price_e2e_gaps_preview_pass", "unit_amount": 2500, "type": "one_time", "currency": "eur",
        "product_name": "Pass, ending"}])
    browser = connect(stack, pass_plan, "gaps-pass-pam")
    _, pass_customer = pay(stack, browser, to_stripe(browser, pass_plan), pass_guild)
    mine = {member_id_of(stack, c): c for c in (grace_customer, leaving_customer, pass_customer)}
    now = business_now(stack)
    expected = {(grace_customer, "grace_expired"), (leaving_customer, "cancelled_at_period_end"),
                (pass_customer, "pass_expired")}

    def preview() -> list[dict]:
        reply = stack.get(f"/admin/removals/preview?until={now + 40 * DAY}", admin=True)
        assert reply.status == 200, reply.text
        return [r for r in reply.json()["removals"] if r["member_id"] in mine]

    # When the creator previews the removals of the next 40 days (once the cancellation's event is applied)
    _eventually(lambda: {(mine[r["member_id"]], r["reason"]) for r in preview()} == expected, stack)
    listed = preview()
    # Then the three are listed, each with the reason their entitlement will end with, soonest first
    assert {(mine[r["member_id"]], r["reason"]) for r in listed} == expected, listed
    assert [r["at"] for r in listed] == sorted(r["at"] for r in listed)
    assert listed[0]["member_id"] == member_id_of(stack, grace_customer)
    # And an 'until' before the grace ends lists none of them; a malformed one is the envelope, never a 5xx
    early = stack.get(f"/admin/removals/preview?until={now}", admin=True).json()["removals"]
    assert not [r for r in early if r["member_id"] in mine], early
    bad = stack.get("/admin/removals/preview?until=%E2%9C%93", admin=True)
    assert bad.status in (400, 422) and set(bad.json()["error"]) >= {"code", "message"}, bad.text
    assert stack.get(f"/admin/removals/preview?until={now}").status == 401


def test_creator_switch_through_the_stack_changes_the_stripe_item_moves_the_role_and_audits(stack):
    # Given a community sold in two tiers, Basic (its role) and VIP (a role of its own), and a Basic subscriber
    guild, basic_role, vip_role = "961010000000001901", "961010000000001902", "961010000000001903"
    for price_id, amount in (("price_e2e_gaps_tier_basic", 900), ("price_e2e_gaps_tier_vip", 2500)):
        assert stack.post("/_local/stripe/_control/prices", json_body={
            "price_id": price_id, "unit_amount": amount, "currency": "eur", "interval": "month",
            "product_name": "Tiers, switched"}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Guild tiers 19", "guild_id": guild, "role_id": basic_role,
        "on_revoke": "remove_role"})
    assert community.status == 201, community.text
    basic = stack.post("/admin/plans", admin=True, json_body={
        "name": "Basic", "kind": "subscription", "stripe_price_ids": ["price_e2e_gaps_tier_basic"],
        "grants": [{"community_id": community.json()["id"]}]}).json()["id"]
    vip = stack.post("/admin/plans", admin=True, json_body={
        "name": "VIP", "kind": "subscription", "stripe_price_ids": ["price_e2e_gaps_tier_vip"],
        "grants": [{"community_id": community.json()["id"], "role_id": vip_role}]}).json()["id"]
    browser = connect(stack, basic, "gaps-switch-sol")
    user_id, customer = pay(stack, browser, to_stripe(browser, basic), guild)
    assert roles_of(stack, guild, user_id) == [basic_role]
    member_id = member_id_of(stack, customer)
    since = business_now(stack) - 60
    # When the creator switches them to VIP
    switched = stack.post(f"/admin/members/{member_id}/switch", admin=True,
                          json_body={"plan_id": vip, "reason": "asked by email"})
    assert switched.status == 200, switched.text
    body = switched.json()
    # Then Stripe's subscription (the same one) now bills the VIP price
    (sub,) = [s for s in stack.get(f"/_local/stripe/_control/subscriptions/{body['subscription_id']}").json()[
        "items"]["data"]]
    assert sub["price"]["id"] == "price_e2e_gaps_tier_vip"
    assert (body["from_plan_id"], body["plan_id"], body["price_id"]) == (basic, vip, "price_e2e_gaps_tier_vip")
    # And the role moves from Basic's to VIP's
    assert _eventually(lambda: roles_of(stack, guild, user_id) == [vip_role], stack), roles_of(stack, guild, user_id)
    assert _eventually(lambda: entitlement_of(stack, customer)["plan_id"] == vip, stack), entitlement_of(stack, customer)
    # And the audit log has the switch, with who did it, why and from which tier
    entries = stack.get(f"/admin/audit?since={since}&limit=200", admin=True).json()["entries"]
    (entry,) = [e for e in entries if e["id"] == body["audit_id"]]
    assert (entry["action"], entry["target"], entry["member_id"], entry["reason"]) == (
        "subscription.switch", body["subscription_id"], member_id, "asked by email"), entry
    assert entry["detail"] == {"from_plan_id": basic, "plan_id": vip, "price_id": "price_e2e_gaps_tier_vip"}
    # And switching again to the same tier is a 409 saying so
    again = stack.post(f"/admin/members/{member_id}/switch", admin=True, json_body={"plan_id": vip, "reason": "x"})
    assert again.status == 409 and again.json()["error"]["code"], again.text
