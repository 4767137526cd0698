"""GET /admin/health under a stalling platform: bounded in time, the stalled community named, the others checked."""

from __future__ import annotations

import pytest

from membergate import deadline
from membergate.adapters.discord import BotRateLimits, DiscordCommunityConnector, DiscordConnector, InvalidRequestGuard
from membergate.adapters.telegram import TelegramBotApi, TelegramConnector, TelegramRateLimits
from membergate.domain.errors import RateLimitedError
from membergate.domain.model import Community, OnRevoke, Platform
from membergate.services.health import (
    AWS_BUDGET_SECONDS,
    COMMUNITY_SECONDS,
    HEALTH_DEADLINE_SECONDS,
    HealthTargets,
    SecretNeed,
    deployment_health,
)
from tests.support import discord_spec, telegram_spec
from tests.support.discord_spec import FakeClock, SpecCheckingDiscordTransport, rate_limited
from tests.support.fakes import fake_stores
from tests.support.health import FakeDeploymentProbe
from tests.support.stalling import StallingTransport

pytestmark = pytest.mark.unit

GUILDS = ("810000000000000001", "810000000000000002", "810000000000000003")
CHAT = -1001234567890


def discord_community(n: int) -> Community:
    return Community(id=f"com_d{n}", platform=Platform.DISCORD, name=f"D{n}", external_id=GUILDS[n], role_id=None,
                     on_revoke=OnRevoke.KICK, locale="en", created_at=0)


TELEGRAM = Community(id="com_t", platform=Platform.TELEGRAM, name="T", external_id=str(CHAT), role_id=None,
                     on_revoke=OnRevoke.KICK, locale="en", created_at=0)


class World:
    """Discord and Telegram fakes behind stalling transports, on one fake clock the health check also reads."""

    def __init__(self, discord_stall: tuple[str, ...] = (), telegram_stall: tuple[str, ...] = ()):
        self.clock = FakeClock()
        self.started = self.clock.now
        self.discord = SpecCheckingDiscordTransport()
        for guild in GUILDS:
            self.discord.add_guild(guild, set())
        self.discord_wire = StallingTransport(self.discord, self.clock, discord_stall)
        self.telegram = telegram_spec.FakeTelegramTransport(telegram_spec.load_spec())
        self.telegram_wire = StallingTransport(self.telegram, self.clock, telegram_stall)
        bot = DiscordCommunityConnector(self.discord_wire, lambda: discord_spec.BOT_TOKEN, discord_spec.API_BASE,
                                        sleep=self.clock.sleep, monotonic=self.clock.monotonic,
                                        rate_limits=BotRateLimits(), invalid_requests=InvalidRequestGuard())
        api = TelegramBotApi(self.telegram_wire, lambda: telegram_spec.BOT_TOKEN, telegram_spec.API_BASE,
                             sleep=self.clock.sleep, monotonic=self.clock.monotonic, rate_limits=TelegramRateLimits())
        self.connectors = {Platform.DISCORD: DiscordConnector(bot), Platform.TELEGRAM: TelegramConnector(api)}

    def elapsed(self) -> float:
        return self.clock.now - self.started

    def check(self, *communities: Community):
        stores = fake_stores()
        for c in communities:
            stores.catalog.add_community(c)
        return deployment_health(stores, self.connectors, FakeDeploymentProbe(), HealthTargets(), elapsed=self.elapsed)


def by_community(report) -> dict[str, list[tuple[bool, str | None]]]:
    found: dict[str, list[tuple[bool, str | None]]] = {}
    for c in report.checks:
        found.setdefault(c.check.split(" ")[2], []).append((c.ok, c.fix))
    return found


def test_health_stalled_platform_is_bounded_named_and_the_others_still_checked():
    # Given Discord stalling on every request (each would wait the adapter's full 10 s), and a healthy Telegram chat
    world = World(discord_stall=("discord.com",))
    # When the deployment is checked with two Discord communities and the Telegram one
    report = world.check(discord_community(0), discord_community(1), TELEGRAM)
    # Then the whole check took one community's share, not 2 x 4 x 10 s
    assert world.elapsed() <= COMMUNITY_SECONDS + 1e-9
    # ... every Discord request waited at most the time left, not the adapter's 10 s
    assert [timeout for _, _, timeout in world.discord_wire.sent] == [COMMUNITY_SECONDS]
    # ... the stalled community says so with the command to check it later, the next Discord one was not asked
    checks = by_community(report)
    assert checks["com_d0"] == [(False, f"Discord did not answer within {COMMUNITY_SECONDS:.1f} s; "
                                        "run POST /admin/communities/com_d0/check later")]
    assert checks["com_d1"] == [(False, "not asked: Discord did not answer for community com_d0 just before; "
                                        "run POST /admin/communities/com_d1/check later")]
    # ... and Telegram was still checked, and passed
    assert checks["com_t"] and all(ok for ok, _ in checks["com_t"])
    assert not report.ok


def test_health_stall_midway_through_a_preflight_gets_only_the_time_left():
    # Given Discord answering the application and the guild but stalling on the guild's roles
    world = World(discord_stall=(f"/guilds/{GUILDS[0]}/roles",))
    world.discord.enqueue(rate_limited(0.5, bucket="app"), method="GET", path="/applications/@me")
    # When checked
    report = world.check(discord_community(0))
    # Then the short rate limit was slept inline, and the stalled call got what was left of the share
    assert world.clock.slept == [0.5]
    sent = world.discord_wire.sent
    assert [round(t, 6) for _, _, t in sent] == [COMMUNITY_SECONDS, COMMUNITY_SECONDS - 0.5,
                                                 COMMUNITY_SECONDS - 0.5, COMMUNITY_SECONDS - 0.5]
    assert world.elapsed() == pytest.approx(COMMUNITY_SECONDS)
    assert "did not answer within" in report.checks[0].fix


def test_health_rate_limit_longer_than_the_time_left_is_a_failed_check_naming_the_wait_not_a_sleep():
    # Given Discord answering the first preflight call with a 429 asking for 30 s
    world = World()
    world.discord.enqueue(rate_limited(30.0, bucket="app"), method="GET", path="/applications/@me")
    # When checked
    report = world.check(discord_community(0), TELEGRAM)
    # Then nothing slept, the community fails naming the wait, and Telegram is still checked
    assert world.clock.slept == [] and world.elapsed() == 0
    checks = by_community(report)
    assert checks["com_d0"] == [(False, "Discord asks to wait 30.0 s (rate limit), longer than this check has left; "
                                        "run POST /admin/communities/com_d0/check later")]
    assert all(ok for ok, _ in checks["com_t"])


def test_health_rate_limit_inline_wait_longer_than_the_time_left_is_not_slept():
    # Given Telegram slow to answer getChat (3 s of the 4 s share), then a 429 asking for 1.5 s (short enough
    # for an inline retry outside a health check) on getChatMember
    world = World()
    world.telegram_wire.slow = {"/getChat": 3.0}
    world.telegram.enqueue(telegram_spec.error(429, "Too Many Requests: retry after 2", retry_after=1.5),
                           method="getChatMember")
    # When checked
    report = world.check(TELEGRAM)
    # Then the wait was not slept, and the check says how long Telegram asked to wait
    assert world.clock.slept == [] and world.elapsed() == 3.0
    assert report.checks[0].fix == ("Telegram asks to wait 1.5 s (rate limit), longer than this check has left; "
                                    "run POST /admin/communities/com_t/check later")


def test_health_many_stalled_communities_finish_within_the_hard_deadline():
    # Given every platform stalling and communities on both
    world = World(discord_stall=("discord.com",), telegram_stall=("api.telegram.org",))
    # When checked
    report = world.check(discord_community(0), discord_community(1), discord_community(2), TELEGRAM)
    # Then the request is done within the deadline and every community has a failed check
    assert world.elapsed() <= HEALTH_DEADLINE_SECONDS
    assert all(t <= HEALTH_DEADLINE_SECONDS - start + world.started for start, _, t in
               world.discord_wire.sent + world.telegram_wire.sent)
    assert set(by_community(report)) == {"com_d0", "com_d1", "com_d2", "com_t"}
    assert not any(c.ok for c in report.checks)


def test_health_slow_aws_reads_stop_being_started_and_the_unread_ones_fail():
    # Given SSM taking 3 s per read and three secrets to read
    clock = FakeClock()
    started = clock.now

    class SlowProbe(FakeDeploymentProbe):
        def secret_state(self, name: str) -> str:
            clock.now += 3.0
            return super().secret_state(name)

    probe = SlowProbe(secrets={"/a": "x", "/b": "x", "/c": "x"})
    targets = HealthTargets(secrets=tuple(SecretNeed(n, "a value", "P") for n in ("/a", "/b", "/c")))
    # When checked
    report = deployment_health(fake_stores(), {}, probe, targets, elapsed=lambda: clock.now - started)
    # Then reads stop once the AWS budget is spent; the unread one fails saying to run the doctor again
    assert probe.asked == ["/a", "/b"] and clock.now - started == 6.0 > AWS_BUDGET_SECONDS
    assert [(c.check, c.ok) for c in report.checks] == [("secret /a is set", True), ("secret /b is set", True),
                                                        ("secret /c is set", False)]
    assert report.checks[-1].fix == "not read: AWS answered slowly (6.0 s for the parts above); run `membergate doctor` again"


def test_discord_known_rate_limit_wait_past_the_deadline_is_refused_with_the_wait_not_slept():
    # Given Discord's global window closed for 1.5 s (an inline wait the bot takes outside a deadline)
    clock = FakeClock()
    limits = BotRateLimits()
    bot = DiscordCommunityConnector(SpecCheckingDiscordTransport(), lambda: discord_spec.BOT_TOKEN, discord_spec.API_BASE,
                                    sleep=clock.sleep, monotonic=clock.monotonic, rate_limits=limits,
                                    invalid_requests=InvalidRequestGuard())
    limits.block_global(clock.now + 1.5)
    # When the preflight's first call is made with 1 s left
    with deadline.within(lambda: 1.0), pytest.raises(RateLimitedError) as refused:
        bot.guild_facts(GUILDS[0])
    # Then nothing slept and the refusal carries the wait; with no deadline the same wait is slept
    assert clock.slept == [] and refused.value.retry_after == pytest.approx(1.5)
    bot.guild_facts(GUILDS[0])
    assert clock.slept == [pytest.approx(1.5)]


def test_deadline_request_timeout_is_the_default_outside_and_the_time_left_inside():
    # Given no deadline, then one with 3 s left, then one used up
    # Then requests wait their own timeout, then the time left, then are not sent at all
    assert deadline.request_timeout(10.0, "x") == 10.0 and deadline.may_wait(60.0)
    with deadline.within(lambda: 3.0):
        assert deadline.request_timeout(10.0, "x") == 3.0
        assert deadline.may_wait(2.0) and not deadline.may_wait(3.0)
    with deadline.within(lambda: 0.0), pytest.raises(deadline.DeadlineExceededError):
        deadline.request_timeout(10.0, "x")
    assert deadline.time_left() is None
