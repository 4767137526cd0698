"""The dispatcher's share of Discord's global rate limit matches the concurrency the template allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cfn_yaml import load_template
from membergate.config import DISCORD_GLOBAL_REQUESTS_PER_SECOND, ENV_NAMES, DispatcherSettings

pytestmark = pytest.mark.contract

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")


def test_dispatch_concurrency_setting_equals_the_template_maximum_concurrency():
    # Given the dispatcher function in the template
    function = TEMPLATE["Resources"]["DispatchAccessFunction"]["Properties"]
    maximum = function["Events"]["AccessWork"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    # Then the share each process takes is computed from the same number
    assert int(function["Environment"]["Variables"]["DISPATCH_MAX_CONCURRENCY"]) == int(maximum)


@pytest.mark.parametrize("concurrency, per_process", [(1, 28), (2, 14), (5, 5), (100, 1)])
def test_dispatcher_share_keeps_all_processes_under_the_global_limit_with_headroom(concurrency, per_process):
    # Given N concurrent dispatchers
    environment = {name: "x" for name in ENV_NAMES.values()} | {"STRIPE_MODE": "test", "ACCESS_MAX_ATTEMPTS": "8",
                                                               "CHECKOUT_RATE_LIMIT": "5",
                                                               "CHECKOUT_RATE_WINDOW_SECONDS": "60",
                                                               "PUBLIC_BASE_URL": "https://m.example",
                                                               "TOKEN_SEALING": "parameter",
                                                               "EMAIL_MESSAGES": "fallback"}
    environment["DISPATCH_MAX_CONCURRENCY"] = str(concurrency)
    settings = DispatcherSettings.from_env(environment)
    # Then each keeps to its share, and all together stay at most 80 % of Discord's 50/s (or 1/s each)
    assert settings.discord_requests_per_second == per_process
    assert per_process * concurrency <= max(DISCORD_GLOBAL_REQUESTS_PER_SECOND * 0.8, concurrency)


def test_two_dispatchers_at_their_share_stay_under_discords_global_limit():
    # Given two dispatcher processes (the template's MaximumConcurrency), each with its own limiter
    # at its share, both sending to one Discord as fast as they are allowed
    from membergate.adapters.discord import BotRateLimits, DiscordCommunityConnector, InvalidRequestGuard
    from tests.support.discord_spec import API_BASE, BOT_TOKEN, FakeClock, SpecCheckingDiscordTransport

    clock = FakeClock()
    discord = SpecCheckingDiscordTransport()
    discord.add_guild("100000000000000001", {"200000000000000001"})
    discord.add_user("300000000000000001")
    sent_at: list[float] = []

    class Timed:
        def request(self, *args, **kwargs):
            sent_at.append(clock.now)
            return discord.request(*args, **kwargs)

    share = 14  # DispatcherSettings.discord_requests_per_second with concurrency 2
    processes = [
        DiscordCommunityConnector(Timed(), lambda: BOT_TOKEN, API_BASE, sleep=clock.sleep, monotonic=clock.monotonic,
                                  rate_limits=BotRateLimits(per_second=share), invalid_requests=InvalidRequestGuard())
        for _ in range(2)
    ]
    # When they send 400 requests between them
    for n in range(400):
        processes[n % 2].get_member("100000000000000001", "300000000000000001")
    # Then no one-second window holds more than 2 x 14 = 28 requests (Discord allows 50)
    busiest = max(sum(1 for t in sent_at if start <= t < start + 1.0) for start in sent_at)
    assert busiest <= 2 * share < DISCORD_GLOBAL_REQUESTS_PER_SECOND
