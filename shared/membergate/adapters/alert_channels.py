"""Where creator alert digests go (a private Discord channel, a Telegram chat, an inbox), and a task store that alerts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..domain.alerts import AlertKind
from ..ports import Mailer
from ..services.alerts import AlertRecorder, record_alert

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
        self.bot.post_in_channel(self.channel_id, text, nonce=message_nonce(f"alerts:{digest_id}"))


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


class AlertingRemovalTasks:
    """The WhatsApp task store, telling the creator of each removal they must do by hand (one
    alert per task: a retried removal returns the open task, already reported)."""

    def __init__(self, store: Any, alerts: AlertRecorder, now: Callable[[], int]):
        self._store = store
        self._alerts = alerts
        self._now = now

    def add_removal(self, community_id: str, phone: str, member_id: str | None, due: int) -> Any:
        already = {t.id for t in self._store.tasks(community_id) if t.phone == phone}
        task = self._store.add_removal(community_id, phone, member_id, due)
        if task.id in already:
            return task
        # The phone number stays out of the alert (personal data): the task list has it.
        record_alert(self._alerts, AlertKind.REMOVAL_TASK, task.id, self._now(), member_id=member_id or "",
                     subject=community_id, detail=f"GET /admin/communities/{community_id}/tasks")
        return task

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
