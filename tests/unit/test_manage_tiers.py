"""The manage page's other tiers: which plans are offered, escaped, one Stripe read, and a sold-out tier."""

from __future__ import annotations

from dataclasses import replace

import pytest

from membergate.domain.billing import PriceInfo
from membergate.domain.model import Entitlement, EntitlementState, OnGraceEnd, Plan, PlanGrant, PlanKind
from membergate.http.pages import join_page
from membergate.services.member_pages import join_page_view
from tests.support.seats import FakeSeatStore
from tests.unit.test_member_pages import MONTHLY, T0, bound_member, setup

pytestmark = pytest.mark.unit



def _offer(stores, billing):
    billing.prices["price_vip"] = PriceInfo("price_vip", 2500, "eur", "recurring", "month", 1)
    stores.catalog.add_plan(Plan("pln_vip", "<b>VIP</b> & 'co'", ("price_vip",), (PlanGrant("com_1"),), 3,
                                 OnGraceEnd.CANCEL, T0))
    stores.catalog.add_plan(Plan("pln_pass", "Day pass", ("price_pass",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
                                 kind=PlanKind.PASS, access_days=1))
    stores.catalog.add_plan(Plan("pln_old", "Old tier", ("price_old",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
                                 archived_at=T0))
    stores.catalog.add_plan(Plan("pln_else", "Elsewhere", ("price_else",), (PlanGrant("com_2"),), 3, OnGraceEnd.CANCEL, T0))


def _member_on_club(stores) -> str:
    member = bound_member(stores)
    stores.entitlements.save(member, [Entitlement("pln_1", "com_1", None, EntitlementState.ACTIVE, T0 + 86_400)], None)
    return member


def test_manage_page_offers_only_live_subscription_tiers_of_the_offer_escaped_in_one_price_read():
    # Given a member on Club, and beside it a VIP tier (hostile name), a pass, an archived tier and another offer
    stores, billing = setup()
    _offer(stores, billing)
    member = _member_on_club(stores)
    billing.price_lookups.clear()
    # When they open their manage page
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member, manage=True))
    # Then only VIP is offered, its name escaped, with its price and a form to /checkout
    tiers = page.split("<ul class=tiers>")[1].split("</ul>")[0]
    assert "&lt;b&gt;VIP&lt;/b&gt; &amp; &#x27;co&#x27;" in tiers and "<b>VIP</b>" not in tiers
    assert "€25.00 / month" in tiers and "name=plan_id value='pln_vip'" in tiers
    assert all(p not in tiers for p in ("pln_pass", "pln_old", "pln_else", "value='pln_1'"))
    # and Stripe was asked once for the plan's prices and once for all the tiers' prices
    assert billing.price_lookups == [[MONTHLY.id, "price_y", "price_usd"], ["price_vip"]]


def test_join_page_and_a_non_member_manage_page_list_no_tiers():
    stores, billing = setup()
    _offer(stores, billing)
    member = bound_member(stores)
    join = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member))
    manage = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member, manage=True))
    assert "class=tiers" not in join and "class=tiers" not in manage


@pytest.mark.parametrize("holds_seat", [False, True])
def test_sold_out_tier_has_no_button_unless_the_member_holds_its_seat(holds_seat):
    # Given a one-seat VIP tier whose seat is taken (by someone else, or by this member)
    stores, billing = setup("fr")
    _offer(stores, billing)
    seats = FakeSeatStore()
    stores = replace(stores, seats=seats)
    stores.catalog.plans["pln_vip"] = replace(stores.catalog.get_plan("pln_vip"), seats=1)
    member = _member_on_club(stores)
    seats.take("pln_vip", member if holds_seat else "mbr_other", 1, T0)
    # When the member opens their manage page (in French)
    page = join_page(join_page_view("pln_1", stores=stores, billing=billing, member_id=member, manage=True))
    tiers = page.split("<ul class=tiers>")[1].split("</ul>")[0]
    # Then VIP is sold out for a stranger's seat, and switchable when the seat is theirs
    assert ("class=sold-out" in tiers) is not holds_seat
    assert ("Passer à" in tiers) is holds_seat
    assert "Changer de formule" in page and "25,00" in tiers
