"""DynamoDB seats: a conditional counter per plan and one hold item per (plan, member).

Single-item conditional writes only (no transaction: concurrent transactions on the counter would
cancel each other and read as "sold out"). The counter only moves up under ``taken < seats``, so
members racing for the last seat get exactly one increment; the hold's own condition then makes a
double click by one member one seat."""

from __future__ import annotations

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from ...domain.seats import SeatTake, is_stale_hold
from .models import SeatCountItem, SeatHoldItem
from .repositories import _conditional_failed, _get


def _pk(plan_id: str) -> str:
    return f"SEATS#{plan_id}"


def _hold_sk(member_id: str) -> str:
    return f"HOLD#{member_id}"


class DynamoSeatStore:
    def take(self, plan_id: str, member_id: str, seats: int, now: int) -> SeatTake:
        if _get(SeatHoldItem, _pk(plan_id), _hold_sk(member_id)) is not None:
            return SeatTake.HELD
        if not self._count_one(plan_id, seats):
            # Sold out, unless a request died between holding a seat and creating its session:
            # those seats go back on sale (read only when sold out: the plan's holds, one Query).
            if not self._reclaim_stale(plan_id, now) or not self._count_one(plan_id, seats):
                return SeatTake.SOLD_OUT
        try:
            SeatHoldItem(_pk(plan_id), _hold_sk(member_id), member_id=member_id, held_at=now).save(
                condition=SeatHoldItem.pk.does_not_exist()
            )
        except PutError as exc:
            self._give_back(plan_id)
            if _conditional_failed(exc):
                return SeatTake.HELD  # the same member's other request held it a moment ago
            raise
        except Exception:
            self._give_back(plan_id)
            raise
        return SeatTake.TAKEN

    def attach(self, plan_id: str, member_id: str, session_id: str, previous_session_id: str | None) -> None:
        waiting = SeatHoldItem.session_id.does_not_exist()
        if previous_session_id:
            waiting = waiting | (SeatHoldItem.session_id == previous_session_id)
        try:
            SeatHoldItem(_pk(plan_id), _hold_sk(member_id)).update(
                actions=[SeatHoldItem.session_id.set(session_id)], condition=SeatHoldItem.pk.exists() & waiting
            )
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise  # else: the hold waits on a paid session, kept for good

    def release(self, plan_id: str, member_id: str, session_id: str | None) -> bool:
        condition = (
            SeatHoldItem.session_id == session_id if session_id else SeatHoldItem.session_id.does_not_exist()
        )
        try:
            SeatHoldItem(_pk(plan_id), _hold_sk(member_id)).delete(condition=SeatHoldItem.pk.exists() & condition)
        except DeleteError as exc:
            if _conditional_failed(exc):
                return False
            raise
        self._give_back(plan_id)
        return True

    @staticmethod
    def _count_one(plan_id: str, seats: int) -> bool:
        try:
            SeatCountItem(_pk(plan_id), "COUNT").update(
                actions=[SeatCountItem.taken.add(1)],
                condition=SeatCountItem.taken.does_not_exist() | (SeatCountItem.taken < seats),
            )
        except UpdateError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def _reclaim_stale(self, plan_id: str, now: int) -> int:
        """Give back the seats of holds whose checkout was never created; how many came back."""
        reclaimed = 0
        for hold in SeatHoldItem.query(_pk(plan_id), SeatHoldItem.sk.startswith("HOLD#")):
            if not is_stale_hold(int(hold.held_at), hold.session_id, now):
                continue
            try:  # only if still sessionless and the same hold: a late attach or a new hold wins
                hold.delete(condition=SeatHoldItem.session_id.does_not_exist() & (SeatHoldItem.held_at == hold.held_at))
            except DeleteError as exc:
                if _conditional_failed(exc):
                    continue
                raise
            self._give_back(plan_id)
            reclaimed += 1
        return reclaimed

    def taken(self, plan_id: str) -> int:
        item = _get(SeatCountItem, _pk(plan_id), "COUNT")
        return int(item.taken or 0) if item is not None else 0

    def keep(self, plan_id: str, member_id: str, subscription_id: str) -> None:
        try:
            SeatHoldItem(_pk(plan_id), _hold_sk(member_id)).update(
                actions=[SeatHoldItem.session_id.set(subscription_id)], condition=SeatHoldItem.pk.exists())
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise  # else: no hold (never taken), nothing to keep

    def held_by(self, plan_id: str, member_id: str) -> bool:
        return _get(SeatHoldItem, _pk(plan_id), _hold_sk(member_id)) is not None

    @staticmethod
    def _give_back(plan_id: str) -> None:
        SeatCountItem(_pk(plan_id), "COUNT").update(
            actions=[SeatCountItem.taken.add(-1)], condition=SeatCountItem.taken > 0
        )
