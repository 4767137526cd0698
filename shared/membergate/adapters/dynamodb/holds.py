"""DynamoDB storage for community holds (domain/holds.py): one small item per hold, one per member held behind it.

Members held are keyed by the hold's ``since`` (its generation), so a release deletes one item
(the hold) and reads the members with one paged Query; their items expire by TTL instead of
costing one DeleteItem each, and a later hold starts a new generation."""

from __future__ import annotations

import time

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from ...domain.holds import PROBE_INTERVAL, CommunityHold
from .models import CommunityHoldItem, HeldMemberItem
from .repositories import _conditional_failed, _ttl

# A member held is kept this long after last skipped (the item's TTL; its work is skipped again meanwhile).
HELD_MEMBER_TTL = 30 * 86_400
SK = "HOLD"


def _pk(community_id: str) -> str:
    return f"HOLD#{community_id}"


def _hold(item: CommunityHoldItem) -> CommunityHold:
    return CommunityHold(item.community_id, item.refusal, item.detail, int(item.since), int(item.probed_at))


class DynamoCommunityHolds:
    def get(self, community_id: str) -> CommunityHold | None:
        # Eventually consistent (half the read's cost): a hold seen a second late costs one more refusal at most.
        try:
            return _hold(CommunityHoldItem.get(_pk(community_id), SK))
        except DoesNotExist:
            return None

    def hold(self, hold: CommunityHold) -> CommunityHold:
        item = CommunityHoldItem(_pk(hold.community_id), SK, community_id=hold.community_id, refusal=hold.refusal,
                                 detail=hold.detail[:1000], since=hold.since, probed_at=hold.probed_at)
        try:
            item.save(condition=CommunityHoldItem.pk.does_not_exist())
            return hold
        except PutError as exc:
            if not _conditional_failed(exc):
                raise
        standing = CommunityHoldItem.get(_pk(hold.community_id), SK, consistent_read=True)
        return _hold(standing)

    def note_member(self, hold: CommunityHold, member_id: str) -> None:
        HeldMemberItem(_pk(hold.community_id), f"G#{hold.since}#M#{member_id}", member_id=member_id,
                       expires_at_ttl=_ttl(int(time.time()) + HELD_MEMBER_TTL)).save()

    def claim_probe(self, community_id: str, now: int) -> bool:
        try:
            CommunityHoldItem(_pk(community_id), SK).update(
                actions=[CommunityHoldItem.probed_at.set(now)],
                condition=CommunityHoldItem.pk.exists() & (CommunityHoldItem.probed_at <= now - PROBE_INTERVAL),
            )
            return True
        except UpdateError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def release(self, community_id: str) -> list[str]:
        try:
            item = CommunityHoldItem.get(_pk(community_id), SK, consistent_read=True)
        except DoesNotExist:
            return []
        members = HeldMemberItem.query(_pk(community_id), HeldMemberItem.sk.startswith(f"G#{int(item.since)}#M#"),
                                       consistent_read=True)
        held = sorted({m.member_id for m in members})
        item.delete()
        return held
