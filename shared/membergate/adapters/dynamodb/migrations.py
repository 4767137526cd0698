"""DynamoDB adapter for free -> paid migrations: one partition per migration (the migration, then its members)."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError

from ...domain.migration import Migration, MigrationMember
from .models import MembershipItem
from .repositories import _conditional_failed, _get


class MigrationItem(MembershipItem, discriminator="migration"):
    migration_id = UnicodeAttribute()
    community_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    deadline = NumberAttribute()
    message = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    announcements = NumberAttribute(default=0)
    announcement_channel_id = UnicodeAttribute(null=True)
    posted_at = NumberAttribute(null=True)
    regular_plan_id = UnicodeAttribute(null=True)


class MigrationMemberItem(MembershipItem, discriminator="migration_member"):
    migration_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    imported_at = NumberAttribute()


def _pk(migration_id: str) -> str:
    return f"MIGRATION#{migration_id}"


class DynamoMigrationStore:
    def create(self, migration: Migration) -> None:
        self._item(migration).save(condition=MigrationItem.pk.does_not_exist())

    def save(self, migration: Migration) -> None:
        self._item(migration).save()

    @staticmethod
    def _item(m: Migration) -> MigrationItem:
        return MigrationItem(
            _pk(m.id), "MIGRATION", migration_id=m.id, community_id=m.community_id, plan_id=m.plan_id,
            deadline=m.deadline, message=m.message or None, created_at=m.created_at, announcements=m.announcements,
            announcement_channel_id=m.announcement_channel_id, posted_at=m.posted_at, regular_plan_id=m.regular_plan_id,
        )

    def get(self, migration_id: str) -> Migration | None:
        item = _get(MigrationItem, _pk(migration_id), "MIGRATION")
        if item is None:
            return None
        return Migration(
            id=item.migration_id, community_id=item.community_id, plan_id=item.plan_id, deadline=int(item.deadline),
            message=item.message or "", created_at=int(item.created_at), announcements=int(item.announcements or 0),
            announcement_channel_id=item.announcement_channel_id,
            posted_at=int(item.posted_at) if item.posted_at is not None else None,
            regular_plan_id=item.regular_plan_id,
        )

    def add_member(self, entry: MigrationMember) -> bool:
        try:
            MigrationMemberItem(
                _pk(entry.migration_id), f"M#{entry.member_id}", migration_id=entry.migration_id,
                member_id=entry.member_id, imported_at=entry.imported_at,
            ).save(condition=MigrationMemberItem.pk.does_not_exist())
        except PutError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def members(self, migration_id: str, after: str | None, limit: int) -> tuple[list[MigrationMember], str | None]:
        condition = MigrationMemberItem.sk > f"M#{after}" if after else MigrationMemberItem.sk.startswith("M#")
        items = list(MigrationMemberItem.query(_pk(migration_id), condition, limit=limit + 1, consistent_read=True))
        if after:  # "> M#<id>" also matches other prefixes above M#: keep the members only
            items = [i for i in items if i.sk.startswith("M#")]
        out = [MigrationMember(i.migration_id, i.member_id, int(i.imported_at)) for i in items[:limit]]
        return out, (out[-1].member_id if len(items) > limit else None)
