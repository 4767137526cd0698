"""The Telegram Bot API client: requests as the spec describes them, refusals, 429s, Telegram's pace."""

from __future__ import annotations

import json

import pytest

from membergate.adapters.http import HttpResponse
from membergate.adapters.telegram import ALLOWED_UPDATES, TelegramBotApi, TelegramRateLimits
from membergate.domain.errors import PermanentError, RetryableError

from ..support import telegram_spec as tg
from ..support.telegram_spec import (
    BOT_ID,
    BOT_TOKEN,
    FakeClock,
    FakeTelegramTransport,
    SpecViolation,
    admin_member,
    bot_user,
    error,
    human,
    load_spec,
    ok,
)

pytestmark = pytest.mark.unit

CHAT = -1001234567890
USER = 7001002003


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake():
    return FakeTelegramTransport(load_spec())


def make_api(fake, clock, *, limits=None, token=BOT_TOKEN, **kwargs):
    return TelegramBotApi(fake, lambda: token, tg.API_BASE, sleep=clock.sleep, monotonic=clock.monotonic,
                          rate_limits=limits or TelegramRateLimits(), **kwargs)


# --- requests as the spec describes them --------------------------------------------------------


def test_bot_api_any_call_posts_spec_valid_json_to_base_bot_token_method(fake, clock):
    # Given a client on a base URL with a trailing slash
    api = TelegramBotApi(fake, lambda: BOT_TOKEN, tg.API_BASE + "/", sleep=clock.sleep, monotonic=clock.monotonic,
                         rate_limits=TelegramRateLimits())

    # When it makes every call Membergate needs (the fake checks each against api.json)
    api.get_me()
    api.send_message(USER, "Pay here", button_text="Pay", button_url="https://pay.example/x")
    api.create_join_request_link(CHAT, name="Ana Rodríguez", expire_date=1_790_003_600)
    api.approve_join_request(CHAT, USER)
    api.decline_join_request(CHAT, USER + 1)
    api.remove_member(CHAT, USER)
    api.member_status(CHAT, USER)
    api.revoke_invite_link(CHAT, "https://t.me/+fakeLink1")
    api.preflight(CHAT)
    api.set_webhook("https://hooks.example/webhooks/telegram", "s3cret_TOKEN")

    # Then each went to {base}/bot{token}/{method}
    assert [c.method for c in fake.calls] == [
        "getMe", "sendMessage", "createChatInviteLink", "approveChatJoinRequest", "declineChatJoinRequest",
        "banChatMember", "unbanChatMember", "getChatMember", "revokeChatInviteLink", "getChat", "getChatMember", "setWebhook",
    ]
    assert all(c.url == f"{tg.API_BASE}/bot{BOT_TOKEN}/{c.method}" for c in fake.calls)


def test_send_message_carries_one_url_button_and_no_link_preview(fake, clock):
    # When a message with a button is sent
    make_api(fake, clock).send_message(USER, "Pay here", button_text="Pay", button_url="https://pay.example/x")

    # Then the button is an inline keyboard URL button and previews are off (links hold tokens)
    params = fake.calls_to("sendMessage")[0].params
    assert params["reply_markup"] == {"inline_keyboard": [[{"text": "Pay", "url": "https://pay.example/x"}]]}
    assert params["link_preview_options"] == {"is_disabled": True}
    assert params["chat_id"] == USER


def test_create_join_request_link_asks_for_join_requests_with_a_short_named_link(fake, clock):
    # When a personal link is created for a member with a long name
    link = make_api(fake, clock).create_join_request_link(
        str(CHAT), name="Anastasia Rodríguez-Villanueva de la Fuente", expire_date=1_790_003_600
    )

    # Then the link creates join requests, expires, and its name fits Telegram's 32 characters
    params = fake.calls_to("createChatInviteLink")[0].params
    assert params["creates_join_request"] is True and "member_limit" not in params
    assert params["expire_date"] == 1_790_003_600
    assert params["chat_id"] == CHAT  # the string id was sent as Telegram's integer
    assert 0 < len(params["name"]) <= 32
    assert link.url.startswith("https://t.me/+") and link.creates_join_request


def test_remove_member_bans_then_unbans_only_if_banned(fake, clock):
    # When a member is removed
    make_api(fake, clock).remove_member(CHAT, USER)

    # Then they are banned (out of the chat) and unbanned (free to rejoin after paying again)
    assert [(c.method, c.params.get("only_if_banned")) for c in fake.calls] == [
        ("banChatMember", None), ("unbanChatMember", True)]


def test_set_webhook_asks_for_the_updates_the_bot_needs_with_the_secret(fake, clock):
    # When the webhook is set
    make_api(fake, clock).set_webhook("https://hooks.example/webhooks/telegram", "s3cret_TOKEN")

    # Then Telegram will send the secret header and the four update kinds
    params = fake.calls_to("setWebhook")[0].params
    assert params == {"url": "https://hooks.example/webhooks/telegram", "secret_token": "s3cret_TOKEN",
                      "allowed_updates": ["message", "chat_join_request", "chat_member", "callback_query"]}
    assert tuple(params["allowed_updates"]) == ALLOWED_UPDATES


@pytest.mark.parametrize(("url", "secret", "reason"), [
    ("http://hooks.example/x", "s3cret", "telegram_webhook_not_https"),
    ("https://hooks.example/x", "bad secret", "telegram_webhook_secret_invalid"),
    ("https://hooks.example/x", "", "telegram_webhook_secret_invalid"),
])
def test_set_webhook_refuses_what_telegram_would_refuse_without_sending(fake, clock, url, secret, reason):
    with pytest.raises(PermanentError) as refused:
        make_api(fake, clock).set_webhook(url, secret)
    assert refused.value.reason == reason and fake.calls == []


def test_answer_button_acknowledges_and_tolerates_an_expired_press(fake, clock):
    # Given one press Telegram still knows and one it no longer does
    fake.enqueue(ok(True))
    fake.enqueue(error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid"))
    api = make_api(fake, clock)

    # When both are answered, then neither fails and the text fits Telegram's 200 characters
    api.answer_button("q-1", "x" * 300)
    api.answer_button("q-2")
    assert [len(c.params.get("text", "")) for c in fake.calls_to("answerCallbackQuery")] == [200, 0]


def test_get_me_asked_three_times_calls_telegram_once(fake, clock):
    # Given a client
    api = make_api(fake, clock)

    # When the username is needed three times
    names = {api.bot_username() for _ in range(3)}

    # Then Telegram was asked once
    assert names == {tg.BOT_USERNAME} and len(fake.calls_to("getMe")) == 1


@pytest.mark.parametrize("chat_id", ["abc", "", "@ab", None, True, "1.5", "-100123/../x"])
def test_chat_id_invalid_is_refused_before_sending(fake, clock, chat_id):
    with pytest.raises(PermanentError) as refused:
        make_api(fake, clock).approve_join_request(chat_id, USER)
    assert refused.value.reason == "invalid_chat_id" and fake.calls == []


def test_chat_id_public_channel_username_is_sent_as_is(fake, clock):
    make_api(fake, clock).send_message("@membergate_news", "hello")
    assert fake.calls[0].params["chat_id"] == "@membergate_news"


def test_send_message_cuts_long_text_to_telegram_limit_and_refuses_empty_text(fake, clock):
    api = make_api(fake, clock)
    # Given a text longer than 4096 UTF-16 units, ending in emoji
    api.send_message(USER, "a" * 4095 + "🎉🎉")
    sent = fake.calls[-1].params["text"]
    assert len(sent.encode("utf-16-le")) // 2 <= 4096 and sent.endswith("…")
    # And an empty text is refused without sending
    with pytest.raises(PermanentError) as refused:
        api.send_message(USER, "  ")
    assert refused.value.reason == "empty_message" and len(fake.calls) == 1


def test_send_message_refuses_a_button_that_is_not_an_http_link(fake, clock):
    with pytest.raises(PermanentError):
        make_api(fake, clock).send_message(USER, "x", button_text="Pay", button_url="javascript:alert(1)")
    assert fake.calls == []


# --- the spec validator itself can fail ----------------------------------------------------------


@pytest.mark.parametrize(("method", "params", "message"), [
    ("sendMesage", {"chat_id": 1, "text": "x"}, "no such Bot API method"),
    ("sendMessage", {"chat_id": 1}, "missing required"),
    ("sendMessage", {"chat_id": 1, "text": "x", "colour": "red"}, "unknown parameter"),
    ("sendMessage", {"chat_id": 1.5, "text": "x"}, "is not Integer or String"),
    ("banChatMember", {"chat_id": 1, "user_id": True}, "is not Integer"),
    ("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": [{"text": "a"}]}}, "reply_markup"),
    ("setWebhook", {"url": "https://x", "allowed_updates": "message"}, "Array of String"),
])
def test_spec_validator_bad_request_raises_spec_violation(method, params, message):
    with pytest.raises(SpecViolation, match=message):
        load_spec().check_call(method, params)


def test_spec_loader_spec_absent_skips_or_fails_under_ci(tmp_path, monkeypatch):
    # Given a specs folder without the Telegram spec
    monkeypatch.setenv("MEMBERGATE_SPECS_DIR", str(tmp_path))

    # When not under CI, then the test is skipped, naming where it looked
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="api.json"):
        load_spec()

    # When under CI, then the run fails instead
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="api.json"):
        load_spec()


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "description", "reason", "advice"), [
    (403, "Forbidden: bot was blocked by the user", "telegram_bot_blocked", "Restart"),
    (403, "Forbidden: bot can't initiate conversation with a user", "telegram_not_started", "tap Start"),
    (403, "Forbidden: user is deactivated", "telegram_user_deactivated", "current account"),
    (400, "Bad Request: chat not found", "telegram_chat_not_found", "-100"),
    (400, "Bad Request: not enough rights to restrict/unrestrict chat member", "telegram_not_enough_rights", "Ban Users"),
    (400, "Bad Request: CHAT_ADMIN_REQUIRED", "telegram_not_enough_rights", "Invite Users via Link"),
    (400, "Bad Request: user is an administrator of the chat", "telegram_member_is_admin", "admin rights"),
    (400, "Bad Request: HIDE_REQUESTER_MISSING", "telegram_join_request_gone", "invite link again"),
    (400, "Bad Request: USER_CHANNELS_TOO_MUCH", "telegram_member_chat_limit", "leave one"),
    (403, "Forbidden: bot was kicked from the supergroup chat", "telegram_bot_removed", "Add it back"),
    (400, "Bad Request: method is available only for supergroups", "telegram_needs_supergroup", "supergroup"),
    (401, "Unauthorized", "telegram_bot_token_invalid", "@BotFather"),
    (404, "Not Found", "telegram_not_found", "TELEGRAM_API_BASE"),
    (400, "Bad Request: something new", "telegram_400", "report it"),
])
def test_refusal_known_description_raises_permanent_error_with_fix(fake, clock, code, description, reason, advice):
    # Given Telegram refuses the call
    fake.enqueue(error(code, description))

    # When the call is made
    with pytest.raises(PermanentError) as refused:
        make_api(fake, clock).approve_join_request(CHAT, USER)

    # Then the error has a stable reason and says what to do
    assert refused.value.reason == reason
    assert advice in refused.value.message


def test_approve_join_request_user_already_in_chat_succeeds(fake, clock):
    fake.enqueue(error(400, "Bad Request: USER_ALREADY_PARTICIPANT"))
    make_api(fake, clock).approve_join_request(CHAT, USER)  # no error: the goal is met


def test_decline_join_request_already_handled_succeeds(fake, clock):
    fake.enqueue(error(400, "Bad Request: HIDE_REQUESTER_MISSING"))
    make_api(fake, clock).decline_join_request(CHAT, USER)  # no error: no one got in


def test_member_status_unknown_user_is_absent(fake, clock):
    # Given one member, one restricted non-member, and a user Telegram does not know in the chat
    fake.chat_members[(CHAT, USER)] = {"status": "member", "user": human(USER)}
    fake.enqueue(error(400, "Bad Request: user not found"), method="getChatMember")
    api = make_api(fake, clock)

    # When their statuses are read
    unknown = api.member_status(CHAT, 42)
    present = api.member_status(CHAT, USER)

    # Then presence follows the status
    assert (unknown.status, unknown.present) == ("unknown", False)
    assert (present.status, present.present) == ("member", True)


def test_network_failure_is_retryable_without_the_token_in_the_message(clock):
    # Given a transport that fails like urllib does, naming the URL (which holds the token)
    class Broken:
        def request(self, method, url, **kwargs):
            raise RetryableError(f"network error calling POST {url}: URLError")

    # When a call fails on the network
    with pytest.raises(RetryableError) as failed:
        make_api(Broken(), clock).get_me()

    # Then it will be retried, and the token is not in the message
    assert BOT_TOKEN not in failed.value.message and "getMe" in failed.value.message


def test_server_error_5xx_is_retryable(fake, clock):
    fake.enqueue(error(502, "Bad Gateway"))
    with pytest.raises(RetryableError):
        make_api(fake, clock).get_me()


def test_bot_token_rejected_with_401_is_not_sent_again(fake, clock):
    # Given Telegram answered 401 to the current token
    fake.enqueue(error(401, "Unauthorized"))
    api = make_api(fake, clock)
    with pytest.raises(PermanentError):
        api.get_me()

    # When another call is made with the same token
    with pytest.raises(PermanentError) as refused:
        api.send_message(USER, "hi")

    # Then nothing more was sent, and the creator is told to replace the token
    assert refused.value.reason == "telegram_bot_token_invalid" and len(fake.calls) == 1


@pytest.mark.parametrize("token", ["", "no-colon", "123:abc/../../x", "123:abc?x=1"])
def test_bot_token_malformed_is_refused_before_it_reaches_a_url(fake, clock, token):
    with pytest.raises(PermanentError):
        make_api(fake, clock, token=token).get_me()
    assert fake.calls == []


# --- group upgraded to supergroup ------------------------------------------------------------------


def test_migrate_to_chat_id_retries_on_new_id_and_reports_it(fake, clock):
    # Given a group upgraded to a supergroup
    old, new = -4001, -1009876543210
    fake.enqueue(error(400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=new))
    moved: list[tuple[int, int]] = []
    api = make_api(fake, clock, on_chat_migrated=lambda a, b: moved.append((a, b)))

    # When a link is created for the old id, then another call is made with the old id
    api.create_join_request_link(old, name="Ana", expire_date=1_790_003_600)
    api.approve_join_request(old, USER)

    # Then the call was repeated on the new id, the migration reported, and later calls use the new id
    assert [c.params["chat_id"] for c in fake.calls] == [old, new, new]
    assert moved == [(old, new)]


# --- 429 and pace -------------------------------------------------------------------------------


def test_rate_limit_short_429_is_waited_out_and_retried_once(fake, clock):
    # Given Telegram asks to wait one second
    fake.enqueue(error(429, "Too Many Requests: retry after 1", retry_after=1))

    # When a message is sent
    make_api(fake, clock).send_message(USER, "hi")

    # Then the client waited as told and the retry went through
    assert 1.0 in clock.slept and len(fake.calls_to("sendMessage")) == 2


def test_rate_limit_long_429_is_retryable_and_holds_every_call(fake, clock):
    # Given Telegram asks to wait 30 seconds
    fake.enqueue(error(429, "Too Many Requests: retry after 30", retry_after=30))
    limits = TelegramRateLimits()
    api = make_api(fake, clock, limits=limits)

    # When a message is sent
    with pytest.raises(RetryableError) as throttled:
        api.send_message(USER, "hi")

    # Then the queue will retry after Telegram's delay, and meanwhile nothing is sent
    assert throttled.value.retry_after == 30
    with pytest.raises(RetryableError):
        make_api(fake, clock, limits=limits).get_me()
    assert len(fake.calls) == 1
    # And once the delay passed, calls flow again
    clock.now += 30
    api.get_me()
    assert len(fake.calls) == 2


def test_pace_one_message_per_second_per_private_chat(fake, clock):
    # Given two messages to the same member and one to another
    api = make_api(fake, clock)
    api.send_message(USER, "one")
    api.send_message(USER + 1, "other member")
    api.send_message(USER, "two")

    # Then only the second message to the same chat waited, about a second
    assert clock.slept == [pytest.approx(1.0)]
    assert len(fake.calls) == 3


def test_pace_twenty_messages_a_minute_per_group(fake, clock):
    # Given a group that received 20 messages within a minute
    api = make_api(fake, clock)
    for _ in range(20):
        api.send_message(CHAT, "news")
        clock.now += 1.0

    # When a 21st is due, then it is not sent; the queue retries when the minute frees a slot
    with pytest.raises(RetryableError) as held:
        api.send_message(CHAT, "one too many")
    assert len(fake.calls) == 20 and held.value.retry_after == pytest.approx(40.0)


def test_pace_thirty_calls_a_second_overall():
    # Given a limiter that saw 30 calls in this second
    limits = TelegramRateLimits()
    assert all(limits.reserve(100.0) == 0.0 for _ in range(30))

    # Then the 31st waits for the window, and nothing was taken for it
    assert limits.reserve(100.5) == pytest.approx(0.5)
    assert limits.reserve(101.0) == 0.0


def test_pace_is_shared_by_clients_in_the_process(fake, clock):
    # Given two clients over one limiter
    limits = TelegramRateLimits()
    make_api(fake, clock, limits=limits).send_message(USER, "one")

    # When the second client writes to the same chat at once, then it waits for the first one's slot
    make_api(fake, clock, limits=limits).send_message(USER, "two")
    assert clock.slept == [pytest.approx(1.0)]


# --- preflight ----------------------------------------------------------------------------------


def test_preflight_accepts_an_admin_bot_that_can_invite_and_ban(fake, clock):
    info = make_api(fake, clock).preflight(CHAT)
    assert (info.id, info.type, info.title) == (CHAT, "supergroup", "Club")


@pytest.mark.parametrize(("member", "reason", "names"), [
    ({"status": "member", "user": bot_user()}, "telegram_bot_not_admin", "not an administrator"),
    (admin_member(bot_user(), can_restrict_members=False), "telegram_not_enough_rights", "'Ban Users'"),
    (admin_member(bot_user(), can_invite_users=False), "telegram_not_enough_rights", "'Invite Users via Link'"),
])
def test_preflight_names_the_missing_right(fake, clock, member, reason, names):
    # Given the bot lacks what Membergate needs in the chat
    fake.chat_members[(CHAT, BOT_ID)] = member

    # When the community is checked
    with pytest.raises(PermanentError) as refused:
        make_api(fake, clock).preflight(CHAT)

    # Then the creator is told which right to give, and how
    assert refused.value.reason == reason and names in refused.value.message
    assert "Administrators" in refused.value.message


def test_preflight_refuses_a_private_chat(fake, clock):
    fake.enqueue(ok({"id": USER, "type": "private", "accent_color_id": 0, "max_reaction_count": 0,
                     "accepted_gift_types": {}}), method="getChat")
    with pytest.raises(PermanentError) as refused:
        make_api(fake, clock).preflight(USER)
    assert refused.value.reason == "telegram_chat_is_private"


@pytest.mark.parametrize("status", [200, 403])
def test_bot_api_non_json_answer_is_retryable_not_success(fake, clock, status):
    # Given something between us and Telegram answers with an HTML page
    fake.enqueue(HttpResponse(status, {"Content-Type": "text/html"}, b"<html>captive portal</html>"))

    # Then the call is neither a success nor a permanent refusal, and the message says where to look
    with pytest.raises(RetryableError) as failed:
        make_api(fake, clock).get_me()
    assert "TELEGRAM_API_BASE" in failed.value.message


def test_revoke_invite_link_already_gone_succeeds(fake, clock):
    # Given one live link and one Telegram no longer knows
    fake.enqueue(ok({"invite_link": "https://t.me/+a", "creator": bot_user(), "creates_join_request": True,
                     "is_primary": False, "is_revoked": True}))
    fake.enqueue(error(400, "Bad Request: INVITE_HASH_EXPIRED"))
    api = make_api(fake, clock)

    # When both are revoked, then neither fails
    api.revoke_invite_link(CHAT, "https://t.me/+a")
    api.revoke_invite_link(CHAT, "https://t.me/+b")
    assert [c.params["invite_link"] for c in fake.calls_to("revokeChatInviteLink")] == ["https://t.me/+a", "https://t.me/+b"]


def test_send_message_non_ascii_text_is_sent_intact(fake, clock):
    make_api(fake, clock).send_message(USER, "Ton accès : actif ✅")
    assert json.loads(json.dumps(fake.calls[0].params))["text"] == "Ton accès : actif ✅"
