"""The join funnel counted through the real handlers: views, identity bound, checkout started, paid."""

from __future__ import annotations

import pytest

from tests.support.aws import WEBHOOK_SECRET
from tests.support.stripe_events import signed
from tests.integration.test_member_journey import bind_discord, pay, pipeline, setup_catalog  # noqa: F401

pytestmark = pytest.mark.integration

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}


def view(p, plan_id: str, headers=BROWSER, cookies=None, method="GET"):
    return p.call("join", method, f"/join/{plan_id}", headers=headers, cookies=cookies or [])


def test_funnel_counts_each_step_once_and_the_kpis_answer_rates(pipeline):  # noqa: F811
    p = pipeline
    # Given a plan
    plan_id = setup_catalog(p)
    # When one browser opens the join page twice, another once, a link preview bot and a script once
    first = view(p, plan_id)
    seen = first["cookies"][0].split(";")[0]
    assert seen.startswith("mg_seen=") and "HttpOnly" in first["cookies"][0]
    view(p, plan_id, cookies=[seen])
    view(p, plan_id)
    view(p, plan_id, headers={"user-agent": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"})
    view(p, plan_id, headers={"user-agent": "curl/8.5.0"})
    view(p, plan_id, headers={})
    # And one of them binds Discord, starts a checkout twice (the same session comes back) and pays
    cookie = bind_discord(p, plan_id)
    view(p, plan_id, cookies=[cookie, seen])
    pay(p, cookie, plan_id)
    # And the checkout.session.completed event is delivered again
    completed = next(e for e in p.delivered if e["type"] == "checkout.session.completed")
    payload, header = signed(completed, WEBHOOK_SECRET, p.clock.now())
    assert p.post_webhook(payload, {"stripe-signature": header, "content-type": "application/json"}) == 200
    p.pump()
    # Then the KPIs count two views, one bound, one checkout, one paid, with their rates
    conversion = p.admin("GET", "/admin/kpis")["body"]["conversion"]
    assert (conversion["views"], conversion["bound"], conversion["checkouts"], conversion["paid"]) == (2, 1, 1, 1)
    assert conversion["view_to_bound"] == 0.5 and conversion["checkout_to_paid"] == 1.0
    assert conversion["view_to_paid"] == 0.5


def test_funnel_by_plan_tells_each_offer_apart_and_sums_to_the_whole(pipeline):  # noqa: F811
    p = pipeline
    # Given two plans of the same server: the monthly one and a founder price
    plan_id = setup_catalog(p)
    p.sandbox.register_price("price_funnel_founder", 500, "eur")
    community_id = p.admin("GET", "/admin/communities")["body"]["communities"][0]["id"]
    founder = p.admin("POST", "/admin/plans", body={"name": "Founder", "stripe_price_ids": ["price_funnel_founder"],
                                                    "grants": [{"community_id": community_id}]})["body"]["id"]
    # When two browsers view the monthly page, one views the founder page, binds Discord there and pays
    view(p, plan_id)
    view(p, plan_id)
    view(p, founder)
    pay(p, bind_discord(p, founder), founder)
    # Then each plan has its own funnel and rates, and together they are the whole
    conversion = p.admin("GET", "/admin/kpis")["body"]["conversion"]
    by_plan = conversion["by_plan"]
    assert by_plan[plan_id] == {"views": 2, "bound": 0, "checkouts": 0, "paid": 0, "view_to_bound": 0.0,
                                "bound_to_checkout": None, "checkout_to_paid": None, "view_to_paid": 0.0}
    assert by_plan[founder] == {"views": 1, "bound": 1, "checkouts": 1, "paid": 1, "view_to_bound": 1.0,
                                "bound_to_checkout": 1.0, "checkout_to_paid": 1.0, "view_to_paid": 1.0}
    for step in ("views", "bound", "checkouts", "paid"):
        assert conversion[step] == sum(f[step] for f in by_plan.values())


def test_funnel_head_request_and_the_page_after_payment_are_not_views(pipeline):  # noqa: F811
    p = pipeline
    plan_id = setup_catalog(p)
    # When the page is asked with HEAD, and shown back after a payment
    head = view(p, plan_id, method="HEAD")
    back = p.call("join", "GET", f"/join/{plan_id}?paid=1", headers=BROWSER)
    # Then nothing is counted, and no counting cookie is set
    assert head["statusCode"] != 500 and not head.get("cookies")
    assert back["statusCode"] == 200 and not back.get("cookies")
    assert p.admin("GET", "/admin/kpis")["body"]["conversion"]["views"] == 0


def test_funnel_counter_that_cannot_be_written_never_fails_the_page(pipeline, monkeypatch):  # noqa: F811
    p = pipeline
    plan_id = setup_catalog(p)
    from membergate.adapters.dynamodb import kpi_store

    def broken(self, *a, **kw):
        raise RuntimeError("throttled")

    monkeypatch.setattr(kpi_store.DynamoFunnelLog, "count", broken)
    # When the counter store fails
    reply = view(p, plan_id)
    # Then the member still sees the offer, and nothing was counted
    assert reply["statusCode"] == 200 and "Monthly" in reply["body"]
    assert p.admin("GET", "/admin/kpis")["body"]["conversion"]["views"] == 0
