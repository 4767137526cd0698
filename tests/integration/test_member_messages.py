"""Issue 6's member messages through the webhook, processor, sweep and dispatcher handlers (moto): late failures."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from infra.local.stripe_sandbox import signed_delivery
from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, member_view, pay, setup_catalog
from tests.support.aws import WEBHOOK_SECRET
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

DAY = 86_400
HOUR = 3_600


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


def _iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _texts(p: Pipeline, start: int) -> list[str]:
    return [text for _, text in p.discord.delivered[start:]]


def test_failure_delivered_after_its_grace_ran_out_sends_both_grace_messages_and_removes_a_day_later(pipeline):
    p = pipeline
    # Given a paying member of a plan with 3 days of grace
    plan_id = setup_catalog(p)
    pay(p, bind_discord(p, plan_id), plan_id)
    sub_id = next(e["data"]["object"]["id"] for e in p.delivered if e["type"] == "customer.subscription.created")
    welcomed = len(p.discord.delivered)
    # And a renewal that fails during a webhook outage: Stripe's events are held (the sandbox's outbox)
    p.advance(30 * DAY)
    held: list[dict] = []
    deliver, p.sandbox._deliver = p.sandbox._deliver, held.append
    p.sandbox.fail_renewal(sub_id)
    p.sandbox._deliver = deliver
    assert any(e["data"]["object"].get("status") == "past_due" for e in held)
    # When the events arrive 4 days later, after the grace already ran out
    p.advance(4 * DAY)
    resend = signed_delivery(WEBHOOK_SECRET, p.post_webhook)
    for event in held:
        resend(event)
    p.pump()
    # Then the member keeps the role, in grace until a day after the events arrived
    assert all(r["statusCode"] == 200 for r in p.webhook_replies)
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    entitlement = member_view(p)["entitlements"][0]
    assert entitlement["state"] == "grace" and entitlement["until"] == _iso(p.clock.now() + DAY)
    # When the sweep runs
    p.sweep()
    # Then the payment-failed message and the last notice both go out at once, each once
    texts = _texts(p, welcomed)
    assert len(texts) == 2, texts
    assert "didn't go through" in texts[0] and "/billing/portal/" in texts[0]
    assert texts[1].startswith("Reminder: your access to Club ends on")
    # When the sweep runs again before the day is over: nothing more, access kept
    p.advance(DAY - HOUR)
    p.sweep()
    assert len(_texts(p, welcomed)) == 2 and p.discord.guilds[GUILD].members[USER] == {ROLE}
    # When the day of notice is over
    p.advance(2 * HOUR)
    p.sweep()
    p.pump()
    # Then the receipt goes out, the role goes, and Stripe stops billing
    texts = _texts(p, welcomed)
    assert len(texts) == 3 and "/join/" in texts[-1]
    assert p.discord.guilds[GUILD].members[USER] == set()
    assert p.sandbox.subscription(sub_id)["status"] == "canceled"


def _community_in(p: Pipeline, locale: str) -> None:
    community_id = p.admin("GET", "/admin/communities")["body"]["communities"][0]["id"]
    assert p.admin("PATCH", f"/admin/communities/{community_id}", body={"locale": locale})["status"] == 200


def _removed_after_cancellation(p: Pipeline, locale: str) -> tuple[str, str, int, str]:
    """A paying member whose subscription was cancelled at once: (plan id, removal id, messages so far, cookie)."""
    plan_id = setup_catalog(p)
    _community_in(p, locale)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    sub_id = next(e["data"]["object"]["id"] for e in p.delivered if e["type"] == "customer.subscription.created")
    p.advance(5 * DAY)
    p.sandbox.cancel(sub_id)
    p.pump()
    assert p.discord.guilds[GUILD].members[USER] == set()
    removals = p.admin("GET", f"/admin/removals?since={p.clock.now() - DAY}")["body"]["removals"]
    return plan_id, removals[0]["id"], len(p.discord.delivered), cookie


@pytest.mark.parametrize(("locale", "days", "said"), [
    ("en", 3, "you have your access to Club back (Monthly) until 2027-01-23 08:00 UTC; the creator restored it"),
    ("en", None, "you have your access to Club back (Monthly) with no end date; the creator restored it"),
    ("fr", 3, "tu as retrouvé ton accès à Club (Monthly) jusqu'au 23/01/2027 à 08:00 UTC, le créateur te l'a rendu"),
    ("fr", None, "tu as retrouvé ton accès à Club (Monthly) sans date de fin, le créateur te l'a rendu"),
])
def test_undo_message_says_until_when_the_restored_access_lasts(pipeline, locale, days, said):
    p = pipeline
    # Given a member removed when their subscription was cancelled
    _, removal_id, before, _ = _removed_after_cancellation(p, locale)
    # When the creator undoes the removal for 3 days, or with no end
    undone = p.admin("POST", f"/admin/removals/{removal_id}/undo", body={"reason": "by mistake", "days": days})
    assert undone["status"] == 200, undone
    p.pump()
    # Then the role is back and the member's one message says until when, in their language
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    texts = _texts(p, before)
    assert len(texts) == 1 and said in texts[0], texts


@pytest.mark.parametrize(("locale", "said"), [
    ("en", "Good news: you have your access to Club back. You subscribed to Monthly again. Welcome back!"),
    ("fr", "Bonne nouvelle : tu as retrouvé ton accès à Club. Tu as repris un abonnement à Monthly. Content de te revoir !"),
])
def test_paying_again_after_a_removal_says_access_is_back_once_and_no_second_welcome(pipeline, locale, said):
    p = pipeline
    # Given a member removed (and told) when their subscription was cancelled
    plan_id, _, before, cookie = _removed_after_cancellation(p, locale)
    # When they subscribe again through Checkout, and the access work runs again
    p.advance(DAY)
    pay(p, cookie, plan_id)
    p.pump()
    # Then the role is back and one message says so, with what changed, in the community's language
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    texts = _texts(p, before)
    assert len(texts) == 1 and texts[0].startswith(said), texts
    # And the member's message list shows it sent once, beside the one welcome
    kinds = [m["kind"] for m in member_view(p)["messages"] if m["state"] == "sent"]
    assert kinds.count("access_back") == 1 and kinds.count("welcome") == 1, kinds
