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
    to_stripe = c.post("/checkout", form={"plan_id": plan["id"], "waiver": "on"})
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


def test_telegram_member_removed_when_cancelled_pays_again_and_gets_a_new_invite_back_in(stack):
    from tests.e2e.test_lifecycle_messages import subscription_of

    chat_id, user = -1002000000009, 7100000009
    c = Client(stack.base_url, stack.admin_token)  # the member's browser
    # Given a member of a Telegram group, let in through their personal invite after paying
    assert c.post("/_local/stripe/_control/prices", json_body={
        "price_id": "price_e2e_telegram_again", "unit_amount": 500, "currency": "eur", "interval": "month"}).status == 200
    assert c.post("/_local/telegram/_control/chats", json_body={"id": chat_id, "title": "Again"}).status == 200
    community = c.post("/admin/communities", admin=True, json_body={"platform": "telegram", "name": "Again",
                                                                   "chat_id": str(chat_id)})
    assert community.status == 201, community.text
    plan = c.post("/admin/plans", admin=True, json_body={
        "name": "TG again", "stripe_price_ids": ["price_e2e_telegram_again"],
        "grants": [{"community_id": community.json()["id"]}]}).json()
    token = parse_qs(urlsplit(c.get(f"/telegram/start/{plan['id']}").location).query)["start"][0]
    assert c.post(f"/_local/telegram/_control/users/{user}/start", json_body={"token": token}).status == 200
    button = wait_for(lambda: [m for m in messages_to(c, user) if m.get("reply_markup")], "the pay button")[0]
    c.get(urlsplit(button["reply_markup"]["inline_keyboard"][0][0]["url"]).path)

    def pay_and_join(seen_invites: int) -> str:
        to_stripe = c.post("/checkout", form={"plan_id": plan["id"], "waiver": "on"})
        assert to_stripe.status == 303, to_stripe.text
        assert c.post(to_stripe.location, form={"outcome": "card"}).status == 303
        invites = wait_for(lambda: [m for m in messages_to(c, user) if "https://t.me/+" in m["text"]][seen_invites:],
                           "an invite")
        link = re.search(r"https://t\.me/\+[\w-]+", invites[0]["text"]).group(0)
        assert c.post("/_local/telegram/_control/join", json_body={"user_id": user, "invite_link": link}).json()[
            "outcome"] == "join_requested"
        wait_for(lambda: c.post("/_local/drain") and chat_of(chat_id)["members"].get(str(user)) == "member",
                 "the member in the group", timeout=40, diagnose=lambda: (chat_of(chat_id), [m["text"][:90] for m in messages_to(c, user)],
                                   c.get(f"/admin/members?telegram_user_id={user}", admin=True).json()["members"][0]["access"]))
        return link

    def chat_of(cid: int) -> dict:
        return c.get(f"/_local/telegram/chats/{cid}").json()

    first_link = pay_and_join(0)
    customer = c.get(f"/admin/members?telegram_user_id={user}", admin=True).json()["members"][0]["stripe_customer_id"]
    # When the subscription is cancelled now
    sub = subscription_of(c, customer)
    assert c.post(f"/_local/stripe/_control/subscriptions/{sub['id']}/cancel",
                  json_body={"at_period_end": False}).status == 200
    # Then they are told, and removed from the group (ban then unban: free to come back)
    wait_for(lambda: (c.post("/_local/drain") and chat_of(chat_id)["members"].get(str(user)) in (None, "left", "kicked")),
             "the member removed", diagnose=lambda: chat_of(chat_id))
    assert [m for m in messages_to(c, user) if "Come back any time" in m["text"]]
    assert user not in chat_of(chat_id)["banned"]
    # When they pay again from the same browser
    second_link = pay_and_join(1)
    # Then a new personal invite let them back in, as the same member
    assert second_link != first_link
    found = c.get(f"/admin/members?telegram_user_id={user}", admin=True).json()["members"]
    assert len(found) == 1 and found[0]["stripe_customer_id"] == customer
