"""Relink through the admin API: access moves to the new Discord account and the old one loses its role."""

from __future__ import annotations

import pytest

from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, member_view, pay, setup_catalog
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

NEW_USER = "800000000000000004"


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    discord.add_user(NEW_USER)
    with Pipeline(discord) as p:
        yield p


def test_relink_moves_the_role_to_the_new_account_and_takes_it_from_the_old(pipeline):
    p = pipeline
    # Given a paying member whose first Discord account has the role, and their new account in the server
    plan_id = setup_catalog(p)
    pay(p, bind_discord(p, plan_id), plan_id)
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    p.discord.guilds[GUILD].members[NEW_USER] = set()
    member_id = member_view(p)["id"]
    # When the creator relinks the member to the new account
    reply = p.admin("POST", f"/admin/members/{member_id}/identities",
                    body={"platform": "discord", "external_id": NEW_USER})
    p.pump()
    # Then the old account lost the role, the new one has it, and the member is found by the new id only
    assert reply["status"] == 200, reply
    assert reply["body"]["previous_external_id"] == USER and reply["body"]["old_account_failed"] == []
    assert p.discord.guilds[GUILD].members[USER] == set()
    assert p.discord.guilds[GUILD].members[NEW_USER] == {ROLE}
    found = p.admin("GET", f"/admin/members?discord_user_id={NEW_USER}")["body"]["members"]
    assert [m["id"] for m in found] == [member_id]
    assert p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"] == []
    # And the admin member view shows the delivery state per community
    assert [(a["community_id"], a["state"]) for a in found[0]["access"]] == [(reply["body"]["communities"][0], "granted")]


def test_relink_to_an_account_of_another_member_is_a_conflict(pipeline):
    p = pipeline
    # Given two members, each with their own Discord account
    plan_id = setup_catalog(p)
    pay(p, bind_discord(p, plan_id), plan_id)
    member_id = member_view(p)["id"]
    from membergate import bootstrap
    from membergate.domain.model import Identity, Member, Platform

    stores = bootstrap.admin().stores
    stores.members.create(Member(id="mbr_other", created_at=0))
    stores.members.bind_identity("mbr_other", Identity(Platform.DISCORD, NEW_USER))
    # When the first is relinked to the second's account, or with hostile input
    taken = p.admin("POST", f"/admin/members/{member_id}/identities", body={"platform": "discord", "external_id": NEW_USER})
    bad = p.admin("POST", f"/admin/members/{member_id}/identities", body={"platform": "discord", "external_id": "1\r\n2"})
    unknown = p.admin("POST", "/admin/members/mbr_nobody/identities", body={"platform": "discord", "external_id": "42"})
    # Then: 409, 400 and 404 in the envelope, and the first member keeps their account and role
    assert (taken["status"], bad["status"], unknown["status"]) == (409, 400, 404)
    assert all("error" in r["body"] for r in (taken, bad, unknown))
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
