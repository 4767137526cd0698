"""make dev honours every outbound base URL from the environment over the template and stand-ins."""

from __future__ import annotations

import pytest

from infra.local.stack import Settings, function_env_overrides

pytestmark = pytest.mark.unit
BASE = "http://127.0.0.1:3000"


def settings(monkeypatch, **environ: str) -> Settings:
    for name in ("STRIPE_API_BASE", "DISCORD_API_BASE", "DISCORD_OAUTH_BASE", "DISCORD_BOT_TOKEN", "STRIPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def test_local_stack_env_oauth_base_from_environment_wins_over_stand_in(monkeypatch):
    # Given only DISCORD_OAUTH_BASE in the environment (it used to be overwritten by the template's)
    s = settings(monkeypatch, DISCORD_OAUTH_BASE="http://oauth.example/oauth2")
    # When the functions' environment is built
    env = function_env_overrides(s, BASE)
    # Then the OAuth base is the environment's and the rest stays on the local stand-ins
    assert env["DISCORD_OAUTH_BASE"] == "http://oauth.example/oauth2"
    assert env["DISCORD_API_BASE"] == f"{BASE}/_local/discord/api/v10"
    assert env["STRIPE_API_BASE"] == f"{BASE}/_local/stripe"


def test_local_stack_env_every_base_from_environment_is_honoured_even_with_real_credentials(monkeypatch):
    s = settings(monkeypatch, DISCORD_BOT_TOKEN="real", STRIPE_API_KEY="sk_test_real",
                 STRIPE_API_BASE="http://stripe-mock:12111", DISCORD_API_BASE="http://d.example/api/v10",
                 DISCORD_OAUTH_BASE="http://d.example/oauth2", TELEGRAM_API_BASE="http://t.example")
    env = function_env_overrides(s, BASE)
    assert {k: env[k] for k in ("STRIPE_API_BASE", "DISCORD_API_BASE", "DISCORD_OAUTH_BASE", "TELEGRAM_API_BASE")} == {
        "STRIPE_API_BASE": "http://stripe-mock:12111", "DISCORD_API_BASE": "http://d.example/api/v10",
        "DISCORD_OAUTH_BASE": "http://d.example/oauth2", "TELEGRAM_API_BASE": "http://t.example"}


def test_local_stack_env_real_credentials_without_bases_leave_the_template_values(monkeypatch):
    s = settings(monkeypatch, DISCORD_BOT_TOKEN="real", STRIPE_API_KEY="sk_test_real")
    env = function_env_overrides(s, BASE)
    assert env["STRIPE_API_BASE"] == "https://api.stripe.com"
    assert "DISCORD_API_BASE" not in env and "DISCORD_OAUTH_BASE" not in env  # the template's discord.com stay
