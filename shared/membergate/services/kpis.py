"""Read the creator's KPIs for a period: builds the KPI engine's history from the stores (read-only)."""

from __future__ import annotations

from datetime import date

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
    """The engine's history as far as the subscription store keeps it.

    The store holds each subscription's latest snapshot (with its lines) and its status changes
    since the last non-past_due one; each becomes an observation priced with the latest lines.
    A subscription whose checkout was never paid (failed, or a delayed method still pending) is
    left out, as it gives no access and no revenue.
    """
    grace = {plan.id: plan.grace_seconds for plan in stores.catalog.list_plans()}
    observations: list[SubscriptionObservation] = []
    for record in stores.subscriptions.all_records():
        latest = record.latest
        if latest is None or record.checkout_gate is CheckoutGate.FAILED:
            continue
        if record.via_checkout and record.checkout_gate in (CheckoutGate.UNSEEN, CheckoutGate.AWAITING):
            continue
        grace_seconds = grace.get(record.plan_id, DEFAULT_GRACE_SECONDS)
        seen = {(latest.created, latest.status)}
        observations.append(
            SubscriptionObservation(
                member_id=record.member_id,
                subscription_id=record.subscription_id,
                created=latest.created,
                status=latest.status,
                lines=latest.lines,
                event_id=latest.event_id,
                grace_seconds=grace_seconds,
                collection_paused=latest.pause_collection,
            )
        )
        for obs in record.observations:
            if (obs.created, obs.status) in seen:
                continue
            seen.add((obs.created, obs.status))
            observations.append(
                SubscriptionObservation(
                    member_id=record.member_id,
                    subscription_id=record.subscription_id,
                    created=obs.created,
                    status=obs.status,
                    lines=latest.lines,
                    event_id=f"{record.subscription_id}@{obs.created}:{obs.status}",
                    grace_seconds=grace_seconds,
                )
            )
    return History(observations=tuple(observations))


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
