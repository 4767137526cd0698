"""Every request the Discord adapters can make is checked against Discord's OpenAPI spec (and docs where it is silent)."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from membergate.adapters.discord import (
    OAUTH_SCOPE,
    BotRateLimits,
    DiscordCommunityConnector,
    DiscordIdentityProvider,
    InvalidRequestGuard,
)
from membergate.domain.errors import PermanentError
from tests.support import discord_spec
from tests.support.discord_spec import (
    API_BASE,
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    FakeClock,
    SpecCheckingDiscordTransport,
    SpecViolation,
)

pytestmark = pytest.mark.contract

GUILD = "100000000000000001"
USER = "300000000000000001"
ROLE, OTHER_ROLE = "200000000000000001", "200000000000000002"
REDIRECT = "https://members.example/discord/callback"
BOT_HEADERS = {
    "Authorization": f"Bot {BOT_TOKEN}",
    "User-Agent": "DiscordBot (https://github.com/membergate/membergate, 0.1)",
    "Content-Type": "application/json",
}


@pytest.fixture
def discord() -> SpecCheckingDiscordTransport:
    transport = SpecCheckingDiscordTransport()
    transport.add_guild(GUILD, {ROLE, OTHER_ROLE})
    transport.add_user(USER)
    return transport


@pytest.fixture
def connector(discord) -> DiscordCommunityConnector:
    clock = FakeClock()
    return DiscordCommunityConnector(
        discord, lambda: BOT_TOKEN, API_BASE, sleep=clock.sleep, monotonic=clock.monotonic,
        rate_limits=BotRateLimits(), invalid_requests=InvalidRequestGuard(),
    )


@pytest.fixture
def oauth(discord) -> DiscordIdentityProvider:
    return DiscordIdentityProvider(
        discord, CLIENT_ID, lambda: CLIENT_SECRET, API_BASE, "https://discord.com/oauth2",
        invalid_requests=InvalidRequestGuard(),
    )


# --- the connector ----------------------------------------------------------------------------


def test_connector_every_public_method_sends_requests_the_spec_allows(discord, connector, oauth):
    # Given a member who links Discord, joins, changes plan, gets messages and is removed
    code = discord.issue_code(USER, REDIRECT)
    # When every public method of both adapters is driven through the spec-checking transport
    tokens = oauth.exchange_code(code, REDIRECT, now=1_000)
    tokens = oauth.refresh(tokens.refresh_token, now=2_000)
    assert oauth.user_id(tokens.access_token) == USER
    account = oauth.account(tokens.access_token)
    assert (account.external_id, account.handle) == (USER, f"@user{USER[-4:]}")
    assert connector.get_member(GUILD, USER) is None
    connector.add_member(GUILD, USER, tokens.access_token, [ROLE])
    connector.add_member(GUILD, USER, tokens.access_token, [OTHER_ROLE])  # already there: 204 path
    connector.add_role(GUILD, USER, ROLE)
    connector.remove_role(GUILD, USER, OTHER_ROLE)
    assert connector.get_member(GUILD, USER).roles == frozenset({ROLE})
    connector.send_dm(USER, "Your membership ended. " * 200)
    connector.kick(GUILD, USER)
    connector.kick(GUILD, USER)  # already gone: 404 Unknown Member is success
    connector.remove_role(GUILD, USER, ROLE)  # member gone: success
    # Then each went to a documented operation (validation would have failed the test otherwise)
    assert set(discord.operations) == {
        "oauth2_token:authorization_code",
        "oauth2_token:refresh_token",
        "get_my_user",
        "get_guild_member",
        "add_guild_member",
        "add_guild_member_role",
        "delete_guild_member_role",
        "create_dm",
        "create_message",
        "delete_guild_member",
    }
    assert USER not in discord.guilds[GUILD].members


def test_connector_add_member_body_matches_bot_add_guild_member_request(discord, connector):
    # Given / When a member is added with duplicate roles in the input
    connector.add_member(GUILD, USER, discord.authorize(USER), [ROLE, ROLE, OTHER_ROLE])
    # Then the body validated (roles must be unique snowflakes) and carried both roles
    [request] = discord.requests_to("PUT", f"/guilds/{GUILD}/members/{USER}")
    assert request.json["roles"] == [ROLE, OTHER_ROLE]


def test_connector_dm_content_within_documented_limit(discord, connector):
    # Given / When a long message is sent
    connector.send_dm(USER, "x" * 5000)
    # Then the body validated and the content is within the 2000 characters the docs allow
    [request] = discord.requests_to("POST", r"/channels/\d+/messages")
    assert len(request.json["content"]) <= 2000


def test_connector_refusals_from_the_model_are_documented_answers(discord, connector):
    # Given the bot lost Manage Roles, and the member closed DMs
    discord.guilds[GUILD].members[USER] = set()
    discord.guilds[GUILD].bot_permissions.discard("MANAGE_ROLES")
    discord.users[USER].dms_open = False
    # When both are attempted
    with pytest.raises(PermanentError) as role_error:
        connector.add_role(GUILD, USER, ROLE)
    with pytest.raises(PermanentError) as dm_error:
        connector.send_dm(USER, "hello")
    # Then the error answers matched the spec's ErrorResponse, and were translated
    assert (role_error.value.reason, dm_error.value.reason) == ("missing_permissions", "dms_closed")


def test_identity_authorize_url_requests_only_scopes_the_spec_knows(oauth, discord):
    # Given the OAuth2 scopes Discord's spec lists for the authorization-code flow
    flows = discord.spec.document["components"]["securitySchemes"]["OAuth2"]["flows"]
    known = set(flows["authorizationCode"]["scopes"])
    # When the authorize URL is built
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(oauth.authorize_url("st", REDIRECT)).query)
    # Then its scopes are known and the documented query fields are present
    assert set(query["scope"][0].split(" ")) <= known
    assert query["scope"][0] == OAUTH_SCOPE
    assert {k: v[0] for k, v in query.items()} | {"scope": ""} == {
        "response_type": "code", "client_id": CLIENT_ID, "scope": "", "state": "st",
        "redirect_uri": REDIRECT, "prompt": "consent",
    }


# --- the validator cannot silently pass -----------------------------------------------------


def send(discord, method, path, headers=BOT_HEADERS, body=None):
    return discord.request(method, API_BASE + path, headers=headers, body=body, timeout=1)


def test_validator_rejects_a_path_not_in_the_spec(discord):
    with pytest.raises(SpecViolation, match="no path in the Discord spec matches"):
        send(discord, "GET", f"/guilds/{GUILD}/member/{USER}")


def test_validator_rejects_a_method_the_path_does_not_have(discord):
    with pytest.raises(SpecViolation, match="method not in the spec"):
        send(discord, "POST", f"/guilds/{GUILD}/members/{USER}/roles/{ROLE}")


def test_validator_rejects_a_body_that_breaks_the_schema(discord):
    # Given an add-member body without the required access_token
    with pytest.raises(SpecViolation, match="access_token"):
        send(discord, "PUT", f"/guilds/{GUILD}/members/{USER}", body=json.dumps({"roles": [ROLE]}).encode())


def test_validator_rejects_a_non_snowflake_path_parameter(discord):
    with pytest.raises(SpecViolation, match="guild_id"):
        send(discord, "GET", f"/guilds/my-server/members/{USER}")


def test_validator_rejects_a_body_where_none_is_defined(discord):
    with pytest.raises(SpecViolation, match="no request body"):
        send(discord, "DELETE", f"/guilds/{GUILD}/members/{USER}", body=b"{}")


def test_validator_rejects_missing_bot_credentials(discord):
    with pytest.raises(SpecViolation, match="security"):
        send(discord, "GET", f"/guilds/{GUILD}/members/{USER}", headers={"User-Agent": BOT_HEADERS["User-Agent"]})


def test_validator_rejects_a_bad_user_agent_and_raw_audit_reason(discord):
    with pytest.raises(SpecViolation, match="User-Agent"):
        send(discord, "GET", f"/guilds/{GUILD}/members/{USER}", headers={"Authorization": f"Bot {BOT_TOKEN}"})
    with pytest.raises(SpecViolation, match="X-Audit-Log-Reason"):
        send(discord, "DELETE", f"/guilds/{GUILD}/members/{USER}", headers=BOT_HEADERS | {"X-Audit-Log-Reason": "not encoded"})


def test_validator_rejects_token_requests_off_the_documented_form(discord):
    # Given token requests that break the documented fields or authenticate twice
    form = "application/x-www-form-urlencoded"
    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    cases = [
        ({"Content-Type": form, "Authorization": basic}, b"grant_type=authorization_code&redirect_uri=x", "needs"),
        ({"Content-Type": form, "Authorization": basic}, b"grant_type=password&username=a", "unknown form fields"),
        ({"Content-Type": form, "Authorization": basic},
         f"grant_type=refresh_token&refresh_token=r&client_id={CLIENT_ID}&client_secret=s".encode(), "exactly one way"),
        ({"Content-Type": "application/json", "Authorization": basic}, b'{"grant_type": "refresh_token"}', "form-urlencoded"),
    ]
    for headers, body, message in cases:
        # When / Then each is rejected
        with pytest.raises(SpecViolation, match=message):
            send(discord, "POST", "/oauth2/token", headers=headers, body=body)


def test_spec_checking_transport_skips_when_the_spec_is_absent(tmp_path, monkeypatch):
    # Given the specs directory holds no Discord spec, outside CI
    monkeypatch.setenv("MEMBERGATE_SPECS_DIR", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    discord_spec._load_spec.cache_clear()
    try:
        # When / Then building the transport skips, naming where it looked
        with pytest.raises(pytest.skip.Exception, match="openapi.json"):
            SpecCheckingDiscordTransport()
    finally:
        discord_spec._load_spec.cache_clear()


def test_spec_checking_transport_fails_under_ci_when_the_spec_is_absent(tmp_path, monkeypatch):
    # Given CI, where the specs must be present, and a specs directory without the Discord spec
    monkeypatch.setenv("MEMBERGATE_SPECS_DIR", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    discord_spec._load_spec.cache_clear()
    try:
        # When / Then the test fails instead of skipping
        with pytest.raises(pytest.fail.Exception, match="CI needs the specs"):
            SpecCheckingDiscordTransport()
    finally:
        discord_spec._load_spec.cache_clear()


def test_connector_send_message_carries_a_nonce_the_spec_allows_and_posts_once(discord, connector):
    # Given the platform-neutral connector over the bot
    from membergate.adapters.discord import DiscordConnector

    port = DiscordConnector(connector)
    key = "mbr_1:access_ended#com_1:1800000000"
    # When the same message is sent twice (a retry after a lost answer)
    port.send_message(USER, "Your membership ended.", idempotency_key=key)
    port.send_message(USER, "Your membership ended.", idempotency_key=key)
    # Then both requests validated, carried the same nonce (at most 25 characters) with
    # enforce_nonce, and the member got one message
    sent = [r for r in discord.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert len(sent) == 2
    nonces = {r.json["nonce"] for r in sent}
    assert len(nonces) == 1 and len(nonces.pop()) <= 25
    assert all(r.json["enforce_nonce"] is True for r in sent)
    assert len(discord.delivered) == 1


# --- preflight and the member list (issue 5 §4) ---------------------------------------------


def _discord_connector(connector):
    from membergate.adapters.discord import DiscordConnector

    return DiscordConnector(connector)


def _community(on_revoke="remove_role", role_id=ROLE):
    from membergate.domain.model import Community, OnRevoke, Platform

    return Community("com_1", Platform.DISCORD, "Club", GUILD, role_id, OnRevoke(on_revoke), "en", 0)


def test_preflight_all_set_passes_with_requests_the_spec_allows(discord, connector):
    # Given a guild where the bot has what it needs and sits above the role
    # When the preflight runs
    result = _discord_connector(connector).preflight(_community("kick"), [ROLE])
    # Then every check passes, through four GETs the spec allows
    assert result.ok, result.summary()
    paths = [(r.method, r.path) for r in discord.requests]
    assert paths == [("GET", "/applications/@me"), ("GET", f"/guilds/{GUILD}"), ("GET", f"/guilds/{GUILD}/roles"),
                     ("GET", f"/guilds/{GUILD}/members/{discord_spec.BOT_USER_ID}")]


def test_preflight_role_above_bot_names_the_move(discord, connector):
    # Given the granted role above the bot's role
    discord.guilds[GUILD].roles_above_bot.add(ROLE)
    # When the preflight runs
    result = _discord_connector(connector).preflight(_community(), [ROLE])
    # Then it fails saying which role to move where
    assert not result.ok
    assert f"move the Membergate role above 'Role {ROLE[-4:]}' in Server Settings → Roles" in result.summary()


def test_preflight_missing_permissions_intent_and_absent_bot(discord, connector):
    # Given a bot without Kick Members and Manage Roles, and no Server Members intent
    discord.guilds[GUILD].bot_permissions = {"CREATE_INSTANT_INVITE"}
    discord.application_flags = 0
    # When the preflight runs for a kicking community
    result = _discord_connector(connector).preflight(_community("kick"), [ROLE])
    # Then each missing piece is a failure with its fix
    failed = {c.name for c in result.failures()}
    assert failed == {"manage_roles", "kick_members", "server_members_intent"}
    assert "Kick Members" in result.summary() and "Privileged Gateway Intents" in result.summary()
    # And a guild the bot is not in says to invite it
    discord.guilds[GUILD].bot_present = False
    absent = _discord_connector(connector).preflight(_community(), [ROLE])
    assert [c.name for c in absent.failures()][0] == "bot_in_guild" and "invite the Membergate bot" in absent.summary()


def test_list_members_pages_with_limit_and_after(discord, connector):
    # Given a guild with three members
    for user in ("300000000000000003", "300000000000000002", "300000000000000001"):
        discord.guilds[GUILD].members[user] = {ROLE}
    # When the first page of two and the next are read
    first = connector.list_members(GUILD, limit=2)
    second = connector.list_members(GUILD, after=first[-1].user_id, limit=2)
    # Then they come in id order, each page asked with limit and after
    assert [m.user_id for m in first + second] == ["300000000000000001", "300000000000000002", "300000000000000003"]
    assert discord.requests[-1].path == f"/guilds/{GUILD}/members?limit=2&after=300000000000000002"
