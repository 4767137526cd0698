"""Test doubles for one-trial-per-identity: the trial ledger and Stripe's trial end."""

from __future__ import annotations

from collections.abc import Sequence


class FakeTrialLedger:
    def __init__(self) -> None:
        self.keys: dict[str, str] = {}  # key -> subscription id

    def used(self, keys: Sequence[str]) -> bool:
        return any(k in self.keys for k in keys)

    def mark(self, keys: Sequence[str], subscription_id: str, now: int) -> list[str]:
        repeated = []
        for key in dict.fromkeys(keys):
            first = self.keys.setdefault(key, subscription_id)
            if first != subscription_id:
                repeated.append(key)
        return repeated


class FakeTrialEnder:
    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    def end_trial(self, subscription_id: str, idempotency_key: str) -> None:
        self.ended.append((subscription_id, idempotency_key))
