"""The creator's admin API: routes, bearer auth and the OpenAPI document, over the admin services."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from ..domain.errors import UnauthorizedError
from ..domain.links import Links
from ..domain.model import AccessRecord, Community, Entitlement, Member, MessageRecord, Plan
from ..services import admin
from ..services import kpis as kpi_service
from ..services.identity import create_claim_link
from . import dashboard
from .edge import ADMIN_BODY_LIMIT, FORM, ID_PATTERN, JSON, ascii_equal, guard_body, require_id
from .resolver import iso, make_resolver
from .schemas import (
    AccessOut,
    ClaimLinkOut,
    CommunitiesOut,
    CommunityIn,
    CommunityOut,
    EntitlementOut,
    ErrorOut,
    EventsOut,
    GrantOut,
    IdentityOut,
    MessageOut,
    KpisOut,
    LedgerEntryOut,
    MemberOut,
    MembersOut,
    PlanIn,
    PlanOut,
    PlansOut,
    ResyncOut,
    SNOWFLAKE,
)

OPENAPI_PATH = "/admin/openapi.json"
DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
API_TITLE = "Membergate admin API"
API_VERSION = "1"


def build_admin_app(
    *,
    stores_factory: Callable[[], Any],
    queue_factory: Callable[[], Any],
    admin_token: Callable[[], str],
    now: Callable[[], int],
    public_base_url: Callable[[APIGatewayHttpResolver], str],
    time_zone: Callable[[], str] = lambda: "UTC",  # the creator's time zone for KPI days
) -> APIGatewayHttpResolver:
    def require_admin(event: Mapping[str, Any]) -> None:
        # Before routing, validation and 404/405: without the token nothing about the API leaks.
        if _path(event) == OPENAPI_PATH or _path(event) in dashboard.PATHS:
            return  # the dashboard's pages check their own session cookie (a browser sends no bearer)
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        header = str(headers.get("authorization") or "")
        # ASCII first: str.strip() would eat a trailing U+00A0 and let a forged header match.
        scheme, _, token = (header if header.isascii() else "").partition(" ")
        token = token.strip(" \t")
        if scheme.lower() != "bearer" or not token or not ascii_equal(token, admin_token()):
            raise UnauthorizedError("send 'Authorization: Bearer <admin token>' (the value of the ADMIN_TOKEN secret)")

    def bounded_body(event: Mapping[str, Any]) -> None:
        guard_body(event, ADMIN_BODY_LIMIT, (FORM,) if _path(event) in dashboard.PATHS else (JSON,))

    app = make_resolver(
        enable_validation=True,
        gates=[require_admin, bounded_body],
        not_found_message="no such route; see /admin/openapi.json for the admin API",
    )

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi():
        return Response(200, "application/json", admin_openapi_json(app))

    @app.post("/admin/communities", responses={201: {"description": "created"}})
    def create_community(body: CommunityIn) -> Response[CommunityOut]:
        community = admin.create_community(stores_factory(), now=now(), **body.model_dump())
        return Response(201, "application/json", community_out(community))

    @app.get("/admin/communities")
    def list_communities() -> CommunitiesOut:
        return CommunitiesOut(communities=[community_out(c) for c in stores_factory().catalog.list_communities()])

    @app.post("/admin/plans", responses={201: {"description": "created"}})
    def create_plan(body: PlanIn) -> Response[PlanOut]:
        plan = admin.create_plan(
            stores_factory(),
            name=body.name,
            stripe_price_ids=body.stripe_price_ids,
            grants=[(g.community_id, g.role_id) for g in body.grants],
            grace_days=body.grace_days,
            on_grace_end=body.on_grace_end,
            kind=body.kind,
            access_days=body.access_days,
            now=now(),
        )
        return Response(201, "application/json", plan_out(plan, public_base_url(app)))

    @app.get("/admin/plans")
    def list_plans() -> PlansOut:
        base = public_base_url(app)
        return PlansOut(plans=[plan_out(p, base) for p in stores_factory().catalog.list_plans()])

    @app.get("/admin/members")
    def find_members(
        # Bounded: each becomes a DynamoDB key, and DynamoDB refuses (500) keys over 2 KB.
        stripe_customer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        discord_user_id: Annotated[str | None, Query(pattern=SNOWFLAKE)] = None,
        member_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        telegram_user_id: Annotated[str | None, Query(pattern=r"^-?[0-9]{1,20}$")] = None,
        whatsapp_phone: Annotated[str | None, Query(pattern=r"^\+?[0-9]{6,15}$")] = None,
    ) -> MembersOut:
        found = admin.find_members(
            stores_factory(),
            now=now(),
            stripe_customer_id=stripe_customer_id,
            discord_user_id=discord_user_id,
            member_id=member_id,
            telegram_user_id=telegram_user_id,
            whatsapp_phone=whatsapp_phone,
        )
        return MembersOut(members=[member_out(d.member, d.entitlements, d.access, d.messages) for d in found])

    @app.post("/admin/members/<member_id>/claim-link", responses={201: {"description": "created"}})
    def claim_link(member_id: str) -> Response[ClaimLinkOut]:
        require_id(member_id, "member_id")
        link = create_claim_link(stores_factory(), member_id, now())
        out = ClaimLinkOut(member_id=member_id, claim_url=Links(public_base_url(app)).claim(link.token),
                           expires_at=iso(link.expires_at) or "")
        return Response(201, "application/json", out)

    @app.post("/admin/members/<member_id>/resync", responses={202: {"description": "queued"}})
    def resync(member_id: str) -> Response[ResyncOut]:
        require_id(member_id, "member_id")
        communities = admin.resync_member(stores_factory(), queue_factory(), member_id, now())
        return Response(202, "application/json", ResyncOut(member_id=member_id, communities=communities))

    @app.get("/admin/kpis")
    def kpis(
        from_: Annotated[str | None, Query(alias="from", pattern=DAY_PATTERN, description="first day, YYYY-MM-DD (default: the 1st of the month of 'to')")] = None,
        to: Annotated[str | None, Query(pattern=DAY_PATTERN, description="last day, YYYY-MM-DD, inclusive (default: today)")] = None,
    ) -> KpisOut:
        moment = now()
        stores = stores_factory()
        k = admin.compute_kpis(stores, moment)
        report = kpi_service.read_kpis(
            stores,
            moment,
            start=kpi_service.parse_day(from_, "from"),
            end=kpi_service.parse_day(to, "to"),
            time_zone=time_zone(),
        ).as_dict()
        period = {"period_start": report.pop("from"), "period_end": report.pop("to")}
        return KpisOut(
            active_paying_members=k.paying_members,
            members_in_grace=k.members_in_grace,
            members_with_access=k.members_with_access,
            as_of=iso(moment) or "",
            **period,
            **report,
        )

    @app.get("/admin/events")
    def events(limit: Annotated[int, Query(ge=1, le=200)] = 50) -> EventsOut:
        entries = admin.recent_events(stores_factory(), now(), limit)
        return EventsOut(
            events=[
                LedgerEntryOut(
                    event_id=e.event_id,
                    type=e.type,
                    status=e.status,
                    created=iso(e.created) or "",
                    received_at=iso(e.received_at) or "",
                    customer_id=e.customer_id,
                    detail=e.detail or None,
                )
                for e in entries
            ]
        )

    dashboard.register_dashboard(
        app,
        stores_factory=stores_factory,
        queue_factory=queue_factory,
        admin_token=admin_token,
        now=now,
        public_base_url=public_base_url,
        time_zone=time_zone,
    )
    return app


def _path(event: Mapping[str, Any]) -> str:
    return str(event.get("rawPath") or (event.get("requestContext") or {}).get("http", {}).get("path") or "")


def admin_openapi_json(app: APIGatewayHttpResolver) -> str:
    generated = app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Configure communities and plans, look members up, read the numbers. Every request but "
        "GET /admin/openapi.json needs 'Authorization: Bearer <admin token>'. Every error body is "
        "{\"error\": {\"code\", \"message\", \"field\"?}}; a wrong method on an existing path is 405.",
    )
    return json.dumps(_document_errors(json.loads(generated)))


# Statuses every operation can answer, in the one envelope (http/errors.py), whatever the route does.
_ERROR_DESCRIPTIONS = {
    400: "invalid request: the field named in error.field and what it must be",
    401: "missing or wrong admin token (checked before anything else)",
    404: "no such member, plan or community",
    409: "conflicts with what exists (e.g. a price another plan sells; a member already connected)",
    413: f"body larger than {ADMIN_BODY_LIMIT} bytes",
    415: "body not sent as application/json",
}
_CONFLICTS = {("/admin/plans", "post"), ("/admin/members/{member_id}/claim-link", "post")}


def _document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Replace Powertools' FastAPI-style 422 (never answered: validation is a 400 here) with the
    statuses and error body the API really answers, and declare the bearer scheme."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorOut"] = error_schema
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    doc["security"] = [{"bearer": []}]
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            statuses = [401]
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append(400)
            if "{" in path:
                statuses.append(404)
            if (path, method) in _CONFLICTS:
                statuses.append(409)
            if method in ("post", "put", "patch"):
                statuses += [400, 413, 415]
            for status in sorted(set(statuses)):
                responses[str(status)] = {
                    "description": _ERROR_DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
                }
    return doc


def community_out(c: Community) -> CommunityOut:
    return CommunityOut(
        id=c.id,
        platform=c.platform.value,
        name=c.name,
        external_id=c.external_id,
        guild_id=c.guild_id,
        role_id=c.role_id,
        on_revoke=c.on_revoke.value,
        locale=c.locale,
        created_at=iso(c.created_at) or "",
    )


def plan_out(p: Plan, base_url: str) -> PlanOut:
    return PlanOut(
        id=p.id,
        name=p.name,
        stripe_price_ids=list(p.stripe_price_ids),
        grants=[GrantOut(community_id=g.community_id, role_id=g.role_id) for g in p.grants],
        grace_days=p.grace_days,
        on_grace_end=p.on_grace_end.value,
        join_url=Links(base_url).join(p.id),
        created_at=iso(p.created_at) or "",
        kind=p.kind.value,
        access_days=p.access_days,
    )


def member_out(
    m: Member, entitlements: list[Entitlement], access: list[AccessRecord], messages: list[MessageRecord] = ()
) -> MemberOut:
    return MemberOut(
        id=m.id,
        stripe_customer_id=m.stripe_customer_id,
        identities=[IdentityOut(platform=i.platform.value, external_id=i.external_id) for i in m.identities],
        messages=[
            MessageOut(kind=x.kind, state=x.status.value, reason=x.reason or None, at=iso(x.at) if x.at else None)
            for x in messages
        ],
        entitlements=[
            EntitlementOut(
                plan_id=e.plan_id,
                community_id=e.community_id,
                role_id=e.role_id,
                state=e.state.value,
                until=iso(e.until),
                reason=e.reason or None,
            )
            for e in entitlements
        ],
        access=[
            AccessOut(
                community_id=a.community_id,
                state=a.state.value,
                reason=a.reason or None,
                roles=list(a.roles),
                updated_at=iso(a.updated_at),
            )
            for a in access
        ],
        created_at=iso(m.created_at) or "",
        origin=m.origin.value,
    )
