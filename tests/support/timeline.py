"""A connector that stamps each call with the clock, and in-memory creator-control stores, for invariant tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from membergate.domain.controls import AccessCode
from membergate.domain.model import Community, Platform
from tests.support.billing_fakes import FakeAudit
from tests.support.fakes import FakeConnector
from tests.support.harness import Harness


@dataclass(frozen=True)
class Stamp:
    """One thing the member saw, and when: a message (its kind and period) or a removal."""

    at: int
    what: str  # "dm" | "add_member" | "add_role" | "remove_role" | "kick"
    kind: str = ""  # dm: the MessageKind
    period: str = ""  # dm: the message's period


class TimedConnector(FakeConnector):
    """FakeConnector that also keeps a timeline: each DM with its message kind, each removal, at clock()."""

    def __init__(self, clock: Callable[[], int]) -> None:
        super().__init__()
        self.clock = clock
        self.timeline: list[Stamp] = []

    def send_message(self, user: str, text: str, idempotency_key: str) -> None:
        before = len(self.dms)
        try:
            super().send_message(user, text, idempotency_key)
        finally:
            if len(self.dms) > before:
                # The dispatcher's key is "<member>:<kind>#<period>" (services/access.py::_deliver).
                kind, _, period = idempotency_key.split(":", 1)[1].partition("#")
                self.timeline.append(Stamp(self.clock(), "dm", kind, period))

    def add_member(self, community: Community, user: str, roles, credential: str | None) -> None:
        super().add_member(community, user, roles, credential)
        self.timeline.append(Stamp(self.clock(), "add_member"))

    def grant_role(self, community: Community, user: str, role_id: str) -> None:
        super().grant_role(community, user, role_id)
        self.timeline.append(Stamp(self.clock(), "add_role"))

    def revoke_role(self, community: Community, user: str, role_id: str) -> None:
        super().revoke_role(community, user, role_id)
        self.timeline.append(Stamp(self.clock(), "remove_role"))

    def remove_member(self, community: Community, user: str) -> None:
        super().remove_member(community, user)
        self.timeline.append(Stamp(self.clock(), "kick"))


class FakeGivenGrants:
    def __init__(self) -> None:
        self.by_grant: dict[str, str] = {}

    def member_for_grant(self, grant_id: str) -> str | None:
        return self.by_grant.get(grant_id)

    def index_grant(self, grant_id: str, member_id: str) -> None:
        self.by_grant[grant_id] = member_id


class FakeAccessCodes:
    """Codes by hash; take_use counts a use only while one is left and the code is unexpired."""

    def __init__(self) -> None:
        self.codes: dict[str, AccessCode] = {}

    def add(self, code_hash: str, code: AccessCode) -> None:
        self.codes[code_hash] = code

    def find(self, code_hash: str) -> AccessCode | None:
        return self.codes.get(code_hash)

    def take_use(self, code_hash: str, now: int) -> bool:
        code = self.codes.get(code_hash)
        if code is None or code.used >= code.uses or (code.expires_at is not None and code.expires_at <= now):
            return False
        self.codes[code_hash] = replace(code, used=code.used + 1)
        return True

    def give_back_use(self, code_hash: str) -> None:
        code = self.codes[code_hash]
        self.codes[code_hash] = replace(code, used=max(code.used - 1, 0))


def timed_harness(**kwargs) -> Harness:
    """A Harness whose connector keeps a timeline and whose stores take manual grants and access codes."""
    h = Harness(**kwargs)
    h.connector = TimedConnector(lambda: h.now)
    h.dispatcher.connectors[Platform.DISCORD] = h.connector
    h.stores = replace(h.stores, audit=FakeAudit(), given_grants=FakeGivenGrants(), access_codes=FakeAccessCodes())
    h.dispatcher.stores = h.stores
    h.processor.stores = h.stores
    return h
