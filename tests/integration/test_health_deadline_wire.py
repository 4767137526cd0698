"""GET /admin/health through the admin handler under moto while Discord's address accepts and never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest

from membergate.adapters.http import HttpResponse, UrllibTransport
from membergate.services import health
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration
GUILD, ROLE = "710000000000000001", "710000000000000002"


@contextmanager
def black_hole() -> Iterator[str]:
    """A loopback address whose connections are queued by the kernel and never answered."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


class SwitchableDiscord(SpecCheckingDiscordTransport):
    """The spec-checking Discord fake until ``hang_at`` is set: then each request really goes over the
    standard library's transport to that address, with the timeout the adapter asked for."""

    hang_at: str | None = None
    timeouts: list[float]

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None,
                timeout: float) -> HttpResponse:
        if self.hang_at is None:
            return super().request(method, url, headers=headers, body=body, timeout=timeout)
        self.timeouts.append(timeout)
        return UrllibTransport().request(method, self.hang_at + "/api/v10/x", headers=headers, body=body,
                                         timeout=timeout)


def test_health_answers_within_its_deadline_while_discord_never_answers(monkeypatch):
    # Given two Discord communities registered while Discord answered, then Discord's address hanging,
    # and the per-community share shortened so the test stays quick (the rule is the same at 4 s / 10 s)
    monkeypatch.setattr(health, "COMMUNITY_SECONDS", 0.6)
    monkeypatch.setattr(health, "HEALTH_DEADLINE_SECONDS", 1.5)
    discord = SwitchableDiscord()
    discord.timeouts = []
    discord.add_guild(GUILD, {ROLE})
    discord.add_guild("710000000000000009", {ROLE})
    with Pipeline(discord) as p, black_hole() as address:
        ids = [p.admin("POST", "/admin/communities", body={"platform": "discord", "name": name, "guild_id": guild,
                                                            "role_id": ROLE})["body"]["id"]
               for name, guild in (("A", GUILD), ("B", "710000000000000009"))]
        discord.hang_at = address
        # When the creator runs the doctor
        started = time.monotonic()
        reply = p.admin("GET", "/admin/health")
        took = time.monotonic() - started
        # Then it answers 200 in about one share, not after 4 calls x 0.6 s per community (4.8 s): the bound
        # leaves the deadline room for a loaded machine, the "not asked" check below pins the rule itself
        assert reply["status"] == 200, reply
        assert took < 4.0, took
        assert discord.timeouts and all(t <= 0.6 for t in discord.timeouts)
        # ... the first community failed naming the wait and the command, the second was not asked
        failed = {c["check"]: c["fix"] for c in reply["body"]["checks"] if not c["ok"]}
        first, second = sorted(ids)
        assert failed[f"discord community {first} ({'A' if first == ids[0] else 'B'}): the bot answers"] == (
            f"Discord did not answer within 0.6 s; run POST /admin/communities/{first}/check later")
        assert any(check.startswith(f"discord community {second}") and fix.startswith("not asked: Discord")
                   for check, fix in failed.items())
        assert reply["body"]["ok"] is False


def test_community_check_answers_a_retryable_503_within_its_deadline_while_discord_never_answers(monkeypatch):
    # Given a Discord community registered while Discord answered, then Discord's address hanging,
    # and the check's time shortened so the test stays quick (the rule is the same at 10 s)
    from membergate.services import admin

    monkeypatch.setattr(admin, "CHECK_SECONDS", 0.8)
    discord = SwitchableDiscord()
    discord.timeouts = []
    discord.add_guild(GUILD, {ROLE})
    with Pipeline(discord) as p, black_hole() as address:
        community = p.admin("POST", "/admin/communities", body={"platform": "discord", "name": "A", "guild_id": GUILD,
                                                                "role_id": ROLE})["body"]["id"]
        discord.hang_at = address
        # When the creator asks for the check again
        started = time.monotonic()
        reply = p.admin("POST", f"/admin/communities/{community}/check")
        took = time.monotonic() - started
        # Then it answers within the deadline, a 503 in the envelope saying to check again later
        assert took < 1.6, took
        assert discord.timeouts and all(t <= 0.8 for t in discord.timeouts)
        assert reply["status"] == 503, reply
        assert "did not answer within" in reply["body"]["error"]["message"]
