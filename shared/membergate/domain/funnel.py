"""The join funnel: its steps, which page views count, and the daily counts the KPIs read (pure)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from .kpis import FunnelDay

VIEW, BOUND, CHECKOUT, PAID = "view", "bound", "checkout", "paid"
STEPS = (VIEW, BOUND, CHECKOUT, PAID)

# Crawlers, link previews and scripts announce themselves in User-Agent; a browser names itself
# Mozilla/... A request without a User-Agent is a script too. Counting them would make the
# view -> paid rate say more about chat apps unfurling the link than about the offer.
_BOT = re.compile(
    r"bot|crawl|spider|slurp|preview|facebookexternalhit|embedly|curl|wget|python|httpx|go-http|java/|okhttp|"
    r"headless|lighthouse|monitor|uptime|scan|fetch|axios|node|ruby|perl|libwww|insomnia|postman",
    re.IGNORECASE,
)
SEEN_COOKIE = "mg_seen"
# A browser that opened many join pages in a day keeps at most this many in its cookie.
_SEEN_MAX = 20


def is_bot(user_agent: str | None) -> bool:
    return not user_agent or not user_agent.startswith("Mozilla/") or bool(_BOT.search(user_agent))


def view_counts(method: str, user_agent: str | None, seen: str | None, plan_id: str, day: date) -> tuple[bool, str | None]:
    """Whether this join page view counts, and the ``mg_seen`` cookie value to set (None: unchanged).

    A browser counts once per plan per day: the cookie holds the day and the plans it was counted
    for. HEAD requests and bots never count. A browser refusing cookies counts at each view.
    """
    if method.upper() != "GET" or is_bot(user_agent):
        return False, None
    today = day.isoformat()
    day_part, _, plans_part = (seen or "").partition("~")
    plans = plans_part.split("~") if day_part == today and plans_part else []
    if plan_id in plans:
        return False, None
    plans = [*plans, plan_id][-_SEEN_MAX:]
    return True, "~".join([today, *plans])


@dataclass(frozen=True)
class FunnelCount:
    """One stored counter: how many times ``step`` happened for ``plan_id`` on ``day``."""

    plan_id: str
    day: date
    step: str
    count: int


def plan_totals(counts: Iterable[FunnelCount], start: date) -> tuple[tuple[str, FunnelDay], ...]:
    """Each plan's funnel over the period (the counts given), by plan id: the report's ``by_plan``."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STEPS, 0))
    for c in counts:
        if c.step in STEPS:
            totals[c.plan_id][c.step] += c.count
    return tuple(
        (plan_id, FunnelDay(start, views=s[VIEW], bound=s[BOUND], checkouts=s[CHECKOUT], paid=s[PAID]))
        for plan_id, s in sorted(totals.items())
    )


def funnel_days(counts: Iterable[FunnelCount], plan_id: str | None = None) -> tuple[FunnelDay, ...]:
    """The KPI engine's daily funnel, all plans summed (or one plan's)."""
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STEPS, 0))
    for c in counts:
        if c.step in STEPS and (plan_id is None or c.plan_id == plan_id):
            per_day[c.day][c.step] += c.count
    return tuple(
        FunnelDay(d, views=s[VIEW], bound=s[BOUND], checkouts=s[CHECKOUT], paid=s[PAID]) for d, s in sorted(per_day.items())
    )
