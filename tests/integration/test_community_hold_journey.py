"""Through the functions under moto: a role above the bot holds the community once; a passing check resumes it."""

from __future__ import annotations

import pytest

from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, member_view, pay, setup_catalog
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


def test_community_hold_skips_requests_until_the_check_passes_then_resyncs(pipeline):
    p = pipeline
    # Given a role placed above the bot's: the member's access fails with Missing Permissions
    p.discord.guilds[GUILD].roles_above_bot.add(ROLE)
    plan_id = setup_catalog(p)
    pay(p, bind_discord(p, plan_id), plan_id)
    member = member_view(p)
    community_id = member["access"][0]["community_id"]
    assert member["access"][0]["state"] == "failed"
    assert f"/admin/communities/{community_id}/check" in member["access"][0]["reason"]
    # When the creator resyncs the member three times without fixing anything
    before = len(p.discord.requests)
    for _ in range(3):
        assert p.admin("POST", f"/admin/members/{member['id']}/resync")["status"] == 202
        p.pump()
    # Then only the first resync asked Discord again (a probe: read the member, one refused add); the others were skipped
    changes = [r for r in p.discord.requests[before:] if r.method == "PUT" and "/guilds/" in r.path]
    assert len(changes) == 1
    assert member_view(p)["access"][0]["state"] == "failed"
    # When the check still fails, nothing is released; once the role order is fixed it passes
    assert p.admin("POST", f"/admin/communities/{community_id}/check")["body"]["ok"] is False
    p.discord.guilds[GUILD].roles_above_bot.clear()
    check = p.admin("POST", f"/admin/communities/{community_id}/check")
    assert check["status"] == 200 and check["body"]["ok"] is True
    p.pump()
    # Then the member held behind the community was resynced and got the role
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    assert member_view(p)["access"][0]["state"] == "granted"
