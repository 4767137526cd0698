"""open_billing_portal: send a member to Stripe's customer portal (card, invoices, cancellation)."""

from __future__ import annotations

from ..domain.errors import NoSubscriptionError, NotFoundError
from ..ports import BillingGateway, Stores


def open_billing_portal(member_id: str, return_url: str, *, stores: Stores, billing: BillingGateway) -> str:
    """The URL of a fresh portal session for the member's Stripe customer.

    Sessions are short-lived and cheap, so one is created per visit rather than stored.
    """
    member = stores.members.get(member_id)
    if member is None:
        raise NotFoundError(f"member {member_id} does not exist")
    if member.stripe_customer_id is None:
        raise NoSubscriptionError(
            "you have no subscription yet, so there is no billing to manage: choose a plan from the join "
            "page, or, if you subscribed with another Discord account, connect that one instead"
        )
    return billing.create_portal_session(member.stripe_customer_id, return_url)
