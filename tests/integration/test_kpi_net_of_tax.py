"""MRR net of tax end to end under moto: Stripe Tax invoices from the sandbox, the billing processor, the admin API and dashboard."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import pytest
import stripe

from membergate import bootstrap
from membergate.domain.model import CheckoutOptions, Community, OnGraceEnd, OnRevoke, Plan, PlanGrant, PlanKind, Platform
from membergate.services.billing_events import BillingEventProcessor
from tests.integration.test_stripe_sandbox import T0, Stack, make_stack, open_session, pay
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, aws_stack
from tests.support.fakes import FakeQueue
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
DAY = 86_400


class Frozen:
    def __init__(self, now: int) -> None:
        self.at = now

    def now(self) -> int:
        return self.at


def admin(method: str, path: str, **kw):
    return load_handler("admin_api").lambda_handler(http_event(method, path, **kw), LambdaContext())


def subscribe_taxed(stack: Stack, member_id: str, price_id: str) -> str:
    """A member pays a plan's price through Checkout with Stripe Tax on, as Membergate asks for it."""
    session = open_session(
        stack, member_id,
        line_items=[{"price": price_id, "quantity": 1}],
        metadata={"membergate_member_id": member_id, "membergate_plan_id": "plan_vat"},
        subscription_data={"metadata": {"membergate_member_id": member_id, "membergate_plan_id": "plan_vat"}},
        automatic_tax={"enabled": True},
        customer_update={"address": "auto", "name": "auto"},
    )
    assert pay(stack, session.id, "card").status_code == 303
    return stack.last("checkout.session.completed")["data"]["object"]["subscription"]


def test_stripe_tax_inclusive_and_exclusive_prices_count_net_in_the_kpis_and_the_dashboard_says_so():
    # Given the sandbox with two prices under Stripe Tax (20 % VAT): 12.00 tax included, 10.00 tax added
    stack = make_stack()
    for price_id, amount, behavior in (("price_vat_in", 1200, "inclusive"), ("price_vat_out", 1000, "exclusive")):
        reply = stack.browser.post("/_control/prices", json={"price_id": price_id, "unit_amount": amount,
                                                             "currency": "eur", "tax_behavior": behavior})
        assert reply.status_code == 200 and reply.json["tax_behavior"] == behavior, reply.json
    with aws_stack(), bootstrap.overridden(clock=Frozen(T0 + DAY)):
        stores = bootstrap.admin().stores
        stores.catalog.add_community(Community("com_vat", Platform.DISCORD, "Club", "1", "2", OnRevoke.REMOVE_ROLE, "en", T0))
        stores.catalog.add_plan(Plan("plan_vat", "VAT plan", ("price_vat_in", "price_vat_out"), (PlanGrant("com_vat"),), 3,
                                     OnGraceEnd.CANCEL, T0, checkout=CheckoutOptions(automatic_tax=True)))
        # When two members pay through Checkout and Stripe's events reach the billing processor
        inclusive = subscribe_taxed(stack, "mem_in", "price_vat_in")
        exclusive = subscribe_taxed(stack, "mem_out", "price_vat_out")
        processor = BillingEventProcessor(stores, FakeQueue())
        for event in stack.delivered:
            processor.apply(json.dumps(event), stack.clock.now)
        paid = {e["data"]["object"]["id"]: e["data"]["object"] for e in stack.delivered if e["type"] == "invoice.paid"}
        kpis = json.loads(admin("GET", "/admin/kpis", headers=AUTH)["body"])
        login = admin("POST", "/admin/dashboard/login", body=f"token={ADMIN_TOKEN}&lang=en",
                      headers={"content-type": "application/x-www-form-urlencoded"})
        cookie = next(c for c in login["cookies"] if c.startswith("mg_admin=")).split(";")[0]
        pages = {lang: admin("GET", "/admin/dashboard", cookies=[cookie], headers={"accept-language": lang})["body"]
                 for lang in ("en", "fr")}
        records = {r.subscription_id: r for r in stores.subscriptions.all_records()}
    # Then Stripe's invoices carried the tax: 12.00 with 2.00 included, 10.00 + 2.00 added
    by_sub = {inv["parent"]["subscription_details"]["subscription"]: inv for inv in paid.values()}
    assert (by_sub[inclusive]["total"], by_sub[inclusive]["total_excluding_tax"]) == (1200, 1000)
    assert (by_sub[exclusive]["total"], by_sub[exclusive]["total_excluding_tax"], by_sub[exclusive]["amount_paid"]) \
        == (1200, 1000, 1200)
    # and the processor kept the tax each price includes on the subscription, in DynamoDB
    assert records[inclusive].tax_inclusive_rate == Fraction(1, 5) and records[exclusive].tax_inclusive_rate == 0
    # and MRR, ARR and ARPU are net of tax: 10.00 + 10.00, not the 24.00 members paid
    assert kpis["mrr"] == {"eur": 2000} and kpis["arr"] == {"eur": 24000} and kpis["arpu"] == {"eur": 1000}
    assert kpis["paying_members"] == 2
    # and the dashboard shows that figure and says it is net of tax, in the creator's language
    for lang, label in (("en", "MRR, net of tax"), ("fr", "MRR, hors taxes")):
        page = pages[lang]
        assert f"<html lang={lang}>" in page
        assert re.search(r"data-kpi='mrr-eur' data-value=2000>", page)
        assert "data-net-of-tax=1" in page and label in page


def test_dashboard_without_stripe_tax_on_any_plan_does_not_say_net_of_tax():
    with aws_stack():
        stores = bootstrap.admin().stores
        stores.catalog.add_community(Community("com_plain", Platform.DISCORD, "Club", "1", "2", OnRevoke.REMOVE_ROLE, "en", T0))
        stores.catalog.add_plan(Plan("plan_plain", "Plain", ("price_plain",), (PlanGrant("com_plain"),), 3, OnGraceEnd.CANCEL, T0))
        login = admin("POST", "/admin/dashboard/login", body=f"token={ADMIN_TOKEN}&lang=en",
                      headers={"content-type": "application/x-www-form-urlencoded"})
        cookie = next(c for c in login["cookies"] if c.startswith("mg_admin=")).split(";")[0]
        page = admin("GET", "/admin/dashboard", cookies=[cookie])["body"]
    assert "data-net-of-tax" not in page and "net of tax" not in page


def test_sandbox_prices_take_stripes_tax_behavior_and_refuse_another_value():
    # Given the sandbox
    stack = make_stack()
    # When prices are made with each tax behavior, through the API and the control route
    made = stack.client.v1.prices.create({"currency": "eur", "unit_amount": 1200, "product_data": {"name": "VAT"},
                                          "recurring": {"interval": "month"}, "tax_behavior": "inclusive"})
    plain = stack.client.v1.prices.create({"currency": "eur", "unit_amount": 900, "product_data": {"name": "Plain"},
                                           "recurring": {"interval": "month"}})
    # Then the price shows it (unspecified when not given), as Stripe's does
    assert made.tax_behavior == "inclusive" and plain.tax_behavior == "unspecified"
    # and anything else is a 400 naming the parameter, on both
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stack.client.v1.prices.create({"currency": "eur", "unit_amount": 1200, "product_data": {"name": "X"},
                                       "tax_behavior": "included"})
    assert refused.value.param == "tax_behavior"
    reply = stack.browser.post("/_control/prices", json={"price_id": "price_bad", "tax_behavior": "\u00e9\r\n"})
    assert reply.status_code == 400 and reply.json["error"]["param"] == "tax_behavior"


def test_admin_kpis_one_time_revenue_is_net_of_the_tax_kept_on_the_grant_in_dynamodb():
    from membergate.domain.grants import OneTimeGrant
    from membergate.domain.model import PlanKind

    paid_at = 1_768_000_000  # 2026-01-09
    with aws_stack():
        # Given a 49.00 pass with 8.17 of VAT inside, stored as the processor stores it
        grants = bootstrap.admin().stores.grants
        grants.save(OneTimeGrant("cs_vat", "mbr_vat", "pln_pass", PlanKind.PASS, paid_at, 30 * DAY,
                                 amount=4900, currency="eur", tax=817))
        # When January's KPIs are read
        body = json.loads(admin("GET", "/admin/kpis?from=2026-01-01&to=2026-01-31", headers=AUTH)["body"])
        (stored,) = grants.for_member("mbr_vat")
    # Then the grant kept both figures and the revenue counts what is the creator's
    assert (stored.amount, stored.tax) == (4900, 817)
    assert body["one_time_revenue"] == {"eur": 4083}


def test_lifetime_bought_through_checkout_with_stripe_tax_counts_net_of_the_tax_in_its_total():
    # Given a 49.00 lifetime price with 20 % VAT included, and a 10.00 pass with 20 % VAT added
    stack = make_stack()
    for price_id, amount, behavior in (("price_life_vat", 4900, "inclusive"), ("price_pass_vat", 1000, "exclusive")):
        reply = stack.browser.post("/_control/prices", json={"price_id": price_id, "unit_amount": amount, "currency": "eur",
                                                             "type": "one_time", "tax_behavior": behavior})
        assert reply.status_code == 200, reply.json
    with aws_stack(), bootstrap.overridden(clock=Frozen(T0 + DAY)):
        stores = bootstrap.admin().stores
        stores.catalog.add_community(Community("com_vat1", Platform.DISCORD, "Club", "1", "2", OnRevoke.REMOVE_ROLE, "en", T0))
        for plan_id, price_id, kind, days in (("plan_life", "price_life_vat", PlanKind.LIFETIME, None),
                                              ("plan_pass", "price_pass_vat", PlanKind.PASS, 30)):
            stores.catalog.add_plan(Plan(plan_id, plan_id, (price_id,), (PlanGrant("com_vat1"),), 3, OnGraceEnd.CANCEL, T0,
                                         kind=kind, access_days=days, checkout=CheckoutOptions(automatic_tax=True)))
        # When two members pay in payment-mode Checkout with Stripe Tax and the events reach the processor
        for member_id, plan_id, price_id in (("mem_life", "plan_life", "price_life_vat"), ("mem_pass", "plan_pass", "price_pass_vat")):
            customer = stack.client.v1.customers.create({"metadata": {"membergate_member_id": member_id}})
            session = stack.client.v1.checkout.sessions.create({
                "mode": "payment", "customer": customer.id, "client_reference_id": member_id,
                "line_items": [{"price": price_id, "quantity": 1}], "success_url": "http://127.0.0.1:3000/ok",
                "metadata": {"membergate_member_id": member_id, "membergate_plan_id": plan_id},
                "automatic_tax": {"enabled": True}, "customer_update": {"address": "auto"}})
            assert pay(stack, session.id, "card").status_code == 303
        processor = BillingEventProcessor(stores, FakeQueue())
        for event in stack.delivered:
            processor.apply(json.dumps(event), stack.clock.now)
        completed = [e["data"]["object"] for e in stack.delivered if e["type"] == "checkout.session.completed"]
        kpis = json.loads(admin("GET", "/admin/kpis", headers=AUTH)["body"])
    # Then Checkout showed the tax: 49.00 with 8.17 inside, 10.00 + 2.00 on top
    assert [(s["amount_total"], s["total_details"]["amount_tax"]) for s in completed] == [(4900, 817), (1200, 200)]
    # and the revenue is what is the creator's: 40.83 and 10.00
    assert kpis["lifetime_revenue"] == {"eur": 4083} and kpis["one_time_revenue"] == {"eur": 1000}
