"""Test doubles for `membergate init`: an in-memory Parameter Store and a Telegram webhook registrar that records."""

from __future__ import annotations

from dataclasses import dataclass, field

from membergate.domain.errors import PermanentError


@dataclass
class MemoryParameters:
    values: dict[str, str] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def put(self, name: str, value: str) -> None:
        self.values[name] = value
        self.writes.append(name)


@dataclass
class RecordingRegistrar:
    """Records each (url, secret) registered; ``refuse`` makes it answer as Telegram refusing the URL."""

    refuse: str | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    def register(self, url: str, secret: str) -> str:
        if self.refuse:
            raise PermanentError(self.refuse, "telegram_webhook_not_https")
        self.calls.append((url, secret))
        return "gold_bot"


# A made-up live-mode key for the "refuse live keys" tests, assembled so no scanner mistakes it for a leak.
FAKE_LIVE_KEY = "sk_" + "live_" + "0123456789abcdef"
