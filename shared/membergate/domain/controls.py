"""Creator controls, pure: the audit entry, manual grants (give, extend, end) and access codes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from .errors import AlreadyUndoneError, ConflictError, InvalidRequestError, UndoWindowClosedError
from .grants import SOURCE_ACCESS_CODE, SOURCE_MANUAL, OneTimeGrant
from .model import CheckoutGate, Plan, PlanKind

DAY = 86_400
REVOKED = "revoked"  # ended_reason of a grant the creator ended
MAX_DAYS = 36_500  # a hundred years: longer is "forever" (days null)


def actor_of(token: str) -> str:
    """Who acted, without the secret: the admin token's fingerprint (first 12 hex of its SHA-256)."""
    if not token:
        return "admin"
    return "token:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


@dataclass(frozen=True)
class AuditEntry:
    """One admin action: who did what to which thing, when, and why."""

    id: str
    at: int
    actor: str
    action: str  # e.g. plan.create, grant.create, member.resync
    target: str  # the id acted on (plan, community, member, grant, code, removal)
    member_id: str | None = None  # set for member actions: shown in the member's timeline
    reason: str = ""
    detail: dict[str, str] = field(default_factory=dict)


def manual_grant(grant_id: str, member_id: str, plan: Plan, days: int | None, reason: str, now: int,
                 source: str = SOURCE_MANUAL, community_id: str = "") -> OneTimeGrant:
    """A grant the creator gives: ``days`` from now, or forever with None; of one place of the
    plan with ``community_id`` (an undone removal), else of all."""
    if community_id and community_id not in {g.community_id for g in plan.grants}:
        raise InvalidRequestError(f"plan {plan.id} grants nothing in community {community_id}", field="community_id")
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise InvalidRequestError(f"days must be between 1 and {MAX_DAYS}, or null for no end", field="days")
    return OneTimeGrant(
        grant_id=grant_id,
        member_id=member_id,
        plan_id=plan.id,
        kind=PlanKind.LIFETIME if days is None else PlanKind.PASS,
        paid_at=now,
        access_seconds=None if days is None else days * DAY,
        gate=CheckoutGate.PAID,
        source=source,
        reason=reason,
        community_id=community_id,
    )


def grant_end(grant: OneTimeGrant) -> int | None:
    """When a given grant ends on its own (None: never)."""
    return None if grant.access_seconds is None else grant.paid_at + grant.access_seconds


def extend_grant(grant: OneTimeGrant, days: int, now: int) -> OneTimeGrant:
    """``days`` more, counted from its end, or from now when it already ran out (never a gap in the past)."""
    if not grant.given:
        raise ConflictError(f"grant {grant.grant_id} was paid through Stripe; give a manual grant instead of extending it")
    if grant.ended_reason:
        raise ConflictError(f"grant {grant.grant_id} was ended ({grant.ended_reason}); give a new grant instead")
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequestError(f"days must be between 1 and {MAX_DAYS}", field="days")
    end = grant_end(grant)
    if end is None:
        raise ConflictError(f"grant {grant.grant_id} has no end already; nothing to extend")
    new_end = max(end, now) + days * DAY
    return replace(grant, access_seconds=new_end - grant.paid_at)


def end_grant(grant: OneTimeGrant, now: int = 0) -> OneTimeGrant:
    """End a given grant for good (at ``now``, kept so a removal names this ending); ending twice changes nothing."""
    if not grant.given:
        raise ConflictError(
            f"grant {grant.grant_id} was paid through Stripe; refund or cancel it in Stripe to end it"
        )
    return grant if grant.ended_reason else replace(grant, ended_reason=REVOKED, ended_at=now)


# --- access codes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessCode:
    """A code a member types on the join page for a grant of ``days`` (None: forever) of ``plan_id``.

    Only the code's hash is stored (domain/tokens.token_key); ``id`` names it in grants and logs."""

    id: str
    plan_id: str
    days: int | None
    uses: int  # how many members may redeem it
    used: int
    expires_at: int | None
    created_at: int


CODE_INVALID = "code_invalid"  # unknown (or mistyped)
CODE_USED = "code_used"  # every use taken
CODE_EXPIRED = "code_expired"
CODE_OTHER_PLAN = "code_other_plan"  # a code for another offer than this join page's


def code_refusal(code: AccessCode | None, plan_id: str, now: int) -> str:
    """Why this code cannot be redeemed on ``plan_id``'s join page now; "" when it can."""
    if code is None:
        return CODE_INVALID
    if code.plan_id != plan_id:
        return CODE_OTHER_PLAN
    if code.expires_at is not None and now >= code.expires_at:
        return CODE_EXPIRED
    if code.used >= code.uses:
        return CODE_USED
    return ""


def code_grant_id(code_id: str, member_id: str) -> str:
    """One grant per (member, code): a member redeeming the same code twice uses it once."""
    return f"acg_{code_id}_{member_id}"


def code_grant(code: AccessCode, member_id: str, plan: Plan, now: int) -> OneTimeGrant:
    return manual_grant(code_grant_id(code.id, member_id), member_id, plan, code.days, f"access code {code.id}", now,
                        source=SOURCE_ACCESS_CODE)


# --- removals made and their undo -----------------------------------------------------------

UNDO_WINDOW_DAYS = 7  # default of REMOVAL_UNDO_DAYS


@dataclass(frozen=True)
class Removal:
    """Access the dispatcher took away on a platform (role removed, kick, ban, removal task)."""

    id: str
    member_id: str
    community_id: str
    platform: str
    at: int
    reason: str  # the ended entitlement's reason: grace_expired, pass_expired, refunded, dispute, revoked...
    plan_id: str | None = None  # the plan whose grant ended: an undo gives it back
    undone_at: int | None = None
    undo_grant_id: str | None = None


def removal_id(member_id: str, community_id: str, episode: int) -> str:
    """One id per access episode ended: a removal the dispatcher retries is one record."""
    digest = hashlib.sha256(f"{member_id}|{community_id}|{episode}".encode("utf-8", "surrogatepass")).hexdigest()
    return "rmv_" + digest[:20]


def undo_until(removal: Removal, window_days: int) -> int:
    return removal.at + window_days * DAY


def undo_refusal(removal: Removal, now: int, window_days: int) -> None:
    """Raise why ``removal`` cannot be undone now; return when it can."""
    if removal.undone_at is not None:
        raise AlreadyUndoneError(
            f"removal {removal.id} was already undone (grant {removal.undo_grant_id}); "
            "to change that access, extend or end that grant"
        )
    if now > undo_until(removal, window_days):
        raise UndoWindowClosedError(
            f"removal {removal.id} is older than the {window_days}-day undo window; give access with "
            f"POST /admin/members/{removal.member_id}/grants instead"
        )
    if not removal.plan_id:
        raise ConflictError(
            f"removal {removal.id} names no plan to give back; give access with "
            f"POST /admin/members/{removal.member_id}/grants instead"
        )
