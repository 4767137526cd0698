"""A WhatsApp member against the local stack (`make dev`): code by wa.me, pay, invite link, the creator's removal task."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.local.client import Client

pytestmark = pytest.mark.e2e

INVITE = "https://chat.whatsapp.com/E2eGroupLink0123"
PHONE = "+33611223344"


def wait_for(probe, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def messages_to(stack: Client, phone: str) -> list[dict]:
    return [m for m in stack.get("/_local/whatsapp/messages").json()["messages"] if m["to"] == phone]


def test_whatsapp_manual_member_joins_down_to_the_creators_removal_task(stack):
    stack = Client(stack.base_url, stack.admin_token)  # a browser of its own
    # Given a manual-mode WhatsApp group and a monthly plan for it
    assert stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": "price_wa_e2e", "unit_amount": 900, "currency": "eur", "interval": "month"}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "whatsapp", "name": "Cercle", "mode": "manual", "invite_link": INVITE}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": "Cercle mensuel", "stripe_price_ids": ["price_wa_e2e"], "grants": [{"community_id": community["id"]}]}).json()
    # When the member opens the WhatsApp join step and sends the typed-in text from their phone
    start = stack.get(f"/whatsapp/start/{plan['id']}")
    assert start.status == 302 and start.location.startswith("https://wa.me/")
    text = parse_qs(urlsplit(start.location).query)["text"][0]
    assert stack.post("/_local/whatsapp/_control/inbound", json_body={"from": PHONE, "text": text}).status == 200
    # Then the reply carries a pay link, which leads to Checkout; the member pays by card
    reply = wait_for(lambda: messages_to(stack, PHONE))[-1]["text"]
    pay_link = next(w for w in reply.split() if "/whatsapp/pay/" in w)
    landed = stack.get(urlsplit(pay_link).path)
    assert landed.status == 303 and landed.location.endswith(f"/join/{plan['id']}")
    page = stack.get(f"/join/{plan['id']}")
    assert page.status == 200 and "action='/checkout'" in page.text and "+33•••344" in page.text
    to_stripe = stack.post("/checkout", form={"plan_id": plan["id"], "waiver": "on"})
    assert to_stripe.status == 303, to_stripe.text
    assert stack.post(to_stripe.location, form={"outcome": "card"}).status == 303
    # And gets the group's invite link on WhatsApp
    wait_for(lambda: any(INVITE in (m["text"] or "") for m in messages_to(stack, PHONE)))
    member = stack.get(f"/admin/members?whatsapp_phone=%2B{PHONE[1:]}", admin=True).json()["members"][0]
    # When the subscription is cancelled (access ends)
    customer = member["stripe_customer_id"]
    subs = [e for e in stack.get("/_local/stripe/_control/events").json()["data"]
            if e["type"] == "customer.subscription.created" and e["data"]["object"]["customer"] == customer]
    sub_id = subs[0]["data"]["object"]["id"]
    assert stack.post(f"/_local/stripe/_control/subscriptions/{sub_id}/cancel").status == 200
    stack.post("/_local/drain")
    # Then the creator has a removal task for that phone, and marking it done clears it
    tasks = wait_for(lambda: stack.get(f"/admin/communities/{community['id']}/tasks", admin=True).json()["tasks"])
    assert [(t["kind"], t["phone"], t["member_id"], t["done"]) for t in tasks] == [("remove", PHONE, member["id"], False)]
    done = stack.post(f"/admin/communities/{community['id']}/tasks/{tasks[0]['id']}/done", admin=True)
    assert done.status == 200
    assert stack.get(f"/admin/communities/{community['id']}/tasks", admin=True).json() == {"tasks": []}
