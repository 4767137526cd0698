"""More issue-6 flows through the local stack's HTTP API: a promotion code at checkout, a creator's manual grant
extended then ended (with the `until` of each kind of entitlement),
cancelling from the member's own manage page through Stripe's portal."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from tests.e2e.test_billing_flows_stack import connect, kpis, pay, purchases, roles_of, to_stripe
from tests.e2e.test_creator_controls_stack import _connect
from tests.e2e.test_lifecycle_messages import _eventually, dms_to, messages_of, period_end, subscription_of
from tests.e2e.test_local_stack import business_now, entitlement_of

pytestmark = pytest.mark.e2e
DAY = 86_400
# Guild, role and price ids of this file only (the e2e stack is shared by every e2e test).
PREFIX = "96102000000000"


def offer(stack, *, tag: str, kind: str, price: dict, **plan: object) -> tuple[str, str, str]:
    """The creator's price at Stripe, a Discord community of its own and a plan selling it; -> (plan, guild, role)."""
    guild, role = f"{PREFIX}{tag}01", f"{PREFIX}{tag}02"
    registered = stack.post("/_local/stripe/_control/prices", json_body=price)
    assert registered.status == 200, registered.text
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": f"Guild gaps2 {tag}", "guild_id": guild, "role_id": role,
        "on_revoke": "remove_role"})
    assert community.status == 201, community.text
    made = stack.post("/admin/plans", admin=True, json_body={
        "name": price["product_name"], "kind": kind, "stripe_price_ids": [price["price_id"]],
        "grants": [{"community_id": community.json()["id"]}], **plan})
    assert made.status == 201, made.text
    return made.json()["id"], guild, role


def epoch(iso: str | None) -> int:
    assert iso is not None
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def member(stack, member_id: str) -> dict:
    (found,) = stack.get(f"/admin/members?member_id={member_id}", admin=True).json()["members"]
    return found


def test_promotion_code_typed_on_stripes_page_lowers_the_charge_grants_access_and_counts_what_was_paid(stack):
    # Given a 40.00 pass whose plan lets members enter a promotion code, and a 50 % code made at Stripe
    plan_id, guild, role = offer(stack, tag="20", kind="pass", access_days=30, checkout={"allow_promotion_codes": True}, price={
        "price_id": "price_e2e_gaps2_promo_pass", "unit_amount": 4000, "type": "one_time", "currency": "eur",
        "product_name": "Pass, half price"})
    made = stack.post("/_local/stripe/_control/promotion_codes", json_body={"code": "GAPS2HALF", "percent_off": 50})
    assert made.status == 200, made.text
    browser = connect(stack, plan_id, "gaps2-promo-pia")
    pay_page = to_stripe(browser, plan_id)
    # When the member opens Stripe's page, it offers the code field
    assert "name=promotion_code" in browser.get(pay_page).text
    # When they type a wrong code, they are told and stay on the page
    wrong = browser.post(pay_page, form={"outcome": "card", "promotion_code": "GAPS2NOPE"})
    assert wrong.status == 400 and "This code is invalid." in wrong.text, wrong.text
    before = kpis(stack)
    # When they pay with the real one
    user_id, customer = pay(stack, browser, pay_page, guild, promotion_code="gaps2half")
    # Then 20.00 is charged, the pass gives the role for 30 days, and the export and KPIs count 20.00
    charges = [e["data"]["object"]["amount"] for e in stack.get("/_local/stripe/_control/events").json()["data"]
               if e["type"] == "charge.succeeded" and e["data"]["object"]["customer"] == customer]
    assert charges == [2000], charges
    granted = entitlement_of(stack, customer)
    assert (granted["plan_id"], granted["state"]) == (plan_id, "active"), granted
    assert role in roles_of(stack, guild, user_id)
    assert purchases(stack, customer) == [(plan_id, 2000, "eur", None)]
    after = kpis(stack)
    assert after["one_time_revenue"].get("eur", 0) - before["one_time_revenue"].get("eur", 0) == 2000, (before, after)


def test_manual_grant_extended_then_ended_moves_until_and_the_role_and_audits_each_with_its_reason(stack):
    # Given a member who connected Discord on a monthly plan's join page but never paid
    plan_id, guild, role = offer(stack, tag="21", kind="subscription", price={
        "price_id": "price_e2e_gaps2_grant", "unit_amount": 1100, "currency": "eur", "interval": "month",
        "product_name": "Monthly, given"})
    _, member_id = _connect(stack, plan_id, "gaps2-grant-gia")
    since = business_now(stack) - 60
    # When the creator gives them 10 days
    given = stack.post(f"/admin/members/{member_id}/grants", admin=True,
                       json_body={"plan_id": plan_id, "days": 10, "reason": "podcast guest"})
    assert given.status == 201, given.text
    grant_id, now = given.json()["id"], business_now(stack)
    # Then they get the role, and their entitlement runs until now + 10 days
    (user_id,) = _eventually(lambda: [u for u, roles in stack.get(f"/_local/discord/guilds/{guild}").json()[
        "members"].items() if role in roles], stack)
    (granted,) = member(stack, member_id)["entitlements"]
    assert (granted["plan_id"], granted["state"]) == (plan_id, "active"), granted
    assert abs(epoch(granted["until"]) - (now + 10 * DAY)) <= 120, (granted, now)
    # When the creator extends the grant by 5 days
    extended = stack.post(f"/admin/grants/{grant_id}/extend", admin=True,
                          json_body={"days": 5, "reason": "second episode"})
    assert extended.status == 200, extended.text
    # Then `until` moves 5 days later, on the grant and on the member's entitlement
    assert epoch(extended.json()["until"]) == epoch(given.json()["until"]) + 5 * DAY, extended.json()
    (longer,) = member(stack, member_id)["entitlements"]
    assert epoch(longer["until"]) == epoch(given.json()["until"]) + 5 * DAY, longer
    assert role in roles_of(stack, guild, user_id)
    # When the creator ends it
    ended = stack.request("DELETE", f"/admin/grants/{grant_id}?reason=show%20cancelled", admin=True)
    assert ended.status == 200 and ended.json()["ended_reason"] == "revoked", ended.text
    # Then the role goes, and the audit log has all three, each with who and why
    assert _eventually(lambda: role not in roles_of(stack, guild, user_id), stack), roles_of(stack, guild, user_id)
    entries = stack.get(f"/admin/audit?since={since}&limit=200", admin=True).json()["entries"]
    mine = [(e["action"], e["target"], e["reason"]) for e in entries if e["member_id"] == member_id]
    assert sorted(mine) == sorted([("grant.create", grant_id, "podcast guest"),
                                   ("grant.extend", grant_id, "second episode"),
                                   ("grant.end", grant_id, "show cancelled")]), mine


def test_until_of_a_subscription_is_stripes_period_end_and_a_lifetime_has_none(stack):
    # Given a monthly subscriber and a lifetime buyer, both paid through Stripe's page
    monthly, monthly_guild, _ = offer(stack, tag="22", kind="subscription", price={
        "price_id": "price_e2e_gaps2_until_month", "unit_amount": 1200, "currency": "eur", "interval": "month",
        "product_name": "Monthly, until"})
    browser = connect(stack, monthly, "gaps2-until-uma")
    _, sub_customer = pay(stack, browser, to_stripe(browser, monthly), monthly_guild)
    lifetime, lifetime_guild, _ = offer(stack, tag="23", kind="lifetime", price={
        "price_id": "price_e2e_gaps2_until_life", "unit_amount": 9900, "type": "one_time", "currency": "eur",
        "product_name": "Lifetime, until"})
    browser = connect(stack, lifetime, "gaps2-until-lee")
    _, life_customer = pay(stack, browser, to_stripe(browser, lifetime), lifetime_guild)
    # When the creator looks them up
    subscribed, forever = entitlement_of(stack, sub_customer), entitlement_of(stack, life_customer)
    # Then the subscriber's access runs exactly to Stripe's current_period_end; the lifetime's has no end
    assert subscribed["state"] == "active" and epoch(subscribed["until"]) == period_end(
        subscription_of(stack, sub_customer)), subscribed
    assert (forever["state"], forever["until"]) == ("active", None), forever


def test_member_cancels_from_their_manage_page_through_stripes_portal_in_four_requests_and_gets_the_receipt(stack):
    # Given a monthly subscriber, in their own browser (signed in by the Discord step)
    plan_id, guild, role = offer(stack, tag="24", kind="subscription", price={
        "price_id": "price_e2e_gaps2_self_cancel", "unit_amount": 1300, "currency": "eur", "interval": "month",
        "product_name": "Monthly, self-cancelled"})
    browser = connect(stack, plan_id, "gaps2-cancel-cora")
    user_id, customer = pay(stack, browser, to_stripe(browser, plan_id), guild)
    sub = subscription_of(stack, customer)
    clicks: list[tuple[str, str]] = []
    send = browser.request

    def counted(method: str, path: str, **kw: object):
        clicks.append((method, path))
        return send(method, path, **kw)

    browser.request = counted  # type: ignore[method-assign]
    # When they open their page, choose Manage billing, then Cancel at period end on Stripe's portal
    page = browser.get(f"/join/{plan_id}?manage=1")
    assert page.status == 200 and "action='/billing/portal'" in page.text, page.text[-800:]
    opened = browser.post("/billing/portal", form={"plan_id": plan_id})
    assert opened.status == 303 and "/portal/" in opened.location, opened.text
    portal = browser.get(opened.location)
    assert portal.status == 200 and "Cancel at period end" in portal.text, portal.text
    action = re.search(r"<form method=post action='([^']+)'", portal.text).group(1)  # type: ignore[union-attr]
    cancelled = browser.post(action, form={"subscription": sub["id"], "action": "cancel_at_period_end"})
    # Then four requests did it, and Stripe's portal now says when it ends
    assert cancelled.status == 303 and len(clicks) == 4, clicks
    assert "Cancels on" in browser.get(cancelled.location).text
    # And Membergate shows the cancellation: the receipt sent to them, access kept until the period's end
    end = period_end(subscription_of(stack, customer))
    stack.post("/_local/clock", json_body={"advance_seconds": 60})
    receipts = _eventually(lambda: [m for m in dms_to(stack, user_id) if "cancellation of" in m], stack)
    assert len(receipts) == 1, dms_to(stack, user_id)
    assert datetime.fromtimestamp(end, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC") in receipts[0], receipts[0]
    # (the DM reaches Discord a moment before the dispatcher records it sent: wait for the record too)
    def receipt_states() -> list[str]:
        return [m["state"] for m in messages_of(stack, customer) if m["kind"] == "cancellation_receipt"]

    _eventually(lambda: receipt_states() == ["sent"], stack)
    assert receipt_states() == ["sent"]
    kept = entitlement_of(stack, customer)
    assert kept["state"] == "active" and epoch(kept["until"]) == end, kept
    assert role in roles_of(stack, guild, user_id)
