"""Count the join funnel's steps (view, identity bound, checkout started, paid) per plan and day."""

from __future__ import annotations

import logging

from ..domain.funnel import view_counts
from ..ports import Stores

log = logging.getLogger(__name__)


def count_step(stores: Stores, plan_id: str | None, step: str, at: int) -> None:
    """Add one to ``step`` for ``plan_id`` on ``at``'s day. A counter that cannot be written is
    logged and skipped: the member's join, checkout or payment never fails for a statistic."""
    if stores.funnel is None or not plan_id:
        return
    try:
        stores.funnel.count(plan_id, step, at)
    except Exception:
        log.warning("funnel counter not written", extra={"plan_id": plan_id, "step": step}, exc_info=True)


def count_view(stores: Stores, plan_id: str, *, method: str, user_agent: str | None, seen: str | None, now: int) -> str | None:
    """Count a join page view once per browser and day (bots and HEAD never); return the
    ``mg_seen`` cookie value to set, or None when it stays as it is."""
    if stores.funnel is None:
        return None
    counts, cookie = view_counts(method, user_agent, seen, plan_id, stores.funnel.day_of(now))
    if counts:
        count_step(stores, plan_id, "view", now)
    return cookie
