"""Test double of the checkout leases: one holder per (member, community), atomic like DynamoDB's conditional put."""

from __future__ import annotations

import threading


class FakeCheckoutLocks:
    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], tuple[str, int]] = {}  # (member, community) -> (holder, until)
        self.refused = 0
        self._lock = threading.Lock()

    def acquire(self, member_id: str, community_id: str, holder: str, now: int, ttl: int) -> bool:
        with self._lock:
            current = self.leases.get((member_id, community_id))
            if current is not None and current[1] > now:
                self.refused += 1
                return False
            self.leases[(member_id, community_id)] = (holder, now + ttl)
            return True

    def release(self, member_id: str, community_id: str, holder: str) -> None:
        with self._lock:
            if self.leases.get((member_id, community_id), ("", 0))[0] == holder:
                del self.leases[(member_id, community_id)]
