"""Every function holding the Discord bot token, at its maximum concurrency, stays within 80 % of the bot's 50/s together."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from infra.cfn_yaml import load_template
from membergate import config

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTIONS = {name: r["Properties"] for name, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
TIMEOUT = TEMPLATE["Globals"]["Function"]["Timeout"]
DISPATCHER_ENV = {name: "x" for name in config.ENV_NAMES.values()} | {
    "STRIPE_MODE": "test", "ACCESS_MAX_ATTEMPTS": "8", "CHECKOUT_RATE_LIMIT": "5", "CHECKOUT_RATE_WINDOW_SECONDS": "60",
    "PUBLIC_BASE_URL": "https://m.example", "TOKEN_SEALING": "parameter", "EMAIL_MESSAGES": "fallback",
}


def share(function: str) -> int:
    """The requests/s each process of ``function`` takes (what bootstrap passes to its connector)."""
    environment = DISPATCHER_ENV | {
        "DISPATCH_MAX_CONCURRENCY": FUNCTIONS["DispatchAccessFunction"]["Environment"]["Variables"]["DISPATCH_MAX_CONCURRENCY"]
    }
    return {
        "DispatchAccessFunction": config.DispatcherSettings.from_env(environment).discord_requests_per_second,
        "ReconcileFunction": config.DISCORD_RECONCILE_PER_SECOND,
        "RunLifecycleFunction": config.DISCORD_ALERTS_PER_SECOND,
        "AdminApiFunction": config.DISCORD_ADMIN_PER_SECOND,
        "JoinFunction": config.DISCORD_JOIN_PER_SECOND,
    }[function]


def _seconds(rate: str) -> int:
    number, unit = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", rate).groups()
    return int(number) * {"minute": 60, "hour": 3600, "day": 86_400}[unit.rstrip("s")]


def max_concurrency(function: str) -> int:
    """The most processes of ``function`` the template lets run at once."""
    props = FUNCTIONS[function]
    if "ReservedConcurrentExecutions" in props:
        return int(props["ReservedConcurrentExecutions"])
    events = list((props.get("Events") or {}).values())
    kinds = {e["Type"] for e in events}
    if kinds == {"SQS"}:
        return sum(int(e["Properties"]["ScalingConfig"]["MaximumConcurrency"]) for e in events)
    if "HttpApi" in kinds:
        # The HTTP API caps no function's concurrency: the budget's stated assumption (config.py).
        return config.DISCORD_API_FUNCTION_CONCURRENCY
    if kinds == {"ScheduleV2"}:
        # A schedule whose interval is longer than a run never overlaps itself.
        timeout = int(props.get("Timeout", TIMEOUT))
        assert all(_seconds(e["Properties"]["ScheduleExpression"]) > timeout for e in events), function
        return 1
    raise AssertionError(f"{function}: the template states no maximum concurrency for it ({sorted(kinds)})")


def holding_the_bot_token() -> list[str]:
    return sorted(name for name, props in FUNCTIONS.items()
                  if "DISCORD_BOT_TOKEN_NAME" in ((props.get("Environment") or {}).get("Variables") or {}))


def test_every_function_holding_the_bot_token_stays_within_80_percent_of_the_global_limit_together():
    # Given every function the template gives the bot token, its per-process share and its maximum concurrency
    functions = holding_the_bot_token()
    assert {"DispatchAccessFunction", "ReconcileFunction", "AdminApiFunction", "JoinFunction"} <= set(functions)
    # When the shares are summed at full concurrency
    total = sum(share(f) * max_concurrency(f) for f in functions)
    # Then they stay within 40 requests/s (80 % of Discord's 50)
    assert total <= config.DISCORD_BUDGET == 40, {f: (share(f), max_concurrency(f)) for f in functions}
    # And the dispatchers still get most of it (they deliver access)
    dispatchers = share("DispatchAccessFunction") * max_concurrency("DispatchAccessFunction")
    assert dispatchers >= total * 0.7


def test_every_discord_connector_in_bootstrap_is_built_with_an_explicit_share():
    # Given bootstrap.py's calls that build the bot's connector
    tree = ast.parse((ROOT / "shared/membergate/bootstrap.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "_discord"]
    # Then each passes its per-second share (a connector at the default 50/s would take the whole limit)
    assert len(calls) >= 5
    assert all(len(c.args) + len(c.keywords) == 4 for c in calls)
