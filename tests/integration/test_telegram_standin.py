"""The Telegram stand-in over real HTTP, driven through the real Bot API client, with a real webhook receiver."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local.telegram_standin import DEFAULT_TOKEN, Limits, TelegramStandIn
from membergate.adapters.http import UrllibTransport
from membergate.adapters.telegram import TelegramBotApi, TelegramRateLimits
from membergate.domain.errors import PermanentError, RetryableError
from membergate.domain.telegram import JoinRequest, MemberChange, StartCommand, parse_update, secret_matches

from ..support.telegram_spec import load_spec

pytestmark = pytest.mark.integration

CHAT = -1001500000001
MEMBER = 7001002003
STRANGER = 8002003004
SECRET = "local_webhook_SECRET-1"


class Receiver:
    """A webhook endpoint like Membergate's: 401 without the secret, else the update is kept, parsed."""

    def __init__(self) -> None:
        self.accepted: list[dict] = []
        self.refused = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            if not secret_matches(request.headers.get("X-Telegram-Bot-Api-Secret-Token"), SECRET):
                self.refused += 1
                return Response(status=401)(environ, start_response)
            self.accepted.append(json.loads(request.get_data()))
        return Response("{}", mimetype="application/json")(environ, start_response)

    def parsed(self) -> list:
        with self.lock:
            return [parse_update(update) for update in self.accepted]


@dataclass
class Local:
    standin: TelegramStandIn
    receiver: Receiver
    base: str
    hook: str
    api: TelegramBotApi
    spec_checked: list

    def control(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return json.loads(response.read())


def _serve(app) -> tuple[str, object]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


class _SpecCheckingTransport(UrllibTransport):
    """The real urllib transport, checking each outgoing call against api.json before sending it."""

    def __init__(self, spec, seen: list):
        self.spec, self.seen = spec, seen

    def request(self, method, url, *, headers, body, timeout):
        api_method = url.rsplit("/", 1)[1]
        self.spec.check_call(api_method, json.loads(body))
        self.seen.append(api_method)
        response = super().request(method, url, headers=headers, body=body, timeout=timeout)
        # The stand-in's answers must have the shapes Telegram's have, or the client is tested against fiction.
        data = response.json()
        if response.status == 200 and isinstance(data, dict) and data.get("ok") is True:
            self.spec._check_value(data["result"], self.spec.returns(api_method), f"{api_method} answer")
        return response


def _local(limits: Limits | None = None, client_limits: TelegramRateLimits | None = None, max_wait: float = 2.0) -> Iterator[Local]:
    spec = load_spec()
    standin = TelegramStandIn(spec_methods=spec.methods, limits=limits)
    receiver = Receiver()
    base, server = _serve(standin)
    hook, hook_server = _serve(receiver)
    seen: list = []
    api = TelegramBotApi(_SpecCheckingTransport(spec, seen), lambda: DEFAULT_TOKEN, base,
                         rate_limits=client_limits or TelegramRateLimits(), max_inline_wait=max_wait)
    local = Local(standin, receiver, base, hook + "/webhooks/telegram", api, seen)
    local.control("/_control/webhook", {"url": local.hook, "secret_token": SECRET,
                                        "allowed_updates": ["message", "chat_join_request", "chat_member", "callback_query"]})
    local.control("/_control/chats", {"id": CHAT, "type": "supergroup", "title": "Le Club"})
    try:
        yield local
    finally:
        server.shutdown()
        hook_server.shutdown()


@pytest.fixture
def local() -> Iterator[Local]:
    yield from _local()


def test_standin_member_journey_forwarded_link_lets_no_one_in(local):
    api = local.api
    # Given the community's chat passes the preflight
    assert api.preflight(CHAT).type == "supergroup"

    # When the member opens t.me/<bot>?start=<token>
    local.control(f"/_control/users/{MEMBER}/start", {"token": "tok_member-1", "first_name": "Ana"})

    # Then the webhook received /start with the token, behind the secret
    start = local.receiver.parsed()[-1]
    assert isinstance(start, StartCommand) and (start.user_id, start.token) == (MEMBER, "tok_member-1")

    # When the bot answers with a checkout button, and after payment sends a personal join-request link
    api.send_message(MEMBER, "Pay to join", button_text="Pay", button_url="https://pay.example/checkout/1")
    link = api.create_join_request_link(CHAT, name="Ana", expire_date=4_000_000_000)
    api.send_message(MEMBER, f"Welcome! Join here: {link.url}")

    # And the member opens the link, then a stranger opens the same (forwarded) link
    assert local.control("/_control/join", {"user_id": MEMBER, "invite_link": link.url})["outcome"] == "join_requested"
    assert local.control("/_control/join", {"user_id": STRANGER, "invite_link": link.url})["outcome"] == "join_requested"
    requests = [u for u in local.receiver.parsed() if isinstance(u, JoinRequest)]

    # Then both requests name the link; the bot approves the member's and declines the stranger's
    assert [(r.user_id, r.invite_link) for r in requests] == [(MEMBER, link.url), (STRANGER, link.url)]
    api.approve_join_request(CHAT, MEMBER)
    api.decline_join_request(CHAT, STRANGER)
    assert api.member_status(CHAT, MEMBER).present is True
    assert api.member_status(CHAT, STRANGER).present is False
    joined = [u for u in local.receiver.parsed() if isinstance(u, MemberChange) and u.joined]
    assert [(u.user_id, u.via_join_request) for u in joined] == [(MEMBER, True)]

    # And once the link served, revoking it (twice is harmless) stops it asking to join at all
    api.revoke_invite_link(CHAT, link.url)
    api.revoke_invite_link(CHAT, link.url)
    assert local.control("/_control/join", {"user_id": STRANGER, "invite_link": link.url})["outcome"] == "link_invalid"

    # And every update the webhook received has the shape the Bot API describes
    for update in local.receiver.accepted:
        load_spec().check_object("Update", update)

    # And the stand-in kept the messages, and every call was a spec-valid one
    assert [m["chat"]["id"] for m in local.get("/messages")["messages"]] == [MEMBER, MEMBER]
    assert local.get("/messages")["messages"][0]["reply_markup"]["inline_keyboard"][0][0]["url"].endswith("/checkout/1")
    assert [c["status"] for c in local.get("/calls")["calls"]].count(400) == 1  # the second revoke
    assert local.receiver.refused == 0


def test_standin_removed_member_can_come_back_through_a_new_link(local):
    api = local.api
    # Given a member in the chat
    local.control(f"/_control/users/{MEMBER}/start", {"token": "t"})
    link = api.create_join_request_link(CHAT, name="Ana", expire_date=4_000_000_000)
    local.control("/_control/join", {"user_id": MEMBER, "invite_link": link.url})
    api.approve_join_request(CHAT, MEMBER)

    # When access ends
    api.remove_member(CHAT, MEMBER)

    # Then the member is out and not banned
    chat = local.get(f"/chats/{CHAT}")
    assert str(MEMBER) not in chat["members"] and chat["banned"] == []
    assert api.member_status(CHAT, MEMBER).present is False
    left = [u for u in local.receiver.parsed() if isinstance(u, MemberChange) and u.left]
    assert [u.user_id for u in left] == [MEMBER]

    # When they pay again and use a new link, then they are back in
    again = api.create_join_request_link(CHAT, name="Ana", expire_date=4_000_000_000)
    assert local.control("/_control/join", {"user_id": MEMBER, "invite_link": again.url})["outcome"] == "join_requested"
    api.approve_join_request(CHAT, MEMBER)
    assert api.member_status(CHAT, MEMBER).present is True


def test_standin_message_to_user_not_started_or_blocked_is_refused(local):
    # Given a user who never started the bot, and one who blocked it
    local.control("/_control/users", {"id": STRANGER, "first_name": "Zed"})
    local.control(f"/_control/users/{MEMBER}/start", {"token": "t"})
    local.control(f"/_control/users/{MEMBER}/block", {"blocked": True})

    # When the bot writes to them, then each refusal says what the member must do
    with pytest.raises(PermanentError) as never_started:
        local.api.send_message(STRANGER, "hello")
    with pytest.raises(PermanentError) as blocked:
        local.api.send_message(MEMBER, "hello")
    assert never_started.value.reason == "telegram_not_started"
    assert blocked.value.reason == "telegram_bot_blocked"


def test_standin_bot_without_rights_is_refused_with_the_fix(local):
    # Given the bot may not ban in the chat
    local.control(f"/_control/chats/{CHAT}/bot", {"can_restrict_members": False})

    # Then the preflight names the missing right, and a removal fails with the same fix
    with pytest.raises(PermanentError) as preflight:
        local.api.preflight(CHAT)
    with pytest.raises(PermanentError) as removal:
        local.api.remove_member(CHAT, MEMBER)
    assert preflight.value.reason == removal.value.reason == "telegram_not_enough_rights"
    assert "Ban Users" in preflight.value.message and "Ban Users" in removal.value.message


def test_standin_unknown_chat_or_wrong_token_is_permanent(local):
    with pytest.raises(PermanentError) as unknown:
        local.api.create_join_request_link(-1009999999999, name="x", expire_date=4_000_000_000)
    bad = TelegramBotApi(UrllibTransport(), lambda: "999:wrong-token", local.base, rate_limits=TelegramRateLimits())
    with pytest.raises(PermanentError) as token:
        bad.get_me()
    assert unknown.value.reason == "telegram_chat_not_found"
    assert token.value.reason == "telegram_bot_token_invalid"


def test_standin_webhook_wrong_secret_is_refused_by_receiver(local):
    # Given the stand-in's webhook secret no longer matches Membergate's
    local.control("/_control/webhook", {"url": local.hook, "secret_token": "another_secret"})

    # When an update is injected
    result = local.control("/_control/updates", {"message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}}})

    # Then the receiver answered 401 and kept nothing
    assert result["delivered"][0]["status"] == 401
    assert local.receiver.accepted == [] and local.receiver.refused == 1


def test_standin_answers_400_for_unknown_or_missing_parameters_like_telegram(local):
    # Given raw calls that skip the client's care
    def raw(method: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(f"{local.base}/bot{DEFAULT_TOKEN}/{method}", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read())

    # Then each is refused as Telegram would
    assert raw("sendMessage", {"chat_id": MEMBER})[0] == 400
    assert raw("sendMessage", {"chat_id": MEMBER, "text": "x", "colour": "red"})[0] == 400
    assert raw("sendMesage", {"chat_id": MEMBER, "text": "x"})[0] == 404
    status, body = raw("setWebhook", {"url": "http://insecure.example/hook"})
    assert status == 400 and body["ok"] is False and "HTTPS" in body["description"]


def test_standin_answers_429_to_a_client_that_ignores_the_pace():
    # Given a client whose own limiter would allow 1000 messages a second per chat
    fast = TelegramRateLimits(per_second=1000, per_chat_per_second=1000, per_group_per_minute=1000)
    for local in _local(client_limits=fast, max_wait=0.0):
        local.control(f"/_control/users/{MEMBER}/start", {"token": "t"})

        # When it sends two messages to one member at once
        local.api.send_message(MEMBER, "one")
        with pytest.raises(RetryableError) as throttled:
            local.api.send_message(MEMBER, "two")

        # Then the stand-in answered 429 with retry_after, which the client passes on
        assert throttled.value.retry_after >= 1
        assert [c["status"] for c in local.get("/calls")["calls"]][-1] == 429


def test_standin_client_keeping_pace_sees_no_429():
    # Given the client's default pace (1 message a second per chat)
    for local in _local():
        local.control(f"/_control/users/{MEMBER}/start", {"token": "t"})

        # When it sends three messages to one member
        for text in ("one", "two", "three"):
            local.api.send_message(MEMBER, text)

        # Then all were delivered, none refused
        statuses = [c["status"] for c in local.get("/calls")["calls"]]
        assert statuses.count(429) == 0 and len(local.get("/messages")["messages"]) == 3


def test_standin_group_upgraded_is_followed_to_its_new_id(local):
    # Given a basic group the bot runs, later upgraded to a supergroup by its creator
    group = -4001234
    local.control("/_control/chats", {"id": group, "type": "group", "title": "Petit club"})
    local.control(f"/_control/chats/{group}/migrate", {"to": -1004001234})
    moved = []
    api = TelegramBotApi(UrllibTransport(), lambda: DEFAULT_TOKEN, local.base, rate_limits=TelegramRateLimits(),
                         on_chat_migrated=lambda old, new: moved.append((old, new)))

    # When the bot creates a link for the old id
    link = api.create_join_request_link(group, name="Ana", expire_date=4_000_000_000)

    # Then the link is for the supergroup and the new id is reported for the community to keep
    assert moved == [(group, -1004001234)]
    assert local.control("/_control/join", {"user_id": MEMBER, "invite_link": link.url})["outcome"] == "join_requested"
    assert str(MEMBER) in local.get("/chats/-1004001234")["pending"]


def test_webhook_command_valid_settings_sets_webhook_and_checks_chats(local):
    from infra.telegram_webhook import main

    # Given the bot's token and secret in the environment
    env = {"TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_API_BASE": local.base}
    out = io.StringIO()

    # When the one command runs with a chat to check
    code = main(["https://hooks.example/webhooks/telegram", "--check", str(CHAT)], env, out=out)

    # Then Telegram has the webhook with the secret and the four update kinds, and the chat passed
    assert code == 0, out.getvalue()
    assert local.standin.webhook == {"url": "https://hooks.example/webhooks/telegram", "secret_token": SECRET,
                                     "allowed_updates": ["message", "chat_join_request", "chat_member", "callback_query"]}
    assert "can invite and remove members" in out.getvalue()


def test_webhook_command_bot_lacking_rights_reports_the_fix(local):
    from infra.telegram_webhook import main

    # Given the bot may not invite users in the chat
    local.control(f"/_control/chats/{CHAT}/bot", {"can_invite_users": False})
    env = {"TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_API_BASE": local.base}
    out = io.StringIO()

    # When the command checks the chat, then it fails naming the right to give
    assert main(["https://hooks.example/webhooks/telegram", "--check", str(CHAT)], env, out=out) == 1
    assert "Invite Users via Link" in out.getvalue()
    # And without the settings it says which to set
    assert main(["https://hooks.example/webhooks/telegram"], {}, out=out) == 2
    assert "TELEGRAM_BOT_TOKEN" in out.getvalue()


def test_standin_without_the_spec_still_refuses_missing_required_parameters():
    from werkzeug.test import Client

    # Given a stand-in on a machine without the spec file
    client = Client(TelegramStandIn(load_spec=False))

    # When sendMessage comes without text, then it is refused as Telegram does; getMe still works
    missing = client.post(f"/bot{DEFAULT_TOKEN}/sendMessage", json={"chat_id": MEMBER})
    assert missing.status_code == 400 and missing.json["description"] == "Bad Request: text is empty"
    assert client.post(f"/bot{DEFAULT_TOKEN}/getMe", json={}).json["result"]["is_bot"] is True


def test_standin_channel_member_joins_by_request_and_is_removed(local):
    # Given a channel the bot administers
    channel = -1002000000002
    local.control("/_control/chats", {"id": channel, "type": "channel", "title": "Les Notes"})
    api = local.api
    assert api.preflight(channel).type == "channel"

    # When a paying member uses their link and the request is approved, then later access ends
    link = api.create_join_request_link(channel, name="Ana", expire_date=4_000_000_000)
    local.control("/_control/join", {"user_id": MEMBER, "invite_link": link.url})
    request = [u for u in local.receiver.parsed() if isinstance(u, JoinRequest)][-1]
    assert (request.chat_id, request.chat_type) == (channel, "channel")
    api.approve_join_request(channel, MEMBER)
    assert api.member_status(channel, MEMBER).present is True
    api.remove_member(channel, MEMBER)

    # Then they are out of the channel and free to come back later
    assert api.member_status(channel, MEMBER).present is False
    assert local.get(f"/chats/{channel}")["banned"] == []
