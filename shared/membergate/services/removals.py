"""Dry run of the sweep: which access it would take away by a given time, from the same pure rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..domain.model import Entitlement
from ..ports import Stores
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
        reason = next(
            (e.reason for e in later_view.entitlements if e.community_id == community_id and e.reason), "ended"
        )
        out.append(PlannedRemoval(member_id, community_id, at, reason))
    return out
