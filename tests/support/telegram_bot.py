"""A Telegram bot double for the use cases (services/telegram.py::TelegramBot): records what it is asked."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RecordingBot:
    username: str = "membergate_test_bot"
    sent: list[dict] = field(default_factory=list)
    approved: list[tuple[str, str]] = field(default_factory=list)
    declined: list[tuple[str, str]] = field(default_factory=list)

    def bot_username(self) -> str:
        return self.username

    def send_message(self, chat_id: int | str, text: str, *, button_text: str | None = None,
                     button_url: str | None = None) -> int:
        self.sent.append({"chat_id": chat_id, "text": text, "button_text": button_text, "button_url": button_url})
        return len(self.sent)

    def approve_join_request(self, chat_id: int | str, user_id: int | str) -> None:
        self.approved.append((str(chat_id), str(user_id)))

    def decline_join_request(self, chat_id: int | str, user_id: int | str) -> None:
        self.declined.append((str(chat_id), str(user_id)))
