"""dispatch_access: bring one member in one community to what their entitlements say right now.

The work item carries no decision, only (member, community): the desired state is recomputed
here and diffed against the community's actual state, so a repeated or reordered item can never
undo a newer decision. Member-facing messages are claimed by (member, kind, period) first, so
each is sent once even when the work runs twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..domain.errors import PermanentError
from ..domain.messages import format_date, render, template_key
from ..domain.model import (
    AccessRecord,
    AccessState,
    Community,
    Entitlement,
    EntitlementState,
    Member,
    MessageKey,
    OnRevoke,
    Plan,
)
from ..ports import AccessWork, CommunityConnector, IdentityProvider, Stores, TokenCipher
from .identity import open_tokens, seal_tokens
from .membership import current_view

TOKEN_REFRESH_MARGIN = 120


@dataclass(frozen=True)
class Links:
    base_url: str

    def join(self, plan_id: str | None) -> str:
        return f"{self.base_url}/join/{plan_id}" if plan_id else self.base_url

    def manage(self, plan_id: str | None) -> str:
        return f"{self.join(plan_id)}?manage=1"


@dataclass(frozen=True)
class DispatchResult:
    state: AccessState | None  # None for a message: it changes nobody's access
    reason: str = ""
    actions: tuple[str, ...] = ()


class AccessDispatcher:
    def __init__(
        self,
        stores: Stores,
        connector: CommunityConnector,
        identity: IdentityProvider,
        cipher: TokenCipher,
        links: Links,
    ):
        self.stores = stores
        self.connector = connector
        self.identity = identity
        self.cipher = cipher
        self.links = links

    def dispatch(self, work: AccessWork, now: int) -> DispatchResult:
        member = self.stores.members.get(work.member_id)
        community = self.stores.catalog.get_community(work.community_id)
        if member is None or community is None:
            return DispatchResult(AccessState.FAILED, "unknown member or community")
        if work.kind == "notify":
            return self._notify(work, member, community, now)
        return self._converge(member, community, now)

    # -- converge --------------------------------------------------------------------------

    def _converge(self, member: Member, community: Community, now: int) -> DispatchResult:
        view = current_view(self.stores, member.id, now)
        here = [e for e in view.entitlements if e.community_id == community.id]
        granting = [e for e in here if e.state.gives_access]
        desired = frozenset(e.role_id for e in granting if e.role_id)
        managed = self._managed_roles(community)
        previous = self.stores.access.get(member.id, community.id)
        if not member.discord_user_id:
            state = AccessState.AWAITING_IDENTITY if granting else AccessState.NONE
            reason = "the member has not connected Discord yet" if granting else ""
            return self._save(member, community, state, reason, (), now, previous)
        current = self.connector.get_member(community.guild_id, member.discord_user_id)
        actions: list[str] = []
        if granting:
            if current is None:
                token = self._access_token(member, now)
                self.connector.add_member(community.guild_id, member.discord_user_id, token, sorted(desired))
                actions.append("add_member")
            else:
                for role in sorted(desired - current.roles):
                    self.connector.add_role(community.guild_id, member.discord_user_id, role)
                    actions.append(f"add_role:{role}")
                for role in sorted((managed - desired) & current.roles):
                    self.connector.remove_role(community.guild_id, member.discord_user_id, role)
                    actions.append(f"remove_role:{role}")
            return self._save(member, community, AccessState.GRANTED, "", tuple(sorted(desired)), now, previous, actions)
        # Not entitled.
        was_granted = previous is not None and previous.state in (AccessState.GRANTED, AccessState.RETRYING, AccessState.FAILED) and bool(previous.roles or previous.granted_at)
        held = (current.roles & managed) if current is not None else frozenset()
        must_kick = current is not None and community.on_revoke is OnRevoke.KICK and (was_granted or bool(held))
        if current is None or not (held or must_kick):
            state = AccessState.REVOKED if was_granted or (previous and previous.state is AccessState.REVOKED) else AccessState.NONE
            return self._save(member, community, state, "", (), now, previous, actions)
        self._send_receipt(member, community, here, view.plans, previous, now, actions)
        if must_kick:
            self.connector.kick(community.guild_id, member.discord_user_id)
            actions.append("kick")
        else:
            for role in sorted(held):
                self.connector.remove_role(community.guild_id, member.discord_user_id, role)
                actions.append(f"remove_role:{role}")
        return self._save(member, community, AccessState.REVOKED, "", (), now, previous, actions)

    def _managed_roles(self, community: Community) -> frozenset[str]:
        roles = {community.role_id} if community.role_id else set()
        for plan in self.stores.catalog.list_plans():
            for grant in plan.grants:
                if grant.community_id == community.id:
                    roles.add(grant.role_id or community.role_id)
        return frozenset(r for r in roles if r)

    def _access_token(self, member: Member, now: int) -> str:
        sealed = self.stores.members.load_discord_tokens(member.id)
        if sealed is None:
            raise PermanentError(
                "no Discord authorization is stored for this member: they must reconnect Discord from the join page",
                "discord_authorization_missing",
            )
        tokens = open_tokens(self.cipher, sealed)
        if tokens.expires_at - TOKEN_REFRESH_MARGIN > now:
            return tokens.access_token
        if not tokens.refresh_token:
            raise PermanentError(
                "the member's Discord authorization expired: they must reconnect Discord from the join page",
                "discord_authorization_expired",
            )
        fresh = self.identity.refresh(tokens.refresh_token, now)
        self.stores.members.save_discord_tokens(member.id, seal_tokens(self.cipher, fresh))
        return fresh.access_token

    def _send_receipt(
        self,
        member: Member,
        community: Community,
        entitlements: list[Entitlement],
        plans: dict[str, Plan],
        previous: AccessRecord | None,
        now: int,
        actions: list[str],
    ) -> None:
        # Told before the role goes: once kicked, a DM fails (the bot shares no server with them).
        ended = [e for e in entitlements if e.state is EntitlementState.ENDED]
        subject = max(ended, key=lambda e: e.plan_id) if ended else None
        plan = plans.get(subject.plan_id) if subject else None
        episode = previous.granted_at if previous and previous.granted_at else 0
        key = MessageKey(member.id, "access_ended", f"{community.id}:{episode}")
        if not self.stores.messages.claim(key, now):
            return
        text = render(
            template_key("access_ended", subject.reason if subject else "", plan.on_grace_end.value if plan else ""),
            community.locale,
            community=community.name,
            plan=plan.name if plan else community.name,
            reason=subject.reason if subject else "",
            join_url=self.links.join(plan.id if plan else None),
            manage_url=self.links.manage(plan.id if plan else None),
        )
        self._deliver(key, member, text, now)
        actions.append("dm:access_ended")

    # -- notify ----------------------------------------------------------------------------

    def _notify(self, work: AccessWork, member: Member, community: Community, now: int) -> DispatchResult:
        key = MessageKey(member.id, work.message_kind or "", work.message_period or "")
        status = self.stores.messages.status(key)
        if status in ("sent", "failed"):
            return DispatchResult(None, "already sent")
        if status is None:
            self.stores.messages.claim(key, now)
        details = dict(work.details)
        plan = self.stores.catalog.get_plan(details.get("plan_id", "")) if details.get("plan_id") else None
        grace_end = details.get("grace_ends_at")
        text = render(
            work.message_kind or "",
            community.locale,
            community=community.name,
            plan=plan.name if plan else community.name,
            grace_end=format_date(int(grace_end), community.locale) if grace_end else "",
            invoice_url=details.get("invoice_url", ""),
            join_url=self.links.join(plan.id if plan else None),
            manage_url=self.links.manage(plan.id if plan else None),
        )
        delivered = self._deliver(key, member, text, now)
        return DispatchResult(None, "" if delivered else "message not delivered", ("dm:" + key.kind,))

    def _deliver(self, key: MessageKey, member: Member, text: str, now: int) -> bool:
        if not member.discord_user_id:
            self.stores.messages.finish(key, "failed", "no_identity", now)
            return False
        try:
            self.connector.send_dm(member.discord_user_id, text)
        except PermanentError as exc:
            # DMs closed or no shared server: recorded and visible, never retried forever.
            self.stores.messages.finish(key, "failed", exc.reason, now)
            return False
        self.stores.messages.finish(key, "sent", "", now)
        return True

    # -- records ---------------------------------------------------------------------------

    def _save(
        self,
        member: Member,
        community: Community,
        state: AccessState,
        reason: str,
        roles: tuple[str, ...],
        now: int,
        previous: AccessRecord | None,
        actions: list[str] | None = None,
    ) -> DispatchResult:
        granted_at = previous.granted_at if previous else 0
        if state is AccessState.GRANTED and (previous is None or previous.state is not AccessState.GRANTED):
            granted_at = now
        record = AccessRecord(member.id, community.id, state, reason, roles, now, 0, granted_at)
        self.stores.access.save(record)
        return DispatchResult(state, reason, tuple(actions or ()))

    def record_failure(self, work: AccessWork, error: Exception, now: int, *, final: bool) -> None:
        """Make a failure visible on the member's access record (the creator sees the reason)."""
        previous = self.stores.access.get(work.member_id, work.community_id)
        if isinstance(error, PermanentError):
            state, reason = AccessState.FAILED, f"{error.reason}: {error.message}"
        elif final:
            state, reason = AccessState.FAILED, f"gave up after {work.attempt + 1} attempts: {error}"
        else:
            state, reason = AccessState.RETRYING, f"attempt {work.attempt + 1} failed, retrying: {error}"
        base = previous or AccessRecord(work.member_id, work.community_id, state)
        self.stores.access.save(replace(base, state=state, reason=reason, updated_at=now, attempts=work.attempt + 1))

