"""A member joins a Telegram group through the running local stack; a forwarded invite lets no one in."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.local.client import Client

pytestmark = pytest.mark.e2e

CHAT, USER, STRANGER = -1002000000001, 7100000001, 7100000002
PRICE = "price_e2e_telegram"


def wait_for(probe, what: str, timeout: float = 20, diagnose=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} {diagnose()}")


def messages_to(c: Client, user: int) -> list[dict]:
    return [m for m in c.get("/_local/telegram/messages").json()["messages"] if m["chat"]["id"] == user]


def chat(c: Client) -> dict:
    return c.get(f"/_local/telegram/chats/{CHAT}").json()


def test_telegram_member_joins_and_a_forwarded_invite_is_refused(stack):
    c = Client(stack.base_url, stack.admin_token)  # a browser of its own
    # Given a Telegram group with the bot as admin, a community for it and a plan
    assert c.post("/_local/stripe/_control/prices", json_body={
        "price_id": PRICE, "unit_amount": 500, "currency": "eur", "interval": "month"}).status == 200
    assert c.post("/_local/telegram/_control/chats", json_body={"id": CHAT, "title": "Club"}).status == 200
    community = c.post("/admin/communities", admin=True, json_body={"platform": "telegram", "name": "Club",
                                                                   "chat_id": str(CHAT)})
    assert community.status == 201, community.text
    plan = c.post("/admin/plans", admin=True, json_body={
        "name": "TG", "stripe_price_ids": [PRICE], "grants": [{"community_id": community.json()["id"]}]}).json()

    # When the member opens the t.me link and taps Start
    to_telegram = c.get(f"/telegram/start/{plan['id']}")
    assert to_telegram.status == 302 and to_telegram.location.startswith("https://t.me/membergate_local_bot?start=")
    token = parse_qs(urlsplit(to_telegram.location).query)["start"][0]
    assert c.post(f"/_local/telegram/_control/users/{USER}/start", json_body={"token": token}).status == 200

    # Then the bot answered with a pay button; it leads to the join page as this member, then to Checkout
    button = wait_for(lambda: [m for m in messages_to(c, USER) if m.get("reply_markup")],
                      "the pay button", diagnose=lambda: c.get("/_local/telegram/updates").text)[0]
    pay = button["reply_markup"]["inline_keyboard"][0][0]["url"]
    landed = c.get(urlsplit(pay).path)
    assert landed.status == 303 and landed.location.endswith(f"/join/{plan['id']}")
    to_stripe = c.post("/checkout", form={"plan_id": plan["id"]})
    assert to_stripe.status == 303, to_stripe.text
    assert c.post(to_stripe.location, form={"outcome": "card"}).status == 303

    # And after payment the member gets a personal invite link
    invite = wait_for(lambda: [m for m in messages_to(c, USER) if "https://t.me/+" in m["text"]], "the invite")[0]
    link = re.search(r"https://t\.me/\+[\w-]+", invite["text"]).group(0)

    # When a stranger uses the forwarded link, they are declined
    assert c.post("/_local/telegram/_control/join", json_body={"user_id": STRANGER, "invite_link": link}).json()[
        "outcome"] == "join_requested"
    wait_for(lambda: str(STRANGER) not in chat(c)["pending"], "the stranger's request to be handled")
    assert str(STRANGER) not in chat(c)["members"]

    # And the member using their own link is let in, and their access reads granted
    assert c.post("/_local/telegram/_control/join", json_body={"user_id": USER, "invite_link": link}).json()[
        "outcome"] == "join_requested"
    wait_for(lambda: chat(c)["members"].get(str(USER)) == "member", "the member in the group")

    def granted():
        found = c.get(f"/admin/members?telegram_user_id={USER}", admin=True).json()["members"]
        return found and [a["state"] for a in found[0]["access"]] == ["granted"]

    wait_for(granted, "access granted", diagnose=lambda: [(x["kind"], x["status"]) for x in c.get("/_local/telegram/updates").json()["updates"]])
