"""A refusal about the whole community is paid once, not once per member, and never stalls another community."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from membergate.domain.access import Capability, Presence
from membergate.domain.errors import PermanentError
from membergate.domain.holds import PROBE_INTERVAL
from membergate.domain.model import AccessState, Community, Plan, PlanGrant, Platform, WorkKind
from membergate.domain.preflight import Check, Preflight
from membergate.ports import AccessWork
from membergate.services import admin
from membergate.services.alerts import AlertRecorder
from tests.support import stripe_events as se
from tests.support.alerts import MemoryAlertStore
from tests.support.fakes import FakeConnector
from tests.support.harness import DAY, GUILD, ROLE, T0, Harness

pytestmark = pytest.mark.unit

OTHER_GUILD = "444444444444444444"
OTHER_ROLE = "666666666666666666"
MEMBERS = 1000


class BrokenGuildConnector(FakeConnector):
    """A bot that lost Manage Roles in one guild: every change there is refused, as Discord does (403/50013)."""

    capabilities = FakeConnector.capabilities | {Capability.PREFLIGHT}

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()
        self.refused = 0  # requests the platform answered with a refusal (count towards the IP ban)

    def _refuse(self, community: Community) -> None:
        if community.external_id in self.broken:
            self.refused += 1
            raise PermanentError("The bot lacks a permission in this server: give it Manage Roles.",
                                 "missing_permissions")

    def check_member(self, community: Community, user: str) -> Presence:
        self._refuse(community)
        return super().check_member(community, user)

    def add_member(self, community: Community, user: str, roles: Sequence[str], credential: str | None) -> None:
        self._refuse(community)
        super().add_member(community, user, roles, credential)

    def grant_role(self, community: Community, user: str, role_id: str) -> None:
        self._refuse(community)
        super().grant_role(community, user, role_id)

    def preflight(self, community: Community, role_ids: Sequence[str]) -> Preflight:
        ok = community.external_id not in self.broken
        return Preflight((Check("manage_roles", ok, "" if ok else "give the bot Manage Roles"),))


def harness() -> tuple[Harness, BrokenGuildConnector]:
    h = Harness()
    connector = BrokenGuildConnector()
    h.connector = connector
    h.dispatcher.connectors[Platform.DISCORD] = connector
    h.stores.catalog.add_community(Community("com_2", Platform.DISCORD, "Other", OTHER_GUILD, OTHER_ROLE,
                                             h.community.on_revoke, "en", T0))
    h.stores.catalog.add_plan(Plan("pln_other", "Other", ("price_other",), (PlanGrant("com_2"),), 3,
                                   h.plan.on_grace_end, T0))
    return h, connector


def subscribe(h: Harness, n: int, price_id: str = "price_monthly") -> str:
    member_id = f"mbr_{n}"
    h.member(member_id, f"5{n:017d}")
    h.deliver(se.subscription_event("customer.subscription.created", created=h.now, member_id=member_id,
                                    customer=f"cus_{n}", sub_id=f"sub_{n}", price_id=price_id),
              se.checkout_completed(created=h.now, member_id=member_id, customer=f"cus_{n}", sub_id=f"sub_{n}"))
    return member_id


def test_community_refusal_of_a_thousand_members_costs_a_handful_of_refused_requests():
    # Given the bot lost Manage Roles in com_1, and 1,000 members paid for it
    h, connector = harness()
    connector.broken.add(GUILD)
    members = [subscribe(h, n) for n in range(MEMBERS)]
    h.run_access(max_steps=10 * MEMBERS)
    # When the creator resyncs every member (before fixing anything)
    h.at(T0 + DAY)
    for member_id in members:
        admin.resync_member(h.stores, h.queue, member_id, h.now)
    h.run_access(max_steps=10 * MEMBERS)
    # Then Discord saw a handful of refused requests, not one per member
    assert connector.refused <= 3
    # And every member's access says why and what fixes it
    record = h.stores.access.get(members[-1], "com_1")
    assert record.state is AccessState.FAILED and record.reason.startswith("missing_permissions")
    assert "Manage Roles" in record.reason and "/admin/communities/com_1/check" in record.reason


def test_community_refusal_leaves_another_communitys_work_going():
    # Given com_1 is held after its bot lost Manage Roles
    h, connector = harness()
    connector.broken.add(GUILD)
    for n in range(50):
        subscribe(h, n)
    # When members of another community pay meanwhile
    for n in range(50, 60):
        subscribe(h, n, price_id="price_other")
    h.run_access(max_steps=1000)
    # Then they got their role there, and com_1 cost one refused request
    assert all(connector.roles_of(OTHER_GUILD, f"5{n:017d}") == {OTHER_ROLE} for n in range(50, 60))
    assert connector.refused == 1
    assert h.stores.access.get("mbr_55", "com_2").state is AccessState.GRANTED


def test_community_hold_raises_one_alert_not_one_per_member():
    # Given a creator alert recorder
    h, connector = harness()
    store = MemoryAlertStore()
    h.dispatcher.alerts = AlertRecorder(store)
    connector.broken.add(GUILD)
    # When 30 members of the held community pay
    for n in range(30):
        subscribe(h, n)
    h.run_access(max_steps=1000)
    # Then the creator hears of the refusal once
    assert len([a for a in store.alerts.values() if a.subject == "com_1"]) == 1


def test_passing_check_releases_the_hold_and_resyncs_every_member_held():
    # Given 40 members held behind com_1's refusal
    h, connector = harness()
    connector.broken.add(GUILD)
    members = [subscribe(h, n) for n in range(40)]
    h.run_access(max_steps=1000)
    assert admin.check_community(h.stores, {Platform.DISCORD: connector}, "com_1", h.queue).ok is False
    assert h.stores.holds.get("com_1") is not None
    # When the creator fixes the bot's role and runs the check
    connector.broken.clear()
    result = admin.check_community(h.stores, {Platform.DISCORD: connector}, "com_1", h.queue)
    h.run_access(max_steps=1000)
    # Then the hold is gone and every member got the role
    assert result.ok and h.stores.holds.get("com_1") is None
    assert all(connector.roles_of(GUILD, f"5{n:017d}") == {ROLE} for n in range(40))
    assert {h.stores.access.get(m, "com_1").state for m in members} == {AccessState.GRANTED}


def test_member_resync_probes_at_most_once_a_minute_and_a_passing_probe_releases():
    # Given com_1 held, with 20 members behind it
    h, connector = harness()
    connector.broken.add(GUILD)
    members = [subscribe(h, n) for n in range(20)]
    h.run_access(max_steps=1000)
    # When every member is resynced a minute later (nothing fixed yet)
    h.at(T0 + PROBE_INTERVAL)
    for member_id in members:
        admin.resync_member(h.stores, h.queue, member_id, h.now)
    h.run_access(max_steps=1000)
    # Then one resync probed (one more refused request), the others were skipped
    assert connector.refused == 2
    # When the creator fixed it and resyncs one member later
    connector.broken.clear()
    h.at(T0 + 3 * PROBE_INTERVAL)
    admin.resync_member(h.stores, h.queue, members[0], h.now)
    h.run_access(max_steps=1000)
    # Then the probe passed, the hold was released and every member held resynced
    assert h.stores.holds.get("com_1") is None
    assert {h.stores.access.get(m, "com_1").state for m in members} == {AccessState.GRANTED}


def test_member_scoped_refusal_does_not_hold_the_community():
    # Given one member at Discord's server limit (a refusal about them only)
    h, connector = harness()
    connector.fail_on["add_member"] = [PermanentError("leave a server first", "member_guild_limit")]
    subscribe(h, 1)
    # When another member pays
    subscribe(h, 2)
    h.run_access()
    # Then the community is not held and the other member got in
    assert h.stores.holds.get("com_1") is None
    assert h.stores.access.get("mbr_1", "com_1").refusal == "member_guild_limit"
    assert connector.roles_of(GUILD, f"5{2:017d}") == {ROLE}


def test_held_member_work_is_resync_kind_once_released():
    # Given a member held, then the check passes
    h, connector = harness()
    connector.broken.add(GUILD)
    subscribe(h, 1)
    subscribe(h, 2)
    h.run_access()
    connector.broken.clear()
    h.queue.work.clear()
    # When the check passes
    admin.check_community(h.stores, {Platform.DISCORD: connector}, "com_1", h.queue)
    # Then each held member is queued for a resync (which forgets the remembered refusal)
    assert sorted((w.kind, w.member_id) for w, _ in h.queue.work) == [(WorkKind.RESYNC, "mbr_1"), (WorkKind.RESYNC, "mbr_2")]


def test_member_with_nothing_in_a_held_community_gets_no_failed_record():
    # Given com_1 held
    h, connector = harness()
    connector.broken.add(GUILD)
    subscribe(h, 1)
    h.run_access()
    # When work arrives for a member with no entitlement and no access there
    h.member("mbr_none", "599999999999999999")
    h.queue.send([AccessWork(WorkKind.CONVERGE, "mbr_none", "com_1")])
    h.run_access()
    # Then nothing is recorded for them, nor asked of the platform
    assert h.stores.access.get("mbr_none", "com_1") is None
    assert connector.refused == 1
