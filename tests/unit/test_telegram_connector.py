"""TelegramConnector: the core's CommunityConnector port over the Bot API, checked against the spec."""

from __future__ import annotations

import pytest

from membergate.adapters.telegram import TelegramBotApi, TelegramConnector, TelegramRateLimits
from membergate.domain.access import Capability, PresenceState
from membergate.domain.errors import PermanentError
from membergate.domain.model import Community, OnRevoke, Platform
from membergate.domain.telegram import personal_link_name

from ..support import telegram_spec as tg
from ..support.telegram_spec import BOT_TOKEN, FakeClock, FakeTelegramTransport, error, human, load_spec

pytestmark = pytest.mark.unit

CHAT, USER = -1001234567890, 7001002003
COMMUNITY = Community(id="com_tg", platform=Platform.TELEGRAM, name="Club", external_id=str(CHAT), role_id=None,
                      on_revoke=OnRevoke.KICK, locale="en", created_at=0)


@pytest.fixture
def fake():
    return FakeTelegramTransport(load_spec())


@pytest.fixture
def connector(fake):
    clock = FakeClock()
    api = TelegramBotApi(fake, lambda: BOT_TOKEN, tg.API_BASE, sleep=clock.sleep, monotonic=clock.monotonic,
                         rate_limits=TelegramRateLimits())
    return TelegramConnector(api)


def test_telegram_connector_declares_invite_approve_remove_message_and_no_roles(connector):
    # Then the planner will never ask it for roles or a direct add
    assert connector.platform is Platform.TELEGRAM
    assert Capability.ROLES not in connector.capabilities and Capability.ADD_MEMBER not in connector.capabilities
    assert {Capability.INVITE, Capability.APPROVE_JOIN, Capability.REMOVE_MEMBER, Capability.MESSAGE,
            Capability.CHECK_MEMBER} <= connector.capabilities


def test_telegram_connector_check_member_reads_get_chat_member(connector, fake):
    # Given the user is a member, then has left
    fake.chat_members[(CHAT, USER)] = {"status": "member", "user": human(USER)}
    present = connector.check_member(COMMUNITY, str(USER))
    fake.chat_members[(CHAT, USER)] = {"status": "left", "user": human(USER)}
    gone = connector.check_member(COMMUNITY, str(USER))

    # Then presence follows Telegram's status
    assert present.state is PresenceState.PRESENT and gone.state is PresenceState.ABSENT
    assert [c.params for c in fake.calls_to("getChatMember")][0] == {"chat_id": CHAT, "user_id": USER}


def test_telegram_connector_invite_is_a_short_named_join_request_link(connector, fake):
    # When a personal invite is created at time T
    url = connector.create_invite(COMMUNITY, str(USER), 1_800_000_000)

    # Then it asks for join requests, expires within a day, and is named after the member
    params = fake.calls_to("createChatInviteLink")[0].params
    assert url.startswith("https://t.me/+")
    assert params["creates_join_request"] is True and params["chat_id"] == CHAT
    assert 1_800_000_000 < params["expire_date"] <= 1_800_000_000 + 86_400
    assert params["name"] == personal_link_name(str(USER))


def test_telegram_connector_remove_is_ban_then_unban_and_join_requests_are_answered(connector, fake):
    # When the member is removed, then a request approved and another declined
    connector.remove_member(COMMUNITY, str(USER))
    connector.approve_join(COMMUNITY, str(USER))
    connector.decline_join(COMMUNITY, str(USER + 1))

    # Then Telegram got ban, unban (so they can come back after paying), approve and decline
    assert [c.method for c in fake.calls] == ["banChatMember", "unbanChatMember", "approveChatJoinRequest",
                                              "declineChatJoinRequest"]
    assert fake.calls_to("unbanChatMember")[0].params["only_if_banned"] is True


def test_telegram_connector_message_to_a_user_who_never_started_the_bot_says_the_fix(connector, fake):
    # Given Telegram refuses because the user never started the bot
    fake.enqueue(error(403, "Forbidden: bot can't initiate conversation with a user"), method="sendMessage")

    # When the connector sends a message
    with pytest.raises(PermanentError) as refused:
        connector.send_message(str(USER), "Your invite", idempotency_key="k1")

    # Then the refusal is typed and tells the member what to do
    assert refused.value.reason == "telegram_not_started" and "Start" in refused.value.message


def test_telegram_connector_roles_and_direct_add_are_refused(connector):
    for call in (lambda: connector.grant_role(COMMUNITY, str(USER), "r"),
                 lambda: connector.add_member(COMMUNITY, str(USER), [], None)):
        with pytest.raises(PermanentError) as refused:
            call()
        assert refused.value.reason == "unsupported_action"


# --- preflight (GET /admin/health, POST /admin/communities/{id}/check) ------------------------------


def test_telegram_connector_preflight_passes_for_an_admin_bot_with_spec_valid_calls(connector, fake):
    # Given the bot is an administrator who can invite and ban (the fake's default)
    # When the community is checked
    result = connector.preflight(COMMUNITY, [])
    # Then every check passes, asked with getChat / getMe / getChatMember on the bot itself (each spec-checked)
    assert Capability.PREFLIGHT in connector.capabilities
    assert result.ok and [c.name for c in result.checks] == ["bot_in_chat", "bot_is_admin", "bot_rights"]
    assert [c.method for c in fake.calls] == ["getChat", "getMe", "getChatMember"]
    assert fake.calls[-1].params["user_id"] == tg.BOT_ID


@pytest.mark.parametrize(("member", "check", "says"), [
    ({"status": "member", "user": tg.bot_user()}, "bot_is_admin", "not an administrator"),
    (tg.admin_member(tg.bot_user(), can_restrict_members=False), "bot_rights", "'Ban Users'"),
    (tg.admin_member(tg.bot_user(), can_invite_users=False), "bot_rights", "'Invite Users via Link'"),
])
def test_telegram_connector_preflight_names_the_missing_right_with_the_fix(connector, fake, member, check, says):
    # Given the bot lacks a right in the chat
    fake.chat_members[(CHAT, tg.BOT_ID)] = member
    # When checked
    result = connector.preflight(COMMUNITY, [])
    # Then that one check fails, telling the creator where to give the right
    assert not result.ok and [c.name for c in result.failures()] == [check]
    assert says in result.checks[0].fix and "Edit → Administrators" in result.checks[0].fix


def test_telegram_connector_preflight_bot_removed_from_the_chat_says_to_add_it_back(connector, fake):
    # Given Telegram answers getChat with "chat not found" (the bot is not in it any more)
    fake.enqueue(error(400, "Bad Request: chat not found"), method="getChat")
    # When checked
    result = connector.preflight(COMMUNITY, [])
    # Then the failed check says to add the bot back as an administrator
    assert [(c.name, c.ok) for c in result.checks] == [("bot_in_chat", False)]
    assert "Add the bot to the group or channel as an administrator" in result.checks[0].fix
