"""`membergate doctor` against the running local stack: its GET /admin/health half (issue 7)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from membergate.cli import app
from tests.e2e.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

runner = CliRunner()
# A guild of this test's own: the session's stack is shared, and other tests' communities are theirs.
GUILD, ROLE, VIP = "740000000000000101", "740000000000000102", "740000000000000103"
DEPLOYMENT = ("secret ", "schedule ", "dead-letter queue ")


def doctor(stack):
    result = runner.invoke(app, ["--url", stack.base_url, "--token", ADMIN_TOKEN, "--json", "doctor"])
    return result.exit_code, {c["check"]: c for c in json.loads(result.output)["checks"]}


def test_doctor_reports_the_deployment_green_then_a_role_moved_above_the_bot(stack):
    # Given a Discord server whose two roles sit below the bot's (position 10 in the stand-in)
    assert stack.post(f"/_local/discord/guilds/{GUILD}/setup", json_body={"roles": {
        ROLE: {"name": "Member", "position": 3}, VIP: {"name": "VIP", "position": 4}}}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Doctor club", "guild_id": GUILD, "role_id": ROLE}).json()
    stack.post("/_local/stripe/_control/prices", json_body={"price_id": "price_doctor_vip", "unit_amount": 900,
                                                            "currency": "eur", "interval": "month"})
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": "Doctor VIP", "stripe_price_ids": ["price_doctor_vip"],
        "grants": [{"community_id": community["id"], "role_id": VIP}]})
    assert plan.status == 201, plan.text
    mine = f"discord community {community['id']} (Doctor club): "
    # When the creator runs the doctor
    _, checks = doctor(stack)
    # Then the stack's secrets, schedules and dead-letter queue (read from template.yaml) pass, and so does this bot
    deployment = {name: c for name, c in checks.items() if name.startswith(DEPLOYMENT)}
    assert {"schedule membergate-local-lifecycle is enabled", "schedule membergate-local-reconcile is enabled",
            "schedule membergate-local-kpi-snapshots is enabled"} <= set(deployment)
    assert "secret /membergate/stripe-webhook-secrets is set" in deployment
    assert all(c["ok"] for c in deployment.values()), deployment
    assert {n: c["ok"] for n, c in checks.items() if n.startswith(mine)} == {
        f"{mine}bot_in_guild": True, f"{mine}manage_roles": True, f"{mine}create_instant_invite": True,
        f"{mine}role_below_bot:{ROLE}": True, f"{mine}role_below_bot:{VIP}": True, f"{mine}server_members_intent": True}
    # When the creator drags the VIP role above the bot's in Discord
    stack.post(f"/_local/discord/guilds/{GUILD}/setup", json_body={"roles": {VIP: {"name": "VIP", "position": 11}}})
    status, checks = doctor(stack)
    # Then the doctor fails on exactly that, with the move to make
    assert status == 1
    failing = {n: c["fix"] for n, c in checks.items() if n.startswith(mine) and not c["ok"]}
    assert failing == {f"{mine}role_below_bot:{VIP}": "move the Membergate role above 'VIP' in Server Settings → Roles"}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_health_route_hostile_calls_answer_in_the_envelope(stack, method):
    # A wrong method, no token, a non-ASCII token: 4xx envelopes, never a 5xx
    assert stack.request(method, "/admin/health", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status == 405
    for headers in ({}, {"Authorization": "Bearer \u00e9t\u00e9".encode().decode("latin-1")}):
        reply = stack.request("GET", "/admin/health", headers=headers)
        assert reply.status == 401 and reply.json()["error"]["code"]


def test_health_route_with_query_junk_runs_the_checks(stack):
    # Query junk (invalid UTF-8, CR/LF, 5,000 characters) is ignored: the checks run and answer 200.
    # Once, not once per method above: each run checks every community of the shared stack (seconds).
    reply = stack.request("GET", "/admin/health?%FF=%0D%0A&x=" + "y" * 5000, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert reply.status == 200 and isinstance(reply.json()["checks"], list)
