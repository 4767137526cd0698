"""DynamoDB adapters for creator controls: the audit log, given grants' index, access codes, removals made."""

from __future__ import annotations

from datetime import datetime, timezone

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from ...domain.controls import AccessCode, AuditEntry, Removal
from .models import AccessCodeItem, AuditItem, LegacyCheckItem, LinkItem, RemovalItem
from .repositories import DynamoCatalogRepository, _conditional_failed, _get, _member_pk

DAY = 86_400
# How many days one page walks at most: a long quiet stretch answers a short page with a cursor
# rather than one request reading a year of empty partitions.
DAYS_PER_PAGE = 62
_DAY_END_ID = "~"  # sorts after every audit id: "the whole of this second was read"
AUDIT_INDEX = "AUDIT"  # by_kind key of the day entries; gsi1sk is their sort key (<at>#<id>)
_CHECK = "LEGACY_CHECK#audit_unindexed"


def _day(at: int) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d")


def _sk(at: int, audit_id: str) -> str:
    return f"{at:010d}#{audit_id}"


class DynamoAuditLog:
    """Two writes per action: the day's partition, also listed in by_kind under ``AUDIT`` by time
    (``GET /admin/audit``), and the member's (timeline).

    Admin actions come from one creator at human (or script) pace, so one index partition takes
    them all; a page is one Query with a Limit, however many quiet days it spans. Entries written
    before the index are read day by day, only on the days up to the newest of them."""

    def record(self, entry: AuditEntry) -> None:
        values = dict(
            audit_id=entry.id, at=entry.at, actor=entry.actor, action=entry.action, target=entry.target,
            member_id=entry.member_id, reason=entry.reason or None, detail=entry.detail or None,
        )
        sk = _sk(entry.at, entry.id)
        AuditItem(f"AUDIT#{_day(entry.at)}", sk, gsi1pk=AUDIT_INDEX, gsi1sk=sk, **values).save()
        if entry.member_id:
            AuditItem(_member_pk(entry.member_id), "AUDIT#" + sk, **values).save()

    def page(
        self, since: int, now: int, limit: int, after: tuple[int, str] | None
    ) -> tuple[list[AuditEntry], tuple[int, str] | None]:
        start = max(since, after[0]) if after else since
        unindexed_through = self._unindexed_through(since, now)
        if start - start % DAY <= unindexed_through:
            out, position = self._walk_days(start, min(now, unindexed_through + DAY - 1), limit, after)
            if position is not None:
                return out, position
            # A full page still asks the index for one more entry: it says whether a next page exists.
            start, after = unindexed_through + DAY, None
        else:
            out = []
        return self._indexed(start, now, limit, after, out)

    def _indexed(
        self, start: int, now: int, limit: int, after: tuple[int, str] | None, out: list[AuditEntry]
    ) -> tuple[list[AuditEntry], tuple[int, str] | None]:
        """From ``start`` (or after ``after``) to the end of ``now``'s day: one Query, Limit included."""
        lower = _sk(*after) if after is not None and after[0] >= start else _sk(start, "")
        upper = _sk(now - now % DAY + DAY - 1, _DAY_END_ID)
        skip = lower if after is not None else None
        query = AuditItem.by_kind.query(AUDIT_INDEX, AuditItem.gsi1sk.between(lower, upper),
                                        limit=limit - len(out) + 1 + (skip is not None))
        for item in query:
            if item.gsi1sk == skip:
                continue  # the last entry of the page before (between includes its bound)
            if len(out) == limit:
                last = out[-1]
                return out, (last.at, last.id)
            out.append(_entry(item))
        return out, None

    def _walk_days(
        self, start: int, until: int, limit: int, after: tuple[int, str] | None
    ) -> tuple[list[AuditEntry], tuple[int, str] | None]:
        """The day partitions from ``start``'s day to ``until``'s, at most DAYS_PER_PAGE of them."""
        out: list[AuditEntry] = []
        day_start = start - start % DAY
        for _ in range(DAYS_PER_PAGE):
            if day_start > until:
                return out, None
            if after is not None and after[0] >= day_start:
                condition = AuditItem.sk > _sk(*after)
            else:
                condition = AuditItem.sk >= _sk(start, "")
            for item in AuditItem.query(f"AUDIT#{_day(day_start)}", condition, limit=limit - len(out) + 1):
                if len(out) == limit:
                    last = out[-1]
                    return out, (last.at, last.id)
                out.append(_entry(item))
            day_start += DAY
        if day_start > until:
            return out, None
        return out, (day_start - 1, _DAY_END_ID)

    def _unindexed_through(self, since: int, now: int) -> int:
        """The start of the last day that may hold entries written before the index (-1: none from
        ``since`` on). Found by looking at the day partitions once, newest first, and remembered: a
        later read reaching further back than any before looks at those older days only, and once
        an unindexed entry was found no look is needed again (every day up to it is walked)."""
        check = _get(LegacyCheckItem, _CHECK, "CHECK")
        if check is not None and check.newest:
            return int(check.newest)
        # No admin action predates the first community (every other one needs it), so no look goes
        # further back than that day, whatever ``since`` asks: since=0 reads days, not 56 years.
        # The days before it count as looked at.
        since_day = since - since % DAY
        looked_from = (int(check.looked_from) if check is not None and check.looked_from is not None
                       else now - now % DAY + DAY)
        if since_day >= looked_from:
            return -1
        first = min((c.created_at for c in DynamoCatalogRepository().list_communities()), default=now)
        found, day_start = 0, looked_from - DAY
        while day_start >= max(since_day, first - first % DAY):
            if any(item.gsi1pk is None for item in AuditItem.query(f"AUDIT#{_day(day_start)}")):
                found = day_start
                break
            day_start -= DAY
        try:
            LegacyCheckItem(_CHECK, "CHECK", newest=found, checked_at=now, looked_from=since_day).save()
        except PutError:
            pass  # a role that may not write here looks again next time: slower, never wrong
        return found or -1

    def for_member(self, member_id: str) -> list[AuditEntry]:
        items = AuditItem.query(_member_pk(member_id), AuditItem.sk.startswith("AUDIT#"), consistent_read=True)
        return [_entry(i) for i in items]


def _entry(item: AuditItem) -> AuditEntry:
    return AuditEntry(
        id=item.audit_id,
        at=int(item.at),
        actor=item.actor,
        action=item.action,
        target=item.target,
        member_id=item.member_id,
        reason=item.reason or "",
        detail={str(k): str(v) for k, v in (item.detail or {}).items()},
    )


class DynamoGivenGrantIndex:
    def member_for_grant(self, grant_id: str) -> str | None:
        link = _get(LinkItem, f"GRANT#{grant_id}", "LINK")
        return str(link.member_id) if link else None

    def index_grant(self, grant_id: str, member_id: str) -> None:
        LinkItem(f"GRANT#{grant_id}", "LINK", member_id=member_id).save()


class DynamoAccessCodeStore:
    def add(self, code_hash: str, code: AccessCode) -> None:
        AccessCodeItem(
            f"ACCESS_CODE#{code_hash}", "CODE", code_id=code.id, plan_id=code.plan_id, days=code.days,
            uses=code.uses, used=code.used, expires_at=code.expires_at, created_at=code.created_at,
        ).save(condition=AccessCodeItem.pk.does_not_exist())

    def find(self, code_hash: str) -> AccessCode | None:
        item = _get(AccessCodeItem, f"ACCESS_CODE#{code_hash}", "CODE")
        if item is None:
            return None
        return AccessCode(
            id=item.code_id, plan_id=item.plan_id, days=int(item.days) if item.days is not None else None,
            uses=int(item.uses), used=int(item.used or 0),
            expires_at=int(item.expires_at) if item.expires_at is not None else None, created_at=int(item.created_at),
        )

    def take_use(self, code_hash: str, now: int) -> bool:
        not_expired = AccessCodeItem.expires_at.does_not_exist() | (AccessCodeItem.expires_at > now)
        try:
            AccessCodeItem(f"ACCESS_CODE#{code_hash}", "CODE").update(
                actions=[AccessCodeItem.used.add(1)],
                condition=AccessCodeItem.pk.exists() & (AccessCodeItem.used < AccessCodeItem.uses) & not_expired,
            )
        except UpdateError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def give_back_use(self, code_hash: str) -> None:
        AccessCodeItem(f"ACCESS_CODE#{code_hash}", "CODE").update(
            actions=[AccessCodeItem.used.add(-1)], condition=AccessCodeItem.used > 0
        )



# --- removals made --------------------------------------------------------------------------


def _removal_key(removal_id: str) -> tuple[str, str]:
    return f"REMOVAL#{removal_id}", "REMOVAL"


def _removal_day_key(at: int, removal_id: str) -> tuple[str, str]:
    return f"REMOVALS#{_day(at)}", _sk(at, removal_id)


class DynamoRemovalLog:
    """Two items per removal, written in one transaction: by id (undo; the id condition makes a
    retried removal one record) and in the day's partition (``GET /admin/removals``).

    A day's partition takes only that day's removals; their pace is bounded by the dispatcher's
    concurrency and the platforms' rate limits (Discord: 50 requests a second per bot), far under a
    partition's 1,000 writes a second, and the next day writes elsewhere."""

    def record(self, removal: Removal) -> bool:
        values = _removal_values(removal)
        try:
            with TransactWrite(connection=RemovalItem._get_connection().connection) as tx:
                tx.save(RemovalItem(*_removal_key(removal.id), **values), condition=RemovalItem.pk.does_not_exist())
                tx.save(RemovalItem(*_removal_day_key(removal.at, removal.id), **values))
        except TransactWriteError as exc:
            if getattr(exc, "cause_response_code", None) == "TransactionCanceledException":
                return False  # kept already (a retried removal)
            raise
        return True

    def get(self, removal_id: str) -> Removal | None:
        item = _get(RemovalItem, *_removal_key(removal_id))
        return _removal(item) if item is not None else None

    def page(
        self, since: int, now: int, limit: int, after: tuple[int, str] | None
    ) -> tuple[list[Removal], tuple[int, str] | None]:
        # Newest first: walk the days back from ``now`` (or the cursor) to ``since``.
        end = min(now, after[0]) if after else now
        out: list[Removal] = []
        day_start = end - end % DAY
        for _ in range(DAYS_PER_PAGE):
            if day_start + DAY <= since:
                return out, None
            upper = _sk(*after) if after is not None and after[0] >= day_start else _DAY_END_ID
            items = RemovalItem.query(
                f"REMOVALS#{_day(day_start)}", RemovalItem.sk < upper, scan_index_forward=False,
                limit=limit - len(out) + 1,
            )
            for item in items:
                if int(item.at) < since:
                    return out, None
                if int(item.at) > now:
                    continue
                if len(out) == limit:
                    last = out[-1]
                    return out, (last.at, last.id)
                out.append(_removal(item))
            day_start -= DAY
        if day_start + DAY <= since:
            return out, None
        return out, (day_start + DAY, "")  # "before the start of the next day to read"

    def mark_undone(self, removal_id: str, at: int, grant_id: str) -> bool:
        try:
            RemovalItem(*_removal_key(removal_id)).update(
                actions=[RemovalItem.undone_at.set(at), RemovalItem.undo_grant_id.set(grant_id)],
                condition=RemovalItem.pk.exists() & RemovalItem.undone_at.does_not_exist(),
            )
        except UpdateError as exc:
            if _conditional_failed(exc):
                return False
            raise
        self._mirror(removal_id, [RemovalItem.undone_at.set(at), RemovalItem.undo_grant_id.set(grant_id)])
        return True

    def clear_undone(self, removal_id: str) -> None:
        RemovalItem(*_removal_key(removal_id)).update(
            actions=[RemovalItem.undone_at.remove(), RemovalItem.undo_grant_id.remove()]
        )
        self._mirror(removal_id, [RemovalItem.undone_at.remove(), RemovalItem.undo_grant_id.remove()])

    @staticmethod
    def _mirror(removal_id: str, actions: list) -> None:
        """The day partition's copy shows the undo too (the list answers undone_at)."""
        item = _get(RemovalItem, *_removal_key(removal_id))
        if item is not None:
            RemovalItem(*_removal_day_key(int(item.at), removal_id)).update(actions=actions)


def _removal_values(removal: Removal) -> dict:
    return dict(
        removal_id=removal.id, member_id=removal.member_id, community_id=removal.community_id,
        platform=removal.platform, at=removal.at, reason=removal.reason, plan_id=removal.plan_id,
        undone_at=removal.undone_at, undo_grant_id=removal.undo_grant_id,
    )


def _removal(item: RemovalItem) -> Removal:
    return Removal(
        id=item.removal_id, member_id=item.member_id, community_id=item.community_id, platform=item.platform,
        at=int(item.at), reason=item.reason, plan_id=item.plan_id,
        undone_at=int(item.undone_at) if item.undone_at is not None else None, undo_grant_id=item.undo_grant_id,
    )
