"""Pydantic models for what crosses the HTTP edge (admin API, checkout and billing portal)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..domain.names import visible_text
from .edge import ID_PATTERN

# Discord's own SnowflakeType pattern (specs/discord/openapi.json).
SNOWFLAKE = r"^(0|[1-9][0-9]{0,19})$"
# Something visible: at least one character that is not whitespace (JSON Schema patterns search).
NAME_PATTERN = r"\S"


def _visible(value: object) -> object:
    """A name members can read: not only spaces, format (bidi, zero-width) or control characters.
    Before the type's own checks, so a name of spaces gets this message rather than the pattern's."""
    if isinstance(value, str) and not visible_text(value):
        raise ValueError("is made only of invisible characters (spaces, zero-width, direction or control "
                         "characters): give a name members can read")
    return value


# Plan and community names: the \S pattern alone lets "\u202e\u200b" through.
VisibleName = Annotated[str, BeforeValidator(_visible)]
# A Stripe price id (price_..., or a lookup-free id the sandbox mints): no "" and nothing DynamoDB refuses.
PRICE_PATTERN = ID_PATTERN


class _Strict(BaseModel):
    # Strict types (issue 7): "3" is not an integer and 3 is not a string (a snowflake sent as a JSON
    # number has already lost its last digits in most clients).
    # No silent whitespace stripping either: what the document says is what is accepted.
    model_config = ConfigDict(extra="forbid", strict=True)


class CommunityIn(_Strict):
    # The cross-field rule, in the document too: removing a role on revoke (the default) needs the role.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"on_revoke": {"const": "remove_role"}}},
            "then": {"required": ["role_id"], "properties": {"role_id": {"type": "string"}}},
        }
    )

    platform: Literal["discord"]
    name: VisibleName = Field(min_length=1, max_length=100, pattern=NAME_PATTERN, description="shown to members; not only spaces")
    guild_id: str = Field(pattern=SNOWFLAKE, description="the Discord server (guild) id")
    role_id: str | None = Field(default=None, pattern=SNOWFLAKE, description="role given to paying members")
    on_revoke: Literal["remove_role", "kick"] = "remove_role"
    locale: Literal["en", "fr"] = "en"
    reason: str | None = Field(default=None, min_length=1, max_length=500, pattern=NAME_PATTERN,
                               description="why (kept with the action in GET /admin/audit)")


class TelegramCommunityIn(_Strict):
    platform: Literal["telegram"]
    name: VisibleName = Field(min_length=1, max_length=100)
    chat_id: str = Field(
        pattern=r"^(-?[1-9][0-9]{0,15}|@[A-Za-z][A-Za-z0-9_]{3,31})$",
        description="the group, supergroup or channel id (a supergroup's starts with -100) or a public @username",
    )
    locale: Literal["en", "fr"] = "en"
    reason: str | None = Field(default=None, min_length=1, max_length=500, pattern=NAME_PATTERN,
                               description="why (kept with the action in GET /admin/audit)")


# A WhatsApp phone in E.164, the "+" optional (a query string may lose it): 7 to 15 digits.
WHATSAPP_PHONE_PATTERN = r"^\+?[1-9][0-9]{6,14}$"


class WhatsAppCommunityIn(_Strict):
    # What each mode needs, in the document too: manual the invite link, the others the group id.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {"if": {"properties": {"mode": {"const": "manual"}}},
                 "then": {"required": ["invite_link"], "properties": {"invite_link": {"type": "string"}}}},
                {"if": {"properties": {"mode": {"enum": ["official", "gateway"]}}, "required": ["mode"]},
                 "then": {"required": ["group_id"], "properties": {"group_id": {"type": "string"}}}},
            ]
        }
    )

    platform: Literal["whatsapp"]
    name: VisibleName = Field(min_length=1, max_length=100, pattern=NAME_PATTERN, description="shown to members; not only spaces")
    mode: Literal["manual", "official", "gateway"] = Field(
        default="manual",
        description="manual: members get invite_link, you get removal tasks; official: Meta's Groups API "
        "(Official Business Accounts, at most 8 participants); gateway: your linked-device gateway "
        "(against Meta's terms, the number can be banned)",
    )
    invite_link: str | None = Field(
        default=None, pattern=r"^https://chat\.whatsapp\.com/[A-Za-z0-9]{10,64}$",
        description="manual mode: the group's invite link (WhatsApp: Group info → Invite via link)",
    )
    group_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_\-=@.]{1,256}$",
        description="official mode: the Groups API group id; gateway mode: the group id your gateway uses",
    )
    locale: Literal["en", "fr"] = "en"
    reason: str | None = Field(default=None, min_length=1, max_length=500, pattern=NAME_PATTERN,
                               description="why (kept with the action in GET /admin/audit)")


class CommunityOut(BaseModel):
    id: str
    platform: str
    name: str
    external_id: str = Field(description="the place on its platform: Discord guild id, Telegram chat id, WhatsApp group id")
    guild_id: str | None = Field(default=None, description="for a Discord community, its server (guild) id")
    role_id: str | None
    on_revoke: str
    locale: str
    created_at: str
    mode: str | None = Field(default=None, description="WhatsApp: manual, official or gateway")
    invite_link: str | None = Field(default=None, description="WhatsApp manual mode: the link members receive")
    archived_at: str | None = Field(default=None, description="when it was archived (no new plan may grant it); null while open")


class CommunityPatch(_Strict):
    """Only the fields given change; the place (guild, chat) and the role stay as registered."""

    name: VisibleName | None = Field(default=None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    locale: Literal["en", "fr"] | None = Field(default=None, description="the language of member messages")
    on_revoke: Literal["remove_role", "kick"] | None = Field(
        default=None, description="Discord only: what ending access does ('remove_role' needs the community's role)")
    reason: str | None = Field(default=None, min_length=1, max_length=500, pattern=NAME_PATTERN,
                               description="why (kept with the action in GET /admin/audit)")


class CommunitiesOut(BaseModel):
    communities: list[CommunityOut]


class GrantIn(_Strict):
    community_id: str = Field(pattern=ID_PATTERN)
    role_id: str | None = Field(default=None, pattern=SNOWFLAKE)


def _integral(value: object) -> object:
    # JSON Schema's "integer" includes 5.0: take it, still refusing "5" and 5.5 (strict types).
    return int(value) if isinstance(value, float) and value.is_integer() else value


Seats = Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(_integral)]
TrialDays = Annotated[int, Field(ge=1, le=730), BeforeValidator(_integral)]  # Stripe's trial limit: 730 days


class CheckoutOptionsIn(_Strict):
    """What Stripe Checkout offers or asks for this plan, beyond its prices (Stripe's parameter names)."""

    allow_promotion_codes: bool = Field(default=True, description="the member may enter a Stripe promotion code")
    automatic_tax: bool = Field(
        default=False, description="Stripe Tax computes and collects tax (only where the deployment's StripeTax is on)"
    )
    phone_number_collection: bool = Field(default=False, description="Checkout asks for a phone number")


class CheckoutOptionsPatch(_Strict):
    allow_promotion_codes: bool | None = None
    automatic_tax: bool | None = None
    phone_number_collection: bool | None = None


class CheckoutOptionsOut(BaseModel):
    allow_promotion_codes: bool = True
    automatic_tax: bool = False
    phone_number_collection: bool = False


class ReasonIn(_Strict):
    """An optional "why" for actions without other fields (archive, resync, claim link)."""

    reason: str | None = Field(default=None, min_length=1, max_length=500, pattern=NAME_PATTERN,
                               description="why (kept with the action in GET /admin/audit)")


class PlanIn(_Strict):
    # The cross-field rule, in the document too: a pass needs access_days, other kinds refuse it.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"kind": {"const": "pass"}}, "required": ["kind"]},
            "then": {"required": ["access_days"], "properties": {"access_days": {"type": "integer"}}},
            "else": {"properties": {"access_days": {"type": "null"}}},
        }
    )

    name: VisibleName = Field(min_length=1, max_length=100, pattern=NAME_PATTERN, description="shown to members; not only spaces")
    stripe_price_ids: list[Annotated[str, Field(pattern=PRICE_PATTERN)]] = Field(
        min_length=1, max_length=20, description="Stripe price ids (price_...), never empty"
    )
    grants: list[GrantIn] = Field(min_length=1, max_length=20)
    grace_days: int = Field(default=3, ge=0, le=60)
    on_grace_end: Literal["cancel", "keep_retrying"] = "cancel"
    kind: Literal["subscription", "pass", "lifetime"] = Field(
        default="subscription",
        description="subscription (recurring prices), pass (one payment, access for access_days) or "
        "lifetime (one payment, no end)",
    )
    access_days: int | None = Field(default=None, ge=1, le=3660, description="a pass's length in days")
    description: str = Field(default="", max_length=2000, description="what the plan includes, shown to members on the join page")
    checkout: CheckoutOptionsIn = Field(default_factory=CheckoutOptionsIn)
    renewal_notice_days: int | None = Field(
        default=7, ge=1, le=60, description="days before each renewal the member is told it is coming; null: no notice"
    )
    trial_notice_days: int | None = Field(
        default=3, ge=1, le=60, description="days before a free trial ends the member is told; null: no notice"
    )
    welcome_message: str = Field(
        default="", max_length=1500,
        description="plain text sent once on a member's first access; placeholders {name} {community} {manage_url}; "
        "empty: the default welcome in the community's language",
    )
    seats: Seats | None = Field(
        default=None, description="how many members may ever buy it (a founder price); null: no limit"
    )
    trial_days: TrialDays | None = Field(
        default=None, description="subscriptions: free trial days, once per identity (account, email, card); null: none"
    )
    dispute_policy: Literal["revoke", "keep"] | None = Field(
        default=None, description="what a dispute (chargeback) on a payment for this plan does: revoke (access ends "
        "until it is won, billing paused meanwhile) or keep; absent or null: the deployment's DisputePolicy"
    )
    downgrade: Literal["immediate", "period_end"] = Field(
        default="immediate", description="subscriptions: when a member leaving this plan for a cheaper tier of its "
        "offer moves: immediate (prorated) or period_end (they keep this tier until the period they paid for ends)"
    )
    reason: str | None = Field(default=None, min_length=1, max_length=500, pattern=NAME_PATTERN,
                               description="why (kept with the action in GET /admin/audit)")


class PlanPatch(_Strict):
    """Only the fields given change; grants stay as created (archive and create anew). New prices
    are checked at Stripe like at creation; members already paying a removed price keep the plan."""

    name: VisibleName | None = Field(default=None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    stripe_price_ids: list[Annotated[str, Field(pattern=PRICE_PATTERN)]] | None = Field(
        default=None, min_length=1, max_length=20, description="Stripe price ids (price_...), never empty"
    )
    grace_days: int | None = Field(default=None, ge=0, le=60)
    on_grace_end: Literal["cancel", "keep_retrying"] | None = None
    checkout: CheckoutOptionsPatch | None = Field(default=None, description="only the options given change")
    renewal_notice_days: int | None = Field(
        default=None, ge=1, le=60, description="days before each renewal the member is told; null: no notice"
    )
    trial_notice_days: int | None = Field(
        default=None, ge=1, le=60, description="days before a free trial ends the member is told; null: no notice"
    )
    welcome_message: str | None = Field(
        default=None, max_length=1500,
        description="plain text sent once on a member's first access; placeholders {name} {community} {manage_url}; "
        "empty or null: the default welcome",
    )
    seats: Seats | None = Field(
        default=None, description="a new limit (seats already taken stay taken); null removes the limit"
    )
    trial_days: TrialDays | None = Field(
        default=None, description="free trial days for checkouts from now on; null removes the trial"
    )
    dispute_policy: Literal["revoke", "keep"] | None = Field(
        default=None, description="revoke or keep, for disputes opened from now on (one already open keeps its "
        "policy); null: back to the deployment's DisputePolicy"
    )
    downgrade: Literal["immediate", "period_end"] | None = Field(
        default=None, description="immediate or period_end, for switches to a cheaper tier made from now on (one "
        "already scheduled stays scheduled); absent or null: unchanged"
    )
    reason: str | None = Field(default=None, min_length=1, max_length=500, pattern=NAME_PATTERN,
                               description="why (kept with the action in GET /admin/audit)")


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
    kind: str = "subscription"
    access_days: int | None = None
    description: str = ""
    archived_at: str | None = Field(default=None, description="when the offer closed (join link 410); null while open")
    checkout: CheckoutOptionsOut = Field(default_factory=CheckoutOptionsOut)
    renewal_notice_days: int | None = None
    trial_notice_days: int | None = None
    welcome_message: str = Field(default="", description="the creator's welcome; empty: the default welcome is sent")
    seats: int | None = Field(default=None, description="how many members may ever buy it; null: no limit")
    seats_taken: int | None = Field(
        default=None, description="seats paid for or held by an open checkout; null without a limit"
    )
    trial_days: int | None = Field(default=None, description="free trial days, once per identity; null: none")
    dispute_policy: str | None = Field(
        default=None, description="revoke or keep: what a dispute on a payment for it does; null: the deployment's DisputePolicy"
    )
    downgrade: str = Field(
        default="immediate", description="immediate or period_end: when a member leaving it for a cheaper tier moves"
    )


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


class IdentityOut(BaseModel):
    platform: Literal["discord", "telegram", "whatsapp"]
    external_id: str = Field(description="Discord user id, Telegram user id, or WhatsApp phone in E.164")


class MessageOut(BaseModel):
    kind: str
    state: Literal["queued", "retrying", "sent", "failed"]
    reason: str | None = Field(default=None, description="why it is not sent, e.g. the platform's refusal (dms_closed)")
    at: str | None = None


class PendingSwitchOut(BaseModel):
    subscription_id: str
    from_plan_id: str = Field(description="the tier the member keeps until then")
    plan_id: str = Field(description="the tier they move to")
    at: str = Field(description="when (ISO 8601): the subscription's period end, when Stripe changes the price")


class MemberOut(BaseModel):
    id: str
    stripe_customer_id: str | None
    identities: list[IdentityOut]
    entitlements: list[EntitlementOut]
    access: list[AccessOut]
    messages: list[MessageOut] = []
    created_at: str
    origin: str
    pending_switches: list[PendingSwitchOut] = Field(
        default=[], description="downgrades waiting for the period end (the plan left has downgrade: period_end); "
        "switching back to from_plan_id cancels one")


class MembersOut(BaseModel):
    members: list[MemberOut]
    next_cursor: str | None = Field(
        default=None, description="pass as ?cursor= for the next page; null on the last page (and for a search)"
    )


class TimelineEntryOut(BaseModel):
    at: str | None = Field(description="when (ISO 8601, UTC); entitlements are shown as of now")
    kind: Literal["joined", "subscription", "payment", "entitlement", "access", "message", "erasure", "survey", "admin"]
    summary: str
    detail: dict[str, str | int | None] = {}


class TimelineOut(BaseModel):
    member_id: str
    entries: list[TimelineEntryOut] = Field(description="oldest first")


class ClaimLinkOut(BaseModel):
    member_id: str
    claim_url: str = Field(description="send it to the member: opening it and connecting Discord binds their account")
    expires_at: str


class IdentityIn(_Strict):
    # A WhatsApp account is a phone in E.164 (the rule in the document too).
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"platform": {"const": "whatsapp"}}, "required": ["platform"]},
            "then": {"properties": {"external_id": {"pattern": WHATSAPP_PHONE_PATTERN}}},
        }
    )

    platform: Literal["discord", "telegram", "whatsapp"]
    external_id: str = Field(pattern=r"^\+?[0-9]{1,20}$",
                             description="Discord user id, Telegram user id, or WhatsApp phone in E.164")


class RelinkFailureOut(BaseModel):
    community_id: str
    reason: str


class RelinkOut(BaseModel):
    member_id: str
    platform: str
    external_id: str
    previous_external_id: str | None = Field(description="the account that lost access, if there was one")
    old_account_revoked: list[str] = Field(description="communities where the old account lost access now")
    old_account_failed: list[RelinkFailureOut] = Field(description="where it could not be: fix, then relink again")
    communities: list[str] = Field(description="communities re-converged for the new account")


class ResyncOut(BaseModel):
    member_id: str
    communities: list[str] = Field(description="communities whose access is being brought in line with the entitlements")


class CheckOut(BaseModel):
    name: str
    ok: bool
    fix: str | None = Field(default=None, description="what to do in the platform to make this check pass")


class PreflightOut(BaseModel):
    community_id: str
    ok: bool | None = Field(description="every check passed; null when this platform has no preflight here")
    checks: list[CheckOut]


class HealthCheckOut(BaseModel):
    check: str = Field(description="what was checked, e.g. 'secret /membergate/stripe-api-key is set'")
    ok: bool
    fix: str | None = Field(default=None, description="what the creator does to make it pass; null when it passes")
    detail: str | None = Field(default=None, description="more about a failure (a count, a state)")


class HealthOut(BaseModel):
    ok: bool = Field(description="every check passed")
    checks: list[HealthCheckOut]


class MovementsOut(BaseModel):
    new: int
    expansion: int
    contraction: int
    churned: int
    reactivation: int


class ChurnSplitOut(BaseModel):
    members: int
    logo_rate: float | None
    mrr: dict[str, int] = Field(description="churned MRR per currency, in minor units")


class ChurnMonthOut(BaseModel):
    month: str = Field(description="YYYY-MM")
    logo_rate: float | None = Field(description="churned members / (paying at the start + new + reactivated)")
    revenue_rate: dict[str, float] = Field(description="(churned + contraction MRR) / MRR at the start, per currency")
    voluntary: ChurnSplitOut
    involuntary: ChurnSplitOut


class ChurnOut(BaseModel):
    logo_rate: float | None = Field(description="churned members / (paying at the start + new + reactivated)")
    revenue_rate: dict[str, float] = Field(description="(churned + contraction MRR) / MRR at the start, per currency")
    voluntary: ChurnSplitOut
    involuntary: ChurnSplitOut
    by_month: list[ChurnMonthOut]


class PlanConversionOut(BaseModel):
    views: int = Field(description="join page views of this plan (a browser once a day; bots never)")
    bound: int = Field(description="accounts bound from this plan's join page (Discord, Telegram, WhatsApp)")
    checkouts: int
    paid: int
    view_to_bound: float | None
    bound_to_checkout: float | None
    checkout_to_paid: float | None
    view_to_paid: float | None


class ConversionOut(BaseModel):
    views: int
    bound: int
    checkouts: int
    paid: int
    view_to_bound: float | None
    bound_to_checkout: float | None
    checkout_to_paid: float | None
    view_to_paid: float | None
    by_plan: dict[str, PlanConversionOut] = Field(default_factory=dict, description="the same funnel per plan id, "
                                                  "over the same days; plans with no step counted are left out")
    trials_ended: int
    trials_converted: int
    trial_to_paid: float | None


class CohortOut(BaseModel):
    month: str = Field(description="YYYY-MM of the members' first paid day")
    size: int
    retained: list[int] = Field(description="members of the cohort paying at the end of month 0, 1, ... (the last at 'to')")


class KpisOut(BaseModel):
    """Formulas: docs/kpis.md. Amounts in minor units, rounded half up; rates to 4 decimals."""

    active_paying_members: int = Field(description="paying now (grace included)")
    trialing_members: int = Field(description="trialing and not paying, at the end of 'to'")
    members_in_grace: int = Field(description="in grace now")
    members_with_access: int = Field(description="with access now")
    mrr: dict[str, int] = Field(description="monthly recurring revenue per currency at the end of 'to', in minor units, net of tax (docs/kpis.md#tax)")
    as_of: str
    period_start: str = Field(description="'from', YYYY-MM-DD (inclusive)")
    period_end: str = Field(description="'to', YYYY-MM-DD (inclusive)")
    time_zone: str
    mrr_start: dict[str, int] = Field(description="MRR per currency at the end of the day before 'from'")
    arr: dict[str, int] = Field(description="12 x MRR per currency")
    movements: dict[str, MovementsOut] = Field(description="MRR movements per currency over the period, positive amounts")
    paying_members: int = Field(description="paying at the end of 'to' (grace included)")
    grace_members: int = Field(description="in grace at the end of 'to'")
    churn: ChurnOut
    arpu: dict[str, int] = Field(description="MRR / members paying in that currency, at the end of 'to'")
    ltv: dict[str, int | None] = Field(description="ARPU / monthly logo churn rate; null when nobody churned")
    monthly_logo_churn_rate: float | None
    nrr: dict[str, float] = Field(description="end MRR of the members paying at the start / MRR at the start")
    conversion: ConversionOut
    cohorts: list[CohortOut]
    one_time_revenue: dict[str, int] = Field(description="passes paid in the period, per currency, net of tax (not in MRR)")
    lifetime_revenue: dict[str, int] = Field(description="lifetime access paid in the period, per currency, net of tax (not in MRR)")


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
    # The join page's required box (form value "on"): immediate access asked for, the 14-day
    # withdrawal right given up. Needed for a new checkout when the deployment has no TermsUrl.
    # JSON callers send true; a ticked HTML checkbox sends "on".
    waiver: bool | Literal["on"] = False


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


class EraseIn(_Strict):
    reason: str = Field(min_length=1, max_length=500, pattern=NAME_PATTERN,
                        description="why (e.g. 'member's request of 2026-11-30 by email'); kept as the erasure's record")


class WaitingOut(BaseModel):
    community_id: str
    state: str = Field(description="the member's access state there (granted, pending, retrying, invited, failed)")


class ErasureOut(BaseModel):
    member_id: str
    state: Literal["revoking", "erased"] = Field(
        description="revoking: access is being taken away (call again: 200 once erased); erased: done")
    reason: str
    requested_at: str
    erased_at: str | None = None
    waiting_for: list[WaitingOut] = Field(default=[], description="communities where the member still has access")
    removed: dict[str, int] = Field(default={}, description="items deleted, by kind")


class ExportIdentityOut(BaseModel):
    platform: str
    external_id: str
    handle: str | None = Field(default=None, description="the name shown with the account, when known")


class ExportCardOut(BaseModel):
    payment_method_id: str = Field(description="the Stripe payment method the next charge goes to")
    expires: str | None = Field(description="the card's expiry month, YYYY-MM, when Stripe said it")


class ExportSurveyOut(BaseModel):
    plan_id: str
    subscription_id: str
    choice: str = Field(description="the reason picked in the exit survey")
    comment: str | None = Field(description="what the member wrote, if anything")
    answered_at: str


class ExportMemberOut(BaseModel):
    id: str
    created_at: str
    origin: str
    stripe_customer_id: str | None
    identities: list[ExportIdentityOut]


class ExportPriceOut(BaseModel):
    price_id: str
    currency: str
    unit_amount: int | None
    quantity: int
    interval: str | None
    interval_count: int


class ExportStatusOut(BaseModel):
    at: str
    status: str


class ConsentOut(BaseModel):
    session_id: str = Field(description="the Checkout Session the member agreed in")
    at: str = Field(description="when (the checkout.session.completed event's time)")
    terms_of_service: Literal["accepted"] | None = Field(
        description="accepted: the member ticked the terms box (express consent); null: no box was shown (no TermsUrl)")
    text_version: str | None = Field(
        description="sha256 of the waiver text shown above the pay button, in the member's language; null: none")
    waiver: Literal["accepted"] | None = Field(
        default=None,
        description="accepted: the member ticked the join page's waiver box (no TermsUrl: Stripe shows no terms box)")


class ExportSubscriptionOut(BaseModel):
    subscription_id: str
    plan_id: str
    status: str | None
    current_period_end: str | None
    cancel_at_period_end: bool
    prices: list[ExportPriceOut]
    history: list[ExportStatusOut]
    consent: ConsentOut | None = Field(default=None, description="what the member agreed to at Checkout; null: not recorded")


class ExportPurchaseOut(BaseModel):
    purchase_id: str = Field(description="the Stripe Checkout Session that paid it")
    plan_id: str
    kind: str
    paid_at: str
    amount: int
    currency: str
    ended_reason: str | None
    consent: ConsentOut | None = Field(default=None, description="what the member agreed to at Checkout; null: not recorded")


class ExportCheckoutOut(BaseModel):
    plan_id: str
    attempt: int
    session_id: str | None
    expires_at: str | None


class ExportTokenOut(BaseModel):
    kind: Literal["session", "claim"] = Field(description="a signed-in browser, or a claim link (stored as digests only)")
    expires_at: str


class ExportEventOut(BaseModel):
    event_id: str
    type: str
    created: str
    status: str


class ExportOut(BaseModel):
    exported_at: str
    member: ExportMemberOut
    subscriptions: list[ExportSubscriptionOut]
    purchases: list[ExportPurchaseOut]
    entitlements: list[EntitlementOut]
    access: list[AccessOut]
    messages: list[MessageOut]
    checkout_attempts: list[ExportCheckoutOut]
    tokens: list[ExportTokenOut]
    stripe_events: list[ExportEventOut] = Field(description="Stripe events about the member in the ledger (last 31 days)")
    erasure: ErasureOut | None
    held_elsewhere: str = Field(description="what Membergate does not hold, and where it is")
    email: str | None = Field(default=None, description="the address messages go to when the platform cannot carry them")
    card_on_file: ExportCardOut | None = Field(default=None, description="the card on file, for card-expiry warnings")
    survey_answers: list[ExportSurveyOut] = Field(default_factory=list, description="exit-survey answers (erased with the member)")


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable (e.g. invalid_request, unauthorized, not_found)")
    message: str = Field(description="what went wrong and what to do next")
    field: str | None = Field(default=None, description="the request field at fault, when there is one")


class ErrorOut(BaseModel):
    """The one error envelope of every route, for every status."""

    error: ErrorBody


class TaskOut(BaseModel):
    id: str
    kind: Literal["remove"] = Field(description="remove: take this phone out of the WhatsApp group yourself")
    phone: str = Field(description="the member's phone, E.164")
    member_id: str | None
    due: str = Field(description="when access ended (ISO 8601)")
    done: bool


class TasksOut(BaseModel):
    tasks: list[TaskOut]


class SurveyAnswerOut(BaseModel):
    member_id: str
    plan_id: str
    subscription_id: str
    choice: str = Field(description="too_expensive, not_using, content, temporary or other")
    comment: str
    answered_at: str


class SurveysOut(BaseModel):
    answers: list[SurveyAnswerOut]
