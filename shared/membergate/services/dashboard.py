"""The creator's dashboard: admin sessions (login, CSRF) and what the overview shows, read from the stores."""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets
from dataclasses import dataclass, field
from datetime import date, timedelta

from ..domain.errors import ThrottledError, UnauthorizedError
from ..domain.kpis import KpiReport, day_of
from ..domain.model import AccessRecord, AccessState, Entitlement, EntitlementState, LedgerEntry, Member
from ..ports import Stores
from . import kpis as kpi_service
from .membership import current_view

# An admin session is a web session whose "member" is this marker: member ids are generated
# (mem_...), so no member session can ever pass for the creator's, and the store keeps only hashes.
ADMIN_MARKER = "@creator-dashboard"
ADMIN_SESSION_SECONDS = 8 * 3600  # a working day; the creator logs in again after
LOGIN_ATTEMPTS_PER_MINUTE = 10  # per source address: guessing a 192-bit token is hopeless anyway
MEMBER_LIST_LIMIT = 200
MEMBER_STATES = ("active", "grace", "pending", "ended")


def _token_equal(given: str, expected: str) -> bool:
    if not given.isascii() or not expected.isascii() or not expected:
        return False
    return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))


def open_admin_session(stores: Stores, given_token: str, admin_token: str, now: int, source: str) -> str:
    """Check the admin token typed in the login form and open a session; return its id (the cookie)."""
    window = now - now % 60
    address = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    if stores.sessions.hit(f"dashboard-login#{address}", window, window + 120) > LOGIN_ATTEMPTS_PER_MINUTE:
        raise ThrottledError("too many login attempts from this address: wait a minute, then try again", 60)
    if not _token_equal(given_token.strip(), admin_token):
        raise UnauthorizedError("that is not the admin token: paste the value of the ADMIN_TOKEN secret")
    session_id = _secrets.token_urlsafe(24)
    stores.sessions.create_session(session_id, now + ADMIN_SESSION_SECONDS)
    stores.sessions.set_session_member(session_id, ADMIN_MARKER)
    return session_id


def is_admin_session(stores: Stores, session_id: str | None, now: int) -> bool:
    if not session_id:
        return False
    session = stores.sessions.get_session(session_id, now)
    return session is not None and session.member_id == ADMIN_MARKER


def close_admin_session(stores: Stores, session_id: str) -> None:
    stores.sessions.delete_session(session_id)


def csrf_token(admin_token: str, session_id: str) -> str:
    """Per session, derived (nothing more to store): a forged form from another site cannot know it."""
    key = admin_token.encode("utf-8", "surrogatepass")
    return hmac.new(key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(admin_token: str, session_id: str, given: str) -> bool:
    return _token_equal(given, csrf_token(admin_token, session_id))


@dataclass(frozen=True)
class MonthPoint:
    month: str  # YYYY-MM
    report: KpiReport


@dataclass(frozen=True)
class MemberRow:
    member: Member
    state: str  # the member's best entitlement state, or "none"
    plan_ids: tuple[str, ...]
    entitlements: list[Entitlement]
    access: list[AccessRecord]


@dataclass(frozen=True)
class Problem:
    kind: str  # "access" or "stripe_event"
    subject: str  # member id or event id
    what: str  # community id or event type
    reason: str
    at: int | None


@dataclass(frozen=True)
class Overview:
    today: date
    period: KpiReport  # first shown month .. today: churn split, funnel, cohorts
    months: list[MonthPoint]
    members: list[MemberRow]
    states: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    members_truncated: bool = False


def _month_starts(today: date, count: int) -> list[date]:
    starts = [today.replace(day=1)]
    while len(starts) < count:
        starts.append((starts[-1] - timedelta(days=1)).replace(day=1))
    return list(reversed(starts))


def _state_of(entitlements: list[Entitlement]) -> str:
    order = (EntitlementState.ACTIVE, EntitlementState.GRACE, EntitlementState.PENDING, EntitlementState.ENDED)
    present = {e.state for e in entitlements}
    return next((s.value for s in order if s in present), "none")


def member_rows(stores: Stores, now: int) -> list[MemberRow]:
    """Every member with a subscription, newest first (a read of the subscription index; no Scan)."""
    seen: dict[str, set[str]] = {}
    for record in stores.subscriptions.all_records():
        seen.setdefault(record.member_id, set()).add(record.plan_id)
    rows: list[MemberRow] = []
    for member_id, plan_ids in seen.items():
        member = stores.members.get(member_id)
        if member is None:
            continue
        view = current_view(stores, member_id, now)
        rows.append(MemberRow(member, _state_of(view.entitlements), tuple(sorted(plan_ids)), view.entitlements,
                              stores.access.for_member(member_id)))
    rows.sort(key=lambda r: (-r.member.created_at, r.member.id))
    return rows


def overview(
    stores: Stores, now: int, *, time_zone: str = "UTC", months: int = 6, state: str | None = None,
    plan_id: str | None = None,
) -> Overview:
    today = day_of(now, time_zone)
    starts = _month_starts(today, months)
    points = []
    for start in starts:
        following = (start + timedelta(days=32)).replace(day=1)
        end = min(following - timedelta(days=1), today)
        points.append(MonthPoint(start.strftime("%Y-%m"), kpi_service.read_kpis(stores, now, start=start, end=end, time_zone=time_zone)))
    period = kpi_service.read_kpis(stores, now, start=starts[0], end=today, time_zone=time_zone)
    rows = member_rows(stores, now)
    states = {s: 0 for s in MEMBER_STATES}
    for row in rows:
        states[row.state] = states.get(row.state, 0) + 1
    problems = [
        Problem("access", row.member.id, a.community_id, a.reason or a.state.value, a.updated_at)
        for row in rows for a in row.access if a.state is AccessState.FAILED
    ]
    problems += [_event_problem(e) for e in stores.ledger.recent(now, 50) if e.status == "failed"]
    shown = [r for r in rows if (not state or r.state == state) and (not plan_id or plan_id in r.plan_ids)]
    return Overview(today, period, points, shown[:MEMBER_LIST_LIMIT], states, problems,
                    len(shown) > MEMBER_LIST_LIMIT)


def _event_problem(entry: LedgerEntry) -> Problem:
    return Problem("stripe_event", entry.event_id, entry.type, entry.detail or "failed", entry.received_at)
