"""Billing flows through the local stack's HTTP API: the member's choice of price and amount at checkout,
a pass refunded, a customer deleted, a renewal needing the member's authentication."""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.local.client import Client
from tests.e2e.conftest import ADMIN_TOKEN
from tests.e2e.test_lifecycle_messages import _eventually, dms_to
from tests.e2e.test_local_stack import business_now, entitlement_of, stripe_subscriptions

pytestmark = pytest.mark.e2e
DAY = 86_400
# Guild, role and price ids of this file only (the e2e stack is shared by every e2e test).
PREFIX = "96101000000000"


def offer(stack, *, tag: str, kind: str, prices: list[dict], **plan: object) -> tuple[str, str, str]:
    """The creator's prices at Stripe, a Discord community of its own and a plan selling them; -> (plan, guild, role)."""
    guild, role = f"{PREFIX}{tag}01", f"{PREFIX}{tag}02"
    for price in prices:
        registered = stack.post("/_local/stripe/_control/prices", json_body=price)
        assert registered.status == 200, registered.text
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": f"Guild flows {tag}", "guild_id": guild, "role_id": role,
        "on_revoke": "remove_role"})
    assert community.status == 201, community.text
    made = stack.post("/admin/plans", admin=True, json_body={
        "name": prices[0]["product_name"], "kind": kind, "stripe_price_ids": [p["price_id"] for p in prices],
        "grants": [{"community_id": community.json()["id"]}], **plan})
    assert made.status == 201, made.text
    return made.json()["id"], guild, role


def connect(stack, plan_id: str, username: str) -> Client:
    """A member's own browser, connected with Discord on the plan's join page."""
    browser = Client(stack.base_url, ADMIN_TOKEN)
    authorize = urlsplit(browser.get(f"/auth/discord/start?plan_id={plan_id}").location)
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    back = browser.post(authorize.path, form={**params, "username": username, "decision": "allow"})
    browser.follow(browser.get(back.location))
    return browser


def to_stripe(browser: Client, plan_id: str, price_id: str | None = None) -> str:
    """The join page's pay button (with the price the member ticked): -> the sandbox's pay page."""
    form = {"plan_id": plan_id, "waiver": "on", **({"price_id": price_id} if price_id else {})}
    reply = browser.post("/checkout", form=form)
    assert reply.status == 303, reply.text
    return reply.location


def pay(stack, browser: Client, pay_page: str, guild: str, **fields: str) -> tuple[str, str]:
    """Pay on the sandbox's page and wait for the role; -> (discord id, customer)."""
    already = set(holders(stack, guild))
    paid = browser.post(pay_page, form={"outcome": "card", **fields})
    assert paid.status == 303, paid.text
    deadline = time.monotonic() + 20
    while True:
        stack.post("/_local/drain")
        new = set(holders(stack, guild)) - already
        if new or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (user_id,) = new
    customer = stack.get(f"/admin/members?discord_user_id={user_id}", admin=True).json()["members"][0][
        "stripe_customer_id"]
    return user_id, customer


def purchases(stack, customer: str) -> list[tuple[str, int, str, str | None]]:
    """The member's one-time purchases as their data export lists them: (plan, amount, currency, ended reason).
    Paid through a Checkout Session only: the export also lists a creator's given grant there, at 0."""
    return [(p["plan_id"], p["amount"], p["currency"], p["ended_reason"]) for p in export(stack, customer)["purchases"]
            if p["purchase_id"].startswith("cs_")]


def export(stack, customer: str) -> dict:
    """The member's data export (GET /admin/members/{id}/export)."""
    member_id = stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"][0]["id"]
    exported = stack.get(f"/admin/members/{member_id}/export", admin=True)
    assert exported.status == 200, exported.text
    return exported.json()


def holders(stack, guild: str) -> dict[str, list[str]]:
    return stack.get(f"/_local/discord/guilds/{guild}").json()["members"]


def roles_of(stack, guild: str, user_id: str) -> list[str]:
    return holders(stack, guild).get(user_id) or []


def kpis(stack) -> dict:
    reply = stack.get("/admin/kpis", admin=True)
    assert reply.status == 200, reply.text
    return reply.json()


def mrr(stack) -> dict[str, int]:
    """The MRR per currency the dashboard's headline shows: /admin/kpis' figures (test_dashboard_browser.py
    checks the page shows exactly those; a render here would cost the shared stack seconds for nothing new)."""
    return kpis(stack)["mrr"]


def days_until(stack, entitlement: dict) -> float:
    until = datetime.fromisoformat(entitlement["until"].replace("Z", "+00:00")).timestamp()
    return (until - business_now(stack)) / DAY


def test_pay_what_you_want_pass_bought_above_the_minimum_below_it_refused_with_the_minimum(stack):
    # Given a 30-day pass sold at pay what you want, at least 5.00 EUR, 15.00 suggested
    plan_id, guild, role = offer(stack, tag="01", kind="pass", access_days=30, prices=[{
        "price_id": "price_e2e_flows_pwyw", "type": "one_time", "currency": "eur", "product_name": "Challenge, you choose",
        "custom_unit_amount": {"minimum": 500, "preset": 1500}}])
    browser = connect(stack, plan_id, "flows-pwyw-paula")
    # When the member opens the join page, it says they choose the amount, from the minimum
    assert "your choice, from €5.00, paid once" in browser.get(f"/join/{plan_id}?lang=en").text
    pay_page = to_stripe(browser, plan_id)
    # and the pay page asks for it, suggesting 15.00
    asked = browser.get(pay_page)
    assert asked.status == 200 and "name=amount" in asked.text and "value='1500'" in asked.text, asked.text
    # When they offer 1.00
    refused = browser.post(pay_page, form={"outcome": "card", "amount": "100"})
    # Then the page refuses it, naming the minimum, and nothing is bought
    assert refused.status == 400 and "The amount must be at least 5.00 EUR." in refused.text, refused.text
    stack.post("/_local/drain")
    assert holders(stack, guild) == {}
    # When they pay 23.00 instead
    before = kpis(stack)
    user_id, customer = pay(stack, browser, pay_page, guild, amount="2300")
    # Then they have the pass for 30 days, and 23.00 was charged and counted as one-time revenue, not MRR
    assert role in roles_of(stack, guild, user_id)
    granted = entitlement_of(stack, customer)
    assert (granted["plan_id"], granted["state"]) == (plan_id, "active"), granted
    assert 29.9 < days_until(stack, granted) <= 30
    charges = [e["data"]["object"] for e in stack.get("/_local/stripe/_control/events").json()["data"]
               if e["type"] == "charge.succeeded" and e["data"]["object"]["customer"] == customer]
    assert [c["amount"] for c in charges] == [2300], charges
    assert purchases(stack, customer) == [(plan_id, 2300, "eur", None)]
    after = kpis(stack)
    assert after["one_time_revenue"].get("eur", 0) - before["one_time_revenue"].get("eur", 0) == 2300, (before, after)
    assert after["mrr"] == before["mrr"]


def test_second_price_or_currency_chosen_at_checkout_is_the_one_billed_granted_and_counted(stack):
    # Given a plan sold in EUR monthly, EUR yearly and USD monthly
    prices = [
        {"price_id": "price_e2e_flows_eur_month", "unit_amount": 1000, "currency": "eur", "interval": "month",
         "product_name": "Club, three prices"},
        {"price_id": "price_e2e_flows_eur_year", "unit_amount": 12000, "currency": "eur", "interval": "year",
         "product_name": "Club, three prices"},
        {"price_id": "price_e2e_flows_usd_month", "unit_amount": 1300, "currency": "usd", "interval": "month",
         "product_name": "Club, three prices"},
    ]
    plan_id, guild, role = offer(stack, tag="02", kind="subscription", prices=prices)
    annual = connect(stack, plan_id, "flows-annual-anna")
    # When the member opens the join page, it offers the three prices to choose from
    page = annual.get(f"/join/{plan_id}?lang=en").text
    for price in prices:
        assert f"name=price_id value='{price['price_id']}'" in page, price
    assert "€10.00 / month" in page and "€120.00 / year" in page and "$13.00 / month" in page, page
    before = mrr(stack)
    # When she ticks the yearly price and pays
    anna, anna_customer = pay(stack, annual, to_stripe(annual, plan_id, "price_e2e_flows_eur_year"), guild)
    # Then Stripe bills the yearly price, her access runs a year, and the MRR grows by a twelfth of it
    (sub,) = stripe_subscriptions(stack, anna_customer)
    assert [(i["price"]["id"], i["price"]["recurring"]["interval"]) for i in sub["items"]["data"]] == [
        ("price_e2e_flows_eur_year", "year")]
    assert role in roles_of(stack, guild, anna)
    assert 364 <= days_until(stack, entitlement_of(stack, anna_customer)) <= 366
    after_annual = mrr(stack)
    assert after_annual.get("eur", 0) - before.get("eur", 0) == 1000, (before, after_annual)
    # When another member picks the USD price and pays
    usd = connect(stack, plan_id, "flows-dollar-dave")
    to_pay = to_stripe(usd, plan_id, "price_e2e_flows_usd_month")
    assert "13.00 USD" in usd.get(to_pay).text
    dave_customer = pay(stack, usd, to_pay, guild)[1]
    # Then Stripe bills him in USD for a month, and the USD MRR grows by 13.00 while the EUR MRR stays
    (sub,) = stripe_subscriptions(stack, dave_customer)
    assert (sub["currency"], sub["items"]["data"][0]["price"]["id"]) == ("usd", "price_e2e_flows_usd_month")
    assert 27 <= days_until(stack, entitlement_of(stack, dave_customer)) <= 32
    after_usd = mrr(stack)
    assert after_usd.get("usd", 0) - after_annual.get("usd", 0) == 1300, (after_annual, after_usd)
    assert after_usd.get("eur", 0) == after_annual.get("eur", 0)
    # And a price the plan does not sell is refused with the envelope's field, never bought
    other = annual.post("/checkout", json_body={"plan_id": plan_id, "price_id": "price_e2e_refund", "waiver": True})
    assert other.status == 400 and other.json()["error"]["field"] == "price_id", other.text


def entitlements_of(stack, customer: str) -> list[dict]:
    members = stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"]
    assert len(members) == 1, members
    return members[0]["entitlements"]


def refund(stack, customer: str, amount: int | None = None) -> None:
    """Refund the customer's last payment at Stripe, and wait until Membergate has applied the event."""
    def applied() -> int:
        return sum(1 for e in export(stack, customer)["stripe_events"]
                   if e["type"] == "charge.refunded" and e["status"] == "processed")

    seen = applied()
    reply = stack.post(f"/_local/stripe/_control/customers/{customer}/refund_last_payment",
                       json_body={"amount": amount} if amount is not None else {})
    assert reply.status == 200, reply.text
    assert _eventually(lambda: applied() > seen, stack), f"the refund of {customer} was never applied"


def test_pass_refunded_in_full_ends_the_pass_and_access_unless_another_grant_gives_it_partial_refund_nothing(stack):
    # Given a 30-day pass, bought through the stack by Pia
    plan_id, guild, role = offer(stack, tag="03", kind="pass", access_days=30, prices=[{
        "price_id": "price_e2e_flows_pass", "unit_amount": 4900, "type": "one_time", "currency": "eur",
        "product_name": "Workshop pass, refunded"}])
    pia_browser = connect(stack, plan_id, "flows-pass-pia")
    pia, pia_customer = pay(stack, pia_browser, to_stripe(pia_browser, plan_id), guild)
    # When the creator refunds part of it
    refund(stack, pia_customer, 1000)
    # Then nothing changes
    assert entitlement_of(stack, pia_customer)["state"] == "active"
    assert role in roles_of(stack, guild, pia)
    # When the rest is refunded
    refund(stack, pia_customer)
    # Then the pass ends with reason refunded and the role goes
    ended = entitlement_of(stack, pia_customer)
    assert (ended["state"], ended["reason"]) == ("ended", "refunded"), ended
    assert role not in roles_of(stack, guild, pia)
    assert purchases(stack, pia_customer) == [(plan_id, 4900, "eur", "refunded")]
    # Given Paul, who bought the same pass and was also given 60 days by the creator
    paul_browser = connect(stack, plan_id, "flows-pass-paul")
    paul, paul_customer = pay(stack, paul_browser, to_stripe(paul_browser, plan_id), guild)
    member_id = stack.get(f"/admin/members?stripe_customer_id={paul_customer}", admin=True).json()["members"][0]["id"]
    given = stack.post(f"/admin/members/{member_id}/grants", admin=True,
                       json_body={"plan_id": plan_id, "days": 60, "reason": "speaker at the workshop"})
    assert given.status == 201, given.text
    # When his pass is refunded in full
    refund(stack, paul_customer)
    # Then the given grant still gives access: he keeps the role, and his entitlement runs to its end
    (kept,) = entitlements_of(stack, paul_customer)
    assert (kept["state"], kept["reason"]) == ("active", None), kept
    assert 59 <= days_until(stack, kept) <= 60
    assert purchases(stack, paul_customer) == [(plan_id, 4900, "eur", "refunded")]
    assert role in roles_of(stack, guild, paul)


def test_customer_deleted_at_stripe_ends_that_customers_grants_and_access(stack):
    # Given a member who bought lifetime access through the stack
    plan_id, guild, role = offer(stack, tag="04", kind="lifetime", prices=[{
        "price_id": "price_e2e_flows_life", "unit_amount": 29900, "type": "one_time", "currency": "eur",
        "product_name": "Founder, customer deleted"}])
    browser = connect(stack, plan_id, "flows-deleted-dora")
    user_id, customer = pay(stack, browser, to_stripe(browser, plan_id), guild)
    assert entitlement_of(stack, customer)["state"] == "active"
    # When the creator deletes the customer in Stripe
    deleted = stack.request("DELETE", f"/_local/stripe/v1/customers/{customer}",
                            headers={"Authorization": "Bearer sk_test_e2e"})
    assert deleted.status == 200 and deleted.json()["deleted"] is True, deleted.text
    stack.post("/_local/drain")
    # Then the grant ends with that reason and the role goes
    ended = _eventually(lambda: [e for e in entitlements_of(stack, customer) if e["state"] == "ended"], stack)
    assert [(e["plan_id"], e["reason"]) for e in ended] == [(plan_id, "customer_deleted")], ended
    assert purchases(stack, customer) == [(plan_id, 29900, "eur", "customer_deleted")]
    assert role not in roles_of(stack, guild, user_id)


def test_renewal_needing_authentication_sends_the_member_the_invoice_link_that_pays_it(stack):
    # Given a monthly subscriber who paid through the stack
    plan_id, guild, role = offer(stack, tag="05", kind="subscription", prices=[{
        "price_id": "price_e2e_flows_sca", "unit_amount": 1100, "currency": "eur", "interval": "month",
        "product_name": "Monthly, 3-D Secure"}])
    browser = connect(stack, plan_id, "flows-sca-sami")
    user_id, customer = pay(stack, browser, to_stripe(browser, plan_id), guild)
    (sub,) = stripe_subscriptions(stack, customer)
    # When the renewal needs the member's bank to confirm it (3-D Secure)
    invoice = stack.post(f"/_local/stripe/_control/subscriptions/{sub['id']}/action_required")
    assert invoice.status == 200, invoice.text
    link = invoice.json()["hosted_invoice_url"]
    stack.post("/_local/drain")
    # Then the member gets one Discord message carrying the invoice's authentication link, and keeps the role
    asked = _eventually(lambda: [m for m in dms_to(stack, user_id) if "confirm the payment" in m], stack)
    assert len(asked) == 1 and link in asked[0], dms_to(stack, user_id)
    assert role in roles_of(stack, guild, user_id)
    assert link.startswith(f"{stack.base_url}/_local/stripe/invoice/in_")
    # When they follow the link a minute later and confirm (a person does not within the same second: Stripe's
    # events are dated to the second, and a past_due and an active update of one second cannot be ordered)
    stack.post("/_local/clock", json_body={"advance_seconds": 60})
    assert browser.get(link).status == 200
    confirmed = browser.post(link)
    assert confirmed.status == 303, confirmed.text
    stack.post("/_local/drain")
    # Then the invoice is paid and the subscription active at Stripe, and the member is active with the role
    assert [s["status"] for s in stripe_subscriptions(stack, customer)] == ["active"]
    assert _eventually(lambda: entitlement_of(stack, customer)["state"] == "active", stack), \
        entitlement_of(stack, customer)
    assert role in roles_of(stack, guild, user_id)
