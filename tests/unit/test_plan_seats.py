"""Seats: what the join page says (both languages), the pure count, and checkout refusing a sold-out plan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from membergate.domain.errors import SoldOutError
from membergate.domain.seats import STALE_HOLD_SECONDS, is_stale_hold, seats_left
from membergate.http.pages import join_page
from membergate.services.checkout import CheckoutRequest, start_checkout
from membergate.services.member_pages import join_page_view
from tests.support.fakes import FakeBilling
from tests.support.seats import FakeSeatStore
from tests.unit.test_member_pages import T0, bound_member, setup

pytestmark = pytest.mark.unit


def _with_seats(seats: int, taken: int, locale: str = "en"):
    stores, billing = setup(locale)
    store = FakeSeatStore()
    stores = replace(stores, seats=store)
    stores.catalog.plans["pln_1"] = replace(stores.catalog.get_plan("pln_1"), seats=seats)
    for i in range(taken):
        store.take("pln_1", f"mbr_other{i}", seats, T0)
    return stores, billing


def test_seats_left_is_never_negative_and_none_without_a_limit():
    # Given limits and counts / When computed / Then what is left, 0 under a lowered limit, None without one
    assert (seats_left(10, 3), seats_left(2, 5), seats_left(None, 4)) == (7, 0, None)


def test_hold_is_stale_only_without_a_session_after_fifteen_minutes():
    # Given holds of various ages, with and without a session
    # When / Then only a sessionless hold at least fifteen minutes old is stale
    assert STALE_HOLD_SECONDS == 900
    assert is_stale_hold(T0, None, T0 + 900)
    assert not is_stale_hold(T0, None, T0 + 899)
    assert not is_stale_hold(T0, "cs_open", T0 + 86_400)


@pytest.mark.parametrize("locale, words", [("en", "7 seats left at this price"), ("fr", "7 places restantes à ce prix")])
def test_join_page_shows_the_seats_left(locale, words):
    # Given a 10-seat plan with 3 taken, and a bound member
    stores, billing = _with_seats(10, 3, locale)
    member = bound_member(stores)
    # When the member opens the join page
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member))
    # Then it says how many seats are left, and offers checkout
    assert words in page and "data-seats-left='7'" in page
    assert "action='/checkout'" in page


@pytest.mark.parametrize("locale, words", [("en", "This offer is sold out"), ("fr", "Cette offre est complète")])
def test_join_page_of_a_sold_out_plan_says_so_and_offers_no_checkout(locale, words):
    # Given a 2-seat plan with both taken
    stores, billing = _with_seats(2, 2, locale)
    member = bound_member(stores)
    # When a member opens its join page
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member))
    # Then the page says it is sold out, and there is no pay button (the access-code form stays)
    assert words in page and "id=sold-out" in page
    assert "action='/checkout'" not in page and "/join/pln_1/code" in page


def test_checkout_of_a_sold_out_plan_is_refused_and_creates_no_session():
    # Given a 1-seat plan whose seat is held by another member
    stores, _ = _with_seats(1, 1)
    member = bound_member(stores)
    billing = FakeBilling()
    # When the member starts checkout
    with pytest.raises(SoldOutError) as refused:
        start_checkout(CheckoutRequest(member, "pln_1", None, "https://m/ok", "https://m/no", waiver=True), stores=stores,
                       billing=billing, now=T0)
    # Then it is sold_out, no customer nor session was created at Stripe
    assert refused.value.code == "sold_out"
    assert billing.sessions == {} and billing.customers == {}
