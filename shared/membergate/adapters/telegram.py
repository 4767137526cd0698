"""Telegram Bot API client over HttpTransport: the calls Membergate makes, Telegram's pace, typed refusals."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.access import Capability, Presence, PresenceState
from ..domain.preflight import Check, Preflight
from ..domain.errors import PermanentError, RetryableError
from ..domain.model import Community, Platform
from ..domain.telegram import (
    INVITE_LINK_NAME_LIMIT,
    invite_link_name,
    is_present_status,
    is_valid_webhook_secret,
    personal_link_name,
)
from .. import deadline
from .http import HttpTransport
from .platform_text import fingerprint, fit_text

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.telegram.org"
REQUEST_TIMEOUT = 10.0
# sendMessage text: "1-4096 characters after entities parsing".
MESSAGE_LIMIT = 4096
# The updates the bot acts on; chat_member is only sent when asked for explicitly (setWebhook).
ALLOWED_UPDATES = ("message", "chat_join_request", "chat_member", "callback_query")
# Telegram's pace (Bots FAQ, "My bot is hitting limits"): about one message a second in one chat,
# at most 20 messages a minute in one group, about 30 messages a second overall.
GLOBAL_PER_SECOND = 30
PER_CHAT_PER_SECOND = 1
PER_GROUP_PER_MINUTE = 20

_CHAT_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
_NUMERIC_ID = re.compile(r"-?[1-9][0-9]{0,15}")
# "123456:ABC-DEF…" as @BotFather issues it; checked because the token goes into the URL path.
_BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,128}")


# --- refusals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Refusal:
    """A known Telegram refusal, recognised by its error code and the start of its description."""

    codes: frozenset[int]
    prefix: str  # lower case, after "Bad Request: " / "Forbidden: "
    reason: str
    advice: str


_ADMIN_RIGHTS_ADVICE = (
    "Make the bot an administrator of the group or channel with the rights 'Invite Users via Link' "
    "and 'Ban Users' (open the chat → Edit → Administrators → Add Admin → the bot), then check the "
    "community again."
)
_BOT_TOKEN_ADVICE = (
    "Telegram rejected the bot token. Copy the token @BotFather gave (/mybots → the bot → API Token) "
    "into the secret named by TELEGRAM_BOT_TOKEN; Membergate picks it up within a few minutes."
)

# Telegram errors carry only `error_code` and a `description` text; matching a description prefix
# is the only way to tell them apart, so every such match lives in this one table.
_REFUSALS: tuple[_Refusal, ...] = (
    _Refusal(frozenset({403}), "bot was blocked by the user", "telegram_bot_blocked",
             "The member blocked the bot, so Telegram will not deliver its messages. The member must open "
             "the bot in Telegram, tap Restart (or Unblock), then open the join page again."),
    _Refusal(frozenset({403}), "bot can't initiate conversation", "telegram_not_started",
             "Telegram only lets a bot write to people who started it. The member must open the join page "
             "link (t.me/…?start=…) and tap Start; the message is sent again then."),
    _Refusal(frozenset({403}), "user is deactivated", "telegram_user_deactivated",
             "The member's Telegram account was deleted. They must start the bot from their current account "
             "through the join page."),
    _Refusal(frozenset({403}), "bot can't send messages to bots", "telegram_recipient_is_bot",
             "The account linked to this member is a bot: the member must link their own Telegram account "
             "from the join page."),
    _Refusal(frozenset({403}), "bot was kicked from the", "telegram_bot_removed",
             "The bot was removed from the chat. Add it back as an administrator ('Invite Users via Link' "
             "and 'Ban Users'), then check the community again."),
    _Refusal(frozenset({403}), "bot is not a member of the", "telegram_bot_not_member",
             "The bot is not in the chat. Add it as an administrator ('Invite Users via Link' and "
             "'Ban Users'), then check the community again."),
    _Refusal(frozenset({400, 403}), "chat not found", "telegram_chat_not_found",
             "Telegram does not know this chat, or the bot is not in it. Add the bot to the group or "
             "channel as an administrator and check the community's chat id (a supergroup's id starts "
             "with -100)."),
    _Refusal(frozenset({400}), "not enough rights", "telegram_not_enough_rights", _ADMIN_RIGHTS_ADVICE),
    _Refusal(frozenset({400}), "chat_admin_required", "telegram_not_enough_rights", _ADMIN_RIGHTS_ADVICE),
    _Refusal(frozenset({400}), "need administrator rights", "telegram_not_enough_rights", _ADMIN_RIGHTS_ADVICE),
    _Refusal(frozenset({400}), "user is an administrator of the chat", "telegram_member_is_admin",
             "This member is an administrator of the chat, and Telegram does not let a bot remove an "
             "administrator. Remove their admin rights in the chat first, or leave them in on purpose."),
    _Refusal(frozenset({400}), "can't remove chat owner", "telegram_member_is_owner",
             "This member owns the chat; Telegram does not let anyone remove the owner. Nothing to do."),
    _Refusal(frozenset({400}), "user_already_participant", "telegram_already_member",
             "The member is already in the chat."),
    _Refusal(frozenset({400}), "hide_requester_missing", "telegram_join_request_gone",
             "This join request was already approved, declined or withdrawn. The member can open their "
             "invite link again to send a new request."),
    _Refusal(frozenset({400}), "user_channels_too_much", "telegram_member_chat_limit",
             "The member is in too many Telegram groups and channels: they must leave one, then open "
             "their invite link again."),
    _Refusal(frozenset({400}), "users_too_much", "telegram_chat_full",
             "The chat has reached Telegram's member limit: make room (or convert the group to a "
             "supergroup), then resync the member."),
    _Refusal(frozenset({400}), "user not found", "telegram_user_not_found",
             "Telegram does not know this user in this chat."),
    _Refusal(frozenset({400}), "participant_id_invalid", "telegram_user_not_found",
             "Telegram does not know this user in this chat."),
    _Refusal(frozenset({400}), "invite_hash_expired", "telegram_link_gone",
             "This invite link has expired or was revoked: the member needs a new one (resync the member)."),
    _Refusal(frozenset({400}), "query is too old", "telegram_query_too_old",
             "The button press is too old to answer; the member can press the button again."),
    _Refusal(frozenset({400}), "method is available only for supergroups", "telegram_needs_supergroup",
             "This is a basic group, and Telegram only allows this for supergroups: in the group's settings "
             "turn on 'Approve new members' or make it public once (which converts it to a supergroup), "
             "then check the community again."),
)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotIdentity:
    id: int
    username: str


@dataclass(frozen=True)
class InviteLink:
    url: str
    name: str | None
    expire_date: int | None
    creates_join_request: bool


@dataclass(frozen=True)
class ChatInfo:
    id: int
    type: str  # private | group | supergroup | channel
    title: str


@dataclass(frozen=True)
class MemberStatus:
    status: str  # Telegram's ChatMember status, or "unknown" when Telegram does not know the user there
    present: bool


# --- process-wide pace --------------------------------------------------------------------------


class TelegramRateLimits:
    """Telegram's pace for one bot: overall calls per second, messages per chat per second, per group per minute.

    Shared by every client in the process (one bot per deployment; Lambda reuses the process)."""

    _MAX_CHATS = 4096

    def __init__(
        self,
        per_second: int = GLOBAL_PER_SECOND,
        per_chat_per_second: int = PER_CHAT_PER_SECOND,
        per_group_per_minute: int = PER_GROUP_PER_MINUTE,
    ):
        self._per_second = per_second
        self._per_chat = per_chat_per_second
        self._per_group = per_group_per_minute
        self._sent: deque[float] = deque()
        self._chat_sent: dict[str, deque[float]] = {}
        self._group_sent: dict[str, deque[float]] = {}
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def reserve(self, now: float, message_chat: str | None = None, is_group: bool = False) -> float:
        """Take a slot and return 0, or return how long until one frees (nothing taken then).

        ``message_chat`` is set for a message sent into that chat: the per-chat limits apply too."""
        with self._lock:
            if self._blocked_until > now:
                return self._blocked_until - now
            waits = [_window_wait(self._sent, self._per_second, 1.0, now)]
            chat = group = None
            if message_chat is not None:
                chat = self._window(self._chat_sent, message_chat, now)
                waits.append(_window_wait(chat, self._per_chat, 1.0, now))
                if is_group:
                    group = self._window(self._group_sent, message_chat, now)
                    waits.append(_window_wait(group, self._per_group, 60.0, now))
            wait = max(waits)
            if wait > 0:
                return wait
            for window in (self._sent, chat, group):
                if window is not None:
                    window.append(now)
            return 0.0

    def block(self, until: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, until)

    def _window(self, windows: dict[str, deque[float]], key: str, now: float) -> deque[float]:
        if key not in windows and len(windows) >= self._MAX_CHATS:
            # Forget chats with nothing in their last minute; they constrain nothing any more.
            for stale in [k for k, w in windows.items() if not w or w[-1] <= now - 60.0]:
                del windows[stale]
        return windows.setdefault(key, deque())


def _window_wait(window: deque[float], limit: int, span: float, now: float) -> float:
    while window and window[0] <= now - span:
        window.popleft()
    if len(window) < limit:
        return 0.0
    return window[len(window) - limit] + span - now


SHARED_TELEGRAM_LIMITS = TelegramRateLimits()


# --- the client ----------------------------------------------------------------------------------


class TelegramBotApi:
    """The Bot API calls Membergate needs: `{base}/bot{token}/{method}`, JSON POST, typed errors."""

    _MAX_WAITS = 4

    def __init__(
        self,
        transport: HttpTransport,
        bot_token: Callable[[], str],
        api_base: str = DEFAULT_API_BASE,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        max_inline_wait: float = 2.0,
        rate_limits: TelegramRateLimits | None = None,
        on_chat_migrated: Callable[[int, int], None] | None = None,
    ):
        self._transport = transport
        self._bot_token = bot_token
        self._base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self._sleep = sleep
        self._monotonic = monotonic
        self._max_wait = max_inline_wait
        self._limits = SHARED_TELEGRAM_LIMITS if rate_limits is None else rate_limits
        self._on_chat_migrated = on_chat_migrated
        self._me: BotIdentity | None = None
        # Groups upgraded to supergroups: the old id keeps working here until the creator updates it.
        self._migrated: dict[int, int] = {}
        self._rejected: str | None = None

    # -- identity --------------------------------------------------------------------------------

    def get_me(self) -> BotIdentity:
        """The bot's id and username, asked once per process (they change only with a new bot)."""
        if self._me is None:
            result = self.call("getMe", {})
            user_id = result.get("id") if isinstance(result, dict) else None
            username = result.get("username") if isinstance(result, dict) else None
            if not _is_int(user_id) or not isinstance(username, str) or not username:
                raise RetryableError("Telegram answered getMe without the bot's id or username")
            self._me = BotIdentity(user_id, username)
        return self._me

    def bot_username(self) -> str:
        return self.get_me().username

    # -- messages --------------------------------------------------------------------------------

    def send_message(
        self, chat_id: int | str, text: str, *, button_text: str | None = None, button_url: str | None = None
    ) -> int:
        """Send ``text`` (cut to Telegram's limit), with one URL button when given; return the message id."""
        content = truncate_message(text)
        if not content.strip():
            raise PermanentError(
                "Membergate tried to send an empty Telegram message: check the message templates for this "
                "community's language",
                "empty_message",
            )
        params: dict[str, Any] = {
            "chat_id": _chat_id(chat_id),
            "text": content,
            # Links carry one-time tokens: no preview fetch of them by Telegram's servers.
            "link_preview_options": {"is_disabled": True},
        }
        if button_url is not None:
            if urllib.parse.urlsplit(button_url).scheme not in ("https", "http") or not button_text:
                raise PermanentError(
                    "A Telegram button needs a label and an http(s) link: check PUBLIC_BASE_URL", "telegram_bad_button"
                )
            params["reply_markup"] = {"inline_keyboard": [[{"text": button_text, "url": button_url}]]}
        result = self.call("sendMessage", params)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return message_id if _is_int(message_id) else 0

    def answer_button(self, query_id: str, text: str | None = None) -> None:
        """Acknowledge a button press (Telegram shows a spinner on the button until this is called)."""
        params: dict[str, Any] = {"callback_query_id": str(query_id)}
        if text:
            params["text"] = text[:200]  # answerCallbackQuery text: 0-200 characters
        # A press older than Telegram's answer window cannot be answered any more; nothing is lost.
        self.call("answerCallbackQuery", params, accept={"telegram_query_too_old"})

    # -- invites and join requests -----------------------------------------------------------------

    def create_join_request_link(self, chat_id: int | str, *, name: str, expire_date: int) -> InviteLink:
        """A personal link whose use only asks to join (approved for the member, declined for others)."""
        params: dict[str, Any] = {
            "chat_id": _chat_id(chat_id),
            "expire_date": int(expire_date),
            "creates_join_request": True,
        }
        label = invite_link_name(name)[:INVITE_LINK_NAME_LIMIT]
        if label:
            params["name"] = label
        result = self.call("createChatInviteLink", params)
        url = result.get("invite_link") if isinstance(result, dict) else None
        if not isinstance(url, str) or not url.startswith("https://"):
            raise RetryableError("Telegram answered createChatInviteLink without a link")
        return InviteLink(
            url=url,
            name=result.get("name") if isinstance(result.get("name"), str) else None,
            expire_date=result.get("expire_date") if _is_int(result.get("expire_date")) else None,
            creates_join_request=result.get("creates_join_request") is True,
        )

    def revoke_invite_link(self, chat_id: int | str, invite_link: str) -> None:
        """Retire a personal link once it served (or when access ends), so it no longer even asks to join."""
        # Already revoked or expired links answer with an error we can ignore: the goal is met.
        self.call("revokeChatInviteLink", {"chat_id": _chat_id(chat_id), "invite_link": str(invite_link)},
                  accept={"telegram_link_gone"})

    def approve_join_request(self, chat_id: int | str, user_id: int | str) -> None:
        # Already in the chat is what approving is for.
        self.call("approveChatJoinRequest", {"chat_id": _chat_id(chat_id), "user_id": _user_id(user_id)},
                  accept={"telegram_already_member"})

    def decline_join_request(self, chat_id: int | str, user_id: int | str) -> None:
        # A request already handled or withdrawn has let no one in: the goal is met.
        self.call("declineChatJoinRequest", {"chat_id": _chat_id(chat_id), "user_id": _user_id(user_id)},
                  accept={"telegram_join_request_gone"})

    # -- removal and checks --------------------------------------------------------------------------

    def remove_member(self, chat_id: int | str, user_id: int | str) -> None:
        """Ban then unban: the member leaves the chat and can come back through a new link after paying."""
        ids = {"chat_id": _chat_id(chat_id), "user_id": _user_id(user_id)}
        self.call("banChatMember", {**ids, "revoke_messages": False}, accept={"telegram_user_not_found"})
        self.call("unbanChatMember", {**ids, "only_if_banned": True}, accept={"telegram_user_not_found"})

    def member_status(self, chat_id: int | str, user_id: int | str) -> MemberStatus:
        result = self.call("getChatMember", {"chat_id": _chat_id(chat_id), "user_id": _user_id(user_id)},
                           accept={"telegram_user_not_found"})
        if not isinstance(result, dict):
            return MemberStatus("unknown", False)
        status = result.get("status")
        if not isinstance(status, str):
            raise RetryableError("Telegram answered getChatMember without a status")
        return MemberStatus(status, is_present_status(result))

    def preflight(self, chat_id: int | str) -> ChatInfo:
        """Check that the bot can run this chat: it exists, and the bot is an admin who can invite and ban."""
        target = _chat_id(chat_id)
        chat = self.call("getChat", {"chat_id": target})
        if not isinstance(chat, dict) or not _is_int(chat.get("id")):
            raise RetryableError("Telegram answered getChat without the chat's id")
        kind = chat.get("type") if isinstance(chat.get("type"), str) else ""
        if kind == "private":
            raise PermanentError(
                "This chat id is a private conversation, not a group or channel: use the id of the group "
                "or channel members should join (a supergroup's id starts with -100).",
                "telegram_chat_is_private",
            )
        me = self.get_me()
        member = self.call("getChatMember", {"chat_id": target, "user_id": me.id})
        status = member.get("status") if isinstance(member, dict) else None
        if status not in ("administrator", "creator"):
            raise PermanentError(f"The bot @{me.username} is not an administrator of this chat. {_ADMIN_RIGHTS_ADVICE}",
                                 "telegram_bot_not_admin")
        missing = [label for right, label in (("can_invite_users", "Invite Users via Link"),
                                              ("can_restrict_members", "Ban Users"))
                   if status == "administrator" and member.get(right) is not True]
        if missing:
            raise PermanentError(
                f"The bot @{me.username} is an administrator but lacks {' and '.join(repr(m) for m in missing)}. "
                f"{_ADMIN_RIGHTS_ADVICE}",
                "telegram_not_enough_rights",
            )
        title = chat.get("title") if isinstance(chat.get("title"), str) else ""
        return ChatInfo(chat["id"], kind, title)

    # -- webhook ----------------------------------------------------------------------------------

    def set_webhook(self, url: str, secret_token: str, allowed_updates: Sequence[str] = ALLOWED_UPDATES) -> None:
        if urllib.parse.urlsplit(url).scheme != "https":
            raise PermanentError("Telegram only delivers updates to an https:// webhook URL: use the stack's "
                                 "TelegramWebhookUrl output", "telegram_webhook_not_https")
        if not is_valid_webhook_secret(secret_token):
            raise PermanentError("The Telegram webhook secret must be 1-256 characters of A-Z a-z 0-9 _ -: set "
                                 "TELEGRAM_WEBHOOK_SECRET to such a value", "telegram_webhook_secret_invalid")
        self.call("setWebhook", {"url": url, "secret_token": secret_token, "allowed_updates": list(allowed_updates)})

    # -- transport -------------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any], *, accept: Collection[str] = ()) -> Any:
        """Call ``method``; return its result, or None for a refusal whose reason is in ``accept``."""
        params = dict(params)
        if "chat_id" in params and params["chat_id"] in self._migrated:
            params["chat_id"] = self._migrated[params["chat_id"]]
        migrated = False
        for attempt in (1, 2, 3):
            data, status = self._send(method, params)
            if isinstance(data, dict) and data.get("ok") is True and 200 <= status < 300:
                return data.get("result")
            code = data.get("error_code") if isinstance(data, dict) and _is_int(data.get("error_code")) else status
            description = data.get("description") if isinstance(data, dict) and isinstance(data.get("description"), str) else ""
            parameters = data.get("parameters") if isinstance(data, dict) and isinstance(data.get("parameters"), dict) else {}
            if code == 429 or status == 429:
                retry_after = _seconds(parameters.get("retry_after"))
                self._limits.block(self._monotonic() + (retry_after if retry_after is not None else 1.0))
                log.warning("Telegram 429 on %s (retry after %s s)", method, retry_after)
                if attempt == 1 and retry_after is not None and retry_after <= self._max_wait and deadline.may_wait(retry_after):
                    self._sleep(retry_after)
                    continue
                raise RetryableError(f"Telegram rate limit on {method}; retried automatically", retry_after=retry_after)
            new_chat = parameters.get("migrate_to_chat_id")
            if _is_int(new_chat) and not migrated and "chat_id" in params:
                migrated = True
                self._chat_migrated(params["chat_id"], new_chat)
                params["chat_id"] = new_chat
                continue
            if status >= 500 or (isinstance(code, int) and code >= 500):
                raise RetryableError(f"Telegram answered HTTP {status} to {method}; retried automatically")
            if not isinstance(data, dict) and status not in (401, 404):
                # Not Telegram's JSON (a proxy or captive page): retried, and visible in the DLQ if it lasts.
                raise RetryableError(
                    f"the answer to {method} (HTTP {status}) was not Telegram's JSON; retried automatically. If this "
                    "lasts, check TELEGRAM_API_BASE and any proxy in between"
                )
            refusal = _refusal(code, description)
            if refusal is not None and refusal.reason in accept:
                return None
            raise self._translate(method, status, code, description, refusal)
        raise RetryableError(f"Telegram kept refusing {method}; retried automatically")  # pragma: no cover

    def _send(self, method: str, params: Mapping[str, Any]) -> tuple[Any, int]:
        token = self._token()
        self._wait_for_slot(method, params)
        body = json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode()
        # Under a caller's deadline (GET /admin/health) a request waits no longer than the time left.
        timeout = deadline.request_timeout(REQUEST_TIMEOUT, f"Telegram {method}")
        try:
            response = self._transport.request(
                "POST",
                f"{self._base}/bot{token}/{method}",
                headers={"Content-Type": "application/json"},
                body=body,
                timeout=timeout,
            )
        except RetryableError:
            # The transport's message names the URL, and the URL holds the bot token: say it without.
            raise RetryableError(f"network error calling Telegram {method}; retried automatically") from None
        if response.status == 401:
            self._rejected = fingerprint(token)
        return response.json(), response.status

    def _token(self) -> str:
        token = (self._bot_token() or "").strip()
        if not _BOT_TOKEN.fullmatch(token) or fingerprint(token) == self._rejected:
            raise PermanentError(_BOT_TOKEN_ADVICE, "telegram_bot_token_invalid")
        return token

    def _wait_for_slot(self, method: str, params: Mapping[str, Any]) -> None:
        """Wait for Telegram's pace, or refuse: never send a request we know it would refuse."""
        message_chat = is_group = None
        if method == "sendMessage":
            chat = params.get("chat_id")
            message_chat = str(chat)
            is_group = isinstance(chat, str) or (_is_int(chat) and chat < 0)
        for _ in range(self._MAX_WAITS):
            wait = self._limits.reserve(self._monotonic(), message_chat, bool(is_group))
            if wait <= 0:
                return
            if wait > self._max_wait or not deadline.may_wait(wait):
                raise RetryableError(
                    f"Telegram's pace allows {method} again in {wait:.2f} s; not sending a request it would refuse",
                    retry_after=wait,
                )
            self._sleep(wait)
        raise RetryableError(f"Telegram's pace did not free a slot for {method} in time", retry_after=self._max_wait)

    def _chat_migrated(self, old: Any, new: int) -> None:
        log.warning("Telegram group upgraded to a supergroup; using the new chat id")
        if _is_int(old):
            self._migrated[old] = new
            if self._on_chat_migrated is not None:
                self._on_chat_migrated(old, new)

    def _translate(self, method: str, status: int, code: Any, description: str, refusal: _Refusal | None) -> Exception:
        shown = description[:200]
        if refusal is not None:
            return PermanentError(f"{refusal.advice} (Telegram {code} on {method}: {shown})", refusal.reason)
        if code == 401 or status == 401:
            return PermanentError(f"{_BOT_TOKEN_ADVICE} (Telegram 401 on {method})", "telegram_bot_token_invalid")
        if code == 404 or status == 404:
            return PermanentError(
                f"Telegram answered 404 to {method}: check TELEGRAM_API_BASE (default https://api.telegram.org) "
                f"and that the bot token has the form 123456:ABC… ({shown})",
                "telegram_not_found",
            )
        return PermanentError(
            f"Telegram refused {method} ({code}: {shown}). Retrying will not help: check the community's chat "
            "and the bot's rights in it, and report it to Membergate if they look right",
            f"telegram_{code}",
        )


# --- helpers --------------------------------------------------------------------------------------


def _refusal(code: Any, description: str) -> _Refusal | None:
    text = description.strip().lower()
    for prefix in ("bad request: ", "forbidden: ", "unauthorized: "):
        text = text.removeprefix(prefix)
    for refusal in _REFUSALS:
        if code in refusal.codes and text.startswith(refusal.prefix):
            return refusal
    return None


def _chat_id(value: Any) -> int | str:
    """A chat id as Telegram takes it: an integer, or "@username" for a public channel or supergroup."""
    if _is_int(value):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC_ID.fullmatch(text):
            return int(text)
        if _CHAT_USERNAME.fullmatch(text):
            return text
    raise PermanentError(
        f"{str(value)[:40]!r} is not a Telegram chat id: use the group's numeric id (a supergroup's starts with "
        "-100; forward a message from the group to @userinfobot to see it) or a public channel's @username",
        "invalid_chat_id",
    )


def _user_id(value: Any) -> int:
    if _is_int(value) and value > 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,15}", value.strip()):
        return int(value.strip())
    raise PermanentError(
        f"{str(value)[:40]!r} is not a Telegram user id (a positive number): the member must start the bot "
        "again from the join page",
        "invalid_user_id",
    )


def truncate_message(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Fit ``text`` into Telegram's limit, counted in UTF-16 units as Telegram counts."""
    return fit_text(text, limit, count="utf16")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None




# --- the CommunityConnector ------------------------------------------------------------------------

# A personal link lives long enough to be tapped from the message, not long enough to circulate.
INVITE_LIFETIME_SECONDS = 24 * 3600


# TelegramBotApi.preflight's refusals, by reason, as the check each one fails.
_PREFLIGHT_CHECKS = {
    "telegram_chat_is_private": "chat_is_group",
    "telegram_bot_not_admin": "bot_is_admin",
    "telegram_not_enough_rights": "bot_rights",
    "telegram_needs_supergroup": "chat_is_group",
}


class TelegramConnector:
    """A Telegram group, supergroup or channel behind the core's CommunityConnector port.

    Telegram has no roles and a bot cannot add anyone: access is a personal join-request link sent
    to the member, the request approved for them alone, and removal is a ban then an unban."""

    platform = Platform.TELEGRAM
    capabilities = frozenset(
        {Capability.CHECK_MEMBER, Capability.INVITE, Capability.APPROVE_JOIN, Capability.REMOVE_MEMBER,
         Capability.MESSAGE, Capability.POST_ANNOUNCEMENT, Capability.PREFLIGHT}
    )

    def preflight(self, community: Community, role_ids: Sequence[str]) -> Preflight:
        """The bot is an administrator of the chat who can invite (join-request links) and ban (removal).

        Telegram has no roles, so ``role_ids`` is unused. getChat, getMe (cached) and getChatMember on
        the bot itself: the refusal's own wording (TelegramBotApi.preflight) is the fix."""
        del role_ids
        try:
            self.api.preflight(community.external_id)
        except PermanentError as exc:
            name = _PREFLIGHT_CHECKS.get(exc.reason, "bot_in_chat")  # not found, removed, not a member
            return Preflight((Check(name, False, exc.message),))
        return Preflight(tuple(Check(name, True) for name in ("bot_in_chat", "bot_is_admin", "bot_rights")))

    def __init__(self, api: TelegramBotApi, invite_lifetime: int = INVITE_LIFETIME_SECONDS):
        self.api = api
        self._invite_lifetime = invite_lifetime

    def check_member(self, community: Community, user: str) -> Presence:
        status = self.api.member_status(community.external_id, user)
        if status.status == "unknown":
            return Presence(PresenceState.ABSENT)
        return Presence(PresenceState.PRESENT if status.present else PresenceState.ABSENT)

    def add_member(self, community: Community, user: str, roles: Sequence[str], credential: str | None) -> None:
        raise PermanentError("a Telegram bot cannot add people to a chat; they join through a personal invite",
                             "unsupported_action")

    def grant_role(self, community: Community, user: str, role_id: str) -> None:
        raise PermanentError("Telegram chats have no roles; access is being in the chat", "unsupported_action")

    def revoke_role(self, community: Community, user: str, role_id: str) -> None:
        raise PermanentError("Telegram chats have no roles; access is being in the chat", "unsupported_action")

    def remove_member(self, community: Community, user: str) -> None:
        self.api.remove_member(community.external_id, user)

    def create_invite(self, community: Community, user: str, now: int) -> str:
        link = self.api.create_join_request_link(
            community.external_id, name=personal_link_name(user), expire_date=now + self._invite_lifetime
        )
        return link.url

    def approve_join(self, community: Community, user: str) -> None:
        self.api.approve_join_request(community.external_id, user)

    def decline_join(self, community: Community, user: str) -> None:
        self.api.decline_join_request(community.external_id, user)

    def send_message(self, user: str, text: str, idempotency_key: str) -> None:
        # Telegram has no idempotency key: the message log's claim keeps a message to one send.
        self.api.send_message(_user_id(user), text)

    def post_announcement(self, community: Community, channel_id: str | None, text: str, idempotency_key: str) -> None:
        """A message in the group itself (a channel: its subscribers read it); the bot must be allowed to post."""
        del channel_id, idempotency_key  # the group is the place; the migration records the post once
        self.api.send_message(community.external_id, text)
