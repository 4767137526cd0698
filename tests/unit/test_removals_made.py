"""Removals made: the dispatcher records each access it takes away once, and the undo rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from membergate.domain.controls import Removal, removal_id, undo_refusal
from membergate.services import controls, removals
from membergate.domain.errors import AlreadyUndoneError, ConflictError, RetryableError, UndoWindowClosedError
from membergate.domain.model import OnRevoke, WorkKind
from membergate.ports import AccessWork
from tests.support import stripe_events as se
from tests.support.harness import DAY, T0, VIP_ROLE, Harness
from tests.support.billing_fakes import FakeAudit
from tests.support.removals import FakeRemovalLog
from tests.support.timeline import FakeGivenGrants

pytestmark = pytest.mark.unit


def _harness(**kwargs) -> tuple[Harness, FakeRemovalLog]:
    h = Harness(**kwargs)
    log = FakeRemovalLog()
    h.stores = replace(h.stores, removals=log, audit=FakeAudit(), given_grants=FakeGivenGrants())
    h.dispatcher.stores = h.stores
    return h, log


def _paid_then_cancelled(h: Harness, price: str = "price_monthly") -> None:
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1", price_id=price),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    h.run_access()
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", status="canceled", price_id=price))


def test_dispatcher_removal_is_recorded_with_its_reason_plan_and_platform():
    # Given a member who paid and got the role, whose subscription is then cancelled
    h, log = _harness()
    _paid_then_cancelled(h)
    # When the dispatcher takes the role away
    h.run_access()
    # Then one removal is kept: who, where, which platform, when, why and which plan
    assert h.roles() == set()
    (removal,) = log.items.values()
    assert (removal.member_id, removal.community_id, removal.platform, removal.at) == ("mbr_1", "com_1", "discord", T0 + DAY)
    assert removal.plan_id == "pln_monthly" and removal.reason
    assert removal.id == removal_id("mbr_1", "com_1", T0)


def test_dispatcher_removal_retried_after_a_transient_failure_is_one_record():
    # Given a removal whose kick fails once with a transient error
    h, log = _harness(on_revoke=OnRevoke.KICK)
    _paid_then_cancelled(h)
    h.connector.fail_on["remove_member"] = [RetryableError("Discord answered HTTP 500")]
    # When the worker runs the converge, fails, and runs the retry; then the same item comes again
    h.run_access()
    h.queue.send([AccessWork(WorkKind.CONVERGE, "mbr_1", "com_1")])
    h.run_access()
    # Then the member is out and exactly one removal is kept
    assert h.roles() is None
    assert h.connector.calls.count("remove_member") == 2
    assert len(log.items) == 1


def test_dispatcher_records_nothing_when_no_access_was_taken_away():
    # Given a member who paid and still has access (the role is given, never taken)
    h, log = _harness()
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    # When access work runs, and a resync runs again
    h.run_access()
    h.queue.send([AccessWork(WorkKind.RESYNC, "mbr_1", "com_1")])
    h.run_access()
    # Then no removal is recorded
    assert h.roles() and log.items == {}


def test_dispatcher_tier_change_removing_the_old_role_is_not_a_removal():
    # Given a member who moves from the monthly tier's role to the VIP tier's role
    h, log = _harness()
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    h.run_access()
    # When the subscription's price becomes the VIP one
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", price_id="price_vip"))
    h.run_access()
    # Then access stays (with the new role) and no removal is recorded
    assert VIP_ROLE in (h.roles() or set())
    assert log.items == {}


def _revoked_after_the_subscription_ended(h: Harness) -> None:
    # A member whose subscription ended weeks ago, given a manual grant of the same plan since.
    _paid_then_cancelled(h)
    h.run_access()
    grant = controls.give_grant(h.stores, h.queue, member_id="mbr_1", plan_id="pln_monthly", days=30,
                                reason="moderator", actor="creator", now=T0 + 20 * DAY)
    h.at(T0 + 20 * DAY).run_access()
    assert h.roles()
    controls.revoke(h.stores, h.queue, grant_id=grant.grant_id, reason="stepped down", actor="creator",
                    now=T0 + 25 * DAY)
    h.at(T0 + 25 * DAY)


def test_dispatcher_removal_after_a_revoked_grant_carries_revoked_not_the_old_subscriptions_reason():
    # Given a former subscriber (cancelled weeks ago) whose later manual grant of the same plan is revoked
    h, log = _harness()
    _revoked_after_the_subscription_ended(h)
    dms_before = len(h.dm_texts())
    # When the dispatcher takes the role away
    h.run_access()
    # Then the removal record and the member's receipt name the revocation, not the old cancellation
    assert h.roles() == set()
    latest = max(log.items.values(), key=lambda r: r.at)
    assert (latest.at, latest.reason, latest.plan_id) == (T0 + 25 * DAY, "revoked", "pln_monthly")
    (receipt,) = h.dm_texts()[dms_before:]
    assert "ended the access they gave you" in receipt
    assert "subscription" not in receipt


def test_dispatcher_removal_after_revoking_a_grant_given_before_another_one_ran_out_carries_revoked():
    # Given a member with a 3-day grant (as a migration's) and a 30-day manual grant given the same day,
    # both of one plan; the 3-day one runs out, the role stays
    h, log = _harness()
    h.member()
    controls.give_grant(h.stores, h.queue, member_id="mbr_1", plan_id="pln_monthly", days=3, reason="until the deadline",
                        actor="creator", now=T0)
    manual = controls.give_grant(h.stores, h.queue, member_id="mbr_1", plan_id="pln_monthly", days=30,
                                 reason="moderator", actor="creator", now=T0 + 60)
    h.run_access()
    h.at(T0 + 4 * DAY).run_access()
    assert h.roles()
    # When the creator revokes the manual grant on day 5 and the dispatcher takes the role away
    controls.revoke(h.stores, h.queue, grant_id=manual.grant_id, reason="stepped down", actor="creator", now=T0 + 5 * DAY)
    h.at(T0 + 5 * DAY).run_access()
    # Then the removal names the revocation (kept with its time), not the grant that ran out the day before
    assert h.roles() == set()
    (removal,) = log.items.values()
    assert removal.reason == "revoked"


def test_dispatcher_removal_when_the_subscription_ends_after_an_older_grant_carries_the_subscriptions_reason():
    # Given a member whose 10-day manual grant ran out before their subscription was cancelled
    h, log = _harness()
    h.member()
    controls.give_grant(h.stores, h.queue, member_id="mbr_1", plan_id="pln_monthly", days=10, reason="trial by hand",
                        actor="creator", now=T0)
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0 + DAY, member_id="mbr_1"),
        se.checkout_completed(created=T0 + DAY, member_id="mbr_1"),
    )
    h.at(T0 + DAY).run_access()
    h.at(T0 + 20 * DAY).deliver(se.subscription_event(created=T0 + 20 * DAY, member_id="mbr_1", status="canceled"))
    # When the dispatcher takes the role away
    h.run_access()
    # Then the removal names the subscription's end (the later one), not the grant that ran out before
    (removal,) = log.items.values()
    assert removal.reason == "canceled"


def test_removals_preview_of_a_grant_running_out_after_an_ended_subscription_says_grant_expired():
    # Given a former subscriber (cancelled weeks ago) with a 30-day manual grant of the same plan since
    h, _ = _harness()
    _paid_then_cancelled(h)
    h.run_access()
    controls.give_grant(h.stores, h.queue, member_id="mbr_1", plan_id="pln_monthly", days=30,
                        reason="moderator", actor="creator", now=T0 + 20 * DAY)
    # When the preview looks past the grant's end
    (planned,) = removals.member_removals(h.stores, "mbr_1", T0 + 21 * DAY, T0 + 60 * DAY)
    # Then it tells the grant running out, not the subscription's cancellation
    assert (planned.at, planned.reason) == (T0 + 50 * DAY, "grant_expired")


def _removal(**kwargs) -> Removal:
    values = dict(id="rmv_1", member_id="mbr_1", community_id="com_1", platform="discord", at=T0,
                  reason="grace_expired", plan_id="pln_monthly")
    return Removal(**{**values, **kwargs})


def test_undo_refusal_within_the_window_allows_it():
    # Given a removal 6 days old and a 7-day window / When checked / Then nothing is raised
    undo_refusal(_removal(), T0 + 6 * DAY, 7)


def test_undo_refusal_after_the_window_says_to_grant_instead():
    # Given a removal 8 days old / When checked against a 7-day window / Then refused, naming the grant route
    with pytest.raises(UndoWindowClosedError) as refused:
        undo_refusal(_removal(), T0 + 8 * DAY, 7)
    assert refused.value.code == "undo_window_closed" and "POST /admin/members/mbr_1/grants" in refused.value.message


def test_undo_refusal_twice_is_already_undone():
    # Given an undone removal / When checked again / Then already_undone (a 409)
    with pytest.raises(AlreadyUndoneError) as refused:
        undo_refusal(_removal(undone_at=T0 + 1, undo_grant_id="undo_rmv_1"), T0 + 2, 7)
    assert refused.value.code == "already_undone" and isinstance(refused.value, ConflictError)


def test_removal_id_is_stable_per_episode_and_differs_between_episodes():
    # Given the same member and place / When ids are made for two access episodes / Then one id per episode
    assert removal_id("mbr_1", "com_1", T0) == removal_id("mbr_1", "com_1", T0)
    assert removal_id("mbr_1", "com_1", T0) != removal_id("mbr_1", "com_1", T0 + DAY)
