"""In-memory CommunityHolds (ports.py): community-scoped refusals and the members held behind them."""

from __future__ import annotations

from dataclasses import replace

from membergate.domain.holds import PROBE_INTERVAL, CommunityHold


class FakeHolds:
    def __init__(self) -> None:
        self.holds: dict[str, CommunityHold] = {}
        self.members: dict[str, set[str]] = {}
        self.released: list[str] = []  # communities released, in order

    def get(self, community_id: str) -> CommunityHold | None:
        return self.holds.get(community_id)

    def hold(self, hold: CommunityHold) -> CommunityHold:
        return self.holds.setdefault(hold.community_id, hold)

    def note_member(self, hold: CommunityHold, member_id: str) -> None:
        self.members.setdefault(hold.community_id, set()).add(member_id)

    def claim_probe(self, community_id: str, now: int) -> bool:
        hold = self.holds.get(community_id)
        if hold is None or hold.probed_at > now - PROBE_INTERVAL:
            return False
        self.holds[community_id] = replace(hold, probed_at=now)
        return True

    def release(self, community_id: str) -> list[str]:
        self.holds.pop(community_id, None)
        self.released.append(community_id)
        return sorted(self.members.pop(community_id, set()))
