"""The switch service's downgrade branches: scheduled for the period end, recorded, released, and Stripe failing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from membergate.domain.billing import PriceInfo
from membergate.domain.errors import ConflictError, PermanentError
from membergate.services.checkout import CheckoutRequest, TierSwitch, start_checkout
from tests.support import stripe_events as se
from tests.support.harness import DAY, T0, Harness

pytestmark = pytest.mark.unit

PERIOD_END = T0 + 30 * DAY


def on_vip(h: Harness, *, downgrade: str = "period_end") -> None:
    """Member mbr_1 pays VIP (25.00 a month); Monthly is the cheaper tier (9.00), known at Stripe."""
    vip = h.stores.catalog.get_plan("pln_vip")
    assert vip is not None
    h.stores.catalog.update_plan(replace(vip, downgrade=downgrade))
    h.billing.prices = {"price_monthly": PriceInfo("price_monthly", 900, "eur", "recurring", "month"),
                        "price_vip": PriceInfo("price_vip", 2500, "eur", "recurring", "month")}
    h.billing.period_ends["sub_1"] = PERIOD_END
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1", price_id="price_vip",
                              amount=2500, period_end=PERIOD_END),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    h.run_access()


def pick(h: Harness, plan_id: str):
    request = CheckoutRequest("mbr_1", plan_id, None, "https://m.example/ok", "https://m.example/no")
    return start_checkout(request, stores=h.stores, billing=h.billing, now=h.now)


def test_downgrade_from_a_period_end_plan_is_scheduled_recorded_and_never_switched_now():
    # Given a member on VIP, whose downgrades wait
    h = Harness()
    on_vip(h)
    # When they pick the cheaper tier (twice: a double click)
    first, second = pick(h, "pln_monthly"), pick(h, "pln_monthly")
    # Then Stripe is asked once to schedule it (same key), no immediate switch is made, and the
    # subscription's record holds the pending change
    assert first == second == TierSwitch("sub_1", "pln_vip", "pln_monthly", "period_end", PERIOD_END)
    assert len(h.billing.scheduled) == 1 and h.billing.switches == []
    pending = h.stores.subscriptions.get("mbr_1", "sub_1").pending_change
    assert (pending.plan_id, pending.price_id, pending.at) == ("pln_monthly", "price_monthly", PERIOD_END)


def test_downgrade_from_an_immediate_plan_switches_now_and_asks_stripe_no_price():
    # Given a member on VIP with the default timing
    h = Harness()
    on_vip(h, downgrade="immediate")
    # When they pick the cheaper tier
    switched = pick(h, "pln_monthly")
    # Then it is the prorated switch of before, nothing scheduled (the prices are read once, to pick the
    # target's price in the subscription's currency: services/checkout.py::price_for_switch)
    assert switched == TierSwitch("sub_1", "pln_vip", "pln_monthly")
    assert len(h.billing.switches) == 1 and h.billing.scheduled == [] and len(h.billing.price_lookups) <= 1


def test_picking_the_current_tier_while_a_downgrade_waits_releases_it_and_clears_the_record():
    # Given a downgrade waiting
    h = Harness()
    on_vip(h)
    pick(h, "pln_monthly")
    # When the member picks VIP, the tier they are on
    kept = pick(h, "pln_vip")
    # Then the schedule is released, nothing is switched, and nothing is pending
    assert kept == TierSwitch("sub_1", "pln_vip", "pln_vip")
    assert [r["subscription_id"] for r in h.billing.releases] == ["sub_1"]
    assert h.billing.switches == []
    assert h.stores.subscriptions.get("mbr_1", "sub_1").pending_change is None


def test_picking_the_current_tier_with_nothing_pending_is_still_refused():
    # Given a member on VIP with nothing scheduled
    h = Harness()
    on_vip(h)
    # When they pick VIP
    # Then it is the 409 of before, and Stripe is not called
    with pytest.raises(ConflictError, match="you already have VIP"):
        pick(h, "pln_vip")
    assert h.billing.releases == []


def test_stripe_refusing_the_schedule_records_nothing_pending():
    # Given a member on VIP, and Stripe refusing the schedule
    h = Harness()
    on_vip(h)
    h.billing.fail_with = PermanentError("Stripe said no", "stripe_invalid")
    # When they pick the cheaper tier
    with pytest.raises(PermanentError):
        pick(h, "pln_monthly")
    # Then nothing is recorded as pending: the pages promise no change Stripe does not have
    assert h.stores.subscriptions.get("mbr_1", "sub_1").pending_change is None


def test_pending_change_is_over_once_stripe_applied_the_new_price():
    # Given a downgrade waiting
    h = Harness()
    on_vip(h)
    pick(h, "pln_monthly")
    # When Stripe's update at the period end arrives, on the cheaper price
    h.deliver(se.subscription_event(created=PERIOD_END, member_id="mbr_1", price_id="price_monthly", amount=900,
                                    period_end=PERIOD_END + 30 * DAY))
    # Then the record no longer announces a change: it happened
    assert h.stores.subscriptions.get("mbr_1", "sub_1").pending_change is None
