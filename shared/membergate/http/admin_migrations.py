"""Admin API routes for free -> paid migrations: create, import the free members, announce, track, extend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from ..domain.links import Links
from ..domain.migration import MAX_MESSAGE, Migration, kick_warning
from ..domain.model import Platform
from ..ports import CommunityConnector
from ..services import migration as migrations
from .admin_controls import REASON, Epoch, actor
from .edge import ID_PATTERN, IMPORT_BODY_LIMIT, body_text, raw_body, require_id
from .resolver import iso
from .schemas import SNOWFLAKE, _Strict

IMPORT_PATH_PREFIX = "/admin/migrations/"
IMPORT_PATH_SUFFIX = "/members"


def is_import(method: str, path: str) -> bool:
    """The one admin route whose body is a CSV file (and may be up to 1 MiB)."""
    return method == "POST" and path.startswith(IMPORT_PATH_PREFIX) and path.endswith(IMPORT_PATH_SUFFIX)


class MigrationIn(_Strict):
    community_id: str = Field(pattern=ID_PATTERN, description="the community moving from free to paid")
    plan_id: str = Field(pattern=ID_PATTERN, description="the paid offer members are invited to take (e.g. a founder price)")
    deadline: Epoch = Field(description="epoch seconds, in the future: imported members keep access until then")
    message: str = Field(default="", max_length=MAX_MESSAGE, description="your own words, added to the announcement")
    announcement_channel_id: str | None = Field(
        default=None, pattern=SNOWFLAKE,
        description="Discord: the channel the offer is also posted in (the bot needs Send Messages there); "
        "a Telegram group is posted in itself",
    )
    regular_plan_id: str | None = Field(
        default=None, pattern=ID_PATTERN,
        description="the plan whose price the founder price is compared with in the announcement "
        "(\"€5.00 / month instead of €9.00 / month\"); leave it out to show the offer's price alone",
    )


class ExtendMigrationIn(_Strict):
    deadline: Epoch = Field(description="the new deadline (epoch seconds, not in the past)")
    reason: str = REASON
    cursor: str | None = Field(default=None, pattern=ID_PATTERN, max_length=200,
                               description="next_cursor of the previous page; null (the first page) moves the deadline")
    limit: int = Field(default=migrations.EXTEND_PAGE, ge=1, le=200,
                       description="members handled by this request (a request has 15 s)")
    shorten: bool = Field(default=False, description="true to move the deadline earlier on purpose "
                          "(refused with 409 otherwise: a mistyped date would end access sooner)")


class MigrationOut(BaseModel):
    id: str
    community_id: str
    plan_id: str
    deadline: str = Field(description="ISO 8601, UTC")
    deadline_epoch: int
    message: str
    created_at: str
    announcements: int = Field(description="how many times the offer was announced")
    announcement_channel_id: str | None
    posted_at: str | None = Field(description="when the offer was posted in the place")
    regular_plan_id: str | None = Field(default=None, description="the plan the founder price is compared with")
    warning: str | None = Field(
        default=None,
        description="in the answer to POST /admin/migrations only: set when the deadline will do more than the creator "
        "may expect (a Discord community whose removals kick: non-payers leave the whole server), with the fix")


class InvalidLineOut(BaseModel):
    line: int = Field(description="1-based line number in the file")
    reason: str


class ImportOut(BaseModel):
    imported: int = Field(description="people added to the migration by this file")
    already_members: int = Field(description="people the migration already had (importing the same file again changes nothing)")
    invalid: list[InvalidLineOut]


class AnnounceIn(_Strict):
    cursor: str | None = Field(default=None, max_length=200, description="next_cursor of the previous page; null to start")
    limit: int = Field(default=100, ge=1, le=200, description="members handled by this request (a request has 15 s)")


class AnnounceOut(BaseModel):
    queued: int = Field(description="members the offer is now on its way to (DM where the bot may write, else email when known)")
    already_reached: int = Field(description="reached by an earlier announcement: not written to again")
    in_flight: int = Field(description="an earlier announcement to them is still being delivered")
    posted: bool = Field(description="the offer is posted in the place (Discord channel, Telegram group), once per migration")
    post_problem: str | None = Field(description="why it could not be posted; announce again once fixed")
    next_cursor: str | None = Field(default=None, description="send it back as cursor for the next page; null when done")


class ReachedOut(BaseModel):
    dm: int
    post: int
    email: int
    none: int


class MigrationStatusOut(BaseModel):
    migration: MigrationOut
    deadline: str
    imported: int
    paid: int = Field(description="took the offer (a paid grant: the offer or any paid plan of the community) or was given "
                      "access by the creator (a manual grant, an access code); the migration's own grant never counts")
    pending: int
    reached: ReachedOut
    would_lose_access_at_deadline: int = Field(description="members the sweep would remove from the paid places at the deadline (GET /admin/removals/preview's rule)")
    next_cursor: str | None = Field(
        default=None,
        description="the counts cover this page of members only (`limit`); send it back as cursor and add the "
        "pages up until it is null (a request has 15 s)",
    )


class MigrationMemberOut(BaseModel):
    member_id: str
    platform_id: str | None
    state: Literal["paid", "pending"]
    reached: Literal["dm", "post", "email", "none"]
    loses_access_at_deadline: bool


class MigrationMembersOut(BaseModel):
    members: list[MigrationMemberOut]
    next_cursor: str | None = Field(description="pass it as cursor for the next page; null at the end")


class ExtendOut(BaseModel):
    migration: MigrationOut
    members_moved: int = Field(description="pending members of this page whose migration grant now ends at the new deadline")
    already_moved: int = Field(default=0, description="pending members of this page whose grant already ended there "
                               "(an earlier page or a repeated request): not written again")
    next_cursor: str | None = Field(
        default=None,
        description="more members to move: send the same deadline with this cursor; null when every member was "
        "handled. Members not reached yet keep access past the old deadline meanwhile",
    )


def document_import(doc: dict[str, Any]) -> dict[str, Any]:
    """The import's body is a CSV file, not JSON: say so in the OpenAPI document (Powertools reads no body model)."""
    operation = doc.get("paths", {}).get("/admin/migrations/{migration_id}/members", {}).get("post")
    if operation is not None:
        operation["requestBody"] = {
            "required": True,
            "description": "header platform_id[,email][,name] (or discord_id, telegram_id, phone, username...) or one id per line; at most 100 rows and 1 MiB",
            "content": {"text/csv": {"schema": {"type": "string", "maxLength": IMPORT_BODY_LIMIT}}},
        }
        for status, why in (("413", f"body larger than {IMPORT_BODY_LIMIT} bytes"), ("415", "body not sent as text/csv")):
            if status in operation.get("responses", {}):
                operation["responses"][status]["description"] = why
    return doc


def migration_out(m: Migration) -> MigrationOut:
    return MigrationOut(
        id=m.id, community_id=m.community_id, plan_id=m.plan_id, deadline=iso(m.deadline) or "", deadline_epoch=m.deadline,
        message=m.message, created_at=iso(m.created_at) or "", announcements=m.announcements,
        announcement_channel_id=m.announcement_channel_id, posted_at=iso(m.posted_at), regular_plan_id=m.regular_plan_id,
    )


def add_migration_routes(
    app: APIGatewayHttpResolver,
    *,
    stores_factory: Callable[[], Any],
    queue_factory: Callable[[], Any],
    now: Callable[[], int],
    connectors: Callable[[], Mapping[Platform, CommunityConnector]] = lambda: {},
    public_base_url: Callable[[APIGatewayHttpResolver], str] | None = None,
    price_reader: Callable[[], migrations.PriceReader | None] = lambda: None,
) -> None:
    @app.post("/admin/migrations", responses={201: {"description": "created"}})
    def create_migration(body: MigrationIn) -> Response[MigrationOut]:
        migration = migrations.create_migration(
            stores_factory(), community_id=body.community_id, plan_id=body.plan_id, deadline=body.deadline,
            message=body.message, actor=actor(app), now=now(), announcement_channel_id=body.announcement_channel_id,
            regular_plan_id=body.regular_plan_id,
        )
        community = stores_factory().catalog.get_community(migration.community_id)
        warning = kick_warning(community) if community is not None else None
        return Response(201, "application/json", migration_out(migration).model_copy(update={"warning": warning}))

    @app.get("/admin/migrations/<migration_id>")
    def migration_status(
        migration_id: str,
        limit: Annotated[int, Query(ge=1, le=100, description="members counted by this request (a request has 15 s)")] = migrations.STATUS_PAGE,
        cursor: Annotated[str | None, Query(pattern=ID_PATTERN, description="next_cursor of the previous page")] = None,
    ) -> MigrationStatusOut:
        # Bounded per request like announce: the counts are this page's; the caller adds the pages up.
        require_id(migration_id, "migration_id")
        s = migrations.status(stores_factory(), migration_id, now(), cursor=cursor, limit=limit)
        return MigrationStatusOut(
            migration=migration_out(s.migration), deadline=iso(s.migration.deadline) or "", imported=s.imported, paid=s.paid,
            pending=s.pending, reached=ReachedOut(**s.reached), would_lose_access_at_deadline=s.would_lose_access_at_deadline,
            next_cursor=s.next_cursor,
        )

    @app.post(
        "/admin/migrations/<migration_id>/members",
        responses={200: {"description": "imported"}},
    )
    def import_members(migration_id: str) -> ImportOut:
        """Body: text/csv, at most 1 MiB and 100 rows (the CLI sends 50 a request). Header `platform_id[,email][,name]`, or one id per line:
        Discord user ids, Telegram user ids or E.164 phones (WhatsApp), per the community's platform."""
        require_id(migration_id, "migration_id")
        text = body_text(raw_body(app.current_event.raw_event, IMPORT_BODY_LIMIT))
        result = migrations.import_members(
            stores_factory(), queue_factory(), migration_id=migration_id, text=text, actor=actor(app), now=now(),
        )
        return ImportOut(imported=result.imported, already_members=result.already_members,
                         invalid=[InvalidLineOut(line=i.line, reason=i.reason) for i in result.invalid])

    @app.get("/admin/migrations/<migration_id>/members")
    def migration_members(
        migration_id: str,
        state: Annotated[Literal["paid", "pending"] | None, Query(description="only members in this state")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(pattern=ID_PATTERN, description="next_cursor of the previous page")] = None,
    ) -> MigrationMembersOut:
        require_id(migration_id, "migration_id")
        page, next_cursor = migrations.member_page(stores_factory(), migration_id, state=state, cursor=cursor,
                                                   limit=limit, now=now())
        return MigrationMembersOut(
            members=[MigrationMemberOut(member_id=p.member_id, platform_id=p.external_id, state=p.state,  # type: ignore[arg-type]
                                        reached=p.reached, loses_access_at_deadline=p.loses_access_at_deadline)  # type: ignore[arg-type]
                     for p in page],
            next_cursor=next_cursor,
        )

    @app.post("/admin/migrations/<migration_id>/announce")
    def announce(migration_id: str, body: AnnounceIn | None = None) -> AnnounceOut:
        # Bounded per request (the admin Lambda has 15 s): an empty body is the first page of 100.
        require_id(migration_id, "migration_id")
        page = body or AnnounceIn()
        links = Links(public_base_url(app)) if public_base_url is not None else None
        result = migrations.announce(stores_factory(), queue_factory(), migration_id=migration_id, actor=actor(app),
                                     now=now(), connectors=connectors(), links=links, cursor=page.cursor, limit=page.limit,
                                     prices=price_reader())
        return AnnounceOut(queued=result.queued, already_reached=result.already_reached, in_flight=result.in_flight,
                           posted=result.posted, post_problem=result.post_problem or None, next_cursor=result.next_cursor)

    @app.post("/admin/migrations/<migration_id>/extend")
    def extend(migration_id: str, body: ExtendMigrationIn) -> ExtendOut:
        # Bounded per request like announce: the first page moves the deadline, the pages then the grants.
        require_id(migration_id, "migration_id")
        result = migrations.extend(
            stores_factory(), queue_factory(), migration_id=migration_id, deadline=body.deadline, reason=body.reason,
            actor=actor(app), now=now(), cursor=body.cursor, limit=body.limit, shorten=body.shorten,
        )
        return ExtendOut(migration=migration_out(result.migration), members_moved=result.moved,
                         already_moved=result.already, next_cursor=result.next_cursor)
