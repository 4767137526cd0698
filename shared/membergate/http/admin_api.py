"""The creator's admin API: routes, bearer auth and the OpenAPI document, over the admin services."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Query

from ..domain.links import Links
from ..domain.model import AccessRecord, Community, Entitlement, Member, MessageRecord, Plan
from ..services import admin
from ..services import kpis as kpi_service
from ..services.identity import create_claim_link
from .resolver import error_response, iso, make_resolver
from .schemas import (
    AccessOut,
    ClaimLinkOut,
    CommunitiesOut,
    CommunityIn,
    CommunityOut,
    EntitlementOut,
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
    app = make_resolver(enable_validation=True)

    def require_admin(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
        if app.current_event.path == OPENAPI_PATH:
            return next_middleware(app)
        header = app.current_event.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        expected = admin_token()
        if scheme.lower() != "bearer" or not token or not hmac.compare_digest(token.strip(), expected):
            return error_response(
                401, "unauthorized", "send 'Authorization: Bearer <admin token>' (the value of the ADMIN_TOKEN secret)"
            )
        return next_middleware(app)

    app.use(middlewares=[require_admin])

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
        stripe_customer_id: Annotated[str | None, Query()] = None,
        discord_user_id: Annotated[str | None, Query()] = None,
        member_id: Annotated[str | None, Query()] = None,
        telegram_user_id: Annotated[str | None, Query()] = None,
        whatsapp_phone: Annotated[str | None, Query()] = None,
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
        link = create_claim_link(stores_factory(), member_id, now())
        out = ClaimLinkOut(member_id=member_id, claim_url=Links(public_base_url(app)).claim(link.token),
                           expires_at=iso(link.expires_at) or "")
        return Response(201, "application/json", out)

    @app.post("/admin/members/<member_id>/resync", responses={202: {"description": "queued"}})
    def resync(member_id: str) -> Response[ResyncOut]:
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

    return app


def admin_openapi_json(app: APIGatewayHttpResolver) -> str:
    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Configure communities and plans, look members up, read the numbers. "
        "Every error body is {\"error\": {\"code\", \"message\"}}.",
    )


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
