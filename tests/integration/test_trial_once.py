"""One free trial per identity under moto: checkout asks Stripe for a trial once; a repeated card ends it."""

from __future__ import annotations

import json

import pytest

from membergate import bootstrap
from membergate.domain.trials import trial_key
from membergate.services.billing_events import BillingEventProcessor
from tests.integration.test_creator_controls import T0, call, stack_at
from tests.integration.test_plan_seats import _checkout, _members
from tests.support import stripe_events as se
from tests.support.fakes import FakeBilling, FakeQueue
from tests.support.trials import FakeTrialEnder

pytestmark = pytest.mark.integration


def _trial_plan(guild: str = "1", price: str = "price_monthly", **extra) -> str:
    _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": guild, "role_id": "2"})
    status, plan = call("POST", "/admin/plans", {"name": "Monthly", "stripe_price_ids": [price],
                                                  "grants": [{"community_id": community["id"]}], **extra})
    assert status == 201, plan
    return plan["id"]


def _trialing(sub_id: str, member_id: str, fingerprint: str) -> str:
    event = se.subscription_event("customer.subscription.created", created=T0, member_id=member_id, status="trialing",
                                  sub_id=sub_id, customer=f"cus_{member_id}", event_id=f"evt_{sub_id}")
    event["data"]["object"]["default_payment_method"] = {"id": "pm_x", "object": "payment_method",
                                                         "card": {"fingerprint": fingerprint}}
    return json.dumps(event)


def _session_trial(billing: FakeBilling, member_id: str, plan_id: str) -> list:
    return [p["trial_days"] for p in billing.session_params.values() if (p["member_id"], p["plan_id"]) == (member_id, plan_id)]


def test_trial_is_given_once_per_account_and_a_repeated_card_ends_the_second_trial_at_stripe():
    with stack_at():
        # Given a plan with a 7-day trial and two members
        plan_id = _trial_plan(trial_days=7)
        ana, ben = _members(2)
        stores = bootstrap.admin().stores
        ender = FakeTrialEnder()
        processor = BillingEventProcessor(stores, FakeQueue(), lambda: "mbr_new", trial_ender=ender)
        # When Ana checks out (trial) and her trial starts with card fp_1
        billing = FakeBilling()
        _checkout(ana, plan_id, billing)
        processor.apply(_trialing("sub_ana", ana, "fp_1"), T0)
        # and Ana opens another creator offer with a trial, and Ben (another account) checks out
        other_plan = _trial_plan(guild="3", price="price_other", trial_days=7)
        _checkout(ana, other_plan, billing)
        _checkout(ben, plan_id, billing)
        # and Ben's trial starts with Ana's card
        processor.apply(_trialing("sub_ben", ben, "fp_1"), T0 + 60)
        # Then Ana's first checkout had the trial, her second none; Ben's checkout had it, but the
        # card's second trial was ended at Stripe and audited
        assert _session_trial(billing, ana, plan_id) == [7] and _session_trial(billing, ana, other_plan) == [None]
        assert _session_trial(billing, ben, plan_id) == [7]
        assert ender.ended == [("sub_ben", "membergate-trial-end-sub_ben")]
        _, log = call("GET", f"/admin/audit?since={T0 - 1}")
        assert [(e["action"], e["target"], e["member_id"]) for e in log["entries"] if e["action"].startswith("trial.")] == [
            ("trial.end", "sub_ben", ben)]


def _attached(member_id: str, fingerprint: str, created: int) -> str:
    event = se.payment_method_event(created=created, pm_id=f"pm_{member_id}", customer=f"cus_{member_id}")
    event["data"]["object"]["card"]["fingerprint"] = fingerprint
    event["id"] = f"evt_pm_{member_id}"
    return json.dumps(event)


def _bare_trialing(sub_id: str, member_id: str, created: int) -> str:
    event = json.loads(_trialing(sub_id, member_id, "unused"))
    event["data"]["object"]["default_payment_method"] = f"pm_{member_id}"  # as Stripe sends it: not expanded
    event["created"] = created
    return json.dumps(event)


@pytest.mark.parametrize("attach_first", [True, False], ids=["card-attached-first", "subscription-first"])
def test_card_from_payment_method_attached_ends_the_second_trial_in_either_order(attach_first):
    with stack_at():
        # Given a trial plan, three members, and a processor that can end trials at Stripe
        _trial_plan(trial_days=7)
        ana, ben, cleo = _members(3)
        stores = bootstrap.admin().stores
        ender = FakeTrialEnder()
        processor = BillingEventProcessor(stores, FakeQueue(), lambda: "mbr_new", trial_ender=ender)
        # When each starts a trial whose card Stripe names only in payment_method.attached (Ana and Ben
        # the same card, Cleo another), the attach arriving before or after the subscription event
        for at, (member, fingerprint) in enumerate([(ana, "fp_shared"), (ben, "fp_shared"), (cleo, "fp_cleo")]):
            events = [_attached(member, fingerprint, T0 + 10 * at), _bare_trialing(f"sub_{member}", member, T0 + 10 * at + 1)]
            for body in events if attach_first else reversed(events):
                assert processor.apply(body, T0 + 10 * at + 2).status == "processed"
        # Then only Ben's trial is ended at Stripe, audited once, and the card is kept hashed
        assert ender.ended == [(f"sub_{ben}", f"membergate-trial-end-sub_{ben}")]
        _, log = call("GET", f"/admin/audit?since={T0 - 1}")
        assert [(e["action"], e["target"], e["member_id"]) for e in log["entries"] if e["action"].startswith("trial.")] == [
            ("trial.end", f"sub_{ben}", ben)]
        assert stores.cards.card(f"cus_{ben}").trial_key == trial_key("card", "fp_shared")


def test_trial_keys_are_stored_hashed_never_the_identifier():
    with stack_at() as (stack, _):
        # Given a trial started by a member with a Discord account and a card
        _trial_plan(trial_days=7)
        (ana,) = _members(1)
        BillingEventProcessor(bootstrap.admin().stores, FakeQueue(), lambda: "mbr_new").apply(
            _trialing("sub_ana", ana, "fp_secret_card"), T0)
        # When the table is read raw
        import boto3

        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=stack.membership_table)["Items"]
        trials = [i for i in items if i["pk"]["S"].startswith("TRIAL#")]
        # Then the trial items name neither the account nor the card
        assert len(trials) == 2
        assert "fp_secret_card" not in json.dumps(trials) and "900000000000000000" not in json.dumps(trials)


def test_trial_days_only_on_subscription_plans_and_patchable():
    with stack_at():
        # Given a subscription plan with no trial
        plan_id = _trial_plan()
        # When the creator sets, then removes a trial; and asks one of a lifetime plan
        _, with_trial = call("PATCH", f"/admin/plans/{plan_id}", {"trial_days": 14})
        _, without = call("PATCH", f"/admin/plans/{plan_id}", {"trial_days": None})
        status, body = call("POST", "/admin/plans", {"name": "Life", "kind": "lifetime", "stripe_price_ids": ["price_life"],
                                                     "grants": [{"community_id": with_trial["grants"][0]["community_id"]}],
                                                     "trial_days": 7})
        # Then the trial is set and removed; the lifetime plan is refused naming trial_days
        assert with_trial["trial_days"] == 14 and without["trial_days"] is None
        assert status == 400 and body["error"]["field"] == "trial_days"


def test_processor_is_wired_to_end_trials_at_stripe_without_reading_the_key_until_needed():
    with stack_at():
        # Given the processor function's environment (STRIPE_API_KEY_NAME set, as the template sets it)
        import sys

        had_stripe = "stripe" in sys.modules
        # When its container is built
        ender = bootstrap.processor().processor.trial_ender
        # Then it can end trials, and building it neither imported the Stripe SDK nor read the key
        assert ender is not None and ender.settings.stripe_api_key_name == "/membergate/stripe-api-key"
        assert had_stripe or "stripe" not in sys.modules


def test_end_trial_through_the_stripe_gateway_bills_the_first_period_now_in_the_sandbox():
    from infra.local.stripe_sandbox import WsgiStripeHttpClient
    from membergate.adapters.stripe_billing import StripeBillingGateway
    from tests.integration.test_stripe_sandbox import BASE, T0 as SANDBOX_T0, make_stack, open_session, pay

    # Given a member trialing a 7-day trial through the sandbox's Checkout
    stack = make_stack()
    stack.sandbox.register_price("price_trial", 500, "eur", trial_period_days=7)
    session = open_session(stack, line_items=[{"price": "price_trial", "quantity": 1}])
    pay(stack, session.id, "card")
    sub_id = stack.last("checkout.session.completed")["data"]["object"]["subscription"]
    gateway = StripeBillingGateway.build("rk_test_local", BASE, http_client=WsgiStripeHttpClient(stack.sandbox.wsgi_app, BASE))
    # When Membergate ends the trial (its card already had one)
    gateway.end_trial(sub_id, idempotency_key=f"membergate-trial-end-{sub_id}")
    # Then the subscription is active from now, the first period is paid now, and Stripe said so in events
    sub = stack.sandbox.subscription(sub_id)
    assert sub["status"] == "active" and sub["trial_end"] == SANDBOX_T0
    assert sub["items"]["data"][0]["current_period_start"] == SANDBOX_T0
    assert stack.last("invoice.paid")["data"]["object"]["amount_paid"] == 500
    assert stack.last("customer.subscription.updated")["data"]["object"]["status"] == "active"


def test_dynamo_trial_ledger_keeps_all_keys_in_one_write_and_names_those_another_trial_had():
    from membergate.adapters.dynamodb.models import TrialItem
    from membergate.adapters.dynamodb.trials import DynamoTrialLedger

    with stack_at():
        # Given a ledger where one card already had a trial
        ledger = DynamoTrialLedger()
        assert ledger.mark([trial_key("card", "fp_1")], "sub_a", T0) == []
        keys = [trial_key("discord", "1"), trial_key("email", "b@example.com"), trial_key("card", "fp_1")]
        # When another subscription keeps its keys with that card, and again (a redelivery), and the
        # first keeps its own key again later
        first, again = ledger.mark(keys, "sub_b", T0 + 1), ledger.mark(keys, "sub_b", T0 + 2)
        own = ledger.mark([trial_key("card", "fp_1"), trial_key("discord", "9")], "sub_a", T0 + 3)
        # Then the card is named each time for the second, never for the first, and every other key is kept
        # for the subscription that used it first, as of that first time
        assert first == again == [trial_key("card", "fp_1")] and own == []
        assert ledger.used([trial_key("discord", "1")]) and ledger.used([trial_key("email", "b@example.com")])
        item = TrialItem.get(f"TRIAL#{trial_key('card', 'fp_1')}", "TRIAL")
        assert (item.subscription_id, int(item.at)) == ("sub_a", T0)
        assert int(TrialItem.get(f"TRIAL#{trial_key('discord', '1')}", "TRIAL").at) == T0 + 1


def test_dynamo_card_store_saves_a_newer_card_in_one_write_and_never_over_an_erased_or_newer_one():
    from membergate.adapters.dynamodb.repositories import DynamoCardStore
    from membergate.domain.lifecycle import CardOnFile, erased_card

    with stack_at():
        # Given a card store
        cards = DynamoCardStore()
        first = CardOnFile("pm_1", T0 + 90 * 86_400, T0, trial_key=trial_key("card", "fp_1"))
        newer = CardOnFile("pm_2", T0 + 99 * 86_400, T0 + 10, trial_key=trial_key("card", "fp_2"))
        # When a card is saved where none is, a newer one over it, then an older one and the same one again
        saved = [cards.save_if_newer("cus_1", first), cards.save_if_newer("cus_1", newer),
                 cards.save_if_newer("cus_1", first), cards.save_if_newer("cus_1", newer)]
        # and a newer card comes for an erased customer
        cards.save_card("cus_2", erased_card(T0))
        over_erased = cards.save_if_newer("cus_2", newer)
        # Then only the first two are written, the newest stays, and the erased customer stays erased
        assert saved == [True, True, False, False] and cards.card("cus_1") == newer
        assert over_erased is False and cards.card("cus_2").erased and cards.card("cus_2").trial_key is None
