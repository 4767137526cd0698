"""Two updates of one subscription in the same second: the processor reads it back from Stripe once."""

from __future__ import annotations

import json
import logging

import pytest

from membergate.domain.errors import PermanentError, RetryableError
from membergate.domain.model import EntitlementState
from membergate.services.billing_events import BillingEventProcessor
from tests.support import stripe_events as se
from tests.support.harness import ROLE, T0, VIP_ROLE, Harness

pytestmark = pytest.mark.unit

SWITCH_AT = T0 + 600  # the member switched to VIP and back within this second


def subscriber() -> Harness:
    """mbr_1 pays Monthly (sub_1) since T0; the processor reads subscriptions back through the fake Stripe."""
    h = Harness()
    h.processor = BillingEventProcessor(h.stores, h.queue, reader=h.billing)
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.run_access()
    assert h.roles() == {ROLE}
    return h


def switch(price_id: str, event_id: str, at: int = SWITCH_AT) -> dict:
    return se.subscription_event(created=at, event_id=event_id, price_id=price_id, member_id="mbr_1",
                                 period_start=T0)


def stripe_has(h: Harness, price_id: str) -> None:
    h.billing.remote["sub_1"] = se.subscription(created=T0, price_id=price_id, member_id="mbr_1", period_start=T0)


def kept_price(h: Harness) -> tuple[str, ...]:
    record = h.stores.subscriptions.for_member("mbr_1")[0]
    assert record.latest is not None
    return record.latest.price_ids


@pytest.mark.parametrize("to_vip_id, back_id", [("evt_a", "evt_z"), ("evt_z", "evt_a")])
@pytest.mark.parametrize("order", ["switch first", "switch back first"])
def test_sync_subscription_same_second_switch_and_switch_back_reads_stripe_once_and_keeps_its_tier(
        to_vip_id, back_id, order):
    # Given a Monthly subscriber who switched to VIP and back to Monthly in one second (Stripe has Monthly)
    h = subscriber()
    stripe_has(h, "price_monthly")
    events = [switch("price_vip", to_vip_id), switch("price_monthly", back_id)]
    # When both updates arrive, in either order, whatever their random event ids
    h.at(SWITCH_AT + 2).deliver(*(events if order == "switch first" else reversed(events)))
    h.run_access()
    # Then Stripe was read once, on the second of the tied pair, and the member is on the tier Stripe has
    assert h.billing.fetched == ["sub_1"]
    assert kept_price(h) == ("price_monthly",)
    assert h.states()["pln_monthly"] is EntitlementState.ACTIVE
    assert h.roles() == {ROLE}


def test_sync_subscription_same_second_tie_read_wins_over_both_even_when_stripe_disagrees_with_the_id_order():
    # Given Stripe ended on VIP, while the event ids would have kept the switch back to Monthly
    h = subscriber()
    stripe_has(h, "price_vip")
    # When the switch back (larger id) and the switch to VIP arrive in the same second
    h.at(SWITCH_AT + 1).deliver(switch("price_monthly", "evt_z"), switch("price_vip", "evt_a"))
    h.run_access()
    # Then the read decides: VIP, and its role
    assert kept_price(h) == ("price_vip",)
    assert h.roles() == {VIP_ROLE}


def test_sync_subscription_read_in_the_tied_second_counts_from_the_next_one():
    # Given both tied updates processed within the very second they were made
    h = subscriber()
    stripe_has(h, "price_vip")
    h.at(SWITCH_AT).deliver(switch("price_monthly", "evt_z"), switch("price_vip", "evt_a"))
    # Then the read is kept as seen in the next second, so it outranks both
    record = h.stores.subscriptions.for_member("mbr_1")[0]
    assert record.latest is not None
    assert (record.latest.created, record.latest.event_id) == (SWITCH_AT + 1, f"stripe-read-{SWITCH_AT + 1}")


@pytest.mark.parametrize("second, why", [(SWITCH_AT + 1, "the switch back a second later"),
                                         (SWITCH_AT, "a redelivery of the same state under another id")])
def test_sync_subscription_no_tie_reads_nothing(second, why):
    # Given a switch to VIP, then a snapshot the ordering rule orders, or one saying the same
    h = subscriber()
    back = "price_monthly" if second != SWITCH_AT else "price_vip"
    # When both arrive
    h.at(SWITCH_AT + 5).deliver(switch("price_vip", "evt_1"), switch(back, "evt_2", at=second))
    # Then Stripe is not read
    assert h.billing.fetched == [], why


def test_sync_subscription_stripe_unreachable_during_the_read_retries_the_event_and_saves_nothing():
    # Given the switch to VIP applied, and Stripe unreachable
    h = subscriber()
    h.at(SWITCH_AT + 1).deliver(switch("price_vip", "evt_1"))
    h.billing.fail_with = RetryableError("Stripe is unreachable or rate-limiting: APIConnectionError")
    back = json.dumps(switch("price_monthly", "evt_2"))
    # When the tied switch back arrives
    with pytest.raises(RetryableError):
        h.processor.apply(back, SWITCH_AT + 1)
    # Then nothing was merged on a guess: the stored state is still the switch to VIP alone
    assert kept_price(h) == ("price_vip",)
    assert h.stores.ledger.get("evt_2") is None or h.stores.ledger.get("evt_2").status == "access_unsent"
    # And the retry, with Stripe back, converges on Stripe's tier
    h.billing.fail_with = None
    stripe_has(h, "price_monthly")
    assert h.processor.apply(back, SWITCH_AT + 60).status == "processed"
    h.run_access()
    assert kept_price(h) == ("price_monthly",)
    assert h.roles() == {ROLE}


@pytest.mark.parametrize("answer", ["unknown", "refused", "malformed"])
def test_sync_subscription_stripe_unknown_or_refusing_keeps_the_ordered_merge_and_logs(answer, caplog):
    # Given a switch to VIP, and Stripe that no longer knows sub_1 (or a key that may not read it, or an
    # answer that is no subscription)
    h = subscriber()
    h.at(SWITCH_AT + 1).deliver(switch("price_vip", "evt_1"))
    if answer == "refused":
        h.billing.fail_with = PermanentError("the Stripe key lacks a permission", "stripe_permission")
    if answer == "malformed":
        h.billing.remote["sub_1"] = {"object": "subscription", "id": "sub_1", "status": None}
    # When the tied switch back arrives
    with caplog.at_level(logging.WARNING, logger="membergate.services.billing_events"):
        statuses = h.deliver(switch("price_monthly", "evt_2"))
    # Then the event is processed, merged as the ordering rule orders it (the larger id), and the tie logged
    assert statuses == ["processed"]
    assert kept_price(h) == ("price_monthly",)
    assert any("same-second tie kept as ordered" in r.getMessage() for r in caplog.records)


def test_sync_subscription_without_a_reader_keeps_the_ordered_merge():
    # Given a processor with no Stripe key (no reader)
    h = subscriber()
    h.processor = BillingEventProcessor(h.stores, h.queue)
    # When two updates tie
    h.at(SWITCH_AT + 1).deliver(switch("price_vip", "evt_1"), switch("price_monthly", "evt_2"))
    # Then nothing is read and the ordering rule's pick stands
    assert h.billing.fetched == []
    assert kept_price(h) == ("price_monthly",)
