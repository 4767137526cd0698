"""DiscordCommunityConnector and DiscordIdentityProvider: limits, 429s, the invalid-request guard, errors, DMs."""

from __future__ import annotations

import http.server
import socket
import threading
import urllib.parse

import pytest

from membergate.adapters.discord import (
    BotRateLimits,
    DiscordCommunityConnector,
    DiscordIdentityProvider,
    InvalidRequestGuard,
    truncate_message,
)
from membergate.adapters.http import HttpResponse, UrllibTransport
from membergate.domain.errors import PermanentError, RateLimitedError, RetryableError
from tests.support.discord_spec import (
    API_BASE,
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    FakeClock,
    FakeDiscordTransport,
    discord_error,
    rate_limited,
)

pytestmark = pytest.mark.unit

GUILD, OTHER_GUILD = "100000000000000001", "100000000000000002"
USER, OTHER_USER = "300000000000000001", "300000000000000002"
ROLE, OTHER_ROLE = "200000000000000001", "200000000000000002"
ROLE_PATH = f"/guilds/{GUILD}/members/{USER}/roles/{ROLE}"
OAUTH_BASE = "https://discord.com/oauth2"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def discord() -> FakeDiscordTransport:
    transport = FakeDiscordTransport()
    for guild_id in (GUILD, OTHER_GUILD):
        transport.add_guild(guild_id, {ROLE, OTHER_ROLE})
    transport.add_user(USER)
    transport.add_user(OTHER_USER)
    return transport


@pytest.fixture
def limits() -> BotRateLimits:
    return BotRateLimits()


@pytest.fixture
def guard() -> InvalidRequestGuard:
    return InvalidRequestGuard()


@pytest.fixture
def connector(discord, clock, limits, guard) -> DiscordCommunityConnector:
    return build_connector(discord, clock, limits, guard)


def build_connector(transport, clock, limits, guard, token=lambda: BOT_TOKEN) -> DiscordCommunityConnector:
    return DiscordCommunityConnector(
        transport, token, API_BASE, sleep=clock.sleep, monotonic=clock.monotonic,
        rate_limits=limits, invalid_requests=guard,
    )


def identity(transport, clock, guard) -> DiscordIdentityProvider:
    return DiscordIdentityProvider(
        transport, CLIENT_ID, lambda: CLIENT_SECRET, API_BASE, OAUTH_BASE, monotonic=clock.monotonic, invalid_requests=guard
    )


def bucket_headers(bucket: str, remaining: int, reset_after: float) -> dict[str, str]:
    return {"X-RateLimit-Bucket": bucket, "X-RateLimit-Limit": "10", "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset-After": str(reset_after)}


def with_member(discord: FakeDiscordTransport, roles=frozenset()) -> None:
    discord.guilds[GUILD].members[USER] = set(roles)
    discord.guilds[OTHER_GUILD].members[USER] = set(roles)


# --- per-route buckets ----------------------------------------------------------------------


def test_connector_bucket_exhausted_resetting_soon_waits_then_sends(discord, connector, clock):
    # Given the last role change emptied the guild's bucket, which resets in 1.5 s
    with_member(discord)
    discord.enqueue(HttpResponse(204, bucket_headers("roles", 0, 1.5)))
    connector.add_role(GUILD, USER, ROLE)
    # When another role change is due
    connector.add_role(GUILD, USER, OTHER_ROLE)
    # Then it waited for the reset instead of provoking a 429, and was sent
    assert clock.slept == [1.5]
    assert OTHER_ROLE in discord.guilds[GUILD].members[USER]


def test_connector_bucket_exhausted_resetting_late_raises_without_sending(discord, connector, clock):
    # Given the bucket resets in 30 s, longer than we wait inline
    with_member(discord)
    discord.enqueue(HttpResponse(204, bucket_headers("roles", 0, 30)))
    connector.add_role(GUILD, USER, ROLE)
    # When another role change is due
    with pytest.raises(RetryableError) as caught:
        connector.add_role(GUILD, USER, OTHER_ROLE)
    # Then it is handed back with the wait, and nothing was sent
    assert caught.value.retry_after == pytest.approx(30)
    assert len(discord.requests) == 1
    assert OTHER_ROLE not in discord.guilds[GUILD].members[USER]


def test_connector_bucket_of_one_guild_does_not_hold_back_another(discord, connector, clock):
    # Given the role bucket of one guild is empty for 30 s
    with_member(discord)
    discord.enqueue(HttpResponse(204, bucket_headers("roles", 0, 30)))
    connector.add_role(GUILD, USER, ROLE)
    # When a role changes in another guild (buckets are per top-level resource)
    connector.add_role(OTHER_GUILD, USER, ROLE)
    # Then it goes straight out
    assert clock.slept == []
    assert ROLE in discord.guilds[OTHER_GUILD].members[USER]


def test_connector_routes_sharing_a_bucket_hash_share_its_limit(discord, connector):
    # Given adding and removing roles turn out to share one bucket, now empty
    with_member(discord, {ROLE})
    discord.enqueue(HttpResponse(204, bucket_headers("shared-roles", 5, 30)))
    connector.add_role(GUILD, USER, OTHER_ROLE)
    discord.enqueue(HttpResponse(204, bucket_headers("shared-roles", 0, 30)))
    connector.remove_role(GUILD, USER, ROLE)
    # When a role is added again
    with pytest.raises(RetryableError):
        connector.add_role(GUILD, USER, ROLE)
    # Then the learnt shared bucket held it back
    assert len(discord.requests) == 2


def test_connector_bucket_with_requests_left_does_not_wait(discord, connector, clock):
    # Given the bucket still has requests left
    with_member(discord)
    discord.enqueue(HttpResponse(204, bucket_headers("roles", 3, 30)))
    connector.add_role(GUILD, USER, ROLE)
    # When another role change is due
    connector.add_role(GUILD, USER, OTHER_ROLE)
    # Then nothing waited
    assert clock.slept == []
    assert OTHER_ROLE in discord.guilds[GUILD].members[USER]


# --- global limit -----------------------------------------------------------------------------


def test_connector_global_limit_51st_request_in_a_second_waits(discord, connector, clock):
    # Given 50 requests went out within the same second
    for _ in range(50):
        connector.get_member(GUILD, USER)
    assert clock.slept == []
    # When a 51st is due
    connector.get_member(GUILD, USER)
    # Then it waited for the window to move (50 requests per second per bot)
    assert clock.slept == [pytest.approx(1.0)]
    assert len(discord.requests) == 51


def test_connector_global_limit_is_shared_by_connectors_of_one_bot(discord, clock, limits, guard):
    # Given two connectors of the same bot in one process, 25 requests each in one second
    first, second = build_connector(discord, clock, limits, guard), build_connector(discord, clock, limits, guard)
    for _ in range(25):
        first.get_member(GUILD, USER)
        second.get_member(GUILD, USER)
    # When either sends one more
    first.get_member(GUILD, USER)
    # Then the shared window made it wait
    assert clock.slept == [pytest.approx(1.0)]


class _ContendedLimits(BotRateLimits):
    """Another sender in the process takes the freed global slot ``times`` times, each ``wait`` s."""

    def __init__(self, times: int, wait: float):
        super().__init__()
        self.left, self.wait = times, wait

    def reserve_global(self, now: float) -> float:
        if self.left:
            self.left -= 1
            return self.wait
        return super().reserve_global(now)


def test_connector_global_window_contended_keeps_waiting_within_the_inline_bound(discord, clock, guard):
    # Given the global slot is taken by another sender six times in a row, 0.1 s each
    connector = build_connector(discord, clock, _ContendedLimits(6, 0.1), guard)
    # When a member is read
    connector.get_member(GUILD, USER)
    # Then it waited 0.6 s in all and sent the request (not re-queued for seconds after 4 short waits)
    assert clock.slept == [pytest.approx(0.1)] * 6
    assert len(discord.requests) == 1


def test_connector_global_window_contended_past_the_bound_refuses_with_the_wait_ahead(discord, clock, guard):
    # Given the global slot is taken again and again, 0.7 s each (past the 2 s inline bound by the third)
    connector = build_connector(discord, clock, _ContendedLimits(10, 0.7), guard)
    # When a member is read
    with pytest.raises(RateLimitedError) as refused:
        connector.get_member(GUILD, USER)
    # Then nothing was sent, and the retry is asked after the wait still ahead, not the 2 s maximum
    assert discord.requests == []
    assert clock.slept == [pytest.approx(0.7)] * 2
    assert refused.value.retry_after == pytest.approx(0.7)


# --- 429 ------------------------------------------------------------------------------------


def test_connector_429_with_short_retry_after_sleeps_and_retries_once(discord, connector, clock):
    # Given Discord answers 429 with retry_after 0.5 s, then accepts
    with_member(discord)
    discord.enqueue(rate_limited(0.5))
    # When a role is added
    connector.add_role(GUILD, USER, ROLE)
    # Then it slept the announced time and the retry landed
    assert clock.slept == [0.5]
    assert len(discord.requests_to("PUT", ROLE_PATH)) == 2
    assert ROLE in discord.guilds[GUILD].members[USER]


def test_connector_429_with_long_retry_after_raises_retryable(discord, connector, clock):
    # Given Discord answers 429 with retry_after 12 s
    with_member(discord)
    discord.enqueue(rate_limited(12.0))
    # When a role is added
    with pytest.raises(RetryableError) as caught:
        connector.add_role(GUILD, USER, ROLE)
    # Then the work is handed back with Discord's wait and nothing slept
    assert caught.value.retry_after == 12.0
    assert clock.slept == []
    assert len(discord.requests) == 1


def test_connector_429_twice_gives_up_after_one_retry(discord, connector):
    # Given two 429s in a row
    with_member(discord)
    discord.enqueue(rate_limited(0.5))
    discord.enqueue(rate_limited(0.5))
    # When a role is added
    with pytest.raises(RetryableError):
        connector.add_role(GUILD, USER, ROLE)
    # Then exactly one retry was sent
    assert len(discord.requests) == 2


def test_connector_429_marks_the_bucket_so_the_next_call_is_not_sent(discord, connector):
    # Given a 429 on the role route with 30 s to wait
    with_member(discord)
    discord.enqueue(rate_limited(30.0))
    with pytest.raises(RetryableError):
        connector.add_role(GUILD, USER, ROLE)
    # When the same route in the same guild is called again
    with pytest.raises(RetryableError) as caught:
        connector.add_role(GUILD, USER, OTHER_ROLE)
    # Then it was refused locally
    assert len(discord.requests) == 1
    assert caught.value.retry_after == pytest.approx(30.0)


def test_connector_global_429_holds_back_every_route(discord, connector):
    # Given a global 429 for 5 s
    discord.enqueue(rate_limited(5.0, scope="global", is_global=True))
    with pytest.raises(RetryableError):
        connector.get_member(GUILD, USER)
    # When an unrelated request is due
    with pytest.raises(RetryableError) as caught:
        connector.kick(OTHER_GUILD, OTHER_USER)
    # Then it is not sent until the global block ends
    assert len(discord.requests) == 1
    assert caught.value.retry_after == pytest.approx(5.0)


def test_connector_429_without_json_body_uses_retry_after_header(discord, connector):
    # Given an HTML 429 from the edge proxy (the IP is temporarily banned)
    discord.enqueue(HttpResponse(429, {"Retry-After": "3600", "Content-Type": "text/html"}, b"<html>banned</html>"))
    # When a member is read
    with pytest.raises(RetryableError) as caught:
        connector.get_member(GUILD, USER)
    # Then the header's wait is used
    assert caught.value.retry_after == 3600.0


# --- invalid-request guard ------------------------------------------------------------------


def test_guard_ceiling_reached_refuses_to_send(discord, clock, limits):
    # Given a guard with a ceiling of 3 and three 403s in a row
    guard = InvalidRequestGuard(ceiling=3)
    connector = build_connector(discord, clock, limits, guard)
    with_member(discord)
    for _ in range(3):
        discord.enqueue(discord_error(403, 50013, "Missing Permissions"))
        with pytest.raises(PermanentError):
            connector.add_role(GUILD, USER, ROLE)
        clock.now += 10
    # When another request is due
    with pytest.raises(RetryableError) as caught:
        connector.get_member(GUILD, USER)
    # Then nothing is sent until the oldest refusal leaves the 10-minute window
    assert len(discord.requests) == 3
    assert caught.value.retry_after == pytest.approx(600 - 30)


def test_guard_window_slides_and_requests_resume(discord, clock, limits):
    # Given the guard is full
    guard = InvalidRequestGuard(ceiling=2)
    connector = build_connector(discord, clock, limits, guard)
    for _ in range(2):
        discord.enqueue(discord_error(403, 50001, "Missing Access"))
        with pytest.raises(PermanentError):
            connector.get_member(GUILD, USER)
    # When ten minutes have passed
    clock.now += 600.001
    # Then requests go out again
    assert connector.get_member(GUILD, USER) is None
    assert len(discord.requests) == 3


@pytest.mark.parametrize(("scope", "counted"), [("shared", 0), ("user", 1), ("global", 1)])
def test_guard_counts_429_unless_scope_shared(discord, connector, guard, clock, scope, counted):
    # Given a 429 of the given scope (shared-resource 429s do not count towards the IP ban)
    discord.enqueue(rate_limited(30.0, scope=scope, is_global=scope == "global"))
    # When it is answered
    with pytest.raises(RetryableError):
        connector.get_member(GUILD, USER)
    # Then the guard counted it or not
    assert guard.count(clock.now) == counted


def test_guard_is_shared_with_the_identity_provider(discord, connector, clock, guard):
    # Given the identity provider sees two 401s (bad member tokens) with the same guard
    oauth = identity(discord, clock, guard)
    for _ in range(2):
        with pytest.raises(PermanentError):
            oauth.user_id("not-a-token")
    # When the bot gets a 403
    discord.enqueue(discord_error(403, 50013))
    with pytest.raises(PermanentError):
        connector.get_member(GUILD, USER)
    # Then all three count against the same address
    assert guard.count(clock.now) == 3


def test_connector_404_is_not_an_invalid_request(discord, connector, guard, clock):
    # Given / When a member who is not in the guild is read (404 Unknown Member)
    assert connector.get_member(GUILD, USER) is None
    # Then the guard did not count it (only 401, 403 and 429 do)
    assert guard.count(clock.now) == 0


# --- bot token --------------------------------------------------------------------------------


def test_connector_rejected_bot_token_is_not_sent_again_until_it_changes(discord, clock, limits, guard):
    # Given the secret holds a wrong bot token
    secret = {"token": "wrong-token"}
    connector = build_connector(discord, clock, limits, guard, token=lambda: secret["token"])
    with pytest.raises(PermanentError) as first:
        connector.get_member(GUILD, USER)
    # When the next call is made with the same token
    with pytest.raises(PermanentError) as second:
        connector.get_member(GUILD, USER)
    # Then it was refused locally, telling the creator where the token goes
    assert first.value.reason == second.value.reason == "bot_token_invalid"
    assert "DISCORD_BOT_TOKEN_NAME" in first.value.message
    assert len(discord.requests) == 1
    # And once the secret is fixed, calls go through again
    secret["token"] = BOT_TOKEN
    assert connector.get_member(GUILD, USER) is None


# --- error translation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (403, 50013, "missing_permissions"),
        (403, 50001, "missing_access"),
        (403, 50007, "dms_closed"),
        (403, 50025, "discord_authorization_expired"),
        (401, 50025, "discord_authorization_expired"),
        (404, 10004, "unknown_guild"),
        (404, 10011, "unknown_role"),
        (404, 10013, "unknown_user"),
        (400, 30001, "member_guild_limit"),
        (401, 0, "bot_token_invalid"),
        (400, 50035, "discord_400"),
        (403, 0, "discord_403"),
        (404, 10003, "discord_404"),
        (403, 10011, "discord_403"),
    ],
)
def test_connector_error_code_becomes_permanent_reason(discord, connector, status, code, reason):
    # Given Discord refuses with this status and JSON code
    with_member(discord)
    discord.enqueue(discord_error(status, code, "some text"))
    # When a role is added
    with pytest.raises(PermanentError) as caught:
        connector.add_role(GUILD, USER, ROLE)
    # Then the reason is stable and the message says what to do
    assert caught.value.reason == reason
    assert len(caught.value.message) > 40


def test_connector_error_translation_ignores_message_text(discord, connector):
    # Given a 403 whose text talks about permissions but whose code is Missing Access
    discord.enqueue(discord_error(403, 50001, "Missing Permissions"))
    # When a member is read
    with pytest.raises(PermanentError) as caught:
        connector.get_member(GUILD, USER)
    # Then the code decides
    assert caught.value.reason == "missing_access"


def test_connector_missing_permissions_tells_the_creator_how_to_fix_roles(discord, connector):
    # Given the plan's role sits above the bot's role
    with_member(discord)
    discord.guilds[GUILD].roles_above_bot.add(ROLE)
    # When the role is added
    with pytest.raises(PermanentError) as caught:
        connector.add_role(GUILD, USER, ROLE)
    # Then the creator is told which permission and where to drag the role
    assert caught.value.reason == "missing_permissions"
    assert "Manage Roles" in caught.value.message and "above the plan's role" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_connector_server_error_is_retryable(discord, connector, status):
    # Given Discord fails on its side
    discord.enqueue(HttpResponse(status, {}, b"upstream error"))
    # When / Then the call can be retried later
    with pytest.raises(RetryableError):
        connector.get_member(GUILD, USER)


def test_connector_network_error_is_retryable(clock, limits, guard):
    # Given a transport whose network fails
    class Unreachable:
        def request(self, method, url, *, headers, body, timeout):
            raise RetryableError("network error calling GET https://discord.com/api/v10/guilds")

    connector = build_connector(Unreachable(), clock, limits, guard)
    # When / Then
    with pytest.raises(RetryableError):
        connector.get_member(GUILD, USER)


def test_connector_id_that_is_not_a_snowflake_is_refused_before_sending(discord, connector):
    # Given / When a community configured with a server name instead of its id
    with pytest.raises(PermanentError) as caught:
        connector.get_member("my-server", USER)
    # Then the creator is told what an id looks like, and nothing went out
    assert caught.value.reason == "invalid_guild_id"
    assert discord.requests == []


# --- members and roles ----------------------------------------------------------------------


def test_connector_get_member_returns_roles_or_none(discord, connector):
    # Given one user in the guild with a role, another not in it
    discord.guilds[GUILD].members[USER] = {ROLE}
    # When / Then
    assert connector.get_member(GUILD, USER).roles == frozenset({ROLE})
    assert connector.get_member(GUILD, OTHER_USER) is None


def test_connector_add_member_new_member_joins_with_roles_in_one_call(discord, connector):
    # Given a user who authorised guilds.join
    token = discord.authorize(USER)
    # When they are added with two roles
    connector.add_member(GUILD, USER, token, [ROLE, OTHER_ROLE])
    # Then they joined with both, in one request
    assert discord.guilds[GUILD].members[USER] == {ROLE, OTHER_ROLE}
    assert len(discord.requests) == 1


def test_connector_add_member_already_member_adds_roles_one_by_one(discord, connector):
    # Given the user is already in the guild without roles (Discord answers 204 and ignores roles)
    with_member(discord)
    # When they are added with two roles
    connector.add_member(GUILD, USER, discord.authorize(USER), [ROLE, OTHER_ROLE])
    # Then both roles were given through the role endpoint
    assert discord.guilds[GUILD].members[USER] == {ROLE, OTHER_ROLE}
    assert len(discord.requests_to("PUT", rf"/guilds/{GUILD}/members/{USER}/roles/\d+")) == 2


def test_connector_add_member_with_expired_member_token_asks_member_to_reconnect(discord, connector):
    # Given / When the member's OAuth2 token is no longer valid
    with pytest.raises(PermanentError) as caught:
        connector.add_member(GUILD, USER, "expired-token", [ROLE])
    # Then the member must connect Discord again
    assert caught.value.reason == "discord_authorization_expired"
    assert "join page" in caught.value.message


def test_connector_remove_role_the_member_lacks_succeeds(discord, connector):
    # Given a member without the role
    with_member(discord)
    # When / Then removing it is a success
    connector.remove_role(GUILD, USER, ROLE)
    assert discord.guilds[GUILD].members[USER] == set()


def test_connector_remove_role_from_member_who_left_succeeds(discord, connector):
    # Given / When the member already left the guild (404 Unknown Member)
    connector.remove_role(GUILD, USER, ROLE)
    # Then the goal (no role) holds: success
    assert USER not in discord.guilds[GUILD].members


def test_connector_remove_role_that_was_deleted_succeeds(discord, connector):
    # Given the creator deleted the role itself
    with_member(discord)
    discord.guilds[GUILD].roles.discard(ROLE)
    # When / Then removing it is a success
    connector.remove_role(GUILD, USER, ROLE)


def test_connector_add_role_to_member_who_left_is_retryable(discord, connector):
    # Given / When the member left between the read and the change
    with pytest.raises(RetryableError):
        connector.add_role(GUILD, USER, ROLE)
    # Then converging again (which re-adds them) is the way forward


def test_connector_kick_member_who_left_succeeds(discord, connector):
    # Given / When a member who is not in the guild is kicked
    connector.kick(GUILD, USER)
    # Then it is a success and the guild is unchanged
    assert discord.guilds[GUILD].members == {}


def test_connector_member_changes_carry_headers_and_audit_reason(discord, connector):
    # Given a member with a role
    with_member(discord, {ROLE})
    # When the role is removed and a member read
    connector.remove_role(GUILD, USER, ROLE)
    connector.get_member(GUILD, USER)
    # Then the bot identified itself and said why in the audit log
    change, read = discord.requests
    assert change.headers["authorization"] == f"Bot {BOT_TOKEN}"
    assert change.headers["User-Agent"] == "DiscordBot (https://github.com/membergate/membergate, 0.1)"
    assert change.headers["X-Audit-Log-Reason"] == "Membergate%3A%20subscription%20ended"
    assert discord.guilds[GUILD].audit_log == [(f"delete_role:{ROLE}", "Membergate: subscription ended")]
    assert "X-Audit-Log-Reason" not in read.headers and "Content-Type" not in read.headers


# --- direct messages ------------------------------------------------------------------------


def test_connector_send_dm_long_text_truncated_to_2000(discord, connector):
    # Given a message far over Discord's 2000-character limit
    text = "word " * 1000
    # When it is sent
    connector.send_dm(USER, text)
    # Then what arrived fits and shows it was cut
    [(user, content)] = discord.delivered
    assert user == USER and len(content) <= 2000 and content.endswith("…")


def test_connector_send_dm_reuses_the_dm_channel(discord, connector):
    # Given / When two messages go to the same member
    connector.send_dm(USER, "first")
    connector.send_dm(USER, "second")
    # Then the DM channel was opened once
    assert len(discord.requests_to("POST", "/users/@me/channels")) == 1
    assert [c for _, c in discord.delivered] == ["first", "second"]


def test_connector_send_dm_closed_dms_is_permanent(discord, connector):
    # Given a member who does not accept DMs
    discord.users[USER].dms_open = False
    # When / Then
    with pytest.raises(PermanentError) as caught:
        connector.send_dm(USER, "hello")
    assert caught.value.reason == "dms_closed"
    assert discord.delivered == []


def test_connector_send_dm_empty_text_is_not_sent(discord, connector):
    # Given / When a template rendered to nothing
    with pytest.raises(PermanentError) as caught:
        connector.send_dm(USER, "   ")
    # Then nothing went out
    assert caught.value.reason == "empty_message"
    assert discord.requests == []


def test_truncate_message_short_text_unchanged():
    assert truncate_message("hello") == "hello"
    assert truncate_message("x" * 2000) == "x" * 2000


def test_truncate_message_does_not_split_emoji_sequences():
    # Given text of thumbs-up emoji with a skin tone (2 code points, 4 UTF-16 units each)
    text = "\U0001F44D\U0001F3FD" * 600
    # When it is truncated
    cut = truncate_message(text)
    # Then it fits in UTF-16 units, and no emoji lost its modifier
    assert len(cut.encode("utf-16-le")) // 2 <= 2000
    body = cut.removesuffix("…")
    assert body == "\U0001F44D\U0001F3FD" * (len(body) // 2)


def test_truncate_message_does_not_split_combining_marks():
    # Given an "e" + combining acute accent that straddles the limit
    text = "a" * 1998 + "e\u0301" + "b" * 10
    # When it is truncated
    cut = truncate_message(text)
    # Then the accent did not get separated from its letter
    assert cut == "a" * 1998 + "…"


def test_truncate_message_prefers_a_word_boundary():
    cut = truncate_message("abc " * 600)
    assert cut.endswith("abc…")


# --- identity provider ----------------------------------------------------------------------


def test_identity_authorize_url_asks_for_identify_and_guilds_join(discord, clock, guard):
    url = identity(discord, clock, guard).authorize_url("s/1", "https://m.example/cb")
    assert url == (
        f"{OAUTH_BASE}/authorize?response_type=code&client_id={CLIENT_ID}&scope=identify%20guilds.join"
        "&state=s%2F1&redirect_uri=https%3A%2F%2Fm.example%2Fcb&prompt=consent"
    )


def test_identity_exchange_code_returns_tokens_and_keeps_secret_out_of_body(discord, clock, guard):
    # Given a code Discord issued for our redirect URI
    code = discord.issue_code(USER, "https://m.example/cb")
    # When it is exchanged
    tokens = identity(discord, clock, guard).exchange_code(code, "https://m.example/cb", now=1_000)
    # Then the tokens expire 7 days later and the secret went in the Basic header only
    assert tokens.expires_at == 1_000 + 604_800 and tokens.refresh_token and "guilds.join" in tokens.scope
    [request] = discord.requests
    assert request.headers["Authorization"].startswith("Basic ")
    assert CLIENT_SECRET.encode() not in (request.body or b"")
    assert request.form["grant_type"] == ["authorization_code"]


def test_identity_refresh_used_refresh_token_asks_member_to_reconnect(discord, clock, guard):
    # Given a refresh token that was already used
    oauth = identity(discord, clock, guard)
    refresh = discord.issue_refresh_token(USER)
    oauth.refresh(refresh, now=1_000)
    # When it is used again
    with pytest.raises(PermanentError) as caught:
        oauth.refresh(refresh, now=2_000)
    # Then Discord's invalid_grant means: connect again
    assert caught.value.reason == "discord_authorization_expired"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_identity_token_endpoint_overloaded_is_retryable(discord, clock, guard, status):
    # Given the token endpoint is rate limited or failing
    discord.enqueue(HttpResponse(status, {"Retry-After": "3"}, b""))
    # When / Then
    with pytest.raises(RetryableError) as caught:
        identity(discord, clock, guard).refresh("r", now=1)
    assert caught.value.retry_after == 3.0


def test_identity_wrong_client_secret_tells_creator_which_secret(discord, clock, guard):
    oauth = DiscordIdentityProvider(discord, CLIENT_ID, lambda: "wrong", API_BASE, OAUTH_BASE, invalid_requests=guard)
    with pytest.raises(PermanentError) as caught:
        oauth.exchange_code(discord.issue_code(USER, "https://m.example/cb"), "https://m.example/cb", now=1)
    assert caught.value.reason == "discord_client_invalid"
    assert "DISCORD_CLIENT_SECRET_NAME" in caught.value.message


def test_identity_user_id_reads_the_member_id(discord, clock, guard):
    assert identity(discord, clock, guard).user_id(discord.authorize(USER)) == USER


def test_identity_user_id_with_revoked_token_asks_member_to_reconnect(discord, clock, guard):
    with pytest.raises(PermanentError) as caught:
        identity(discord, clock, guard).user_id("revoked")
    assert caught.value.reason == "discord_authorization_expired"


def test_discord_adapters_never_put_tokens_in_errors_or_logs(discord, clock, limits, guard, caplog):
    # Given failures on every path that handles a secret
    caplog.set_level("DEBUG")
    member_token = discord.authorize(USER)
    connector = build_connector(discord, clock, limits, guard)
    oauth = identity(discord, clock, guard)
    messages = []
    discord.enqueue(rate_limited(30.0))
    discord.enqueue(discord_error(403, 50013))
    discord.enqueue(HttpResponse(400, {}, b'{"error": "invalid_grant"}'))
    discord.enqueue(HttpResponse(500))
    # When they happen
    for call in (
        lambda: connector.get_member(GUILD, USER),
        lambda: connector.add_member(GUILD, USER, member_token, [ROLE]),
        lambda: oauth.refresh("refresh-secret-value", now=1),
        lambda: oauth.user_id(member_token),
    ):
        with pytest.raises((RetryableError, PermanentError)) as caught:
            call()
        messages.append(str(caught.value))
    # Then no token or secret appears anywhere
    seen = "\n".join(messages) + caplog.text
    for secret in (BOT_TOKEN, member_token, "refresh-secret-value", CLIENT_SECRET):
        assert secret not in seen


# --- HTTP transport -------------------------------------------------------------------------


def test_http_response_headers_are_case_insensitive():
    response = HttpResponse(200, {"X-RateLimit-Remaining": "3"}, b'{"a": 1}')
    assert response.headers["x-ratelimit-remaining"] == "3"
    assert response.headers.get("X-RATELIMIT-REMAINING") == "3"
    assert response.json() == {"a": 1}
    assert HttpResponse(502, {}, b"<html>").json() is None


def test_urllib_transport_returns_non_2xx_instead_of_raising():
    # Given a loopback server that answers 403 with a JSON error (loopback only; never the internet)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's naming
            body = b'{"code": 50013, "message": "Missing Permissions"}'
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-RateLimit-Bucket", "abc")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # When it is called
        response = UrllibTransport().request(
            "GET", f"http://127.0.0.1:{server.server_port}/x", headers={}, body=None, timeout=5
        )
    finally:
        server.shutdown()
        server.server_close()
    # Then the 403 comes back as a response
    assert response.status == 403
    assert response.headers["x-ratelimit-bucket"] == "abc"
    assert response.json()["code"] == 50013


def test_urllib_transport_connection_refused_is_retryable():
    # Given a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # When / Then the failure is retryable and keeps the query string (a possible OAuth code) out
    with pytest.raises(RetryableError) as caught:
        UrllibTransport().request("GET", f"http://127.0.0.1:{port}/cb?code=secret", headers={}, body=None, timeout=2)
    assert "secret" not in str(caught.value)
    assert urllib.parse.urlsplit(f"http://127.0.0.1:{port}/cb").path in str(caught.value)
