"""Posting a migration's offer in the place: Discord Create Message in a channel, Telegram sendMessage to the
group; every request checked against the platform's spec (tests/support/*_spec.py over /work/shared/specs)."""

from __future__ import annotations

import json

import pytest

from membergate.adapters.discord import BotRateLimits, DiscordCommunityConnector, DiscordConnector, InvalidRequestGuard
from membergate.adapters.http import HttpResponse
from membergate.adapters.telegram import TelegramBotApi, TelegramConnector, TelegramRateLimits
from membergate.domain.access import Capability
from membergate.domain.errors import PermanentError
from membergate.domain.model import Community, OnRevoke, Platform
from tests.support import telegram_spec as tg
from tests.support.discord_spec import API_BASE, BOT_TOKEN, FakeClock, SpecCheckingDiscordTransport, _message_json
from tests.support.telegram_spec import FakeTelegramTransport, load_spec

pytestmark = pytest.mark.unit

GUILD, CHANNEL = "100000000000000001", "100000000000000009"
CHAT = -1001234567890
DISCORD = Community("com_d", Platform.DISCORD, "Le Cercle", GUILD, "200000000000000001", OnRevoke.REMOVE_ROLE, "fr", 0)
TELEGRAM = Community("com_t", Platform.TELEGRAM, "Le Cercle", str(CHAT), None, OnRevoke.KICK, "fr", 0)


def _discord(transport: SpecCheckingDiscordTransport) -> DiscordConnector:
    clock = FakeClock()
    bot = DiscordCommunityConnector(transport, lambda: BOT_TOKEN, API_BASE, sleep=clock.sleep, monotonic=clock.monotonic,
                                    rate_limits=BotRateLimits(), invalid_requests=InvalidRequestGuard())
    return DiscordConnector(bot)


def test_discord_post_is_a_spec_valid_create_message_in_the_channel_with_a_nonce():
    # Given a server with an announcement channel (Discord's answer scripted, checked against the spec too)
    transport = SpecCheckingDiscordTransport()
    transport.enqueue(HttpResponse(200, {"Content-Type": "application/json"},
                                   json.dumps(_message_json("900000000000000777", CHANNEL, "x")).encode()),
                      method="POST", path=f"/channels/{CHANNEL}/messages")
    connector = _discord(transport)
    # When the offer is posted
    connector.post_announcement(DISCORD, CHANNEL, "Le Cercle devient payant", "mig_1:post")
    # Then one spec-valid Create Message went to that channel, with a nonce Discord enforces
    (request,) = transport.requests_to("POST", f"/channels/{CHANNEL}/messages")
    assert request.json["content"] == "Le Cercle devient payant"
    assert request.json["enforce_nonce"] is True and 0 < len(request.json["nonce"]) <= 25
    assert Capability.POST_ANNOUNCEMENT in connector.capabilities


def test_discord_post_without_a_channel_says_which_field_to_give():
    # Given no announcement channel / When posting / Then a typed refusal naming the field, no request
    transport = SpecCheckingDiscordTransport()
    with pytest.raises(PermanentError) as refused:
        _discord(transport).post_announcement(DISCORD, None, "text", "k")
    assert refused.value.reason == "announcement_channel_missing" and "announcement_channel_id" in refused.value.message
    assert transport.requests == []


def test_telegram_post_is_a_send_message_to_the_group_itself():
    # Given the bot in the group
    fake = FakeTelegramTransport(load_spec())
    clock = tg.FakeClock()
    connector = TelegramConnector(TelegramBotApi(fake, lambda: tg.BOT_TOKEN, tg.API_BASE, sleep=clock.sleep,
                                                 monotonic=clock.monotonic, rate_limits=TelegramRateLimits()))
    # When the offer is posted
    connector.post_announcement(TELEGRAM, None, "Le Cercle devient payant", "mig_1:post")
    # Then one spec-valid sendMessage went to the group's chat id
    (call,) = fake.calls_to("sendMessage")
    assert call.params["chat_id"] == CHAT and call.params["text"] == "Le Cercle devient payant"
    assert Capability.POST_ANNOUNCEMENT in connector.capabilities
