"""A Telegram-like place behind the CommunityConnector port: personal invites, join requests, no roles."""

from __future__ import annotations

from collections.abc import Sequence

from membergate.domain.access import Capability, Presence, PresenceState
from membergate.domain.errors import PermanentError
from membergate.domain.model import Community, Platform


class FakeInvitePlatform:
    """Records what was done; ``requests`` holds users who asked to join, ``members`` who are in."""

    platform = Platform.TELEGRAM
    capabilities = frozenset(
        {Capability.CHECK_MEMBER, Capability.INVITE, Capability.APPROVE_JOIN, Capability.REMOVE_MEMBER,
         Capability.MESSAGE}
    )

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.requests: set[str] = set()
        self.invites: list[tuple[str, str]] = []  # (user, link)
        self.messages: list[tuple[str, str, str]] = []  # (user, text, key)
        self.actions: list[tuple[str, str]] = []
        self.cannot_write: set[str] = set()

    def check_member(self, community: Community, user: str) -> Presence:
        if user in self.members:
            return Presence(PresenceState.PRESENT)
        return Presence(PresenceState.REQUESTED if user in self.requests else PresenceState.ABSENT)

    def add_member(self, community: Community, user: str, roles: Sequence[str], credential: str | None) -> None:
        raise PermanentError("a bot cannot add people to a chat", "unsupported_action")

    def grant_role(self, community: Community, user: str, role_id: str) -> None:
        raise PermanentError("no roles here", "unsupported_action")

    def revoke_role(self, community: Community, user: str, role_id: str) -> None:
        raise PermanentError("no roles here", "unsupported_action")

    def remove_member(self, community: Community, user: str) -> None:
        self.members.discard(user)
        self.actions.append(("remove", user))

    def create_invite(self, community: Community, user: str, now: int) -> str:
        link = f"https://t.me/+invite{len(self.invites) + 1}"
        self.invites.append((user, link))
        return link

    def approve_join(self, community: Community, user: str) -> None:
        self.requests.discard(user)
        self.members.add(user)
        self.actions.append(("approve", user))

    def decline_join(self, community: Community, user: str) -> None:
        self.requests.discard(user)
        self.actions.append(("decline", user))

    def send_message(self, user: str, text: str, idempotency_key: str) -> None:
        if user in self.cannot_write:
            raise PermanentError("Forbidden: bot can't initiate conversation with a user", "bot_cannot_write")
        if any(key == idempotency_key for _, _, key in self.messages):
            return
        self.messages.append((user, text, idempotency_key))
