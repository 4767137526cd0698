"""DynamoDB checkout leases: one item per (member, community), taken with a conditional put, expiring on their own."""

from __future__ import annotations

from pynamodb.exceptions import DeleteError, PutError

from .models import CheckoutLockItem
from .repositories import _conditional_failed, _ttl

# Items outlive their lease by a day before DynamoDB's TTL removes them (the condition reads ``until``).
_KEEP_SECONDS = 86_400


class DynamoCheckoutLocks:
    def acquire(self, member_id: str, community_id: str, holder: str, now: int, ttl: int) -> bool:
        try:
            CheckoutLockItem(
                f"CHECKOUTLOCK#{member_id}", f"COMMUNITY#{community_id}", holder=holder, until=now + ttl,
                expires_at_ttl=_ttl(now + ttl + _KEEP_SECONDS),
            ).save(condition=CheckoutLockItem.pk.does_not_exist() | (CheckoutLockItem.until <= now))
        except PutError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def release(self, member_id: str, community_id: str, holder: str) -> None:
        try:
            CheckoutLockItem(f"CHECKOUTLOCK#{member_id}", f"COMMUNITY#{community_id}").delete(
                condition=CheckoutLockItem.holder == holder)
        except DeleteError as exc:
            if not _conditional_failed(exc):
                raise  # else: the lease ran out and another request holds it now
