"""A switch and a switch back in the same second, through the real handlers under moto and the Stripe sandbox:
whatever order the two updates arrive in, the processor reads the subscription back and the member ends on
the tier Stripe has."""

from __future__ import annotations

import json

import pytest

from infra.local.stripe_sandbox import WsgiStripeHttpClient
from membergate import bootstrap
from membergate.adapters.stripe_billing import StripeBillingGateway
from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, pay, subscription_of
from tests.integration.test_tier_switch import entitled_plans, member_id_of, two_tiers
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.dynamodb_calls import dynamodb_calls
from tests.support.pipeline import STRIPE_BASE, Pipeline

pytestmark = pytest.mark.integration

VIP_ROLE = "700000000000000009"  # test_tier_switch's VIP role
DAY = 86_400


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE, VIP_ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


def stripe_on(p: Pipeline) -> StripeBillingGateway:
    """Membergate's Stripe gateway on the pipeline's sandbox (the member's own change, made at Stripe)."""
    return StripeBillingGateway.build("rk_test_local", STRIPE_BASE, http_client=WsgiStripeHttpClient(p.sandbox.wsgi_app, STRIPE_BASE))


@pytest.mark.parametrize("order", ["switch first", "switch back first"])
def test_switch_and_switch_back_in_one_second_either_order_ends_on_the_tier_stripe_has(pipeline, order):
    p = pipeline
    # Given a member paying Basic, half-way through the month
    basic, vip = two_tiers(p)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id, member_id = subscription_of(p), member_id_of(p)
    p.advance(15 * DAY)
    # When the creator switches them to VIP and, within the same second, the switch back to Basic is made
    # at Stripe, before any of it is processed
    assert p.admin("POST", f"/admin/members/{member_id}/switch", body={"plan_id": vip, "reason": "asked"})["status"] == 200
    stripe_on(p).switch_subscription_price(subscription_id=sub_id, price_id="price_tier_basic", member_id=member_id,
                                           plan_id=basic, idempotency_key="switch-back")
    pending = p.stack.take_pending_events()
    updates = [e for e in pending if json.loads(e["body"])["type"] == "customer.subscription.updated"]
    assert len(updates) == 2
    assert len({json.loads(e["body"])["created"] for e in updates}) == 1  # Stripe dates both to the same second
    assert [i["price"]["id"] for i in p.sandbox.subscription(sub_id)["items"]["data"]] == ["price_tier_basic"]
    # and the two updates are processed in the order given, the rest after
    first, second = updates if order == "switch first" else reversed(updates)
    p.advance(2)
    calls = []
    for envelope in (first, second):
        p.stack.hand_overs(json.dumps(envelope).encode())
        with dynamodb_calls() as seen:
            p.stack.hand_overs.run_pending()
        calls.append(sum(seen.values()))
    for envelope in pending:
        if envelope not in updates:
            p.stack.hand_overs(json.dumps(envelope).encode())
    p.pump()
    # Then the second of the pair was settled by reading the subscription back from Stripe, with no extra
    # DynamoDB call for the read
    ledger = bootstrap.processor().processor.stores.ledger
    details = [ledger.get(json.loads(e["body"])["id"]).detail for e in (first, second)]
    assert "read back from Stripe" not in details[0] and "same-second tie read back from Stripe" in details[1]
    assert calls[1] == calls[0], calls
    # and the member is on Basic, as Stripe has it, with Basic's role only
    record = bootstrap.processor().processor.stores.subscriptions.get(member_id, sub_id)
    assert record is not None and record.latest is not None and record.latest.price_ids == ("price_tier_basic",)
    assert entitled_plans(p).get(basic) == "active" and entitled_plans(p).get(vip) != "active"
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
