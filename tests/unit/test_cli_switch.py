"""`membergate switch`: the admin API's tier switch from the terminal, its body and its refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from membergate.cli import app
from tests.support.console_api import ScriptedApi, scripted

pytestmark = pytest.mark.unit

runner = CliRunner()
PATH = "/admin/members/mbr_1/switch"
SWITCHED = {"subscription_id": "sub_1", "from_plan_id": "pln_basic", "plan_id": "pln_vip", "price_id": "price_vip",
            "audit_id": "aud_1"}


def _cli(api: ScriptedApi, *args: str):
    return runner.invoke(app, ["--url", api.url, "--token", api.token, *args])


def test_switch_posts_plan_and_reason_and_says_what_moved():
    # Given a stack that switches
    api = ScriptedApi({("POST", PATH): [(200, SWITCHED)]})
    # When the creator moves a member to VIP with a price
    with scripted(api):
        result = _cli(api, "switch", "mbr_1", "pln_vip", "--reason", "asked by email", "--price", "price_vip")
    # Then the API got exactly the documented body, and the output says what moved and that Stripe prorates
    assert result.exit_code == 0, result.output
    assert api.requests == [("POST", PATH, {}, {"plan_id": "pln_vip", "reason": "asked by email", "price_id": "price_vip"})]
    assert "sub_1 moved from pln_basic to pln_vip" in result.output and "prorates" in result.output


def test_switch_refused_by_the_stack_shows_what_to_do_and_exits_1():
    # Given a member without a live subscription
    refusal = {"error": {"code": "no_subscription", "message": "the member has no live subscription; send them /join/pln_vip"}}
    api = ScriptedApi({("POST", PATH): [(409, refusal)]})
    # When the creator tries to switch them
    with scripted(api):
        result = _cli(api, "switch", "mbr_1", "pln_vip", "--reason", "gift")
    # Then the stack's words reach the terminal and the command fails
    assert result.exit_code == 1 and "send them /join/pln_vip" in result.output


def test_switch_with_a_malformed_id_is_refused_before_any_request():
    api = ScriptedApi({})
    with scripted(api):
        result = _cli(api, "switch", "mbr_1\r\nx", "pln_vip", "--reason", "why")
    assert result.exit_code != 0 and api.requests == []


def test_switch_scheduled_for_the_period_end_says_when_and_that_the_member_keeps_their_tier():
    # Given a stack that schedules the downgrade (the plan left makes downgrades wait)
    later = {**SWITCHED, "from_plan_id": "pln_vip", "plan_id": "pln_basic", "price_id": "price_basic",
             "effective": "period_end", "at": "2027-03-01T00:00:00Z"}
    api = ScriptedApi({("POST", PATH): [(200, later)]})
    # When the creator moves the member down
    with scripted(api):
        result = _cli(api, "switch", "mbr_1", "pln_basic", "--reason", "asked by email")
    # Then the output says it happens at the period end, when, and that nothing moves before
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "at the period end, 2027-03-01T00:00:00Z" in flat and "keeps pln_vip until then" in flat
    assert "prorates" not in flat
