"""Telegram test doubles: the Bot API description as a request validator, a scripted transport, Update builders."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from membergate.adapters.http import Headers, HttpResponse

from . import specs as _specs
from .specs import specs_dir

API_BASE = "https://api.telegram.org"
BOT_TOKEN = "123456:fake-telegram-bot-token"
BOT_ID = 123456
BOT_USERNAME = "membergate_bot"


class SpecViolation(AssertionError):
    """A request or object the Bot API description does not allow."""


def spec_path():
    return specs_dir() / "telegram" / "api.json"


@cache
def _load(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def load_spec() -> TelegramSpec:
    """The Bot API description; skips the calling test when it is absent, fails under CI=true."""
    data = _load(str(spec_path()))
    if data is None:
        message = f"Telegram Bot API spec not found at {spec_path()} (set MEMBERGATE_SPECS_DIR)"
        # One rule for every spec once main's missing_spec is here; the same rule until then.
        rule = getattr(_specs, "missing_spec", None)
        if rule is not None:
            rule(message)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + "; CI must run against the specs", pytrace=False)
        pytest.skip(message)
    return TelegramSpec(data)


class TelegramSpec:
    """Checks method calls and objects against api.json: names, required fields, unknown fields, types."""

    _SCALARS = {
        "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "String": lambda v: isinstance(v, str),
        "Boolean": lambda v: isinstance(v, bool),
        "True": lambda v: v is True,
        # A file_id or URL (uploads are multipart, which Membergate never sends).
        "InputFile": lambda v: isinstance(v, str),
    }

    def __init__(self, data: Mapping[str, Any]):
        self.version = data.get("version")
        self.methods: Mapping[str, Any] = data["methods"]
        self.types: Mapping[str, Any] = data["types"]

    def check_call(self, method: str, params: Mapping[str, Any]) -> None:
        spec = self.methods.get(method)
        if spec is None:
            raise SpecViolation(f"{method}: no such Bot API method")
        fields = {field["name"]: field for field in spec.get("fields", [])}
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise SpecViolation(f"{method}: unknown parameter(s) {unknown}")
        missing = sorted(name for name, field in fields.items() if field["required"] and name not in params)
        if missing:
            raise SpecViolation(f"{method}: missing required parameter(s) {missing}")
        for name, value in params.items():
            self._check_value(value, fields[name]["types"], f"{method}.{name}")

    def check_object(self, type_name: str, value: Any, where: str = "") -> None:
        where = where or type_name
        spec = self.types.get(type_name)
        if spec is None:
            raise SpecViolation(f"{where}: no such Bot API type {type_name}")
        subtypes = spec.get("subtypes")
        if subtypes:
            errors = []
            for subtype in subtypes:
                try:
                    self.check_object(subtype, value, where)
                    return
                except SpecViolation as exc:
                    errors.append(str(exc))
            raise SpecViolation(f"{where}: matches none of {type_name}'s kinds: {errors}")
        if not isinstance(value, Mapping):
            raise SpecViolation(f"{where}: a {type_name} must be an object, got {type(value).__name__}")
        fields = {field["name"]: field for field in spec.get("fields", [])}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise SpecViolation(f"{where}: {type_name} has no field(s) {unknown}")
        missing = sorted(name for name, field in fields.items() if field["required"] and name not in value)
        if missing:
            raise SpecViolation(f"{where}: {type_name} lacks required field(s) {missing}")
        for name, item in value.items():
            self._check_value(item, fields[name]["types"], f"{where}.{name}")

    def returns(self, method: str) -> list[str]:
        return list(self.methods[method].get("returns", []))

    def _check_value(self, value: Any, types: list[str], where: str) -> None:
        errors = []
        for type_name in types:
            try:
                self._check_one(value, type_name, where)
                return
            except SpecViolation as exc:
                errors.append(str(exc))
        raise SpecViolation(f"{where}: {value!r:.60} is not {' or '.join(types)} ({'; '.join(errors)})")

    def _check_one(self, value: Any, type_name: str, where: str) -> None:
        if type_name.startswith("Array of "):
            if not isinstance(value, list):
                raise SpecViolation(f"{where}: expected a list")
            for index, item in enumerate(value):
                self._check_one(item, type_name[len("Array of "):], f"{where}[{index}]")
            return
        check = self._SCALARS.get(type_name)
        if check is not None:
            if not check(value):
                raise SpecViolation(f"{where}: expected {type_name}")
            return
        self.check_object(type_name, value, where)


class FakeClock:
    """monotonic() and sleep() for the client: sleeping only moves time forward and is recorded."""

    def __init__(self, start: float = 1_000.0):
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# --- a scripted Bot API over HttpTransport ---------------------------------------------------


@dataclass(frozen=True)
class TelegramCall:
    method: str  # the Bot API method, e.g. "sendMessage"
    params: dict[str, Any]
    url: str
    headers: Headers


def ok(result: Any) -> HttpResponse:
    return HttpResponse(200, {"Content-Type": "application/json"}, json.dumps({"ok": True, "result": result}).encode())


def error(code: int, description: str, **parameters: Any) -> HttpResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return HttpResponse(code, {"Content-Type": "application/json"}, json.dumps(body).encode())


def bot_user() -> dict[str, Any]:
    return {"id": BOT_ID, "is_bot": True, "first_name": "Membergate", "username": BOT_USERNAME,
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}


def human(user_id: int, first_name: str = "Ana") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name}


def admin_member(user: Mapping[str, Any], **rights: bool) -> dict[str, Any]:
    """A ChatMemberAdministrator with the rights Membergate needs, overridable per right."""
    base = {name: False for name in (
        "can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
        "can_promote_members", "can_change_info", "can_post_stories", "can_edit_stories", "can_delete_stories")}
    base |= {"can_manage_chat": True, "can_invite_users": True, "can_restrict_members": True}
    return {"status": "administrator", "user": dict(user), **base, **rights}


class FakeTelegramTransport:
    """An HttpTransport answering like the Bot API: scripted answers first, then plain successes.

    Every request is checked against the spec (when given): URL shape, method, parameters, types;
    every default answer is checked against the method's return type, so the fake cannot drift."""

    def __init__(self, spec: TelegramSpec | None, *, api_base: str = API_BASE, bot_token: str = BOT_TOKEN):
        self.spec = spec
        self.api_base = api_base.rstrip("/")
        self.bot_token = bot_token
        self.calls: list[TelegramCall] = []
        self.chat_members: dict[tuple[int | str, int], dict[str, Any]] = {}
        self._script: list[tuple[str | None, HttpResponse]] = []
        self._ids = itertools.count(1)

    def enqueue(self, response: HttpResponse, *, method: str | None = None) -> None:
        self._script.append((method, response))

    def calls_to(self, method: str) -> list[TelegramCall]:
        return [call for call in self.calls if call.method == method]

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float) -> HttpResponse:
        prefix = f"{self.api_base}/bot{self.bot_token}/"
        if not url.startswith(prefix):
            raise SpecViolation(f"{url}: not {{base}}/bot{{token}}/{{method}} with the configured token")
        api_method = url[len(prefix):]
        if method != "POST":
            raise SpecViolation(f"{api_method}: sent with {method}; Membergate sends JSON POSTs")
        headers = Headers(headers)
        if headers.get("Content-Type") != "application/json":
            raise SpecViolation(f"{api_method}: Content-Type must be application/json")
        params = json.loads(body) if body else {}
        if not isinstance(params, dict):
            raise SpecViolation(f"{api_method}: the body must be a JSON object")
        if self.spec is not None:
            self.spec.check_call(api_method, params)
        self.calls.append(TelegramCall(api_method, params, url, headers))
        for index, (want, response) in enumerate(self._script):
            if want in (None, api_method):
                del self._script[index]
                return response
        result = self._answer(api_method, params)
        if self.spec is not None:
            returns = self.spec.returns(api_method)
            if returns and returns[0] not in ("Boolean", "True", "Integer", "String"):
                self.spec._check_value(result, returns, f"{api_method} answer")
        return ok(result)

    def _answer(self, method: str, params: Mapping[str, Any]) -> Any:
        if method == "getMe":
            return bot_user()
        if method == "sendMessage":
            chat_id = params["chat_id"]
            chat = {"id": chat_id, "type": "private"} if isinstance(chat_id, int) and chat_id > 0 else \
                {"id": chat_id if isinstance(chat_id, int) else -1000000000001, "type": "supergroup", "title": "Club"}
            return {"message_id": next(self._ids), "date": 1_790_000_000, "chat": chat, "text": params["text"]}
        if method == "createChatInviteLink":
            link = {"invite_link": f"https://t.me/+fakeLink{next(self._ids)}", "creator": bot_user(),
                    "creates_join_request": bool(params.get("creates_join_request")), "is_primary": False, "is_revoked": False}
            for name in ("name", "expire_date"):
                if name in params:
                    link[name] = params[name]
            return link
        if method == "revokeChatInviteLink":
            return {"invite_link": params["invite_link"], "creator": bot_user(), "creates_join_request": True,
                    "is_primary": False, "is_revoked": True}
        if method == "getChatMember":
            key = (params["chat_id"], params["user_id"])
            if key in self.chat_members:
                return self.chat_members[key]
            if params["user_id"] == BOT_ID:
                return admin_member(bot_user())
            return {"status": "left", "user": human(params["user_id"])}
        if method == "getChat":
            return {"id": params["chat_id"], "type": "supergroup", "title": "Club", "accent_color_id": 0,
                    "max_reaction_count": 11, "accepted_gift_types": {
                        "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                        "premium_subscription": False, "gifts_from_channels": False}}
        return True


# --- Update builders (shapes as the Bot API describes them) ----------------------------------


class _Updates:
    def __init__(self) -> None:
        self._ids = itertools.count(500_000_001)

    def start(self, user_id: int, token: str | None, *, username: str | None = None, language_code: str | None = None) -> dict:
        sender = human(user_id)
        if username:
            sender["username"] = username
        if language_code:
            sender["language_code"] = language_code
        text = "/start" if token is None else f"/start {token}"
        message = {"message_id": next(self._ids) % 100_000, "from": sender, "date": 1_790_000_000,
                   "chat": {"id": user_id, "type": "private", "first_name": "Ana"}, "text": text,
                   "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}
        return {"update_id": next(self._ids), "message": message}

    def join_request(self, chat_id: int, user_id: int, invite_link: str | None, *, link_name: str | None = None,
                     chat_type: str = "supergroup") -> dict:
        request: dict[str, Any] = {"chat": {"id": chat_id, "type": chat_type, "title": "Club"}, "from": human(user_id),
                                   "user_chat_id": user_id, "date": 1_790_000_000}
        if invite_link is not None:
            link = {"invite_link": invite_link, "creator": bot_user(), "creates_join_request": True,
                    "is_primary": False, "is_revoked": False}
            if link_name is not None:
                link["name"] = link_name
            request["invite_link"] = link
        return {"update_id": next(self._ids), "chat_join_request": request}

    def member_change(self, chat_id: int, user_id: int, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict:
        change = {"chat": {"id": chat_id, "type": "supergroup", "title": "Club"}, "from": human(user_id),
                  "date": 1_790_000_000, "old_chat_member": _member(user_id, old),
                  "new_chat_member": _member(user_id, new)}
        return {"update_id": next(self._ids), "chat_member": change}

    def button(self, user_id: int, data: str) -> dict:
        query = {"id": "q-1", "from": human(user_id), "chat_instance": "ci-1", "data": data,
                 "message": {"message_id": 9, "date": 1_790_000_000, "chat": {"id": user_id, "type": "private"}}}
        return {"update_id": next(self._ids), "callback_query": query}


def _member(user_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    member = {"user": human(user_id), **fields}
    if fields.get("status") == "administrator":
        return admin_member(human(user_id))
    if fields.get("status") == "kicked":
        member.setdefault("until_date", 0)
    if fields.get("status") == "restricted":
        for name in ("can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos", "can_send_videos",
                     "can_send_video_notes", "can_send_voice_notes", "can_send_polls", "can_send_other_messages",
                     "can_add_web_page_previews", "can_react_to_messages", "can_edit_tag", "can_change_info",
                     "can_invite_users", "can_pin_messages", "can_manage_topics"):
            member.setdefault(name, False)
        member.setdefault("until_date", 0)
    return member


updates = _Updates()
