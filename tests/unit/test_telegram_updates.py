"""Telegram Update parsing, deep-link tokens and the webhook secret check (pure domain rules)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membergate.domain.errors import MalformedEventError
from membergate.domain.telegram import (
    ButtonPress,
    IgnoredUpdate,
    JoinRequest,
    MemberChange,
    StartCommand,
    invite_link_name,
    join_request_verdict,
    is_valid_start_token,
    is_valid_webhook_secret,
    parse_update,
    secret_matches,
    start_link,
)

from ..support.telegram_spec import load_spec, updates

pytestmark = pytest.mark.unit

USER = 7001002003
CHAT = -1001234567890


# --- /start ---------------------------------------------------------------------------------


def test_parse_update_start_with_token_returns_start_command():
    # Given a /start message carrying a deep-link token in a private chat
    update = updates.start(USER, "tok_ABC-123", username="ana", language_code="fr")

    # When it is parsed
    parsed = parse_update(update)

    # Then Membergate learns who started the bot and with which token
    assert parsed == StartCommand(
        update_id=update["update_id"], user_id=USER, chat_id=USER, token="tok_ABC-123",
        username="ana", first_name="Ana", language_code="fr",
    )


def test_parse_update_bare_start_has_no_token():
    # Given /start without payload
    parsed = parse_update(updates.start(USER, None))

    # Then it is a start without token
    assert isinstance(parsed, StartCommand) and parsed.token is None


@pytest.mark.parametrize("payload", ["bad token", "x" * 65, "tok/../x", "tökén"])
def test_parse_update_start_with_invalid_payload_has_no_token(payload):
    # Given a /start whose payload no deep link could have produced
    parsed = parse_update(updates.start(USER, payload))

    # Then the payload is not passed on as a token
    assert isinstance(parsed, StartCommand) and parsed.token is None


def test_parse_update_start_addressed_to_bot_username_is_read():
    # Given "/start@bot token" (what clients send when the command is picked from a menu)
    update = updates.start(USER, None)
    update["message"]["text"] = "/start@membergate_bot tok1"

    # Then the token is read
    assert parse_update(update).token == "tok1"


@pytest.mark.parametrize("text", ["/starting tok", "hello", "start tok", "/help"])
def test_parse_update_other_text_is_ignored(text):
    # Given a private message that is not /start
    update = updates.start(USER, None)
    update["message"]["text"] = text

    # Then it is ignored
    assert parse_update(update) == IgnoredUpdate(update["update_id"], "message")


def test_parse_update_start_in_a_group_is_ignored():
    # Given /start sent in a group (deep links only open private chats)
    update = updates.start(USER, "tok1")
    update["message"]["chat"] = {"id": CHAT, "type": "supergroup", "title": "Club"}

    # Then it is not taken as a binding
    assert isinstance(parse_update(update), IgnoredUpdate)


def test_parse_update_message_without_sender_is_ignored():
    # Given a message with no `from` (sent on behalf of a chat)
    update = updates.start(USER, "tok1")
    del update["message"]["from"]

    # Then it is ignored
    assert isinstance(parse_update(update), IgnoredUpdate)


# --- join requests, member changes, buttons ---------------------------------------------------


def test_parse_update_join_request_reads_user_chat_and_link():
    # Given a chat_join_request through a named invite link
    update = updates.join_request(CHAT, USER, "https://t.me/+AbCdEf", link_name="Ana R.")

    # When it is parsed
    parsed = parse_update(update)

    # Then the user, the chat and the link are known
    assert parsed == JoinRequest(
        update_id=update["update_id"], chat_id=CHAT, chat_type="supergroup", user_id=USER,
        user_chat_id=USER, invite_link="https://t.me/+AbCdEf", invite_link_name="Ana R.", date=1_790_000_000,
    )


@pytest.mark.parametrize(("user_id", "link", "verdict"), [
    (USER, "https://t.me/+mine", "approve"),
    (USER + 1, "https://t.me/+mine", "decline"),  # the member's link, forwarded to someone else
    (USER, "https://t.me/+unknown", "decline"),  # a link Membergate did not issue (or one that expired)
    (USER, None, "decline"),  # no link: through the chat's username
])
def test_join_request_verdict_approves_only_the_holder_of_the_link(user_id, link, verdict):
    # Given the personal links Membergate issued
    holders = {"https://t.me/+mine": USER, "https://t.me/+other": USER + 2}

    # When a join request arrives, then only its link's holder gets in
    request = parse_update(updates.join_request(CHAT, user_id, link))
    assert join_request_verdict(request, holders) == verdict


def test_parse_update_join_request_without_link_has_none():
    # Given a join request through the chat's public username (no invite link)
    update = updates.join_request(CHAT, USER, None)

    # Then the link is None, so no member's link can match it
    assert parse_update(update).invite_link is None


@pytest.mark.parametrize(
    ("old", "new", "joined", "left"),
    [
        ({"status": "left"}, {"status": "member"}, True, False),
        ({"status": "member"}, {"status": "kicked", "until_date": 0}, False, True),
        ({"status": "member"}, {"status": "left"}, False, True),
        ({"status": "restricted", "is_member": True}, {"status": "restricted", "is_member": False}, False, True),
        ({"status": "member"}, {"status": "administrator"}, False, False),
    ],
)
def test_parse_update_chat_member_reports_joins_and_leaves(old, new, joined, left):
    # Given a chat_member update with old and new statuses
    parsed = parse_update(updates.member_change(CHAT, USER, old, new))

    # Then joins and leaves are derived from presence, not from one status name
    assert isinstance(parsed, MemberChange)
    assert (parsed.joined, parsed.left) == (joined, left)
    assert parsed.user_id == USER and parsed.chat_id == CHAT


def test_parse_update_callback_query_reads_data_and_chat():
    # Given a button press on a message in the bot's private chat
    parsed = parse_update(updates.button(USER, "plan:monthly"))

    # Then the press is known with its data
    assert parsed == ButtonPress(update_id=parsed.update_id, query_id="q-1", user_id=USER, data="plan:monthly", chat_id=USER)


def test_parse_update_unknown_kind_is_ignored_with_its_name():
    # Given an update of a kind Membergate does not use
    parsed = parse_update({"update_id": 5, "poll": {"id": "p"}})

    # Then it is acknowledged as ignored, named
    assert parsed == IgnoredUpdate(5, "poll")


@pytest.mark.parametrize(
    "update",
    [
        [],
        {"message": {}},
        {"update_id": "1", "message": {}},
        {"update_id": True},
        {"update_id": 1, "message": {"chat": "x"}},
        {"update_id": 1, "chat_join_request": {"chat": {"id": 1}, "from": {"id": "2"}, "user_chat_id": 2, "date": 1}},
        {"update_id": 1, "callback_query": {"from": {"id": 2}}},
    ],
)
def test_parse_update_broken_shapes_raise_malformed(update):
    # When a broken update is parsed, then it is refused as malformed, not half-read
    with pytest.raises(MalformedEventError):
        parse_update(update)


def test_parse_update_spec_shaped_updates_validate_against_the_spec():
    telegram_spec = load_spec()
    # Given the updates the tests build, then each has the shape the Bot API describes
    for update in (
        updates.start(USER, "tok"),
        updates.join_request(CHAT, USER, "https://t.me/+x", link_name="n"),
        updates.member_change(CHAT, USER, {"status": "left"}, {"status": "member"}),
        updates.button(USER, "d"),
    ):
        telegram_spec.check_object("Update", update)


# --- tokens, links, names ----------------------------------------------------------------------


@pytest.mark.parametrize(("token", "ok"), [("a", True), ("A-z_09", True), ("x" * 64, True), ("", False),
                                           ("x" * 65, False), ("a b", False), ("a+b", False), ("é", False), (None, False)])
def test_is_valid_start_token_follows_telegram_alphabet(token, ok):
    assert is_valid_start_token(token) is ok


def test_start_link_builds_the_t_me_deep_link():
    # When the link is built from the bot's username (with or without @)
    # Then it is the deep link Telegram documents
    assert start_link("@membergate_bot", "tok-1") == "https://t.me/membergate_bot?start=tok-1"
    assert start_link("membergate_bot", "tok-1") == "https://t.me/membergate_bot?start=tok-1"


@pytest.mark.parametrize(("username", "token"), [("ab", "tok"), ("bad/name", "tok"), ("membergate_bot", "a b"), ("membergate_bot", "")])
def test_start_link_refuses_what_telegram_would_not_open(username, token):
    with pytest.raises(ValueError):
        start_link(username, token)


def test_invite_link_name_fits_32_utf16_units_without_splitting_emoji():
    # Given a long display name ending in emoji
    name = invite_link_name("Anastasia   Rodríguez-Villanueva 🎉🎉🎉")

    # Then it fits Telegram's 32-character limit and no surrogate is left alone
    assert len(name.encode("utf-16-le")) // 2 <= 32
    assert name.startswith("Anastasia Rodríguez-Villanueva")
    name.encode("utf-8")  # a lone surrogate would raise here


# --- webhook secret -----------------------------------------------------------------------------


SECRET = "s3cret_TOKEN-value"


@pytest.mark.parametrize("received", [SECRET, SECRET.encode()])
def test_secret_matches_accepts_the_exact_secret(received):
    assert secret_matches(received, SECRET) is True


@pytest.mark.parametrize("received", [None, "", "s3cret_TOKEN-valuE", SECRET + "x", SECRET[:-1], "s3cret_TOKEN-valué",
                                      "s3cret_TOKEN-valu\u00e9".encode(), b"\xff" * 18, 42])
def test_secret_matches_refuses_anything_else(received):
    assert secret_matches(received, SECRET) is False


@pytest.mark.parametrize("configured", ["", "has space", "x" * 257, "é"])
def test_secret_matches_accepts_nothing_when_the_configured_secret_is_invalid(configured):
    # Given a secret Telegram itself would refuse (or none): even an equal header is refused
    assert secret_matches(configured, configured) is False
    assert is_valid_webhook_secret(configured) is False


# --- nothing a stranger posts makes the parser fail in an unplanned way ----------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_kinds = st.sampled_from(["message", "chat_join_request", "chat_member", "callback_query", "poll"])


@settings(max_examples=300, deadline=None)
@given(kind=_kinds, body=_json_values, update_id=st.one_of(st.integers(), _json_values))
def test_parse_update_any_json_parses_or_raises_malformed(kind, body, update_id):
    # Given any JSON under a known update kind, when it is parsed
    try:
        parsed = parse_update({"update_id": update_id, kind: body})
    except MalformedEventError:
        return
    # Then it is one of the planned results
    assert isinstance(parsed, (StartCommand, JoinRequest, MemberChange, ButtonPress, IgnoredUpdate))


@settings(max_examples=200, deadline=None)
@given(path=st.lists(st.sampled_from(["chat", "from", "id", "invite_link", "user_chat_id", "date", "type"]),
                     min_size=1, max_size=3), value=_json_values)
def test_parse_update_join_request_with_any_field_replaced_parses_or_raises_malformed(path, value):
    # Given a real join request with one nested field replaced by anything
    update = updates.join_request(CHAT, USER, "https://t.me/+x")
    target = update["chat_join_request"]
    for key in path[:-1]:
        target = target.get(key) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target[path[-1]] = value

    # When it is parsed, then it is read or refused as malformed, never anything else
    try:
        parse_update(update)
    except MalformedEventError:
        pass


@settings(max_examples=300, deadline=None)
@given(received=st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=40)))
def test_secret_matches_any_header_answers_without_raising(received):
    assert secret_matches(received, SECRET) is (received in (SECRET, SECRET.encode()))
