"""Telegram use cases: the deep link that binds a member's account, /start, join requests only for their holder."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..domain.errors import ConflictError, InvalidRequestError, PermanentError
from ..domain.handles import telegram_handle
from ..domain.i18n import choose_locale, text
from ..domain.model import Community, Identity, Platform, WorkKind
from ..domain.telegram import JoinRequest, MemberChange, ParsedUpdate, StartCommand, personal_link_name, start_link
from ..domain.funnel import BOUND
from ..ports import AccessWork, AccessWorkQueue, CommunityConnector, Stores, WebSession
from .funnel import count_step
from .identity import bind_member_identity, fresh_session, new_token
from .relink import TELEGRAM_RELINK_OWNER, relink_member, relinking_member

log = logging.getLogger(__name__)

# The t.me link on the join page, and the bot's pay link: each used once, and only for a while.
START_TOKEN_LIFETIME_SECONDS = 30 * 60
CONTINUE_TOKEN_LIFETIME_SECONDS = 30 * 60
# Both kinds share the one-time state store with Discord's OAuth states; the owner's prefix keeps
# a token of one kind from being spent as another.
_START_OWNER = "tgstart:"
_CONTINUE_OWNER = "tgpay:"
_MANAGE_OWNER = "tgmanage:"  # the button after a relink: back to the membership page, signed in afresh


class TelegramBot(Protocol):
    """The Bot API calls these use cases make (adapters/telegram.py::TelegramBotApi)."""

    def bot_username(self) -> str: ...
    def send_message(self, chat_id: int | str, text: str, *, button_text: str | None = None,
                     button_url: str | None = None) -> int: ...
    def approve_join_request(self, chat_id: int | str, user_id: int | str) -> None: ...
    def decline_join_request(self, chat_id: int | str, user_id: int | str) -> None: ...


def begin_telegram_link(
    stores: Stores, bot: TelegramBot, *, session_member_id: str | None, plan_id: str, now: int,
    token: Callable[[], str] = new_token,
) -> str:
    """The https://t.me/<bot>?start=<token> link: /start <token> binds the sender to this browser's member."""
    value = token()
    owner = _START_OWNER + (session_member_id or "")
    stores.sessions.put_oauth_state(value, owner, plan_id, now + START_TOKEN_LIFETIME_SECONDS)
    return start_link(bot.bot_username(), value)


def begin_telegram_relink(
    stores: Stores, bot: TelegramBot, *, session: WebSession | None, proof: str | None, plan_id: str, now: int,
    token: Callable[[], str] = new_token,
) -> str:
    """The manage page's "use another Telegram account": a t.me link whose /start moves this member's
    membership to whichever Telegram account sends it (the form proof ties it to this session)."""
    member = relinking_member(stores, session, proof, Platform.TELEGRAM)
    value = token()
    stores.sessions.put_oauth_state(value, TELEGRAM_RELINK_OWNER + member.id, plan_id, now + START_TOKEN_LIFETIME_SECONDS)
    return start_link(bot.bot_username(), value)


def continue_from_telegram(stores: Stores, token: str, old_session_id: str | None, now: int) -> tuple[WebSession, str]:
    """Spend the bot's pay link: a fresh browser session for its member, and the page to open
    (the plan's join page, or its manage page after a relink)."""
    taken = stores.sessions.take_oauth_state(token, now)
    owner, plan_id = taken if taken else ("", None)
    if owner.startswith(_MANAGE_OWNER) and plan_id:
        owner, plan_id = _CONTINUE_OWNER + owner.removeprefix(_MANAGE_OWNER), f"{plan_id}?manage=1"
    member_id = owner.removeprefix(_CONTINUE_OWNER) if owner.startswith(_CONTINUE_OWNER) else ""
    member = stores.members.get(member_id) if member_id else None
    if member is None or not plan_id:
        raise InvalidRequestError(
            "this link has expired or was already used; send /start to the bot again (or open the join page) "
            "for a new one",
            field="token",
        )
    return fresh_session(stores, member.id, old_session_id, now), plan_id


@dataclass(frozen=True)
class UpdateOutcome:
    kind: str
    detail: str = ""


class TelegramUpdates:
    """Acts on one webhook update; idempotent (Telegram resends an update until it gets a 2xx)."""

    def __init__(self, stores: Stores, bot: TelegramBot, queue: AccessWorkQueue, public_base_url: str,
                 new_member_id: Callable[[], str], token: Callable[[], str] = new_token,
                 connectors: Mapping[Platform, CommunityConnector] | None = None):
        self.connectors = connectors or {}  # for a relink: the old account is taken out of the chat
        self.stores = stores
        self.bot = bot
        self.queue = queue
        self.base = public_base_url.rstrip("/")
        self.new_member_id = new_member_id
        self.token = token

    def handle(self, update: ParsedUpdate, now: int) -> UpdateOutcome:
        try:
            if isinstance(update, StartCommand):
                return self._start(update, now)
            if isinstance(update, JoinRequest):
                return self._join_request(update, now)
            if isinstance(update, MemberChange):
                return self._member_change(update)
        except PermanentError as exc:
            # E.g. the user blocked the bot meanwhile: resending the update would not help.
            log.warning("Telegram update %s not acted on: %s", update.update_id, exc.reason)
            return UpdateOutcome("refused", exc.reason)
        return UpdateOutcome("ignored")

    # -- /start <token> -------------------------------------------------------------------------

    def _start(self, command: StartCommand, now: int) -> UpdateOutcome:
        user = str(command.user_id)
        taken = self.stores.sessions.take_oauth_state(command.token, now) if command.token else None
        owner, plan_id = taken if taken else ("", None)
        locale = self._locale(command, plan_id)
        if owner.startswith(TELEGRAM_RELINK_OWNER) and plan_id:
            return self._relink(command, owner.removeprefix(TELEGRAM_RELINK_OWNER), plan_id, locale, now)
        if not owner.startswith(_START_OWNER) or not plan_id:
            known = self.stores.members.find_by_identity(Platform.TELEGRAM, user)
            if known is not None:
                self._resync(known.id)
                self.bot.send_message(command.chat_id, text(locale, "tg.linked_resync"))
                return UpdateOutcome("resynced", known.id)
            self.bot.send_message(command.chat_id, text(locale, "tg.expired"))
            return UpdateOutcome("expired")
        try:
            member = bind_member_identity(
                self.stores, self._account(command), None,
                session_member_id=owner.removeprefix(_START_OWNER) or None,
                new_member_id=self.new_member_id, now=now,
            )
        except ConflictError:
            self.bot.send_message(command.chat_id, text(locale, "tg.conflict"))
            return UpdateOutcome("conflict")
        self._resync(member.id)
        count_step(self.stores, plan_id, BOUND, now)
        pay = self.token()
        self.stores.sessions.put_oauth_state(pay, _CONTINUE_OWNER + member.id, plan_id,
                                             now + CONTINUE_TOKEN_LIFETIME_SECONDS)
        self.bot.send_message(
            command.chat_id,
            text(locale, "tg.bound"),
            button_text=text(locale, "tg.pay_button"),
            button_url=f"{self.base}/telegram/continue/{pay}",
        )
        return UpdateOutcome("bound", member.id)

    def _relink(self, command: StartCommand, member_id: str, plan_id: str, locale: str, now: int) -> UpdateOutcome:
        """/start from the manage page's relink link: this Telegram account now holds the membership."""
        try:
            moved = relink_member(self.stores, self.queue, self.connectors, member_id, self._account(command), now)
        except ConflictError:
            self.bot.send_message(command.chat_id, text(locale, "tg.relink_taken"))
            return UpdateOutcome("conflict")
        back = self.token()
        self.stores.sessions.put_oauth_state(back, _MANAGE_OWNER + member_id, plan_id,
                                             now + CONTINUE_TOKEN_LIFETIME_SECONDS)
        self.bot.send_message(
            command.chat_id,
            text(locale, "tg.relinked" if moved is not None else "tg.relink_same"),
            button_text=text(locale, "tg.manage_button"),
            button_url=f"{self.base}/telegram/continue/{back}",
        )
        return UpdateOutcome("relinked" if moved is not None else "unchanged", member_id)

    def _account(self, command: StartCommand) -> Identity:
        return Identity(Platform.TELEGRAM, str(command.user_id), telegram_handle(command.username, command.first_name))

    def _locale(self, command: StartCommand, plan_id: str | None) -> str:
        """The language the member's Telegram app is set to, else the community's."""
        plan = self.stores.catalog.get_plan(plan_id) if plan_id else None
        community = next((c for c in (self.stores.catalog.get_community(g.community_id) for g in plan.grants) if c),
                         None) if plan else None
        return choose_locale(command.language_code, community.locale if community else None)

    # -- join requests ----------------------------------------------------------------------------

    def _join_request(self, request: JoinRequest, now: int) -> UpdateOutcome:
        community = self._community(request.chat_id)
        if community is None:
            return UpdateOutcome("ignored", "not a Membergate chat")
        user = str(request.user_id)
        member = self.stores.members.find_by_identity(Platform.TELEGRAM, user)
        entitled = member is not None and any(
            e.community_id == community.id and e.state.gives_access
            for e in self.stores.entitlements.for_member(member.id)
        )
        # Only the holder of the personal link gets in: a forwarded link names someone else.
        holder = request.invite_link is not None and request.invite_link_name == personal_link_name(user)
        if member is not None and entitled and holder:
            self.bot.approve_join_request(request.chat_id, request.user_id)
            self.queue.send([AccessWork(WorkKind.CONVERGE, member.id, community.id)])
            return UpdateOutcome("approved", member.id)
        self.bot.decline_join_request(request.chat_id, request.user_id)
        return UpdateOutcome("declined", user)

    def _member_change(self, change: MemberChange) -> UpdateOutcome:
        if not change.left:
            return UpdateOutcome("ignored")
        community = self._community(change.chat_id)
        member = self.stores.members.find_by_identity(Platform.TELEGRAM, str(change.user_id)) if community else None
        if community is None or member is None:
            return UpdateOutcome("ignored")
        # Someone who left while entitled can come back: the resync sends a new personal invite.
        self.queue.send([AccessWork(WorkKind.RESYNC, member.id, community.id)])
        return UpdateOutcome("left", member.id)

    def _community(self, chat_id: int) -> Community | None:
        return next(
            (c for c in self.stores.catalog.list_communities()
             if c.platform is Platform.TELEGRAM and c.external_id == str(chat_id)),
            None,
        )

    def _resync(self, member_id: str) -> None:
        work = {AccessWork(WorkKind.RESYNC, member_id, e.community_id)
                for e in self.stores.entitlements.for_member(member_id)}
        if work:
            self.queue.send(sorted(work, key=lambda w: w.community_id))


