"""The local stack's contract, driven over HTTP like someone else's script would."""

from __future__ import annotations

import json
import random
import time

import pytest

from infra.local.demo import Story
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
    Story(stack, out=lambda _line: None).run()


@pytest.mark.parametrize("api_version", [se.NEW, se.OLD, None], ids=["pinned", "2024-06-20", "null"])
def test_script_signed_events_any_order_with_duplicates_converge(stack, api_version):
    # Given a plan selling a price Stripe has never seen, and a customer Stripe has never seen
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
    unknown = post_signed(stack, {**event, "id": "evt_unknown_type", "type": "charge.refunded"})
    assert unknown.status == 200 and unknown.json()["outcome"] == "ignored_type"


def test_admin_requires_bearer_token(stack):
    assert stack.get("/admin/kpis").status == 401
    assert stack.get("/admin/kpis", headers={"Authorization": "Bearer wrong"}).status == 401
    assert stack.get("/admin/openapi.json").status == 200
    bad = stack.post("/admin/plans", admin=True, json_body={"name": "x", "stripe_price_ids": [], "grants": []})
    assert bad.status == 400 and bad.json()["error"]["field"] == "stripe_price_ids"
