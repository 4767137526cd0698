"""Tiers of one offer: picking another tier switches the live subscription, never sells a second one."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from membergate.domain.billing import SubscriptionRecord, merge_checkout_gate, merge_snapshot
from membergate.domain.errors import ConflictError, SoldOutError, ThrottledError
from membergate.domain.model import CheckoutAttempt, CheckoutGate, EntitlementState, Plan, PlanGrant
from membergate.domain.seats import SeatTake, is_stale_hold
from membergate.domain.stripe_events import parse_event, subscription_snapshot
from membergate.domain.tiers import MoveKind, choose_move
from membergate.ports import CheckoutSession
from membergate.services.checkout import CheckoutRequest, TierSwitch, release_seat, start_checkout
from membergate.services.tier_switch import switch_tier
from tests.support import stripe_events as se
from tests.support.checkout_locks import FakeCheckoutLocks
from tests.support.fakes import FakeBilling
from tests.support.harness import DAY, ROLE, T0, VIP_ROLE, Harness
from tests.support.seats import FakeSeatStore

pytestmark = pytest.mark.unit

MONTHLY = Plan("pln_monthly", "Monthly", ("price_monthly",), (PlanGrant("com_1"),), 3, "cancel", T0)  # type: ignore[arg-type]
VIP = Plan("pln_vip", "VIP", ("price_vip",), (PlanGrant("com_1", VIP_ROLE),), 3, "cancel", T0)  # type: ignore[arg-type]
ELSEWHERE = Plan("pln_other", "Other", ("price_other",), (PlanGrant("com_2"),), 3, "cancel", T0)  # type: ignore[arg-type]
PLANS = {p.id: p for p in (MONTHLY, VIP, ELSEWHERE)}


def record(status: str, plan: Plan = MONTHLY, *, gate: CheckoutGate = CheckoutGate.PAID) -> SubscriptionRecord:
    snap = subscription_snapshot(parse_event(se.subscription_event(
        created=T0, status=status, member_id="mbr_1", price_id=plan.stripe_price_ids[0])))
    empty = SubscriptionRecord("sub_1", "mbr_1", "cus_1", plan.id)
    return merge_checkout_gate(merge_snapshot(empty, snap), gate)


@pytest.mark.parametrize(
    ("records", "target", "kind"),
    [
        ([], VIP, MoveKind.NEW),
        ([record("active")], VIP, MoveKind.SWITCH),
        ([record("past_due")], VIP, MoveKind.SWITCH),
        ([record("trialing")], VIP, MoveKind.SWITCH),
        ([record("active")], MONTHLY, MoveKind.SAME),
        ([record("active", gate=CheckoutGate.AWAITING)], VIP, MoveKind.SETTLING),
        ([record("canceled")], VIP, MoveKind.NEW),
        ([record("active")], ELSEWHERE, MoveKind.NEW),
    ],
    ids=["nothing", "active-other-tier", "grace-other-tier", "trial-other-tier", "same-plan", "sepa-settling",
         "ended", "other-offer"],
)
def test_choose_move_by_what_the_member_holds(records, target, kind):
    assert choose_move(target, records, PLANS, T0 + 60).kind is kind


def paid_monthly(h: Harness) -> None:
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    h.run_access()


def checkout(h: Harness, plan_id: str):
    request = CheckoutRequest("mbr_1", plan_id, None, "https://m.example/ok", "https://m.example/no", waiver=True)
    return start_checkout(request, stores=h.stores, billing=h.billing, now=h.now)


def test_start_checkout_on_another_tier_switches_the_live_subscription():
    # Given a member paying for the monthly tier
    h = Harness()
    paid_monthly(h)
    h.stores.members.attach_customer("mbr_1", "cus_1")
    # When they pick the VIP tier of the same community (twice: a double click)
    first = checkout(h, "pln_vip")
    second = checkout(h, "pln_vip")
    # Then their subscription is switched once, prorated, and no Checkout Session is created
    assert first == second == TierSwitch("sub_1", "pln_monthly", "pln_vip")
    assert len(h.billing.switches) == 1
    assert h.billing.switches[0]["subscription_id"] == "sub_1"
    assert h.billing.switches[0]["price_id"] == "price_vip"
    assert h.billing.sessions == {}


def with_seats(h: Harness, plan_id: str, seats: int) -> FakeSeatStore:
    store = FakeSeatStore()
    h.stores = replace(h.stores, seats=store)
    h.stores.catalog.plans[plan_id] = replace(h.stores.catalog.get_plan(plan_id), seats=seats)
    return store


def test_start_checkout_on_a_sold_out_tier_is_refused_and_nothing_is_switched():
    # Given a member paying for the monthly tier, and a one-seat VIP tier whose seat another member holds
    h = Harness()
    paid_monthly(h)
    seats = with_seats(h, "pln_vip", 1)
    assert seats.take("pln_vip", "mbr_other", 1, h.now) is SeatTake.TAKEN
    # When they pick the VIP tier
    with pytest.raises(SoldOutError, match="sold out"):
        checkout(h, "pln_vip")
    # Then their subscription is not switched and the one seat is still the other member's
    assert h.billing.switches == []
    assert seats.taken("pln_vip") == 1 and ("pln_vip", "mbr_1") not in seats.holds


def test_start_checkout_switch_onto_a_seats_tier_takes_a_seat_kept_for_good():
    # Given a member paying for the monthly tier, and a two-seat VIP tier with none taken
    h = Harness()
    paid_monthly(h)
    seats = with_seats(h, "pln_vip", 2)
    # When they switch to VIP (twice: a double click)
    assert checkout(h, "pln_vip") == checkout(h, "pln_vip") == TierSwitch("sub_1", "pln_monthly", "pln_vip")
    # Then one seat is counted, held by the subscription, and not reclaimed as stale a day later
    assert seats.taken("pln_vip") == 1
    assert seats.holds[("pln_vip", "mbr_1")] == "sub_1"
    assert not is_stale_hold(seats.held_at[("pln_vip", "mbr_1")], seats.holds[("pln_vip", "mbr_1")], h.now + DAY)
    assert seats.take("pln_vip", "mbr_2", 2, h.now + DAY) is SeatTake.TAKEN
    assert seats.take("pln_vip", "mbr_3", 2, h.now + DAY) is SeatTake.SOLD_OUT
    # and an expired Checkout Session of that member gives nothing back
    assert not release_seat(h.stores, plan_id="pln_vip", member_id="mbr_1", session_id="cs_whatever")
    assert seats.taken("pln_vip") == 2


def test_switch_keeps_a_seat_held_for_an_older_session_so_its_expiry_gives_nothing_back():
    # Given a member paying monthly who still holds a VIP seat for a VIP session expired a moment ago
    # (another tier's checkout expired it; Stripe's checkout.session.expired is still on its way)
    h = Harness()
    paid_monthly(h)
    seats = with_seats(h, "pln_vip", 1)
    seats.take("pln_vip", "mbr_1", 1, h.now)
    seats.attach("pln_vip", "mbr_1", "cs_old", None)
    # When they switch to VIP, then the old session's expiry arrives
    checkout(h, "pln_vip")
    released = release_seat(h.stores, plan_id="pln_vip", member_id="mbr_1", session_id="cs_old")
    # Then the seat stays theirs, counted once, held by the subscription
    assert not released
    assert seats.taken("pln_vip") == 1 and seats.holds[("pln_vip", "mbr_1")] == "sub_1"


def test_start_checkout_switch_refused_by_stripe_gives_the_seat_back():
    # Given a member paying for the monthly tier, a one-seat VIP tier, and Stripe refusing the update
    h = Harness()
    paid_monthly(h)
    seats = with_seats(h, "pln_vip", 1)
    h.billing.fail_with = RuntimeError("stripe down")
    # When they pick VIP
    with pytest.raises(RuntimeError):
        checkout(h, "pln_vip")
    # Then the seat is back on sale
    assert seats.taken("pln_vip") == 0 and seats.holds == {}


def test_tier_switch_moves_the_role_without_a_gap():
    # Given a member switched from monthly to VIP
    h = Harness()
    paid_monthly(h)
    h.connector.actions.clear()
    # When Stripe reports the subscription's new price
    h.deliver(se.subscription_event("customer.subscription.updated", created=T0 + DAY, member_id="mbr_1",
                                    price_id="price_vip"))
    h.run_access()
    # Then the VIP role is given before the monthly role is taken away, and only VIP is held
    assert h.states() == {"pln_vip": EntitlementState.ACTIVE}
    assert h.roles() == {VIP_ROLE}
    names = [(a[0], a[-1]) for a in h.connector.actions]
    assert names.index(("add_role", VIP_ROLE)) < names.index(("remove_role", ROLE))


def test_start_checkout_on_the_plan_already_held_is_refused():
    h = Harness()
    paid_monthly(h)
    with pytest.raises(ConflictError, match="already have"):
        checkout(h, "pln_monthly")


def test_start_checkout_expires_an_open_session_for_another_tier_first():
    # Given a member with an open Checkout Session for the monthly tier, not paid
    h = Harness()
    h.member()
    h.stores.checkouts.save_attempt(CheckoutAttempt("mbr_1", "pln_monthly", 1, "price_monthly", "cs_open",
                                                    "https://checkout.test/cs_open", T0 + 3600))
    # When they start a checkout for the VIP tier
    session = checkout(h, "pln_vip")
    # Then the monthly session is expired before the VIP one is handed out
    assert h.billing.expired == ["cs_open"]
    assert h.stores.checkouts.get_attempt("mbr_1", "pln_monthly").session_id is None
    assert session.url.startswith("https://checkout.test/")


def test_start_checkout_refused_when_the_other_tiers_session_was_just_paid():
    h = Harness()
    h.member()
    h.stores.checkouts.save_attempt(CheckoutAttempt("mbr_1", "pln_monthly", 1, "price_monthly", "cs_paid",
                                                    "https://checkout.test/cs_paid", T0 + 3600))
    h.billing.session_status["cs_paid"] = "complete"
    with pytest.raises(ConflictError, match="just went through"):
        checkout(h, "pln_vip")
    assert h.billing.sessions == {}


class SlowBilling(FakeBilling):
    """Stripe taking a moment to make a session: wide enough for two requests to interleave."""

    def create_checkout_session(self, **params):
        time.sleep(0.05)
        return super().create_checkout_session(**params)


def two_tabs_at_once(h: Harness, plans: tuple[str, str]) -> list[object]:
    h.billing = SlowBilling()
    gate = threading.Barrier(2)
    results: list[object] = [None, None]

    def tab(index: int) -> None:
        gate.wait()
        try:
            results[index] = checkout(h, plans[index])
        except Exception as error:  # noqa: BLE001 - recorded for the assertion
            results[index] = error

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def open_sessions(h: Harness) -> set[str]:
    return {s.id for s in h.billing.sessions.values()} - set(h.billing.expired)


@pytest.mark.parametrize("attempt", range(5))
def test_two_tabs_two_tiers_at_the_same_moment_leave_one_open_session(attempt):
    # Given a member without a subscription, and checkout leases wired
    h = Harness()
    h.member()
    h.stores = replace(h.stores, checkout_locks=FakeCheckoutLocks())
    # When two tabs start a checkout for two tiers of the same community at the same moment
    results = two_tabs_at_once(h, ("pln_monthly", "pln_vip"))
    # Then both got a session, made one after the other: the first was expired before the second was
    # made, so only one can be paid (never two subscriptions)
    assert all(isinstance(r, CheckoutSession) for r in results), results
    assert len(h.billing.sessions) == 2
    assert len(open_sessions(h)) == 1
    assert h.stores.checkout_locks.leases == {}  # both leases given back


def test_double_click_on_one_tier_waits_and_gets_the_same_session():
    # Given a member without a subscription, and checkout leases wired
    h = Harness()
    h.member()
    locks = FakeCheckoutLocks()
    h.stores = replace(h.stores, checkout_locks=locks)
    # When the same tier is asked twice at the same moment
    first, second = two_tabs_at_once(h, ("pln_vip", "pln_vip"))
    # Then one Stripe session was made and both requests answer it
    assert isinstance(first, CheckoutSession) and first == second
    assert len(h.billing.sessions) == 1 and h.billing.expired == []


def test_checkout_lease_held_elsewhere_too_long_is_a_429_that_says_to_retry():
    # Given another request holding the member's lease on the community (and not finishing)
    h = Harness()
    h.member()
    locks = FakeCheckoutLocks()
    h.stores = replace(h.stores, checkout_locks=locks)
    assert locks.acquire("mbr_1", "com_1", "other", h.now, 30)
    waits: list[float] = []
    request = CheckoutRequest("mbr_1", "pln_vip", None, "https://m.example/ok", "https://m.example/no", waiver=True)
    # When a checkout starts
    with pytest.raises(ThrottledError, match="another tab"):
        start_checkout(request, stores=h.stores, billing=h.billing, now=h.now, pause=waits.append)
    # Then it waited about six seconds in small steps, made no session, and left the other's lease alone
    assert 5.9 <= sum(waits) <= 6.3 and max(waits) <= 0.2
    assert h.billing.sessions == {} and locks.leases[("mbr_1", "com_1")][0] == "other"


def test_switch_tier_while_the_payment_settles_points_to_a_route_that_exists():
    # Given a member whose SEPA payment for the monthly tier is still being confirmed
    h = Harness()
    h.member()
    h.stores.subscriptions.save(record("active", gate=CheckoutGate.AWAITING))
    # When the creator switches them to VIP
    with pytest.raises(ConflictError) as refused:
        switch_tier(h.stores, h.billing, member_id="mbr_1", plan_id="pln_vip", price_id=None, reason="upgrade",
                    actor="creator", now=T0 + DAY)
    # Then the 409 names the member lookup the admin API has (and the CLI's), not GET /admin/members/{id}
    assert "GET /admin/members?member_id=mbr_1" in refused.value.message
    assert "membergate member mbr_1" in refused.value.message
    assert "GET /admin/members/mbr_1" not in refused.value.message


def test_founder_seat_stays_taken_after_the_member_switches_away_from_that_tier():
    # Given a one-seat VIP tier (a founder price) taken by a member who switched onto it from monthly
    h = Harness()
    paid_monthly(h)
    seats = with_seats(h, "pln_vip", 1)
    assert checkout(h, "pln_vip") == TierSwitch("sub_1", "pln_monthly", "pln_vip")
    h.deliver(se.subscription_event(created=T0 + 60, member_id="mbr_1", price_id="price_vip"))
    # When they switch back to monthly, and Stripe confirms it
    h.now += 120
    assert checkout(h, "pln_monthly") == TierSwitch("sub_1", "pln_vip", "pln_monthly")
    h.deliver(se.subscription_event(created=T0 + 180, member_id="mbr_1", price_id="price_monthly"))
    # Then the seat stays counted (seats cap how many members can ever buy the tier), so nobody else gets it
    assert seats.taken("pln_vip") == 1 and seats.holds[("pln_vip", "mbr_1")] == "sub_1"
    assert seats.take("pln_vip", "mbr_2", 1, h.now) is SeatTake.SOLD_OUT
