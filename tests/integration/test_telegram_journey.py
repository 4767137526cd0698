"""A Telegram member's journey through the real handlers under moto: t.me link, /start, pay, join request, end."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from membergate import bootstrap
from tests.support.aws import put_secret
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline
from tests.support.telegram_spec import API_BASE, BOT_TOKEN, BOT_USERNAME, FakeTelegramTransport, load_spec, updates

pytestmark = pytest.mark.integration

CHAT, USER, STRANGER = -1001234567890, 7001002003, 7009990001
SECRET = "tg_webhook_SECRET-1"
PRICE = "price_telegram_monthly"
PUBLIC = "https://members.example.com"
TELEGRAM_ENV = {
    "TELEGRAM_API_BASE": API_BASE,
    "TELEGRAM_BOT_TOKEN_NAME": "/membergate/telegram-bot-token",
    "TELEGRAM_WEBHOOK_SECRET_NAME": "/membergate/telegram-webhook-secret",
}


@pytest.fixture
def telegram():
    return FakeTelegramTransport(load_spec())


@pytest.fixture
def pipeline(telegram):
    with Pipeline(SpecCheckingDiscordTransport(), env=TELEGRAM_ENV) as p:
        put_secret("/membergate/telegram-bot-token", BOT_TOKEN)
        put_secret("/membergate/telegram-webhook-secret", SECRET)
        with bootstrap.overridden(telegram_transport=telegram):
            yield p


def setup_catalog(p: Pipeline) -> str:
    p.sandbox.register_price(PRICE, 900, "eur")
    community = p.admin("POST", "/admin/communities", body={"platform": "telegram", "name": "Club", "chat_id": str(CHAT)})
    assert community["status"] == 201, community
    plan = p.admin("POST", "/admin/plans", body={
        "name": "Monthly", "stripe_price_ids": [PRICE], "grants": [{"community_id": community["body"]["id"]}]})
    assert plan["status"] == 201, plan
    return plan["body"]["id"]


def post_update(p: Pipeline, update: dict, secret: str | None = SECRET) -> dict:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    reply = p.call("telegram_webhook", "POST", "/webhooks/telegram", body=json.dumps(update), headers=headers)
    return {"status": reply["statusCode"], "body": json.loads(reply["body"] or "null")}


def start_token(p: Pipeline, plan_id: str) -> str:
    reply = p.call("telegram_webhook", "GET", f"/telegram/start/{plan_id}")
    assert reply["statusCode"] == 302, reply
    link = reply["headers"]["Location"]
    assert link.startswith(f"https://t.me/{BOT_USERNAME}?start=")
    token = parse_qs(urlsplit(link).query)["start"][0]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
    return token


def pay_link(telegram: FakeTelegramTransport) -> str:
    sent = [c for c in telegram.calls_to("sendMessage") if c.params["chat_id"] == USER and "reply_markup" in c.params]
    return sent[-1].params["reply_markup"]["inline_keyboard"][0][0]["url"]


def bind_and_pay(p: Pipeline, telegram: FakeTelegramTransport, plan_id: str) -> str:
    assert post_update(p, updates.start(USER, start_token(p, plan_id)))["status"] == 200
    opened = p.call("telegram_webhook", "GET", urlsplit(pay_link(telegram)).path)
    assert opened["statusCode"] == 303, opened
    assert opened["headers"]["Location"] == f"{PUBLIC}/join/{plan_id}"
    cookie = opened["cookies"][0].split(";")[0]
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={plan_id}&waiver=on", cookies=[cookie],
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert reply["statusCode"] == 303, reply
    p.sandbox.pay(re.search(r"(cs_test_\w+)", reply["headers"]["Location"]).group(1), "card")
    p.pump()
    return cookie


def test_telegram_webhook_without_the_right_secret_is_401_and_stores_nothing(pipeline, telegram):
    # Given a plan granting a Telegram chat and a valid /start token
    plan_id = setup_catalog(pipeline)
    token = start_token(pipeline, plan_id)

    # When the /start update arrives without the secret, with a wrong one, and with a non-ASCII one
    replies = [post_update(pipeline, updates.start(USER, token), secret=s) for s in (None, "wrong", "sécret")]

    # Then each is exactly 401 with the error envelope, nobody is bound and the bot said nothing
    assert [r["status"] for r in replies] == [401, 401, 401]
    assert all(r["body"]["error"]["code"] for r in replies)
    assert pipeline.admin("GET", f"/admin/members?telegram_user_id={USER}")["body"]["members"] == []
    assert telegram.calls_to("sendMessage") == []
    # And the token was not spent: the real update still binds
    assert post_update(pipeline, updates.start(USER, token))["body"]["outcome"] == "bound"


def test_telegram_start_binds_the_user_and_answers_with_a_one_time_pay_button(pipeline, telegram):
    # Given a /start token from the join page's t.me link
    plan_id = setup_catalog(pipeline)
    token = start_token(pipeline, plan_id)

    # When the user sends /start <token>, twice (Telegram resends, or the user taps again)
    first = post_update(pipeline, updates.start(USER, token))
    again = post_update(pipeline, updates.start(USER, token))

    # Then the user is bound once, the admin API finds them, and the bot answered with a pay button
    assert first["body"]["outcome"] == "bound" and again["body"]["outcome"] != "bound"
    members = pipeline.admin("GET", f"/admin/members?telegram_user_id={USER}")["body"]["members"]
    assert len(members) == 1
    button = pay_link(telegram)
    assert button.startswith(f"{PUBLIC}/telegram/continue/")
    # And the pay link works once: the second opening is refused with what to do
    assert pipeline.call("telegram_webhook", "GET", urlsplit(button).path)["statusCode"] == 303
    reused = pipeline.call("telegram_webhook", "GET", urlsplit(button).path)
    assert reused["statusCode"] == 400 and "/start" in reused["body"]


def test_telegram_paid_member_gets_a_personal_invite_and_only_they_are_let_in(pipeline, telegram):
    # Given a member who started the bot and paid
    plan_id = setup_catalog(pipeline)
    bind_and_pay(pipeline, telegram, plan_id)

    # Then a personal join-request link was created and sent to them
    created = telegram.calls_to("createChatInviteLink")
    assert len(created) == 1 and created[0].params["creates_join_request"] is True
    assert created[0].params["chat_id"] == CHAT and created[0].params["expire_date"] > pipeline.clock.now()
    name = created[0].params["name"]
    sent = [c for c in telegram.calls_to("sendMessage") if c.params["chat_id"] == USER and "t.me/+" in c.params["text"]]
    assert len(sent) == 1
    link = re.search(r"https://t\.me/\+\w+", sent[0].params["text"]).group(0)

    # When a stranger uses the forwarded link, then the member uses it
    stranger = post_update(pipeline, updates.join_request(CHAT, STRANGER, link, link_name=name))
    member = post_update(pipeline, updates.join_request(CHAT, USER, link, link_name=name))
    telegram.chat_members[(CHAT, USER)] = {"status": "member", "user": {"id": USER, "is_bot": False, "first_name": "Ana"}}
    pipeline.pump()

    # Then the stranger is declined and the member approved, and their access reads granted
    assert stranger["body"]["outcome"] == "declined" and member["body"]["outcome"] == "approved"
    assert [c.params["user_id"] for c in telegram.calls_to("declineChatJoinRequest")] == [STRANGER]
    assert [c.params["user_id"] for c in telegram.calls_to("approveChatJoinRequest")] == [USER]
    view = pipeline.admin("GET", f"/admin/members?telegram_user_id={USER}")["body"]["members"][0]
    assert [a["state"] for a in view["access"]] == ["granted"], view


def test_telegram_join_request_from_an_unknown_user_without_a_link_is_declined(pipeline, telegram):
    # Given a Telegram community
    setup_catalog(pipeline)

    # When someone asks to join through the chat's public username (no personal link)
    reply = post_update(pipeline, updates.join_request(CHAT, STRANGER, None))

    # Then they are declined
    assert reply["body"]["outcome"] == "declined"
    assert [c.params["user_id"] for c in telegram.calls_to("declineChatJoinRequest")] == [STRANGER]


def test_telegram_same_chat_registered_twice_is_a_conflict(pipeline):
    # Given a registered Telegram chat
    setup_catalog(pipeline)

    # When the same chat is registered again
    again = pipeline.admin("POST", "/admin/communities", body={"platform": "telegram", "name": "Again", "chat_id": str(CHAT)})

    # Then it is refused with 409 and what to do
    assert again["status"] == 409 and "GET /admin/communities" in again["body"]["error"]["message"]


def test_telegram_hostile_webhook_bodies_are_4xx(pipeline):
    setup_catalog(pipeline)
    # Given the right secret, bodies that are not updates: invalid UTF-8, deep nesting, not an object
    for body in (b"\xff\xfe", "[" * 5000 + "]" * 5000, "[]", '{"update_id": "x"}', ""):
        reply = pipeline.call("telegram_webhook", "POST", "/webhooks/telegram", body=body,
                              base64_body=isinstance(body, bytes),
                              headers={"content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET})
        # Then each is a 4xx with the error envelope, never a 5xx
        assert 400 <= reply["statusCode"] < 500, (body[:20], reply)
        assert json.loads(reply["body"])["error"]["code"]


def test_telegram_join_page_offers_the_bot_then_the_pay_button(pipeline, telegram):
    # Given a plan granting a Telegram chat
    plan_id = setup_catalog(pipeline)

    # When a new visitor opens the join page
    page = pipeline.call("join", "GET", f"/join/{plan_id}")

    # Then the identity step is the Telegram bot, not Discord, and there is no pay button yet
    assert page["statusCode"] == 200
    assert f"href='/telegram/start/{plan_id}'" in page["body"] and "/auth/discord/start" not in page["body"]
    assert "action='/checkout'" not in page["body"]

    # And once the bot's pay link was opened, the page shows the linked account and the pay button
    start = updates.start(USER, start_token(pipeline, plan_id), username="ana_<b>")
    assert post_update(pipeline, start)["status"] == 200
    opened = pipeline.call("telegram_webhook", "GET", urlsplit(pay_link(telegram)).path)
    cookie = opened["cookies"][0].split(";")[0]
    page = pipeline.call("join", "GET", f"/join/{plan_id}", cookies=[cookie])
    assert f"data-telegram-user='{USER}'" in page["body"] and "action='/checkout'" in page["body"]
    # By the @username Telegram sent with /start, escaped
    assert "<b class=handle>@ana_&lt;b&gt;</b>" in page["body"]
