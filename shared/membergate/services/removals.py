"""Removals: the sweep's dry run (from the same pure rules), the removals made, and their undo."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..domain.access import ACCESS_RESTORED
from ..domain.billing import removal_subject
from ..domain.controls import Removal, undo_refusal
from ..domain.errors import AlreadyUndoneError, InvalidRequestError, NotFoundError
from ..domain.grants import OneTimeGrant
from ..domain.model import Entitlement
from ..ports import AccessWorkQueue, RemovalLog, Stores, notify_work
from . import controls
from .membership import current_view

# Members read per preview: the due index lists them soonest first, so a bounded read still shows
# the earliest removals; the answer says when it stopped short.
PREVIEW_MEMBERS = 500


@dataclass(frozen=True)
class PlannedRemoval:
    member_id: str
    community_id: str
    at: int | None  # when access ends (the latest end among what gives it now); None if unknown
    reason: str  # why, as the entitlement will say then (grace_expired, pass_expired, ...)


def _giving(entitlements: list[Entitlement]) -> dict[str, list[Entitlement]]:
    out: dict[str, list[Entitlement]] = {}
    for e in entitlements:
        if e.state.gives_access:
            out.setdefault(e.community_id, []).append(e)
    return out


def preview(stores: Stores, now: int, until: int) -> tuple[list[PlannedRemoval], bool]:
    """Every (member, place) that has access now and would not at ``until``; True when complete.

    The entitlements at ``until`` are derived by the very function the sweep uses
    (membership.current_view -> domain billing/grants), so preview and sweep cannot disagree."""
    member_ids = stores.entitlements.due(until, PREVIEW_MEMBERS + 1)
    complete = len(member_ids) <= PREVIEW_MEMBERS
    removals: list[PlannedRemoval] = []
    for member_id in member_ids[:PREVIEW_MEMBERS]:
        removals.extend(member_removals(stores, member_id, now, until))
    removals.sort(key=lambda r: (r.at if r.at is not None else until, r.member_id, r.community_id))
    return removals, complete


def member_removals(
    stores: Stores, member_id: str, now: int, until: int, *, facts: dict[str, Any] | None = None,
) -> list[PlannedRemoval]:
    """The places one member has access to now and would not at ``until`` (the preview's rule,
    also asked member by member, e.g. by a migration's "would lose access at the deadline").
    ``facts``: what the caller already read (current_view's records, grants, plans, communities)."""
    known = facts or {}
    today = _giving(current_view(stores, member_id, now, **known).entitlements)
    later_view = current_view(stores, member_id, until, **known)
    later = _giving(later_view.entitlements)
    out: list[PlannedRemoval] = []
    for community_id, giving in sorted(today.items()):
        if community_id in later:
            continue  # another grant still gives this place then: no removal
        ends = [e.until for e in giving]
        at = None if any(t is None for t in ends) else max(t for t in ends if t is not None)
        here_later = [e for e in later_view.entitlements if e.community_id == community_id]
        subject = removal_subject(here_later)  # the same choice as the receipt and the removal record
        reason = subject.reason if subject and subject.reason else next((e.reason for e in here_later if e.reason), "ended")
        out.append(PlannedRemoval(member_id, community_id, at, reason))
    return out
# --- removals made, and their undo ----------------------------------------------------------


def _log(stores: Stores) -> RemovalLog:
    if stores.removals is None:  # bootstrap always builds it; a missing one is a wiring bug
        raise RuntimeError("no removal log wired into Stores")
    return stores.removals


def made(
    stores: Stores, *, since: int, now: int, limit: int, cursor: str | None
) -> tuple[list[Removal], str | None]:
    """Removals made from ``since`` to ``now``, newest first; the cursor of the next page."""
    after = _parse_cursor(cursor) if cursor else None
    removals, position = _log(stores).page(since, now, limit, after)
    return removals, (f"{position[0]}-{position[1]}" if position else None)


def _parse_cursor(cursor: str) -> tuple[int, str]:
    at, _, rest = cursor.partition("-")
    if not at.isdigit():
        raise InvalidRequestError("cursor: give the next_cursor of the previous page, unchanged", field="cursor")
    return int(at), rest


def find(stores: Stores, removal_id: str) -> Removal:
    removal = _log(stores).get(removal_id)
    if removal is None:
        raise NotFoundError(f"removal {removal_id} does not exist; the ids are those GET /admin/removals lists")
    return removal


def undo(
    stores: Stores, queue: AccessWorkQueue, *, removal_id: str, reason: str, days: int | None, actor: str,
    now: int, window_days: int, every_place: bool = False,
) -> tuple[Removal, OneTimeGrant]:
    """Give the access back as a manual grant of the removal's plan, audited, and tell the member.

    The grant covers the one place removed (``every_place``: all of the plan's places) for ``days``
    (None: no end; the HTTP default is the undo window, time for the member to pay again). Billing
    is not restarted: a subscription Stripe cancelled stays cancelled.
    The undo is claimed on the record first (conditional), so two undos at once give one grant."""
    removal = find(stores, removal_id)
    undo_refusal(removal, now, window_days)
    log = _log(stores)
    grant_id = f"undo_{removal.id}"
    if not log.mark_undone(removal.id, now, grant_id):
        raise AlreadyUndoneError(f"removal {removal.id} was already undone; to change that access, extend or end its grant")
    try:
        grant = controls.give_grant(
            stores, queue, member_id=removal.member_id, plan_id=removal.plan_id or "", days=days, reason=reason,
            actor=actor, now=now, grant_id=grant_id, community_id="" if every_place else removal.community_id,
        )
    except Exception:
        log.clear_undone(removal.id)  # nothing was given: the creator may try again
        raise
    controls.audit(stores, actor=actor, action="removal.undo", target=removal.id, now=now,
                   member_id=removal.member_id, reason=reason,
                   detail={"grant_id": grant.grant_id, "community_id": removal.community_id,
                           "removed_for": removal.reason})
    # Told in their language on their platform, once per removal (the message key is the removal).
    # With the grant's end ("": no end), so the member knows until when the access lasts.
    ends = "" if grant.access_seconds is None else str(grant.paid_at + grant.access_seconds)
    queue.send([notify_work(removal.member_id, removal.community_id, ACCESS_RESTORED, removal.id,
                            (("plan_id", removal.plan_id or ""), ("until", ends)))])
    undone = replace(removal, undone_at=now, undo_grant_id=grant.grant_id)
    return undone, grant
