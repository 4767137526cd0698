"""Telegram rules without I/O: read an Update, check deep-link tokens and the webhook secret, build links."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import MalformedEventError

# Deep-link payloads: "up to 64 characters ... A-Z, a-z, 0-9, _ and -" (Bot API: deep linking).
_START_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Webhook secret_token: "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed" (setWebhook).
_WEBHOOK_SECRET = re.compile(rb"[A-Za-z0-9_-]{1,256}")
# Bot usernames: 5-32 characters of letters, digits and underscores, starting with a letter.
_BOT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,31}")
_START_COMMAND = re.compile(r"/start(?:@[A-Za-z0-9_]+)?(?:\s+(.*))?", re.ASCII | re.DOTALL)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# createChatInviteLink name: "0-32 characters".
INVITE_LINK_NAME_LIMIT = 32
# Statuses of a ChatMember in which the user is in the chat (restricted members only when is_member).
_PRESENT_STATUSES = frozenset({"creator", "administrator", "member"})


@dataclass(frozen=True)
class StartCommand:
    """`/start [token]` sent to the bot in a private chat: the user opened the t.me deep link."""

    update_id: int
    user_id: int
    chat_id: int
    token: str | None  # None for a bare /start or a payload that is not a valid token
    username: str | None
    first_name: str
    language_code: str | None


@dataclass(frozen=True)
class JoinRequest:
    """A user asked to join chat C through an invite link that creates join requests."""

    update_id: int
    chat_id: int
    chat_type: str
    user_id: int
    user_chat_id: int  # the private chat the bot may write to for 5 minutes (or until handled)
    invite_link: str | None  # None when the user did not come through a link (e.g. the chat's username)
    invite_link_name: str | None
    date: int


@dataclass(frozen=True)
class MemberChange:
    """A chat member's status changed (needs `chat_member` in allowed_updates and the bot as admin)."""

    update_id: int
    chat_id: int
    chat_type: str
    user_id: int
    old_status: str
    new_status: str
    was_present: bool
    is_present: bool
    invite_link: str | None
    via_join_request: bool

    @property
    def joined(self) -> bool:
        return self.is_present and not self.was_present

    @property
    def left(self) -> bool:
        return self.was_present and not self.is_present


@dataclass(frozen=True)
class ButtonPress:
    """The user pressed an inline keyboard button carrying callback data."""

    update_id: int
    query_id: str
    user_id: int
    data: str | None
    chat_id: int | None


@dataclass(frozen=True)
class IgnoredUpdate:
    """Any other update: acknowledged (so Telegram does not resend it) and otherwise ignored."""

    update_id: int
    kind: str


ParsedUpdate = StartCommand | JoinRequest | MemberChange | ButtonPress | IgnoredUpdate


def parse_update(update: Any) -> ParsedUpdate:
    """Read what Membergate needs from one Update object; raise MalformedEventError for a broken one."""
    if not isinstance(update, Mapping):
        raise MalformedEventError("a Telegram update must be a JSON object; check the webhook URL points at Telegram only")
    update_id = _int(update, "update_id", "update")
    if "message" in update:
        return _message(update_id, _object(update, "message", "update"))
    if "chat_join_request" in update:
        return _join_request(update_id, _object(update, "chat_join_request", "update"))
    if "chat_member" in update:
        return _member_change(update_id, _object(update, "chat_member", "update"))
    if "callback_query" in update:
        return _button_press(update_id, _object(update, "callback_query", "update"))
    kinds = [key for key in update if key != "update_id"]
    return IgnoredUpdate(update_id, kinds[0] if kinds else "empty")


def is_valid_start_token(token: Any) -> bool:
    """Whether ``token`` fits in a t.me deep link (1-64 characters of A-Z a-z 0-9 _ -)."""
    return isinstance(token, str) and _START_TOKEN.fullmatch(token) is not None


def start_link(bot_username: str, token: str) -> str:
    """The https://t.me/<bot>?start=<token> link that opens the bot and sends it `/start <token>`."""
    username = bot_username.removeprefix("@") if isinstance(bot_username, str) else ""
    if not _BOT_USERNAME.fullmatch(username):
        raise ValueError(f"{bot_username!r} is not a Telegram bot username (5-32 letters, digits or _)")
    if not is_valid_start_token(token):
        raise ValueError("a start token must be 1-64 characters of A-Z a-z 0-9 _ -")
    return f"https://t.me/{username}?start={token}"


def is_valid_webhook_secret(secret: Any) -> bool:
    """Whether Telegram would accept ``secret`` as setWebhook's secret_token."""
    return isinstance(secret, str) and secret.isascii() and _WEBHOOK_SECRET.fullmatch(secret.encode()) is not None


def secret_matches(received: str | bytes | None, expected: str) -> bool:
    """Compare the X-Telegram-Bot-Api-Secret-Token header with the configured secret in constant time.

    Non-ASCII input is refused before comparing (hmac.compare_digest raises on non-ASCII str, and
    Telegram never sends it); an unset or invalid configured secret accepts nothing."""
    if received is None or not is_valid_webhook_secret(expected):
        return False
    if isinstance(received, str):
        if not received.isascii():
            return False
        received = received.encode("ascii")
    elif not isinstance(received, bytes) or not received.isascii():
        return False
    return hmac.compare_digest(received, expected.encode("ascii"))


def invite_link_name(label: str) -> str:
    """A createChatInviteLink name (0-32 characters) from the member's name, cut without splitting a pair."""
    text = " ".join(str(label).split())
    # Telegram counts UTF-16 units; cutting by them keeps emoji (surrogate pairs) whole.
    while len(text.encode("utf-16-le")) // 2 > INVITE_LINK_NAME_LIMIT:
        text = text[:-1]
    return text.rstrip()


def personal_link_name(user: str) -> str:
    """The name a member's personal invite link carries: a join request through it names its holder."""
    return invite_link_name(f"Membergate {user}")


def join_request_verdict(request: JoinRequest, link_holders: Mapping[str, int]) -> str:
    """"approve" only when the request came through a personal link issued to this very user, else "decline".

    ``link_holders`` maps each live personal invite link to the Telegram user it was issued to, so
    a forwarded link, a link without an owner, or no link at all lets no one in."""
    if request.invite_link is None:
        return "decline"
    holder = link_holders.get(request.invite_link)
    return "approve" if holder is not None and holder == request.user_id else "decline"


def is_present_status(member: Mapping[str, Any]) -> bool:
    """Whether a ChatMember object describes someone in the chat."""
    status = member.get("status")
    if status in _PRESENT_STATUSES:
        return True
    return status == "restricted" and member.get("is_member") is True


# --- readers ---------------------------------------------------------------------------------


def _message(update_id: int, message: Mapping[str, Any]) -> ParsedUpdate:
    chat = _object(message, "chat", "message")
    sender = message.get("from")
    text = message.get("text")
    # Deep links only start private chats; /start in a group is someone else's conversation.
    if chat.get("type") != "private" or not isinstance(sender, Mapping) or not isinstance(text, str):
        return IgnoredUpdate(update_id, "message")
    match = _START_COMMAND.fullmatch(text)
    if match is None:
        return IgnoredUpdate(update_id, "message")
    payload = (match.group(1) or "").strip()
    return StartCommand(
        update_id=update_id,
        user_id=_int(sender, "id", "message.from"),
        chat_id=_int(chat, "id", "message.chat"),
        token=payload if is_valid_start_token(payload) else None,
        username=_optional_str(sender, "username"),
        first_name=_optional_str(sender, "first_name") or "",
        language_code=_optional_str(sender, "language_code"),
    )


def _join_request(update_id: int, request: Mapping[str, Any]) -> JoinRequest:
    chat = _object(request, "chat", "chat_join_request")
    sender = _object(request, "from", "chat_join_request")
    link = request.get("invite_link")
    link = link if isinstance(link, Mapping) else {}
    return JoinRequest(
        update_id=update_id,
        chat_id=_int(chat, "id", "chat_join_request.chat"),
        chat_type=_optional_str(chat, "type") or "",
        user_id=_int(sender, "id", "chat_join_request.from"),
        user_chat_id=_int(request, "user_chat_id", "chat_join_request"),
        invite_link=_optional_str(link, "invite_link"),
        invite_link_name=_optional_str(link, "name"),
        date=_int(request, "date", "chat_join_request"),
    )


def _member_change(update_id: int, change: Mapping[str, Any]) -> MemberChange:
    chat = _object(change, "chat", "chat_member")
    old = _object(change, "old_chat_member", "chat_member")
    new = _object(change, "new_chat_member", "chat_member")
    user = _object(new, "user", "chat_member.new_chat_member")
    link = change.get("invite_link")
    link = link if isinstance(link, Mapping) else {}
    return MemberChange(
        update_id=update_id,
        chat_id=_int(chat, "id", "chat_member.chat"),
        chat_type=_optional_str(chat, "type") or "",
        user_id=_int(user, "id", "chat_member.new_chat_member.user"),
        old_status=_optional_str(old, "status") or "",
        new_status=_optional_str(new, "status") or "",
        was_present=is_present_status(old),
        is_present=is_present_status(new),
        invite_link=_optional_str(link, "invite_link"),
        via_join_request=change.get("via_join_request") is True,
    )


def _button_press(update_id: int, query: Mapping[str, Any]) -> ButtonPress:
    sender = _object(query, "from", "callback_query")
    query_id = query.get("id")
    if not isinstance(query_id, str) or not query_id:
        raise MalformedEventError("callback_query.id is missing; Telegram always sends one")
    message = query.get("message")
    chat = message.get("chat") if isinstance(message, Mapping) else None
    chat_id = chat.get("id") if isinstance(chat, Mapping) else None
    return ButtonPress(
        update_id=update_id,
        query_id=query_id,
        user_id=_int(sender, "id", "callback_query.from"),
        data=_optional_str(query, "data"),
        chat_id=chat_id if isinstance(chat_id, int) and not isinstance(chat_id, bool) else None,
    )


def _object(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise MalformedEventError(f"{where}.{key} must be an object in a Telegram update")
    return value


def _int(parent: Mapping[str, Any], key: str, where: str) -> int:
    value = parent.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedEventError(f"{where}.{key} must be an integer in a Telegram update")
    return value


def _optional_str(parent: Mapping[str, Any], key: str) -> str | None:
    value = parent.get(key)
    return value if isinstance(value, str) else None
