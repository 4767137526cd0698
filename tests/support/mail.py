"""Test doubles for the email path: a contact store and a mailer that records what it sends."""

from __future__ import annotations

from membergate.domain.errors import PermanentError


class FakeContacts:
    def __init__(self) -> None:
        self.emails: dict[str, str] = {}

    def set_email(self, member_id: str, email: str) -> None:
        self.emails[member_id] = email

    def email(self, member_id: str) -> str | None:
        return self.emails.get(member_id)


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []  # (to, subject, body)
        self.refuse: set[str] = set()

    def send(self, to: str, subject: str, body: str) -> None:
        if to in self.refuse:
            raise PermanentError("address refused by SES", "ses_rejected")
        self.sent.append((to, subject, body))
