"""Through the running local stack: a server the bot was removed from costs one refused request, not one per member."""

from __future__ import annotations

import pytest

from tests.e2e.test_creator_controls_stack import _connect, _holders

pytestmark = pytest.mark.e2e


def _offer(stack, guild: str, role: str, price_id: str) -> str:
    assert stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": price_id, "unit_amount": 900, "currency": "eur", "interval": "month"}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Held", "guild_id": guild, "role_id": role})
    assert community.status == 201, community.text
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": "Monthly", "stripe_price_ids": [price_id], "grants": [{"community_id": community.json()["id"]}]})
    assert plan.status == 201, plan.text
    return plan.json()["id"]


def test_bot_removed_from_the_server_is_held_once_and_a_passing_check_resyncs_everyone(stack):
    # Given three members who connected Discord, and a bot removed from the server
    guild, role = "977400000000000001", "977400000000000002"
    plan_id = _offer(stack, guild, role, "price_e2e_hold")
    members = [_connect(stack, plan_id, f"held-{n}")[1] for n in range(3)]
    assert stack.post(f"/_local/discord/guilds/{guild}/setup", json_body={
        "bot_present": False, "roles": {role: {"name": "Members", "position": 1}}}).status == 200
    calls_before = len(stack.get("/_local/discord/calls").json()["calls"])
    # When the creator gives each of them 30 days
    for member_id in members:
        granted = stack.post(f"/admin/members/{member_id}/grants", admin=True,
                             json_body={"plan_id": plan_id, "days": 30, "reason": "guest"})
        assert granted.status == 201, granted.text
    stack.post("/_local/drain")
    # Then Discord refused one request, and each member's access says why and what to run
    calls = stack.get("/_local/discord/calls").json()["calls"][calls_before:]
    assert [c["status"] for c in calls if guild in c["path"]].count(403) == 1
    community_id = stack.get("/admin/communities", admin=True).json()["communities"]
    community_id = next(c["id"] for c in community_id if c.get("guild_id") == guild)
    for member_id in members:
        access = stack.get(f"/admin/members?member_id={member_id}", admin=True).json()["members"][0]["access"]
        assert access[0]["state"] == "failed" and f"/admin/communities/{community_id}/check" in access[0]["reason"]
    # When the check fails, then passes once the bot is back
    assert stack.post(f"/admin/communities/{community_id}/check", admin=True).json()["ok"] is False
    stack.post(f"/_local/discord/guilds/{guild}/setup", json_body={"bot_present": True})
    check = stack.post(f"/admin/communities/{community_id}/check", admin=True)
    assert check.status == 200 and check.json()["ok"] is True, check.text
    stack.post("/_local/drain")
    # Then every member held got the role
    assert sum(1 for roles in _holders(stack, guild).values() if role in roles) == 3
