"""Where creator alert digests go: a private Discord channel, a Telegram chat, an email inbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ports import Mailer

if TYPE_CHECKING:
    from .discord import DiscordCommunityConnector
    from .telegram import TelegramBotApi


class DiscordAlertChannel:
    name = "discord"

    def __init__(self, bot: DiscordCommunityConnector, channel_id: str):
        self.bot = bot
        self.channel_id = channel_id

    def send(self, subject: str, text: str, digest_id: str) -> None:
        from .discord import message_nonce

        # The digest id as nonce: a run retried after a lost answer posts nothing more.
        self.bot.post_to_channel(self.channel_id, text, nonce=message_nonce(f"alerts:{digest_id}"))


class TelegramAlertChannel:
    name = "telegram"

    def __init__(self, api: TelegramBotApi, chat_id: str):
        self.api = api
        self.chat_id = chat_id

    def send(self, subject: str, text: str, digest_id: str) -> None:
        self.api.send_message(self.chat_id, text)


class EmailAlertChannel:
    name = "email"

    def __init__(self, mailer: Mailer, address: str):
        self.mailer = mailer
        self.address = address

    def send(self, subject: str, text: str, digest_id: str) -> None:
        self.mailer.send(self.address, subject, text)
