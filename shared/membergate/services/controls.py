"""Creator controls: the audit log, manual grants and access codes, over the ports."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from ..domain.controls import (
    AccessCode,
    AuditEntry,
    code_grant,
    code_grant_id,
    code_refusal,
    end_grant,
    extend_grant,
    manual_grant,
)
from ..domain.errors import ConcurrentUpdateError, InvalidRequestError, NotFoundError
from ..domain.grants import OneTimeGrant
from ..domain.model import Plan
from ..domain.tokens import token_key
from ..ports import AccessCodeStore, AccessWorkQueue, AuditLog, GivenGrantIndex, Stores
from .membership import refresh_member

log = logging.getLogger(__name__)
REFRESH_ATTEMPTS = 5


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _audit_log(stores: Stores) -> AuditLog:
    if stores.audit is None:  # bootstrap always builds it; a missing one is a wiring bug
        raise RuntimeError("no audit log wired into Stores")
    return stores.audit


def _index(stores: Stores) -> GivenGrantIndex:
    if stores.given_grants is None:
        raise RuntimeError("no given-grant index wired into Stores")
    return stores.given_grants


def _codes(stores: Stores) -> AccessCodeStore:
    if stores.access_codes is None:
        raise RuntimeError("no access-code store wired into Stores")
    return stores.access_codes


def audit(
    stores: Stores,
    *,
    actor: str,
    action: str,
    target: str,
    now: int,
    member_id: str | None = None,
    reason: str = "",
    detail: dict[str, str] | None = None,
) -> AuditEntry:
    """Record one admin action (who, when, what, why)."""
    # Ids sort by when they were made, so actions within one business second list in order.
    entry = AuditEntry(f"aud_{time.time_ns():x}{secrets.token_hex(3)}", now, actor, action, target, member_id, reason, dict(detail or {}))
    _audit_log(stores).record(entry)
    log.info("admin action", extra={"action": action, "target": target, "actor": actor, "member_id": member_id})
    return entry


def audit_page(
    stores: Stores, *, since: int, now: int, limit: int, cursor: str | None
) -> tuple[list[AuditEntry], str | None]:
    after = _parse_cursor(cursor) if cursor else None
    entries, position = _audit_log(stores).page(since, now, limit, after)
    return entries, (f"{position[0]}-{position[1]}" if position else None)


def _parse_cursor(cursor: str) -> tuple[int, str]:
    at, _, audit_id = cursor.partition("-")
    if not at.isdigit() or not audit_id:
        raise InvalidRequestError("cursor: give the next_cursor of the previous page, unchanged", field="cursor")
    return int(at), audit_id


def _refresh(stores: Stores, queue: AccessWorkQueue, member_id: str, now: int) -> None:
    # The projection is written optimistically: a billing event landing at the same moment makes
    # this derivation lose; deriving again from what is stored then includes both.
    for attempt in range(REFRESH_ATTEMPTS):
        try:
            refresh_member(stores, queue, member_id, now, sweep_now=False)
            return
        except ConcurrentUpdateError:
            if attempt == REFRESH_ATTEMPTS - 1:
                raise


def _plan(stores: Stores, plan_id: str) -> Plan:
    plan = stores.catalog.get_plan(plan_id)
    if plan is None:
        raise NotFoundError(f"plan {plan_id} does not exist; list them with GET /admin/plans")
    return plan


# --- manual grants --------------------------------------------------------------------------


def give_grant(
    stores: Stores, queue: AccessWorkQueue, *, member_id: str, plan_id: str, days: int | None, reason: str,
    actor: str, now: int, grant_id: str | None = None, community_id: str = "",
) -> OneTimeGrant:
    """A grant of ``plan_id`` for ``days`` (None: no end), one more source in the member's union;
    of the plan's place ``community_id`` only when given."""
    if stores.members.get(member_id) is None:
        raise NotFoundError(f"member {member_id} does not exist; list members with GET /admin/members")
    plan = _plan(stores, plan_id)
    grant = manual_grant(grant_id or _new_id("mgr"), member_id, plan, days, reason, now, community_id=community_id)
    _index(stores).index_grant(grant.grant_id, member_id)
    stores.grants.save(grant)
    _refresh(stores, queue, member_id, now)
    audit(stores, actor=actor, action="grant.create", target=grant.grant_id, now=now, member_id=member_id,
          reason=reason, detail={"plan_id": plan_id, "days": "forever" if days is None else str(days)})
    return grant


def find_given_grant(stores: Stores, grant_id: str) -> OneTimeGrant:
    member_id = _index(stores).member_for_grant(grant_id)
    grant = stores.grants.get(member_id, grant_id) if member_id else None
    if grant is None:
        raise NotFoundError(
            f"grant {grant_id} does not exist; use the id POST /admin/members/{{id}}/grants answered "
            "(also the target of its grant.create entry in GET /admin/audit)"
        )
    return grant


def extend(
    stores: Stores, queue: AccessWorkQueue, *, grant_id: str, days: int, reason: str, actor: str, now: int
) -> OneTimeGrant:
    grant = find_given_grant(stores, grant_id)
    extended = extend_grant(grant, days, now)
    stores.grants.save(extended)
    _refresh(stores, queue, grant.member_id, now)
    audit(stores, actor=actor, action="grant.extend", target=grant_id, now=now, member_id=grant.member_id,
          reason=reason, detail={"days": str(days)})
    return extended


def revoke(
    stores: Stores, queue: AccessWorkQueue, *, grant_id: str, reason: str, actor: str, now: int
) -> OneTimeGrant:
    """End a given grant; access another grant still gives stays (the union is derived again)."""
    grant = find_given_grant(stores, grant_id)
    ended = end_grant(grant, now)
    if ended != grant:
        stores.grants.save(ended)
        _refresh(stores, queue, grant.member_id, now)
    audit(stores, actor=actor, action="grant.end", target=grant_id, now=now, member_id=grant.member_id, reason=reason)
    return ended


def grant_window(grant: OneTimeGrant) -> tuple[int, int | None]:
    return grant.paid_at, (None if grant.access_seconds is None else grant.paid_at + grant.access_seconds)


# --- access codes ---------------------------------------------------------------------------

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
CODE_LENGTH = 12  # 60 bits: unguessable behind the join page's throttle


def normalise_code(typed: str) -> str:
    """What the member typed, as stored: case, spaces and dashes do not matter."""
    return "".join(ch for ch in typed.upper() if ch.isascii() and ch.isalnum())


def create_code(
    stores: Stores, *, plan_id: str, days: int | None, uses: int, expires_at: int | None, actor: str, now: int
) -> tuple[str, AccessCode]:
    """A new code (returned once, stored only as its hash) for ``uses`` members."""
    plan = stores.catalog.get_plan(plan_id)
    if plan is None:
        raise InvalidRequestError(f"plan {plan_id} does not exist; list them with GET /admin/plans", field="plan_id")
    if plan.archived_at is not None:
        raise InvalidRequestError(f"plan {plan_id} is archived; codes can only give a plan on sale", field="plan_id")
    if expires_at is not None and expires_at <= now:
        raise InvalidRequestError("expires_at is in the past; give a later time or null", field="expires_at")
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    code = AccessCode(_new_id("acc"), plan_id, days, uses, 0, expires_at, now)
    _codes(stores).add(token_key(raw), code)
    audit(stores, actor=actor, action="access_code.create", target=code.id, now=now,
          detail={"plan_id": plan_id, "days": "forever" if days is None else str(days), "uses": str(uses)})
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4)), code


@dataclass(frozen=True)
class Redemption:
    refusal: str  # "" when redeemed (see domain/controls.py CODE_*)
    grant: OneTimeGrant | None = None


def redeem_code(
    stores: Stores, queue: AccessWorkQueue, *, typed: str, plan_id: str, member_id: str, now: int
) -> Redemption:
    """Redeem on the join page: one use counted atomically, one grant per (member, code)."""
    key = token_key(normalise_code(typed))
    codes = _codes(stores)
    code = codes.find(key) if normalise_code(typed) else None
    refusal = code_refusal(code, plan_id, now)
    if code is not None and refusal in ("", "code_used"):
        already = stores.grants.get(member_id, code_grant_id(code.id, member_id))
        if already is not None:  # the same member again (a double submit): no second use
            return Redemption("", already)
    if refusal or code is None:
        return Redemption(refusal)
    if not codes.take_use(key, now):
        # Another member took the last use (or it expired) between the read and the write.
        fresh = codes.find(key)
        return Redemption(code_refusal(fresh, plan_id, now) or "code_used")
    plan = _plan(stores, plan_id)
    grant = code_grant(code, member_id, plan, now)
    try:
        _index(stores).index_grant(grant.grant_id, member_id)
        stores.grants.save(grant)
    except Exception:
        codes.give_back_use(key)
        raise
    _refresh(stores, queue, member_id, now)
    audit(stores, actor="member", action="access_code.redeem", target=code.id, now=now, member_id=member_id,
          detail={"plan_id": plan_id, "grant_id": grant.grant_id})
    return Redemption("", grant)
