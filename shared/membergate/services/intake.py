"""accept_stripe_webhook: verify, record, hand over; the only work done before Stripe gets its 2xx.

Import-light on purpose (standard library and the pure domain only): this runs on every
webhook, often cold. At most two AWS calls per event: one conditional ledger write that also
returns the stored item when the event was seen before, and one asynchronous invoke of the
processor (a body too large for the invoke is stored first: one more call for those only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.errors import MalformedEventError
from ..domain.model import LedgerEntry
from ..domain.signature import verify_signature
from ..domain.stripe_events import HANDLED_EVENT_TYPES, parse_event

if TYPE_CHECKING:  # ports.py imports most of the domain: 20 ms of the intake's cold start for two Protocols
    from ..ports import BillingEventDispatch, EventLedger

# Statuses that mean "already handled": a redelivery gets 200 and nothing else. Anything else
# ("received") means the event was acknowledged or attempted but may never have reached the
# processor (or its invoke ended in the dead-letter queue), so it is handed over again; the
# processor's ledger check and convergent processing make a second copy harmless.
HANDLED_STATUSES = frozenset({"processed", "ignored", "failed"})


@dataclass(frozen=True)
class IntakeResult:
    outcome: str  # queued | requeued | duplicate | ignored_type | ignored_livemode (queued = handed over)
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
    dispatch: BillingEventDispatch,
    correlation_id: str | None = None,
) -> IntakeResult:
    verify_signature(body, signature_header, secrets, wall_clock_now)
    try:
        text = body.decode("utf-8")
        raw = json.loads(text)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        raise MalformedEventError("the body is not valid UTF-8 JSON") from None
    except RecursionError:
        # A signed body nested deeper than the JSON parser goes: bytes no retry can make usable.
        raise MalformedEventError("the body nests too deeply to be a Stripe event") from None
    event = parse_event(raw)
    if event.livemode != livemode:
        # Acknowledged (Stripe would retry for days otherwise) but never silent: the id goes to
        # the dead-letter queue, whose alarm tells the operator an endpoint is misconfigured.
        dispatch.report_wrong_mode(event.id, event.type, correlation_id)
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
    dispatch.hand_over(event.id, text, correlation_id)
    return IntakeResult("queued" if previous is None else "requeued", event.id, event.type)
