"""Seats (founder price) under moto: the last seat goes to exactly one member, expiries give seats back."""

from __future__ import annotations

import json
import threading

import pytest

from membergate import bootstrap
from membergate.domain.errors import RetryableError, SoldOutError
from membergate.domain.model import Identity, Member, Platform
from membergate.domain.seats import STALE_HOLD_SECONDS, SeatTake
from membergate.services.billing_events import BillingEventProcessor
from membergate.services.checkout import CheckoutRequest, start_checkout
from tests.integration.test_creator_controls import T0, call, stack_at
from tests.support import stripe_events as se
from tests.support.atomic_dynamo import atomic_writes
from tests.support.fakes import FakeBilling, FakeQueue

pytestmark = pytest.mark.integration


def _founder_plan(seats: int | None) -> str:
    _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
    status, plan = call("POST", "/admin/plans", {"name": "Founder", "stripe_price_ids": ["price_founder"],
                                                  "grants": [{"community_id": community["id"]}], "seats": seats})
    assert status == 201, plan
    return plan["id"]


def _members(count: int) -> list[str]:
    stores = bootstrap.admin().stores
    ids = [f"mbr_{i}" for i in range(count)]
    for i, member_id in enumerate(ids):
        stores.members.create(Member(member_id, T0))
        stores.members.bind_identity(member_id, Identity(Platform.DISCORD, str(900_000_000_000_000_000 + i)))
    return ids


def _checkout(member_id: str, plan_id: str, billing: FakeBilling):
    request = CheckoutRequest(member_id, plan_id, None, "https://m.example/ok", "https://m.example/no", waiver=True)
    return start_checkout(request, stores=bootstrap.admin().stores, billing=billing, now=T0)


def _expired(session_id: str, member_id: str, plan_id: str) -> dict:
    event = se.checkout_completed(created=T0 + 7200, member_id=member_id, type_="checkout.session.expired", event_id=f"evt_{session_id}")
    event["data"]["object"].update(id=session_id, status="expired", payment_status="unpaid", subscription=None,
                                   metadata={"membergate_member_id": member_id, "membergate_plan_id": plan_id})
    return event


def test_ten_members_at_once_for_the_last_seat_exactly_one_gets_a_checkout():
    with stack_at(), atomic_writes():
        # Given a plan with one seat and ten members who connected Discord
        plan_id = _founder_plan(1)
        members = _members(10)
        billing = FakeBilling()
        sessions, sold_out, other = [], [], []
        start = threading.Barrier(10)

        def buy(member_id: str) -> None:
            start.wait()
            try:
                sessions.append(_checkout(member_id, plan_id, billing))
            except SoldOutError:
                sold_out.append(member_id)
            except Exception as exc:  # noqa: BLE001 - reported below, never swallowed
                other.append(exc)

        # When all ten start a checkout at the same moment
        threads = [threading.Thread(target=buy, args=(m,)) for m in members]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Then exactly one gets a Checkout Session, nine are told it is sold out, and one seat is taken
        assert other == []
        assert len(sessions) == 1 and len(sold_out) == 9
        assert len(billing.sessions) == 1
        _, plan = call("GET", f"/admin/plans/{plan_id}")
        assert (plan["seats"], plan["seats_taken"]) == (1, 1)


def test_sold_out_checkout_answers_409_sold_out_and_an_expired_session_gives_the_seat_back():
    with stack_at():
        # Given the only seat held by a member's open checkout
        plan_id = _founder_plan(1)
        first, second = _members(2)
        billing = FakeBilling()
        session = _checkout(first, plan_id, billing)
        with pytest.raises(SoldOutError) as refused:
            _checkout(second, plan_id, billing)
        # When Stripe expires the first member's unpaid session (and sends it twice)
        processor = BillingEventProcessor(bootstrap.admin().stores, FakeQueue(), lambda: "mbr_new")
        outcomes = [processor.apply(json.dumps(_expired(session.id, first, plan_id)), T0 + 7200).status
                    for _ in range(2)]
        # Then the refusal was sold_out (a 409), the seat came back once, and the second member gets a checkout
        assert refused.value.code == "sold_out"
        assert outcomes == ["processed", "duplicate"]
        assert _checkout(second, plan_id, billing).id != session.id
        _, plan = call("GET", f"/admin/plans/{plan_id}")
        assert plan["seats_taken"] == 1


def test_seat_goes_back_when_the_session_is_never_created_and_a_member_holds_one_seat_however_often_they_try():
    with stack_at():
        # Given a plan with two seats, Stripe failing once, then a member retrying twice
        plan_id = _founder_plan(2)
        (member,) = _members(1)
        billing = FakeBilling()
        billing.fail_with = RetryableError("Stripe answered 500")
        with pytest.raises(RetryableError):
            _checkout(member, plan_id, billing)
        _, after_failure = call("GET", f"/admin/plans/{plan_id}")
        billing.fail_with = None
        # When the member starts checkout twice
        first, again = _checkout(member, plan_id, billing), _checkout(member, plan_id, billing)
        # Then the failed attempt gave its seat back and the member holds one seat for one session
        assert after_failure["seats_taken"] == 0
        assert first.id == again.id
        _, plan = call("GET", f"/admin/plans/{plan_id}")
        assert plan["seats_taken"] == 1


def test_expiry_of_a_session_that_is_not_the_held_one_gives_nothing_back():
    with stack_at():
        # Given a member holding the only seat
        plan_id = _founder_plan(1)
        (member,) = _members(1)
        _checkout(member, plan_id, FakeBilling())
        processor = BillingEventProcessor(bootstrap.admin().stores, FakeQueue(), lambda: "mbr_new")
        # When an expiry arrives for another session of theirs (already replaced, or never holding)
        outcome = processor.apply(json.dumps(_expired("cs_other", member, plan_id)), T0 + 7200)
        # Then the seat stays taken
        assert outcome.status == "ignored"
        _, plan = call("GET", f"/admin/plans/{plan_id}")
        assert plan["seats_taken"] == 1


def test_seat_held_by_a_checkout_that_died_before_its_session_goes_back_on_sale_after_fifteen_minutes():
    with stack_at():
        # Given the only seat held by a request that died between holding it and creating its session
        plan_id = _founder_plan(1)
        crashed, waiting = _members(2)
        seats = bootstrap.admin().stores.seats
        assert seats is not None
        seats.take(plan_id, crashed, 1, T0)
        billing = FakeBilling()
        # When another member tries at once, then once no request can still be making that session
        with pytest.raises(SoldOutError):
            start_checkout(CheckoutRequest(waiting, plan_id, None, "https://m.example/ok", "https://m.example/no", waiver=True),
                           stores=bootstrap.admin().stores, billing=billing, now=T0 + 60)
        later = start_checkout(CheckoutRequest(waiting, plan_id, None, "https://m.example/ok", "https://m.example/no", waiver=True),
                               stores=bootstrap.admin().stores, billing=billing, now=T0 + STALE_HOLD_SECONDS)
        # Then the first try is sold out, the later one gets the seat, and the plan still counts one seat taken
        assert later.id and len(billing.sessions) == 1
        _, plan = call("GET", f"/admin/plans/{plan_id}")
        assert plan["seats_taken"] == 1


def test_stale_hold_is_not_reclaimed_once_its_session_is_attached():
    with stack_at():
        # Given the only seat held since long ago by a checkout whose session did get attached
        plan_id = _founder_plan(1)
        holder, waiting = _members(2)
        seats = bootstrap.admin().stores.seats
        assert seats is not None
        seats.take(plan_id, holder, 1, T0)
        seats.attach(plan_id, holder, "cs_open", None)
        # When another member tries long after
        outcome = seats.take(plan_id, waiting, 1, T0 + 10 * STALE_HOLD_SECONDS)
        # Then it is sold out: an open (or paid) checkout keeps its seat
        assert outcome is SeatTake.SOLD_OUT
        assert seats.taken(plan_id) == 1


def test_plan_seats_are_a_strict_integer_of_at_least_one_or_null_on_create_and_patch():
    with stack_at():
        # Given a plan with 5 seats
        plan_id = _founder_plan(5)
        # When the creator sends wrong values, then 5.0, then null
        refused = [call("PATCH", f"/admin/plans/{plan_id}", {"seats": value}) for value in ("5", 0, 5.5, True)]
        _, fifty = call("PATCH", f"/admin/plans/{plan_id}", {"seats": 50.0})
        _, renamed = call("PATCH", f"/admin/plans/{plan_id}", {"name": "Founder 2"})
        _, unlimited = call("PATCH", f"/admin/plans/{plan_id}", {"seats": None})
        # Then each wrong value is a 400 naming seats; 50.0 is 50; a patch without seats keeps them; null removes the limit
        assert [(s, b["error"]["field"]) for s, b in refused] == [(400, "seats")] * 4
        assert fifty["seats"] == 50 and fifty["seats_taken"] == 0
        assert renamed["seats"] == 50
        assert unlimited["seats"] is None and unlimited["seats_taken"] is None
