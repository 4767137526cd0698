"""Test double of the removal log: removals kept by id, listed newest first, undo claimed once."""

from __future__ import annotations

from dataclasses import replace

from membergate.domain.controls import Removal


class FakeRemovalLog:
    def __init__(self) -> None:
        self.items: dict[str, Removal] = {}
        self.record_calls = 0

    def record(self, removal: Removal) -> bool:
        self.record_calls += 1
        if removal.id in self.items:
            return False
        self.items[removal.id] = removal
        return True

    def get(self, removal_id: str) -> Removal | None:
        return self.items.get(removal_id)

    def page(
        self, since: int, now: int, limit: int, after: tuple[int, str] | None
    ) -> tuple[list[Removal], tuple[int, str] | None]:
        ordered = sorted(self.items.values(), key=lambda r: (r.at, r.id), reverse=True)
        listed = [r for r in ordered if since <= r.at <= now and (after is None or (r.at, r.id) < after)]
        if len(listed) > limit:
            last = listed[limit - 1]
            return listed[:limit], (last.at, last.id)
        return listed, None

    def mark_undone(self, removal_id: str, at: int, grant_id: str) -> bool:
        removal = self.items.get(removal_id)
        if removal is None or removal.undone_at is not None:
            return False
        self.items[removal_id] = replace(removal, undone_at=at, undo_grant_id=grant_id)
        return True

    def clear_undone(self, removal_id: str) -> None:
        self.items[removal_id] = replace(self.items[removal_id], undone_at=None, undo_grant_id=None)
