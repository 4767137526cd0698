"""A DeploymentProbe double: secrets, schedules and queue depths as a test sets them; it records what was asked."""

from __future__ import annotations

from dataclasses import dataclass, field

from membergate.domain.errors import RetryableError


@dataclass
class FakeDeploymentProbe:
    secrets: dict[str, str] = field(default_factory=dict)  # name -> value ("" blank); absent: missing
    schedules: dict[str, str] = field(default_factory=dict)  # name -> "ENABLED" | "DISABLED"
    depths: dict[str, int] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)  # names whose read fails (denied, timed out)
    asked: list[str] = field(default_factory=list)

    def _ask(self, name: str) -> None:
        self.asked.append(name)
        if name in self.unreadable:
            raise RetryableError("AccessDeniedException")

    def secret_state(self, name: str) -> str:
        self._ask(name)
        if name not in self.secrets:
            return "missing"
        return "present" if self.secrets[name].strip() else "empty"

    def schedule_state(self, name: str) -> str:
        self._ask(name)
        return self.schedules.get(name, "missing")

    def queue_depth(self, url: str) -> int:
        self._ask(url)
        return self.depths.get(url, 0)
