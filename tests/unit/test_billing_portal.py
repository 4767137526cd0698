"""The self-service billing link: the use case with fakes, the per-client throttle and the join page."""

from __future__ import annotations

import pytest

from membergate.domain.errors import NoSubscriptionError, NotFoundError, RetryableError, ThrottledError
from membergate.domain.model import Identity, Member, Platform
from membergate.http.errors import status_for
from membergate.http.pages import join_page
from membergate.services.member_pages import IdentityStep, JoinPageView
from membergate.services.billing_portal import open_billing_portal
from membergate.services.checkout import check_rate
from tests.support.fakes import FakeBilling, fake_stores

pytestmark = pytest.mark.unit

T0 = 1_800_000_000
RETURN = "https://m.example/join/pln_monthly"


def stores_with(member: Member):
    stores = fake_stores()
    stores.members.create(member)
    return stores


def test_open_billing_portal_member_with_customer_returns_portal_url():
    # Given a member who subscribed (so has a Stripe customer)
    stores = stores_with(Member("mbr_1", T0, stripe_customer_id="cus_1", identities=(Identity(Platform.DISCORD, "555"),)))
    billing = FakeBilling()
    # When they open the billing portal
    url = open_billing_portal("mbr_1", RETURN, stores=stores, billing=billing)
    # Then they get a portal session for their own customer that leads back to the join page
    assert billing.portal_sessions == [("cus_1", RETURN, url)]
    assert url.startswith("https://billing.test/")


def test_open_billing_portal_member_without_customer_raises_clear_no_subscription_error():
    # Given a member who connected Discord but never started a subscription
    stores = stores_with(Member("mbr_1", T0, identities=(Identity(Platform.DISCORD, "555"),)))
    billing = FakeBilling()
    # When they ask for the billing portal
    with pytest.raises(NoSubscriptionError) as raised:
        open_billing_portal("mbr_1", RETURN, stores=stores, billing=billing)
    # Then they are told what to do, Stripe is not called, and the edge answers 409
    assert "choose a plan from the join page" in raised.value.message
    assert "another Discord account" in raised.value.message
    assert raised.value.code == "no_subscription" and status_for(raised.value) == 409
    assert billing.portal_sessions == []


def test_open_billing_portal_unknown_member_raises_not_found():
    billing = FakeBilling()
    with pytest.raises(NotFoundError):
        open_billing_portal("mbr_nobody", RETURN, stores=fake_stores(), billing=billing)
    assert billing.portal_sessions == []


def test_open_billing_portal_stripe_unreachable_error_passes_through():
    # Given Stripe failing transiently
    stores = stores_with(Member("mbr_1", T0, stripe_customer_id="cus_1"))
    billing = FakeBilling()
    billing.fail_with = RetryableError("Stripe is unreachable")
    # When the portal is opened, then the retryable error reaches the edge (503) untouched
    with pytest.raises(RetryableError):
        open_billing_portal("mbr_1", RETURN, stores=stores, billing=billing)


def test_check_rate_portal_scope_counts_apart_from_checkout():
    # Given a client that used up its checkout allowance
    stores = fake_stores()
    for _ in range(2):
        check_rate(stores, "198.51.100.9", T0, limit=2, window=600)
    with pytest.raises(ThrottledError):
        check_rate(stores, "198.51.100.9", T0, limit=2, window=600)
    # When it opens the billing portal, then that is counted on its own
    check_rate(stores, "198.51.100.9", T0, limit=2, window=600, scope="portal")
    check_rate(stores, "198.51.100.9", T0, limit=2, window=600, scope="portal")
    with pytest.raises(ThrottledError) as raised:
        check_rate(stores, "198.51.100.9", T0, limit=2, window=600, scope="portal")
    assert "billing page requests" in raised.value.message


# --- the join page ------------------------------------------------------------------------------


def page(*, discord_user_id: str | None = "555", plan_access: tuple[str, int] | None = None, **overrides) -> str:
    step = IdentityStep("discord", "oauth", bound=discord_user_id is not None, connect_url="/auth/discord/start?plan_id=pln_1")
    values = dict(plan_id="pln_1", plan_name="Monthly", description="", locale="en", prices=(), prices_unavailable=False,
                  places=(), identity_steps=(step,), bound=discord_user_id is not None,
                  plan_access_state=plan_access[0] if plan_access else None,
                  plan_access_until=plan_access[1] if plan_access else None)
    values.update(overrides)
    return join_page(JoinPageView(**values))


def test_join_page_manage_link_not_connected_asks_for_the_subscribed_account():
    # When a member follows the reminder's ?manage=1 link without a session
    text = page(discord_user_id=None, manage=True)
    # Then they are told which Discord account to connect, and nothing offers payment
    assert "Connect the Discord account you subscribed with to manage your billing" in text
    assert "Connect Discord" in text and "Continue to payment" not in text


def test_join_page_grace_with_customer_shows_manage_button_not_payment():
    # Given a connected member in grace for this plan
    text = page(plan_access=("grace", T0), has_billing=True, manage=True)
    # Then the page says until when they keep access and offers the portal, not a second checkout
    assert "didn't go through" in text and "2027-01-15" in text
    assert "Manage billing (card, invoices, cancel)" in text and "action='/billing/portal'" in text
    assert "Continue to payment" not in text


def test_join_page_active_member_sees_state_and_manage_button():
    text = page(plan_access=("active", T0 + 86_400), has_billing=True)
    assert "subscription is active" in text
    assert "Manage billing" in text and "Continue to payment" not in text


def test_join_page_connected_without_customer_offers_payment_only():
    # Given a connected member who never paid, following the manage link
    text = page(manage=True)
    # Then the page explains there is nothing to manage and offers the plan
    assert "no subscription for this Discord account" in text
    assert "Continue to payment" in text and "Manage billing" not in text


def test_join_page_lapsed_member_with_customer_can_pay_again_and_manage():
    # A member whose subscription ended still has a Stripe customer (invoices, old card)
    text = page(has_billing=True)
    assert "Continue to payment" in text and "Manage billing" in text
