"""Discord test doubles: an in-memory guild behind a fake HttpTransport, and a spec-checking variant."""

from __future__ import annotations

import base64
import itertools
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from membergate.adapters.http import Headers, HttpResponse

from .specs import missing_spec, specs_dir

API_BASE = "https://discord.com/api/v10"
# enforce_nonce: "the nonce will be checked for uniqueness in the past few minutes" (Discord docs,
# Create Message). The stand-in forgets after five, so a retry later than that can post twice.
NONCE_WINDOW = 300.0
DISCORD_EPOCH_MS = 1_420_070_400_000
BOT_TOKEN = "fake-bot-token"
CLIENT_ID = "111111111111111111"
CLIENT_SECRET = "fake-client-secret"
BOT_PERMISSIONS = frozenset({"MANAGE_ROLES", "KICK_MEMBERS", "CREATE_INSTANT_INVITE"})
BOT_USER_ID = "222222222222222222"
BOT_ROLE_ID = "333333333333333333"
_PERMISSION_BITS = {"CREATE_INSTANT_INVITE": 1 << 0, "KICK_MEMBERS": 1 << 1, "ADMINISTRATOR": 1 << 3, "MANAGE_ROLES": 1 << 28}

_SPEC_URI = "urn:membergate:discord-openapi"
_METHODS = ("get", "put", "post", "patch", "delete")


class SpecViolation(AssertionError):
    """A request Discord's published API description does not allow."""


class FakeClock:
    """monotonic() and sleep() for the connector: sleeping only moves time forward and is recorded."""

    def __init__(self, start: float = 1_000.0):
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    url: str
    path: str
    headers: Headers
    body: bytes | None

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs((self.body or b"").decode(), keep_blank_values=True)


@dataclass
class FakeGuild:
    id: str
    roles: set[str]
    members: dict[str, set[str]] = field(default_factory=dict)
    bot_permissions: set[str] = field(default_factory=lambda: set(BOT_PERMISSIONS))
    # Roles placed above the bot's highest role: the bot cannot give or take them.
    roles_above_bot: set[str] = field(default_factory=set)
    audit_log: list[tuple[str, str]] = field(default_factory=list)
    bot_present: bool = True


@dataclass
class FakeUser:
    id: str
    dms_open: bool = True
    at_guild_limit: bool = False


def _json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode())


def discord_error(status: int, code: int, message: str = "error", headers: Mapping[str, str] | None = None) -> HttpResponse:
    return _json_response(status, {"code": code, "message": message}, headers)


def rate_limited(retry_after: float, *, scope: str = "user", is_global: bool = False, bucket: str = "abc") -> HttpResponse:
    headers = {"X-RateLimit-Scope": scope, "Retry-After": str(int(retry_after) + 1)}
    if not is_global:
        headers |= {"X-RateLimit-Bucket": bucket, "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": str(retry_after)}
    else:
        headers["X-RateLimit-Global"] = "true"
    body = {"code": 0, "message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
    return _json_response(429, body, headers)


class FakeDiscordTransport:
    """An HttpTransport answering like Discord from a small in-memory model, or from scripted responses.

    Scripted responses (``enqueue``) are used first, in order, for requests they match."""

    def __init__(self, *, api_base: str = API_BASE, bot_token: str = BOT_TOKEN):
        self.api_base = api_base.rstrip("/")
        self.bot_token = bot_token
        self.guilds: dict[str, FakeGuild] = {}
        self.users: dict[str, FakeUser] = {}
        self.access_tokens: dict[str, str] = {}  # OAuth2 access token -> user id
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> user id
        self.codes: dict[str, tuple[str, str]] = {}  # authorization code -> (user id, redirect uri)
        self.dm_channels: dict[str, str] = {}  # channel id -> recipient user id
        # Server text channels the bot may post in (the creator's alert channel) -> what was posted.
        self.text_channels: dict[str, list[str]] = {}
        # (channel, nonce) -> (message id, when): enforce_nonce only looks back NONCE_WINDOW seconds.
        self.nonces: dict[tuple[str, str], tuple[str, float]] = {}
        # The stand-in's clock (unix seconds): nonce memory and message ids (snowflakes) follow it.
        self.clock: Callable[[], float] = lambda: 1_800_000_000.0
        self.messages: dict[str, list[dict[str, Any]]] = {}  # DM channel id -> messages created, oldest first
        self.delivered: list[tuple[str, str]] = []  # (user id, content) of DMs that arrived
        self.requests: list[RecordedRequest] = []
        self._script: list[tuple[str | None, str | None, HttpResponse]] = []
        self._ids = itertools.count(900_000_000_000_000_001)
        # Application flags: GATEWAY_GUILD_MEMBERS_LIMITED (the Server Members intent, unverified bot).
        self.application_flags = 1 << 15

    # -- arranging ---------------------------------------------------------------------------

    def add_guild(self, guild_id: str, roles: set[str], **kwargs: Any) -> FakeGuild:
        self.guilds[guild_id] = FakeGuild(guild_id, set(roles), **kwargs)
        return self.guilds[guild_id]

    def add_user(self, user_id: str, **kwargs: Any) -> FakeUser:
        self.users[user_id] = FakeUser(user_id, **kwargs)
        return self.users[user_id]

    def authorize(self, user_id: str) -> str:
        """An OAuth2 access token with guilds.join for ``user_id``."""
        token = f"access-{user_id}-{next(self._ids)}"
        self.access_tokens[token] = user_id
        return token

    def issue_code(self, user_id: str, redirect_uri: str) -> str:
        code = f"code-{next(self._ids)}"
        self.codes[code] = (user_id, redirect_uri)
        return code

    def issue_refresh_token(self, user_id: str) -> str:
        token = f"refresh-{next(self._ids)}"
        self.refresh_tokens[token] = user_id
        return token

    def enqueue(self, response: HttpResponse, *, method: str | None = None, path: str | None = None) -> None:
        self._script.append((method, path, response))

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and re.fullmatch(path_pattern, r.path)]

    # -- HttpTransport -----------------------------------------------------------------------

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpResponse:
        if not url.startswith(self.api_base + "/"):
            raise SpecViolation(f"{method} {url}: not under the API base {self.api_base}")
        path = url[len(self.api_base) :]
        request = RecordedRequest(method, url, path, Headers(headers), body)
        self.check(request)
        self.requests.append(request)
        for index, (want_method, want_path, response) in enumerate(self._script):
            if want_method in (None, method) and want_path in (None, path.split("?")[0]):
                del self._script[index]
                return response
        response = self._answer(request)
        self.check_answer(request, response)
        return response

    def check(self, request: RecordedRequest) -> None:
        """Hook for validating requests; the plain fake accepts anything."""

    def check_answer(self, request: RecordedRequest, response: HttpResponse) -> None:
        """Hook for validating the model's own answers."""

    # -- the model ---------------------------------------------------------------------------

    def _answer(self, r: RecordedRequest) -> HttpResponse:
        path = r.path.split("?")[0]
        if path == "/oauth2/token" and r.method == "POST":
            return self._token(r)
        if path == "/users/@me" and r.method == "GET":
            return self._me(r)
        if r.headers.get("Authorization") != f"Bot {self.bot_token}":
            return discord_error(401, 0, "401: Unauthorized")
        if path == "/applications/@me" and r.method == "GET":
            return _json_response(200, spec_shaped("PrivateApplicationResponse", id=CLIENT_ID, name="Membergate",
                                                   flags=self.application_flags, bot=_user_json(BOT_USER_ID)))
        if (m := re.fullmatch(r"/guilds/(\d+)(/roles|/members)?", path)) and r.method == "GET":
            guild = self.guilds.get(m.group(1))
            if guild is None or not guild.bot_present:
                return discord_error(404, 10004, "Unknown Guild")
            if m.group(2) == "/roles":
                return _json_response(200, self._roles_json(guild))
            if m.group(2) == "/members":
                query = urllib.parse.parse_qs(r.path.partition("?")[2])
                limit, after = int(query.get("limit", ["1"])[0]), int(query.get("after", ["0"])[0])
                page = sorted((u for u in guild.members if int(u) > after), key=int)[:limit]
                return _json_response(200, [self._member_json(u, guild.members[u]) for u in page])
            return _json_response(200, spec_shaped("GuildWithCountsResponse", id=guild.id, name=f"Guild {guild.id[-4:]}",
                                                   owner_id="1" * 18, roles=self._roles_json(guild)))
        if m := re.fullmatch(r"/guilds/(\d+)/members/(\d+)", path):
            if m.group(2) == BOT_USER_ID and r.method == "GET":
                guild = self.guilds.get(m.group(1))
                if guild is None or not guild.bot_present:
                    return discord_error(404, 10004, "Unknown Guild")
                return _json_response(200, self._member_json(BOT_USER_ID, {BOT_ROLE_ID}))
            return self._member(r, *m.groups())
        if m := re.fullmatch(r"/guilds/(\d+)/members/(\d+)/roles/(\d+)", path):
            return self._member_role(r, *m.groups())
        if path == "/users/@me/channels" and r.method == "POST":
            return self._open_dm(r.json.get("recipient_id"))
        if (m := re.fullmatch(r"/channels/(\d+)/messages", path)) and r.method == "GET":
            return self._list_messages(m.group(1), urllib.parse.parse_qs(r.path.partition("?")[2]))
        if (m := re.fullmatch(r"/channels/(\d+)/messages", path)) and r.method == "POST":
            nonce = r.json.get("nonce") if r.json.get("enforce_nonce") else None
            return self._message(m.group(1), r.json.get("content", ""), nonce)
        return discord_error(404, 0, "404: Not Found")

    def _member(self, r: RecordedRequest, guild_id: str, user_id: str) -> HttpResponse:
        guild = self.guilds.get(guild_id)
        if guild is None:
            return discord_error(404, 10004, "Unknown Guild")
        if r.method == "GET":
            if user_id not in guild.members:
                return discord_error(404, 10007, "Unknown Member")
            return _json_response(200, self._member_json(user_id, guild.members[user_id]))
        if r.method == "DELETE":
            if "KICK_MEMBERS" not in guild.bot_permissions:
                return discord_error(403, 50013, "Missing Permissions")
            if guild.members.pop(user_id, None) is None:
                return discord_error(404, 10007, "Unknown Member")
            guild.audit_log.append(("kick", urllib.parse.unquote(r.headers.get("X-Audit-Log-Reason", ""))))
            return HttpResponse(204)
        # PUT: add with the member's OAuth2 token.
        payload = r.json or {}
        if self.access_tokens.get(payload.get("access_token", "")) != user_id:
            return discord_error(403, 50025, "Invalid OAuth2 access token")
        if user_id in guild.members:
            return HttpResponse(204)
        if "CREATE_INSTANT_INVITE" not in guild.bot_permissions:
            return discord_error(403, 50013, "Missing Permissions")
        if self.users.get(user_id, FakeUser(user_id)).at_guild_limit:
            return discord_error(400, 30001, "Maximum number of guilds reached")
        roles = set(payload.get("roles") or [])
        if roles - guild.roles:
            return discord_error(404, 10011, "Unknown Role")
        if roles and ("MANAGE_ROLES" not in guild.bot_permissions or roles & guild.roles_above_bot):
            return discord_error(403, 50013, "Missing Permissions")
        guild.members[user_id] = roles
        guild.audit_log.append(("add", urllib.parse.unquote(r.headers.get("X-Audit-Log-Reason", ""))))
        return _json_response(201, self._member_json(user_id, roles))

    def _member_role(self, r: RecordedRequest, guild_id: str, user_id: str, role_id: str) -> HttpResponse:
        guild = self.guilds.get(guild_id)
        if guild is None:
            return discord_error(404, 10004, "Unknown Guild")
        if user_id not in guild.members:
            return discord_error(404, 10007, "Unknown Member")
        if role_id not in guild.roles:
            return discord_error(404, 10011, "Unknown Role")
        if "MANAGE_ROLES" not in guild.bot_permissions or role_id in guild.roles_above_bot:
            return discord_error(403, 50013, "Missing Permissions")
        if r.method == "PUT":
            guild.members[user_id].add(role_id)
        else:
            guild.members[user_id].discard(role_id)
        reason = urllib.parse.unquote(r.headers.get("X-Audit-Log-Reason", ""))
        guild.audit_log.append((f"{r.method.lower()}_role:{role_id}", reason))
        return HttpResponse(204)

    def _open_dm(self, recipient_id: str | None) -> HttpResponse:
        if recipient_id not in self.users:
            return discord_error(404, 10013, "Unknown User")
        channel_id = next((c for c, u in self.dm_channels.items() if u == recipient_id), None)
        if channel_id is None:
            channel_id = str(next(self._ids))
            self.dm_channels[channel_id] = recipient_id
        return _json_response(200, {"id": channel_id, "type": 1, "flags": 0, "recipients": [_user_json(recipient_id)]})

    def _recent_nonce(self, channel_id: str, nonce: str | None) -> str | None:
        """enforce_nonce: the message created with this nonce within NONCE_WINDOW (by the stand-in's clock)."""
        seen = self.nonces.get((channel_id, nonce)) if nonce is not None else None
        return seen[0] if seen is not None and self.clock() - seen[1] < NONCE_WINDOW else None

    def _message_id(self) -> str:
        """A snowflake of the stand-in's clock (so GET ?after= works as on Discord), unique by a counter."""
        return str(((int(self.clock() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF))

    def _message(self, channel_id: str, content: str, nonce: str | None = None) -> HttpResponse:
        if channel_id in self.text_channels:
            if (known := self._recent_nonce(channel_id, nonce)) is not None:
                return _json_response(200, _message_json(known, channel_id, content))
            message_id = self._message_id()
            if nonce is not None:
                self.nonces[(channel_id, nonce)] = (message_id, self.clock())
            self.text_channels[channel_id].append(content)
            return _json_response(200, _message_json(message_id, channel_id, content))
        user_id = self.dm_channels.get(channel_id)
        if user_id is None:
            return discord_error(404, 10003, "Unknown Channel")
        if not self.users[user_id].dms_open:
            return discord_error(403, 50007, "Cannot send messages to this user")
        # enforce_nonce: a nonce seen recently returns the message already created (docs: Create Message).
        if (known := self._recent_nonce(channel_id, nonce)) is not None:
            return _json_response(200, _message_json(known, channel_id, content))
        message_id = self._message_id()
        if nonce is not None:
            self.nonces[(channel_id, nonce)] = (message_id, self.clock())
        self.delivered.append((user_id, content))
        # Read back later without its nonce: Discord does not promise to return it on GET.
        self.messages.setdefault(channel_id, []).append(_message_json(message_id, channel_id, content))
        return _json_response(200, _message_json(message_id, channel_id, content))

    def _list_messages(self, channel_id: str, query: dict[str, list[str]]) -> HttpResponse:
        """Get Channel Messages: newest first, ``after`` a snowflake, at most ``limit`` (default 50)."""
        if channel_id not in self.dm_channels and channel_id not in self.text_channels:
            return discord_error(404, 10003, "Unknown Channel")
        after, limit = int(query.get("after", ["0"])[0]), int(query.get("limit", ["50"])[0])
        found = [m for m in self.messages.get(channel_id, []) if int(m["id"]) > after]
        return _json_response(200, list(reversed(found))[:limit])

    def _token(self, r: RecordedRequest) -> HttpResponse:
        client_id, secret = _basic_credentials(r.headers.get("Authorization", ""))
        form = {k: v[0] for k, v in r.form.items()}
        client_id = client_id or form.get("client_id")
        secret = secret or form.get("client_secret")
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            return _json_response(401, {"error": "invalid_client"})
        if form.get("grant_type") == "authorization_code":
            user_id, redirect_uri = self.codes.pop(form.get("code", ""), (None, None))
            if user_id is None or redirect_uri != form.get("redirect_uri"):
                return _json_response(400, {"error": "invalid_grant", "error_description": "Invalid code"})
        else:
            user_id = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if user_id is None:
                return _json_response(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
        payload = {
            "access_token": self.authorize(user_id),
            "token_type": "Bearer",
            "expires_in": 604_800,
            "refresh_token": self.issue_refresh_token(user_id),
            "scope": "identify guilds.join",
        }
        return _json_response(200, payload)

    def _me(self, r: RecordedRequest) -> HttpResponse:
        auth = r.headers.get("Authorization", "")
        user_id = self.access_tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if user_id is None:
            return discord_error(401, 0, "401: Unauthorized")
        return _json_response(200, _user_json(user_id) | {"mfa_enabled": False, "locale": "en-US"})

    @staticmethod
    def _roles_json(guild: FakeGuild) -> list[dict[str, Any]]:
        """@everyone at 0, the bot's role in the middle, the guild's roles below or above it."""
        bits = sum(_PERMISSION_BITS.get(p, 0) for p in guild.bot_permissions)

        def role(role_id: str, name: str, position: int, permissions: int) -> dict[str, Any]:
            return {"id": role_id, "name": name, "color": 0, "hoist": False, "icon": None, "unicode_emoji": None,
                    "position": position, "permissions": str(permissions), "managed": role_id == BOT_ROLE_ID,
                    "mentionable": False, "flags": 0,
                    "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None}}

        listed = [role(guild.id, "@everyone", 0, 0), role(BOT_ROLE_ID, "Membergate", 50, bits)]
        for index, role_id in enumerate(sorted(guild.roles), start=1):
            above = role_id in guild.roles_above_bot
            listed.append(role(role_id, f"Role {role_id[-4:]}", 50 + index if above else index, 0))
        return listed

    @staticmethod
    def _member_json(user_id: str, roles: set[str]) -> dict[str, Any]:
        return {
            "avatar": None, "banner": None, "communication_disabled_until": None, "flags": 0,
            "joined_at": "2026-01-01T00:00:00.000000+00:00", "nick": None, "pending": False,
            "premium_since": None, "roles": sorted(roles), "user": _user_json(user_id), "mute": False, "deaf": False,
        }


def spec_shaped(schema_name: str, **values: Any) -> dict[str, Any]:
    """``values`` completed with a placeholder for every other property the spec's schema requires.

    So the fake's answers for large objects (an application, a guild) stay valid against the spec
    while naming only the fields Membergate reads."""
    spec = _load_spec()
    if spec is None:
        return dict(values)
    schemas = spec.document["components"]["schemas"]

    def placeholder(schema: dict[str, Any], depth: int = 0) -> Any:
        if "$ref" in schema:
            return placeholder(schemas[schema["$ref"].rsplit("/", 1)[-1]], depth)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                options = schema[key]
                if any(o.get("type") == "null" for o in options):
                    return None
                return placeholder(options[0], depth)
        if "allOf" in schema:
            return placeholder(schema["allOf"][0], depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            if "null" in kind:
                return None
            kind = kind[0]
        if "enum" in schema:
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        if kind == "object":
            if depth > 4:
                return {}
            return {name: placeholder(schema["properties"].get(name, {}), depth + 1) for name in schema.get("required", [])}
        if kind == "string":
            return "0" if schema.get("format") == "snowflake" or "pattern" in schema else ""
        return {"integer": schema.get("minimum", 0), "number": 0, "boolean": False, "array": [], "null": None}.get(kind, None)

    shaped = placeholder(schemas[schema_name])
    shaped.update(values)
    return shaped


def _user_json(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": f"user{user_id[-4:]}", "avatar": None, "discriminator": "0",
            "public_flags": 0, "flags": 0, "global_name": None, "primary_guild": None}


def _message_json(message_id: str, channel_id: str, content: str) -> dict[str, Any]:
    return {
        "type": 0, "content": content, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
        "timestamp": "2026-01-01T00:00:00.000000+00:00", "edited_timestamp": None, "flags": 0, "components": [],
        "id": message_id, "channel_id": channel_id, "author": _user_json("222222222222222222"),
        "pinned": False, "mention_everyone": False, "tts": False,
    }


def _basic_credentials(authorization: str) -> tuple[str | None, str | None]:
    if not authorization.startswith("Basic "):
        return None, None
    decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
    client_id, _, secret = decoded.partition(":")
    return urllib.parse.unquote(client_id), urllib.parse.unquote(secret)


# --- the spec -------------------------------------------------------------------------------


@cache
def _load_spec() -> DiscordSpec | None:
    path = specs_dir() / "discord" / "openapi.json"
    if not path.exists():
        return None
    return DiscordSpec(json.loads(path.read_text()))


def discord_spec() -> DiscordSpec:
    """The parsed Discord OpenAPI spec; skips the calling test when it is not on this machine."""
    spec = _load_spec()
    if spec is None:
        missing_spec(f"Discord OpenAPI spec not found at {specs_dir() / 'discord' / 'openapi.json'} (set MEMBERGATE_SPECS_DIR)")
    return spec


class DiscordSpec:
    """Checks requests (and answers) against the OpenAPI 3.1 description (JSON Schema 2020-12)."""

    def __init__(self, spec: dict[str, Any]):
        self._spec = spec
        self._registry: Registry = Registry().with_resource(_SPEC_URI, DRAFT202012.create_resource(spec))
        self._validators: dict[str, Draft202012Validator] = {}
        self._schemes = spec.get("components", {}).get("securitySchemes", {})
        templates = []
        for template in spec["paths"]:
            parts = re.split(r"\{([^}]+)\}", template)
            names = parts[1::2]
            regex = "".join(re.escape(p) if i % 2 == 0 else "([^/]+)" for i, p in enumerate(parts))
            templates.append((len(names), -len(template), template, re.compile(regex), names))
        # Literal segments win over parameters: /users/@me before /users/{user_id}.
        self._templates = sorted(templates)

    @property
    def document(self) -> dict[str, Any]:
        return self._spec

    def validate_request(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> str:
        """Return the operationId, or raise SpecViolation saying what is wrong."""
        where = f"{method} {path}"
        bare, _, query = path.partition("?")
        template, params = self._match(method, bare)
        item = self._spec["paths"][template]
        operation = item[method.lower()]
        declared = self._parameters(template, method, item, operation)
        for name, (param, pointer) in declared.get("path", {}).items():
            self._check_value(pointer, param, params[name], f"{where}: path parameter {name!r}")
        if missing := set(params) - set(declared.get("path", {})):
            raise SpecViolation(f"{where}: path parameters {sorted(missing)} are not declared in the spec")
        self._check_query(declared.get("query", {}), urllib.parse.parse_qs(query, keep_blank_values=True), where)
        self._check_security(operation, headers, where)
        self._check_body(template, method, operation, headers, body, where)
        return operation.get("operationId", template)

    def validate_response(self, method: str, path: str, status: int, body: bytes) -> None:
        template, _ = self._match(method, path.split("?")[0])
        responses = self._spec["paths"][template][method.lower()].get("responses", {})
        spec_response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        if spec_response is None:
            raise SpecViolation(f"{method} {path}: the spec documents no {status} answer")
        schema = self._deref(spec_response).get("content", {}).get("application/json", {}).get("schema")
        if schema is not None and body:
            pointer = self._pointer_to(template, method, status, responses)
            self._validate(pointer, json.loads(body), f"{method} {path}: {status} answer")

    # -- matching ----------------------------------------------------------------------------

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        candidates = []
        for _, _, template, regex, names in self._templates:
            found = regex.fullmatch(path)
            if found:
                candidates.append(template)
                if method.lower() in self._spec["paths"][template]:
                    return template, {n: urllib.parse.unquote(v) for n, v in zip(names, found.groups(), strict=True)}
        if candidates:
            allowed = sorted({m.upper() for t in candidates for m in self._spec["paths"][t] if m in _METHODS})
            raise SpecViolation(f"{method} {path}: method not in the spec for {candidates[0]} (allowed: {', '.join(allowed)})")
        raise SpecViolation(f"{method} {path}: no path in the Discord spec matches")

    # -- checks ------------------------------------------------------------------------------

    def _parameters(
        self, template: str, method: str, item: dict[str, Any], operation: dict[str, Any]
    ) -> dict[str, dict[str, tuple[dict[str, Any], str]]]:
        """Parameters by location and name, each with a JSON pointer to its schema (operation wins)."""
        found: dict[str, dict[str, tuple[dict[str, Any], str]]] = {}
        for owner, nodes in ((["paths", _escape(template)], item), (["paths", _escape(template), method.lower()], operation)):
            for index, node in enumerate(nodes.get("parameters", [])):
                pointer = node["$ref"] if "$ref" in node else "/".join(["#", *owner, "parameters", str(index)])
                param = self._deref(node)
                found.setdefault(param["in"], {})[param["name"]] = (param, pointer + "/schema")
        return found

    def _check_value(self, pointer: str, param: dict[str, Any], value: str, what: str) -> None:
        instance: Any = value
        if self._deref(param.get("schema", {})).get("type") == "integer" and value.lstrip("-").isdigit():
            instance = int(value)
        self._validate(pointer, instance, what)

    def _check_query(self, known: dict[str, tuple[dict[str, Any], str]], query: dict[str, list[str]], where: str) -> None:
        for name, values in query.items():
            if name not in known:
                raise SpecViolation(f"{where}: query parameter {name!r} is not in the spec")
            for value in values:
                self._check_value(known[name][1], known[name][0], value, f"{where}: query parameter {name!r}")
        for name, (param, _) in known.items():
            if param.get("required") and name not in query:
                raise SpecViolation(f"{where}: required query parameter {name!r} is missing")

    def _check_security(self, operation: dict[str, Any], headers: Mapping[str, str], where: str) -> None:
        requirements = operation.get("security")
        if not requirements:
            return
        authorization = headers.get("Authorization", "")
        for requirement in requirements:
            if all(self._satisfies(scheme, authorization, headers) for scheme in requirement):
                return
        names = " or ".join("+".join(r) or "none" for r in requirements)
        raise SpecViolation(f"{where}: credentials do not satisfy the spec's security ({names})")

    def _satisfies(self, scheme_name: str, authorization: str, headers: Mapping[str, str]) -> bool:
        scheme = self._schemes.get(scheme_name, {})
        if scheme.get("type") == "oauth2":
            return authorization.startswith("Bearer ") and len(authorization) > len("Bearer ")
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            value = headers.get(scheme["name"], "")
            # Bot tokens go as "Bot <token>" (docs: reference#authentication); the spec names only the header.
            return value.startswith("Bot ") and len(value) > len("Bot ") if scheme_name == "BotToken" else bool(value)
        return False

    def _check_body(
        self, template: str, method: str, operation: dict[str, Any], headers: Mapping[str, str], body: bytes | None, where: str
    ) -> None:
        request_body = self._deref(operation["requestBody"]) if "requestBody" in operation else None
        if request_body is None:
            if body:
                raise SpecViolation(f"{where}: the spec defines no request body, but one was sent")
            return
        if not body:
            if request_body.get("required"):
                raise SpecViolation(f"{where}: the spec requires a request body")
            return
        content_type = headers.get("Content-Type", "").split(";")[0].strip()
        if content_type not in request_body.get("content", {}):
            allowed = ", ".join(request_body.get("content", {}))
            raise SpecViolation(f"{where}: Content-Type {content_type!r} not accepted (spec: {allowed})")
        if content_type != "application/json":
            raise SpecViolation(f"{where}: this checker validates JSON bodies only, got {content_type}")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise SpecViolation(f"{where}: body is not JSON ({exc})") from None
        owner = operation["requestBody"].get("$ref") or f"#/paths/{_escape(template)}/{method.lower()}/requestBody"
        pointer = owner + "/content/application~1json/schema"
        self._validate(pointer, payload, f"{where}: request body")

    # -- JSON Schema plumbing ----------------------------------------------------------------

    def _validate(self, pointer: str, instance: Any, what: str) -> None:
        validator = self._validators.get(pointer)
        if validator is None:
            ref = _SPEC_URI + urllib.parse.quote(pointer, safe="#/~")
            validator = self._validators[pointer] = Draft202012Validator({"$ref": ref}, registry=self._registry)
        errors = list(validator.iter_errors(instance))
        if errors:
            error = best_match(errors)
            raise SpecViolation(f"{what} does not match the spec at {error.json_path}: {error.message}")

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self._spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _pointer_to(self, template: str, method: str, status: int, responses: dict[str, Any]) -> str:
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        base = "/".join(["#", "paths", _escape(template), method.lower(), "responses", key])
        if "$ref" in responses[key]:
            base = responses[key]["$ref"]
        return base + "/content/application~1json/schema"


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


# --- the spec-checking transport ------------------------------------------------------------

_USER_AGENT = re.compile(r"^DiscordBot \((\S+), (\S+)\)")
_URL_ENCODED = re.compile(r"^(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})+$")
_TOKEN_FIELDS = {"grant_type", "code", "redirect_uri", "refresh_token", "client_id", "client_secret", "code_verifier"}


class SpecCheckingDiscordTransport(FakeDiscordTransport):
    """FakeDiscordTransport that fails the test on any request Discord's spec or docs do not allow.

    Its own model answers are checked against the spec too, so the fake cannot drift from Discord."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec = discord_spec()
        self.operations: list[str] = []

    def check(self, request: RecordedRequest) -> None:
        if request.path.split("?")[0] == "/oauth2/token":
            self.operations.append(check_token_request(request))
            return
        self.operations.append(self.spec.validate_request(request.method, request.path, request.headers, request.body))
        check_documented_headers(request)

    def check_answer(self, request: RecordedRequest, response: HttpResponse) -> None:
        if request.path.split("?")[0] != "/oauth2/token":
            self.spec.validate_response(request.method, request.path, response.status, response.body)


def check_documented_headers(request: RecordedRequest) -> None:
    """Rules from Discord's docs that the OpenAPI file does not state (it declares no header parameters)."""
    where = f"{request.method} {request.path}"
    # docs: reference#user-agent
    if not _USER_AGENT.match(request.headers.get("User-Agent", "")):
        raise SpecViolation(f"{where}: User-Agent must be 'DiscordBot ($url, $versionNumber)'")
    # docs: resources/audit-log: 1-512 URL-encoded UTF-8 characters.
    reason = request.headers.get("X-Audit-Log-Reason")
    if reason is not None:
        if not _URL_ENCODED.match(reason):
            raise SpecViolation(f"{where}: X-Audit-Log-Reason must be URL-encoded, got {reason!r}")
        if not 1 <= len(urllib.parse.unquote(reason)) <= 512:
            raise SpecViolation(f"{where}: X-Audit-Log-Reason must be 1-512 characters")


def check_token_request(request: RecordedRequest) -> str:
    """The OAuth2 token endpoint is not in the OpenAPI file: check the documented form fields instead
    (docs: topics/oauth2#authorization-code-grant, RFC 6749 §2.3 and §4.1.3 / §6)."""
    where = f"{request.method} {request.path}"
    if request.method != "POST":
        raise SpecViolation(f"{where}: the token endpoint takes POST")
    if request.headers.get("Content-Type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise SpecViolation(f"{where}: the token endpoint takes application/x-www-form-urlencoded")
    form = request.form
    if unknown := set(form) - _TOKEN_FIELDS:
        raise SpecViolation(f"{where}: unknown form fields {sorted(unknown)}")
    if repeated := [name for name, values in form.items() if len(values) > 1]:
        raise SpecViolation(f"{where}: repeated form fields {repeated}")
    fields = {name: values[0] for name, values in form.items()}
    required = {"authorization_code": {"code", "redirect_uri"}, "refresh_token": {"refresh_token"}}
    grant = fields.get("grant_type", "")
    if grant not in required:
        raise SpecViolation(f"{where}: grant_type must be authorization_code or refresh_token, got {grant!r}")
    if missing := required[grant] - {k for k, v in fields.items() if v}:
        raise SpecViolation(f"{where}: {grant} needs {sorted(missing)}")
    basic = request.headers.get("Authorization", "").startswith("Basic ")
    posted = "client_secret" in fields
    if basic == posted:
        raise SpecViolation(f"{where}: authenticate the client exactly one way (HTTP Basic or client_id/client_secret)")
    if posted and not fields.get("client_id"):
        raise SpecViolation(f"{where}: client_secret in the form needs client_id")
    return f"oauth2_token:{grant}"
