"""A local Telegram Bot API stand-in: the methods Membergate calls, chats with members, updates to a webhook.

Membergate's real Telegram client talks to it over HTTP (TELEGRAM_API_BASE points here), so what
runs locally is the code that runs against api.telegram.org. Every call is recorded (GET /calls)
and checked against the Bot API description in ../shared/specs/telegram/api.json when it is there
(unknown or missing parameters answer 400, as Telegram does). Control routes create chats and
users, make a user send `/start <token>` or open an invite link (which injects a chat_join_request
update into the configured webhook, with the secret header), and inject any update.

Its pace is a little looser than Telegram's documented one (one message a second per chat, 20 a
minute per group, 30 a second overall), so a client that keeps Telegram's pace never sees a 429
from timing jitter here, and one that ignores it does.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

DEFAULT_TOKEN = "100200300:local-standin-token"
DEFAULT_USERNAME = "membergate_local_bot"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_ADMIN_RIGHTS = ("can_manage_chat", "can_invite_users", "can_restrict_members")
# Without the spec file, each method still refuses a call missing what it cannot work without.
_REQUIRED = {
    "sendMessage": ("chat_id", "text"),
    "createChatInviteLink": ("chat_id",),
    "approveChatJoinRequest": ("chat_id", "user_id"),
    "declineChatJoinRequest": ("chat_id", "user_id"),
    "banChatMember": ("chat_id", "user_id"),
    "unbanChatMember": ("chat_id", "user_id"),
    "getChatMember": ("chat_id", "user_id"),
    "getChat": ("chat_id",),
    "revokeChatInviteLink": ("chat_id", "invite_link"),
    "getChatAdministrators": ("chat_id",),
    "setWebhook": ("url",),
    "answerCallbackQuery": ("callback_query_id",),
}


def default_spec_path() -> Path:
    base = os.environ.get("MEMBERGATE_SPECS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "specs"
    return Path(base) / "telegram" / "api.json"


def load_spec_methods(path: Path | None = None) -> dict[str, Any] | None:
    """The spec's methods, or None when the spec is not on this machine."""
    try:
        return json.loads((path or default_spec_path()).read_text())["methods"]
    except FileNotFoundError:
        return None


class _Refused(Exception):
    def __init__(self, code: int, description: str, **parameters: Any):
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


@dataclass
class Chat:
    id: int
    type: str
    title: str
    members: dict[int, str] = field(default_factory=dict)  # user id -> status (member, administrator, creator)
    banned: set[int] = field(default_factory=set)
    pending: dict[int, str | None] = field(default_factory=dict)  # user id -> invite link used
    bot_rights: dict[str, bool] = field(default_factory=lambda: {right: True for right in _ADMIN_RIGHTS})
    bot_is_admin: bool = True


@dataclass
class User:
    id: int
    first_name: str
    username: str | None = None
    started: bool = False
    blocked: bool = False


@dataclass
class Limits:
    """(count, seconds) windows; None turns a window off.

    Shorter than Telegram's windows by the delay a loaded machine may add between the client's
    clock and this one (two requests paced 1 s apart can arrive 0.8 s apart)."""

    per_chat: tuple[int, float] | None = (1, 0.75)
    per_group: tuple[int, float] | None = (20, 55.0)
    overall: tuple[int, float] | None = (30, 0.9)


class TelegramStandIn:
    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_TOKEN,
        bot_username: str = DEFAULT_USERNAME,
        spec_methods: Mapping[str, Any] | None = None,
        load_spec: bool = True,
        limits: Limits | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        deliver: Callable[[str, dict[str, str], bytes], int] | None = None,
    ):
        self._lock = threading.RLock()
        self.bot_token = bot_token
        self.bot_id = int(bot_token.split(":", 1)[0])
        self.bot_username = bot_username
        self.spec_methods = spec_methods if spec_methods is not None else (load_spec_methods() if load_spec else None)
        self.limits = limits or Limits()
        self._monotonic = monotonic
        self._wall = wall
        self._deliver = deliver or _post_json
        self.chats: dict[int, Chat] = {}
        self.users: dict[int, User] = {}
        self.links: dict[str, dict[str, Any]] = {}
        self.migrated: dict[int, int] = {}  # group id -> the supergroup it was upgraded to
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []  # every update, with its delivery status
        self.webhook: dict[str, Any] = {"url": "", "secret_token": None, "allowed_updates": []}
        self._outbox: list[dict[str, Any]] = []
        self._windows: dict[str, deque[float]] = {}
        self._update_ids = itertools.count(700_000_001)
        self._message_ids = itertools.count(1)
        self.url_map = Map(
            [
                Rule("/bot<token>/<method>", endpoint="bot", methods=["GET", "POST"]),
                Rule("/calls", endpoint="list_calls", methods=["GET"]),
                Rule("/messages", endpoint="list_messages", methods=["GET"]),
                Rule("/updates", endpoint="list_updates", methods=["GET"]),
                Rule("/chats/<chat_id>", endpoint="chat", methods=["GET"]),
                Rule("/_control/chats", endpoint="add_chat", methods=["POST"]),
                Rule("/_control/chats/<chat_id>/bot", endpoint="bot_rights", methods=["POST"]),
                Rule("/_control/chats/<chat_id>/migrate", endpoint="migrate", methods=["POST"]),
                Rule("/_control/users", endpoint="add_user", methods=["POST"]),
                Rule("/_control/users/<user_id>/start", endpoint="start", methods=["POST"]),
                Rule("/_control/users/<user_id>/block", endpoint="block", methods=["POST"]),
                Rule("/_control/join", endpoint="join", methods=["POST"]),
                Rule("/_control/updates", endpoint="inject", methods=["POST"]),
                Rule("/_control/webhook", endpoint="control_webhook", methods=["POST"]),
            ]
        )

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
        except NotFound:
            return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})(environ, start_response)
        if endpoint == "bot":
            with self._lock:
                response = self._bot_call(request, **args)
            self._flush()
        else:
            with self._lock:
                try:
                    response = getattr(self, f"on_{endpoint}")(request, **args)
                except (ValueError, KeyError, TypeError) as exc:
                    response = _json(400, {"error": f"bad control request: {exc}"})
            delivered = self._flush()
            if delivered and response.status_code == 200 and response.mimetype == "application/json":
                body = json.loads(response.get_data())
                body["delivered"] = delivered
                response = _json(200, body)
        return response(environ, start_response)

    # --- the Bot API --------------------------------------------------------------------------

    def _bot_call(self, request: Request, token: str, method: str) -> Response:
        params = _params(request)
        record = {"at": self._wall(), "method": method, "params": params, "status": 200, "description": None}
        self.calls.append(record)
        try:
            if token != self.bot_token:
                raise _Refused(401, "Unauthorized")
            handler = getattr(self, f"api_{method}", None)
            if handler is None or (self.spec_methods is not None and method not in self.spec_methods):
                raise _Refused(404, "Not Found")
            if not isinstance(params, dict):
                raise _Refused(400, "Bad Request: the request body must be a JSON object")
            self._check_params(method, params)
            self._pace(method, params)
            result = handler(params)
        except _Refused as refused:
            record["status"], record["description"] = refused.code, refused.description
            body: dict[str, Any] = {"ok": False, "error_code": refused.code, "description": refused.description}
            if refused.parameters:
                body["parameters"] = refused.parameters
            return _json(refused.code, body)
        return _json(200, {"ok": True, "result": result})

    def _check_params(self, method: str, params: dict[str, Any]) -> None:
        if self.spec_methods is not None:
            fields = {f["name"]: f for f in self.spec_methods[method].get("fields", [])}
            unknown = sorted(set(params) - set(fields))
            if unknown:
                raise _Refused(400, f"Bad Request: unknown parameter {unknown[0]} (stand-in checks against the spec)")
            required = [name for name, f in fields.items() if f["required"]]
        else:
            required = list(_REQUIRED.get(method, ()))
        for name in required:
            if params.get(name) in (None, ""):
                raise _Refused(400, f"Bad Request: {name} is empty")

    def _pace(self, method: str, params: dict[str, Any]) -> None:
        windows = [("overall", self.limits.overall)]
        if method == "sendMessage":
            chat = params.get("chat_id")
            windows.append((f"chat:{chat}", self.limits.per_chat))
            if not (isinstance(chat, int) and chat > 0):
                windows.append((f"group:{chat}", self.limits.per_group))
        now = self._monotonic()
        waits = []
        for key, limit in windows:
            if limit is None:
                continue
            count, span = limit
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= count:
                waits.append(window[len(window) - count] + span - now)
        if waits:
            retry_after = max(1, math.ceil(max(waits)))
            raise _Refused(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        for key, limit in windows:
            if limit is not None:
                self._windows[key].append(now)

    def api_getMe(self, params: dict) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Membergate (local)", "username": self.bot_username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def api_setWebhook(self, params: dict) -> bool:
        url = str(params.get("url", ""))
        if url and not url.startswith("https://"):
            raise _Refused(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _valid_secret(secret):
            raise _Refused(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": list(params.get("allowed_updates") or [])}
        return True

    def api_sendMessage(self, params: dict) -> dict:
        chat_id = self._int(params, "chat_id")
        text = str(params["text"])
        if len(text.encode("utf-16-le")) // 2 > 4096:
            raise _Refused(400, "Bad Request: message is too long")
        if chat_id > 0:
            user = self.users.get(chat_id)
            if user is None:
                raise _Refused(400, "Bad Request: chat not found")
            if user.blocked:
                raise _Refused(403, "Forbidden: bot was blocked by the user")
            if not user.started and not any(chat_id in c.pending for c in self.chats.values()):
                raise _Refused(403, "Forbidden: bot can't initiate conversation with a user")
            chat_json = {"id": chat_id, "type": "private", "first_name": user.first_name}
        else:
            chat = self._chat(chat_id)
            chat_json = {"id": chat.id, "type": chat.type, "title": chat.title}
        message = {"message_id": next(self._message_ids), "date": int(self._wall()), "chat": chat_json, "text": text}
        self.messages.append({**message, "reply_markup": params.get("reply_markup")})
        return message

    def api_createChatInviteLink(self, params: dict) -> dict:
        chat = self._chat(self._int(params, "chat_id"))
        self._need(chat, "can_invite_users", "Bad Request: not enough rights to manage chat invite links")
        if params.get("creates_join_request") and params.get("member_limit") is not None:
            raise _Refused(400, "Bad Request: member limit can't be specified for links requiring administrator approval")
        name = params.get("name")
        if name is not None and len(str(name).encode("utf-16-le")) // 2 > 32:
            raise _Refused(400, "Bad Request: invite link name is too long")
        url = f"https://t.me/+{secrets.token_urlsafe(12)}"
        link = {"invite_link": url, "creator": self.api_getMe({}), "creates_join_request": bool(params.get("creates_join_request")),
                "is_primary": False, "is_revoked": False}
        for key in ("name", "expire_date"):
            if params.get(key) is not None:
                link[key] = params[key]
        self.links[url] = {**link, "chat_id": chat.id}
        return link

    def api_revokeChatInviteLink(self, params: dict) -> dict:
        chat = self._chat(self._int(params, "chat_id"))
        self._need(chat, "can_invite_users", "Bad Request: not enough rights to manage chat invite links")
        link = self.links.get(str(params["invite_link"]))
        if link is None or link["chat_id"] != chat.id or link["is_revoked"]:
            raise _Refused(400, "Bad Request: INVITE_HASH_EXPIRED")
        link["is_revoked"] = True
        return {k: v for k, v in link.items() if k != "chat_id"}

    def api_approveChatJoinRequest(self, params: dict) -> bool:
        chat, user_id = self._chat(self._int(params, "chat_id")), self._int(params, "user_id")
        self._need(chat, "can_invite_users", "Bad Request: not enough rights to approve join requests")
        if user_id in chat.members:
            chat.pending.pop(user_id, None)
            raise _Refused(400, "Bad Request: USER_ALREADY_PARTICIPANT")
        if user_id not in chat.pending:
            raise _Refused(400, "Bad Request: HIDE_REQUESTER_MISSING")
        link = chat.pending.pop(user_id)
        self._set_member(chat, user_id, "member", invite_link=link, via_join_request=True)
        return True

    def api_declineChatJoinRequest(self, params: dict) -> bool:
        chat, user_id = self._chat(self._int(params, "chat_id")), self._int(params, "user_id")
        self._need(chat, "can_invite_users", "Bad Request: not enough rights to decline join requests")
        if chat.pending.pop(user_id, "missing") == "missing":
            raise _Refused(400, "Bad Request: HIDE_REQUESTER_MISSING")
        return True

    def api_banChatMember(self, params: dict) -> bool:
        chat, user_id = self._chat(self._int(params, "chat_id")), self._int(params, "user_id")
        self._need(chat, "can_restrict_members", "Bad Request: not enough rights to restrict/unrestrict chat member")
        if chat.members.get(user_id) in ("administrator", "creator"):
            raise _Refused(400, "Bad Request: user is an administrator of the chat")
        chat.banned.add(user_id)
        chat.pending.pop(user_id, None)
        self._set_member(chat, user_id, "kicked")
        return True

    def api_unbanChatMember(self, params: dict) -> bool:
        chat, user_id = self._chat(self._int(params, "chat_id")), self._int(params, "user_id")
        self._need(chat, "can_restrict_members", "Bad Request: not enough rights to restrict/unrestrict chat member")
        if user_id in chat.banned:
            chat.banned.discard(user_id)
            self._set_member(chat, user_id, "left", old="kicked")
        elif not params.get("only_if_banned") and user_id in chat.members:
            # Telegram: without only_if_banned, unbanning a member removes them from the chat.
            self._set_member(chat, user_id, "left")
        return True

    def api_getChatMember(self, params: dict) -> dict:
        chat, user_id = self._chat(self._int(params, "chat_id")), self._int(params, "user_id")
        if user_id == self.bot_id:
            return self._bot_member(chat)
        if user_id not in self.users:
            raise _Refused(400, "Bad Request: user not found")
        user = self._user_json(user_id)
        status = chat.members.get(user_id)
        if status == "administrator":
            return {"status": "administrator", "user": user, "can_be_edited": False, "is_anonymous": False,
                    **{right: True for right in _ADMIN_RIGHTS_ALL}}
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status == "member":
            return {"status": "member", "user": user}
        if user_id in chat.banned:
            return {"status": "kicked", "user": user, "until_date": 0}
        return {"status": "left", "user": user}

    def api_getChat(self, params: dict) -> dict:
        chat = self._chat(self._int(params, "chat_id"))
        return {"id": chat.id, "type": chat.type, "title": chat.title, "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                                        "premium_subscription": False, "gifts_from_channels": False}}

    def api_getChatAdministrators(self, params: dict) -> list:
        chat = self._chat(self._int(params, "chat_id"))
        admins = [self.api_getChatMember({"chat_id": chat.id, "user_id": uid})
                  for uid, status in chat.members.items() if status in ("administrator", "creator")]
        return ([self._bot_member(chat)] if chat.bot_is_admin else []) + admins

    def api_answerCallbackQuery(self, params: dict) -> bool:
        return True

    # --- control routes -------------------------------------------------------------------------

    def on_add_chat(self, request: Request) -> Response:
        body = request.get_json(force=True)
        chat_type = body.get("type", "supergroup")
        if chat_type not in ("group", "supergroup", "channel"):
            raise ValueError("type must be group, supergroup or channel")
        chat = Chat(int(body["id"]), chat_type, str(body.get("title", "Club")))
        chat.bot_is_admin = bool(body.get("bot_is_admin", True))
        chat.bot_rights.update({k: bool(v) for k, v in (body.get("bot_rights") or {}).items() if k in _ADMIN_RIGHTS})
        self.chats[chat.id] = chat
        return _json(200, self._chat_view(chat))

    def on_bot_rights(self, request: Request, chat_id: str) -> Response:
        chat = self.chats[int(chat_id)]
        body = request.get_json(force=True)
        if "is_admin" in body:
            chat.bot_is_admin = bool(body["is_admin"])
        chat.bot_rights.update({k: bool(v) for k, v in body.items() if k in _ADMIN_RIGHTS})
        return _json(200, self._chat_view(chat))

    def on_migrate(self, request: Request, chat_id: str) -> Response:
        """The creator upgrades a basic group to a supergroup: a new id, the old one answers with migrate_to_chat_id."""
        old = self.chats.pop(int(chat_id))
        new_id = int((request.get_json(silent=True) or {}).get("to") or -1_000_000_000_000 + old.id)
        old.id, old.type = new_id, "supergroup"
        self.chats[new_id] = old
        self.migrated[int(chat_id)] = new_id
        for link in self.links.values():
            if link["chat_id"] == int(chat_id):
                link["chat_id"] = new_id
        return _json(200, self._chat_view(old))

    def on_add_user(self, request: Request) -> Response:
        body = request.get_json(force=True)
        user = self._ensure_user(int(body["id"]), body.get("first_name"), body.get("username"))
        return _json(200, {"id": user.id, "first_name": user.first_name, "username": user.username})

    def on_start(self, request: Request, user_id: str) -> Response:
        """The user opens t.me/<bot>?start=<token> and taps Start: the bot receives `/start <token>`."""
        body = request.get_json(silent=True) or {}
        user = self._ensure_user(int(user_id), body.get("first_name"), body.get("username"))
        user.started, user.blocked = True, False
        token = body.get("token")
        text = "/start" if not token else f"/start {token}"
        message = {"message_id": next(self._message_ids), "from": self._user_json(user.id), "date": int(self._wall()),
                   "chat": {"id": user.id, "type": "private", "first_name": user.first_name}, "text": text,
                   "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}
        update = self._queue("message", message)
        return _json(200, {"update_id": update["update_id"]})

    def on_block(self, request: Request, user_id: str) -> Response:
        user = self._ensure_user(int(user_id), None, None)
        user.blocked = bool((request.get_json(silent=True) or {}).get("blocked", True))
        return _json(200, {"id": user.id, "blocked": user.blocked})

    def on_join(self, request: Request) -> Response:
        """The user opens an invite link: a join request (links that create them) or a direct join."""
        body = request.get_json(force=True)
        user = self._ensure_user(int(body["user_id"]), body.get("first_name"), body.get("username"))
        link = self.links.get(str(body["invite_link"]))
        now = int(self._wall())
        if link is None or link["is_revoked"] or (link.get("expire_date") and link["expire_date"] <= now):
            return _json(200, {"outcome": "link_invalid"})
        chat = self.chats[link["chat_id"]]
        if user.id in chat.banned:
            return _json(200, {"outcome": "banned"})
        if user.id in chat.members:
            return _json(200, {"outcome": "already_member"})
        public_link = {k: v for k, v in link.items() if k != "chat_id"}
        if not link["creates_join_request"]:
            self._set_member(chat, user.id, "member", invite_link=link["invite_link"])
            return _json(200, {"outcome": "joined"})
        chat.pending[user.id] = link["invite_link"]
        request_json = {"chat": {"id": chat.id, "type": chat.type, "title": chat.title}, "from": self._user_json(user.id),
                        "user_chat_id": user.id, "date": now, "invite_link": public_link}
        update = self._queue("chat_join_request", request_json)
        return _json(200, {"outcome": "join_requested", "update_id": update["update_id"]})

    def on_inject(self, request: Request) -> Response:
        body = request.get_json(force=True)
        kinds = [k for k in body if k != "update_id"]
        if len(kinds) != 1:
            raise ValueError("an update has exactly one kind besides update_id")
        update = self._queue(kinds[0], body[kinds[0]])
        return _json(200, {"update_id": update["update_id"]})

    def on_control_webhook(self, request: Request) -> Response:
        """Set the webhook directly (local URLs are http://, which setWebhook refuses as Telegram does)."""
        body = request.get_json(force=True)
        secret = body.get("secret_token")
        if secret is not None and not _valid_secret(secret):
            raise ValueError("secret_token must be 1-256 characters of A-Z a-z 0-9 _ -")
        self.webhook = {"url": str(body.get("url", "")), "secret_token": secret,
                        "allowed_updates": list(body.get("allowed_updates") or [])}
        return _json(200, self.webhook)

    def on_list_calls(self, request: Request) -> Response:
        return _json(200, {"calls": self.calls})

    def on_list_messages(self, request: Request) -> Response:
        return _json(200, {"messages": self.messages})

    def on_list_updates(self, request: Request) -> Response:
        return _json(200, {"updates": self.updates})

    def on_chat(self, request: Request, chat_id: str) -> Response:
        chat = self.chats.get(int(chat_id))
        if chat is None:
            return _json(404, {"error": "no such chat"})
        return _json(200, self._chat_view(chat))

    # --- helpers ----------------------------------------------------------------------------------

    def _queue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        entry = {"update": update, "kind": kind, "delivered": False, "status": None}
        self.updates.append(entry)
        allowed = self.webhook["allowed_updates"]
        # Telegram sends chat_member updates only when asked for by name.
        wanted = kind in allowed if allowed else kind != "chat_member"
        if self.webhook["url"] and wanted:
            self._outbox.append(entry)
        return update

    def _flush(self) -> list[dict[str, Any]]:
        """Deliver queued updates outside the lock (the webhook may call back into this stand-in)."""
        with self._lock:
            entries, self._outbox = self._outbox, []
            url, secret = self.webhook["url"], self.webhook["secret_token"]
        delivered = []
        for entry in entries:
            headers = {"Content-Type": "application/json"}
            if secret:
                headers[SECRET_HEADER] = secret
            try:
                status = self._deliver(url, headers, json.dumps(entry["update"]).encode())
            except OSError as exc:
                status = f"error: {type(exc).__name__}"
            with self._lock:
                entry["delivered"], entry["status"] = status == 200, status
            delivered.append({"update_id": entry["update"]["update_id"], "status": status})
        return delivered

    def _set_member(self, chat: Chat, user_id: int, status: str, *, invite_link: str | None = None,
                    via_join_request: bool = False, old: str | None = None) -> None:
        old = old or chat.members.get(user_id) or "left"
        if status in ("member", "administrator", "creator"):
            chat.members[user_id] = status
        else:
            chat.members.pop(user_id, None)
        user = self._user_json(user_id)
        change: dict[str, Any] = {
            "chat": {"id": chat.id, "type": chat.type, "title": chat.title},
            "from": user if status != "kicked" else self.api_getMe({}),
            "date": int(self._wall()),
            "old_chat_member": _member_json(old, user),
            "new_chat_member": _member_json(status, user),
        }
        if invite_link is not None and invite_link in self.links:
            change["invite_link"] = {k: v for k, v in self.links[invite_link].items() if k != "chat_id"}
        if via_join_request:
            change["via_join_request"] = True
        self._queue("chat_member", change)

    def _chat(self, chat_id: int) -> Chat:
        if chat_id in self.migrated:
            raise _Refused(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           migrate_to_chat_id=self.migrated[chat_id])
        chat = self.chats.get(chat_id)
        if chat is None:
            raise _Refused(400, "Bad Request: chat not found")
        return chat

    def _need(self, chat: Chat, right: str, description: str) -> None:
        if not chat.bot_is_admin:
            raise _Refused(400, "Bad Request: CHAT_ADMIN_REQUIRED")
        if not chat.bot_rights.get(right):
            raise _Refused(400, description)

    def _bot_member(self, chat: Chat) -> dict[str, Any]:
        bot = {"id": self.bot_id, "is_bot": True, "first_name": "Membergate (local)", "username": self.bot_username}
        if not chat.bot_is_admin:
            return {"status": "member", "user": bot}
        rights = {right: False for right in _ADMIN_RIGHTS_ALL} | {k: v for k, v in chat.bot_rights.items()}
        return {"status": "administrator", "user": bot, "can_be_edited": False, "is_anonymous": False, **rights}

    def _ensure_user(self, user_id: int, first_name: str | None, username: str | None) -> User:
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = User(user_id, first_name or f"User{user_id % 10000}", username)
        return user

    def _user_json(self, user_id: int) -> dict[str, Any]:
        user = self.users.get(user_id) or User(user_id, f"User{user_id % 10000}")
        data: dict[str, Any] = {"id": user.id, "is_bot": False, "first_name": user.first_name}
        if user.username:
            data["username"] = user.username
        return data

    def _chat_view(self, chat: Chat) -> dict[str, Any]:
        return {"id": chat.id, "type": chat.type, "title": chat.title,
                "members": {str(u): s for u, s in chat.members.items()}, "banned": sorted(chat.banned),
                "pending": {str(u): link for u, link in chat.pending.items()},
                "bot_is_admin": chat.bot_is_admin, "bot_rights": chat.bot_rights}

    @staticmethod
    def _int(params: dict, name: str) -> int:
        value = params.get(name)
        if isinstance(value, bool):
            raise _Refused(400, f"Bad Request: invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            # "@username" chats are not modelled here; Telegram answers this for an unknown one.
            if name == "chat_id" and isinstance(value, str) and value.startswith("@"):
                raise _Refused(400, "Bad Request: chat not found") from None
            raise _Refused(400, f"Bad Request: invalid {name} specified") from None


_ADMIN_RIGHTS_ALL = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members", "can_promote_members",
    "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories",
)


def _member_json(status: str, user: dict[str, Any]) -> dict[str, Any]:
    if status == "kicked":
        return {"status": "kicked", "user": user, "until_date": 0}
    if status == "administrator":
        return {"status": "administrator", "user": user, "can_be_edited": False, "is_anonymous": False,
                **{right: True for right in _ADMIN_RIGHTS_ALL}}
    if status == "creator":
        return {"status": "creator", "user": user, "is_anonymous": False}
    return {"status": status, "user": user}


def _params(request: Request) -> Any:
    """Telegram takes parameters as JSON, as a form, or in the query string."""
    if request.mimetype == "application/json":
        return request.get_json(silent=True) if request.data else {}
    return {**request.args.to_dict(), **request.form.to_dict()}


def _valid_secret(secret: Any) -> bool:
    return isinstance(secret, str) and 1 <= len(secret) <= 256 and all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _post_json(url: str, headers: dict[str, str], body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code
