"""In-memory doubles for WhatsApp's storage (removal tasks, 24-hour windows), recording what happened."""

from __future__ import annotations

import hashlib

from membergate.adapters.dynamodb.whatsapp_store import RemovalTask


class FakeWhatsAppStore:
    """DynamoWhatsAppStore's behaviour in memory: one open removal per (community, phone)."""

    def __init__(self) -> None:
        self.removals: list[RemovalTask] = []
        self.windows: dict[str, int] = {}

    def add_removal(self, community_id: str, phone: str, member_id: str | None, due: int) -> RemovalTask:
        for task in self.tasks(community_id):
            if task.phone == phone:
                return task
        task_id = "task_" + hashlib.sha256(f"{community_id}|{phone}|{due}".encode()).hexdigest()[:16]
        task = RemovalTask(task_id, community_id, "remove", phone, member_id, due, False)
        self.removals.append(task)
        return task

    def tasks(self, community_id: str) -> list[RemovalTask]:
        return [t for t in self.removals if t.community_id == community_id and not t.done and not t.cancelled]

    def cancel_removals(self, community_id: str, phone: str) -> int:
        open_ = [t for t in self.tasks(community_id) if t.phone == phone]
        self.removals = [t for t in self.removals if t not in open_] + [
            RemovalTask(t.id, t.community_id, t.kind, t.phone, t.member_id, t.due, t.done, cancelled=True) for t in open_
        ]
        return len(open_)

    def record_inbound(self, phone: str, at: int) -> None:
        self.windows[phone] = at

    def last_inbound(self, phone: str) -> int | None:
        return self.windows.get(phone)
