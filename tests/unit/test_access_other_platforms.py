"""The same dispatcher drives an invite-based platform (Telegram-like) through the one connector port."""

from __future__ import annotations

import pytest

from membergate.domain.model import (
    AccessState,
    Community,
    Identity,
    Member,
    OnRevoke,
    Plan,
    PlanGrant,
    Platform,
    WorkKind,
    OnGraceEnd,
)
from membergate.ports import AccessWork
from membergate.services.access import AccessDispatcher, Links
from tests.support import stripe_events as se
from tests.support.harness import DAY, T0, Harness
from tests.support.invite_platform import FakeInvitePlatform

pytestmark = pytest.mark.unit

TG_USER = "424242"


def telegram_harness() -> tuple[Harness, FakeInvitePlatform]:
    h = Harness()
    place = FakeInvitePlatform()
    h.dispatcher = AccessDispatcher(h.stores, {Platform.DISCORD: h.connector, Platform.TELEGRAM: place}, h.identity,
                                    h.cipher, Links("https://m.example"))
    h.stores.catalog.add_community(Community("com_tg", Platform.TELEGRAM, "Le Canal", "-1001234", None, OnRevoke.KICK,
                                             "fr", T0))
    h.stores.catalog.add_plan(Plan("pln_tg", "Canal", ("price_tg",), (PlanGrant("com_tg"),), 3, OnGraceEnd.CANCEL, T0))
    h.stores.members.create(Member("mbr_1", T0))
    h.stores.members.bind_identity("mbr_1", Identity(Platform.TELEGRAM, TG_USER))
    return h, place


def pay(h: Harness) -> None:
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1",
                                    price_id="price_tg"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.run_access()


def test_invite_platform_payment_sends_one_personal_invite():
    # Given a member bound on Telegram
    h, place = telegram_harness()
    # When they pay
    pay(h)
    # Then one personal invite was created and sent to them, in the community's language, and access waits for them
    assert [user for user, _ in place.invites] == [TG_USER]
    [(user, text, _)] = place.messages
    assert user == TG_USER and place.invites[0][1] in text and "Bienvenue" in text
    assert h.stores.access.get("mbr_1", "com_tg").state is AccessState.INVITED


def test_invite_platform_join_request_from_the_payer_is_approved():
    # Given an invited member who asked to join
    h, place = telegram_harness()
    pay(h)
    place.requests.add(TG_USER)
    # When the join request is converged
    h.queue.send([AccessWork(WorkKind.RESYNC, "mbr_1", "com_tg")])
    h.run_access()
    # Then it is approved, access granted, and no second invite sent
    assert ("approve", TG_USER) in place.actions and TG_USER in place.members
    assert h.stores.access.get("mbr_1", "com_tg").state is AccessState.GRANTED
    assert len(place.invites) == 1


def test_invite_platform_end_of_access_tells_then_removes():
    # Given a member in the chat
    h, place = telegram_harness()
    pay(h)
    place.requests.add(TG_USER)
    h.queue.send([AccessWork(WorkKind.RESYNC, "mbr_1", "com_tg")])
    h.run_access()
    before = len(place.messages)  # the invite, then the welcome once in the chat
    # When the subscription is cancelled
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", price_id="price_tg",
                                                 status="canceled"))
    h.run_access()
    # Then they are told first, then removed
    assert place.actions[-1] == ("remove", TG_USER) and TG_USER not in place.members
    assert before == 2 and place.messages[1][1].startswith("Bienvenue dans Le Canal")
    assert len(place.messages) == 3
    assert h.stores.access.get("mbr_1", "com_tg").state is AccessState.REVOKED


def test_invite_platform_bot_cannot_write_is_visible_with_the_fix():
    # Given a member the bot may not write to (never started it)
    h, place = telegram_harness()
    place.cannot_write.add(TG_USER)
    # When they pay
    pay(h)
    # Then access is failed with the platform's reason and what to do, and remembered until a resync
    record = h.stores.access.get("mbr_1", "com_tg")
    assert record.state is AccessState.FAILED and record.refusal == "bot_cannot_write"
    assert "open the bot again" in record.reason


def test_member_without_identity_on_that_platform_awaits_it():
    # Given a member bound on Discord only, entitled to the Telegram place
    h, place = telegram_harness()
    h.stores.members.create(Member("mbr_2", T0))
    h.stores.members.bind_identity("mbr_2", Identity(Platform.DISCORD, "555555555555555555"))
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_2",
                                    price_id="price_tg", customer="cus_2", sub_id="sub_2"),
              se.checkout_completed(created=T0, member_id="mbr_2", customer="cus_2", sub_id="sub_2"))
    h.run_access()
    # Then nothing is sent there and the state names the missing account
    record = h.stores.access.get("mbr_2", "com_tg")
    assert record.state is AccessState.AWAITING_IDENTITY and "Telegram" in record.reason
    assert place.invites == []


def test_reminder_for_a_place_without_identity_reaches_the_member_on_another_platform():
    # Given a member bound on Discord only, and a reminder about the Telegram place
    h, place = telegram_harness()
    h.stores.members.create(Member("mbr_2", T0))
    h.stores.members.bind_identity("mbr_2", Identity(Platform.DISCORD, "555555555555555555"))
    h.queue.send([AccessWork(WorkKind.NOTIFY, "mbr_2", "com_tg", "grace_started", "sub_2:1",
                             details=(("plan_id", "pln_tg"),))])
    # When it is dispatched
    h.run_access()
    # Then it went out as a Discord DM rather than failing for want of a Telegram account
    assert [user for user, _ in h.connector.dms] == ["555555555555555555"]
    assert place.messages == []
