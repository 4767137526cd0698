"""GET /admin/health through the admin handler under moto: secrets, schedules, dead letters, bots."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, REGION, aws_stack, put_secret
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.handlers import load_handler
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
SCHEDULES = "mg-lifecycle,mg-reconcile"
GUILD, ROLE, PLAN_ROLE = "710000000000000001", "710000000000000002", "710000000000000003"


@pytest.fixture(autouse=True)
def terms_url(monkeypatch):
    """A complete deployment links its terms (TermsUrl): Checkout then has the member accept them."""
    monkeypatch.setenv("TERMS_URL", "https://creator.example/terms")


def call(method, path, headers=AUTH):
    reply = load_handler("admin_api").lambda_handler(http_event(method, path, headers=headers), LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def create_schedules(state_of: dict[str, str]) -> None:
    scheduler = boto3.client("scheduler", region_name=REGION)
    for name, state in state_of.items():
        scheduler.create_schedule(
            Name=name, ScheduleExpression="rate(5 minutes)", FlexibleTimeWindow={"Mode": "OFF"}, State=state,
            Target={"Arn": f"arn:aws:lambda:{REGION}:123456789012:function:{name}",
                    "RoleArn": "arn:aws:iam::123456789012:role/scheduler"},
        )


def failures(body):
    return {c["check"]: c["fix"] for c in body["checks"] if not c["ok"]}


def test_health_all_green_on_a_complete_deployment():
    with aws_stack(HEALTH_SCHEDULES=SCHEDULES):
        # Given every secret set, both schedules enabled and no dead letter
        create_schedules({"mg-lifecycle": "ENABLED", "mg-reconcile": "ENABLED"})
        # When the creator asks for the deployment's health
        status, body = call("GET", "/admin/health")
        # Then every check passes, one per secret the deployment reads, schedule and dead-letter queue
        assert status == 200 and body["ok"] is True, body
        names = [c["check"] for c in body["checks"]]
        assert "secret /membergate/stripe-api-key is set" in names
        assert "secret /membergate/admin-token is set" in names
        assert {"schedule mg-lifecycle is enabled", "schedule mg-reconcile is enabled",
                "dead-letter queue mg-dead-letters is empty"} <= set(names)
        # And no optional platform without communities is asked for its secrets
        assert not any("telegram" in n or "whatsapp" in n for n in names)


def test_health_without_terms_url_fails_with_the_fix_that_links_the_terms_of_sale(monkeypatch):
    # Given a deployment whose TermsUrl is empty (no terms of sale linked; the join page's own box
    # collects the waiver)
    monkeypatch.setenv("TERMS_URL", "")
    with aws_stack(HEALTH_SCHEDULES=SCHEDULES):
        create_schedules({"mg-lifecycle": "ENABLED", "mg-reconcile": "ENABLED"})
        # When the creator asks for the deployment's health
        status, body = call("GET", "/admin/health")
        # Then exactly that fails, saying what to set and why
        failed = failures(body)
        assert status == 200 and body["ok"] is False
        assert list(failed) == ["the join page and Checkout link your terms of sale (TermsUrl is set)"]
        fix = failed["the join page and Checkout link your terms of sale (TermsUrl is set)"]
        assert fix.startswith("set TermsUrl") and "terms before they buy" in fix and "Stripe Dashboard" in fix
        assert "join page's own required box" in fix


def test_health_missing_and_blank_secret_fail_naming_the_parameter_never_a_value():
    with aws_stack():
        # Given the webhook secret deleted and the Stripe key blank
        boto3.client("ssm", region_name=REGION).delete_parameter(Name="/membergate/stripe-webhook-secrets")
        put_secret("/membergate/stripe-api-key", "   ")
        # When checking
        status, body = call("GET", "/admin/health")
        # Then both fail, each naming its parameter, the stack parameter and the command that sets it
        assert status == 200 and body["ok"] is False
        failed = failures(body)
        missing = failed["secret /membergate/stripe-webhook-secrets is set"]
        assert "does not exist" in missing and "StripeWebhookSecretsSecretName" in missing
        assert "aws ssm put-parameter --type SecureString --overwrite --name /membergate/stripe-webhook-secrets" in missing
        assert "is empty" in failed["secret /membergate/stripe-api-key is set"]
        # And no secret value is in the answer
        raw = json.dumps(body)
        for value in ("admin-test-token", "client-secret-test", "bot-token-test", "k1:"):
            assert value not in raw


def test_health_a_dead_letter_and_a_disabled_schedule_fail_with_their_fixes():
    with aws_stack(HEALTH_SCHEDULES=SCHEDULES) as stack:
        # Given one message in the dead-letter queue, the reconcile schedule disabled, the lifecycle one deleted
        stack.sqs().send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody="{}")
        create_schedules({"mg-reconcile": "DISABLED"})
        # When checking
        status, body = call("GET", "/admin/health")
        # Then each fails with what to do
        failed = failures(body)
        assert status == 200 and body["ok"] is False
        assert set(failed) == {"dead-letter queue mg-dead-letters is empty", "schedule mg-reconcile is enabled",
                               "schedule mg-lifecycle is enabled"}, failed
        assert failed["dead-letter queue mg-dead-letters is empty"].startswith("1 message(s) failed for good")
        assert "Enable" in failed["schedule mg-reconcile is enabled"]
        assert "does not exist" in failed["schedule mg-lifecycle is enabled"]


def test_health_optional_platform_secret_is_needed_once_a_community_uses_it():
    with aws_stack(TELEGRAM_BOT_TOKEN_NAME="/membergate/telegram-bot-token",
                   TELEGRAM_WEBHOOK_SECRET_NAME="/membergate/telegram-webhook-secret"):
        # Given no Telegram community, Telegram's secrets unset is fine
        assert call("GET", "/admin/health")[1]["ok"] is True
        # When a Telegram community is registered
        reply = load_handler("admin_api").lambda_handler(
            http_event("POST", "/admin/communities", body={"platform": "telegram", "name": "TG", "chat_id": "-1001234567890"},
                       headers=AUTH), LambdaContext())
        assert reply["statusCode"] == 201, reply
        # Then both Telegram secrets are asked for, and the bot check (which needs the token) fails without a 5xx
        status, body = call("GET", "/admin/health")
        failed = failures(body)
        assert status == 200
        assert {"secret /membergate/telegram-bot-token is set", "secret /membergate/telegram-webhook-secret is set"} <= set(failed)
        bot = [fix for name, fix in failed.items() if name.startswith("telegram community") and "the bot answers" in name]
        assert len(bot) == 1 and "secret checks" in bot[0]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_health_other_methods_are_405_in_the_envelope(method):
    with aws_stack():
        status, body = call(method, "/admin/health")
        assert status == 405 and set(body["error"]) >= {"code", "message"}


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": "Bearer é\u2028"},
                                     {"authorization": "Bearer " + "x" * 10_000}])
def test_health_without_the_token_is_401_and_reads_nothing(headers):
    with aws_stack():
        status, body = call("GET", "/admin/health", headers=headers)
        assert status == 401 and body["error"]["code"]


def test_health_ignores_query_junk():
    with aws_stack():
        status, body = call("GET", "/admin/health?x=%FF%FE&y=%0D%0A&" + "z=1&" * 200)
        assert status == 200 and body["ok"] is True


def test_health_reports_a_plan_role_above_the_bot_with_the_move():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE, PLAN_ROLE})
    with Pipeline(discord) as p:
        # Given a Discord community and a plan granting a second role, that role moved above the bot's
        community = p.admin("POST", "/admin/communities", body={"platform": "discord", "name": "Club", "guild_id": GUILD,
                                                                "role_id": ROLE})["body"]
        plan = p.admin("POST", "/admin/plans", body={"name": "VIP", "stripe_price_ids": ["price_vip"], "grants": [
            {"community_id": community["id"], "role_id": PLAN_ROLE}]})
        assert plan["status"] == 201, plan
        assert p.admin("GET", "/admin/health")["body"]["ok"] is True
        p.discord.guilds[GUILD].roles_above_bot.add(PLAN_ROLE)
        # When checking the deployment
        body = p.admin("GET", "/admin/health")["body"]
        # Then exactly that role's order fails, with the move to make
        failed = failures(body)
        assert list(failed) == [f"discord community {community['id']} (Club): role_below_bot:{PLAN_ROLE}"], failed
        assert f"move the Membergate role above 'Role {PLAN_ROLE[-4:]}'" in next(iter(failed.values()))
