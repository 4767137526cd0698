"""Creator alert doubles: an in-memory alert store and channels that record what they were sent."""

from __future__ import annotations

from dataclasses import dataclass, field

from membergate.domain.alerts import Alert, DigestState
from membergate.domain.errors import PermanentError, RetryableError


class MemoryAlertStore:
    def __init__(self) -> None:
        self.alerts: dict[tuple[int, str], Alert] = {}
        self.state: DigestState | None = None
        self.revision = 0
        self.state_writes = 0

    def record(self, alert: Alert) -> None:
        self.alerts[(alert.at, alert.id)] = alert

    def between(self, since: int, until: int) -> list[Alert]:
        return [a for key, a in sorted(self.alerts.items()) if since <= a.at < until]

    def digest_state(self) -> tuple[DigestState | None, int]:
        return self.state, self.revision

    def save_digest_state(self, state: DigestState, revision: int) -> bool:
        if revision != self.revision:
            return False
        self.state, self.revision = state, revision + 1
        self.state_writes += 1
        return True


class BrokenAlertStore(MemoryAlertStore):
    def record(self, alert: Alert) -> None:
        raise RuntimeError("DynamoDB is unreachable")


@dataclass
class RecordingChannel:
    name: str
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (subject, text, digest id)
    fail_with: Exception | None = None

    def send(self, subject: str, text: str, digest_id: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((subject, text, digest_id))


def refusing(name: str, permanent: bool = False) -> RecordingChannel:
    error = PermanentError("the bot may not post there", "missing_access") if permanent else RetryableError("timeout")
    return RecordingChannel(name, fail_with=error)
