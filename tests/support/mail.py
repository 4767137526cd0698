"""Test doubles for member messages beyond the platform: contacts, a recording mailer, cards on file."""

from __future__ import annotations

from membergate.domain.errors import PermanentError
from membergate.domain.lifecycle import CardOnFile, EmailOnFile, merge_email


class FakeContacts:
    def __init__(self) -> None:
        self.emails: dict[str, str] = {}
        self.as_of: dict[str, int] = {}

    def set_email(self, member_id: str, email: str) -> None:
        self.emails[member_id] = email
        self.as_of.pop(member_id, None)

    def email(self, member_id: str) -> str | None:
        return self.emails.get(member_id)

    def contact(self, member_id: str) -> EmailOnFile | None:
        email = self.emails.get(member_id)
        return EmailOnFile(email, self.as_of.get(member_id, 0)) if email is not None else None

    def keep_email(self, member_id: str, seen: EmailOnFile) -> bool:
        """As DynamoDB's conditional write: stored unless what is there is newer (merge_email)."""
        current = self.contact(member_id)
        if current is not None and merge_email(current, seen) != seen:
            return False
        self.emails[member_id], self.as_of[member_id] = seen.email, seen.as_of
        return True


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []  # (to, subject, body)
        self.refuse: set[str] = set()

    def send(self, to: str, subject: str, body: str) -> None:
        if to in self.refuse:
            raise PermanentError("address refused by SES", "ses_rejected")
        self.sent.append((to, subject, body))


class FakeCards:
    def __init__(self) -> None:
        self.cards: dict[str, CardOnFile] = {}

    def card(self, customer_id: str) -> CardOnFile | None:
        return self.cards.get(customer_id)

    def save_card(self, customer_id: str, card: CardOnFile) -> None:
        self.cards[customer_id] = card

    def save_if_newer(self, customer_id: str, card: CardOnFile) -> bool:
        """As DynamoDB's conditional write: nothing kept, or the kept card older and not erased."""
        kept = self.cards.get(customer_id)
        if kept is not None and (kept.erased or kept.as_of >= card.as_of):
            return False
        self.cards[customer_id] = card
        return True


class FakeErasures:
    """Only what the billing processor asks of the privacy store: is this member erased (or being)?"""

    def __init__(self) -> None:
        self.erased: set[str] = set()

    def erasure(self, member_id: str):
        return object() if member_id in self.erased else None
