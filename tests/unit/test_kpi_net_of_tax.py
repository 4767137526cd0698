"""MRR net of tax: the tax a price includes is read from the subscription's latest paid invoice (Stripe Tax)."""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

import pytest

from infra.local.stripe_sandbox.shapes import TaxSpec
from membergate.domain.kpis import Discount, SubscriptionObservation
from membergate.domain.model import OnGraceEnd, Plan, PlanGrant, PlanKind, PriceLine
from membergate.domain.stripe_events import inclusive_tax_rate, invoice_fact, parse_event
from membergate.services.admin import compute_kpis
from membergate.services.kpis import read_kpis
from tests.support import stripe_events as se
from tests.support.harness import DAY, T0, Harness

pytestmark = pytest.mark.unit

VAT_INCLUDED = TaxSpec(20, "inclusive")
VAT_ADDED = TaxSpec(20, "exclusive")


def paying(h: Harness, n: int, *, amount: int, currency: str = "eur", interval: str = "month",
           tax: TaxSpec | None = None, paid: bool = True) -> None:
    """A subscriber, and (``paid``) the invoice Stripe sends for their first payment."""
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, customer=f"cus_{n}",
                                    sub_id=f"sub_{n}", amount=amount, currency=currency, interval=interval))
    if paid:
        h.deliver(se.invoice_event("invoice.paid", created=T0 + 5, customer=f"cus_{n}", sub_id=f"sub_{n}",
                                   amount=amount, currency=currency, interval=interval, tax=tax,
                                   invoice_id=f"in_{n}"))


def rate_of(**invoice_fields) -> Fraction | None:
    return inclusive_tax_rate(invoice_fields)


# -- the rule, on the invoice -------------------------------------------------------------------


@pytest.mark.parametrize("api_version", [se.NEW, "2024-06-20"])
def test_inclusive_tax_rate_of_a_tax_inclusive_invoice_is_its_included_tax_over_its_net(api_version):
    # Given a paid invoice of a 12.00 price with 20 % VAT included, in the new and the old shape
    raw = se.invoice_event("invoice.paid", created=T0, amount=1200, tax=VAT_INCLUDED, api_version=api_version)
    # When the invoice is read
    fact = invoice_fact(parse_event(raw))
    # Then the tax its price included is a fifth of its net amount (1,200 = 1,000 + 200)
    assert fact.tax_inclusive_rate == Fraction(1, 5)
    assert raw["data"]["object"]["total_excluding_tax"] == 1000 and raw["data"]["object"]["total"] == 1200


@pytest.mark.parametrize("api_version", [se.NEW, "2024-06-20"])
def test_inclusive_tax_rate_of_a_tax_exclusive_or_untaxed_invoice_is_zero(api_version):
    added = invoice_fact(parse_event(se.invoice_event("invoice.paid", created=T0, amount=1000, tax=VAT_ADDED,
                                                      api_version=api_version)))
    untaxed = invoice_fact(parse_event(se.invoice_event("invoice.paid", created=T0, amount=1000,
                                                        api_version=api_version)))
    assert added.tax_inclusive_rate == 0 and untaxed.tax_inclusive_rate == 0


@pytest.mark.parametrize(
    ("fields", "rate"),
    [
        # Older payloads without subtotal_excluding_tax: from the inclusive tax amounts
        ({"subtotal": 1200, "total_taxes": [{"amount": 200, "tax_behavior": "inclusive"}]}, Fraction(1, 5)),
        ({"subtotal": 1200, "total_taxes": [{"amount": 200, "tax_behavior": "exclusive"}]}, Fraction(0)),
        ({"subtotal": 1200, "total_tax_amounts": [{"amount": 200, "inclusive": True}]}, Fraction(1, 5)),
        # US: two jurisdictions included in one price add up
        ({"subtotal": 1100, "total_taxes": [{"amount": 60, "tax_behavior": "inclusive"},
                                            {"amount": 40, "tax_behavior": "inclusive"}]}, Fraction(1, 10)),
        # Nothing to go by: a zero (trial) invoice, no tax fields, nonsense
        ({"subtotal": 0, "subtotal_excluding_tax": 0}, None),
        ({"subtotal": 1200}, None),
        ({"subtotal": 1200, "subtotal_excluding_tax": 1300}, None),
        ({"subtotal": "1200", "subtotal_excluding_tax": 1000}, None),
        ({"subtotal": 1200, "subtotal_excluding_tax": True}, None),
        ({"subtotal": 1200, "total_taxes": [{"amount": 1200, "tax_behavior": "inclusive"}]}, None),
        ({"subtotal": 1200, "total_taxes": ["x", {"amount": "200", "tax_behavior": "inclusive"}]}, Fraction(0)),
    ],
)
def test_inclusive_tax_rate_reads_every_shape_and_refuses_nonsense(fields, rate):
    assert rate_of(**fields) == rate


# -- MRR through the billing processor ---------------------------------------------------------


def test_mrr_of_a_tax_exclusive_price_is_the_price():
    # Given a 10.00 price with 20 % VAT added on top (the member pays 12.00)
    h = Harness()
    paying(h, 1, amount=1000, tax=VAT_ADDED)
    # When the KPIs are computed
    # Then MRR is the price: the tax Stripe added is not the creator's revenue
    assert compute_kpis(h.stores, T0 + DAY).mrr == {"eur": 1000}


def test_mrr_of_a_tax_inclusive_price_is_net_of_the_tax_its_invoice_shows():
    # Given a 12.00 price with 20 % VAT included, paid
    h = Harness()
    paying(h, 1, amount=1200, tax=VAT_INCLUDED)
    # When the KPIs are computed
    kpis = compute_kpis(h.stores, T0 + DAY)
    # Then MRR is 10.00, the invoice's total excluding tax, and ARPU follows
    assert kpis.mrr == {"eur": 1000}


def test_mrr_of_an_annual_tax_inclusive_price_is_net_then_monthly():
    h = Harness()
    paying(h, 1, amount=12000, interval="year", tax=VAT_INCLUDED)
    assert compute_kpis(h.stores, T0 + DAY).mrr == {"eur": 833}  # 12,000 / 1.2 / 12 = 833⅓


def test_mrr_of_an_unspecified_untaxed_price_is_the_price():
    # Given a price with tax_behavior unspecified and no Stripe Tax: its invoice carries no tax
    h = Harness()
    paying(h, 1, amount=1200)
    assert compute_kpis(h.stores, T0 + DAY).mrr == {"eur": 1200}


def test_mrr_before_any_paid_invoice_is_the_price_then_net_once_paid():
    # Given a tax-inclusive subscription whose invoice has not arrived yet
    h = Harness()
    paying(h, 1, amount=1200, paid=False)
    # Then nothing says how much tax the price holds: the price stands
    assert compute_kpis(h.stores, T0 + DAY).mrr == {"eur": 1200}
    # When the paid invoice arrives, MRR is net of the tax it shows
    h.deliver(se.invoice_event("invoice.paid", created=T0 + 5, customer="cus_1", sub_id="sub_1", amount=1200,
                               tax=VAT_INCLUDED))
    assert compute_kpis(h.stores, T0 + DAY).mrr == {"eur": 1000}


def test_mrr_net_of_tax_follows_the_latest_paid_invoice_whatever_the_delivery_order():
    # Given a renewal at a new rate (10 %), delivered before the first invoice (20 %)
    h = Harness()
    paying(h, 1, amount=1100, paid=False)
    later = se.invoice_event("invoice.paid", created=T0 + 30 * DAY, customer="cus_1", sub_id="sub_1", amount=1100,
                             tax=TaxSpec(10, "inclusive"), invoice_id="in_renewal")
    first = se.invoice_event("invoice.paid", created=T0 + 5, customer="cus_1", sub_id="sub_1", amount=1100,
                             tax=VAT_INCLUDED, invoice_id="in_first")
    h.deliver(later, first)
    # Then the latest paid invoice's rate is kept: 1,100 / 1.1 = 1,000
    assert compute_kpis(h.stores, T0 + 31 * DAY).mrr == {"eur": 1000}


def test_mrr_net_of_tax_leaves_other_currencies_and_untaxed_subscribers_unchanged():
    # Given a tax-inclusive EUR subscriber, an untaxed EUR one and an untaxed JPY one
    h = Harness()
    paying(h, 1, amount=1200, tax=VAT_INCLUDED)
    paying(h, 2, amount=900)
    paying(h, 3, amount=1500, currency="jpy")
    # Then only the taxed subscription is made net, and currencies stay apart
    assert compute_kpis(h.stores, T0 + DAY).mrr == {"eur": 1900, "jpy": 1500}


def test_kpi_report_counts_mrr_arr_arpu_ltv_and_churned_revenue_net_of_tax():
    # Given two members on a 12.00 price with 20 % VAT included; one cancels on day 3
    h = Harness()
    paying(h, 1, amount=1200, tax=VAT_INCLUDED)
    paying(h, 2, amount=1200, tax=VAT_INCLUDED)
    h.deliver(se.subscription_event("customer.subscription.deleted", created=T0 + 3 * DAY, customer="cus_2",
                                    sub_id="sub_2", amount=1200, status="canceled"))
    day = datetime.fromtimestamp(T0, timezone.utc).date()
    # When the period's report is read (the KPI engine behind GET /admin/kpis and the dashboard)
    report = read_kpis(h.stores, T0 + 5 * DAY, start=day, end=None).as_dict()
    # Then every money figure is net: 10.00 a member, never the 2.00 of VAT
    assert report["mrr_start"].get("eur", 0) == 0 and report["mrr"] == {"eur": 1000} and report["arr"] == {"eur": 12000}
    assert report["movements"]["eur"]["new"] == 2000 and report["movements"]["eur"]["churned"] == 1000
    assert report["arpu"] == {"eur": 1000}
    assert report["churn"]["voluntary"]["mrr"] == {"eur": 1000}
    assert report["ltv"] == {"eur": 395}  # net ARPU 1,000 / monthly churn 2.5347 (gross would give 473)


def test_one_time_revenue_is_net_of_the_tax_checkout_collected_and_the_grant_keeps_what_was_paid():
    # Given a 49.00 lifetime price with 20 % VAT included (8.17 of tax), bought through Checkout
    h = Harness()
    h.stores.catalog.add_plan(Plan("pln_life", "Lifetime", ("price_life",), (PlanGrant("com_1"),), 3,
                                   OnGraceEnd.CANCEL, T0, kind=PlanKind.LIFETIME))
    h.member()
    h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_life", amount=4900, amount_tax=817))
    day = datetime.fromtimestamp(T0, timezone.utc).date()
    # When the period's report is read
    report = read_kpis(h.stores, T0 + DAY, start=day, end=None).as_dict()
    # Then the revenue is 40.83, and the member's grant still says 49.00 was paid
    assert report["lifetime_revenue"] == {"eur": 4083}
    (grant,) = h.stores.grants.for_member("mbr_1")
    assert (grant.amount, grant.tax) == (4900, 817)


# -- the engine: a coupon, then tax ------------------------------------------------------------


def test_monthly_amount_applies_a_coupon_then_takes_the_included_tax_out():
    # Given 12.00 with 20 % VAT included and a 25 % forever coupon: the member pays 9.00, of which 1.50 VAT
    line = PriceLine("price_1", "eur", 1200, 1, "month", 1)
    obs = SubscriptionObservation("mbr_1", "sub_1", T0, "active", (line,), discount=Discount(Fraction(25)),
                                  tax_inclusive_rate=Fraction(1, 5))
    # Then MRR is 7.50: the discounted amount, net of the tax it holds
    assert obs.monthly() == {"eur": Fraction(750)}


def test_monthly_amount_with_a_zero_rate_is_the_price():
    line = PriceLine("price_1", "eur", 1200, 1, "month", 1)
    assert SubscriptionObservation("mbr_1", "sub_1", T0, "active", (line,), tax_inclusive_rate=Fraction(0)).monthly() \
        == {"eur": Fraction(1200)}
