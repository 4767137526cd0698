"""Creator alerts through the real handlers under moto: recorded as billing happens, one digest an hour
to a private Discord channel (spec-checked), a Telegram chat (spec-checked) and an inbox (SES in moto)."""

from __future__ import annotations

import boto3
import pytest

from infra.local.moto_server import sent_mail
from membergate import bootstrap
from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, pay, setup_catalog
from tests.support.aws import put_secret
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline
from tests.support.telegram_spec import API_BASE, BOT_TOKEN, FakeTelegramTransport, load_spec

pytestmark = pytest.mark.integration

HOUR = 3_600
ALERT_CHANNEL = "700000000000000077"
ALERT_CHAT = "-1001234500077"
SENDER, CREATOR = "members@membergate.example", "creator@membergate.example"
ENV = {
    "ALERT_DISCORD_CHANNEL_ID": ALERT_CHANNEL,
    "ALERT_TELEGRAM_CHAT_ID": ALERT_CHAT,
    "ALERT_EMAIL": CREATOR,
    "EMAIL_FROM_ADDRESS": SENDER,
    "TELEGRAM_API_BASE": API_BASE,
    "TELEGRAM_BOT_TOKEN_NAME": "/membergate/telegram-bot-token",
}


@pytest.fixture
def telegram():
    return FakeTelegramTransport(load_spec())


@pytest.fixture
def pipeline(telegram):
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    discord.text_channels[ALERT_CHANNEL] = []
    with Pipeline(discord, env=ENV) as p:
        put_secret("/membergate/telegram-bot-token", BOT_TOKEN)
        boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
        with bootstrap.overridden(telegram_transport=telegram):
            yield p


def digests(p: Pipeline, telegram: FakeTelegramTransport) -> tuple[list[str], list[str], list[dict]]:
    chat = [c.params["text"] for c in telegram.calls_to("sendMessage") if str(c.params["chat_id"]) == ALERT_CHAT]
    mail = [m for m in sent_mail() if CREATOR in m["to"]]
    return p.discord.text_channels[ALERT_CHANNEL], chat, mail


def test_new_member_reaches_every_channel_once_in_the_hourly_digest(pipeline, telegram):
    p = pipeline
    # Given a member who paid
    plan_id = setup_catalog(p)
    pay(p, bind_discord(p, plan_id), plan_id)
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    # When the lifecycle schedule runs, then runs again within the hour
    p.advance(60)
    p.sweep()
    p.sweep()
    # Then the Discord channel, the Telegram chat and the inbox each have one digest naming the new
    # member's plan, with the dashboard's link (requests checked against Discord's and Telegram's specs)
    discord, chat, mail = digests(p, telegram)
    assert len(discord) == len(chat) == len(mail) == 1
    for text in (discord[0], chat[0], mail[0]["body"]):
        assert "New members: 1" in text and plan_id in text
        assert "https://members.example.com/admin/dashboard" in text
    assert mail[0]["subject"] == "Membergate: 1 thing(s) happened in your community"
    assert mail[0]["from"] == SENDER
    posts = [r for r in p.discord.requests if r.path.endswith(f"/channels/{ALERT_CHANNEL}/messages")]
    assert len(posts) == 1 and posts[0].json["enforce_nonce"] is True


def test_quiet_hours_send_nothing_and_a_failed_payment_comes_in_the_next_hours_digest(pipeline, telegram):
    p = pipeline
    plan_id = setup_catalog(p)
    pay(p, bind_discord(p, plan_id), plan_id)
    sub_id = next(e["data"]["object"]["id"] for e in p.delivered if e["type"] == "customer.subscription.created")
    p.advance(60)
    p.sweep()
    # Given an hour where nothing happened
    p.advance(HOUR)
    p.sweep()
    assert [len(x) for x in digests(p, telegram)] == [1, 1, 1]
    # When a renewal fails, and the next hour's schedule runs
    p.advance(30 * 86_400)
    p.sandbox.fail_renewal(sub_id)
    p.pump()
    p.advance(60)
    p.sweep()
    # Then one more digest, with the failed payment and nothing of the first hour again
    discord, chat, mail = digests(p, telegram)
    assert len(discord) == len(chat) == len(mail) == 2
    assert "Failed payments: 1" in discord[1] and "New members" not in discord[1]
    assert "Failed payments: 1" in mail[1]["body"]


def test_whatsapp_manual_removal_opens_one_task_and_one_removal_task_alert_without_the_phone():
    from membergate.adapters.alert_channels import AlertingRemovalTasks
    from membergate.domain.alerts import AlertKind
    from membergate.services.alerts import AlertRecorder
    from tests.integration.test_whatsapp_modes import PHONE, Setup
    from tests.support.alerts import MemoryAlertStore

    # Given a manual WhatsApp group whose task store tells the creator, and a member who paid
    s = Setup("manual")
    alerts = MemoryAlertStore()
    s.connector._store = AlertingRemovalTasks(s.store, AlertRecorder(alerts), lambda: s.h.now)
    s.pay()
    # When access ends, and the removal is tried again (a retried work item)
    s.cancel()
    s.connector.remove_member(s.community, PHONE)
    # Then one task, one alert naming the member and the community, never the phone number
    tasks = s.store.tasks("com_wa")
    found = [a for a in alerts.between(0, s.h.now + 1) if a.kind is AlertKind.REMOVAL_TASK]
    assert len(tasks) == 1 and [(a.id, a.member_id, a.subject) for a in found] == [(tasks[0].id, "mbr_1", "com_wa")]
    assert all(PHONE not in f"{a.subject} {a.detail}" for a in alerts.between(0, s.h.now + 1))
