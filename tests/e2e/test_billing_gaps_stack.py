"""Issue-6 flows through the local stack's HTTP API that had none: a lifetime purchase refunded in full,
the creator's switch of a member's tier."""

from __future__ import annotations

import pytest

from tests.e2e.test_billing_flows_stack import connect, offer, pay, purchases, refund, roles_of, to_stripe
from tests.e2e.test_local_stack import entitlement_of

pytestmark = pytest.mark.e2e


def test_lifetime_purchase_refunded_in_full_ends_the_grant_and_the_role(stack):
    # Given lifetime access bought through the stack (guild/role/price ids used by no other test)
    plan_id, guild, role = offer(stack, tag="11", kind="lifetime", prices=[{
        "price_id": "price_e2e_gaps_life_refund", "unit_amount": 19900, "type": "one_time", "currency": "eur",
        "product_name": "Founder, refunded"}])
    browser = connect(stack, plan_id, "gaps-lifetime-lou")
    user_id, customer = pay(stack, browser, to_stripe(browser, plan_id), guild)
    assert entitlement_of(stack, customer)["state"] == "active"
    assert role in roles_of(stack, guild, user_id)
    # When the creator refunds the whole payment at Stripe
    refund(stack, customer)
    # Then the lifetime grant ends with reason refunded, the purchase says so, and the role goes
    ended = entitlement_of(stack, customer)
    assert (ended["plan_id"], ended["state"], ended["reason"]) == (plan_id, "ended", "refunded"), ended
    assert purchases(stack, customer) == [(plan_id, 19900, "eur", "refunded")]
    assert role not in roles_of(stack, guild, user_id)
