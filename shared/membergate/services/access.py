"""dispatch_access: bring one member in one community to what their entitlements say right now.

The work item carries no decision, only (member, community): the desired state is recomputed
here, the pure planner (domain/access.py) says what to do, and the connector of the community's
platform does it. A repeated or reordered item can never undo a newer decision. Member-facing
messages are keyed by (member, kind, period): claimed once, sent until sent or refused for good,
with an idempotency key so a retry after a lost answer cannot post twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..domain.access import (
    ACCESS_ENDED,
    ACCESS_RESTORED,
    INVITE,
    Capability,
    NOT_READ,
    Action,
    ActionKind,
    Presence,
    PresenceState,
    needs_check,
    plan_changes,
)
from ..domain.alerts import AlertKind
from ..domain.billing import removal_subject
from ..domain.controls import Removal, removal_id
from ..domain.errors import PermanentError, RetryableError
from ..domain.holds import CommunityHold, held_reason, is_community_scoped, may_probe
from ..domain.links import Links
from ..domain.i18n import CATALOGUES, text
from ..domain.lifecycle import WELCOME
from ..domain.messages import fill_welcome, format_date, render, template_key
from ..domain.returns import ACCESS_BACK, return_cause
from ..domain.model import (
    AccessRecord,
    AccessState,
    Community,
    Entitlement,
    EntitlementState,
    Member,
    MessageKey,
    MessageStatus,
    Plan,
    Platform,
    WorkKind,
)
from ..ports import AccessWork, CatalogRepository, CommunityConnector, IdentityProvider, Mailer, Stores, TokenCipher, notify_work
from .alerts import AlertRecorder, record_alert
from .identity import open_tokens, seal_tokens
from .membership import current_view
from .migration_deadline import catch_up

TOKEN_REFRESH_MARGIN = 120
# Discord's enforce_nonce deduplicates "in the past few minutes" (docs: Create Message): a retry
# sooner than this after the first attempt relies on it; a later one looks in the DMs first.
NONCE_TRUSTED_SECONDS = 120
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogSnapshot:
    """Plans and communities, read once per dispatch batch (not once per member)."""

    plans: dict[str, Plan]
    communities: dict[str, Community]

    @classmethod
    def load(cls, catalog: CatalogRepository) -> CatalogSnapshot:
        return cls({p.id: p for p in catalog.list_plans()}, {c.id: c for c in catalog.list_communities()})

    def managed_roles(self, community: Community) -> frozenset[str]:
        """Every role a plan grants in this community: the only roles Membergate ever removes."""
        roles: set[str | None] = {community.role_id}
        for plan in self.plans.values():
            for grant in plan.grants:
                if grant.community_id == community.id:
                    roles.add(grant.role_id or community.role_id)
        return frozenset(r for r in roles if r)


@dataclass(frozen=True)
class DispatchResult:
    state: AccessState | None  # None for a message: it changes nobody's access
    reason: str = ""
    actions: tuple[str, ...] = ()
    # Messages whose delivery failed transiently: the worker queues them with backoff.
    follow_up: tuple[AccessWork, ...] = ()
    # Messages held back (only when the caller asked): sent once the batch's access work is done,
    # so no member's role waits behind another member's welcome.
    messages: tuple[AccessWork, ...] = ()


class Interrupted(RetryableError):
    """A transient failure in the middle of a convergence, with what was known by then.

    The retry carries ``observed`` (the platform's state after the actions that succeeded),
    so it neither reads the member again nor repeats what was done."""

    def __init__(self, cause: RetryableError, observed: Presence | None):
        super().__init__(cause.message, retry_after=cause.retry_after)
        self.cause = cause
        self.observed = observed


def capabilities_in(connector: CommunityConnector, community: Community) -> frozenset[Capability]:
    """What the connector can do in this place: a WhatsApp group's mode decides (manual, official, gateway)."""
    per_place = getattr(connector, "capabilities_for", None)
    return frozenset(per_place(community)) if per_place is not None else connector.capabilities


def after(presence: Presence, action: Action) -> Presence:
    """What the platform shows once ``action`` succeeded (to carry into a retry)."""
    if action.kind is ActionKind.ADD_MEMBER:
        return Presence(PresenceState.PRESENT, presence.roles | frozenset(action.roles))
    if action.kind is ActionKind.GRANT_ROLE and action.role_id:
        return replace(presence, roles=presence.roles | {action.role_id})
    if action.kind is ActionKind.REMOVE_ROLE and action.role_id:
        return replace(presence, roles=presence.roles - {action.role_id})
    if action.kind is ActionKind.REMOVE_MEMBER:
        return Presence(PresenceState.ABSENT)
    if action.kind is ActionKind.APPROVE_JOIN:
        return Presence(PresenceState.PRESENT, presence.roles)
    if action.kind is ActionKind.DECLINE_JOIN:
        return Presence(PresenceState.ABSENT)
    return presence


# Actions that take access away on the platform: each convergence doing one is a removal made.
REMOVALS = frozenset({ActionKind.REMOVE_ROLE, ActionKind.REMOVE_MEMBER})


def _ended_subject(here: list[Entitlement]) -> Entitlement | None:
    """The ended entitlement a removal is about (its plan and reason), the same for receipt and record:
    the latest source to end, so a revoked grant is not told as the subscription that ended before it."""
    return removal_subject(here)


class AccessDispatcher:
    def __init__(
        self,
        stores: Stores,
        connectors: Mapping[Platform, CommunityConnector],
        identity: IdentityProvider,
        cipher: TokenCipher,
        links: Links,
        mailer: Mailer | None = None,
        email_always: bool = False,
        alerts: AlertRecorder | None = None,
    ):
        self.stores = stores
        self.alerts = alerts  # creator alerts: removals and what could not be done
        # Email (SES) carries a message the platform refused (DMs closed, bot blocked), or every
        # message too when the creator turned email on; only members whose email is known.
        self.mailer = mailer
        self.email_always = email_always
        self.connectors = dict(connectors)
        self.identity = identity
        self.cipher = cipher
        self.links = links

    def load_catalog(self) -> CatalogSnapshot:
        return CatalogSnapshot.load(self.stores.catalog)

    def dispatch(
        self, work: AccessWork, now: int, catalog: CatalogSnapshot | None = None, *, defer_messages: bool = False
    ) -> DispatchResult:
        """Converge or notify; with ``defer_messages`` the welcome is returned in ``messages``, not sent."""
        catalog = catalog or self.load_catalog()
        member = self.stores.members.get(work.member_id)
        community = catalog.communities.get(work.community_id) or self.stores.catalog.get_community(work.community_id)
        if member is None or community is None:
            return DispatchResult(AccessState.FAILED, "unknown member or community")
        if work.kind is WorkKind.NOTIFY:
            return self._notify(work, member, community, catalog, now)
        return self._converge(work, member, community, catalog, now, defer_messages)

    # -- converge --------------------------------------------------------------------------

    def _converge(
        self, work: AccessWork, member: Member, community: Community, catalog: CatalogSnapshot, now: int,
        defer_messages: bool = False,
    ) -> DispatchResult:
        previous = self.stores.access.get(member.id, community.id)
        connector = self.connectors.get(community.platform)
        if connector is None:
            reason = (
                f"no_connector: Membergate has no {community.platform.value} connector configured; "
                "set the platform's credentials and deploy again, then resync"
            )
            return self._save(member, community, AccessState.FAILED, reason, (), "no_connector", now, previous)
        view = current_view(self.stores, member.id, now, plans=catalog.plans, communities=catalog.communities)
        here = [e for e in view.entitlements if e.community_id == community.id]
        if not any(e.state.gives_access for e in here):
            # Last guard before a removal: a migration extension still being applied (migration_deadline.py).
            caught = catch_up(self.stores, view.grants, now)
            if caught is not None:
                view = current_view(self.stores, member.id, now, grants=caught, plans=catalog.plans,
                                    communities=catalog.communities)
                here = [e for e in view.entitlements if e.community_id == community.id]
        user = member.identity(community.platform)
        force = work.kind is WorkKind.RESYNC
        caps = capabilities_in(connector, community)
        hold, probing = self._hold(work, community, now)
        if hold is not None:
            if not here and (previous is None or previous.state in (AccessState.NONE, AccessState.REVOKED)):
                # Nothing to give or take here: the hold changes nothing for this member.
                return DispatchResult(previous.state if previous else AccessState.NONE)
            # The community is held (the bot cannot act there): nothing is sent, the member waits for the fix.
            assert self.stores.holds is not None
            self.stores.holds.note_member(hold, member.id)
            roles = previous.roles if previous else ()
            # One alert was raised when the community was held, not one per member behind it.
            return self._save(member, community, AccessState.FAILED, held_reason(hold), roles, hold.refusal, now, previous,
                              alert=False)
        if user and work.observed is not None:
            actual = work.observed
        elif user and needs_check(here, previous, caps, force=force):
            actual = connector.check_member(community, user)
        else:
            actual = NOT_READ
        plan = plan_changes(
            here, actual, previous, community, caps, now,
            identity_bound=bool(user), managed_roles=catalog.managed_roles(community), force=force,
        )
        done: list[str] = []
        follow_up: list[AccessWork] = []
        reason = plan.reason
        known = actual
        for action in plan.actions:
            try:
                if action.kind is ActionKind.NOTIFY:
                    retry, undelivered = self._send_receipt(action, member, community, here, catalog, now)
                    follow_up += retry
                    if undelivered:
                        # Visible beside the access state, not only in the message list.
                        reason = f"the member was not told ({action.message_kind}): {undelivered}"
                else:
                    self._run(connector, action, member, community, user or "", now)
            except RetryableError as error:
                raise Interrupted(error, known if known.state is not PresenceState.UNKNOWN else None) from error
            known = after(known, action)
            done.append(str(action))
        if plan.state is AccessState.REVOKED and any(a.kind in REMOVALS for a in plan.actions):
            self._record_removal(member, community, here, previous, now)
        result = self._save(member, community, plan.state, reason, plan.roles, plan.refusal, now, previous, done)
        if probing:
            follow_up += self._release(community, member, now)
        deferred: tuple[AccessWork, ...] = ()
        if plan.state is AccessState.GRANTED and (previous is None or not previous.granted_at):
            # First access here ever (not a renewal, not a restore, not a relink: those had a
            # granted_at): the welcome, after access is in place.
            if defer_messages:
                welcome = self._welcome_work(member, community, here)
                deferred = (welcome,) if welcome is not None else ()
            else:
                follow_up += self._welcome(member, community, here, catalog, now)
        elif plan.state is AccessState.GRANTED and previous is not None and previous.state is not AccessState.GRANTED:
            # Back after a removal: told once, as its own work item after the access is in place.
            back = self._back_work(member, community, here, previous)
            if back is not None:
                if defer_messages:
                    deferred = (back,)
                else:
                    follow_up.append(back)
        return replace(result, follow_up=tuple(follow_up), messages=deferred)

    def _back_work(
        self, member: Member, community: Community, here: list[Entitlement], previous: AccessRecord
    ) -> AccessWork | None:
        """The "access is back" message for the access episode that ended, if the member was told it
        ended (its receipt sent) and the creator did not undo that removal (the undo says so itself)."""
        episode = previous.granted_at
        if not episode:
            return None
        if self.stores.messages.status(MessageKey(member.id, ACCESS_ENDED, f"{community.id}:{episode}")) \
                is not MessageStatus.SENT:
            return None
        rid = removal_id(member.id, community.id, episode)
        removal = self.stores.removals.get(rid) if self.stores.removals is not None else None
        if (removal is not None and removal.undone_at) or self.stores.messages.status(
                MessageKey(member.id, ACCESS_RESTORED, rid)) is not None:
            return None
        granting = sorted(e.plan_id for e in here if e.state.gives_access)
        removed_plan = removal.plan_id if removal is not None else None
        cause = return_cause(removal.reason if removal is not None else "", removed_plan, granting)
        plan_id = removed_plan if removed_plan in granting else (granting[0] if granting else "")
        return notify_work(member.id, community.id, ACCESS_BACK, rid, (("plan_id", plan_id or ""), ("cause", cause)))

    def _hold(self, work: AccessWork, community: Community, now: int) -> tuple[CommunityHold | None, bool]:
        """The hold that skips this work, and whether this work probes (a resync may try again once a minute)."""
        holds = self.stores.holds
        hold = holds.get(community.id) if holds is not None else None
        if hold is None or holds is None:
            return None, False
        if work.kind is WorkKind.RESYNC and may_probe(hold, now) and holds.claim_probe(community.id, now):
            log.info("probing a held community", extra={"community_id": community.id, "refusal": hold.refusal})
            return None, True
        return hold, False

    def _release(self, community: Community, member: Member, now: int) -> list[AccessWork]:
        """A probe went through: the community is no longer held; resync every member held behind it."""
        assert self.stores.holds is not None
        held = self.stores.holds.release(community.id)
        log.info("community hold released", extra={"community_id": community.id, "held_members": len(held)})
        return [AccessWork(WorkKind.RESYNC, m, community.id) for m in held if m != member.id]

    def _run(
        self, connector: CommunityConnector, action: Action, member: Member, community: Community, user: str, now: int
    ) -> None:
        kind = action.kind
        if kind is ActionKind.ADD_MEMBER:
            connector.add_member(community, user, list(action.roles), self._credential(member, community.platform, now))
        elif kind is ActionKind.GRANT_ROLE:
            connector.grant_role(community, user, action.role_id or "")
        elif kind is ActionKind.REMOVE_ROLE:
            connector.revoke_role(community, user, action.role_id or "")
        elif kind is ActionKind.REMOVE_MEMBER:
            connector.remove_member(community, user)
        elif kind is ActionKind.APPROVE_JOIN:
            connector.approve_join(community, user)
        elif kind is ActionKind.DECLINE_JOIN:
            connector.decline_join(community, user)
        elif kind is ActionKind.SEND_INVITE:
            key = MessageKey(member.id, action.message_kind, action.message_period)
            status = self.stores.messages.status(key)
            if status is MessageStatus.SENT:
                return  # sent before a later step failed: one invite per episode
            link = connector.create_invite(community, user, now)
            text = render(INVITE, community.locale, community=community.name, invite_url=link)
            status, why = self._deliver(key, member, community, text, now)
            if status is MessageStatus.FAILED:
                # E.g. a Telegram bot may only write to people who started it: the member must
                # open the bot again (binding again resyncs), or the creator send the link.
                raise PermanentError(
                    f"the personal invite could not be sent to the member ({why}): ask them to open the bot "
                    "again from the join page, then resync",
                    why or "invite_not_delivered",
                )

    def _record_removal(
        self, member: Member, community: Community, here: list[Entitlement], previous: AccessRecord | None, now: int
    ) -> None:
        """Keep the removal just made, once per access episode (a retried removal is one record)."""
        if self.stores.removals is None:
            return
        subject = _ended_subject(here)
        removal = Removal(
            removal_id(member.id, community.id, previous.granted_at if previous else 0),
            member.id, community.id, community.platform.value, now,
            (subject.reason if subject and subject.reason else "ended"), subject.plan_id if subject else None,
        )
        if self.stores.removals.record(removal):
            log.info("removal recorded", extra={"removal_id": removal.id, "member_id": member.id,
                                                "community_id": community.id, "reason": removal.reason})

    def _credential(self, member: Member, platform: Platform, now: int) -> str | None:
        """The member's own token where the platform needs it (Discord's guilds.join), refreshed."""
        if platform is not Platform.DISCORD:
            return None
        sealed = self.stores.members.load_credentials(member.id, platform)
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
        self.stores.members.save_credentials(member.id, platform, seal_tokens(self.cipher, fresh))
        return fresh.access_token

    def _send_receipt(
        self, action: Action, member: Member, community: Community, here: list[Entitlement], catalog: CatalogSnapshot,
        now: int,
    ) -> tuple[list[AccessWork], str]:
        """Send the receipt; return the work to retry it later and, if refused for good, why."""
        subject = _ended_subject(here)
        details = (("plan_id", subject.plan_id), ("reason", subject.reason)) if subject else ()
        work = notify_work(member.id, community.id, action.message_kind, action.message_period, details)
        key = MessageKey(member.id, action.message_kind, action.message_period)
        try:
            status, why = self._deliver(key, member, community, self._text(work, community, catalog), now)
        except RetryableError:
            # The removal goes on; the receipt is retried on its own with backoff (state: retrying).
            return [work], ""
        return [], why if status is MessageStatus.FAILED else ""

    def _welcome_work(self, member: Member, community: Community, here: list[Entitlement]) -> AccessWork | None:
        """The welcome to send, once per (member, community) ever; None when it was handled before."""
        key = MessageKey(member.id, WELCOME, community.id)
        if self.stores.messages.status(key) is not None:
            return None
        granting = sorted(e.plan_id for e in here if e.state in (EntitlementState.ACTIVE, EntitlementState.GRACE))
        return notify_work(member.id, community.id, WELCOME, community.id, (("plan_id", granting[0]),) if granting else ())

    def _welcome(
        self, member: Member, community: Community, here: list[Entitlement], catalog: CatalogSnapshot, now: int
    ) -> list[AccessWork]:
        """Send the welcome now; return the work to retry it later."""
        work = self._welcome_work(member, community, here)
        if work is None:
            return []
        key = MessageKey(member.id, WELCOME, community.id)
        try:
            self._deliver(key, member, community, self._text(work, community, catalog, member), now)
        except RetryableError:
            return [work]  # access stays granted; the welcome is retried on its own with backoff
        return []

    # -- notify ----------------------------------------------------------------------------

    def _notify(
        self, work: AccessWork, member: Member, community: Community, catalog: CatalogSnapshot, now: int
    ) -> DispatchResult:
        key = MessageKey(member.id, work.message_kind or "", work.message_period or "")
        status, _ = self._deliver(key, member, community, self._text(work, community, catalog, member), now)
        reason = "" if status is MessageStatus.SENT else f"message {status.value}"
        return DispatchResult(None, reason, ("message:" + key.kind,) if status is MessageStatus.SENT else ())

    def _text(self, work: AccessWork, community: Community, catalog: CatalogSnapshot, member: Member | None = None) -> str:
        details = dict(work.details)
        plan_id = details.get("plan_id")
        plan = (catalog.plans.get(plan_id) or self.stores.catalog.get_plan(plan_id)) if plan_id else None
        kind = work.message_kind or ""
        if kind == WELCOME:
            return self._welcome_text(plan, community, member)
        if kind == ACCESS_ENDED:
            kind = template_key(ACCESS_ENDED, details.get("reason", ""), plan.on_grace_end.value if plan else "")
        grace_end = details.get("grace_ends_at")
        ends_at = details.get("ends_at")
        said = render(
            kind,
            community.locale,
            community=community.name,
            # "offer": a migration's founder price with its amount, worded when it was announced.
            plan=details.get("offer") or (plan.name if plan else community.name),
            reason=details.get("reason", ""),
            grace_end=format_date(int(grace_end), community.locale) if grace_end else "",
            date=format_date(int(ends_at), community.locale) if ends_at else "",
            invoice_url=details.get("invoice_url", ""),
            join_url=self.links.join(plan.id if plan else None),
            manage_url=(self.links.portal(details["portal_token"]) if details.get("portal_token")
                        else self.links.manage(plan.id if plan else None)),
            # A migration's announcement: the member's personal link and the creator's own words.
            offer_url=(self.links.offer(details["offer_token"]) if details.get("offer_token")
                       else self.links.join(plan.id if plan else None)),
            note=("\n\n" + details["note"]) if details.get("note") else "",
            until=_until(details, community.locale),
            change=_change(details, community.locale, plan.name if plan else community.name),
        )
        if details.get("survey_token"):
            said += "\n" + render("survey_question", community.locale, survey_url=self.links.survey(details["survey_token"]))
        return said

    def _welcome_text(self, plan: Plan | None, community: Community, member: Member | None) -> str:
        """The creator's welcome for the plan, else the default one in the community's language."""
        locale = community.locale
        manage_url = self.links.manage(plan.id if plan else None)
        name = _display_name(member, community.platform) if member else ""
        if plan is not None and plan.welcome_message:
            values = {"name": name or text(locale, "msg.welcome_someone"), "community": community.name,
                      "manage_url": manage_url}
            return fill_welcome(plan.welcome_message, values)
        included = (render("welcome_included", locale, plan=plan.name, description=plan.description)
                    if plan is not None and plan.description else "")
        return render("welcome", locale, community=community.name, name_part=f", {name}" if name else "",
                      included=included, manage_url=manage_url)

    def _deliver(
        self, key: MessageKey, member: Member, community: Community, text: str, now: int
    ) -> tuple[MessageStatus, str]:
        """Send once: a message already sent or refused for good is not sent again; a queued or
        retrying one is. Raise RetryableError on a transient failure, after recording it on the message.

        A retry after a lost answer (timeout, 5xx) must not post twice. The idempotency key becomes
        Discord's nonce, but Discord deduplicates a nonce only "in the past few minutes", while
        retries back off to 15 min. Capping the retries' delays would not do: the window counts
        from the attempt that posted, so attempts stretched over an outage still leave it. So a
        retrying message whose first attempt is older than NONCE_TRUSTED_SECONDS is first looked
        for in the member's DM channel (the connector's ``find_sent``, one GET); found, it is marked
        sent without posting. Within that time the nonce alone is trusted (no extra request)."""
        status = self.stores.messages.status(key)
        if status is not None and status.final:
            return status, ""
        if status is None and not self.stores.messages.claim(key, now):
            # Another convergence of this member (a second dispatcher thread) claimed it a moment
            # ago and is sending it: one sender per message. An email has no idempotency key, so
            # two senders meant two emails; a crashed sender's retry finds it queued and sends.
            return MessageStatus.QUEUED, ""
        reach = self._reach(member, community)
        refused = ""
        if reach is None:
            refused = "no_identity" if not member.identities else "no_connector"
        else:
            connector, user = reach
            try:
                if status is MessageStatus.RETRYING and self._posted_before(connector, user, text, key, now):
                    self.stores.messages.finish(key, MessageStatus.SENT, "found in the DMs after a lost answer", now)
                    return MessageStatus.SENT, ""
                connector.send_message(user, text, idempotency_key=f"{key.member_id}:{key}")
            except PermanentError as exc:
                refused = exc.reason  # DMs closed or no shared place: email, else visible as failed
            except RetryableError as exc:
                self.stores.messages.finish(key, MessageStatus.RETRYING, str(exc), now)
                raise
        if refused:
            emailed, why = self._email(key, member, community, text, now)
            if emailed:
                self.stores.messages.finish(key, MessageStatus.SENT, f"by email ({refused})", now)
                return MessageStatus.SENT, ""
            reason = f"{refused}; {why}" if why else refused
            self.stores.messages.finish(key, MessageStatus.FAILED, reason, now)
            record_alert(self.alerts, AlertKind.UNDELIVERABLE, f"message:{key.member_id}:{key}", now,
                         member_id=member.id, subject=f"message {key.kind}", detail=reason)
            return MessageStatus.FAILED, refused
        note = ""
        if self.email_always:
            emailed, why = self._email(key, member, community, text, now)
            note = "and by email" if emailed else why
        self.stores.messages.finish(key, MessageStatus.SENT, note, now)
        return MessageStatus.SENT, ""

    def _posted_before(self, connector: CommunityConnector, user: str, text: str, key: MessageKey, now: int) -> bool:
        """Whether an earlier attempt whose answer was lost did post, once the nonce may be forgotten."""
        find = getattr(connector, "find_sent", None)
        claimed = self.stores.messages.claimed_at(key)
        if find is None or claimed is None or now - claimed < NONCE_TRUSTED_SECONDS:
            return False
        # A minute's margin for clocks: a message created before its claim cannot be this one anyway.
        try:
            return bool(find(user, text, f"{key.member_id}:{key}", claimed - 60))
        except PermanentError as exc:
            # Reading the DMs refused: not a reason to give the message up; posting is what decides.
            log.warning("could not look for an earlier attempt", extra={"member_id": key.member_id, "reason": exc.reason})
            return False

    def _email(self, key: MessageKey, member: Member, community: Community, text: str, now: int) -> tuple[bool, str]:
        """Send the message by email; (sent, why not). A transient SES failure is raised (retried)."""
        if self.mailer is None or self.stores.contacts is None:
            return False, ""
        address = self.stores.contacts.email(member.id)
        if not address:
            return False, "no email known"
        subject = render("email_subject", community.locale, community=community.name)
        try:
            self.mailer.send(address, subject, text)
        except PermanentError as exc:
            return False, exc.reason
        except RetryableError as exc:
            self.stores.messages.finish(key, MessageStatus.RETRYING, str(exc), now)
            raise
        return True, ""

    def _reach(self, member: Member, community: Community) -> tuple[CommunityConnector, str] | None:
        """Where to write to the member: on the community's platform, else on any platform they
        bound whose connector can message (a plan may grant places on several platforms)."""
        platforms = [community.platform] + [i.platform for i in member.identities if i.platform is not community.platform]
        for platform in platforms:
            user = member.identity(platform)
            connector = self.connectors.get(platform)
            if user and connector is not None and Capability.MESSAGE in connector.capabilities:
                return connector, user
        return None

    # -- records ---------------------------------------------------------------------------

    def _save(
        self,
        member: Member,
        community: Community,
        state: AccessState,
        reason: str,
        roles: tuple[str, ...],
        refusal: str,
        now: int,
        previous: AccessRecord | None,
        actions: list[str] | None = None,
        *,
        alert: bool = True,
    ) -> DispatchResult:
        granted_at = previous.granted_at if previous else 0
        if state is AccessState.GRANTED and (previous is None or previous.state is not AccessState.GRANTED):
            granted_at = now
        record = AccessRecord(member.id, community.id, state, reason, roles, now, 0, granted_at, refusal)
        # A no-op convergence (a renewal, a repeated item) costs no write.
        if previous is None or record != replace(previous, updated_at=now):
            self.stores.access.save(record)
            if alert:
                self._alert_change(previous, record, now)
        return DispatchResult(state, reason, tuple(actions or ()))

    def _alert_change(self, previous: AccessRecord | None, record: AccessRecord, now: int) -> None:
        """A removal done, or access that cannot be done without the creator: once per change."""
        before = previous.state if previous else None
        at = f"{record.member_id}:{record.community_id}:{now}"
        if record.state is AccessState.REVOKED and before in (AccessState.GRANTED, AccessState.INVITED):
            record_alert(self.alerts, AlertKind.REMOVAL, f"removal:{at}", now, member_id=record.member_id,
                         subject=record.community_id, detail=record.reason)
        elif record.state is AccessState.FAILED and before is not AccessState.FAILED:
            record_alert(self.alerts, AlertKind.UNDELIVERABLE, f"access:{at}", now, member_id=record.member_id,
                         subject=record.community_id, detail=record.refusal or record.reason)

    def record_failure(self, work: AccessWork, error: Exception, now: int, *, final: bool) -> None:
        """Make a failure visible: on the message for a message, else on the access record."""
        if work.kind is WorkKind.NOTIFY:
            if final:
                key = MessageKey(work.member_id, work.message_kind or "", work.message_period or "")
                reason = f"gave up after {work.attempt + 1} attempts: {error}"
                self.stores.messages.finish(key, MessageStatus.FAILED, reason, now)
                record_alert(self.alerts, AlertKind.UNDELIVERABLE, f"message:{key.member_id}:{key}", now,
                             member_id=work.member_id, subject=f"message {key.kind}", detail=reason)
            return
        previous = self.stores.access.get(work.member_id, work.community_id)
        refusal = ""
        if isinstance(error, PermanentError) and is_community_scoped(error.reason) and self.stores.holds is not None:
            # About the place, not the member: remembered once on the community, so the other members'
            # work is skipped without a request until the creator's fix is checked (domain/holds.py).
            hold = self.stores.holds.hold(CommunityHold(work.community_id, error.reason, error.message, now))
            self.stores.holds.note_member(hold, work.member_id)
            state, reason, refusal = AccessState.FAILED, held_reason(hold), error.reason
            log.warning("community held after a refusal", extra={"community_id": work.community_id,
                                                                  "refusal": error.reason})
        elif isinstance(error, PermanentError):
            # Remembered: nothing more is sent for this member here until the creator resyncs.
            state, reason, refusal = AccessState.FAILED, f"{error.reason}: {error.message}", error.reason
        elif final:
            state, reason = AccessState.FAILED, f"gave up after {work.attempt + 1} attempts: {error}"
        else:
            state, reason = AccessState.RETRYING, f"attempt {work.attempt + 1} failed, retrying: {error}"
        base = previous or AccessRecord(work.member_id, work.community_id, state)
        saved = replace(base, state=state, reason=reason, updated_at=now, attempts=work.attempt + 1, refusal=refusal)
        self.stores.access.save(saved)
        self._alert_change(previous, saved, now)


def _display_name(member: Member, platform: Platform) -> str:
    """How to greet the member: their account's name ("Alice" of "Alice (@alice)"), else ""."""
    handle = member.handle(platform) or next((i.handle for i in member.identities if i.handle), None)
    if not handle:
        return ""
    name = handle.split(" (@", 1)[0].strip()
    return name[:80]


def _until(details: dict[str, str], locale: str) -> str:
    """Until when restored access lasts, in words: " until <date>", " with no end date" (an "until"
    detail of ""), or nothing for work queued without one."""
    if "until" not in details:
        return ""
    if not details["until"].isdigit():
        return " " + text(locale, "msg.until_no_end")
    return " " + text(locale, "msg.until_date").format(date=format_date(int(details["until"]), locale))


def _change(details: dict[str, str], locale: str, plan: str) -> str:
    """What brought access back (domain/returns.py), in words; "" for other messages."""
    cause = details.get("cause")
    if not cause:
        return ""
    key = f"msg.back.{cause}"
    return text(locale, key if key in CATALOGUES["en"] else "msg.back.again").format(plan=plan)
