"""Doubles for refunds and disputes: Stripe's invoice-payment lookup and the creator's audit log."""

from __future__ import annotations

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
