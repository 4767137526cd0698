"""Access convergence as a pure function: what to do in one place, on any platform.

From a member's entitlements in a community, what the platform shows (``Presence``), what was
done before (the previous ``AccessRecord``) and what the platform's connector can do
(``Capability``), ``plan_changes`` returns the actions to run and the access record to save.
No I/O and no clock: ``now`` is passed in. The dispatcher loads, calls this, runs the actions
through the connector that ``community.platform`` names, and saves.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum

from .model import AccessRecord, AccessState, Community, Entitlement, OnRevoke


class Capability(str, Enum):
    """What a platform's connector can do (DESIGN.md, "Platforms behind one port")."""

    CHECK_MEMBER = "check_member"  # read whether a member is in the place, and their roles
    ADD_MEMBER = "add_member"  # bring a member in directly (Discord: guilds.join)
    ROLES = "roles"  # grant and remove roles (access is a role, not mere presence)
    INVITE = "invite"  # create a personal invite and send it to the member
    APPROVE_JOIN = "approve_join"  # approve or decline a member's join request
    REMOVE_MEMBER = "remove_member"  # take a member out of the place
    MESSAGE = "message"  # write to the member
    PREFLIGHT = "preflight"  # check the bot can do what a community needs (domain/preflight.py)
    POST_ANNOUNCEMENT = "post_announcement"  # post to the whole place (a channel, the group): AnnouncementPoster


class PresenceState(str, Enum):
    PRESENT = "present"
    ABSENT = "absent"
    REQUESTED = "requested"  # asked to join (Telegram/WhatsApp join request), not yet in
    UNKNOWN = "unknown"  # not read (nothing changed) or the platform cannot tell


@dataclass(frozen=True)
class Presence:
    state: PresenceState
    roles: frozenset[str] = frozenset()


NOT_READ = Presence(PresenceState.UNKNOWN)


class ActionKind(str, Enum):
    ADD_MEMBER = "add_member"
    GRANT_ROLE = "grant_role"
    REMOVE_ROLE = "remove_role"
    SEND_INVITE = "send_invite"
    APPROVE_JOIN = "approve_join"
    DECLINE_JOIN = "decline_join"
    REMOVE_MEMBER = "remove_member"
    NOTIFY = "notify"


# The capability each action needs: the planner never asks a connector for anything else.
NEEDS: dict[ActionKind, Capability] = {
    ActionKind.ADD_MEMBER: Capability.ADD_MEMBER,
    ActionKind.GRANT_ROLE: Capability.ROLES,
    ActionKind.REMOVE_ROLE: Capability.ROLES,
    ActionKind.SEND_INVITE: Capability.INVITE,
    ActionKind.APPROVE_JOIN: Capability.APPROVE_JOIN,
    ActionKind.DECLINE_JOIN: Capability.APPROVE_JOIN,
    ActionKind.REMOVE_MEMBER: Capability.REMOVE_MEMBER,
    ActionKind.NOTIFY: Capability.MESSAGE,
}

ACCESS_ENDED = "access_ended"
ACCESS_RESTORED = "access_restored"  # a removal undone by the creator (services/removals.undo)
INVITE = "invite"
UNSUPPORTED = "unsupported_action"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    role_id: str | None = None  # GRANT_ROLE / REMOVE_ROLE
    roles: tuple[str, ...] = ()  # ADD_MEMBER: the roles to arrive with
    message_kind: str = ""  # NOTIFY
    message_period: str = ""  # NOTIFY: with the kind, the message's once-only key

    def __str__(self) -> str:
        detail = self.role_id or self.message_kind
        return f"{self.kind.value}:{detail}" if detail else self.kind.value


@dataclass(frozen=True)
class AccessPlan:
    actions: tuple[Action, ...]
    state: AccessState
    reason: str = ""
    roles: tuple[str, ...] = ()
    refusal: str = ""


def desired_roles(entitlements: Iterable[Entitlement], capabilities: Collection[Capability]) -> tuple[str, ...]:
    if Capability.ROLES not in capabilities:
        return ()
    return tuple(sorted({e.role_id for e in entitlements if e.state.gives_access and e.role_id}))


def _was_granted(previous: AccessRecord | None) -> bool:
    return (
        previous is not None
        and previous.state in (AccessState.GRANTED, AccessState.INVITED, AccessState.RETRYING, AccessState.FAILED)
        and bool(previous.roles or previous.granted_at)
    )


def needs_check(
    entitlements: Iterable[Entitlement],
    previous: AccessRecord | None,
    capabilities: Collection[Capability],
    *,
    force: bool = False,
) -> bool:
    """Whether the dispatcher must read the platform before planning.

    Not when the previous record already says what the entitlements ask (granted with the same
    roles, or out and still out), nor while a remembered refusal stands: a renewal or a retry
    then costs no request at all. A resync always reads.
    """
    if Capability.CHECK_MEMBER not in capabilities:
        return False
    if force or previous is None:
        return True
    if previous.refusal:
        return False
    listed = list(entitlements)
    if any(e.state.gives_access for e in listed):
        return not (
            previous.state is AccessState.GRANTED and previous.roles == desired_roles(listed, capabilities)
        )
    return previous.state not in (AccessState.NONE, AccessState.REVOKED)


def plan_changes(
    entitlements: Iterable[Entitlement],
    actual: Presence,
    previous: AccessRecord | None,
    community: Community,
    capabilities: Collection[Capability],
    now: int,
    *,
    identity_bound: bool = True,
    managed_roles: Collection[str] = (),
    force: bool = False,
) -> AccessPlan:
    """The actions that bring one member in one community to what ``entitlements`` say now.

    ``entitlements`` are the member's in this community; ``managed_roles`` every role a plan
    grants here (only those are ever removed); ``force`` (an admin resync) forgets a
    remembered refusal. Role changes touch only roles that differ.
    """
    del now  # part of the contract (time-dependent rules belong here); none needs it yet
    listed = [e for e in entitlements if e.community_id == community.id]
    granting = [e for e in listed if e.state.gives_access]
    caps = frozenset(capabilities)
    if previous is not None and previous.refusal and not force:
        # Sending again would only be refused again (and count towards Discord's IP ban).
        return AccessPlan((), AccessState.FAILED, previous.reason, previous.roles, previous.refusal)
    if not identity_bound:
        if granting:
            return AccessPlan(
                (),
                AccessState.AWAITING_IDENTITY,
                f"the member has not connected their {community.platform.value.capitalize()} account yet",
            )
        return AccessPlan((), AccessState.NONE)
    if granting:
        return _plan_access(granting, actual, previous, caps, frozenset(managed_roles), community.id)
    return _plan_removal(actual, previous, community, caps, frozenset(managed_roles))


def _unsupported(what: str) -> AccessPlan:
    return AccessPlan(
        (),
        AccessState.FAILED,
        f"this platform's connector cannot {what}: choose another mode for the community",
        refusal=UNSUPPORTED,
    )


def _plan_access(
    granting: list[Entitlement],
    actual: Presence,
    previous: AccessRecord | None,
    caps: frozenset[Capability],
    managed: frozenset[str],
    community_id: str,
) -> AccessPlan:
    desired = desired_roles(granting, caps)
    state = actual.state
    if state is PresenceState.PRESENT:
        actions = [Action(ActionKind.GRANT_ROLE, role_id=r) for r in desired if r not in actual.roles]
        if Capability.ROLES in caps:
            stale = sorted((managed - set(desired)) & actual.roles)
            actions += [Action(ActionKind.REMOVE_ROLE, role_id=r) for r in stale]
        return AccessPlan(tuple(actions), AccessState.GRANTED, "", desired)
    if state is PresenceState.REQUESTED:
        if Capability.APPROVE_JOIN not in caps:
            return _unsupported("approve join requests")
        return AccessPlan((Action(ActionKind.APPROVE_JOIN),), AccessState.GRANTED, "", desired)
    if state is PresenceState.UNKNOWN and previous is not None:
        if previous.state is AccessState.GRANTED and previous.roles == desired:
            return AccessPlan((), AccessState.GRANTED, "", desired)
        if previous.state is AccessState.INVITED and Capability.INVITE in caps:
            return AccessPlan((), AccessState.INVITED, previous.reason, desired)
    # Absent, or unknown with nothing known done.
    if Capability.ADD_MEMBER in caps:
        return AccessPlan((Action(ActionKind.ADD_MEMBER, roles=desired),), AccessState.GRANTED, "", desired)
    if Capability.INVITE in caps:
        if previous is not None and previous.state is AccessState.INVITED and state is PresenceState.ABSENT:
            return AccessPlan((), AccessState.INVITED, previous.reason, desired)
        # Keyed by access episode: a retry sends the same invite message at most once.
        episode = previous.granted_at if previous is not None else 0
        return AccessPlan(
            (Action(ActionKind.SEND_INVITE, message_kind=INVITE, message_period=f"{community_id}:{episode}"),),
            AccessState.INVITED,
            "a personal invite was sent; waiting for the member to join",
            desired,
        )
    return _unsupported("bring a member in (no add and no invite)")


def _plan_removal(
    actual: Presence,
    previous: AccessRecord | None,
    community: Community,
    caps: frozenset[Capability],
    managed: frozenset[str],
) -> AccessPlan:
    was_granted = _was_granted(previous)
    out_state = (
        AccessState.REVOKED
        if was_granted or (previous is not None and previous.state is AccessState.REVOKED)
        else AccessState.NONE
    )
    decline = (Action(ActionKind.DECLINE_JOIN),) if Capability.APPROVE_JOIN in caps else ()
    if actual.state is PresenceState.ABSENT:
        return AccessPlan((), out_state)
    if actual.state is PresenceState.REQUESTED:
        return AccessPlan(decline, out_state)
    roles_based = Capability.ROLES in caps
    if actual.state is PresenceState.PRESENT:
        held = sorted(actual.roles & managed) if roles_based else []
        # Without roles, being in the place is the access: only what we let in is taken out.
        must_remove = (community.on_revoke is OnRevoke.KICK or not roles_based) and (was_granted or bool(held))
    else:  # UNKNOWN: act on what the previous record says we gave
        if not was_granted:
            return AccessPlan((), out_state)
        held = sorted(set(previous.roles if previous else ()) & managed) if roles_based else []
        must_remove = community.on_revoke is OnRevoke.KICK or not roles_based
    if not (held or must_remove):
        return AccessPlan((), out_state)
    actions: list[Action] = []
    if Capability.MESSAGE in caps:
        # Told before access goes: once removed, the bot may share no place with them.
        episode = previous.granted_at if previous and previous.granted_at else 0
        actions.append(Action(ActionKind.NOTIFY, message_kind=ACCESS_ENDED, message_period=f"{community.id}:{episode}"))
    if must_remove and Capability.REMOVE_MEMBER in caps:
        actions.append(Action(ActionKind.REMOVE_MEMBER))
    elif held:
        actions += [Action(ActionKind.REMOVE_ROLE, role_id=r) for r in held]
    else:
        return _unsupported("remove a member")
    return AccessPlan(tuple(actions), AccessState.REVOKED)
