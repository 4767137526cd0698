"""Reconciliation's two items: the run in progress (cursor + report so far) and the latest finished report.

    RECONCILE / RUN      the run a stopped invocation continues (deleted when the run finishes)
    RECONCILE / LATEST   the last finished report, as GET /admin/reconcile/latest shows it
    RECONCILE / LEASE    who runs now, until when (conditional write: one run at a time)

Both live in MembershipTable; a report keeps at most a bounded number of items per kind
(domain/reconcile.py), so one item stays well under DynamoDB's 400 KB.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from ...domain.errors import RetryableError
from .models import MembershipItem
from .repositories import _conditional_failed

PARTITION = "RECONCILE"


class ReconcileItem(MembershipItem, discriminator="reconcile"):
    body = JSONAttribute()
    lease_holder = UnicodeAttribute(null=True)
    lease_started_at = NumberAttribute(null=True)
    lease_expires_at = NumberAttribute(null=True)


class DynamoReconcileStore:
    def load_run(self) -> dict[str, Any] | None:
        return self._read("RUN")

    def save_run(self, run: dict[str, Any]) -> None:
        ReconcileItem(PARTITION, "RUN", body=run).save()

    def clear_run(self) -> None:
        ReconcileItem(PARTITION, "RUN").delete()

    def save_latest(self, report: dict[str, Any]) -> None:
        ReconcileItem(PARTITION, "LATEST", body=report).save()

    def latest(self) -> dict[str, Any] | None:
        return self._read("LATEST")

    def acquire_lease(self, holder: str, now: int, seconds: int) -> int | None:
        item = ReconcileItem(PARTITION, "LEASE", body={}, lease_holder=holder, lease_started_at=now,
                             lease_expires_at=now + seconds)
        free = (ReconcileItem.pk.does_not_exist() | (ReconcileItem.lease_expires_at <= now)
                | (ReconcileItem.lease_holder == holder))
        try:
            item.save(condition=free)
            return None
        except PutError as exc:
            if not _conditional_failed(exc):
                raise RetryableError("the reconciliation lease could not be written; try again") from None
        try:
            held = ReconcileItem.get(PARTITION, "LEASE", consistent_read=True)
        except DoesNotExist:  # released between the write and this read: the caller may try again
            return now
        return int(held.lease_started_at or now)

    def release_lease(self, holder: str) -> None:
        try:
            ReconcileItem(PARTITION, "LEASE").delete(condition=ReconcileItem.lease_holder == holder)
        except DeleteError as exc:
            if not _conditional_failed(exc):
                raise

    @staticmethod
    def _read(sk: str) -> dict[str, Any] | None:
        try:
            item = ReconcileItem.get(PARTITION, sk, consistent_read=True)
        except DoesNotExist:
            return None
        body = item.body
        return body if isinstance(body, dict) else None
