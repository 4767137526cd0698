"""DynamoDB adapter for creator alerts: one item per alert in a day's partition, one digest state item.

    ALERT#<YYYY-MM-DD> / <at>#<alert id>   an alert (TTL: a week and a day; codes and ids only)
    ALERT_DIGEST       / STATE             the last digest (id, window, channels still to send to)
"""

from __future__ import annotations

from datetime import datetime, timezone

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError

from ...domain.alerts import ALERT_TTL_SECONDS, Alert, AlertKind, DigestState
from .models import MembershipItem
from .repositories import _conditional_failed, _get, _ttl

DAY = 86_400
STATE_PK, STATE_SK = "ALERT_DIGEST", "STATE"


class AlertItem(MembershipItem, discriminator="alert"):
    alert_id = UnicodeAttribute()
    alert_kind = UnicodeAttribute()
    at = NumberAttribute()
    member_id = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)


class DigestStateItem(MembershipItem, discriminator="alert_digest"):
    digest_id = UnicodeAttribute()
    since = NumberAttribute()
    until = NumberAttribute()
    pending = UnicodeAttribute(null=True)  # channel names, comma-separated
    attempts = NumberAttribute(default=0)
    revision = NumberAttribute()


def _day(at: int) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d")


class DynamoAlertStore:
    """Alerts are rare (a creator's day, not a member's request): one partition per day takes them."""

    def record(self, alert: Alert) -> None:
        # The sort key starts with the time, so the digest reads a window with one Query a day; the
        # same alert recorded twice at the same second is one item.
        AlertItem(
            f"ALERT#{_day(alert.at)}", f"{alert.at:010d}#{alert.id}", alert_id=alert.id, alert_kind=alert.kind.value,
            at=alert.at, member_id=alert.member_id or None, subject=alert.subject or None,
            detail=alert.detail or None, expires_at_ttl=_ttl(alert.at + ALERT_TTL_SECONDS),
        ).save()

    def between(self, since: int, until: int) -> list[Alert]:
        out: list[Alert] = []
        day = since - since % DAY
        while day < until:
            condition = AlertItem.sk.between(f"{since:010d}#", f"{until - 1:010d}#~")
            for item in AlertItem.query(f"ALERT#{_day(day)}", condition, consistent_read=True):
                try:
                    kind = AlertKind(item.alert_kind)
                except ValueError:
                    continue  # a kind a newer version wrote: not ours to word
                out.append(Alert(item.alert_id, kind, int(item.at), item.member_id or "", item.subject or "",
                                 item.detail or ""))
            day += DAY
        return out

    def digest_state(self) -> tuple[DigestState | None, int]:
        item = _get(DigestStateItem, STATE_PK, STATE_SK)
        if item is None:
            return None, 0
        pending = tuple(p for p in (item.pending or "").split(",") if p)
        return DigestState(item.digest_id, int(item.since), int(item.until), pending, int(item.attempts or 0)), int(
            item.revision)

    def save_digest_state(self, state: DigestState, revision: int) -> bool:
        item = DigestStateItem(STATE_PK, STATE_SK, digest_id=state.digest_id, since=state.since, until=state.until,
                               pending=",".join(state.pending) or None, attempts=state.attempts,
                               revision=revision + 1)
        condition = DigestStateItem.pk.does_not_exist() if revision == 0 else DigestStateItem.revision == revision
        try:
            item.save(condition=condition)
        except PutError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True
