"""services/reconcile.py over the in-memory stores: phases, policy, Telegram and WhatsApp, pauses and resumption."""

from __future__ import annotations

import pytest

from membergate.domain.access import PresenceState
from membergate.domain.errors import RateLimitedError
from membergate.domain.model import (
    AccessRecord,
    AccessState,
    Community,
    Entitlement,
    EntitlementState,
    Identity,
    Member,
    OnRevoke,
    Plan,
    PlanGrant,
    PlanKind,
    Platform,
    OnGraceEnd,
    WorkKind,
)
from membergate.domain.grants import OneTimeGrant
from membergate.domain.reconcile import Policy, StripeEvent, StripeSubscription
from membergate.services.reconcile import TELEGRAM_NOTE, WHATSAPP_NOTE, Reconciler
from tests.support import stripe_events as se
from tests.support.harness import GUILD, ROLE, T0, Harness
from tests.support.invite_platform import FakeInvitePlatform
from tests.support.reconcile_fakes import FakeBillingReader, FakeLister, FakeReconcileStore

pytestmark = pytest.mark.unit

USER, STRANGER = "555555555555555555", "999999999999999999"


def entitled(h: Harness, member_id: str, community_id: str = "com_1", role: str | None = ROLE) -> None:
    h.stores.entitlements.save(member_id, [Entitlement("pln_monthly", community_id, role, EntitlementState.ACTIVE,
                                                       T0 + 30 * 86_400)], None)


def paying(h: Harness) -> None:
    """mbr_1 subscribes through Stripe's events and gets the role, as in production."""
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.run_access()
    assert h.roles() == {ROLE}


def reconciler(h: Harness, *, policy: Policy = Policy(), billing=None, connectors=None, lister=None):
    store = FakeReconcileStore()
    lister = lister or FakeLister(h.connector)
    service = Reconciler(h.stores, store, h.queue, connectors or {Platform.DISCORD: h.connector},
                         {Platform.DISCORD: lister}, billing or FakeBillingReader(), policy)
    return service, store, lister


def test_reconcile_entitled_member_missing_from_guild_is_queued_with_what_discord_showed():
    # Given a paying member removed from the guild by hand, and a stranger holding the paid role
    h = Harness()
    paying(h)
    del h.connector.guild(GUILD).members[USER]
    h.connector.actions.clear()
    h.connector.guild(GUILD).members[STRANGER] = {ROLE}
    service, store, _ = reconciler(h)
    # When a run goes through
    report = service.run(T0)
    # Then one convergence is queued saying "absent" (the dispatcher need not read again)
    [(work, _)] = h.queue.work
    assert (work.kind, work.member_id, work.observed.state) == (WorkKind.CONVERGE, "mbr_1", PresenceState.ABSENT)
    # And the stranger is reported, not touched; the report is stored as the latest and no run is left
    assert report.complete and store.run is None and store.latest_report["counts"]["unknown_member"] == 1
    assert h.connector.roles_of(GUILD, STRANGER) == {ROLE} and h.connector.actions == []
    # And after the dispatcher ran, the member is in with the role
    h.run_access()
    assert h.roles() == {ROLE}


def test_reconcile_removal_policy_revokes_strangers_roles_and_converges_unpaid_members():
    # Given a former member still holding the role, and a stranger holding it, with removals allowed
    h = Harness()
    h.member()
    h.stores.access.save(AccessRecord("mbr_1", "com_1", AccessState.GRANTED, roles=(ROLE,), granted_at=T0))
    h.connector.guild(GUILD).members.update({USER: {ROLE}, STRANGER: {ROLE, "1"}})
    service, _, _ = reconciler(h, policy=Policy(remove_extra_access=True))
    # When reconciling
    service.run(T0)
    h.run_access()
    # Then the stranger lost exactly the managed role and the former member's access was taken back
    assert h.connector.roles_of(GUILD, STRANGER) == {"1"}
    assert h.roles() == set()


def test_reconcile_rate_limit_pauses_and_the_next_run_continues_from_the_stored_page():
    # Given a guild of 1,001 members (two pages) and Discord rate-limiting the second page
    h = Harness()
    members = h.connector.guild(GUILD).members
    for n in range(1001):
        members[str(100 + n)] = set()
    service, store, lister = reconciler(h)
    lister.fail_on_page[2] = RateLimitedError("Discord rate limit", retry_after=30)
    # When a run meets the limit
    first = service.run(T0)
    # Then it stopped with a note and kept its place
    assert not first.complete and any(n.startswith("paused:") for n in first.notes)
    assert store.run["cursor"]["after"] == "1099"
    # When the next run comes
    second = service.run(T0 + 60)
    # Then it asked for the second page again, not the first, and finished
    assert [after for _, after, _ in lister.pages] == ["0", "1099", "1099"]
    assert second.complete and second.invocations == 2


def test_reconcile_telegram_checks_known_members_only_and_says_so():
    # Given a Telegram chat: one entitled member not in it, one former member still in it
    h = Harness()
    telegram = FakeInvitePlatform()
    chat = Community("com_tg", Platform.TELEGRAM, "Chat", "-1001", None, OnRevoke.KICK, "en", T0)
    h.stores.catalog.add_community(chat)
    h.stores.catalog.add_plan(Plan("pln_tg", "TG", ("price_tg",), (PlanGrant("com_tg"),), 3, OnGraceEnd.CANCEL, T0))
    for member_id, user in (("mbr_a", "11"), ("mbr_b", "12")):
        h.stores.members.create(Member(member_id, T0))
        h.stores.members.bind_identity(member_id, Identity(Platform.TELEGRAM, user))
    entitled(h, "mbr_a", "com_tg", None)
    h.stores.access.save(AccessRecord("mbr_b", "com_tg", AccessState.GRANTED, granted_at=T0))
    telegram.members = {"12", "13"}  # 13: someone Membergate cannot see
    service, _, _ = reconciler(h, connectors={Platform.DISCORD: h.connector, Platform.TELEGRAM: telegram})
    # When reconciling
    report = service.run(T0)
    # Then both known members are judged, the stranger cannot be, and the report says why
    found = {(d.kind.value, d.member_id) for d in report.drifts if d.community_id == "com_tg"}
    assert found == {("paid_without_access", "mbr_a"), ("access_without_payment", "mbr_b")}
    assert TELEGRAM_NOTE in report.notes


def test_reconcile_whatsapp_is_report_only():
    # Given a WhatsApp community (manual mode: no connector can read it)
    h = Harness()
    h.stores.catalog.add_community(Community("com_wa", Platform.WHATSAPP, "WA", "", None, OnRevoke.KICK, "en", T0))
    service, _, _ = reconciler(h)
    # When reconciling
    report = service.run(T0)
    # Then it is noted, and nothing was asked of any platform for it
    assert WHATSAPP_NOTE in report.notes and report.complete


def test_reconcile_stripe_phase_reads_only_since_the_last_run_and_reports_unknowns_and_missed_events():
    # Given Stripe knows a live subscription Membergate never saw, and an undelivered event
    h = Harness()
    billing = FakeBillingReader([StripeSubscription("sub_x", "cus_x", "active", T0 - 10)],
                                [StripeEvent("evt_lost", "invoice.paid", T0 - 100)])
    service, store, _ = reconciler(h, billing=billing)
    # When a first run, then a second one a week later, go through
    first = service.run(T0)
    service.run(T0 + 7 * 86_400)
    # Then the first reports both, and the second lists subscriptions created since the first began
    assert {d.kind.value for d in first.drifts} == {"unknown_subscription", "missed_event"}
    subscription_reads = [gte for what, gte, _ in billing.calls if what == "subscriptions"]
    assert subscription_reads == [0, T0]
    assert [gte for what, gte, _ in billing.calls if what == "events"] == [T0 - 30 * 86_400, T0 + 7 * 86_400 - 30 * 86_400]
    assert store.latest_report["started_at"] == T0 + 7 * 86_400


@pytest.mark.parametrize("source, kind", [
    ("migration", "granted_without_access"),
    ("checkout", "paid_without_access"),
])
def test_reconcile_member_held_only_by_a_free_migration_grant_is_not_labelled_paid(source, kind):
    # Given a member entitled here by one grant only (a free migration grant, or a paid pass), gone from the guild
    h = Harness()
    h.member()
    h.stores.grants.save(OneTimeGrant(f"grt_{source}", "mbr_1", "pln_monthly", PlanKind.PASS, T0 - 10, 30 * 86_400,
                                      source=source))
    entitled(h, "mbr_1")
    service, _, _ = reconciler(h)
    # When reconciling
    report = service.run(T0)
    # Then the item's kind says whether anything was paid; the access is queued back either way
    [drift] = [d for d in report.drifts if d.member_id == "mbr_1"]
    assert drift.kind.value == kind and drift.auto_fixed
    assert ("given by a free migration grant" in drift.detail) is (source == "migration")
    assert [w.member_id for w, _ in h.queue.work] == ["mbr_1"]
