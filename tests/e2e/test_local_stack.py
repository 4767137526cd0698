"""The local stack's contract, driven over HTTP like someone else's script would."""

from __future__ import annotations

import json
import random
import time

import pytest

from infra.local.demo import TG_CHAT, TG_STRANGER, TG_USER, WA_PHONE, Story
from tests.e2e.conftest import WEBHOOK_SECRET
from tests.support import stripe_events as se

pytestmark = pytest.mark.e2e
DAY = 86_400


def business_now(stack) -> int:
    return stack.get("/_local/clock").json()["epoch"]


def post_signed(stack, event: dict, secret: str = WEBHOOK_SECRET):
    body, header = se.signed(event, secret, int(time.time()))
    return stack.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"})


def setup_plan(stack, price_id: str, guild: str, grace_days: int = 3) -> dict:
    # Plan creation reads the price at Stripe (issue 7): it must exist there, as in the creator's account.
    assert stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": price_id, "unit_amount": 900, "currency": "eur", "interval": "month"}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": f"Guild {guild}", "guild_id": guild, "role_id": "990000000000000001",
        "on_revoke": "remove_role"}).json()
    reply = stack.post("/admin/plans", admin=True, json_body={
        "name": "Monthly", "stripe_price_ids": [price_id], "grants": [{"community_id": community["id"]}],
        "grace_days": grace_days})
    assert reply.status == 201, reply.text
    return reply.json()


def entitlement_of(stack, customer: str) -> dict:
    members = stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"]
    assert len(members) == 1, members
    return members[0]["entitlements"][0]


def test_health_and_clock(stack):
    assert stack.get("/health").json()["status"] == "ok"
    before = business_now(stack)
    assert stack.post("/_local/clock", json_body={"advance_seconds": -5}).status == 400
    assert stack.post("/_local/clock", json_body={"advance_seconds": "soon"}).status == 400
    moved = stack.post("/_local/clock", json_body={"advance_seconds": 0}).json()
    assert moved["epoch"] >= before
    assert stack.post("/_local/drain").status == 200


def test_whole_member_story_as_make_demo_tells_it(stack):
    # Given the demo's story teller
    lines: list[str] = []
    story = Story(stack, out=lines.append)
    # When it tells the whole story (Discord, then Telegram, then WhatsApp, then the figures)
    story.run()
    # Then the Telegram member is in and the stranger holding the forwarded link was declined
    telegram = story.results["telegram"]
    member = stack.get(f"/admin/members?member_id={telegram['member_id']}", admin=True).json()["members"][0]
    assert [a["state"] for a in member["access"]] == ["granted"]
    chat = stack.get(f"/_local/telegram/chats/{TG_CHAT}").json()
    assert str(TG_STRANGER) not in chat["members"] and str(TG_STRANGER) not in chat["pending"]
    assert str(TG_USER) in chat["members"]
    # And the WhatsApp member's access ended with the creator's removal task, closed by them
    assert (story.results["whatsapp"]["task"]["kind"], story.results["whatsapp"]["task"]["phone"]) == ("remove", WA_PHONE)
    ended = stack.get(f"/admin/members?whatsapp_phone=%2B{WA_PHONE[1:]}", admin=True).json()["members"][0]
    assert [a["state"] for a in ended["access"]] == ["revoked"]
    # And the requests per member and the 429s of each platform are counted from the stand-ins' calls
    figures = story.results["figures"]
    assert set(figures) == {"Discord", "Telegram", "WhatsApp"}
    assert all(f["requests"] > 0 and f["rate_limited"] >= 0 for f in figures.values())
    assert any(line.strip().startswith("WhatsApp:") and "requests for 1 member" in line for line in lines)
    # And a member upgraded between tiers on one subscription, and a 30-day pass expired
    assert_tier_and_pass_chapters(stack, story.results, lines)


def assert_tier_and_pass_chapters(stack, results: dict, lines: list[str]) -> None:
    """The demo's upgrade and pass chapters, checked from outside (the stand-in's guild, the member list)."""
    from infra.local.demo import BASIC_ROLE, PASS_ROLE, PLUS_ROLE, TIER_GUILD

    upgrade, passed = results["upgrade"], results["pass"]
    # The same subscription before and after, printed for the reader
    assert upgrade["before"] == upgrade["after"]
    assert any(f"subscription before {upgrade['before']} → after {upgrade['before']}" in line for line in lines)
    # The new tier's role was added before the old one was removed, and only Plus is left
    assert upgrade["role_calls"] == [("PUT", PLUS_ROLE), ("DELETE", BASIC_ROLE)]
    guild = stack.get(f"/_local/discord/guilds/{TIER_GUILD}").json()["members"]
    assert PLUS_ROLE in guild[upgrade["discord_user_id"]] and BASIC_ROLE not in guild[upgrade["discord_user_id"]]
    # The pass gave access with its end, then ended with reason pass_expired and its role went
    assert passed["given"]["state"] == "active" and passed["given"]["until"]
    assert (passed["ended"]["state"], passed["ended"]["reason"]) == ("ended", "pass_expired")
    assert PASS_ROLE not in (guild.get(passed["discord_user_id"]) or [])


@pytest.mark.parametrize("api_version", [se.NEW, se.OLD, None], ids=["pinned", "2024-06-20", "null"])
def test_script_signed_events_any_order_with_duplicates_converge(stack, api_version):
    # Given a plan selling a price of the sandbox, and a customer and subscription Stripe has never seen
    suffix = (api_version or "null").replace("-", "").replace(".", "")
    price, customer, sub = f"price_script_{suffix}", f"cus_script_{suffix}", f"sub_script_{suffix}"
    setup_plan(stack, price, guild=f"9{abs(hash(suffix)) % 10**17:017d}")
    t0 = business_now(stack) - 600
    story = [
        se.subscription_event("customer.subscription.created", created=t0, status="active", price_id=price,
                              customer=customer, sub_id=sub, api_version=api_version),
        se.invoice_event("invoice.paid", created=t0 + 1, customer=customer, sub_id=sub, api_version=api_version),
        se.subscription_event(created=t0 + 100, status="past_due", price_id=price, customer=customer, sub_id=sub,
                              api_version=api_version),
        se.invoice_event("invoice.payment_failed", created=t0 + 100, customer=customer, sub_id=sub, status="open",
                         api_version=api_version),
        se.subscription_event(created=t0 + 200, status="past_due", price_id=price, customer=customer, sub_id=sub,
                              api_version=api_version),
    ]
    # When they are posted really signed, shuffled, some twice
    rng = random.Random(suffix)
    delivery = story + rng.sample(story, 3)
    rng.shuffle(delivery)
    for event in delivery:
        reply = post_signed(stack, event)
        assert reply.status == 200, reply.text
    stack.post("/_local/drain")
    # Then the member exists from the customer and is in grace from the FIRST past_due snapshot
    ent = entitlement_of(stack, customer)
    assert ent["state"] == "grace"
    expected_until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 100 + 3 * DAY))
    assert ent["until"] == expected_until
    # And an unknown customer gives an empty list
    assert stack.get("/admin/members?stripe_customer_id=cus_nobody", admin=True).json() == {"members": [], "next_cursor": None}


def test_webhook_bad_input_gets_clear_answers(stack):
    event = se.subscription_event(created=business_now(stack), customer="cus_bad", sub_id="sub_bad")
    wrong = post_signed(stack, event, secret="whsec_not_ours")
    assert wrong.status == 400 and wrong.json()["error"]["code"] == "invalid_signature"
    unsigned = stack.post("/webhooks/stripe", data=json.dumps(event).encode(), headers={"Content-Type": "application/json"})
    assert unsigned.status == 400
    body = b"{not json"
    from membergate.domain.signature import signature_header

    garbage = stack.post("/webhooks/stripe", data=body,
                         headers={"Stripe-Signature": signature_header(WEBHOOK_SECRET, int(time.time()), body),
                                  "Content-Type": "application/json"})
    assert garbage.status == 400 and garbage.json()["error"]["code"] == "malformed_event"
    unknown = post_signed(stack, {**event, "id": "evt_unknown_type", "type": "charge.captured"})
    assert unknown.status == 200 and unknown.json()["outcome"] == "ignored_type"


def test_admin_requires_bearer_token(stack):
    assert stack.get("/admin/kpis").status == 401
    assert stack.get("/admin/kpis", headers={"Authorization": "Bearer wrong"}).status == 401
    assert stack.get("/admin/openapi.json").status == 200
    bad = stack.post("/admin/plans", admin=True, json_body={"name": "x", "stripe_price_ids": [], "grants": []})
    assert bad.status == 400 and bad.json()["error"]["field"] == "stripe_price_ids"


def buy_through_the_stack(stack, *, guild: str, role: str, price: dict, kind: str, username: str) -> tuple[str, str]:
    """A creator's plan on its own server, bought by a member in their own browser; -> (discord id, customer)."""
    from urllib.parse import parse_qs, urlsplit

    from infra.local.client import Client
    from tests.e2e.conftest import ADMIN_TOKEN

    assert stack.post("/_local/stripe/_control/prices", json_body=price).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": f"Guild {username}", "guild_id": guild, "role_id": role,
        "on_revoke": "remove_role"}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": price["product_name"], "kind": kind, "stripe_price_ids": [price["price_id"]],
        "grants": [{"community_id": community["id"]}]})
    assert plan.status == 201, plan.text
    plan_id = plan.json()["id"]
    browser = Client(stack.base_url, ADMIN_TOKEN)
    to_discord = browser.get(f"/auth/discord/start?plan_id={plan_id}")
    authorize = urlsplit(to_discord.location)
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    back = browser.post(authorize.path, form={**params, "username": username, "decision": "allow"})
    browser.follow(browser.get(back.location))
    to_stripe = browser.post("/checkout", form={"plan_id": plan_id, "waiver": "on"})
    assert to_stripe.status == 303, to_stripe.text
    assert browser.post(to_stripe.location, form={"outcome": "card"}).status == 303
    # The sandbox delivers the webhook on its own thread: drain until the member is in the guild.
    deadline = time.monotonic() + 20
    while True:
        stack.post("/_local/drain")
        members = stack.get(f"/_local/discord/guilds/{guild}").json()["members"]
        if members or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (user_id, roles), = members.items()
    assert role in roles
    customer = stack.get(f"/admin/members?discord_user_id={user_id}", admin=True).json()["members"][0][
        "stripe_customer_id"]
    return user_id, customer


def test_lifetime_purchase_disputed_loses_access_and_a_won_dispute_restores_it(stack):
    # Given a member who bought lifetime access through the stack
    guild, role = "955500000000000001", "955500000000000002"
    user_id, customer = buy_through_the_stack(stack, guild=guild, role=role, kind="lifetime", username="founder-dora",
                                              price={"price_id": "price_e2e_life", "unit_amount": 19900,
                                                     "currency": "eur", "type": "one_time",
                                                     "product_name": "Founder, for life"})

    def holders() -> dict:
        return stack.get(f"/_local/discord/guilds/{guild}").json()["members"]

    assert entitlement_of(stack, customer)["state"] == "active"
    # When the cardholder disputes the payment
    opened = stack.post(f"/_local/stripe/_control/customers/{customer}/dispute_last_payment")
    assert opened.status == 200, opened.text
    stack.post("/_local/drain")
    # Then the grant ends with reason dispute and the role goes
    ended = entitlement_of(stack, customer)
    assert (ended["state"], ended["reason"]) == ("ended", "dispute"), ended
    assert role not in (holders().get(user_id) or [])
    # When the creator wins the dispute
    closed = stack.post(f"/_local/stripe/_control/disputes/{opened.json()['id']}/close", json_body={"outcome": "won"})
    assert closed.status == 200, closed.text
    stack.post("/_local/drain")
    # Then access comes back
    assert entitlement_of(stack, customer)["state"] == "active"
    assert role in (holders().get(user_id) or [])


def test_subscription_payment_refunded_in_full_ends_access_partial_refund_does_not(stack):
    # Given a monthly subscriber who paid through the stack
    guild, role = "955500000000000011", "955500000000000012"
    user_id, customer = buy_through_the_stack(stack, guild=guild, role=role, kind="subscription",
                                              username="monthly-rene",
                                              price={"price_id": "price_e2e_refund", "unit_amount": 900,
                                                     "currency": "eur", "interval": "month",
                                                     "product_name": "Monthly, refunded"})
    # When the creator refunds part of the payment
    partial = stack.post(f"/_local/stripe/_control/customers/{customer}/refund_last_payment", json_body={"amount": 300})
    assert partial.status == 200, partial.text
    stack.post("/_local/drain")
    # Then nothing changes
    assert entitlement_of(stack, customer)["state"] == "active"
    # When the rest is refunded
    assert stack.post(f"/_local/stripe/_control/customers/{customer}/refund_last_payment").status == 200
    stack.post("/_local/drain")
    # Then the grant ends with reason refunded and the role goes
    ended = entitlement_of(stack, customer)
    assert (ended["state"], ended["reason"]) == ("ended", "refunded"), ended
    assert role not in (stack.get(f"/_local/discord/guilds/{guild}").json()["members"].get(user_id) or [])
    # When the lifecycle sweep runs (moving the clock runs it)
    stack.post("/_local/clock", json_body={"advance_seconds": 60})
    stack.post("/_local/drain")
    # Then the subscription is cancelled at Stripe, so the member is not charged again, and the reason stays
    assert [s["status"] for s in stripe_subscriptions(stack, customer)] == ["canceled"]
    assert entitlement_of(stack, customer)["reason"] == "refunded"


def stripe_subscriptions(stack, customer: str) -> list[dict]:
    """The customer's subscriptions as the sandbox's Stripe API answers them."""
    reply = stack.get(f"/_local/stripe/v1/subscriptions?customer={customer}&status=all",
                      headers={"Authorization": "Bearer sk_test_e2e"})
    assert reply.status == 200, reply.text
    return reply.json()["data"]


def test_subscription_payment_disputed_revokes_access_lists_a_problem_and_a_won_dispute_restores_it(stack):
    # Given a monthly subscriber who paid through the stack
    guild, role = "955500000000000081", "955500000000000082"
    user_id, customer = buy_through_the_stack(stack, guild=guild, role=role, kind="subscription",
                                              username="monthly-dina",
                                              price={"price_id": "price_e2e_dispute", "unit_amount": 900,
                                                     "currency": "eur", "interval": "month",
                                                     "product_name": "Monthly, disputed"})

    def holders() -> dict:
        return stack.get(f"/_local/discord/guilds/{guild}").json()["members"]

    # When the cardholder disputes the subscription's payment
    opened = stack.post(f"/_local/stripe/_control/customers/{customer}/dispute_last_payment")
    assert opened.status == 200, opened.text
    stack.post("/_local/drain")
    # Then the grant found through the payment's invoice ends with reason dispute and the role goes
    ended = entitlement_of(stack, customer)
    assert (ended["state"], ended["reason"]) == ("ended", "dispute"), ended
    assert role not in (holders().get(user_id) or [])
    # and the creator's audit log says so
    audit = stack.get(f"/admin/audit?since={business_now(stack) - 3600}", admin=True)
    assert audit.status == 200, audit.text
    disputes = [e for e in audit.json()["entries"] if e["action"].startswith("dispute.")]
    assert [e["action"] for e in disputes][-1:] == ["dispute.open"], disputes
    # and the dashboard lists it under Problems
    assert f"dispute {opened.json()['id']} open" in dashboard_problems(stack)
    # and the member without access is not billed meanwhile: collection is paused at Stripe, a renewal is voided
    (paused,) = stripe_subscriptions(stack, customer)
    assert paused["pause_collection"] == {"behavior": "void", "resumes_at": None}, paused
    renewed = stack.post(f"/_local/stripe/_control/subscriptions/{paused['id']}/renew")
    assert renewed.status == 200, renewed.text
    stack.post("/_local/drain")
    voided = stack.get(f"/_local/stripe/v1/invoices/{stripe_subscriptions(stack, customer)[0]['latest_invoice']}",
                       headers={"Authorization": "Bearer sk_test_e2e"}).json()
    assert (voided["status"], voided["amount_paid"]) == ("void", 0), voided
    assert entitlement_of(stack, customer)["reason"] == "dispute"
    # When the creator wins the dispute
    closed = stack.post(f"/_local/stripe/_control/disputes/{opened.json()['id']}/close", json_body={"outcome": "won"})
    assert closed.status == 200, closed.text
    stack.post("/_local/drain")
    # Then access comes back, billing resumes, and the subscription was never cancelled
    assert entitlement_of(stack, customer)["state"] == "active"
    assert role in (holders().get(user_id) or [])
    assert [(s["status"], s["pause_collection"]) for s in stripe_subscriptions(stack, customer)] == [("active", None)]
    assert f"dispute {opened.json()['id']} open" not in dashboard_problems(stack)


def dashboard_problems(stack) -> str:
    """The Problems section of the creator's dashboard, as a logged-in browser sees it."""
    from infra.local.client import Client
    from tests.e2e.conftest import ADMIN_TOKEN

    browser = Client(stack.base_url)
    logged_in = browser.post("/admin/dashboard/login", form={"token": ADMIN_TOKEN, "lang": "en"})
    assert logged_in.status in (302, 303), logged_in.text
    page = browser.get("/admin/dashboard?lang=en")
    assert page.status == 200, page.text
    return page.text.split("id=problems", 1)[1].split("</section>", 1)[0]
