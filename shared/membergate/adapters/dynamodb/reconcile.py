"""Reconciliation's two items: the run in progress (cursor + report so far) and the latest finished report.

    RECONCILE / RUN      the run a stopped invocation continues (deleted when the run finishes)
    RECONCILE / LATEST   the last finished report, as GET /admin/reconcile/latest shows it

Both live in MembershipTable; a report keeps at most a bounded number of items per kind
(domain/reconcile.py), so one item stays well under DynamoDB's 400 KB.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import JSONAttribute
from pynamodb.exceptions import DoesNotExist

from .models import MembershipItem

PARTITION = "RECONCILE"


class ReconcileItem(MembershipItem, discriminator="reconcile"):
    body = JSONAttribute()


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

    @staticmethod
    def _read(sk: str) -> dict[str, Any] | None:
        try:
            item = ReconcileItem.get(PARTITION, sk, consistent_read=True)
        except DoesNotExist:
            return None
        body = item.body
        return body if isinstance(body, dict) else None
