"""Discord adapters: the bot as a CommunityConnector and OAuth2 as an IdentityProvider, over HttpTransport."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.errors import PermanentError, RateLimitedError, RetryableError
from ..domain.access import Capability, Presence, PresenceState
from ..domain.handles import discord_handle
from ..domain.model import Community, Identity, OAuthTokens, Platform
from ..domain.preflight import DiscordGuildFacts, Preflight, Role, discord_checks
from ..ports import GuildMember
from .. import deadline
from .http import HttpResponse, HttpTransport
from .platform_text import fingerprint, fit_text, non_negative_number

log = logging.getLogger(__name__)

# Discord rejects requests without a "DiscordBot (url, version)" agent (docs: reference#user-agent).
USER_AGENT = "DiscordBot (https://github.com/membergate/membergate, 0.1)"
REQUEST_TIMEOUT = 10.0
OAUTH_SCOPE = "identify guilds.join"
GRANT_REASON = "Membergate: subscription active"
REVOKE_REASON = "Membergate: subscription ended"
# Create Message: content up to 2000 characters (docs: resources/message#create-message).
MESSAGE_LIMIT = 2000
# Create Message: a string nonce is at most 25 characters (specs/discord: MessageCreateRequest).
NONCE_LIMIT = 25
# Global limit: 50 requests per second per bot (docs: topics/rate-limits#global-rate-limit).
GLOBAL_REQUESTS_PER_SECOND = 50
# 10,000 invalid requests (401, 403, 429) in 10 minutes bans the IP for a while
# (docs: topics/rate-limits#invalid-request-limit). Lambda egress IPs are shared with other
# tenants, so we stop at a small fraction of Discord's threshold.
INVALID_REQUEST_WINDOW = 600.0
INVALID_REQUEST_CEILING = 500

MEMBER = "/guilds/{guild_id}/members/{user_id}"
MEMBER_ROLE = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"
DM_CHANNELS = "/users/@me/channels"
GUILD = "/guilds/{guild_id}"
GUILD_ROLES = "/guilds/{guild_id}/roles"
GUILD_MEMBERS = "/guilds/{guild_id}/members"
APPLICATION = "/applications/@me"
# List Guild Members: at most 1000 per page (docs: resources/guild#list-guild-members).
MEMBERS_PAGE = 1000
CHANNEL_MESSAGES = "/channels/{channel_id}/messages"
# Get Channel Messages: 1-100 per page (specs/discord: limit); snowflakes count ms from this epoch.
MESSAGES_PAGE = 100
DISCORD_EPOCH_MS = 1_420_070_400_000

# JSON error codes (docs: topics/opcodes-and-status-codes#json-json-error-codes).
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_ROLE = 10011
UNKNOWN_USER = 10013
MAX_GUILDS = 30001
MISSING_ACCESS = 50001
CANNOT_DM_USER = 50007
MISSING_PERMISSIONS = 50013
INVALID_OAUTH_TOKEN = 50025

# The spec's SnowflakeType pattern; checking ids locally also keeps "../" out of request paths.
_SNOWFLAKE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


@dataclass(frozen=True)
class _Refusal:
    statuses: frozenset[int]
    reason: str
    advice: str


_BOT_TOKEN_ADVICE = (
    "Discord rejected the bot token. Copy the bot's token from the Discord developer portal "
    "(your application → Bot → Reset Token) into the secret named by DISCORD_BOT_TOKEN_NAME; "
    "Membergate picks it up within a few minutes."
)
_REFUSALS: dict[int, _Refusal] = {
    MISSING_PERMISSIONS: _Refusal(
        frozenset({403}),
        "missing_permissions",
        "The bot lacks a permission in this server. In Server Settings → Roles give the bot's role "
        "Manage Roles (and Kick Members and Create Invite), then drag the bot's role above the plan's role.",
    ),
    MISSING_ACCESS: _Refusal(
        frozenset({403}),
        "missing_access",
        "The bot has no access to this server: check that the bot is still in the server (invite it "
        "again from the Discord developer portal if not) and that the community's server id is right.",
    ),
    CANNOT_DM_USER: _Refusal(
        frozenset({403}),
        "dms_closed",
        "Discord would not deliver the direct message: the member does not accept DMs from this "
        "server's members or no longer shares a server with the bot. The member can allow direct "
        "messages in the server's Privacy Settings.",
    ),
    INVALID_OAUTH_TOKEN: _Refusal(
        frozenset({401, 403}),
        "discord_authorization_expired",
        "The member's Discord authorization is no longer valid: the member must connect Discord "
        "again from the join page.",
    ),
    UNKNOWN_GUILD: _Refusal(
        frozenset({404}),
        "unknown_guild",
        "Discord does not know this server: check the community's server id (Developer Mode on, "
        "right-click the server → Copy Server ID) and that the bot is still in it.",
    ),
    UNKNOWN_ROLE: _Refusal(
        frozenset({404}),
        "unknown_role",
        "The role does not exist in this server any more: choose an existing role for the plan or "
        "community in Membergate's settings.",
    ),
    UNKNOWN_USER: _Refusal(
        frozenset({404}),
        "unknown_user",
        "Discord does not know this account (it may have been deleted): the member must connect "
        "their current Discord account from the join page.",
    ),
    MAX_GUILDS: _Refusal(
        frozenset({400}),
        "member_guild_limit",
        "The member is already in the maximum number of Discord servers: they must leave one, then "
        "open the join page again.",
    ),
}


# --- process-wide limits --------------------------------------------------------------------


class InvalidRequestGuard:
    """Counts 401/403/429 answers in a sliding window and refuses to send once the ceiling is hit.

    One instance is shared by every Discord client in the process (the ban is per IP)."""

    def __init__(self, ceiling: int = INVALID_REQUEST_CEILING, window: float = INVALID_REQUEST_WINDOW):
        self._ceiling = ceiling
        self._window = window
        self._seen: deque[float] = deque()
        self._lock = threading.Lock()

    def record(self, now: float) -> None:
        with self._lock:
            self._prune(now)
            self._seen.append(now)

    def count(self, now: float) -> int:
        with self._lock:
            self._prune(now)
            return len(self._seen)

    def check(self, now: float) -> None:
        """Raise RetryableError (without sending anything) while the window is full."""
        with self._lock:
            self._prune(now)
            excess = len(self._seen) - self._ceiling
            if excess < 0:
                return
            retry_after = self._seen[excess] + self._window - now
        log.warning("Discord calls paused: %d refused requests in %.0f s", self._ceiling, self._window)
        raise RateLimitedError(
            f"Membergate paused Discord calls: {self._ceiling} requests were refused in the last "
            f"{self._window / 60:.0f} minutes (Discord bans the address at 10,000); they resume by themselves",
            retry_after=retry_after,
        )

    def _prune(self, now: float) -> None:
        while self._seen and self._seen[0] <= now - self._window:
            self._seen.popleft()


@dataclass
class _Bucket:
    remaining: int
    resets_at: float


class BotRateLimits:
    """One bot's limits: the global requests-per-second window and the per-route buckets.

    Buckets are learnt from X-RateLimit-* headers and keyed by bucket hash plus the top-level
    resource id (guild or channel), as Discord computes them (docs: topics/rate-limits)."""

    _MAX_BUCKETS = 1024

    def __init__(self, per_second: int = GLOBAL_REQUESTS_PER_SECOND):
        self._per_second = per_second
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._route_bucket: dict[str, str] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def bucket_wait(self, route: str, major: str, now: float) -> float:
        with self._lock:
            bucket = self._buckets.get((self._route_bucket.get(route, route), major))
            if bucket is None or bucket.remaining > 0 or bucket.resets_at <= now:
                return 0.0
            return bucket.resets_at - now

    def reserve_global(self, now: float) -> float:
        """Take a slot in the global window and return 0, or return how long until one frees."""
        with self._lock:
            if self._blocked_until > now:
                return self._blocked_until - now
            while self._sent and self._sent[0] <= now - 1.0:
                self._sent.popleft()
            if len(self._sent) >= self._per_second:
                return self._sent[0] + 1.0 - now
            self._sent.append(now)
            return 0.0

    def note_sent(self, route: str, major: str, now: float) -> None:
        # Counted before the answer arrives so concurrent callers in this process see it.
        with self._lock:
            bucket = self._buckets.get((self._route_bucket.get(route, route), major))
            if bucket is not None and bucket.resets_at > now and bucket.remaining > 0:
                bucket.remaining -= 1

    def learn(self, route: str, major: str, headers: Mapping[str, str], now: float) -> None:
        bucket_hash = headers.get("X-RateLimit-Bucket")
        remaining = non_negative_number(headers.get("X-RateLimit-Remaining"))
        reset_after = non_negative_number(headers.get("X-RateLimit-Reset-After"))
        with self._lock:
            if bucket_hash:
                self._route_bucket[route] = bucket_hash
            if remaining is None or reset_after is None:
                return
            if len(self._buckets) >= self._MAX_BUCKETS:
                self._buckets = {k: b for k, b in self._buckets.items() if b.resets_at > now}
            key = (self._route_bucket.get(route, route), major)
            self._buckets[key] = _Bucket(int(remaining), now + reset_after)

    def exhaust(self, route: str, major: str, until: float) -> None:
        with self._lock:
            self._buckets[(self._route_bucket.get(route, route), major)] = _Bucket(0, until)

    def block_global(self, until: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, until)


# Shared by every connector in the process (one bot per deployment; Lambda reuses the process).
SHARED_INVALID_REQUESTS = InvalidRequestGuard()
SHARED_BOT_LIMITS = BotRateLimits()


# --- the bot's HTTP client ------------------------------------------------------------------


class _BotClient:
    """Sends bot requests: headers, limits before sending, one inline retry on a short 429, errors."""

    # A bound on the loop only (a clock that never moves); the time waited is bounded by max_inline_wait.
    _MAX_WAITS = 64

    def __init__(
        self,
        transport: HttpTransport,
        bot_token: Callable[[], str],
        api_base: str,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
        max_inline_wait: float,
        limits: BotRateLimits,
        guard: InvalidRequestGuard,
    ):
        self._transport = transport
        self._bot_token = bot_token
        self._base = api_base.rstrip("/")
        self._sleep = sleep
        self._monotonic = monotonic
        self._max_inline_wait = max_inline_wait
        self._limits = limits
        self._guard = guard
        # A token Discord answered 401 to, so the same bad token is not sent again and again.
        self._rejected: str | None = None

    def call(
        self,
        method: str,
        route: str,
        ids: Mapping[str, str],
        payload: Any = None,
        *,
        audit_reason: str | None = None,
        accept: Collection[tuple[int, int | None]] = (),
        query: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Return a 2xx response or one whose (status, code) is in ``accept``; raise otherwise."""
        path = route.format(**{name: urllib.parse.quote(value, safe="") for name, value in ids.items()})
        if query:
            path += "?" + urllib.parse.urlencode(query)
        major = ids.get("guild_id") or ids.get("channel_id") or ""
        key = f"{method} {route}"
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else None
        for attempt in (1, 2):
            token = self._token()
            self._wait_for_slot(key, major)
            # Under a caller's deadline (GET /admin/health) a request waits no longer than the time left.
            timeout = deadline.request_timeout(REQUEST_TIMEOUT, f"Discord {key}")
            response = self._transport.request(
                method, self._base + path, headers=self._headers(token, body, audit_reason), body=body, timeout=timeout
            )
            now = self._monotonic()
            self._limits.learn(key, major, response.headers, now)
            if response.status == 429:
                retry_after = self._rate_limited(key, major, response, now)
                if attempt == 1 and retry_after is not None and retry_after <= self._max_wait:
                    self._sleep(retry_after)
                    continue
                raise RateLimitedError(f"Discord rate limit on {key}; retried automatically", retry_after=retry_after)
            if 200 <= response.status < 300:
                return response
            if response.status in (401, 403):
                self._guard.record(now)
            code = _error_code(response)
            if (response.status, code) in accept:
                return response
            if response.status == 401 and code != INVALID_OAUTH_TOKEN:
                self._rejected = fingerprint(token)
            raise _translate_error(response.status, code, key)
        raise RetryableError(f"Discord rate limit on {key}; retried automatically")  # pragma: no cover

    @property
    def _max_wait(self) -> float:
        """The longest inline wait now: ``max_inline_wait``, or less under a caller's deadline (GET /admin/health),
        so a rate limit is never slept past the time left: it is refused with its wait instead."""
        left = deadline.time_left()
        return self._max_inline_wait if left is None else min(self._max_inline_wait, max(left, 0.0))

    def _token(self) -> str:
        token = (self._bot_token() or "").strip()
        if not token or fingerprint(token) == self._rejected:
            raise PermanentError(_BOT_TOKEN_ADVICE, "bot_token_invalid")
        return token

    def _headers(self, token: str, body: bytes | None, audit_reason: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bot {token}", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if audit_reason:
            # Shown in the server's audit log; Discord wants it URL-encoded (docs: resources/audit-log).
            headers["X-Audit-Log-Reason"] = urllib.parse.quote(audit_reason, safe="")
        return headers

    def _wait_for_slot(self, key: str, major: str) -> None:
        """Wait for the route bucket and the global window, or refuse: never send a predictable 429.

        Waits up to ``max_inline_wait`` in all, however many times other senders in the process
        take the slot that freed (a count of waits gave up after a fraction of a second and
        re-queued the work for seconds); refuses with the wait still ahead, not the maximum."""
        now = self._monotonic()
        self._guard.check(now)
        give_up_at = now + self._max_wait
        wait = 0.0
        for _ in range(self._MAX_WAITS):
            wait = self._limits.bucket_wait(key, major, now)
            if wait <= 0:
                wait = self._limits.reserve_global(now)
                if wait <= 0:
                    self._limits.note_sent(key, major, now)
                    return
            if wait > self._max_wait or now + wait > give_up_at:
                raise RateLimitedError(
                    f"Discord rate limit for {key} frees in {wait:.2f} s; not sending a request it would refuse",
                    retry_after=wait,
                )
            self._sleep(wait)
            now = self._monotonic()
        raise RateLimitedError(f"Discord rate limit for {key} did not free in time", retry_after=max(wait, 0.1))

    def _rate_limited(self, key: str, major: str, response: HttpResponse, now: float) -> float | None:
        data = response.json()
        data = data if isinstance(data, dict) else {}
        scope = response.headers.get("X-RateLimit-Scope", "").lower()
        retry_after = non_negative_number(data.get("retry_after"))
        if retry_after is None:
            retry_after = non_negative_number(response.headers.get("Retry-After"))
        # 429s with scope "shared" (a resource's own limit) do not count towards the IP ban.
        if scope != "shared":
            self._guard.record(now)
        log.warning("Discord 429 on %s (scope %s, retry after %s s)", key, scope or "unknown", retry_after)
        if retry_after is None:
            return None
        if data.get("global") is True or scope == "global":
            self._limits.block_global(now + retry_after)
        else:
            self._limits.exhaust(key, major, now + retry_after)
        return retry_after


# --- CommunityConnector ---------------------------------------------------------------------


class DiscordCommunityConnector:
    """The bot: reads members, adds them with the member's OAuth2 token, manages roles, kicks, DMs."""

    _MAX_DM_CHANNELS = 4096

    def __init__(
        self,
        transport: HttpTransport,
        bot_token: Callable[[], str],
        api_base: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        max_inline_wait: float = 2.0,
        rate_limits: BotRateLimits | None = None,
        invalid_requests: InvalidRequestGuard | None = None,
    ):
        self._bot = _BotClient(
            transport,
            bot_token,
            api_base,
            sleep,
            monotonic,
            max_inline_wait,
            SHARED_BOT_LIMITS if rate_limits is None else rate_limits,
            SHARED_INVALID_REQUESTS if invalid_requests is None else invalid_requests,
        )
        self._dm_channels: dict[str, str] = {}

    def get_member(self, guild_id: str, user_id: str) -> GuildMember | None:
        ids = _snowflakes(guild_id=guild_id, user_id=user_id)
        response = self._bot.call("GET", MEMBER, ids, accept={(404, UNKNOWN_MEMBER)})
        if response.status == 404:
            return None
        data = response.json()
        roles = data.get("roles") if isinstance(data, dict) else None
        if not isinstance(roles, list):
            raise RetryableError("Discord returned a guild member without a role list")
        return GuildMember(user_id, frozenset(str(role) for role in roles))

    def add_member(self, guild_id: str, user_id: str, access_token: str, roles: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(roles))
        ids = _snowflakes(guild_id=guild_id, user_id=user_id)
        for role in wanted:
            _snowflakes(role_id=role)
        response = self._bot.call(
            "PUT", MEMBER, ids, {"access_token": access_token, "roles": wanted}, audit_reason=GRANT_REASON
        )
        if response.status == 204:
            # 204 = already a member, and then Discord ignores `roles` (docs: Add Guild Member).
            for role in wanted:
                self.add_role(guild_id, user_id, role)

    def add_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        ids = _snowflakes(guild_id=guild_id, user_id=user_id, role_id=role_id)
        self._bot.call("PUT", MEMBER_ROLE, ids, audit_reason=GRANT_REASON)

    def remove_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        ids = _snowflakes(guild_id=guild_id, user_id=user_id, role_id=role_id)
        # The goal is "does not have the role": a member who left, or a role that was deleted,
        # already satisfies it. Discord answers 204 for a role the member never had.
        accept = {(404, UNKNOWN_MEMBER), (404, UNKNOWN_ROLE)}
        self._bot.call("DELETE", MEMBER_ROLE, ids, audit_reason=REVOKE_REASON, accept=accept)

    def kick(self, guild_id: str, user_id: str) -> None:
        ids = _snowflakes(guild_id=guild_id, user_id=user_id)
        self._bot.call("DELETE", MEMBER, ids, audit_reason=REVOKE_REASON, accept={(404, UNKNOWN_MEMBER)})

    def send_dm(self, user_id: str, text: str, nonce: str | None = None) -> None:
        """DM the user. With a ``nonce`` (``enforce_nonce``), Discord posts it at most once even
        when a retry follows an answer that was lost (docs: resources/message#create-message)."""
        ids = _snowflakes(user_id=user_id)
        content = truncate_message(text)
        if not content.strip():
            raise PermanentError(
                "Membergate tried to send an empty message: check the message templates for this community's language",
                "empty_message",
            )
        channel_id = self._dm_channels.get(user_id) or self._open_dm(ids["user_id"])
        try:
            payload: dict[str, Any] = {"content": content}
            if nonce:
                payload.update(nonce=nonce[:NONCE_LIMIT], enforce_nonce=True)
            self._bot.call("POST", CHANNEL_MESSAGES, {"channel_id": channel_id}, payload)
        except PermanentError:
            # A cached channel may be the reason; the next attempt opens it afresh.
            self._dm_channels.pop(user_id, None)
            raise

    def find_dm(self, user_id: str, text: str, nonce: str, since: int) -> bool:
        """Whether the DM channel holds this message, created after ``since`` (unix seconds): found by
        its nonce, or by its content (Discord does not promise the nonce on messages read back; in a
        DM only the bot and the member write, and the member does not type the bot's message)."""
        ids = _snowflakes(user_id=user_id)
        content = truncate_message(text)
        channel_id = self._dm_channels.get(user_id) or self._open_dm(ids["user_id"])
        query = {"after": snowflake_at(since), "limit": str(MESSAGES_PAGE)}
        data = self._bot.call("GET", CHANNEL_MESSAGES, {"channel_id": channel_id}, query=query).json()
        return any(
            isinstance(m, dict) and ((nonce and m.get("nonce") == nonce) or m.get("content") == content)
            for m in (data if isinstance(data, list) else [])
        )

    def post_in_channel(self, channel_id: str, text: str, nonce: str) -> None:
        """Create Message in a server text channel (a migration's announcement, the creator's private
        alert channel): the bot needs View Channel and Send Messages there. The nonce keeps a retry
        after a lost answer from posting twice, as for DMs."""
        ids = _snowflakes(channel_id=channel_id)
        content = truncate_message(text)
        payload: dict[str, Any] = {"content": content, "nonce": nonce[:NONCE_LIMIT], "enforce_nonce": True}
        self._bot.call("POST", CHANNEL_MESSAGES, ids, payload)

    def guild_facts(self, guild_id: str) -> DiscordGuildFacts:
        """Read what the preflight needs: the application (bot id, intents), the guild, its roles, the bot member."""
        ids = _snowflakes(guild_id=guild_id)
        app = self._bot.call("GET", APPLICATION, {}).json()
        app = app if isinstance(app, dict) else {}
        bot = app.get("bot") if isinstance(app.get("bot"), dict) else {}
        bot_id = str(bot.get("id") or app.get("id") or "")
        flags = int(non_negative_number(app.get("flags")) or 0)
        guild = self._bot.call("GET", GUILD, ids, accept={(404, UNKNOWN_GUILD), (403, MISSING_ACCESS)})
        if guild.status in (403, 404):
            return DiscordGuildFacts(guild_id, "", {}, None, False, flags)
        data = guild.json() if isinstance(guild.json(), dict) else {}
        listed = self._bot.call("GET", GUILD_ROLES, ids).json()
        roles = {
            str(r.get("id")): Role(str(r.get("id")), str(r.get("name") or ""), int(non_negative_number(r.get("position")) or 0),
                                   int(str(r.get("permissions") or "0")) if str(r.get("permissions") or "0").isdigit() else 0)
            for r in (listed if isinstance(listed, list) else [])
            if isinstance(r, dict)
        }
        member = self.get_member(guild_id, bot_id) if _SNOWFLAKE.match(bot_id) else None
        return DiscordGuildFacts(
            guild_id,
            str(data.get("name") or ""),
            roles,
            member.roles if member is not None else None,
            str(data.get("owner_id") or "") == bot_id,
            flags,
        )

    def list_members(self, guild_id: str, after: str = "0", limit: int = MEMBERS_PAGE) -> list[GuildMember]:
        """One page of List Guild Members (needs the Server Members intent), ordered by user id."""
        ids = _snowflakes(guild_id=guild_id)
        response = self._bot.call("GET", GUILD_MEMBERS, ids, query={"limit": str(int(limit)), "after": str(int(after))})
        data = response.json()
        found = []
        for item in data if isinstance(data, list) else []:
            user = item.get("user") if isinstance(item, dict) else None
            if isinstance(user, dict) and _SNOWFLAKE.match(str(user.get("id", ""))):
                found.append(GuildMember(str(user["id"]), frozenset(str(r) for r in item.get("roles") or ())))
        return found

    def _open_dm(self, user_id: str) -> str:
        response = self._bot.call("POST", DM_CHANNELS, {}, {"recipient_id": user_id})
        data = response.json()
        channel_id = str(data.get("id", "")) if isinstance(data, dict) else ""
        if not _SNOWFLAKE.match(channel_id):
            raise RetryableError("Discord returned a DM channel without an id")
        if len(self._dm_channels) >= self._MAX_DM_CHANNELS:
            self._dm_channels.pop(next(iter(self._dm_channels)))
        self._dm_channels[user_id] = channel_id
        return channel_id


class DiscordConnector:
    """Discord behind the platform-neutral CommunityConnector port (roles in a guild, DMs)."""

    platform = Platform.DISCORD
    capabilities = frozenset(
        {
            Capability.CHECK_MEMBER,
            Capability.ADD_MEMBER,
            Capability.ROLES,
            Capability.REMOVE_MEMBER,
            Capability.MESSAGE,
            Capability.PREFLIGHT,
            Capability.POST_ANNOUNCEMENT,
        }
    )

    def __init__(self, bot: DiscordCommunityConnector):
        self.bot = bot

    def check_member(self, community: Community, user: str) -> Presence:
        found = self.bot.get_member(community.external_id, user)
        if found is None:
            return Presence(PresenceState.ABSENT)
        return Presence(PresenceState.PRESENT, found.roles)

    def add_member(self, community: Community, user: str, roles: Sequence[str], credential: str | None) -> None:
        if not credential:
            raise PermanentError(
                "no Discord authorization is stored for this member: they must reconnect Discord from the join page",
                "discord_authorization_missing",
            )
        self.bot.add_member(community.external_id, user, credential, roles)

    def grant_role(self, community: Community, user: str, role_id: str) -> None:
        self.bot.add_role(community.external_id, user, role_id)

    def revoke_role(self, community: Community, user: str, role_id: str) -> None:
        self.bot.remove_role(community.external_id, user, role_id)

    def remove_member(self, community: Community, user: str) -> None:
        self.bot.kick(community.external_id, user)

    def create_invite(self, community: Community, user: str, now: int) -> str:
        raise PermanentError("Membergate adds Discord members directly; no invite is needed", "unsupported_action")

    def approve_join(self, community: Community, user: str) -> None:
        raise PermanentError("Discord has no join requests to approve", "unsupported_action")

    def decline_join(self, community: Community, user: str) -> None:
        raise PermanentError("Discord has no join requests to decline", "unsupported_action")

    def send_message(self, user: str, text: str, idempotency_key: str) -> None:
        self.bot.send_dm(user, text, nonce=message_nonce(idempotency_key))

    def find_sent(self, user: str, text: str, idempotency_key: str, since: int) -> bool:
        """Whether this message already reached the member's DMs after ``since`` (services/access.py
        asks before re-posting once Discord's nonce memory may have forgotten an earlier attempt)."""
        return self.bot.find_dm(user, text, message_nonce(idempotency_key), since)

    def post_announcement(self, community: Community, channel_id: str | None, text: str, idempotency_key: str) -> None:
        """A message in one of the server's channels (the bot needs View Channel and Send Messages there)."""
        if not channel_id:
            raise PermanentError(
                "no announcement channel: give the id of the channel to post in (announcement_channel_id)",
                "announcement_channel_missing",
            )
        self.bot.post_in_channel(channel_id, text, nonce=message_nonce(idempotency_key))

    def list_members(self, community: Community, after: str, limit: int = MEMBERS_PAGE) -> list[GuildMember]:
        """One page of the guild's members after ``after`` (reconciliation; the Server Members intent)."""
        return self.bot.list_members(community.external_id, after=after, limit=limit)

    def preflight(self, community: Community, role_ids: Sequence[str]) -> Preflight:
        return discord_checks(self.bot.guild_facts(community.external_id), role_ids, community.on_revoke)


def snowflake_at(unix_seconds: int) -> str:
    """The smallest Discord id of that second (docs: reference#snowflakes), for ``after=`` queries."""
    return str(max(0, unix_seconds * 1000 - DISCORD_EPOCH_MS) << 22)


def message_nonce(idempotency_key: str) -> str:
    """A stable nonce of at most 25 characters for a message key (Discord's limit)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:NONCE_LIMIT]


# --- IdentityProvider -----------------------------------------------------------------------


class DiscordIdentityProvider:
    """OAuth2 authorization-code flow with the identify and guilds.join scopes."""

    def __init__(
        self,
        transport: HttpTransport,
        client_id: str,
        client_secret: Callable[[], str],
        api_base: str,
        oauth_base: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        invalid_requests: InvalidRequestGuard | None = None,
    ):
        self._transport = transport
        self._client_id = client_id
        self._client_secret = client_secret
        self._api_base = api_base.rstrip("/")
        self._oauth_base = oauth_base.rstrip("/")
        self._monotonic = monotonic
        self._guard = SHARED_INVALID_REQUESTS if invalid_requests is None else invalid_requests

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "scope": OAUTH_SCOPE,
                "state": state,
                "redirect_uri": redirect_uri,
                # Always show the consent screen, so a member can switch Discord accounts.
                "prompt": "consent",
            },
            quote_via=urllib.parse.quote,
        )
        return f"{self._oauth_base}/authorize?{query}"

    def exchange_code(self, code: str, redirect_uri: str, now: int) -> OAuthTokens:
        fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self._token(fields, now, fallback_refresh=None)

    def refresh(self, refresh_token: str, now: int) -> OAuthTokens:
        fields = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token(fields, now, fallback_refresh=refresh_token)

    def user_id(self, access_token: str) -> str:
        return self.account(access_token).external_id

    def account(self, access_token: str) -> Identity:
        headers = {"Authorization": f"Bearer {access_token}", "User-Agent": USER_AGENT}
        response = self._send("GET", "/users/@me", headers, None)
        if response.status == 200:
            data = response.json()
            user_id = str(data.get("id", "")) if isinstance(data, dict) else ""
            if _SNOWFLAKE.match(user_id):
                assert isinstance(data, dict)
                # The member recognises their account by its names, never by the snowflake.
                return Identity(Platform.DISCORD, user_id, discord_handle(data.get("username"), data.get("global_name")))
            raise RetryableError("Discord returned a user without an id")
        if response.status == 401 or _error_code(response) == INVALID_OAUTH_TOKEN:
            raise PermanentError(_REFUSALS[INVALID_OAUTH_TOKEN].advice, "discord_authorization_expired")
        raise self._failure(response, "GET /users/@me")

    def _token(self, fields: dict[str, str], now: int, fallback_refresh: str | None) -> OAuthTokens:
        # client_secret_basic (RFC 6749 §2.3.1): the secret stays out of the form body.
        credentials = f"{urllib.parse.quote(self._client_id, safe='')}:{urllib.parse.quote(self._client_secret(), safe='')}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
        }
        response = self._send("POST", "/oauth2/token", headers, urllib.parse.urlencode(fields).encode())
        if response.status != 200:
            raise self._failure(response, "POST /oauth2/token")
        data = response.json()
        data = data if isinstance(data, dict) else {}
        access, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(access, str) or not access or not isinstance(expires_in, int) or isinstance(expires_in, bool):
            raise PermanentError(
                "Discord's token answer had no access token or expiry: the member should connect Discord "
                "again from the join page",
                "discord_unexpected_response",
            )
        refresh = data.get("refresh_token")
        return OAuthTokens(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else fallback_refresh,
            expires_at=now + expires_in,
            scope=str(data.get("scope", "")),
        )

    def _send(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        self._guard.check(self._monotonic())
        response = self._transport.request(method, self._api_base + path, headers=headers, body=body, timeout=REQUEST_TIMEOUT)
        if response.status in (401, 403) or (
            response.status == 429 and response.headers.get("X-RateLimit-Scope", "").lower() != "shared"
        ):
            self._guard.record(self._monotonic())
        return response

    def _failure(self, response: HttpResponse, what: str) -> Exception:
        status = response.status
        data = response.json()
        data = data if isinstance(data, dict) else {}
        if status == 429 or status >= 500:
            retry_after = non_negative_number(data.get("retry_after"))
            if retry_after is None:
                retry_after = non_negative_number(response.headers.get("Retry-After"))
            return RetryableError(f"Discord answered HTTP {status} to {what}; retried automatically", retry_after=retry_after)
        error = data.get("error") if isinstance(data.get("error"), str) else ""
        if error == "invalid_grant":
            return PermanentError(
                "The Discord authorization is no longer valid (expired, revoked or already used): the member "
                "must connect Discord again from the join page",
                "discord_authorization_expired",
            )
        if error in ("invalid_client", "unauthorized_client") or status == 401:
            return PermanentError(
                "Discord rejected the application's credentials: check DISCORD_CLIENT_ID and put the client "
                "secret from the Discord developer portal (OAuth2 → Client Secret) into the secret named by "
                "DISCORD_CLIENT_SECRET_NAME",
                "discord_client_invalid",
            )
        return PermanentError(
            f"Discord refused {what} (HTTP {status}{', ' + error if error else ''}): check that the redirect "
            "URI is listed under OAuth2 → Redirects in the Discord developer portal, then start again from the join page",
            f"discord_{status}",
        )


# --- helpers --------------------------------------------------------------------------------


def _snowflakes(**ids: str) -> dict[str, str]:
    """Check Discord ids before they go into a path; a typo becomes a clear error, not a 404."""
    for name, value in ids.items():
        if not isinstance(value, str) or not _SNOWFLAKE.match(value):
            shown = str(value)[:32]
            raise PermanentError(
                f"{name.replace('_', ' ')} {shown!r} is not a Discord id (a number such as 123456789012345678): "
                "copy it from Discord with Developer Mode on (right-click → Copy ID)",
                f"invalid_{name}",
            )
    return dict(ids)


def _error_code(response: HttpResponse) -> int | None:
    data = response.json()
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _translate_error(status: int, code: int | None, what: str) -> RetryableError | PermanentError:
    """Map a non-2xx, non-429 answer to a typed error by status and JSON code (never message text)."""
    if status >= 500:
        return RetryableError(f"Discord answered HTTP {status} to {what}; retried automatically")
    if status == 404 and code == UNKNOWN_MEMBER:
        # The member left between reading and changing them: converging again adds them back.
        return RetryableError(f"the member left the server during {what}; retried automatically")
    refusal = _REFUSALS.get(code) if code is not None else None
    if refusal is not None and status in refusal.statuses:
        return PermanentError(f"{refusal.advice} (Discord {status}/{code} on {what})", refusal.reason)
    if status == 401:
        return PermanentError(f"{_BOT_TOKEN_ADVICE} (Discord 401 on {what})", "bot_token_invalid")
    return PermanentError(
        f"Discord refused {what} with HTTP {status} (code {code}). Retrying will not help: check the "
        "community's server and role settings, and report it to Membergate if they look right",
        f"discord_{status}",
    )



def truncate_message(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Fit ``text`` into Discord's message limit, counted in UTF-16 units as Discord's clients count."""
    return fit_text(text, limit, count="utf16")




# --- interactions ---------------------------------------------------------------------------


def verify_interaction(public_key_hex: str, signature_hex: str, timestamp: str, body: bytes) -> bool:
    """Discord signs timestamp + body with the application's Ed25519 key (docs: interactions/overview)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        signature = bytes.fromhex(signature_hex)
        key.verify(signature, timestamp.encode("ascii") + body)
        return True
    except (ValueError, InvalidSignature, UnicodeEncodeError):
        return False
