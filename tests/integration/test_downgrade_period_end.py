"""A downgrade the plan makes wait, through the real handlers and the Stripe sandbox: scheduled, shown, applied at renewal."""

from __future__ import annotations

import pytest

from tests.integration.test_member_journey import FORM, GUILD, ROLE, USER, bind_discord, member_view, pay, subscription_of
from tests.integration.test_tier_switch import VIP_ROLE, entitled_plans, two_tiers
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

DAY = 86_400


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE, VIP_ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


def on_vip_whose_downgrades_wait(p: Pipeline) -> tuple[str, str, str, str]:
    """A member paying VIP (25.00/month), whose plan makes downgrades wait; Basic is 9.00/month."""
    basic, vip = two_tiers(p)
    assert p.admin("PATCH", f"/admin/plans/{vip}", body={"downgrade": "period_end"})["status"] == 200
    cookie = bind_discord(p, vip)
    pay(p, cookie, vip)
    p.advance(10 * DAY)
    return basic, vip, subscription_of(p), member_view(p)["id"]


def switch(p: Pipeline, member_id: str, plan_id: str) -> dict:
    reply = p.admin("POST", f"/admin/members/{member_id}/switch", body={"plan_id": plan_id, "reason": "asked by email"})
    p.pump()
    return reply


def period_end(p: Pipeline, sub_id: str) -> int:
    return p.sandbox.subscription(sub_id)["items"]["data"][0]["current_period_end"]


def renew(p: Pipeline, sub_id: str) -> dict:
    """Stripe's clock past the period end; the renewal invoice it paid."""
    p.clock.value = period_end(p, sub_id) + 60
    p.sandbox.advance_clock()
    p.pump()
    return [e for e in p.delivered if e["type"] == "invoice.paid"][-1]["data"]["object"]


def test_downgrade_waits_for_the_period_end_then_moves_role_and_bills_the_lower_price(pipeline):
    p = pipeline
    basic, vip, sub_id, member_id = on_vip_whose_downgrades_wait(p)
    end = period_end(p, sub_id)
    # When the creator switches the member down to Basic
    reply = switch(p, member_id, basic)
    # Then the switch is scheduled for the period end, the member keeps VIP and its role, and the
    # member's record says where they go and when (without calling Stripe)
    assert reply["status"] == 200, reply
    assert (reply["body"]["effective"], reply["body"]["from_plan_id"], reply["body"]["plan_id"]) == (
        "period_end", vip, basic)
    assert [i["price"]["id"] for i in p.sandbox.subscription(sub_id)["items"]["data"]] == ["price_tier_vip"]
    assert p.sandbox.subscription(sub_id)["schedule"]
    assert entitled_plans(p) == {vip: "active"}
    assert p.discord.guilds[GUILD].members[USER] == {VIP_ROLE}
    pending = member_view(p)["pending_switches"]
    assert [(x["subscription_id"], x["from_plan_id"], x["plan_id"]) for x in pending] == [(sub_id, vip, basic)]
    assert pending[0]["at"] == reply["body"]["at"]
    assert reply["body"]["at"].startswith(_iso_day(end))
    # When Stripe's clock passes the period end
    invoice = renew(p, sub_id)
    # Then the subscription bills Basic (9.00, no proration credit), the VIP role is gone, Basic's
    # is given, and nothing is pending any more
    assert invoice["amount_paid"] == 900
    assert not any(line["parent"]["subscription_item_details"]["proration"] for line in invoice["lines"]["data"])
    assert entitled_plans(p) == {basic: "active"}
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    assert member_view(p)["pending_switches"] == []
    # and the schedule's own events, which Membergate does not use, were acknowledged, not retried
    schedule_replies = [r["statusCode"] for e, r in zip(p.delivered, p.webhook_replies, strict=True)
                        if e["type"].startswith("subscription_schedule.")]
    assert len(schedule_replies) >= 3 and all(200 <= code < 300 for code in schedule_replies), schedule_replies


def test_switching_back_before_the_end_releases_the_schedule_and_nothing_changes_at_renewal(pipeline):
    p = pipeline
    basic, vip, sub_id, member_id = on_vip_whose_downgrades_wait(p)
    assert switch(p, member_id, basic)["body"]["effective"] == "period_end"
    p.advance(DAY)
    # When the creator switches the member back to VIP, the tier they are still on
    reply = switch(p, member_id, vip)
    # Then Stripe's schedule is released, the pending change is gone, and it was audited
    assert reply["status"] == 200 and reply["body"]["effective"] == "now", reply
    assert p.sandbox.subscription(sub_id)["schedule"] is None
    assert member_view(p)["pending_switches"] == []
    # When the period ends
    invoice = renew(p, sub_id)
    # Then VIP renews at its own price and the member keeps its role
    assert invoice["amount_paid"] == 2500
    assert entitled_plans(p) == {vip: "active"}
    assert p.discord.guilds[GUILD].members[USER] == {VIP_ROLE}


def test_an_upgrade_from_a_plan_whose_downgrades_wait_is_immediate_and_prorated(pipeline):
    p = pipeline
    # Given a member on Basic, whose plan makes downgrades wait
    basic, vip = two_tiers(p)
    assert p.admin("PATCH", f"/admin/plans/{basic}", body={"downgrade": "period_end"})["status"] == 200
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    p.advance(10 * DAY)
    # When they are switched up to VIP
    reply = switch(p, member_view(p)["id"], vip)
    # Then it happens now, with the VIP role, and nothing is scheduled
    assert reply["body"]["effective"] == "now", reply
    assert p.sandbox.subscription(subscription_of(p))["schedule"] is None
    assert p.discord.guilds[GUILD].members[USER] == {VIP_ROLE}


def _iso_day(epoch: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


@pytest.mark.parametrize("locale, words", [
    ("en", ("Your plan moves to Basic on", "Until then you keep VIP", "Keep VIP")),
    ("fr", ("Ta formule passe à Basic le", "tu gardes VIP", "Garder VIP")),
])
def test_manage_page_shows_the_pending_downgrade_and_its_keep_button_cancels_it(pipeline, locale, words):
    p = pipeline
    # Given a member on VIP (whose downgrades wait) in a community speaking ``locale``
    basic, vip = two_tiers(p, locale=locale)
    assert p.admin("PATCH", f"/admin/plans/{vip}", body={"downgrade": "period_end"})["status"] == 200
    cookie = bind_discord(p, vip)
    pay(p, cookie, vip)
    sub_id = subscription_of(p)
    p.advance(3600)  # within the page session's life
    # When they press "Switch to Basic" on their manage page
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={basic}&price_id=price_tier_basic",
                   cookies=[cookie], headers=FORM)
    p.pump()
    # Then they are sent back to their VIP manage page, which says where they go, when, and offers to stay
    assert reply["statusCode"] == 303 and reply["headers"]["Location"].endswith(f"/join/{vip}?manage=1"), reply
    body = p.call("join", "GET", f"/join/{vip}?manage=1", cookies=[cookie])["body"]
    for word in words:
        assert word in body, word
    assert p.discord.guilds[GUILD].members[USER] == {VIP_ROLE}
    # When they press the keep button
    kept = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}", cookies=[cookie], headers=FORM)
    p.pump()
    # Then the schedule is released and the page no longer announces a change
    assert kept["statusCode"] == 303, kept
    assert p.sandbox.subscription(sub_id)["schedule"] is None
    body = p.call("join", "GET", f"/join/{vip}?manage=1", cookies=[cookie])["body"]
    assert "pending-switch" not in body and words[2] not in body
