"""Read the creator's KPIs for a period: builds the KPI engine's history from the stores (read-only)."""

from __future__ import annotations

from datetime import date

from ..domain.billing import SubscriptionRecord
from ..domain.errors import InvalidRequestError
from ..domain.kpis import (
    DEFAULT_GRACE_SECONDS,
    History,
    KpiReport,
    SubscriptionObservation,
    compute_kpis,
    day_of,
)
from ..domain.model import CheckoutGate
from ..ports import Stores


def history_from_stores(stores: Stores) -> History:
    """The engine's history, at Stripe's times, from what the subscription store keeps.

    Each record carries every (time, status, prices) point its snapshots showed (``history``),
    so a subscription that was active then cancelled shows both its ``new`` and its ``churned``.
    Status changes stored before that history existed (``observations``) are added, priced with
    the latest lines as nothing older is known. A subscription whose checkout was never paid
    (failed, or a delayed method still pending) is left out, as it gives no access and no revenue.
    """
    grace = {plan.id: plan.grace_seconds for plan in stores.catalog.list_plans()}
    observations: list[SubscriptionObservation] = []
    for record in stores.subscriptions.all_records():
        if counts_for_kpis(record):
            observations.extend(record_observations(record, grace.get(record.plan_id, DEFAULT_GRACE_SECONDS)))
    return History(observations=tuple(observations))


def counts_for_kpis(record: SubscriptionRecord) -> bool:
    if record.latest is None or record.checkout_gate is CheckoutGate.FAILED:
        return False
    return not (record.via_checkout and record.checkout_gate in (CheckoutGate.UNSEEN, CheckoutGate.AWAITING))


def record_observations(record: SubscriptionRecord, grace_seconds: int) -> list[SubscriptionObservation]:
    """One subscription's observations for the engine (its history, then older status changes)."""
    latest = record.latest
    if latest is None:
        return []
    out: list[SubscriptionObservation] = []
    seen: set[tuple[int, str]] = set()
    for point in record.history:
        seen.add((point.created, point.status))
        out.append(
            SubscriptionObservation(
                member_id=record.member_id,
                subscription_id=record.subscription_id,
                created=point.created,
                status=point.status,
                lines=point.lines,
                event_id=f"{record.subscription_id}@{point.created}:{point.status}",
                grace_seconds=grace_seconds,
                collection_paused=point.pause_collection,
            )
        )
    legacy = [(latest.created, latest.status, latest.pause_collection)]
    legacy += [(obs.created, obs.status, False) for obs in record.observations]
    for created, status, paused in legacy:
        if (created, status) in seen:
            continue
        seen.add((created, status))
        out.append(
            SubscriptionObservation(
                member_id=record.member_id,
                subscription_id=record.subscription_id,
                created=created,
                status=status,
                lines=latest.lines,
                event_id=f"{record.subscription_id}@{created}:{status}",
                grace_seconds=grace_seconds,
                collection_paused=paused,
            )
        )
    return out


def parse_day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(f"{field}: give a day as YYYY-MM-DD, e.g. 2026-02-01", field) from None


def read_kpis(stores: Stores, now: int, *, start: date | None, end: date | None, time_zone: str = "UTC") -> KpiReport:
    """KPIs for ``start``..``end`` (inclusive days in ``time_zone``).

    Defaults: ``end`` is today, ``start`` the first day of ``end``'s month.
    """
    today = day_of(now, time_zone)
    end = end or today
    start = start or end.replace(day=1)
    if end < start:
        raise InvalidRequestError("to: must be on or after 'from' (both days are included)", "to")
    if end > today:
        raise InvalidRequestError(f"to: must not be after today ({today.isoformat()} in {time_zone})", "to")
    if (end - start).days > 366 * 3:
        raise InvalidRequestError("from: ask for at most three years at a time", "from")
    return compute_kpis(history_from_stores(stores), start, end, time_zone, now)
