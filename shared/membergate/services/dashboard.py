"""The creator's dashboard: admin sessions (login, CSRF) and what the overview shows, read through the admin services."""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from ..domain.errors import ThrottledError, UnauthorizedError
from ..domain.kpis import KpiReport, day_of
from ..domain.model import AccessState, EntitlementState, LedgerEntry, LedgerStatus
from ..ports import Stores
from . import admin
from . import kpis as kpi_service

# An admin session is a web session whose "member" is this marker: member ids are generated
# (mem_...), so no member session can ever pass for the creator's, and the store keeps only hashes.
ADMIN_MARKER = "@creator-dashboard"
ADMIN_SESSION_SECONDS = 8 * 3600  # a working day; the creator logs in again after
LOGIN_ATTEMPTS_PER_MINUTE = 10  # per source address: guessing a 192-bit token is hopeless anyway
MEMBER_PAGE_SIZE = 50
MEMBER_STATES = ("active", "grace", "pending", "ended", "none")
PLATFORMS = ("discord", "telegram", "whatsapp")
# Access failures have no index of their own: a dashboard load reads the access records of at most
# this many members (one Query each) and says so when there are more.
PROBLEM_SCAN_MEMBERS = 200
# An event still only "received" after this long is retrying or parked in the dead-letter queue
# (the same threshold as `membergate doctor`).
STUCK_AFTER_SECONDS = 3600
LEDGER_READ = 200


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
    details: admin.MemberDetails
    state: str  # the member's best entitlement state, or "none"


@dataclass(frozen=True)
class Problem:
    kind: str  # "access", "stripe_event" (failed), "stuck_event" (still only received), "removal_task"
    subject: str  # member id or event id
    what: str  # community id or event type
    reason: str
    at: int | None


# A source of problems the overview lists besides access failures and Stripe events. WhatsApp's
# removal tasks (the creator removes the member by hand: docs/whatsapp.md) plug in here once their
# service exists; today none is passed.
ProblemSource = Callable[[Stores, int], Sequence[Problem]]


@dataclass(frozen=True)
class Problems:
    items: list[Problem]
    members_checked: int
    more_members: bool  # access records beyond PROBLEM_SCAN_MEMBERS were not read


@dataclass(frozen=True)
class Overview:
    today: date
    period: KpiReport  # first shown month .. today: churn split, funnel, cohorts
    months: list[MonthPoint]


@dataclass(frozen=True)
class MemberPage:
    rows: list[MemberRow]
    next_cursor: str | None
    filters: admin.MemberFilters = field(default_factory=admin.MemberFilters)


def _month_starts(today: date, count: int) -> list[date]:
    starts = [today.replace(day=1)]
    while len(starts) < count:
        starts.append((starts[-1] - timedelta(days=1)).replace(day=1))
    return list(reversed(starts))


def state_of(details: admin.MemberDetails) -> str:
    order = (EntitlementState.ACTIVE, EntitlementState.GRACE, EntitlementState.PENDING, EntitlementState.ENDED)
    present = {e.state for e in details.entitlements}
    return next((s.value for s in order if s in present), "none")


def overview(stores: Stores, now: int, *, time_zone: str = "UTC", months: int = 6) -> Overview:
    """The KPI report of each of the last ``months`` months (the current one to date) and of them all."""
    today = day_of(now, time_zone)
    starts = _month_starts(today, months)
    # One read of the history, counters and snapshot state for the whole shown period, shared by
    # the month reports and the period's (each used to read them again: ~1,000 calls a render).
    inputs = kpi_service.read_inputs(stores, starts[0], today)
    points = []
    for start in starts:
        following = (start + timedelta(days=32)).replace(day=1)
        end = min(following - timedelta(days=1), today)
        report = kpi_service.read_kpis(stores, now, start=start, end=end, time_zone=time_zone, inputs=inputs)
        points.append(MonthPoint(start.strftime("%Y-%m"), report))
    period = kpi_service.read_kpis(stores, now, start=starts[0], end=today, time_zone=time_zone, inputs=inputs)
    return Overview(today, period, points)


def member_page(stores: Stores, now: int, *, cursor: str | None, filters: admin.MemberFilters) -> MemberPage:
    """One page of the member list, as GET /admin/members answers it (same service, same filters)."""
    if filters.search:
        found, next_cursor = admin.search_member_page(stores, filters.search, now, limit=MEMBER_PAGE_SIZE, cursor=cursor)
        found = [d for d in found if admin.member_matches(d, filters)]
    else:
        found, next_cursor = admin.list_members(stores, now=now, limit=MEMBER_PAGE_SIZE, cursor=cursor, filters=filters)
    return MemberPage([MemberRow(d, state_of(d)) for d in found], next_cursor, filters)


def problems(stores: Stores, now: int, sources: Sequence[ProblemSource] = ()) -> Problems:
    """What needs the creator: access that failed (with its reason), Stripe events that failed or are stuck."""
    items: list[Problem] = []
    members, after = stores.members.page(PROBLEM_SCAN_MEMBERS, None)
    for member in members:
        for record in stores.access.for_member(member.id):
            if record.state is AccessState.FAILED:
                items.append(Problem("access", member.id, record.community_id, record.reason or "failed", record.updated_at))
    for entry in stores.ledger.recent(now, LEDGER_READ):
        if entry.status == LedgerStatus.FAILED:
            items.append(_event_problem("stripe_event", entry))
        elif entry.status in (LedgerStatus.RECEIVED, LedgerStatus.ACCESS_UNSENT) and now - entry.received_at > STUCK_AFTER_SECONDS:
            items.append(_event_problem("stuck_event", entry))
    for source in sources:
        items += source(stores, now)
    items.sort(key=lambda p: -(p.at or 0))
    return Problems(items, len(members), after is not None)


def _event_problem(kind: str, entry: LedgerEntry) -> Problem:
    return Problem(kind, entry.event_id, entry.type, entry.detail or entry.status, entry.received_at)
