"""Pydantic models for what crosses the HTTP edge (admin API, checkout and billing portal)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .edge import ID_PATTERN

# Discord's own SnowflakeType pattern (specs/discord/openapi.json).
SNOWFLAKE = r"^(0|[1-9][0-9]{0,19})$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)


class CommunityIn(_Strict):
    platform: Literal["discord"]
    name: str = Field(min_length=1, max_length=100)
    guild_id: str = Field(pattern=SNOWFLAKE, description="the Discord server (guild) id")
    role_id: str | None = Field(default=None, pattern=SNOWFLAKE, description="role given to paying members")
    on_revoke: Literal["remove_role", "kick"] = "remove_role"
    locale: Literal["en", "fr"] = "en"


class CommunityOut(BaseModel):
    id: str
    platform: str
    name: str
    guild_id: str
    role_id: str | None
    on_revoke: str
    locale: str
    created_at: str


class CommunitiesOut(BaseModel):
    communities: list[CommunityOut]


class GrantIn(_Strict):
    community_id: str = Field(min_length=1)
    role_id: str | None = Field(default=None, pattern=SNOWFLAKE)


class PlanIn(_Strict):
    name: str = Field(min_length=1, max_length=100)
    stripe_price_ids: list[str] = Field(min_length=1, max_length=20)
    grants: list[GrantIn] = Field(min_length=1, max_length=20)
    grace_days: int = Field(default=3, ge=0, le=60)
    on_grace_end: Literal["cancel", "keep_retrying"] = "cancel"


class GrantOut(BaseModel):
    community_id: str
    role_id: str | None


class PlanOut(BaseModel):
    id: str
    name: str
    stripe_price_ids: list[str]
    grants: list[GrantOut]
    grace_days: int
    on_grace_end: str
    join_url: str
    created_at: str


class PlansOut(BaseModel):
    plans: list[PlanOut]


class EntitlementOut(BaseModel):
    plan_id: str
    community_id: str
    role_id: str | None
    state: Literal["pending", "active", "grace", "ended"]
    until: str | None
    reason: str | None = None


class AccessOut(BaseModel):
    community_id: str
    state: str
    reason: str | None = None
    roles: list[str] = []
    updated_at: str | None = None


class IdentitiesOut(BaseModel):
    discord_user_id: str | None = None


class MemberOut(BaseModel):
    id: str
    stripe_customer_id: str | None
    identities: IdentitiesOut
    entitlements: list[EntitlementOut]
    access: list[AccessOut]
    created_at: str
    origin: str


class MembersOut(BaseModel):
    members: list[MemberOut]


class ClaimLinkOut(BaseModel):
    member_id: str
    claim_url: str = Field(description="send it to the member: opening it and connecting Discord binds their account")
    expires_at: str


class ResyncOut(BaseModel):
    member_id: str
    communities: list[str] = Field(description="communities whose access is being brought in line with the entitlements")


class KpisOut(BaseModel):
    active_paying_members: int
    trialing_members: int
    members_in_grace: int
    members_with_access: int
    mrr: dict[str, int] = Field(description="monthly recurring revenue per currency, in minor units")
    as_of: str


class LedgerEntryOut(BaseModel):
    event_id: str
    type: str
    status: str
    created: str
    received_at: str
    customer_id: str | None
    detail: str | None


class EventsOut(BaseModel):
    events: list[LedgerEntryOut]


class CheckoutIn(_Strict):
    # No member_id: only the browser's session (bound through Discord) decides who checks out.
    plan_id: str = Field(pattern=ID_PATTERN)
    price_id: str | None = Field(default=None, pattern=ID_PATTERN)


class CheckoutOut(BaseModel):
    checkout_url: str
    session_id: str


class PortalIn(_Strict):
    # No member_id: the portal can cancel and change cards, so only the member's own browser
    # session (bound through Discord) may open it.
    plan_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="the plan whose join page the portal links back to"
    )


class PortalOut(BaseModel):
    portal_url: str


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable (e.g. invalid_request, unauthorized, not_found)")
    message: str = Field(description="what went wrong and what to do next")
    field: str | None = Field(default=None, description="the request field at fault, when there is one")


class ErrorOut(BaseModel):
    """The one error envelope of every route, for every status."""

    error: ErrorBody
