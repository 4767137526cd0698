"""DynamoDB storage for the creator's numbers: join funnel counters and daily KPI snapshots."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta

from ...domain.funnel import FunnelCount
from ...domain.kpis import DaySnapshot, day_of, snapshot_from_json, snapshot_to_json
from ...ports import SnapshotState
from pynamodb.exceptions import PutError

from .models import FunnelItem, KpiSnapshotItem, KpiStateItem, LegacyCheckItem
from .repositories import DynamoCatalogRepository, _get

# The by_kind key of every counter: a period is one Query on day-first sort keys. A day's counters
# took one partition already (FUNNEL#<day>), split by sort key under load; this one is split the same way.
FUNNEL_INDEX = "FUNNEL"
_CHECK = "LEGACY_CHECK#funnel_unindexed"


class DynamoFunnelLog:
    def __init__(self, time_zone: str = "UTC", now: Callable[[], int] = lambda: int(time.time())) -> None:
        self.time_zone = time_zone
        self._now = now  # business time (the local stack moves it): where the one look starts

    def day_of(self, at: int) -> date:
        return day_of(at, self.time_zone)

    def count(self, plan_id: str, step: str, at: int) -> None:
        day = self.day_of(at).isoformat()
        FunnelItem(f"FUNNEL#{day}", f"{plan_id}#{step}").update(
            actions=[
                FunnelItem.hits.add(1),
                FunnelItem.kind.set(FunnelItem),
                FunnelItem.plan_id.set(plan_id),
                FunnelItem.step.set(step),
                FunnelItem.gsi1pk.set(FUNNEL_INDEX),
                FunnelItem.gsi1sk.set(f"{day}#{plan_id}#{step}"),
            ]
        )

    def counts(self, start: date, end: date) -> list[FunnelCount]:
        """``start``..``end``'s counters: one Query over the by_kind index for the days after the
        newest counter older versions wrote unindexed, and one Query a day up to it (none once it
        is older than the period)."""
        out: list[FunnelCount] = []
        unindexed = self._newest_unindexed_day()
        day = start
        while unindexed is not None and day <= min(end, unindexed):
            # The day's partition holds every counter of the day, indexed or not.
            for item in FunnelItem.query(f"FUNNEL#{day.isoformat()}"):
                out.append(FunnelCount(item.plan_id, day, item.step, int(item.hits)))
            day += timedelta(days=1)
        if day <= end:
            span = FunnelItem.gsi1sk.between(day.isoformat(), f"{end.isoformat()}~")
            for item in FunnelItem.by_kind.query(FUNNEL_INDEX, span):
                out.append(FunnelCount(item.plan_id, date.fromisoformat(item.gsi1sk[:10]), item.step, int(item.hits)))
        return out

    def _newest_unindexed_day(self) -> date | None:
        """The newest day holding a counter written before counters were indexed, found once (walking
        back from today to the first plan's day) and remembered: counters are all indexed now."""
        check = _get(LegacyCheckItem, _CHECK, "CHECK")
        if check is not None:
            return date.fromordinal(int(check.newest)) if check.newest else None
        plans = DynamoCatalogRepository().list_plans()
        first = min((self.day_of(p.created_at) for p in plans), default=None)
        today = self.day_of(self._now())
        newest: date | None = None
        day = today
        while first is not None and day >= first and newest is None:
            if any(item.gsi1pk is None for item in FunnelItem.query(f"FUNNEL#{day.isoformat()}")):
                newest = day
            day -= timedelta(days=1)
        try:
            LegacyCheckItem(_CHECK, "CHECK", newest=newest.toordinal() if newest else 0, checked_at=self._now()).save()
        except PutError:
            pass  # a role that may not write here looks again next time: slower, never wrong
        return newest


class DynamoKpiSnapshotStore:
    def __init__(self, time_zone: str = "UTC") -> None:
        self.time_zone = time_zone
        # Snapshots of another time zone are other days: the zone is part of the key.
        self._pk = f"KPI_SNAPSHOT#{time_zone}"

    def day_of(self, at: int) -> date:
        return day_of(at, self.time_zone)

    def mark_dirty(self, day: date, why: str) -> None:
        KpiStateItem(self._pk, "STATE").update(
            actions=[KpiStateItem.dirty.add({f"{day.isoformat()}#{why}"}), KpiStateItem.kind.set(KpiStateItem)]
        )

    def state(self) -> SnapshotState:
        item = _get(KpiStateItem, self._pk, "STATE")
        if item is None:
            return SnapshotState()
        through = date.fromisoformat(item.through) if item.through else None
        return SnapshotState(through, frozenset(item.dirty or ()))

    def read(self, start: date, end: date) -> list[DaySnapshot]:
        items = KpiSnapshotItem.query(self._pk, KpiSnapshotItem.sk.between(start.isoformat(), end.isoformat()))
        return [snapshot_from_json(item.data) for item in items]

    def write(self, snapshots: Sequence[DaySnapshot], through: date, seen: frozenset[str]) -> None:
        # One PutItem a day (no BatchWriteItem in the admin role): a run writes one day, or a few
        # after a late event; the first run catches up once.
        for snapshot in snapshots:
            KpiSnapshotItem(self._pk, snapshot.day.isoformat(), data=snapshot_to_json(snapshot)).save()
        actions = [KpiStateItem.through.set(through.isoformat()), KpiStateItem.kind.set(KpiStateItem)]
        if seen:
            actions.append(KpiStateItem.dirty.delete(set(seen)))
        KpiStateItem(self._pk, "STATE").update(actions=actions)
