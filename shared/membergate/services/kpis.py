"""Read the creator's KPIs for a period: builds the KPI engine's history from the stores (read-only)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

from ..domain.billing import SubscriptionRecord
from ..domain.errors import InvalidRequestError
from ..domain.funnel import FunnelCount, funnel_days, plan_totals
from ..domain.kpis import (
    DEFAULT_GRACE_SECONDS,
    DaySnapshot,
    History,
    KpiReport,
    OneTimePayment,
    SubscriptionObservation,
    compute_kpis,
    daily_snapshots,
    day_of,
    days_between,
    summarise,
)
from ..domain.grants import OneTimeGrant
from ..domain.model import CheckoutGate
from ..ports import KpiSnapshotStore, SnapshotState, Stores


def history_from_stores(stores: Stores) -> History:
    """The engine's history, at Stripe's times, from what the subscription store keeps.

    Each record carries every (time, status, prices) point its snapshots showed (``history``),
    so a subscription that was active then cancelled shows both its ``new`` and its ``churned``.
    Status changes stored before that history existed (``observations``) are added, priced with
    the latest lines as nothing older is known. A subscription whose checkout was never paid
    (failed, or a delayed method still pending) is left out, as it gives no access and no revenue.
    Every point is counted net of the tax its prices include, at the rate its latest paid invoice
    showed (``SubscriptionRecord.tax_inclusive_rate``; docs/kpis.md, "Tax").
    """
    grace = {plan.id: plan.grace_seconds for plan in stores.catalog.list_plans()}
    observations: list[SubscriptionObservation] = []
    for record in stores.subscriptions.all_records():
        if counts_for_kpis(record):
            observations.extend(record_observations(record, grace.get(record.plan_id, DEFAULT_GRACE_SECONDS)))
    return History(observations=tuple(observations), payments=tuple(one_time_payments(stores.grants.all_paid())))


def one_time_payments(grants: Iterable[OneTimeGrant]) -> Iterator[OneTimePayment]:
    """Passes and lifetime purchases as revenue, kept apart from MRR: paid, not refunded, not lost
    to a dispute (the money went back); given grants (manual, access codes) are not revenue."""
    for g in grants:
        if g.given or g.gate is not CheckoutGate.PAID or not g.currency or g.amount <= 0:
            continue
        if g.ended_reason == "refunded" or g.dispute == "lost":
            continue
        # Net of tax (docs/kpis.md, "Tax"): the tax Checkout collected is not the creator's revenue.
        yield OneTimePayment(g.member_id, g.grant_id, g.paid_at, g.currency, g.amount - g.tax, g.kind.value)


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
                tax_inclusive_rate=record.tax_inclusive_rate,
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
                tax_inclusive_rate=record.tax_inclusive_rate,
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


@dataclass(frozen=True)
class KpiInputs:
    """What the KPI reads of one render share: the history and the funnel counters of a period
    that covers every report asked for, read once and passed down (not once per report)."""

    history: History
    counts: list[FunnelCount]
    snapshot_state: SnapshotState | None


def read_inputs(stores: Stores, start: date, end: date) -> KpiInputs:
    """The history, ``start``..``end``'s funnel counters and the snapshot state, one read each."""
    counts = stores.funnel.counts(start, end) if stores.funnel is not None else []
    state = stores.kpi_snapshots.state() if stores.kpi_snapshots is not None else None
    return KpiInputs(history_from_stores(stores), counts, state)


def read_kpis(stores: Stores, now: int, *, start: date | None, end: date | None, time_zone: str = "UTC",
              inputs: KpiInputs | None = None) -> KpiReport:
    """KPIs for ``start``..``end`` (inclusive days in ``time_zone``).

    Defaults: ``end`` is today, ``start`` the first day of ``end``'s month. ``inputs`` (read by
    ``read_inputs`` over a period covering this one) spares the reads when several reports share them.
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
    if inputs is None:
        inputs = read_inputs(stores, start, end)
    history = inputs.history
    counts = [c for c in inputs.counts if start <= c.day <= end]
    if stores.funnel is not None:
        history = replace(history, funnel=funnel_days(counts))
    store = stores.kpi_snapshots
    if store is None or store.time_zone != time_zone:
        report = compute_kpis(history, start, end, time_zone, now)
    else:
        report = summarise(history, period_snapshots(store, history, start, end, now, inputs.snapshot_state),
                           start, end, time_zone, now)
    # Per plan from the very counters summed above (one read): which offer converts.
    return replace(report, funnel_by_plan=plan_totals(counts, start))


def period_snapshots(store: KpiSnapshotStore, history: History, start: date, end: date, now: int,
                     state: SnapshotState | None = None) -> list[DaySnapshot]:
    """One snapshot per day of the period: stored ones for closed days no late event touched
    (one read), the others (today, dirty or not yet written days) computed now."""
    state = state if state is not None else store.state()
    clean_through = state.through
    if clean_through is not None and state.dirty_from is not None:
        clean_through = min(clean_through, state.dirty_from - timedelta(days=1))
    stored = store.read(start, min(end, clean_through)) if clean_through is not None and clean_through >= start else []
    have = {s.day for s in stored}
    missing = [d for d in days_between(start, end) if d not in have]
    return stored + (daily_snapshots(history, missing, store.time_zone, now) if missing else [])


@dataclass(frozen=True)
class SnapshotRun:
    days_written: int
    through: date | None


def write_daily_snapshots(stores: Stores, now: int) -> SnapshotRun:
    """The scheduled job: a snapshot for every closed day not written yet and every day a late
    event touched, computed in one pass over the history. Idempotent; a no-op when up to date."""
    store = stores.kpi_snapshots
    if store is None:
        return SnapshotRun(0, None)
    yesterday = store.day_of(now) - timedelta(days=1)
    state = store.state()  # read before the history, so a mark added meanwhile stays for the next run
    if state.through is not None and state.through >= yesterday and not state.dirty:
        return SnapshotRun(0, state.through)
    history = history_from_stores(stores)
    first = min((o.created for o in history.observations), default=None)
    start = state.through + timedelta(days=1) if state.through is not None else (
        day_of(first, store.time_zone) if first is not None else yesterday + timedelta(days=1))
    if state.dirty_from is not None:
        start = min(start, state.dirty_from)
    days = days_between(start, yesterday) if start <= yesterday else []
    snapshots = daily_snapshots(history, days, store.time_zone, now) if days else []
    store.write(snapshots, yesterday, state.dirty)
    return SnapshotRun(len(snapshots), yesterday)


def mark_late(stores: Stores, created: int, why: str, now: int) -> None:
    """An event from a closed day (late, or back-dated) makes the snapshots from its day stale."""
    store = stores.kpi_snapshots
    if store is None:
        return
    day = store.day_of(created)
    if day < store.day_of(now):
        store.mark_dirty(day, why)
