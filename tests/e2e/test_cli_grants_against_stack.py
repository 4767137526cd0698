"""`membergate grant` and `membergate revoke` against the running local stack, as a creator would use them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from membergate.cli import app
from tests.e2e.conftest import ADMIN_TOKEN
from tests.e2e.test_local_stack import buy_through_the_stack, setup_plan

pytestmark = pytest.mark.e2e

runner = CliRunner()


def cli(stack, *args: str, token: str = ADMIN_TOKEN):
    return runner.invoke(app, ["--url", stack.base_url, "--token", token, *args])


def a_member(stack, name: str, guild: str) -> str:
    """A member who bought a plan of its own through the stack (a browser, Discord, Checkout)."""
    _, customer = buy_through_the_stack(stack, guild=guild, role=guild[:-1] + "2", kind="subscription",
                                        username=name, price={"price_id": f"price_{name}", "unit_amount": 500,
                                                              "currency": "eur", "interval": "month",
                                                              "product_name": name})
    return stack.get(f"/admin/members?stripe_customer_id={customer}", admin=True).json()["members"][0]["id"]


def test_cli_grant_then_revoke_a_manual_grant_audited(stack):
    # Given a plan, and a member who pays for another one
    plan = setup_plan(stack, "price_cli_grant", "720000000000000041")
    member_id = a_member(stack, "cligrant", "720000000000000021")
    # When the creator gives them the plan for 7 days
    given = cli(stack, "--json", "grant", member_id, "--plan", plan["id"], "--days", "7", "--reason", "moderator")
    # Then the grant exists, ends in 7 days, and the member holds the plan by it
    assert given.exit_code == 0, given.output
    grant = json.loads(given.output)
    assert grant["member_id"] == member_id and grant["plan_id"] == plan["id"] and grant["source"] == "manual"
    assert grant["until"] is not None and grant["ended_reason"] is None
    member = stack.get(f"/admin/members?member_id={member_id}", admin=True).json()["members"][0]
    assert any(e["plan_id"] == plan["id"] and e["state"] == "active" for e in member["entitlements"])
    # When the creator revokes it (the table output says what happened)
    ended = cli(stack, "revoke", grant["id"], "--reason", "no longer a moderator")
    # Then it is ended, and both actions are in the audit log with their reasons
    assert ended.exit_code == 0, ended.output
    assert f"grant {grant['id']} of {member_id} ended" in ended.output
    member = stack.get(f"/admin/members?member_id={member_id}", admin=True).json()["members"][0]
    assert not any(e["plan_id"] == plan["id"] and e["state"] == "active" for e in member["entitlements"])
    audit = stack.get(f"/admin/audit?since={stack.get('/_local/clock').json()['epoch'] - 86_400}&limit=200",
                      admin=True).json()["entries"]
    mine = [(e["action"], e["reason"], e["actor"].startswith("token:")) for e in audit if e["target"] == grant["id"]]
    assert mine == [("grant.create", "moderator", True), ("grant.end", "no longer a moderator", True)]


def test_cli_grant_with_no_end_prints_how_to_revoke(stack):
    plan = setup_plan(stack, "price_cli_forever", "720000000000000051")
    member_id = a_member(stack, "cliforever", "720000000000000031")
    given = cli(stack, "grant", member_id, "--plan", plan["id"], "--reason", "guest")
    assert given.exit_code == 0, given.output
    assert "until no end" in given.output and "membergate revoke mgr_" in given.output


@pytest.mark.parametrize("args, expected", [
    (["grant", "mbr_doesnotexist00000000", "--plan", "pln_nope", "--reason", "x"], "Check the id"),
    (["grant", "mbr_x\r\nX-Injected: 1", "--plan", "pln_nope", "--reason", "x"], "is not a member id"),
    (["grant", "mbr_éè", "--plan", "pln_nope", "--reason", "x"], "is not a member id"),
    (["grant", "mbr_x", "--plan", "", "--reason", "x"], "is not a plan id"),
    (["grant", "mbr_x", "--plan", "pln_nope", "--reason", "   "], "say why with --reason"),
    (["grant", "mbr_x", "--plan", "pln_nope", "--reason", "x" * 501], "keep it to 500"),
    (["revoke", "mgr_doesnotexist0000", "--reason", "x"], "Check the id"),
    (["revoke", "mgr_x/../../admin/plans", "--reason", "x"], "is not a grant id"),
])
def test_cli_grant_and_revoke_errors_are_clear_and_exit_1(stack, args, expected):
    result = cli(stack, *args)
    assert result.exit_code == 1, result.output
    assert expected in result.output and "Traceback" not in result.output


def test_cli_grant_days_out_of_range_is_a_usage_error(stack):
    result = cli(stack, "grant", "mbr_x", "--plan", "pln_x", "--days", "0", "--reason", "x")
    assert result.exit_code == 2


def test_cli_revoke_with_a_wrong_token_says_how_to_fix_it(stack):
    result = cli(stack, "revoke", "mgr_x", "--reason", "x", token="not-the-token")
    assert result.exit_code == 1 and "ADMIN_TOKEN" in result.output
