"""DynamoDB storage for WhatsApp: the creator's removal tasks (manual mode) and each phone's 24-hour window."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ...domain.errors import NotFoundError
from .models import WhatsAppTaskItem, WhatsAppWindowItem
from .repositories import _get


@dataclass(frozen=True)
class RemovalTask:
    id: str
    community_id: str
    kind: str  # "remove"
    phone: str  # E.164
    member_id: str | None
    due: int
    done: bool
    cancelled: bool = False
    reminders: int = 0


def _task_id(community_id: str, phone: str, since: int) -> str:
    return "task_" + hashlib.sha256(f"{community_id}|{phone}|{since}".encode()).hexdigest()[:16]


class DynamoWhatsAppStore:
    def add_removal(self, community_id: str, phone: str, member_id: str | None, due: int) -> RemovalTask:
        """Open a removal task for ``phone``, or return the one still open (a retried removal adds none)."""
        for task in self.tasks(community_id):
            if task.phone == phone:
                return task
        task_id = _task_id(community_id, phone, due)
        item = WhatsAppTaskItem(
            f"COMMUNITY#{community_id}", f"WATASK#{task_id}", task_id=task_id, community_id=community_id,
            task_kind="remove", phone=phone, member_id=member_id, due=due, done=False, cancelled=False, reminders=0,
        )
        item.save()
        return _task(item)

    def tasks(self, community_id: str, *, include_closed: bool = False) -> list[RemovalTask]:
        items = WhatsAppTaskItem.query(
            f"COMMUNITY#{community_id}", WhatsAppTaskItem.sk.startswith("WATASK#"), consistent_read=True
        )
        found = [_task(i) for i in items]
        if not include_closed:
            found = [t for t in found if not t.done and not t.cancelled]
        return sorted(found, key=lambda t: (t.due, t.id))

    def complete(self, community_id: str, task_id: str) -> RemovalTask:
        item = _get(WhatsAppTaskItem, f"COMMUNITY#{community_id}", f"WATASK#{task_id}")
        if item is None:
            raise NotFoundError(f"task {task_id} does not exist in community {community_id}; list them with GET /admin/communities/{community_id}/tasks")
        item.update(actions=[WhatsAppTaskItem.done.set(True)])
        return _task(item)

    def cancel_removals(self, community_id: str, phone: str) -> int:
        """The member paid again before the creator removed them: their open removal tasks go."""
        cancelled = 0
        for task in self.tasks(community_id):
            if task.phone == phone:
                WhatsAppTaskItem(f"COMMUNITY#{community_id}", f"WATASK#{task.id}").update(
                    actions=[WhatsAppTaskItem.cancelled.set(True)]
                )
                cancelled += 1
        return cancelled

    def record_inbound(self, phone: str, at: int) -> None:
        WhatsAppWindowItem(f"WAPHONE#{phone}", "WINDOW", last_inbound_at=at).save()

    def last_inbound(self, phone: str) -> int | None:
        item = _get(WhatsAppWindowItem, f"WAPHONE#{phone}", "WINDOW")
        return int(item.last_inbound_at) if item else None


def _task(item: WhatsAppTaskItem) -> RemovalTask:
    return RemovalTask(
        id=item.task_id, community_id=item.community_id, kind=item.task_kind, phone=item.phone,
        member_id=item.member_id, due=int(item.due), done=bool(item.done), cancelled=bool(item.cancelled),
        reminders=int(item.reminders or 0),
    )
