"""accept_stripe_webhook: verify, record, queue; the only work done before Stripe gets its 2xx.

Import-light on purpose (standard library and the pure domain only): this runs on every
webhook, often cold. At most two AWS calls per event: one conditional ledger write that also
returns the stored item when the event was seen before, and one FIFO send.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..domain.errors import MalformedEventError
from ..domain.model import LedgerEntry
from ..domain.signature import verify_signature
from ..domain.stripe_events import HANDLED_EVENT_TYPES, parse_event
from ..ports import BillingEventQueue, EventLedger

# Statuses that mean "already handled": a redelivery gets 200 and nothing else. Anything else
# ("received") means the event was acknowledged or attempted but may never have reached the
# queue, so it is queued again; the FIFO queue's deduplication and the processor's ledger check
# make the second copy harmless.
HANDLED_STATUSES = frozenset({"processed", "ignored", "failed"})


@dataclass(frozen=True)
class IntakeResult:
    outcome: str  # queued | requeued | duplicate | ignored_type | ignored_livemode
    event_id: str
    event_type: str


def accept_stripe_webhook(
    *,
    body: bytes,
    signature_header: str | None,
    secrets: Sequence[str],
    wall_clock_now: float,
    received_at: int,
    livemode: bool,
    ledger: EventLedger,
    queue: BillingEventQueue,
) -> IntakeResult:
    verify_signature(body, signature_header, secrets, wall_clock_now)
    try:
        text = body.decode("utf-8")
        raw = json.loads(text)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        raise MalformedEventError("the body is not valid UTF-8 JSON") from None
    event = parse_event(raw)
    if event.livemode != livemode:
        return IntakeResult("ignored_livemode", event.id, event.type)
    entry = LedgerEntry(
        event_id=event.id,
        type=event.type,
        status="received",
        created=event.created,
        received_at=received_at,
        customer_id=event.customer_id,
    )
    if event.type not in HANDLED_EVENT_TYPES:
        ledger.record_ignored(entry)
        return IntakeResult("ignored_type", event.id, event.type)
    previous = ledger.record_received(entry)
    if previous in HANDLED_STATUSES:
        return IntakeResult("duplicate", event.id, event.type)
    # One ordered group per customer; events without one must not hold anybody else back.
    group = event.customer_id or f"event:{event.id}"
    queue.enqueue(event.id, group, text)
    return IntakeResult("queued" if previous is None else "requeued", event.id, event.type)
