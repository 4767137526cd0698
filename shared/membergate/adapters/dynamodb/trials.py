"""DynamoDB record of free trials given, one item per hashed identifier (domain/trials.py)."""

from __future__ import annotations

from collections.abc import Sequence

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from .models import TrialItem
from .repositories import _conditional_failed, _get


def _pk(key: str) -> str:
    return f"TRIAL#{key}"


class DynamoTrialLedger:
    def used(self, keys: Sequence[str]) -> bool:
        # A few GetItems (accounts, email): the functions' roles allow GetItem, not BatchGetItem.
        return any(_get(TrialItem, _pk(k), "TRIAL") is not None for k in dict.fromkeys(keys))

    def mark(self, keys: Sequence[str], subscription_id: str, now: int) -> list[str]:
        """Keep each key for this subscription; the keys another subscription had already used.

        One TransactWriteItems for all the keys (each new, or already this subscription's): the
        billing processor's budget of DynamoDB calls per event. Only when another subscription
        had one of them is the transaction refused; the keys are then kept one by one, as below."""
        unique = list(dict.fromkeys(keys))
        if len(unique) > 1:
            try:
                with TransactWrite(connection=TrialItem._get_connection().connection) as tx:
                    for key in unique:
                        tx.update(TrialItem(_pk(key), "TRIAL"),
                                  actions=[TrialItem.subscription_id.set(subscription_id),
                                           TrialItem.at.set(TrialItem.at | now)],
                                  condition=TrialItem.pk.does_not_exist() | (TrialItem.subscription_id == subscription_id))
                return []
            except TransactWriteError as exc:
                if getattr(exc, "cause_response_code", None) != "TransactionCanceledException":
                    raise
        repeated = []
        for key in unique:
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
