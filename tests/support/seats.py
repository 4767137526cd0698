"""Test double of the seat store: a counter and one hold per (plan, member), as the DynamoDB one."""

from __future__ import annotations

from membergate.domain.seats import SeatTake, is_stale_hold


class FakeSeatStore:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.holds: dict[tuple[str, str], str | None] = {}  # (plan, member) -> session id
        self.held_at: dict[tuple[str, str], int] = {}

    def take(self, plan_id: str, member_id: str, seats: int, now: int) -> SeatTake:
        if (plan_id, member_id) in self.holds:
            return SeatTake.HELD
        if self.counts.get(plan_id, 0) >= seats:
            stale = [key for key, session in self.holds.items()
                     if key[0] == plan_id and is_stale_hold(self.held_at[key], session, now)]
            for key in stale:
                del self.holds[key]
                self.counts[plan_id] -= 1
            if self.counts[plan_id] >= seats:
                return SeatTake.SOLD_OUT
        self.counts[plan_id] = self.counts.get(plan_id, 0) + 1
        self.holds[(plan_id, member_id)] = None
        self.held_at[(plan_id, member_id)] = now
        return SeatTake.TAKEN

    def attach(self, plan_id: str, member_id: str, session_id: str, previous_session_id: str | None) -> None:
        key = (plan_id, member_id)
        if key in self.holds and self.holds[key] in (None, previous_session_id):
            self.holds[key] = session_id

    def release(self, plan_id: str, member_id: str, session_id: str | None) -> bool:
        key = (plan_id, member_id)
        if key not in self.holds or self.holds[key] != session_id:
            return False
        del self.holds[key]
        self.counts[plan_id] -= 1
        return True

    def taken(self, plan_id: str) -> int:
        return self.counts.get(plan_id, 0)

    def keep(self, plan_id: str, member_id: str, subscription_id: str) -> None:
        if (plan_id, member_id) in self.holds:
            self.holds[(plan_id, member_id)] = subscription_id

    def held_by(self, plan_id: str, member_id: str) -> bool:
        return (plan_id, member_id) in self.holds
