"""Doubles for refunds and disputes: Stripe's invoice-payment lookup and the creator's audit log."""

from __future__ import annotations

from typing import Any

from membergate.domain.controls import AuditEntry
from membergate.ports import PaidInvoice


class FakePayments:
    """Answers which invoice a PaymentIntent paid, as GET /v1/invoice_payments then the invoice would."""

    def __init__(self, paid: dict[str, PaidInvoice] | None = None) -> None:
        self.paid = dict(paid or {})
        self.asked: list[str] = []

    def invoice_paid_by(self, payment_intent: str) -> PaidInvoice | None:
        self.asked.append(payment_intent)
        return self.paid.get(payment_intent)


class FakeAudit:
    """Keeps entries by id (a rewrite replaces), pages them oldest first."""

    def __init__(self) -> None:
        self.entries: dict[str, AuditEntry] = {}

    def record(self, entry: AuditEntry) -> None:
        self.entries[entry.id] = entry

    def page(self, since: int, now: int, limit: int, after: tuple[int, str] | None):
        ordered = sorted((e for e in self.entries.values() if since <= e.at <= now), key=lambda e: (e.at, e.id))
        if after is not None:
            ordered = [e for e in ordered if (e.at, e.id) > after]
        chunk = ordered[:limit]
        return chunk, ((chunk[-1].at, chunk[-1].id) if len(ordered) > limit else None)

    def for_member(self, member_id: str) -> list[AuditEntry]:
        return sorted((e for e in self.entries.values() if e.member_id == member_id), key=lambda e: (e.at, e.id))


class FakeCollection:
    """Stripe's pause_collection on subscriptions: records each call (idempotent per key, as Stripe is)
    and answers the subscription as updated; ``fail`` raises instead (Stripe down or refusing)."""

    def __init__(self, created: int, member_id: str = "mbr_1") -> None:
        self.created = created
        self.member_id = member_id
        self.calls: list[tuple[str, bool, str]] = []
        self.paused: dict[str, bool] = {}
        self.fail: Exception | None = None

    def set_collection_paused(self, subscription_id: str, paused: bool, idempotency_key: str) -> dict[str, Any] | None:
        from tests.support import stripe_events as se

        if self.fail is not None:
            raise self.fail
        if all(key != idempotency_key for _, _, key in self.calls):
            self.calls.append((subscription_id, paused, idempotency_key))
            self.paused[subscription_id] = paused
        sub = se.subscription(created=self.created, sub_id=subscription_id, member_id=self.member_id)
        sub["pause_collection"] = {"behavior": "void", "resumes_at": None} if self.paused[subscription_id] else None
        return sub
