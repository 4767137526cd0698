"""The DynamoDB repositories and the in-memory fakes behave alike (so service tests stay honest)."""

from __future__ import annotations

import pytest

from membergate.domain.billing import SubscriptionRecord, SubscriptionSnapshot, merge_snapshot
from membergate.domain.errors import ConcurrentUpdateError, ConflictError
from membergate.domain.model import (
    AccessRecord,
    AccessState,
    CheckoutAttempt,
    CheckoutGate,
    Community,
    Entitlement,
    EntitlementState,
    Identity,
    LedgerEntry,
    Member,
    MemberOrigin,
    MessageKey,
    MessageRecord,
    MessageStatus,
    OnGraceEnd,
    OnRevoke,
    Plan,
    PlanGrant,
    Platform,
    PriceLine,
)
from tests.support.fakes import fake_stores
from tests.support.aws import aws_stack

pytestmark = pytest.mark.integration
T0 = 1_800_000_000


@pytest.fixture(params=["dynamodb", "fake"])
def stores(request):
    if request.param == "fake":
        yield fake_stores()
        return
    with aws_stack():
        from membergate import bootstrap
        from membergate.config import ProcessorSettings

        yield bootstrap.stores(ProcessorSettings.from_env())


def community(cid="com_1") -> Community:
    return Community(cid, Platform.DISCORD, "Club", "1", "2", OnRevoke.REMOVE_ROLE, "fr", T0)


def plan(pid="pln_1", prices=("price_a",)) -> Plan:
    return Plan(pid, "Monthly", prices, (PlanGrant("com_1", "3"),), 3, OnGraceEnd.CANCEL, T0)


def test_catalog_round_trip_and_price_owned_by_one_plan(stores):
    stores.catalog.add_community(community())
    stores.catalog.add_plan(plan())
    assert stores.catalog.get_community("com_1") == community()
    assert stores.catalog.get_plan("pln_1") == plan()
    assert stores.catalog.plan_for_price("price_a") == plan()
    assert stores.catalog.plan_for_price("price_zz") is None
    assert [p.id for p in stores.catalog.list_plans()] == ["pln_1"]
    assert [c.id for c in stores.catalog.list_communities()] == ["com_1"]
    with pytest.raises(ConflictError):
        stores.catalog.add_plan(plan("pln_2", ("price_b", "price_a")))
    # The rejected plan claimed nothing
    assert stores.catalog.plan_for_price("price_b") is None
    assert stores.catalog.get_plan("pln_2") is None


def test_catalog_same_place_registered_twice_is_a_conflict(stores):
    # Given a Discord guild registered once
    stores.catalog.add_community(community())
    # When the same guild, or the same id on another platform, is registered again
    with pytest.raises(ConflictError) as refused:
        stores.catalog.add_community(community("com_2"))
    stores.catalog.add_community(Community("com_3", Platform.TELEGRAM, "Chat", "1", None, OnRevoke.KICK, "fr", T0))
    # Then the second guild is refused naming the first, and a Telegram chat with that id is another place
    assert "com_1" in str(refused.value)
    assert sorted(c.id for c in stores.catalog.list_communities()) == ["com_1", "com_3"]
    with pytest.raises(ConflictError):
        stores.catalog.add_community(Community("com_4", Platform.TELEGRAM, "Chat", "1", None, OnRevoke.KICK, "fr", T0))


def test_members_one_customer_and_one_discord_account_each(stores):
    stores.members.create(Member("mbr_1", T0))
    stores.members.create(Member("mbr_2", T0))
    assert stores.members.attach_customer("mbr_1", "cus_1").stripe_customer_id == "cus_1"
    assert stores.members.find_by_customer("cus_1").id == "mbr_1"
    with pytest.raises(ConflictError):
        stores.members.attach_customer("mbr_2", "cus_1")
    stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, "42"), b"sealed")
    assert stores.members.find_by_identity(Platform.DISCORD, "42").id == "mbr_1"
    assert stores.members.load_credentials("mbr_1", Platform.DISCORD) == b"sealed"
    with pytest.raises(ConflictError):
        stores.members.bind_identity("mbr_2", Identity(Platform.DISCORD, "42"), b"x")


def test_members_attach_customer_known_member_returns_it_with_the_customer(stores):
    # Given a member just read by the caller, with no customer yet
    stores.members.create(Member("mbr_1", T0))
    known = stores.members.get("mbr_1")
    # When the customer is attached with the member the caller holds
    attached = stores.members.attach_customer("mbr_1", "cus_1", known=known)
    # Then the member comes back with the customer, and the store agrees on both sides
    assert attached.stripe_customer_id == "cus_1"
    assert stores.members.get("mbr_1") == attached
    assert stores.members.member_id_for_customer("cus_1") == "mbr_1"


def test_members_attach_customer_known_member_customer_of_another_is_a_conflict(stores):
    # Given cus_1 already attached to mbr_1
    stores.members.create(Member("mbr_1", T0))
    stores.members.create(Member("mbr_2", T0))
    stores.members.attach_customer("mbr_1", "cus_1")
    # When mbr_2, as just read, is given cus_1
    with pytest.raises(ConflictError):
        stores.members.attach_customer("mbr_2", "cus_1", known=stores.members.get("mbr_2"))
    # Then nothing of the one write remains: mbr_2 has no customer, cus_1 is still mbr_1's
    assert stores.members.get("mbr_2").stripe_customer_id is None
    assert stores.members.member_id_for_customer("cus_1") == "mbr_1"


def test_members_attach_customer_stale_known_member_keeps_the_stored_customer(stores):
    # Given mbr_1 read before another writer gave it cus_1
    stores.members.create(Member("mbr_1", T0))
    stale = stores.members.get("mbr_1")
    stores.members.attach_customer("mbr_1", "cus_1")
    # When cus_2 is attached with the stale member
    attached = stores.members.attach_customer("mbr_1", "cus_2", known=stale)
    # Then the stored customer is kept and returned, as without ``known``
    assert attached.stripe_customer_id == "cus_1"
    assert stores.members.member_id_for_customer("cus_2") == "mbr_1"


def test_members_create_for_customer_twice_returns_the_first_member(stores):
    # Given a member created for cus_1
    first = stores.members.create_for_customer("cus_1", "mbr_1", T0)
    # When another event creates one for the same customer with a new id
    second = stores.members.create_for_customer("cus_1", "mbr_2", T0 + 5)
    # Then both answers are the first member, and the second id was never stored
    assert first == second == stores.members.get("mbr_1")
    assert first.stripe_customer_id == "cus_1" and first.origin is MemberOrigin.STRIPE
    assert stores.members.get("mbr_2") is None


def test_members_identities_are_keyed_by_platform(stores):
    # Given a member bound on Discord
    stores.members.create(Member("mbr_1", T0))
    stores.members.create(Member("mbr_2", T0))
    stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, "42"), b"sealed")
    # When the same external id is bound on Telegram by another member, and mbr_1 adds a phone
    stores.members.bind_identity("mbr_2", Identity(Platform.TELEGRAM, "42"))
    stores.members.bind_identity("mbr_1", Identity(Platform.WHATSAPP, "+33612345678"))
    # Then each (platform, id) has its own owner and the member lists both identities
    assert stores.members.find_by_identity(Platform.TELEGRAM, "42").id == "mbr_2"
    assert stores.members.find_by_identity(Platform.DISCORD, "42").id == "mbr_1"
    member = stores.members.get("mbr_1")
    assert member.identity(Platform.WHATSAPP) == "+33612345678" and member.identity(Platform.DISCORD) == "42"
    assert stores.members.load_credentials("mbr_1", Platform.WHATSAPP) is None


def test_access_record_keeps_a_remembered_refusal(stores):
    # Given a failed access record with the platform's refusal
    record = AccessRecord("mbr_1", "com_1", AccessState.FAILED, "missing_permissions: fix it", (), T0, 1, 0,
                          "missing_permissions")
    # When it is saved and read back
    stores.access.save(record)
    # Then the refusal is still there
    assert stores.access.get("mbr_1", "com_1") == record


def test_message_log_lists_outcomes_for_the_member(stores):
    # Given a message claimed then refused
    key = MessageKey("mbr_1", "access_ended", "com_1:0")
    stores.messages.claim(key, T0)
    stores.messages.finish(key, MessageStatus.FAILED, "dms_closed", T0 + 5)
    # When the member's messages are listed
    listed = stores.messages.for_member("mbr_1")
    # Then the outcome, its reason and time are there
    assert listed == [MessageRecord("access_ended", "com_1:0", MessageStatus.FAILED, "dms_closed", T0 + 5)]


def test_create_for_customer_is_idempotent(stores):
    first = stores.members.create_for_customer("cus_9", "mbr_a", T0)
    again = stores.members.create_for_customer("cus_9", "mbr_b", T0)
    assert first.id == again.id == "mbr_a"
    assert first.origin == "stripe" and first.stripe_customer_id == "cus_9"


def test_subscription_round_trip_and_optimistic_versioning(stores):
    snap = SubscriptionSnapshot("sub_1", "cus_1", "past_due", T0, "evt_1", current_period_end=T0 + 99,
                                lines=(PriceLine("price_a", "jpy", 1200, 2, "month", 1),), member_id_hint="mbr_1")
    record = merge_snapshot(SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1"), snap)
    saved = stores.subscriptions.save(record)
    loaded = stores.subscriptions.get("mbr_1", "sub_1")
    assert loaded.latest == snap and loaded.observations == record.observations and loaded.via_checkout
    assert loaded.past_due_since == T0
    assert [r.subscription_id for r in stores.subscriptions.for_member("mbr_1")] == ["sub_1"]
    assert [r.subscription_id for r in stores.subscriptions.all_records()] == ["sub_1"]
    stores.subscriptions.save(saved)
    with pytest.raises(ConcurrentUpdateError):
        stores.subscriptions.save(saved)  # stale version


def test_subscription_history_round_trip_keeps_every_price_and_status(stores):
    # Given a subscription seen active at one price, upgraded, then cancelled with collection paused
    line_a, line_b = PriceLine("price_a", "eur", 900, 1, "month", 1), PriceLine("price_b", "jpy", 1200, 2, "year", 1)
    record = SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1")
    for snap in (SubscriptionSnapshot("sub_1", "cus_1", "active", T0, "evt_1", lines=(line_a,)),
                 SubscriptionSnapshot("sub_1", "cus_1", "active", T0 + 50, "evt_2", lines=(line_b,), pause_collection=True),
                 SubscriptionSnapshot("sub_1", "cus_1", "canceled", T0 + 99, "evt_3", lines=(line_b,))):
        record = merge_snapshot(record, snap)
    # When it is saved and read back
    stores.subscriptions.save(record)
    loaded = stores.subscriptions.get("mbr_1", "sub_1")
    # Then its whole history comes back, in Stripe's order
    assert loaded.history == record.history and len(loaded.history) == 3
    # (quantities folded into the amount: 2 x 1,200 a year)
    line_b2 = PriceLine("price_b", "jpy", 2400, 1, "year", 1)
    assert [(p.status, p.lines, p.pause_collection) for p in loaded.history] == [
        ("active", (line_a,), False), ("active", (line_b2,), True), ("canceled", (line_b2,), False)]


def test_subscription_payment_and_refund_times_round_trip(stores):
    from dataclasses import replace

    # Given a subscription whose payment was refunded, then renewed
    record = SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1", last_paid_at=T0, refunded_payment_at=T0 + 5)
    saved = stores.subscriptions.save(record)
    assert stores.subscriptions.get("mbr_1", "sub_1").last_payment_refunded
    stores.subscriptions.save(replace(saved, last_paid_at=T0 + 30 * 86_400))
    # When it is read back
    loaded = stores.subscriptions.get("mbr_1", "sub_1")
    # Then both times are kept and the renewal stands
    assert (loaded.last_paid_at, loaded.refunded_payment_at) == (T0 + 30 * 86_400, T0 + 5)
    assert not loaded.last_payment_refunded


def test_subscription_dispute_and_its_policy_round_trip(stores):
    # Given a subscription whose payment is disputed, under the keep policy, and one never disputed
    stores.subscriptions.save(SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1", dispute="lost", dispute_policy="keep"))
    stores.subscriptions.save(SubscriptionRecord("sub_2", "mbr_1", "cus_1", "pln_1"))
    # When they are read back
    disputed, plain = stores.subscriptions.get("mbr_1", "sub_1"), stores.subscriptions.get("mbr_1", "sub_2")
    # Then the dispute and the policy in force are kept, and no dispute reads as none
    assert (disputed.dispute, disputed.dispute_policy, disputed.disputed) == ("lost", "keep", False)
    assert (plain.dispute, plain.dispute_policy, plain.disputed) == ("", "", False)


def test_entitlements_projection_and_due_index(stores):
    ents = [Entitlement("pln_1", "com_1", "3", EntitlementState.GRACE, T0 + 10, "payment_failed")]
    stores.entitlements.save("mbr_1", ents, T0 + 5)
    stores.entitlements.save("mbr_2", [], T0 + 50)
    stores.entitlements.save("mbr_3", [], None)
    assert stores.entitlements.for_member("mbr_1") == ents
    assert stores.entitlements.due(T0 + 5, 10) == ["mbr_1"]
    assert stores.entitlements.due(T0 + 100, 10) == ["mbr_1", "mbr_2"]
    stores.entitlements.save("mbr_1", ents, None)
    assert stores.entitlements.due(T0 + 100, 10) == ["mbr_2"]


def test_access_messages_checkouts(stores):
    record = AccessRecord("mbr_1", "com_1", AccessState.GRANTED, "", ("3",), T0, 0, T0)
    stores.access.save(record)
    assert stores.access.get("mbr_1", "com_1") == record
    assert stores.access.for_member("mbr_1") == [record]
    key = MessageKey("mbr_1", "grace_started", "sub_1:1")
    assert stores.messages.claim(key, T0) is True
    assert stores.messages.claim(key, T0) is False
    assert stores.messages.status(key) == "queued"
    stores.messages.finish(key, "failed", "dms_closed", T0)
    assert stores.messages.status(key) == "failed"
    attempt = CheckoutAttempt("mbr_1", "pln_1", 2, "price_a", "cs_1", "https://x", T0 + 10)
    stores.checkouts.save_attempt(attempt)
    assert stores.checkouts.get_attempt("mbr_1", "pln_1") == attempt


def test_ledger_mark_upserts_and_lists_recent(stores):
    entry = LedgerEntry("evt_1", "invoice.paid", "processed", T0, T0, "cus_1", "ok")
    stores.ledger.mark(entry, T0)
    got = stores.ledger.get("evt_1")
    assert (got.status, got.type, got.customer_id, got.detail) == ("processed", "invoice.paid", "cus_1", "ok")
    assert [e.event_id for e in stores.ledger.recent(T0, 10)] == ["evt_1"]


def test_sessions_states_and_counters(stores):
    session = stores.sessions.create_session("s1", T0 + 100)
    assert stores.sessions.get_session("s1", T0).member_id is None
    stores.sessions.set_session_member("s1", "mbr_1")
    assert stores.sessions.get_session("s1", T0).member_id == "mbr_1"
    assert stores.sessions.get_session("s1", T0 + 100) is None  # expired, TTL or not
    stores.sessions.put_oauth_state("st", "s1", "pln_1", T0 + 60)
    assert stores.sessions.take_oauth_state("st", T0) == ("s1", "pln_1")
    assert stores.sessions.take_oauth_state("st", T0) is None  # single use
    assert [stores.sessions.hit("ip", T0, T0 + 60) for _ in range(3)] == [1, 2, 3]
    assert session.id == "s1"


def test_one_time_grants_and_plan_kinds_round_trip(stores):
    from membergate.domain.grants import OneTimeGrant
    from membergate.domain.model import PlanKind

    # Given a pass plan and a pass paid by SEPA, then settled
    plan = Plan("pln_pass", "Challenge", ("price_pass",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
                PlanKind.PASS, 30)
    stores.catalog.add_plan(plan)
    pending = OneTimeGrant("cs_1", "mbr_1", "pln_pass", PlanKind.PASS, T0, 30 * 86_400, CheckoutGate.AWAITING,
                           amount=4900, currency="eur")
    stores.grants.save(pending)
    from dataclasses import replace

    stores.grants.save(replace(pending, gate=CheckoutGate.PAID))
    # Then both read back as written
    assert stores.catalog.get_plan("pln_pass") == plan
    assert stores.grants.for_member("mbr_1") == [replace(pending, gate=CheckoutGate.PAID)]
    assert stores.grants.get("mbr_1", "cs_1").gate is CheckoutGate.PAID
    assert stores.grants.get("mbr_1", "cs_other") is None


def test_revoked_grant_keeps_when_it_was_revoked(stores):
    from membergate.domain.controls import end_grant
    from membergate.domain.grants import SOURCE_MANUAL, OneTimeGrant
    from membergate.domain.model import PlanKind

    # Given a manual grant the creator revokes a day after giving it
    given = OneTimeGrant("mgr_1", "mbr_1", "pln_1", PlanKind.PASS, T0, 30 * 86_400, source=SOURCE_MANUAL)
    # When it is saved ended and read back
    stores.grants.save(end_grant(given, T0 + 86_400))
    # Then the revoke's time comes back with its reason (a removal names the latest ending)
    read = stores.grants.get("mbr_1", "mgr_1")
    assert (read.ended_reason, read.ended_at) == ("revoked", T0 + 86_400)


def test_grant_found_by_its_payment_with_dispute_facts_round_trip(stores):
    from dataclasses import replace

    from membergate.domain.grants import OneTimeGrant
    from membergate.domain.model import PlanKind

    # Given a lifetime grant paid by pi_1, later disputed under the keep policy
    grant = OneTimeGrant("cs_1", "mbr_1", "pln_life", PlanKind.LIFETIME, T0, None, CheckoutGate.PAID,
                         payment_intent="pi_1")
    stores.grants.save(grant)
    disputed = replace(grant, dispute="open", dispute_policy="keep", ended_reason="refunded")
    stores.grants.save(disputed)
    # When it is looked up by its payment (disputes name nothing else)
    found = stores.grants.find_by_payment_intent("pi_1")
    # Then it is the grant as last written, and an unknown payment finds nothing
    assert found == disputed
    assert stores.grants.find_by_payment_intent("pi_other") is None


def test_members_written_before_identities_are_read_as_discord_identities():
    # Given a member item, its link and its tokens as the Discord-only version wrote them
    with aws_stack():
        from membergate import bootstrap
        from membergate.config import ProcessorSettings

        _legacy_member_read_back(bootstrap.stores(ProcessorSettings.from_env()))


def _legacy_member_read_back(stores) -> None:
    from membergate.adapters.dynamodb.models import LinkItem, MemberItem

    MemberItem("MEMBER#mbr_old", "MEMBER", member_id="mbr_old", created_at=T0, origin="join",
               discord_user_id="77", discord_tokens=b"sealed-old").save()
    LinkItem("DISCORD_USER#77", "LINK", member_id="mbr_old").save()
    # When it is read through the platform-neutral API
    member = stores.members.find_by_identity(Platform.DISCORD, "77")
    # Then the Discord account and its sealed tokens are there
    assert member.id == "mbr_old" and member.identity(Platform.DISCORD) == "77"
    assert stores.members.load_credentials("mbr_old", Platform.DISCORD) == b"sealed-old"


def test_members_replace_identity_moves_the_link_and_drops_old_credentials(stores):
    # Given a member bound to a Discord account with stored tokens, and another member
    stores.members.create(Member(id="mbr_1", created_at=T0))
    stores.members.create(Member(id="mbr_2", created_at=T0))
    stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, "111"), b"sealed-old")
    stores.members.bind_identity("mbr_2", Identity(Platform.DISCORD, "333"))
    # When mbr_1 is relinked to a new account
    previous = stores.members.replace_identity("mbr_1", Identity(Platform.DISCORD, "222"))
    # Then the old account is returned and freed, the new one found, the old tokens gone
    assert previous == Identity(Platform.DISCORD, "111")
    assert stores.members.find_by_identity(Platform.DISCORD, "111") is None
    assert stores.members.find_by_identity(Platform.DISCORD, "222").id == "mbr_1"
    assert stores.members.get("mbr_1").identity(Platform.DISCORD) == "222"
    assert stores.members.load_credentials("mbr_1", Platform.DISCORD) is None
    # And another member's account cannot be taken
    with pytest.raises(ConflictError):
        stores.members.replace_identity("mbr_1", Identity(Platform.DISCORD, "333"))
    assert stores.members.get("mbr_1").identity(Platform.DISCORD) == "222"


def test_member_page_walks_every_member_in_id_order_without_repeats(stores):
    # Given five members created out of order
    for member_id in ("mbr_c", "mbr_a", "mbr_e", "mbr_b", "mbr_d"):
        stores.members.create(Member(member_id, T0))
    # When paging two at a time from the start
    seen, after, pages = [], None, 0
    while True:
        members, after = stores.members.page(2, after)
        seen += [m.id for m in members]
        pages += 1
        if after is None:
            break
    # Then every member comes once, in id order, in three pages, the last without a cursor
    assert seen == ["mbr_a", "mbr_b", "mbr_c", "mbr_d", "mbr_e"]
    assert pages == 3
    assert stores.members.page(5) == (stores.members.page(10)[0], None)


def test_update_plan_changes_name_grace_and_archive_only(stores):
    # Given a stored plan
    stores.catalog.add_community(community())
    stores.catalog.add_plan(plan())
    # When it is edited (prices included, which must not change) and archived
    from dataclasses import replace

    stores.catalog.update_plan(replace(plan(), name="Renamed", grace_days=9, stripe_price_ids=("price_other",), archived_at=T0 + 5))
    # Then name, grace and archive date are stored; the prices stay
    assert stores.catalog.get_plan("pln_1") == replace(plan(), name="Renamed", grace_days=9, archived_at=T0 + 5)
    assert stores.catalog.plan_for_price("price_a").id == "pln_1"
