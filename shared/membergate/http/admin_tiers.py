"""Admin API route for tier changes: POST /admin/members/{id}/switch moves a live subscription to another tier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel, Field

from ..domain.errors import PermanentError
from ..ports import BillingGateway
from ..services.tier_switch import switch_tier
from .admin_controls import REASON, actor
from .edge import ID_PATTERN, require_id
from .resolver import iso
from .schemas import _Strict


class SwitchIn(_Strict):
    plan_id: str = Field(pattern=ID_PATTERN, description="the tier to move to: a subscription plan of the same offer")
    price_id: str | None = Field(default=None, pattern=ID_PATTERN,
                                 description="one of the plan's prices (default: its first)")
    reason: str = REASON


class SwitchOut(BaseModel):
    subscription_id: str = Field(description="the member's subscription, kept: its price changes, Stripe prorates")
    from_plan_id: str
    plan_id: str
    price_id: str
    audit_id: str = Field(description="the subscription.switch entry in GET /admin/audit")
    effective: Literal["now", "period_end"] = Field(
        description="now: moved at once, prorated; period_end: a downgrade the plan being left makes wait, "
        "scheduled at Stripe (the member keeps their tier until then; switching back to it cancels the change)")
    at: str | None = Field(description="when the new tier starts (ISO 8601): now, or the period end")


def add_tier_routes(
    app: APIGatewayHttpResolver,
    *,
    stores_factory: Callable[[], Any],
    billing_factory: Callable[[], BillingGateway | None],
    now: Callable[[], int],
) -> None:
    @app.post("/admin/members/<member_id>/switch")
    def switch_member_tier(member_id: str, body: SwitchIn) -> SwitchOut:
        require_id(member_id, "member_id")
        billing = billing_factory()
        if billing is None:
            raise PermanentError(
                "this deployment's admin API has no Stripe key (StripeApiKeyName): set it, or switch the tier in the "
                "Stripe dashboard", reason="stripe_not_configured")
        done = switch_tier(stores_factory(), billing, member_id=member_id, plan_id=body.plan_id,
                           price_id=body.price_id, reason=body.reason, actor=actor(app), now=now())
        return SwitchOut(subscription_id=done.switch.subscription_id, from_plan_id=done.switch.from_plan_id,
                         plan_id=done.switch.to_plan_id, price_id=done.price_id, audit_id=done.audit_id,
                         effective="period_end" if done.switch.effective == "period_end" else "now",
                         at=iso(done.switch.at if done.switch.at is not None else now()))
