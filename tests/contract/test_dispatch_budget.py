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


@pytest.mark.parametrize("concurrency, per_process", [(1, 40), (2, 20), (5, 8), (100, 1)])
def test_dispatcher_share_keeps_all_processes_under_the_global_limit_with_headroom(concurrency, per_process):
    # Given N concurrent dispatchers
    environment = {name: "x" for name in ENV_NAMES.values()} | {"STRIPE_MODE": "test", "ACCESS_MAX_ATTEMPTS": "8",
                                                               "CHECKOUT_RATE_LIMIT": "5",
                                                               "CHECKOUT_RATE_WINDOW_SECONDS": "60",
                                                               "PUBLIC_BASE_URL": "https://m.example",
                                                               "TOKEN_SEALING": "parameter"}
    environment["DISPATCH_MAX_CONCURRENCY"] = str(concurrency)
    settings = DispatcherSettings.from_env(environment)
    # Then each keeps to its share, and all together stay at most 80 % of Discord's 50/s (or 1/s each)
    assert settings.discord_requests_per_second == per_process
    assert per_process * concurrency <= max(DISCORD_GLOBAL_REQUESTS_PER_SECOND * 0.8, concurrency)
