"""DynamoDB storage for the creator's numbers: join funnel counters and daily KPI snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from ...domain.funnel import FunnelCount
from ...domain.kpis import DaySnapshot, day_of, snapshot_from_json, snapshot_to_json
from ...ports import SnapshotState
from .models import FunnelItem, KpiSnapshotItem, KpiStateItem
from .repositories import _get


class DynamoFunnelLog:
    def __init__(self, time_zone: str = "UTC") -> None:
        self.time_zone = time_zone

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
            ]
        )

    def counts(self, start: date, end: date) -> list[FunnelCount]:
        out: list[FunnelCount] = []
        day = start
        while day <= end:
            for item in FunnelItem.query(f"FUNNEL#{day.isoformat()}"):
                out.append(FunnelCount(item.plan_id, day, item.step, int(item.hits)))
            day += timedelta(days=1)
        return out


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
