"""The pure access planner, table by table: every entitlement x presence x previous x policy x capability."""

from __future__ import annotations

import pytest

from membergate.domain.access import (
    Action,
    ActionKind,
    Capability,
    Presence,
    PresenceState,
    needs_check,
    plan_changes,
)
from membergate.domain.model import (
    AccessRecord,
    AccessState,
    Community,
    Entitlement,
    EntitlementState,
    OnRevoke,
    Platform,
)

T0 = 1_800_000_000
ROLE, VIP, OTHER = "10", "20", "99"
DISCORD = frozenset({Capability.CHECK_MEMBER, Capability.ADD_MEMBER, Capability.ROLES, Capability.REMOVE_MEMBER,
                     Capability.MESSAGE})
# Telegram-like: personal invites, join requests, removal, no roles.
INVITES = frozenset({Capability.CHECK_MEMBER, Capability.INVITE, Capability.APPROVE_JOIN, Capability.REMOVE_MEMBER,
                     Capability.MESSAGE})
# WhatsApp-manual-like: nothing can be checked; invites and messages only.
MANUAL = frozenset({Capability.INVITE, Capability.MESSAGE})

PRESENT = Presence(PresenceState.PRESENT, frozenset({ROLE}))
PRESENT_NO_ROLE = Presence(PresenceState.PRESENT)
PRESENT_VIP_TOO = Presence(PresenceState.PRESENT, frozenset({ROLE, VIP, OTHER}))
ABSENT = Presence(PresenceState.ABSENT)
REQUESTED = Presence(PresenceState.REQUESTED)
UNKNOWN = Presence(PresenceState.UNKNOWN)


def community(on_revoke: OnRevoke = OnRevoke.REMOVE_ROLE, platform: Platform = Platform.DISCORD) -> Community:
    return Community("com_1", platform, "Club", "1", ROLE, on_revoke, "en", T0)


def entitled(*roles: str) -> list[Entitlement]:
    return [Entitlement(f"pln_{r}", "com_1", r, EntitlementState.ACTIVE, T0 + 99) for r in roles or (ROLE,)]


ENDED = [Entitlement("pln_10", "com_1", ROLE, EntitlementState.ENDED, None, "canceled")]
GRACE = [Entitlement("pln_10", "com_1", ROLE, EntitlementState.GRACE, T0 + 9)]
PENDING = [Entitlement("pln_10", "com_1", ROLE, EntitlementState.PENDING, None)]


def record(state: AccessState, roles: tuple[str, ...] = (), granted_at: int = 0, refusal: str = "") -> AccessRecord:
    return AccessRecord("mbr_1", "com_1", state, "why" if refusal else "", roles, T0, 0, granted_at, refusal)


GRANTED = record(AccessState.GRANTED, (ROLE,), T0)
REVOKED = record(AccessState.REVOKED)
NONE = record(AccessState.NONE)
INVITED = record(AccessState.INVITED, (), T0)
REFUSED = record(AccessState.FAILED, (ROLE,), T0, "missing_permissions")
RECEIPT = Action(ActionKind.NOTIFY, message_kind="access_ended", message_period=f"com_1:{T0}")
RECEIPT_NEW = Action(ActionKind.NOTIFY, message_kind="access_ended", message_period="com_1:0")


def add(*roles: str) -> Action:
    return Action(ActionKind.ADD_MEMBER, roles=roles)


def grant(role: str) -> Action:
    return Action(ActionKind.GRANT_ROLE, role_id=role)


def remove(role: str) -> Action:
    return Action(ActionKind.REMOVE_ROLE, role_id=role)


KICK = Action(ActionKind.REMOVE_MEMBER)
INVITE = Action(ActionKind.SEND_INVITE, message_kind="invite", message_period="com_1:0")
APPROVE = Action(ActionKind.APPROVE_JOIN)
DECLINE = Action(ActionKind.DECLINE_JOIN)

# (name, entitlements, actual, previous, on_revoke, capabilities) -> (actions, state)
CASES = [
    # entitled on Discord
    ("entitled_absent_adds_with_role", entitled(), ABSENT, None, OnRevoke.REMOVE_ROLE, DISCORD, [add(ROLE)], AccessState.GRANTED),
    ("grace_absent_adds_with_role", GRACE, ABSENT, None, OnRevoke.REMOVE_ROLE, DISCORD, [add(ROLE)], AccessState.GRANTED),
    ("entitled_present_missing_role_grants_only_it", entitled(), PRESENT_NO_ROLE, None, OnRevoke.REMOVE_ROLE, DISCORD, [grant(ROLE)], AccessState.GRANTED),
    ("entitled_present_with_role_does_nothing", entitled(), PRESENT, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [], AccessState.GRANTED),
    ("entitled_present_extra_managed_role_removed_only", entitled(), PRESENT_VIP_TOO, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [remove(VIP)], AccessState.GRANTED),
    ("two_plans_present_grants_the_missing_one", entitled(ROLE, VIP), PRESENT, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [grant(VIP)], AccessState.GRANTED),
    ("entitled_unknown_same_roles_granted_before_no_request", entitled(), UNKNOWN, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [], AccessState.GRANTED),
    ("entitled_unknown_nothing_before_adds", entitled(), UNKNOWN, None, OnRevoke.REMOVE_ROLE, DISCORD, [add(ROLE)], AccessState.GRANTED),
    ("entitled_unknown_after_revoke_adds", entitled(), UNKNOWN, REVOKED, OnRevoke.KICK, DISCORD, [add(ROLE)], AccessState.GRANTED),
    ("entitled_kick_policy_present_grants", entitled(), PRESENT_NO_ROLE, REVOKED, OnRevoke.KICK, DISCORD, [grant(ROLE)], AccessState.GRANTED),
    # not entitled on Discord
    ("ended_present_with_role_receipt_then_remove", ENDED, PRESENT, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [RECEIPT, remove(ROLE)], AccessState.REVOKED),
    ("ended_present_kick_receipt_then_kick", ENDED, PRESENT, GRANTED, OnRevoke.KICK, DISCORD, [RECEIPT, KICK], AccessState.REVOKED),
    ("ended_present_without_role_remove_policy_nothing", ENDED, PRESENT_NO_ROLE, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [], AccessState.REVOKED),
    ("ended_present_without_role_kick_policy_kicks", ENDED, PRESENT_NO_ROLE, GRANTED, OnRevoke.KICK, DISCORD, [RECEIPT, KICK], AccessState.REVOKED),
    ("ended_absent_was_granted_revoked_no_request", ENDED, ABSENT, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [], AccessState.REVOKED),
    ("ended_absent_never_granted_none", ENDED, ABSENT, None, OnRevoke.REMOVE_ROLE, DISCORD, [], AccessState.NONE),
    ("pending_present_never_granted_without_role_none", PENDING, PRESENT_NO_ROLE, None, OnRevoke.KICK, DISCORD, [], AccessState.NONE),
    ("pending_present_holding_managed_role_removes_it", PENDING, PRESENT, None, OnRevoke.REMOVE_ROLE, DISCORD, [RECEIPT_NEW, remove(ROLE)], AccessState.REVOKED),
    ("ended_present_unmanaged_role_untouched", ENDED, Presence(PresenceState.PRESENT, frozenset({OTHER})), GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [], AccessState.REVOKED),
    ("ended_unknown_was_granted_removes_recorded_roles", ENDED, UNKNOWN, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD, [RECEIPT, remove(ROLE)], AccessState.REVOKED),
    ("ended_unknown_already_revoked_nothing", ENDED, UNKNOWN, REVOKED, OnRevoke.REMOVE_ROLE, DISCORD, [], AccessState.REVOKED),
    ("ended_unknown_none_before_nothing", ENDED, UNKNOWN, NONE, OnRevoke.KICK, DISCORD, [], AccessState.NONE),
    # capability missing: no message capability means no receipt; no kick capability falls back to roles
    ("ended_no_message_capability_no_receipt", ENDED, PRESENT, GRANTED, OnRevoke.REMOVE_ROLE, DISCORD - {Capability.MESSAGE}, [remove(ROLE)], AccessState.REVOKED),
    ("ended_kick_without_remove_capability_removes_roles", ENDED, PRESENT, GRANTED, OnRevoke.KICK, DISCORD - {Capability.REMOVE_MEMBER}, [RECEIPT, remove(ROLE)], AccessState.REVOKED),
    ("entitled_absent_no_add_no_invite_fails", entitled(), ABSENT, None, OnRevoke.REMOVE_ROLE, frozenset({Capability.CHECK_MEMBER, Capability.ROLES}), [], AccessState.FAILED),
    # invite platforms (Telegram-like)
    ("invites_entitled_absent_sends_invite", entitled(), ABSENT, None, OnRevoke.KICK, INVITES, [INVITE], AccessState.INVITED),
    ("invites_entitled_absent_already_invited_nothing", entitled(), ABSENT, INVITED, OnRevoke.KICK, INVITES, [], AccessState.INVITED),
    ("invites_entitled_requested_approves", entitled(), REQUESTED, INVITED, OnRevoke.KICK, INVITES, [APPROVE], AccessState.GRANTED),
    ("invites_entitled_present_nothing_no_roles", entitled(), PRESENT_NO_ROLE, INVITED, OnRevoke.KICK, INVITES, [], AccessState.GRANTED),
    ("invites_ended_requested_declines", ENDED, REQUESTED, None, OnRevoke.KICK, INVITES, [DECLINE], AccessState.NONE),
    ("invites_ended_present_was_granted_receipt_then_remove", ENDED, PRESENT_NO_ROLE, GRANTED, OnRevoke.KICK, INVITES, [RECEIPT, KICK], AccessState.REVOKED),
    ("invites_ended_present_never_granted_left_alone", ENDED, PRESENT_NO_ROLE, None, OnRevoke.KICK, INVITES, [], AccessState.NONE),
    ("invites_requested_without_approve_capability_fails", entitled(), REQUESTED, None, OnRevoke.KICK, INVITES - {Capability.APPROVE_JOIN}, [], AccessState.FAILED),
    # manual platforms (WhatsApp-manual-like): nothing to read
    ("manual_entitled_unknown_sends_invite", entitled(), UNKNOWN, None, OnRevoke.KICK, MANUAL, [INVITE], AccessState.INVITED),
    ("manual_entitled_unknown_invited_before_nothing", entitled(), UNKNOWN, INVITED, OnRevoke.KICK, MANUAL, [], AccessState.INVITED),
    ("manual_ended_was_invited_cannot_remove_fails", ENDED, UNKNOWN, INVITED, OnRevoke.KICK, MANUAL, [], AccessState.FAILED),
]


@pytest.mark.parametrize(
    "entitlements, actual, previous, on_revoke, caps, actions, state",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_changes_table(entitlements, actual, previous, on_revoke, caps, actions, state):
    # Given a member's entitlements, what the platform shows and what was done before
    platform = Platform.DISCORD if Capability.ROLES in caps else Platform.TELEGRAM
    # When the planner decides
    plan = plan_changes(entitlements, actual, previous, community(on_revoke, platform), caps, T0 + 100,
                        managed_roles={ROLE, VIP})
    # Then it asks for exactly these actions, only ones the platform supports, and says the state
    assert list(plan.actions) == actions
    assert plan.state is state
    assert all(a.kind is not ActionKind.GRANT_ROLE or Capability.ROLES in caps for a in plan.actions)


@pytest.mark.parametrize("caps", [DISCORD, INVITES, MANUAL], ids=["discord", "invites", "manual"])
@pytest.mark.parametrize("entitlements", [entitled(), GRACE, ENDED, PENDING], ids=["active", "grace", "ended", "pending"])
@pytest.mark.parametrize("actual", [PRESENT, PRESENT_NO_ROLE, ABSENT, REQUESTED, UNKNOWN],
                         ids=["present", "present_no_role", "absent", "requested", "unknown"])
@pytest.mark.parametrize("previous", [None, GRANTED, REVOKED, INVITED], ids=["new", "granted", "revoked", "invited"])
def test_plan_changes_every_combination_asks_only_for_supported_actions(caps, entitlements, actual, previous):
    # Given any combination
    # When the planner decides
    plan = plan_changes(entitlements, actual, previous, community(OnRevoke.KICK), caps, T0, managed_roles={ROLE})
    # Then every action is one the connector declared, a receipt comes before any removal, and
    # an entitled member never loses access
    from membergate.domain.access import NEEDS

    assert all(NEEDS[a.kind] in caps for a in plan.actions)
    kinds = [a.kind for a in plan.actions]
    if ActionKind.NOTIFY in kinds:
        assert kinds[0] is ActionKind.NOTIFY
    if any(e.state.gives_access for e in entitlements):
        assert ActionKind.REMOVE_MEMBER not in kinds and plan.state is not AccessState.REVOKED


def test_plan_changes_identity_missing_entitled_awaits_identity():
    # Given an entitled member with no account bound on the platform
    # When the planner decides
    plan = plan_changes(entitled(), UNKNOWN, None, community(), DISCORD, T0, identity_bound=False)
    # Then nothing is sent and the state says what is missing
    assert plan.actions == () and plan.state is AccessState.AWAITING_IDENTITY
    assert "Discord" in plan.reason


def test_plan_changes_identity_missing_not_entitled_is_none():
    plan = plan_changes(ENDED, UNKNOWN, None, community(), DISCORD, T0, identity_bound=False)
    assert plan.actions == () and plan.state is AccessState.NONE


def test_plan_changes_remembered_refusal_sends_nothing_until_resync():
    # Given a refusal remembered on the access record (the bot lacks Manage Roles)
    for entitlements in (entitled(), ENDED):
        # When a new billing event asks for convergence
        plan = plan_changes(entitlements, UNKNOWN, REFUSED, community(), DISCORD, T0)
        # Then nothing is sent and the failure stays visible with its refusal
        assert plan.actions == () and plan.state is AccessState.FAILED and plan.refusal == "missing_permissions"


def test_plan_changes_resync_forgets_the_refusal():
    # Given a remembered refusal, When the creator resyncs (force), Then the planner acts again
    plan = plan_changes(entitled(), PRESENT_NO_ROLE, REFUSED, community(), DISCORD, T0, force=True)
    assert plan.actions == (grant(ROLE),) and plan.state is AccessState.GRANTED and plan.refusal == ""


def test_plan_changes_roles_only_those_that_differ():
    # Given a member holding an unmanaged role and one managed role too many
    actual = Presence(PresenceState.PRESENT, frozenset({OTHER, VIP}))
    # When entitled to ROLE only
    plan = plan_changes(entitled(), actual, GRANTED, community(), DISCORD, T0, managed_roles={ROLE, VIP})
    # Then ROLE is granted, VIP removed, OTHER (not Membergate's) untouched
    assert plan.actions == (grant(ROLE), remove(VIP))


@pytest.mark.parametrize(
    "entitlements, previous, force, expected",
    [
        (entitled(), GRANTED, False, False),  # a renewal: nothing changed, no GET
        (entitled(), GRANTED, True, True),  # a resync always reads
        (entitled(ROLE, VIP), GRANTED, False, True),  # roles changed
        (entitled(), None, False, True),  # never seen
        (entitled(), REVOKED, False, True),  # coming back
        (ENDED, REVOKED, False, False),  # out and still out
        (ENDED, NONE, False, False),
        (ENDED, GRANTED, False, True),  # must go
        (entitled(), REFUSED, False, False),  # a remembered refusal: no request
        (entitled(), REFUSED, True, True),
    ],
    ids=["renewal", "resync", "roles_changed", "new", "returning", "still_out", "never_in", "ending", "refused",
         "refused_resync"],
)
def test_needs_check_reads_only_when_the_answer_matters(entitlements, previous, force, expected):
    assert needs_check(entitlements, previous, DISCORD, force=force) is expected


def test_needs_check_platform_without_check_never_reads():
    assert needs_check(entitled(), None, MANUAL, force=True) is False
