"""The creator's admin API: routes, bearer auth and the OpenAPI document, over the admin services."""

from __future__ import annotations

import csv
import io
import json
from calendar import timegm
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from ..domain.consent import ACCEPTED, CheckoutConsent
from ..domain.errors import InvalidRequestError, NotFoundError, UnauthorizedError
from ..domain.links import Links
from ..domain.model import AccessRecord, Community, Entitlement, Member, MessageRecord, Plan, Platform
from ..services import admin, controls
from ..services import kpis as kpi_service
from ..services import health, privacy
from ..services.health import HealthTargets
from ..services.disputes import open_dispute_problems
from ..services.identity import create_claim_link
from ..ports import BillingGateway, DeploymentProbe, ReconcileStore, Stores
from . import dashboard
from .reconcile_api import add_reconcile_routes
from .edge import ADMIN_BODY_LIMIT, CSV, FORM, ID_PATTERN, IMPORT_BODY_LIMIT, JSON, ascii_equal, guard_body, require_id
from .admin_controls import actor, add_control_routes
from .admin_tiers import add_tier_routes
from .admin_migrations import add_migration_routes, document_import, is_import
from .resolver import iso, make_resolver
from .schemas import (
    ReasonIn,
    HealthCheckOut,
    HealthOut,
    AccessOut,
    CheckOut,
    ClaimLinkOut,
    CommunitiesOut,
    CommunityIn,
    TelegramCommunityIn,
    TaskOut,
    TasksOut,
    WhatsAppCommunityIn,
    CommunityOut,
    CommunityPatch,
    EntitlementOut,
    ErrorOut,
    EventsOut,
    GrantOut,
    IdentityIn,
    IdentityOut,
    MessageOut,
    KpisOut,
    LedgerEntryOut,
    MemberOut,
    PendingSwitchOut,
    MembersOut,
    CheckoutOptionsOut,
    PlanIn,
    PlanOut,
    PlanPatch,
    SurveyAnswerOut,
    SurveysOut,
    PlansOut,
    PreflightOut,
    RelinkFailureOut,
    RelinkOut,
    ResyncOut,
    SNOWFLAKE,
    TimelineEntryOut,
    TimelineOut,
    WHATSAPP_PHONE_PATTERN,
    EraseIn,
    ErasureOut,
    ExportCheckoutOut,
    ExportEventOut,
    ExportCardOut,
    ExportSurveyOut,
    ExportIdentityOut,
    ExportMemberOut,
    ExportOut,
    ExportPriceOut,
    ExportPurchaseOut,
    ExportStatusOut,
    ConsentOut,
    ExportSubscriptionOut,
    ExportTokenOut,
    WaitingOut,
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
    # Platform -> connector, for the bot preflight; registration runs it only when asked to.
    connectors: Callable[[], Mapping[Any, Any]] = lambda: {},
    preflight_on_register: Callable[[], bool] = lambda: False,
    # Reconciliation: its reports, and how to start a run (the reconcile function, asynchronously).
    reconcile_store: Callable[[], ReconcileStore] | None = None,
    start_reconcile: Callable[[str], None] | None = None,
    tasks_factory: Callable[[], Any] | None = None,  # WhatsApp manual mode's removal tasks
    # The billing port's describe_prices, to check a new plan's prices at Stripe; None: not checked.
    price_reader: Callable[[], admin.PriceReader | None] = lambda: None,
    # Days after a removal that POST /admin/removals/{id}/undo is taken (REMOVAL_UNDO_DAYS).
    removal_undo_days: Callable[[], int] = lambda: 7,
    # GET /admin/health: the deployment's own parts (None: only the communities' bots are checked).
    health_probe: Callable[[], DeploymentProbe | None] = lambda: None,
    health_targets: Callable[[], HealthTargets] = HealthTargets,
    # Stripe, for POST /admin/members/{id}/switch (a tier change); None: that route answers 502.
    billing_factory: Callable[[], BillingGateway | None] = lambda: None,
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
        if is_import(str(event.get("requestContext", {}).get("http", {}).get("method", "")), _path(event)):
            guard_body(event, IMPORT_BODY_LIMIT, (CSV,))  # a migration's member file
            return
        guard_body(event, ADMIN_BODY_LIMIT, (FORM,) if _path(event) in dashboard.PATHS else (JSON,))

    app = make_resolver(
        enable_validation=True,
        gates=[require_admin, bounded_body],
        not_found_message="no such route; see /admin/openapi.json for the admin API",
    )

    add_control_routes(app, stores_factory=stores_factory, queue_factory=queue_factory, now=now,
                       undo_days=removal_undo_days, public_base_url=lambda: public_base_url(app))
    add_migration_routes(app, stores_factory=stores_factory, queue_factory=queue_factory, now=now,
                         connectors=connectors, public_base_url=public_base_url, price_reader=price_reader)
    add_tier_routes(app, stores_factory=stores_factory, billing_factory=billing_factory, now=now)

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi():
        return Response(200, "application/json", admin_openapi_json(app))

    if reconcile_store is not None and start_reconcile is not None:
        add_reconcile_routes(app, reconcile_store, start_reconcile, now,
                             on_started=lambda holder: controls.audit(stores_factory(), actor=actor(app),
                                                                   action="reconcile.start", target=holder, now=now()))

    @app.post("/admin/communities", responses={201: {"description": "created"}})
    def create_community(
        body: Annotated[CommunityIn | TelegramCommunityIn | WhatsAppCommunityIn, Body(discriminator="platform")],
    ) -> Response[CommunityOut]:
        if isinstance(body, WhatsAppCommunityIn):
            stores = stores_factory()
            community = admin.create_whatsapp_community(stores, now=now(), **body.model_dump(exclude={"platform", "reason"}))
            controls.audit(stores, actor=actor(app), action="community.create", target=community.id, now=now(),
                           reason=body.reason or "", detail={"platform": community.platform.value})
            return Response(201, "application/json", community_out(community))
        values = body.model_dump(exclude={"reason"})
        if isinstance(body, TelegramCommunityIn):
            # No roles on Telegram: access is being in the chat, and ending it takes the member out.
            values = {"platform": "telegram", "name": body.name, "external_id": values.pop("chat_id"),
                      "role_id": None, "on_revoke": "kick", "locale": body.locale}
        stores = stores_factory()
        community = admin.create_community(
            stores, now=now(), connectors=connectors() if preflight_on_register() else None, **values
        )
        controls.audit(stores, actor=actor(app), action="community.create", target=community.id, now=now(),
                       reason=body.reason or "",
                       detail={"platform": community.platform.value, "external_id": community.external_id})
        return Response(201, "application/json", community_out(community))

    @app.post("/admin/communities/<community_id>/check")
    def check_community(community_id: str) -> PreflightOut:
        require_id(community_id, "community_id")
        result = admin.check_community(stores_factory(), connectors(), community_id, queue_factory())
        checks = [CheckOut(name=c.name, ok=c.ok, fix=c.fix or None) for c in (result.checks if result else ())]
        return PreflightOut(community_id=community_id, ok=result.ok if result else None, checks=checks)

    @app.get("/admin/health")
    def deployment_health() -> HealthOut:
        """Every secret set, each community's bot able to act, schedules enabled, dead-letter queue empty."""
        probe = health_probe()
        report = health.deployment_health(
            stores_factory(), connectors(), probe or health.NO_PROBE,
            health_targets() if probe is not None else HealthTargets(),
        )
        return HealthOut(ok=report.ok, checks=[HealthCheckOut(**asdict(c)) for c in report.checks])

    @app.get("/admin/communities")
    def list_communities() -> CommunitiesOut:
        return CommunitiesOut(communities=[community_out(c) for c in stores_factory().catalog.list_communities()])

    def _task_community(community_id: str) -> Any:
        require_id(community_id, "community_id")
        if stores_factory().catalog.get_community(community_id) is None:
            raise NotFoundError(f"community {community_id} does not exist; list them with GET /admin/communities")
        if tasks_factory is None:
            raise NotFoundError("removal tasks are not available in this deployment")
        return tasks_factory()

    @app.get("/admin/communities/<community_id>/tasks")
    def list_tasks(community_id: str) -> TasksOut:
        """Members to remove by hand from a WhatsApp group in manual mode (access ended), oldest first."""
        tasks = _task_community(community_id).tasks(community_id)
        return TasksOut(tasks=[TaskOut(id=t.id, kind=t.kind, phone=t.phone, member_id=t.member_id, due=iso(t.due) or "",
                                       done=t.done) for t in tasks])

    @app.post("/admin/communities/<community_id>/tasks/<task_id>/done")
    def complete_task(community_id: str, task_id: str) -> TaskOut:
        """Mark a removal done once you removed the member from the WhatsApp group."""
        store = _task_community(community_id)
        require_id(task_id, "task_id")
        t = store.complete(community_id, task_id)
        controls.audit(stores_factory(), actor=actor(app), action="task.done", target=task_id, now=now(),
                       member_id=t.member_id, detail={"community_id": community_id, "kind": t.kind})
        return TaskOut(id=t.id, kind=t.kind, phone=t.phone, member_id=t.member_id, due=iso(t.due) or "", done=True)

    @app.post("/admin/plans", responses={201: {"description": "created"}})
    def create_plan(body: PlanIn) -> Response[PlanOut]:
        stores = stores_factory()
        plan = admin.create_plan(
            stores,
            name=body.name,
            stripe_price_ids=body.stripe_price_ids,
            grants=[(g.community_id, g.role_id) for g in body.grants],
            grace_days=body.grace_days,
            on_grace_end=body.on_grace_end,
            kind=body.kind,
            access_days=body.access_days,
            description=body.description,
            checkout=body.checkout.model_dump(),
            renewal_notice_days=body.renewal_notice_days,
            trial_notice_days=body.trial_notice_days,
            welcome_message=body.welcome_message,
            seats=body.seats,
            trial_days=body.trial_days,
            dispute_policy=body.dispute_policy or "",
            downgrade=body.downgrade,
            now=now(),
            prices=price_reader(),
        )
        controls.audit(stores, actor=actor(app), action="plan.create", target=plan.id, now=now(),
                       reason=body.reason or "", detail={"kind": plan.kind.value, "name": plan.name, "downgrade": plan.downgrade})
        return Response(201, "application/json", plan_out(plan, public_base_url(app), _seats_taken(stores, plan)))

    @app.get("/admin/plans")
    def list_plans() -> PlansOut:
        base = public_base_url(app)
        stores = stores_factory()
        return PlansOut(plans=[plan_out(p, base, _seats_taken(stores, p)) for p in stores.catalog.list_plans()])

    @app.get("/admin/communities/<community_id>")
    def get_community(community_id: str) -> CommunityOut:
        require_id(community_id, "community_id")
        community = stores_factory().catalog.get_community(community_id)
        if community is None:
            raise NotFoundError(f"community {community_id} does not exist; list them with GET /admin/communities")
        return community_out(community)

    @app.patch("/admin/communities/<community_id>")
    def patch_community(community_id: str, body: CommunityPatch) -> CommunityOut:
        require_id(community_id, "community_id")
        stores = stores_factory()
        changes = body.model_dump(exclude={"reason"})
        updated = admin.update_community(stores, community_id, **changes)
        controls.audit(stores, actor=actor(app), action="community.update", target=community_id, now=now(),
                       reason=body.reason or "", detail={k: str(v) for k, v in changes.items() if v is not None})
        return community_out(updated)

    @app.post("/admin/communities/<community_id>/archive")
    def archive_community(community_id: str, body: ReasonIn | None = None) -> CommunityOut:
        require_id(community_id, "community_id")
        stores = stores_factory()
        archived = admin.archive_community(stores, community_id, now())
        controls.audit(stores, actor=actor(app), action="community.archive", target=community_id, now=now(),
                       reason=body.reason or "" if body else "")
        return community_out(archived)

    @app.get("/admin/plans/<plan_id>")
    def get_plan(plan_id: str) -> PlanOut:
        require_id(plan_id, "plan_id")
        stores = stores_factory()
        plan = stores.catalog.get_plan(plan_id)
        if plan is None:
            raise NotFoundError(f"plan {plan_id} does not exist; list them with GET /admin/plans")
        return plan_out(plan, public_base_url(app), _seats_taken(stores, plan))

    @app.patch("/admin/plans/<plan_id>")
    def patch_plan(plan_id: str, body: PlanPatch) -> PlanOut:
        require_id(plan_id, "plan_id")
        stores = stores_factory()
        changes = body.model_dump(exclude={"renewal_notice_days", "trial_notice_days", "welcome_message", "seats", "trial_days",
                                           "dispute_policy", "downgrade", "reason"})
        # null turns these off, so for them an absent field (unchanged) differs from null.
        notices = {k: getattr(body, k) for k in ("renewal_notice_days", "trial_notice_days") if k in body.model_fields_set}
        welcome = (body.welcome_message or "") if "welcome_message" in body.model_fields_set else None
        seats_given, trial_given = "seats" in body.model_fields_set, "trial_days" in body.model_fields_set
        plan = admin.update_plan(stores, plan_id, **changes, notices=notices, welcome_message=welcome,
                                 seats=body.seats, set_seats=seats_given,
                                 trial_days=body.trial_days, set_trial_days=trial_given,
                                 dispute_policy=(body.dispute_policy or "") if "dispute_policy" in body.model_fields_set
                                 else None,
                                 downgrade=body.downgrade,
                                 prices=price_reader())
        detail = {k: str(v) for k, v in changes.items() if v is not None} | {k: str(v) for k, v in notices.items()}
        if welcome is not None:
            detail["welcome_message"] = f"{len(welcome)} characters"
        if seats_given:
            detail["seats"] = "none" if body.seats is None else str(body.seats)
        if trial_given:
            detail["trial_days"] = "none" if body.trial_days is None else str(body.trial_days)
        if "dispute_policy" in body.model_fields_set:
            detail["dispute_policy"] = body.dispute_policy or "default"
        if body.downgrade is not None:
            detail["downgrade"] = body.downgrade
        controls.audit(stores, actor=actor(app), action="plan.update", target=plan_id, now=now(), reason=body.reason or "",
                       detail=detail)
        return plan_out(plan, public_base_url(app), _seats_taken(stores, plan))

    @app.post("/admin/plans/<plan_id>/archive")
    def archive_plan(plan_id: str, body: ReasonIn | None = None) -> PlanOut:
        require_id(plan_id, "plan_id")
        stores = stores_factory()
        archived = admin.archive_plan(stores, plan_id, now())
        controls.audit(stores, actor=actor(app), action="plan.archive", target=plan_id, now=now(),
                       reason=body.reason or "" if body else "")
        return plan_out(archived, public_base_url(app))

    @app.get("/admin/surveys")
    def list_surveys(limit: Annotated[int, Query(ge=1, le=500)] = 100) -> SurveysOut:
        """Exit survey answers, newest first (each cancellation receipt links to the survey)."""
        store = stores_factory().surveys
        answers = store.answers(limit) if store is not None else []
        return SurveysOut(answers=[
            SurveyAnswerOut(member_id=a.member_id, plan_id=a.plan_id, subscription_id=a.subscription_id,
                            choice=a.choice, comment=a.comment, answered_at=iso(a.at) or "")
            for a in answers
        ])

    @app.get("/admin/members")
    def find_members(
        # Bounded: each becomes a DynamoDB key, and DynamoDB refuses (500) keys over 2 KB.
        stripe_customer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        discord_user_id: Annotated[str | None, Query(pattern=SNOWFLAKE)] = None,
        member_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        telegram_user_id: Annotated[str | None, Query(pattern=r"^-?[0-9]{1,20}$")] = None,
        whatsapp_phone: Annotated[str | None, Query(pattern=WHATSAPP_PHONE_PATTERN)] = None,
        q: Annotated[str | None, Query(pattern=SEARCH_PATTERN, description="search: a member id, Stripe customer id or any platform account id (exact), or the start of a handle, name or email (any case; an email is searched once the query reaches its @); paged with cursor")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        cursor: Annotated[str | None, Query(pattern=ID_PATTERN, description="next_cursor of the previous page")] = None,
        state: Annotated[Literal["pending", "active", "grace", "ended", "none"] | None, Query(description="members with an entitlement in this state ('none': no entitlement)")] = None,
        plan_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        community_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        platform: Annotated[Literal["discord", "telegram", "whatsapp"] | None, Query(description="members with an account bound on this platform")] = None,
    ) -> MembersOut:
        by_id = (stripe_customer_id, discord_user_id, member_id, telegram_user_id, whatsapp_phone)
        if q is not None or not any(by_id):
            stores = stores_factory()
            if q is not None:
                found, next_cursor = admin.search_member_page(stores, q, now(), limit=limit, cursor=cursor)
            else:
                found, next_cursor = admin.list_members(
                    stores,
                    now=now(),
                    limit=limit,
                    cursor=cursor,
                    filters=admin.MemberFilters(state=state, plan_id=plan_id, community_id=community_id, platform=platform),
                )
            return MembersOut(
                members=[member_out(d.member, d.entitlements, d.access, d.messages, d.pending_switches) for d in found], next_cursor=next_cursor
            )
        found = admin.find_members(
            stores_factory(),
            now=now(),
            stripe_customer_id=stripe_customer_id,
            discord_user_id=discord_user_id,
            member_id=member_id,
            telegram_user_id=telegram_user_id,
            whatsapp_phone=whatsapp_phone,
        )
        return MembersOut(members=[member_out(d.member, d.entitlements, d.access, d.messages, d.pending_switches) for d in found])

    @app.get("/admin/members/<member_id>/timeline")
    def timeline(member_id: str) -> TimelineOut:
        require_id(member_id, "member_id")
        entries = admin.member_timeline(stores_factory(), member_id, now())
        return TimelineOut(
            member_id=member_id,
            entries=[TimelineEntryOut(at=iso(e.at) if e.at else None, kind=e.kind, summary=e.summary, detail=e.detail) for e in entries],
        )

    @app.get("/admin/exports/members.csv", responses={200: {"description": "one row per member", "content": {"text/csv": {"schema": {"type": "string"}}}}})
    def export_members():
        stores, moment = stores_factory(), now()
        rows = []
        after = None
        while True:
            members, after = stores.members.page(100, after)
            for m in members:
                view = admin.current_view(stores, m.id, moment)
                rows.append([
                    m.id, m.stripe_customer_id or "", m.origin.value, iso(m.created_at) or "",
                    m.identity(Platform.DISCORD) or "", m.identity(Platform.TELEGRAM) or "", m.identity(Platform.WHATSAPP) or "",
                    ";".join(f"{e.plan_id}:{e.community_id}:{e.state.value}" for e in view.entitlements),
                ])
            if after is None:
                break
        header = ["member_id", "stripe_customer_id", "origin", "created_at", "discord_user_id", "telegram_user_id",
                  "whatsapp_phone", "entitlements"]
        return _csv_response(header, rows, "members.csv")

    @app.get("/admin/exports/payments.csv", responses={200: {"description": "one row per payment event in the ledger (last 31 days)", "content": {"text/csv": {"schema": {"type": "string"}}}}})
    def export_payments():
        entries = [e for e in admin.recent_events(stores_factory(), now(), EXPORT_LIMIT) if e.type in PAYMENT_EVENTS]
        rows = [[e.event_id, e.type, e.status, iso(e.created) or "", iso(e.received_at) or "", e.customer_id or "", e.detail]
                for e in entries]
        return _csv_response(["event_id", "type", "status", "created", "received_at", "customer_id", "detail"], rows, "payments.csv")

    @app.post("/admin/members/<member_id>/claim-link", responses={201: {"description": "created"}})
    def claim_link(member_id: str, body: ReasonIn | None = None) -> Response[ClaimLinkOut]:
        require_id(member_id, "member_id")
        stores = stores_factory()
        link = create_claim_link(stores, member_id, now())
        controls.audit(stores, actor=actor(app), action="member.claim_link", target=member_id, now=now(), member_id=member_id,
                       reason=body.reason or "" if body else "")
        out = ClaimLinkOut(member_id=member_id, claim_url=Links(public_base_url(app)).claim(link.token),
                           expires_at=iso(link.expires_at) or "")
        return Response(201, "application/json", out)

    @app.post("/admin/members/<member_id>/identities")
    def relink(member_id: str, body: IdentityIn) -> RelinkOut:
        require_id(member_id, "member_id")
        stores = stores_factory()
        done = admin.relink_identity(
            stores, queue_factory(), connectors(), member_id, body.platform, body.external_id, now()
        )
        controls.audit(stores, actor=actor(app), action="member.relink", target=member_id, now=now(), member_id=member_id,
                       detail={"platform": body.platform, "external_id": body.external_id,
                               "previous_external_id": done.previous or ""})
        return RelinkOut(
            member_id=member_id,
            platform=done.identity.platform.value,
            external_id=done.identity.external_id,
            previous_external_id=done.previous,
            old_account_revoked=done.revoked,
            old_account_failed=[RelinkFailureOut(community_id=c, reason=r) for c, r in done.failed],
            communities=done.queued,
        )

    @app.post("/admin/members/<member_id>/resync", responses={202: {"description": "queued"}})
    def resync(member_id: str, body: ReasonIn | None = None) -> Response[ResyncOut]:
        require_id(member_id, "member_id")
        stores = stores_factory()
        communities = admin.resync_member(stores, queue_factory(), member_id, now())
        controls.audit(stores, actor=actor(app), action="member.resync", target=member_id, now=now(), member_id=member_id,
                       reason=body.reason or "" if body else "")
        return Response(202, "application/json", ResyncOut(member_id=member_id, communities=communities))

    @app.get("/admin/members/<member_id>/export")
    def export_member(member_id: str) -> ExportOut:
        require_id(member_id, "member_id")
        moment = now()
        return export_out(privacy.export_member(stores_factory(), member_id, moment), moment)

    @app.post("/admin/members/<member_id>/erase", responses={200: {"description": "erased"}, 202: {"description": "access being removed; call again"}})
    def erase_member(member_id: str, body: EraseIn) -> Response[ErasureOut]:
        require_id(member_id, "member_id")
        done = privacy.erase_member(stores_factory(), queue_factory(), member_id, body.reason, now(), actor=actor(app))
        return Response(200 if done.done else 202, "application/json", erasure_out(done.record, done.waiting_for))

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
    def events(
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        status: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$", description="e.g. processed, failed, ignored, received")] = None,
        type: Annotated[str | None, Query(pattern=r"^[a-z_.]{1,64}$", description="a Stripe event type, e.g. invoice.paid")] = None,
        since: Annotated[str | None, Query(pattern=DAY_PATTERN, description="received on or after this day (UTC), YYYY-MM-DD")] = None,
    ) -> EventsOut:
        moment = now()
        entries = admin.recent_events(stores_factory(), moment, EXPORT_LIMIT if (status or type or since) else limit)
        entries = admin.filter_events(entries, status=status, type_=type, since=_day_start(since))[:limit]
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
        # The dashboard's export links answer exactly what these routes answer (behind its session).
        exports={"members.csv": export_members, "payments.csv": export_payments},
        problem_sources=(open_dispute_problems,),
        # "Export data" on a member's page answers what GET /admin/members/{id}/export answers.
        member_export=export_member,
    )
    return app


# Printable text (a handle has spaces, an email @ and dots); never a key unless it is an id.
SEARCH_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"
# How many ledger entries a filtered read or an export looks at (the ledger keeps 31 days).
EXPORT_LIMIT = 1000
PAYMENT_EVENTS = frozenset({
    "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "checkout.session.completed",
    "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed", "charge.refunded",
})


def _day_start(day: str | None) -> int | None:
    if day is None:
        return None
    try:
        return timegm(datetime.strptime(day, "%Y-%m-%d").timetuple())
    except ValueError:
        raise InvalidRequestError(f"{day!r} is not a calendar day; give YYYY-MM-DD", field="since") from None


def _csv_cell(value: str) -> str:
    # A cell a spreadsheet would run as a formula is quoted with a leading apostrophe (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_response(header: list[str], rows: Iterable[list[str]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(str(v)) for v in row])
    return Response(
        200,
        "text/csv",
        out.getvalue(),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


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
    return json.dumps(document_import(_document_errors(json.loads(generated))))


# Statuses every operation can answer, in the one envelope (http/errors.py), whatever the route does.
_ERROR_DESCRIPTIONS = {
    400: "invalid request: the field named in error.field and what it must be",
    401: "missing or wrong admin token (checked before anything else)",
    404: "no such member, plan or community",
    409: "conflicts with what exists (e.g. a price another plan sells; a member already connected)",
    413: f"body larger than {ADMIN_BODY_LIMIT} bytes",
    415: "body not sent as application/json",
}
_CONFLICTS = {("/admin/members/{member_id}/erase", "post"), ("/admin/plans", "post"), ("/admin/members/{member_id}/claim-link", "post"), ("/admin/communities", "post"),
              ("/admin/members/{member_id}/identities", "post"),
              ("/admin/grants/{grant_id}/extend", "post"), ("/admin/grants/{grant_id}", "delete"),
              ("/admin/reconcile", "post"),  # reconcile_running: one run at a time
              ("/admin/plans/{plan_id}", "patch"),  # a price another plan already sells
              ("/admin/removals/{removal_id}/undo", "post"),  # already_undone, undo_window_closed
              ("/admin/migrations/{migration_id}/members", "post"),
              ("/admin/members/{member_id}/switch", "post")}  # same tier, settling, sold out, no price in its currency


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
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "path":
                    # require_id() refuses anything else (400) before any lookup.
                    schema.update(type="string", pattern=ID_PATTERN)
                if schema.get("pattern") == DAY_PATTERN or DAY_PATTERN in [s.get("pattern") for s in schema.get("anyOf", [])]:
                    for candidate in [schema, *schema.get("anyOf", [])]:
                        if candidate.get("pattern") == DAY_PATTERN:
                            candidate["format"] = "date"  # a calendar day: 2026-02-30 is refused
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            statuses = [401]
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append(400)
            if "{" in path:
                statuses.append(404)
            if (path, method) in _CONFLICTS:
                statuses.append(409)
            if method in ("post", "put", "patch", "delete"):
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
        mode=c.mode,
        invite_link=c.invite_link,
        archived_at=iso(c.archived_at) if c.archived_at is not None else None,
    )


def _seats_taken(stores: Stores, plan: Plan) -> int | None:
    if plan.seats is None or stores.seats is None:
        return None
    return stores.seats.taken(plan.id)


def plan_out(p: Plan, base_url: str, seats_taken: int | None = None) -> PlanOut:
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
        description=p.description,
        archived_at=iso(p.archived_at) if p.archived_at is not None else None,
        checkout=CheckoutOptionsOut(**asdict(p.checkout)),
        renewal_notice_days=p.renewal_notice_days,
        trial_notice_days=p.trial_notice_days,
        welcome_message=p.welcome_message,
        seats=p.seats,
        seats_taken=seats_taken,
        trial_days=p.trial_days,
        dispute_policy=p.dispute_policy or None,
        downgrade=p.downgrade,
    )


def member_out(
    m: Member, entitlements: list[Entitlement], access: list[AccessRecord], messages: list[MessageRecord] = (),
    pending: Iterable[admin.PendingSwitch] = (),
) -> MemberOut:
    return MemberOut(
        pending_switches=[PendingSwitchOut(subscription_id=p.subscription_id, from_plan_id=p.from_plan_id,
                                           plan_id=p.plan_id, at=iso(p.at) or "") for p in pending],
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


HELD_ELSEWHERE = (
    "Payment details, invoices, billing addresses and email addresses are held by Stripe under the customer "
    "id above (Stripe Dashboard → Customers), not by Membergate. Chat messages and profiles are held by the "
    "chat platform."
)


def erasure_out(record: Any, waiting: Iterable[tuple[str, str]] = ()) -> ErasureOut:
    return ErasureOut(
        member_id=record.member_id,
        state="erased" if record.erased_at is not None else "revoking",
        reason=record.reason,
        requested_at=iso(record.requested_at) or "",
        erased_at=iso(record.erased_at) if record.erased_at is not None else None,
        waiting_for=[WaitingOut(community_id=c, state=s) for c, s in waiting],
        removed=dict(record.removed),
    )


def consent_out(c: CheckoutConsent | None) -> ConsentOut | None:
    if c is None:
        return None
    return ConsentOut(session_id=c.session_id, at=iso(c.at) or "",
                      terms_of_service="accepted" if c.terms_of_service == ACCEPTED else None,
                      text_version=c.text_version or None, waiver="accepted" if c.waiver == ACCEPTED else None)


def export_out(x: privacy.MemberExport, moment: int) -> ExportOut:
    m = x.member
    details = member_out(m, x.entitlements, x.access, x.messages)
    return ExportOut(
        exported_at=iso(moment) or "",
        member=ExportMemberOut(
            id=m.id, created_at=iso(m.created_at) or "", origin=m.origin.value, stripe_customer_id=m.stripe_customer_id,
            identities=[ExportIdentityOut(platform=i.platform.value, external_id=i.external_id, handle=i.handle)
                        for i in m.identities],
        ),
        subscriptions=[
            ExportSubscriptionOut(
                subscription_id=r.subscription_id,
                plan_id=r.plan_id,
                status=r.latest.status if r.latest else None,
                current_period_end=iso(r.latest.current_period_end) if r.latest and r.latest.current_period_end else None,
                cancel_at_period_end=bool(r.latest and r.latest.cancel_at_period_end),
                prices=[
                    ExportPriceOut(price_id=line.price_id, currency=line.currency, unit_amount=line.unit_amount,
                                   quantity=line.quantity, interval=line.interval, interval_count=line.interval_count)
                    for line in (r.latest.lines if r.latest else ())
                ],
                history=[ExportStatusOut(at=iso(o.created) or "", status=o.status) for o in r.observations],
                consent=consent_out(r.consent),
            )
            for r in x.subscriptions
        ],
        purchases=[
            ExportPurchaseOut(purchase_id=g.grant_id, plan_id=g.plan_id, kind=g.kind.value, paid_at=iso(g.paid_at) or "",
                              amount=g.amount, currency=g.currency, ended_reason=g.ended_reason or None,
                              consent=consent_out(g.consent))
            for g in x.purchases
        ],
        entitlements=details.entitlements,
        access=details.access,
        messages=details.messages,
        checkout_attempts=[
            ExportCheckoutOut(plan_id=a.plan_id, attempt=a.attempt, session_id=a.session_id,
                              expires_at=iso(a.expires_at) if a.expires_at else None)
            for a in x.checkout_attempts
        ],
        tokens=[ExportTokenOut(kind="claim" if t.kind == "claim" else "session", expires_at=iso(t.expires_at) or "")
                for t in x.tokens],
        stripe_events=[ExportEventOut(event_id=e.event_id, type=e.type, created=iso(e.created) or "", status=e.status)
                       for e in x.events],
        erasure=erasure_out(x.erasure) if x.erasure is not None else None,
        held_elsewhere=HELD_ELSEWHERE,
        email=x.email,
        card_on_file=ExportCardOut(
            payment_method_id=x.card.payment_method_id,
            # expires_at is the first second after the expiry month: the month is the second before
            expires=(iso(x.card.expires_at - 1) or "")[:7] if x.card.expires_at is not None else None,
        ) if x.card is not None else None,
        survey_answers=[ExportSurveyOut(plan_id=a.plan_id, subscription_id=a.subscription_id, choice=a.choice,
                                        comment=a.comment or None, answered_at=iso(a.at) or "")
                        for a in x.survey_answers],
    )
