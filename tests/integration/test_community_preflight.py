"""Registering a Discord community checks the bot first; POST /admin/communities/{id}/check re-checks."""

from __future__ import annotations

import pytest

from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

GUILD, ROLE = "710000000000000001", "710000000000000002"
BODY = {"platform": "discord", "name": "Club", "guild_id": GUILD, "role_id": ROLE, "on_revoke": "kick"}


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    with Pipeline(discord, env={"COMMUNITY_PREFLIGHT": "on"}) as p:
        yield p


def test_register_role_above_bot_refused_with_the_move_then_check_passes(pipeline):
    # Given the community's role above the bot's role
    pipeline.discord.guilds[GUILD].roles_above_bot.add(ROLE)
    # When the creator registers the community
    refused = pipeline.admin("POST", "/admin/communities", body=BODY)
    # Then it is refused in the envelope with the exact fix, and nothing is stored
    assert refused["status"] == 409, refused
    assert refused["body"]["error"]["code"] == "preflight_failed"
    assert f"move the Membergate role above 'Role {ROLE[-4:]}' in Server Settings → Roles" in refused["body"]["error"]["message"]
    assert pipeline.admin("GET", "/admin/communities")["body"]["communities"] == []
    # When the creator fixes the order and registers again
    pipeline.discord.guilds[GUILD].roles_above_bot.clear()
    created = pipeline.admin("POST", "/admin/communities", body=BODY)
    assert created["status"] == 201, created
    # Then the check route reports every check passing
    check = pipeline.admin("POST", f"/admin/communities/{created['body']['id']}/check")
    assert check["status"] == 200 and check["body"]["ok"] is True
    assert {c["name"] for c in check["body"]["checks"]} >= {"bot_in_guild", "manage_roles", "kick_members",
                                                            f"role_below_bot:{ROLE}", "server_members_intent"}


def test_check_reports_a_later_breakage_and_unknown_community(pipeline):
    # Given a registered community whose bot later lost Kick Members and the members intent
    created = pipeline.admin("POST", "/admin/communities", body=BODY)["body"]
    pipeline.discord.guilds[GUILD].bot_permissions.discard("KICK_MEMBERS")
    pipeline.discord.application_flags = 0
    # When the creator runs the check
    check = pipeline.admin("POST", f"/admin/communities/{created['id']}/check")["body"]
    # Then each failure carries its fix
    failed = {c["name"]: c["fix"] for c in check["checks"] if not c["ok"]}
    assert check["ok"] is False and set(failed) == {"kick_members", "server_members_intent"}
    assert "Kick Members" in failed["kick_members"]
    # And an unknown or hostile id is a 404/400 in the envelope
    assert pipeline.admin("POST", "/admin/communities/com_nope/check")["status"] == 404
    assert pipeline.admin("POST", "/admin/communities/%0D%0Ax/check")["status"] in (400, 404)


def test_register_bot_not_in_guild_says_to_invite_it(pipeline):
    # Given a guild the bot was never invited to
    pipeline.discord.guilds[GUILD].bot_present = False
    # When the creator registers it
    refused = pipeline.admin("POST", "/admin/communities", body=BODY)
    # Then the refusal says to invite the bot
    assert refused["status"] == 409 and "invite the Membergate bot" in refused["body"]["error"]["message"]
