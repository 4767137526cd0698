"""DynamoDB record of free trials given, one item per hashed identifier (domain/trials.py)."""

from __future__ import annotations

from collections.abc import Sequence

from pynamodb.exceptions import PutError

from .models import TrialItem
from .repositories import _conditional_failed, _get


def _pk(key: str) -> str:
    return f"TRIAL#{key}"


class DynamoTrialLedger:
    def used(self, keys: Sequence[str]) -> bool:
        # A few GetItems (accounts, email): the functions' roles allow GetItem, not BatchGetItem.
        return any(_get(TrialItem, _pk(k), "TRIAL") is not None for k in dict.fromkeys(keys))

    def mark(self, keys: Sequence[str], subscription_id: str, now: int) -> list[str]:
        """Keep each key for this subscription; the keys another subscription had already used."""
        repeated = []
        for key in dict.fromkeys(keys):
            try:
                TrialItem(_pk(key), "TRIAL", subscription_id=subscription_id, at=now).save(
                    condition=TrialItem.pk.does_not_exist()
                )
            except PutError as exc:
                if not _conditional_failed(exc):
                    raise
                first = _get(TrialItem, _pk(key), "TRIAL")
                if first is not None and first.subscription_id != subscription_id:
                    repeated.append(key)
        return repeated
