"""Personal links in member messages: one tap from a payment reminder to Stripe's billing portal.

A DM or email is read wherever the member is, often not in the browser that connected Discord, so
the link itself says who it is for: a random token, stored only as its SHA-256 digest, for one
purpose, until it expires (like the links in Stripe's own emails).
"""

from __future__ import annotations

import hashlib
import secrets

from ..domain.errors import NotFoundError
from ..ports import BillingGateway, MemberLink, MemberLinkStore, Stores
from .billing_portal import open_billing_portal

PORTAL = "portal"
# A payment reminder's link outlives the grace period it is about.
PORTAL_LINK_LIFETIME = 30 * 86_400


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_portal_link(store: MemberLinkStore, member_id: str, plan_id: str, now: int) -> str:
    token = secrets.token_urlsafe(24)
    store.put_link(_digest(token), MemberLink(member_id, PORTAL, plan_id, now + PORTAL_LINK_LIFETIME))
    return token


def open_portal_link(token: str, base_url: str, *, stores: Stores, billing: BillingGateway, now: int) -> str:
    """The URL of a fresh portal session for the member the link was made for."""
    link = stores.member_links.get_link(_digest(token)) if stores.member_links is not None else None
    if link is None or link.purpose != PORTAL or link.expires_at <= now:
        raise NotFoundError(
            "this billing link has expired or is not valid: open your membership page from the join link "
            "and choose Manage billing"
        )
    return_url = f"{base_url}/join/{link.plan_id}" if link.plan_id else base_url
    return open_billing_portal(link.member_id, return_url, stores=stores, billing=billing)
