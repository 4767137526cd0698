"""The card-expiry warning and the email that follows Stripe, through the webhook, processor and sweep handlers (moto)."""

from __future__ import annotations

import pytest

from infra.local.stripe_sandbox import signed_delivery
from membergate import bootstrap
from membergate.domain.lifecycle import EmailOnFile
from tests.integration.test_member_journey import GUILD, PUBLIC, ROLE, USER, bind_discord, pay, setup_catalog
from tests.support import stripe_events as se
from tests.support.aws import WEBHOOK_SECRET
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

DAY = 86_400


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


def _customer_and_member(p: Pipeline) -> tuple[str, str]:
    created = next(e for e in p.delivered if e["type"] == "customer.subscription.created")["data"]["object"]
    member_id = created["metadata"]["membergate_member_id"]
    return created["customer"], member_id


def _send(p: Pipeline, event: dict) -> None:
    signed_delivery(WEBHOOK_SECRET, p.post_webhook)(event)
    p.pump()


def test_card_expiring_before_renewal_warns_once_with_the_portal_link(pipeline):
    p = pipeline
    # Given a paying member (renewal 30 days after T0 = 2027-01-15) whose card expires in January 2027
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    customer, _ = _customer_and_member(p)
    _send(p, se.payment_method_event(created=p.clock.now(), customer=customer, exp_month=1, exp_year=2027))
    assert p.webhook_replies[-1]["statusCode"] == 200
    welcomed = len(p.discord.delivered)
    # When the sweep runs 7 days before the renewal, and again later
    p.advance(23 * DAY + 60)
    p.sweep()
    p.advance(DAY)
    p.sweep()
    # Then one warning on Discord, whose link opens the member's billing portal without a session
    new = [text for _, text in p.discord.delivered[welcomed:]]
    warnings = [t for t in new if "expires before your next payment" in t]
    assert len(warnings) == 1, new
    token = warnings[0].split(f"{PUBLIC}/billing/portal/")[1].split()[0]
    assert p.call("start_checkout", "GET", f"/billing/portal/{token}")["statusCode"] == 303


def test_card_valid_after_renewal_sends_no_warning(pipeline):
    p = pipeline
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    customer, _ = _customer_and_member(p)
    _send(p, se.payment_method_event(created=p.clock.now(), customer=customer, exp_month=8, exp_year=2030))
    welcomed = len(p.discord.delivered)
    p.advance(23 * DAY + 60)
    p.sweep()
    assert not [t for _, t in p.discord.delivered[welcomed:] if "expires before" in t]


def test_customer_updated_email_is_stored_for_the_ses_fallback(pipeline):
    p = pipeline
    # Given a paying member
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    customer, member_id = _customer_and_member(p)
    # When the customer's email changes in Stripe
    _send(p, se.customer_updated(created=p.clock.now() + 1, customer=customer, email="new.address@example.com"))
    # Then the event was processed and the member's stored email is the new one
    assert p.webhook_replies[-1]["statusCode"] == 200
    assert bootstrap.admin().stores.contacts.email(member_id) == "new.address@example.com"


def test_customer_updated_late_older_event_does_not_put_the_old_email_back(pipeline):
    p = pipeline
    # Given a paying member whose email changed twice in Stripe
    plan_id = setup_catalog(p)
    pay(p, bind_discord(p, plan_id), plan_id)
    customer, member_id = _customer_and_member(p)
    now = p.clock.now()
    # When the newer customer.updated arrives first and the older one late
    _send(p, se.customer_updated(created=now + 120, customer=customer, email="newest@example.com"))
    _send(p, se.customer_updated(created=now + 60, customer=customer, email="older@example.com"))
    # Then both were acknowledged and the newer address stays, with its event's time (DynamoDB's conditional write)
    assert [r["statusCode"] for r in p.webhook_replies[-2:]] == [200, 200]
    contacts = bootstrap.admin().stores.contacts
    assert contacts.contact(member_id).email == "newest@example.com" and contacts.contact(member_id).as_of == now + 120
    # And the conditional write itself refuses an older address, keeps a newer one
    assert contacts.keep_email(member_id, EmailOnFile("older@example.com", now + 60)) is False
    assert contacts.keep_email(member_id, EmailOnFile("later@example.com", now + 180)) is True
    assert contacts.email(member_id) == "later@example.com"
