"""Telegram use cases: the deep link that binds a member's account, /start, join requests only for their holder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..domain.errors import ConflictError, InvalidRequestError, PermanentError
from ..domain.handles import telegram_handle
from ..domain.model import Community, Identity, Platform, WorkKind
from ..domain.telegram import JoinRequest, MemberChange, ParsedUpdate, StartCommand, personal_link_name, start_link
from ..ports import AccessWork, AccessWorkQueue, Stores, WebSession
from .identity import bind_member_identity, fresh_session, new_token

log = logging.getLogger(__name__)

# The t.me link on the join page, and the bot's pay link: each used once, and only for a while.
START_TOKEN_LIFETIME_SECONDS = 30 * 60
CONTINUE_TOKEN_LIFETIME_SECONDS = 30 * 60
# Both kinds share the one-time state store with Discord's OAuth states; the owner's prefix keeps
# a token of one kind from being spent as another.
_START_OWNER = "tgstart:"
_CONTINUE_OWNER = "tgpay:"


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


def continue_from_telegram(stores: Stores, token: str, old_session_id: str | None, now: int) -> tuple[WebSession, str]:
    """Spend the bot's pay link: a fresh browser session for its member, and the plan to pay for."""
    taken = stores.sessions.take_oauth_state(token, now)
    owner, plan_id = taken if taken else ("", None)
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
                 new_member_id: Callable[[], str], token: Callable[[], str] = new_token):
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
        if not owner.startswith(_START_OWNER) or not plan_id:
            known = self.stores.members.find_by_identity(Platform.TELEGRAM, user)
            if known is not None:
                self._resync(known.id)
                self.bot.send_message(command.chat_id, "Your Telegram account is linked to your membership; "
                                      "Membergate is checking your access now. To pay or manage it, open the "
                                      "join page again.")
                return UpdateOutcome("resynced", known.id)
            self.bot.send_message(command.chat_id, "This link has expired or was already used. Open the join page "
                                  "again and tap 'Continue with Telegram' to get a new one.")
            return UpdateOutcome("expired")
        try:
            member = bind_member_identity(
                self.stores, Identity(Platform.TELEGRAM, user, telegram_handle(command.username, command.first_name)), None,
                session_member_id=owner.removeprefix(_START_OWNER) or None,
                new_member_id=self.new_member_id, now=now,
            )
        except ConflictError as exc:
            self.bot.send_message(command.chat_id, exc.message)
            return UpdateOutcome("conflict")
        self._resync(member.id)
        pay = self.token()
        self.stores.sessions.put_oauth_state(pay, _CONTINUE_OWNER + member.id, plan_id,
                                             now + CONTINUE_TOKEN_LIFETIME_SECONDS)
        self.bot.send_message(
            command.chat_id,
            "Your Telegram account is linked. Tap the button to pay; right after, this bot sends you your "
            "personal invite to the group. The button works once, for 30 minutes.",
            button_text="Continue to payment",
            button_url=f"{self.base}/telegram/continue/{pay}",
        )
        return UpdateOutcome("bound", member.id)

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


