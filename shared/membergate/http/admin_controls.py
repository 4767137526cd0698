"""Admin API routes for creator controls: the audit log, manual grants, access codes, removals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, BeforeValidator, Field

from ..domain.controls import AuditEntry, Removal, actor_of, undo_until
from ..domain.errors import InvalidRequestError
from ..domain.grants import OneTimeGrant
from ..domain.links import Links
from ..services import controls, removals
from .edge import ADMIN_BODY_LIMIT, ID_PATTERN, body_text, raw_body, require_id
from .resolver import iso
from .schemas import NAME_PATTERN, _Strict

MAX_EPOCH = 32_503_680_000  # year 3000: later is a typo, not a date


def _integral(value: object) -> object:
    # JSON Schema's "integer" includes 5.0: take it, still refusing "5" and 5.5 (strict types).
    return int(value) if isinstance(value, float) and value.is_integer() else value


Days = Annotated[int, Field(ge=1, le=36_500), BeforeValidator(_integral)]
Uses = Annotated[int, Field(ge=1, le=100_000), BeforeValidator(_integral)]
Epoch = Annotated[int, Field(ge=0, le=MAX_EPOCH), BeforeValidator(_integral)]
REASON = Field(min_length=1, max_length=500, pattern=NAME_PATTERN, description="why, kept in the audit log")


class ManualGrantIn(_Strict):
    plan_id: str = Field(pattern=ID_PATTERN)
    days: Days | None = Field(description="how long from now; null for no end")
    reason: str = REASON


class ExtendIn(_Strict):
    days: Days = Field(description="added to the grant's end (or to now if it already ran out)")
    reason: str = REASON


class EndGrantIn(_Strict):
    reason: str = REASON


class GrantDetailOut(BaseModel):
    id: str
    member_id: str
    plan_id: str
    source: str = Field(description="manual, access_code, or checkout (paid through Stripe)")
    starts_at: str
    until: str | None = Field(description="when it ends on its own; null for no end")
    ended_reason: str | None = Field(description="revoked when the creator ended it; null while it may give access")
    reason: str | None


class AccessCodeIn(_Strict):
    plan_id: str = Field(pattern=ID_PATTERN)
    days: Days | None = Field(description="access each redemption gives; null for no end")
    uses: Uses = Field(default=1, description="how many members may redeem it")
    expires_at: Epoch | None = Field(default=None, description="epoch seconds after which it is refused")


class AccessCodeOut(BaseModel):
    code: str = Field(description="give it to the member; it is shown once (only its hash is stored)")
    id: str
    plan_id: str
    days: int | None
    uses: int
    expires_at: str | None


class AuditEntryOut(BaseModel):
    id: str
    at: str
    actor: str = Field(description="who: the admin token's fingerprint (token:<12 hex>), or member for a redemption")
    action: str
    target: str
    member_id: str | None
    reason: str | None
    detail: dict[str, str]


class AuditOut(BaseModel):
    entries: list[AuditEntryOut] = Field(description="oldest first")
    next_cursor: str | None = Field(description="pass it as cursor for the next page; null at the end")


class PlannedRemovalOut(BaseModel):
    member_id: str
    community_id: str
    at: str | None = Field(description="when access ends (ISO 8601, UTC)")
    reason: str = Field(description="why, as the entitlement will say then: grace_expired, pass_expired, cancelled_at_period_end, grant_expired...")


class RemovalPreviewOut(BaseModel):
    until: str
    removals: list[PlannedRemovalOut] = Field(description="soonest first")
    complete: bool = Field(description="false when more members were due than one preview reads; narrow 'until'")


class RemovalOut(BaseModel):
    id: str
    member_id: str
    community_id: str
    platform: str = Field(description="discord, telegram or whatsapp")
    at: str = Field(description="when access was taken away (ISO 8601, UTC)")
    reason: str = Field(description="the ended entitlement's reason: grace_expired, pass_expired, refunded, dispute, revoked...")
    plan_id: str | None = Field(description="the plan whose grant ended; an undo gives it back")
    undo_until: str = Field(description="the last moment POST /admin/removals/{id}/undo is taken")
    undone_at: str | None = Field(description="when it was undone; null if not")
    undo_grant_id: str | None = Field(description="the manual grant the undo gave")


class RemovalsOut(BaseModel):
    removals: list[RemovalOut] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass it as cursor for the next page; null at the end")


class UndoIn(_Strict):
    reason: str = REASON
    days: Days | None = Field(
        default=None,
        description="how long the restored access lasts; absent: the undo window (REMOVAL_UNDO_DAYS, time for the "
                    "member to pay again); null, given explicitly: no end (free access for good)",
    )
    every_place: bool = Field(
        default=False, description="true: give back every place of the plan; false (default): only the place removed")


class UndoOut(BaseModel):
    removal: RemovalOut
    grant: GrantDetailOut
    billing_restarted: bool = Field(
        default=False, description="always false: an undo gives access, it never restarts a Stripe subscription")
    next_step: str = Field(description="what the member must do to keep access after the grant, with their join link")


def removal_out(removal: Removal, window_days: int) -> RemovalOut:
    return RemovalOut(
        id=removal.id, member_id=removal.member_id, community_id=removal.community_id, platform=removal.platform,
        at=iso(removal.at) or "", reason=removal.reason, plan_id=removal.plan_id,
        undo_until=iso(undo_until(removal, window_days)) or "", undone_at=iso(removal.undone_at),
        undo_grant_id=removal.undo_grant_id,
    )


# What became of billing, by the removal's reason family (the removal record's reason).
_NO_SUBSCRIPTION = frozenset({"pass_expired", "grant_expired", "revoked", "customer_deleted", "erased", "ended"})
_FAILED_PAYMENT = frozenset({"grace_expired", "payment_failed", "unpaid"})


def _billing_after(reason: str) -> str:
    """What billing looks like after a removal for ``reason``, said to the creator."""
    if reason in _NO_SUBSCRIPTION:
        return (f"there is no subscription to restart: the access removed ({reason}) came from a pass, a grant "
                "you gave, an access code or a migration, never billed again")
    if reason in _FAILED_PAYMENT:
        return (f"the member's Stripe subscription stays as it is ({reason}: cancelled or unpaid after a failed "
                "payment)")
    if reason == "refunded":
        return "the payment was refunded and stays refunded; nothing is charged again"
    if reason == "dispute":
        return ("the payment is disputed (or the dispute was lost); nothing is charged again: answer the dispute "
                "in the Stripe Dashboard")
    return f"the member's Stripe subscription stays as it is ({reason}: cancelled, nothing is charged)"


def undo_next_step(reason: str, until: str | None, grant_id: str, join_url: str) -> str:
    """The undo's answer: billing did not restart (said by the removal's reason), and what the member
    does to keep access."""
    billing = f"Billing was not restarted: {_billing_after(reason or 'ended')}."
    if until is None:
        return (f"{billing} Access is given back with no end and nothing is charged; end it with "
                f"DELETE /admin/grants/{grant_id} once the member pays again.")
    return (f"{billing} Access is back until {until} (grant {grant_id}); to keep it after that, the member pays "
            f"on the join page: {join_url}")


def grant_detail(grant: OneTimeGrant) -> GrantDetailOut:
    start, end = controls.grant_window(grant)
    return GrantDetailOut(
        id=grant.grant_id, member_id=grant.member_id, plan_id=grant.plan_id, source=grant.source,
        starts_at=iso(start) or "", until=iso(end), ended_reason=grant.ended_reason or None, reason=grant.reason or None,
    )


def audit_entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id, at=iso(entry.at) or "", actor=entry.actor, action=entry.action, target=entry.target,
        member_id=entry.member_id, reason=entry.reason or None, detail=entry.detail,
    )


def actor(app: APIGatewayHttpResolver) -> str:
    """The acting token's fingerprint (the bearer gate already checked it)."""
    headers = app.current_event.headers or {}
    header = next((str(v) for k, v in headers.items() if str(k).lower() == "authorization"), "")
    return actor_of(header.partition(" ")[2].strip(" \t"))


def add_control_routes(
    app: APIGatewayHttpResolver,
    *,
    stores_factory: Callable[[], Any],
    queue_factory: Callable[[], Any],
    now: Callable[[], int],
    undo_days: Callable[[], int] = lambda: 7,
    public_base_url: Callable[[], str] = lambda: "",
) -> None:
    @app.get("/admin/audit")
    def audit_log(
        since: Annotated[int | None, Query(ge=0, le=MAX_EPOCH, description="epoch seconds (default: 30 days ago)")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,11}-[A-Za-z0-9_~]{1,64}$", description="next_cursor of the previous page")] = None,
    ) -> AuditOut:
        moment = now()
        start = moment - 30 * 86_400 if since is None else since
        entries, next_cursor = controls.audit_page(stores_factory(), since=start, now=moment, limit=limit, cursor=cursor)
        return AuditOut(entries=[audit_entry_out(e) for e in entries], next_cursor=next_cursor)

    @app.get("/admin/removals/preview")
    def removals_preview(
        until: Annotated[int, Query(ge=0, le=MAX_EPOCH, description="epoch seconds: removals the sweep would make by then")],
    ) -> RemovalPreviewOut:
        planned, complete = removals.preview(stores_factory(), now(), until)
        return RemovalPreviewOut(
            until=iso(until) or "",
            removals=[PlannedRemovalOut(member_id=r.member_id, community_id=r.community_id, at=iso(r.at), reason=r.reason)
                      for r in planned],
            complete=complete,
        )

    @app.get("/admin/removals")
    def removals_made(
        since: Annotated[int | None, Query(ge=0, le=MAX_EPOCH, description="epoch seconds (default: 30 days ago)")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,11}-[A-Za-z0-9_]{0,64}$", description="next_cursor of the previous page")] = None,
    ) -> RemovalsOut:
        moment = now()
        start = moment - 30 * 86_400 if since is None else since
        made, next_cursor = removals.made(stores_factory(), since=start, now=moment, limit=limit, cursor=cursor)
        window = undo_days()
        return RemovalsOut(removals=[removal_out(r, window) for r in made], next_cursor=next_cursor)

    @app.post("/admin/removals/<removal_id>/undo")
    def undo_removal(removal_id: str, body: UndoIn) -> UndoOut:
        require_id(removal_id, "removal_id")
        window = undo_days()
        # Absent: the window's length (a removal undone by mistake gives the member time to pay
        # again); only an explicit null gives access with no end.
        days = body.days if "days" in body.model_fields_set else max(window, 1)
        removal, grant = removals.undo(
            stores_factory(), queue_factory(), removal_id=removal_id, reason=body.reason, days=days,
            actor=actor(app), now=now(), window_days=window, every_place=body.every_place,
        )
        detail = grant_detail(grant)
        return UndoOut(removal=removal_out(removal, window), grant=detail,
                       next_step=undo_next_step(removal.reason, detail.until, grant.grant_id,
                                                 Links(public_base_url()).join(grant.plan_id)))

    @app.post("/admin/members/<member_id>/grants", responses={201: {"description": "created"}})
    def give_grant(member_id: str, body: ManualGrantIn) -> Response[GrantDetailOut]:
        require_id(member_id, "member_id")
        grant = controls.give_grant(
            stores_factory(), queue_factory(), member_id=member_id, plan_id=body.plan_id, days=body.days,
            reason=body.reason, actor=actor(app), now=now(),
        )
        return Response(201, "application/json", grant_detail(grant))

    @app.post("/admin/grants/<grant_id>/extend")
    def extend_grant(grant_id: str, body: ExtendIn) -> GrantDetailOut:
        require_id(grant_id, "grant_id")
        grant = controls.extend(
            stores_factory(), queue_factory(), grant_id=grant_id, days=body.days, reason=body.reason,
            actor=actor(app), now=now(),
        )
        return grant_detail(grant)

    @app.delete("/admin/grants/<grant_id>")
    def end_grant(
        grant_id: str,
        reason: Annotated[str | None, Query(min_length=1, max_length=500, pattern=NAME_PATTERN, description="why (or in the body)")] = None,
    ) -> GrantDetailOut:
        require_id(grant_id, "grant_id")
        why = reason or _body_reason(app)
        grant = controls.revoke(stores_factory(), queue_factory(), grant_id=grant_id, reason=why, actor=actor(app), now=now())
        return grant_detail(grant)

    @app.post("/admin/access-codes", responses={201: {"description": "created"}})
    def create_access_code(body: AccessCodeIn) -> Response[AccessCodeOut]:
        raw, code = controls.create_code(
            stores_factory(), plan_id=body.plan_id, days=body.days, uses=body.uses, expires_at=body.expires_at,
            actor=actor(app), now=now(),
        )
        out = AccessCodeOut(code=raw, id=code.id, plan_id=code.plan_id, days=code.days, uses=code.uses,
                            expires_at=iso(code.expires_at))
        return Response(201, "application/json", out)


def _body_reason(app: APIGatewayHttpResolver) -> str:
    """The reason from a JSON body {"reason"} (DELETE bodies are optional, so validated here)."""
    body = body_text(raw_body(app.current_event.raw_event, ADMIN_BODY_LIMIT))
    if not body:
        raise InvalidRequestError("say why: ?reason=… or a JSON body {\"reason\": …}", field="reason")
    try:
        parsed = EndGrantIn.model_validate_json(body)
    except ValueError:
        raise InvalidRequestError("body: {\"reason\": \"<why, 1-500 characters>\"}", field="reason") from None
    return parsed.reason
