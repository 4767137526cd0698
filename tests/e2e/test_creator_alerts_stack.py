"""Creator alerts through a running local stack deployed with all three alert channels set."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from infra.local.client import Client
from infra.local.demo import free_port
from tests.e2e.conftest import ADMIN_TOKEN, REPO, WEBHOOK_SECRET
from tests.e2e.test_local_stack import buy_through_the_stack

pytestmark = pytest.mark.e2e

ALERT_CHANNEL, ALERT_CHAT, CREATOR = "990000000000000777", -1002000000777, "creator@membergate.local"


@pytest.fixture(scope="module")
def alert_stack(tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("alert-stack") / "stack.log"
    overrides = (f"CheckoutRateLimit=1000 AlertDiscordChannelId={ALERT_CHANNEL} AlertTelegramChatId={ALERT_CHAT} "
                 f"AlertEmail={CREATOR} AlertLocale=fr")
    env = {**os.environ, "PORT": str(port), "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "ADMIN_TOKEN": ADMIN_TOKEN,
           "MEMBERGATE_QUIET": "1", "MEMBERGATE_PARAMETER_OVERRIDES": overrides}
    for leaked in ("AWS_ENDPOINT_URL", "STRIPE_API_KEY", "DISCORD_BOT_TOKEN", "STRIPE_API_BASE", "DISCORD_API_BASE",
                   "TELEGRAM_API_BASE", "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "WHATSAPP_API_BASE",
                   "EMAIL_FROM_ADDRESS"):
        env.pop(leaked, None)
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "infra.local.stack"], cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    client = Client(f"http://127.0.0.1:{port}", ADMIN_TOKEN)
    try:
        client.wait_healthy(timeout=120)
        yield client
    except TimeoutError:
        pytest.fail(f"the local stack did not start; its log:\n{log_path.read_text()[-3000:]}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def seen(c: Client) -> tuple[list[str], list[str], list[dict]]:
    discord = [m["content"] for m in c.get(f"/_local/discord/channels/{ALERT_CHANNEL}/messages").json()["messages"]]
    telegram = [m["text"] for m in c.get("/_local/telegram/messages").json()["messages"]
                if m["chat"]["id"] == ALERT_CHAT]
    mail = [m for m in c.get("/_local/mail").json()["mail"] if CREATOR in m["to"]]
    return discord, telegram, mail


def wait_for_digests(c: Client, count: int, timeout: float = 30) -> tuple[list[str], list[str], list[dict]]:
    deadline = time.monotonic() + timeout
    while True:
        found = seen(c)
        if all(len(x) >= count for x in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_a_purchase_reaches_the_creator_once_an_hour_on_discord_telegram_and_email_in_french(alert_stack):
    c = alert_stack
    # Given the creator's Telegram chat with the bot (the Discord channel exists from the deployment)
    assert c.post("/_local/telegram/_control/chats", json_body={"id": ALERT_CHAT, "title": "Alertes"}).status == 200
    # When a member buys, and business time moves an hour on (the schedules run)
    buy_through_the_stack(c, guild="990000000000000701", role="990000000000000702", username="alerted",
                          kind="subscription", price={"price_id": "price_alerts_e2e", "unit_amount": 700,
                                                      "currency": "eur", "interval": "month",
                                                      "product_name": "Alertes"})
    assert c.post("/_local/clock", json_body={"advance_seconds": 3_600}).status == 200
    # Then each channel has one digest, in French, naming the new member and the dashboard
    discord, telegram, mail = wait_for_digests(c, 1)
    assert len(discord) == len(telegram) == len(mail) == 1, (discord, telegram, mail)
    for text in (discord[0], telegram[0], mail[0]["body"]):
        assert "Nouveaux membres : 1" in text and f"{c.base_url}/admin/dashboard" in text
    # And a quiet hour after it sends nothing more
    assert c.post("/_local/clock", json_body={"advance_seconds": 3_600}).status == 200
    time.sleep(1.5)
    assert [len(x) for x in seen(c)] == [1, 1, 1]
    # And the stand-in's alert channel refuses what is not a channel id, as Discord would
    assert c.post("/_local/discord/channels", json_body={"id": "not\r\na channel"}).status == 400
