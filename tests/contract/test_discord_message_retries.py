"""A DM whose answer was lost is never posted twice, within Discord's nonce window or after it (audit 4.3)."""

from __future__ import annotations

import pytest

from membergate.adapters.discord import BotRateLimits, DiscordCommunityConnector, DiscordConnector, InvalidRequestGuard
from membergate.domain.errors import RetryableError
from membergate.domain.lifecycle import WELCOME
from membergate.domain.model import MessageKey, MessageStatus, Platform, WorkKind
from membergate.ports import AccessWork, encode_work
from membergate.services.access import NONCE_TRUSTED_SECONDS
from membergate.services.access_worker import handle_access_message
from tests.support.discord_spec import (
    API_BASE,
    BOT_TOKEN,
    NONCE_WINDOW,
    FakeClock,
    SpecCheckingDiscordTransport,
    discord_error,
)
from tests.support.harness import T0, Harness

pytestmark = pytest.mark.contract

USER = "555555555555555555"
KEY = MessageKey("mbr_1", WELCOME, "com_1")


class LosesAnswers:
    """The transport with a network that drops the answer of the next message posted (it did arrive)."""

    def __init__(self, discord: SpecCheckingDiscordTransport):
        self.discord = discord
        self.lose_next_post = False

    def request(self, method, url, *, headers, body, timeout):
        response = self.discord.request(method, url, headers=headers, body=body, timeout=timeout)
        if self.lose_next_post and method == "POST" and url.endswith("/messages"):
            self.lose_next_post = False
            raise RetryableError("network error calling POST /channels/messages: timed out")
        return response


def setup() -> tuple[Harness, SpecCheckingDiscordTransport, LosesAnswers]:
    h = Harness()
    h.member("mbr_1", USER)
    discord = SpecCheckingDiscordTransport()
    discord.add_user(USER)
    discord.clock = lambda: float(h.now)  # the stand-in's nonce memory follows the test's time
    network = LosesAnswers(discord)
    clock = FakeClock()
    bot = DiscordCommunityConnector(network, lambda: BOT_TOKEN, API_BASE, sleep=clock.sleep, monotonic=clock.monotonic,
                                    rate_limits=BotRateLimits(), invalid_requests=InvalidRequestGuard())
    h.dispatcher.connectors[Platform.DISCORD] = DiscordConnector(bot)
    return h, discord, network


def attempt(h: Harness, work: AccessWork) -> None:
    handle_access_message(encode_work(work), dispatcher=h.dispatcher, queue=h.queue, max_attempts=8, now=h.now,
                          jitter=0.5)


def retry(h: Harness, at: int) -> None:
    work, _delay = h.queue.work.pop(0)
    h.at(at)
    attempt(h, work)


def welcome() -> AccessWork:
    return AccessWork(WorkKind.NOTIFY, "mbr_1", "com_1", message_kind=WELCOME, message_period="com_1")


def reads(discord: SpecCheckingDiscordTransport) -> list:
    return [r for r in discord.requests if r.method == "GET" and r.path.split("?")[0].endswith("/messages")]


def test_stand_in_forgets_a_nonce_after_five_minutes_as_discord_does():
    # Given a DM posted with a nonce
    h, discord, _ = setup()
    bot = h.dispatcher.connectors[Platform.DISCORD].bot
    bot.send_dm(USER, "hello", nonce="n1")
    # When the same nonce is posted within the window, then after it
    h.at(T0 + 60)
    bot.send_dm(USER, "hello", nonce="n1")
    h.at(T0 + int(NONCE_WINDOW) + 1)
    bot.send_dm(USER, "hello", nonce="n1")
    # Then the first repeat was deduplicated, the late one posted again (what retries must avoid)
    assert [content for _, content in discord.delivered] == ["hello", "hello"]


def test_retry_within_the_nonce_window_after_a_lost_answer_posts_once_without_reading_the_channel():
    # Given the welcome arrived but its answer was lost
    h, discord, network = setup()
    network.lose_next_post = True
    attempt(h, welcome())
    assert h.stores.messages.status(KEY) is MessageStatus.RETRYING
    # When it is retried a minute later (inside the time the nonce is trusted)
    retry(h, T0 + NONCE_TRUSTED_SECONDS - 60)
    # Then Discord's nonce returned the first message: one delivery, no extra request to read the DMs
    assert len(discord.delivered) == 1 and h.stores.messages.status(KEY) is MessageStatus.SENT
    assert reads(discord) == []


def test_retry_after_the_nonce_window_finds_the_message_and_does_not_post_again():
    # Given the welcome arrived but its answer was lost, and the next retry met a 502
    h, discord, network = setup()
    network.lose_next_post = True
    attempt(h, welcome())
    discord.enqueue(discord_error(502, 0, "Bad Gateway"), method="POST")
    retry(h, T0 + 20)
    # When the next retry comes ten minutes after the first attempt (Discord forgot the nonce)
    retry(h, T0 + 600)
    # Then the message was found in the DMs (a spec-valid GET after the first attempt) and not posted again
    assert len(discord.delivered) == 1
    assert h.stores.messages.status(KEY) is MessageStatus.SENT
    [read] = reads(discord)
    assert "after=" in read.path and "limit=100" in read.path
    assert h.queue.work == []


def test_retry_after_the_nonce_window_posts_when_no_earlier_attempt_arrived():
    # Given the welcome's first attempt met a 502 (nothing was posted)
    h, discord, _ = setup()
    channel = h.dispatcher.connectors[Platform.DISCORD].bot._open_dm(USER)  # noqa: SLF001 - the DM is open first
    discord.enqueue(discord_error(502, 0, "Bad Gateway"), method="POST", path=f"/channels/{channel}/messages")
    attempt(h, welcome())
    assert h.stores.messages.status(KEY) is MessageStatus.RETRYING
    # When it is retried after the window
    retry(h, T0 + 600)
    # Then the channel was read, nothing found, and the welcome posted once
    assert len(reads(discord)) == 1
    assert len(discord.delivered) == 1 and h.stores.messages.status(KEY) is MessageStatus.SENT
