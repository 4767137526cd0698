"""A local Discord stand-in: OAuth2 authorize page, the REST routes Membergate calls, and a call log.

Membergate's real Discord connector talks to it over HTTP (DISCORD_API_BASE points here under
`make dev`), so what runs locally is the code that runs against discord.com. Every call is
recorded and listed at GET /calls; guild state at GET /guilds/<id>; DMs at GET /dms.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
import time
from html import escape
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

API = "/api/v10"
APPLICATION_ID = "100000000000000001"
BOT_USER_ID = "100000000000000002"
BOT_ROLE_ID = "100000000000000003"
# The permissions Membergate's install link asks for: Create Instant Invite, Kick Members, Manage Roles.
BOT_PERMISSIONS = (1 << 0) | (1 << 1) | (1 << 28)
GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15


def snowflake_for(username: str) -> str:
    """A stable, Discord-looking id for a local username (17-19 digits)."""
    digest = int(hashlib.sha256(username.encode()).hexdigest(), 16)
    return str(100_000_000_000_000_000 + digest % 800_000_000_000_000_000)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})


def _error(status: int, code: int, message: str) -> Response:
    return _json(status, {"code": code, "message": message})


class DiscordStandIn:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.users: dict[str, str] = {}  # id -> username
        self.guild_members: dict[str, dict[str, set[str]]] = {}  # guild -> user -> roles
        # guild -> user -> role -> wall-clock time the role was last given (benchmarks time
        # payment -> role from it without polling the guild at a high rate)
        self.granted_at: dict[str, dict[str, dict[str, float]]] = {}
        self.dm_channels: dict[str, str] = {}  # channel id -> user id
        self.nonces: dict[tuple[str, str], str] = {}  # (channel, nonce) -> message id
        self.dms: list[dict[str, Any]] = []
        # Server text channels the bot may post in (the creator's alert channel): id -> messages.
        self.text_channels: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[dict[str, Any]] = []
        self.closed_dms: set[str] = set()
        self.channels: dict[str, str] = {}  # guild text channel id -> guild id (POST /guilds/<id>/channels)
        self.posts: list[dict[str, Any]] = []  # messages the bot posted in guild channels
        self.codes: dict[str, str] = {}
        self.tokens: dict[str, str] = {}  # access or refresh token -> user id
        self._ids = itertools.count(1)
        # Per guild, what the bot finds there (POST /guilds/<id>/setup changes it): whether it was
        # invited, its role's position and permissions, and the server's other roles.
        self.setups: dict[str, dict[str, Any]] = {}
        self.application_flags = GATEWAY_GUILD_MEMBERS_LIMITED
        self.url_map = Map(
            [
                Rule("/oauth2/authorize", endpoint="authorize", methods=["GET", "POST"]),
                Rule(f"{API}/oauth2/token", endpoint="token", methods=["POST"]),
                Rule(f"{API}/users/@me", endpoint="me", methods=["GET"]),
                Rule(f"{API}/users/@me/channels", endpoint="open_dm", methods=["POST"]),
                Rule(f"{API}/channels/<channel_id>/messages", endpoint="message", methods=["POST"]),
                Rule(f"{API}/channels/<channel_id>/messages", endpoint="read_messages", methods=["GET"]),
                Rule(f"{API}/applications/@me", endpoint="application", methods=["GET"]),
                Rule(f"{API}/guilds/<guild_id>", endpoint="api_guild", methods=["GET"]),
                Rule(f"{API}/guilds/<guild_id>/roles", endpoint="roles", methods=["GET"]),
                Rule(f"{API}/guilds/<guild_id>/members", endpoint="members", methods=["GET"]),
                Rule(f"{API}/guilds/<guild_id>/members/<user_id>", endpoint="member", methods=["GET", "PUT", "DELETE"]),
                Rule(f"{API}/guilds/<guild_id>/members/<user_id>/roles/<role_id>", endpoint="role", methods=["PUT", "DELETE"]),
                Rule("/calls", endpoint="list_calls", methods=["GET"]),
                Rule("/dms", endpoint="list_dms", methods=["GET"]),
                Rule("/guilds/<guild_id>", endpoint="guild", methods=["GET"]),
                Rule("/guilds/<guild_id>/setup", endpoint="setup", methods=["POST"]),
                Rule("/guilds/<guild_id>/free_members", endpoint="free_member", methods=["POST"]),
                Rule("/guilds/<guild_id>/channels", endpoint="add_channel", methods=["POST"]),
                Rule("/posts", endpoint="list_posts", methods=["GET"]),
                Rule("/application", endpoint="application_setup", methods=["POST"]),
                Rule("/users/<user_id>/dms", endpoint="dm_setting", methods=["POST"]),
                Rule("/channels", endpoint="add_text_channel", methods=["POST"]),
                Rule("/channels/<channel_id>/messages", endpoint="channel_messages", methods=["GET"]),
            ]
        )

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
            with self._lock:
                response = getattr(self, f"on_{endpoint}")(request, **args)
        except NotFound:
            response = _error(404, 0, "404: Not Found")
        except HTTPException as exc:
            response = _error(exc.code or 400, 0, exc.description or "error")
        if request.path.startswith(API):
            with self._lock:
                self.calls.append(
                    {
                        "at": time.time(),
                        "method": request.method,
                        "path": request.path[len(API):],
                        "status": response.status_code,
                        "body": request.get_json(silent=True) if request.data else None,
                    }
                )
            response.headers.update(
                {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9", "X-RateLimit-Reset-After": "1.0",
                 "X-RateLimit-Bucket": hashlib.md5(request.path.encode()).hexdigest()[:12]}
            )
        return response(environ, start_response)

    # --- OAuth2 -----------------------------------------------------------------------------

    def on_authorize(self, request: Request) -> Response:
        params = request.values
        redirect_uri, state = params.get("redirect_uri", ""), params.get("state", "")
        if request.method == "GET":
            hidden = "".join(
                f"<input type=hidden name='{escape(k)}' value='{escape(v)}'>" for k, v in params.items() if k != "username"
            )
            page = (
                "<!doctype html><meta charset=utf-8><title>Discord (local stand-in)</title>"
                "<h1>Authorize Membergate</h1><p>Local stand-in for discord.com: pick the account to connect.</p>"
                f"<form method=post>{hidden}<label>Username <input name=username value='member'></label> "
                "<button name=decision value=allow>Authorize</button> "
                "<button name=decision value=deny>Cancel</button></form>"
            )
            return Response(page, mimetype="text/html")
        if params.get("decision") == "deny":
            return Response(status=302, headers={"Location": f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state})}"})
        username = params.get("username") or "member"
        user_id = params.get("user_id") or snowflake_for(username)
        self.users[user_id] = username
        code = secrets.token_urlsafe(12)
        self.codes[code] = user_id
        return Response(status=302, headers={"Location": f"{redirect_uri}?{urlencode({'code': code, 'state': state})}"})

    def on_token(self, request: Request) -> Response:
        form = request.form
        grant = form.get("grant_type")
        if grant == "authorization_code":
            user_id = self.codes.pop(form.get("code", ""), None)
        elif grant == "refresh_token":
            user_id = self.tokens.get(form.get("refresh_token", ""))
        else:
            return _json(400, {"error": "unsupported_grant_type"})
        if user_id is None:
            return _json(400, {"error": "invalid_grant", "error_description": "Invalid \"code\" in request."})
        access, refresh = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        self.tokens[access] = user_id
        self.tokens[refresh] = user_id
        return _json(200, {"access_token": access, "token_type": "Bearer", "expires_in": 604800,
                           "refresh_token": refresh, "scope": "identify guilds.join"})

    def on_me(self, request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        user_id = self.tokens.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None
        if user_id is None:
            return _error(401, 0, "401: Unauthorized")
        return _json(200, {"id": user_id, "username": self.users.get(user_id, "member"), "discriminator": "0",
                           "global_name": None, "avatar": None})

    # --- bot routes -------------------------------------------------------------------------

    def _bot(self, request: Request) -> Response | None:
        if not request.headers.get("Authorization", "").startswith("Bot "):
            return _error(401, 0, "401: Unauthorized")
        return None

    def _setup(self, guild_id: str) -> dict[str, Any]:
        return self.setups.setdefault(
            guild_id, {"bot_present": True, "bot_position": 10, "bot_permissions": BOT_PERMISSIONS, "roles": {}}
        )

    def on_application(self, request: Request) -> Response:
        if (denied := self._bot(request)) is not None:
            return denied
        bot = {"id": BOT_USER_ID, "username": "Membergate", "discriminator": "0", "avatar": None, "bot": True}
        return _json(200, {"id": APPLICATION_ID, "name": "Membergate (local)", "flags": self.application_flags, "bot": bot})

    def _guild_or_missing(self, request: Request, guild_id: str) -> Response | None:
        if (denied := self._bot(request)) is not None:
            return denied
        if not self._setup(guild_id)["bot_present"]:
            return _error(404, 10004, "Unknown Guild")
        return None

    def on_api_guild(self, request: Request, guild_id: str) -> Response:
        if (missing := self._guild_or_missing(request, guild_id)) is not None:
            return missing
        return _json(200, {"id": guild_id, "name": f"Local server {guild_id[-4:]}", "owner_id": "100000000000000009",
                           "roles": self._roles_json(guild_id)})

    def on_roles(self, request: Request, guild_id: str) -> Response:
        if (missing := self._guild_or_missing(request, guild_id)) is not None:
            return missing
        return _json(200, self._roles_json(guild_id))

    def on_members(self, request: Request, guild_id: str) -> Response:
        if (missing := self._guild_or_missing(request, guild_id)) is not None:
            return missing
        if not self.application_flags & GATEWAY_GUILD_MEMBERS_LIMITED:
            return _error(403, 50001, "Missing Access")  # what Discord answers without the intent
        try:
            limit, after = int(request.args.get("limit", "1")), int(request.args.get("after", "0"))
        except ValueError:
            return _error(400, 50035, "Invalid Form Body")
        if not 1 <= limit <= 1000:
            return _error(400, 50035, "Invalid Form Body")
        members = self.guild_members.get(guild_id, {})
        page = sorted((u for u in members if u.isdigit() and int(u) > after), key=int)[:limit]
        return _json(200, [self._member_json(u, members[u]) for u in page])

    def _roles_json(self, guild_id: str) -> list[dict[str, Any]]:
        setup = self._setup(guild_id)

        def role(role_id: str, name: str, position: int, permissions: int) -> dict[str, Any]:
            return {"id": role_id, "name": name, "position": position, "permissions": str(permissions),
                    "color": 0, "hoist": False, "managed": role_id == BOT_ROLE_ID, "mentionable": False, "flags": 0}

        roles = [role(guild_id, "@everyone", 0, 0),
                 role(BOT_ROLE_ID, "Membergate", int(setup["bot_position"]), int(setup["bot_permissions"]))]
        roles += [role(rid, str(r.get("name") or rid), int(r.get("position", 1)), 0) for rid, r in setup["roles"].items()]
        return roles

    def on_setup(self, request: Request, guild_id: str) -> Response:
        """Control: {"bot_present", "bot_position", "bot_permissions", "roles": {id: {"name", "position"}}}."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _json(400, {"error": "send a JSON object"})
        setup = self._setup(guild_id)
        for key in ("bot_present", "bot_position", "bot_permissions"):
            if key in body:
                setup[key] = body[key]
        if isinstance(body.get("roles"), dict):
            setup["roles"].update({str(k): dict(v) for k, v in body["roles"].items() if isinstance(v, dict)})
        return _json(200, {"guild_id": guild_id, **setup})

    def _post(self, request: Request, channel_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        if nonce is not None and (channel_id, str(nonce)) in self.nonces:
            return _json(200, {"id": self.nonces[(channel_id, str(nonce))], "channel_id": channel_id, "type": 0})
        post = {"id": str(next(self._ids)), "channel_id": channel_id, "guild_id": self.channels[channel_id],
                "content": body.get("content", ""), "at": time.time()}
        self.posts.append(post)
        if nonce is not None:
            self.nonces[(channel_id, str(nonce))] = post["id"]
        return _json(200, {"id": post["id"], "channel_id": channel_id, "content": post["content"], "type": 0})

    def on_add_channel(self, request: Request, guild_id: str) -> Response:
        """Control: {"channel_id"} adds a text channel the bot may post in (a migration's announcement)."""
        body = request.get_json(silent=True)
        channel_id = body.get("channel_id") if isinstance(body, dict) else None
        if not isinstance(channel_id, str) or not channel_id.isdigit():
            return _json(400, {"error": "send {\"channel_id\": \"<digits>\"}"})
        self.channels[channel_id] = guild_id
        return _json(200, {"guild_id": guild_id, "channel_id": channel_id})

    def on_list_posts(self, request: Request) -> Response:
        return _json(200, {"posts": self.posts})

    def on_free_member(self, request: Request, guild_id: str) -> Response:
        """Control: {"username"} puts a user in the server without any role, as the members of a free
        community already are (a migration imports them); answers their id."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("username"), str) or not body["username"]:
            return _json(400, {"error": "send {\"username\": \"...\"}"})
        user_id = snowflake_for(body["username"])
        with self._lock:
            self.users[user_id] = body["username"]
            self.guild_members.setdefault(guild_id, {}).setdefault(user_id, set())
        return _json(200, {"user_id": user_id, "username": body["username"]})

    def on_application_setup(self, request: Request) -> Response:
        """Control: {"members_intent": false} turns the Server Members intent off."""
        body = request.get_json(silent=True) or {}
        self.application_flags = GATEWAY_GUILD_MEMBERS_LIMITED if body.get("members_intent", True) else 0
        return _json(200, {"flags": self.application_flags})

    def on_member(self, request: Request, guild_id: str, user_id: str) -> Response:
        if (denied := self._bot(request)) is not None:
            return denied
        if user_id == BOT_USER_ID and request.method == "GET":
            if not self._setup(guild_id)["bot_present"]:
                return _error(404, 10004, "Unknown Guild")
            return _json(200, self._member_json(user_id, {BOT_ROLE_ID}))
        if not self._setup(guild_id)["bot_present"]:
            return _error(403, 50001, "Missing Access")  # a server the bot was removed from
        members = self.guild_members.setdefault(guild_id, {})
        if request.method == "GET":
            if user_id not in members:
                return _error(404, 10007, "Unknown Member")
            return _json(200, self._member_json(user_id, members[user_id]))
        if request.method == "DELETE":
            members.pop(user_id, None)
            return Response(status=204)
        body = request.get_json(silent=True) or {}
        if self.tokens.get(body.get("access_token", "")) != user_id:
            return _error(403, 50025, "Invalid OAuth2 access token")
        if user_id in members:
            return Response(status=204)  # already a member: Discord ignores the roles here
        members[user_id] = set(body.get("roles") or [])
        self._granted(guild_id, user_id, members[user_id])
        return _json(201, self._member_json(user_id, members[user_id]))

    def on_role(self, request: Request, guild_id: str, user_id: str, role_id: str) -> Response:
        if (denied := self._bot(request)) is not None:
            return denied
        if not self._setup(guild_id)["bot_present"]:
            return _error(403, 50001, "Missing Access")
        members = self.guild_members.setdefault(guild_id, {})
        if user_id not in members:
            return _error(404, 10007, "Unknown Member")
        if request.method == "PUT":
            if role_id not in members[user_id]:
                self._granted(guild_id, user_id, {role_id})
            members[user_id].add(role_id)
        else:
            members[user_id].discard(role_id)
        return Response(status=204)

    def on_open_dm(self, request: Request) -> Response:
        if (denied := self._bot(request)) is not None:
            return denied
        recipient = (request.get_json(silent=True) or {}).get("recipient_id", "")
        channel_id = str(900_000_000_000_000_000 + int(snowflake_for(recipient)) % 10**17)
        self.dm_channels[channel_id] = recipient
        return _json(200, {"id": channel_id, "type": 1, "recipients": [{"id": recipient, "username": self.users.get(recipient, "member")}]})

    def on_message(self, request: Request, channel_id: str) -> Response:
        if (denied := self._bot(request)) is not None:
            return denied
        user_id = self.dm_channels.get(channel_id)
        if user_id is None and channel_id in self.channels:
            return self._post(request, channel_id)
        if user_id is None and channel_id in self.text_channels:
            return self._post_in_channel(request, channel_id)
        if user_id is None:
            return _error(404, 10003, "Unknown Channel")
        if user_id in self.closed_dms:
            return _error(403, 50007, "Cannot send messages to this user")
        body = request.get_json(silent=True) or {}
        content = body.get("content", "")
        # enforce_nonce: a nonce seen before returns the message already created, posts nothing.
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        if nonce is not None and (channel_id, str(nonce)) in self.nonces:
            return _json(200, {"id": self.nonces[(channel_id, str(nonce))], "channel_id": channel_id, "content": content, "type": 0})
        message = {"id": str(next(self._ids)), "channel_id": channel_id, "user_id": user_id, "content": content, "at": time.time()}
        self.dms.append(message)
        if nonce is not None:
            self.nonces[(channel_id, str(nonce))] = message["id"]
        return _json(200, {"id": message["id"], "channel_id": channel_id, "content": content, "type": 0})

    def on_read_messages(self, request: Request, channel_id: str) -> Response:
        """Get Channel Messages in a DM (a late retry looks for its message): newest first, no nonce returned."""
        if (denied := self._bot(request)) is not None:
            return denied
        if channel_id not in self.dm_channels:
            return _error(404, 10003, "Unknown Channel")
        limit = request.args.get("limit", "50")
        count = int(limit) if limit.isdigit() and 1 <= int(limit) <= 100 else 50
        found = [{"id": m["id"], "channel_id": channel_id, "content": m["content"], "type": 0}
                 for m in self.dms if m["channel_id"] == channel_id]
        return _json(200, list(reversed(found))[:count])

    def _post_in_channel(self, request: Request, channel_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        content = body.get("content", "")
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        if nonce is not None and (channel_id, str(nonce)) in self.nonces:
            return _json(200, {"id": self.nonces[(channel_id, str(nonce))], "channel_id": channel_id, "content": content, "type": 0})
        message = {"id": str(next(self._ids)), "channel_id": channel_id, "content": content, "at": time.time()}
        self.text_channels[channel_id].append(message)
        if nonce is not None:
            self.nonces[(channel_id, str(nonce))] = message["id"]
        return _json(200, {"id": message["id"], "channel_id": channel_id, "content": content, "type": 0})

    def add_text_channel(self, channel_id: str) -> None:
        self.text_channels.setdefault(channel_id, [])

    def on_add_text_channel(self, request: Request) -> Response:
        """Control: {"id"} adds a server text channel (the creator's private alert channel)."""
        channel_id = str((request.get_json(silent=True) or {}).get("id", ""))
        if not (channel_id.isascii() and channel_id.isdigit() and 17 <= len(channel_id) <= 20):
            return _error(400, 50035, "Invalid Form Body: id must be a snowflake")
        self.add_text_channel(channel_id)
        return _json(200, {"id": channel_id, "type": 0})

    def on_channel_messages(self, request: Request, channel_id: str) -> Response:
        if channel_id not in self.text_channels:
            return _error(404, 10003, "Unknown Channel")
        return _json(200, {"messages": self.text_channels[channel_id]})

    # --- local views ------------------------------------------------------------------------

    def on_list_calls(self, request: Request) -> Response:
        return _json(200, {"calls": self.calls})

    def on_list_dms(self, request: Request) -> Response:
        return _json(200, {"dms": self.dms})

    def on_guild(self, request: Request, guild_id: str) -> Response:
        members = self.guild_members.get(guild_id, {})
        return _json(200, {"guild_id": guild_id, "members": {u: sorted(r) for u, r in members.items()},
                           "granted_at": self.granted_at.get(guild_id, {})})

    def _granted(self, guild_id: str, user_id: str, roles: set[str]) -> None:
        at = time.time()
        self.granted_at.setdefault(guild_id, {}).setdefault(user_id, {}).update({role: at for role in roles})

    def on_dm_setting(self, request: Request, user_id: str) -> Response:
        if (request.get_json(silent=True) or {}).get("open", True):
            self.closed_dms.discard(user_id)
        else:
            self.closed_dms.add(user_id)
        return _json(200, {"user_id": user_id, "dms_open": user_id not in self.closed_dms})

    def _member_json(self, user_id: str, roles: set[str]) -> dict[str, Any]:
        return {
            "user": {"id": user_id, "username": self.users.get(user_id, "member"), "discriminator": "0", "avatar": None},
            "roles": sorted(roles),
            "joined_at": "2026-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
