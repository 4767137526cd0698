"""The plan's downgrade timing through the admin API handler, stored in DynamoDB (moto) and audited."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def call(method, path, body=None, headers=AUTH):
    reply = load_handler("admin_api").lambda_handler(http_event(method, path, body=body, headers=headers), LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def test_plan_downgrade_timing_defaults_to_immediate_is_edited_audited_and_listed():
    with aws_stack():
        # Given a plan created without the option
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1",
                                                           "role_id": "2"})
        status, plan = call("POST", "/admin/plans", {"name": "Gold", "stripe_price_ids": ["price_p"],
                                                     "grants": [{"community_id": community["id"]}]})
        assert status == 201 and plan["downgrade"] == "immediate"
        # When the creator makes its downgrades wait for the period end
        status, edited = call("PATCH", f"/admin/plans/{plan['id']}", {"downgrade": "period_end"})
        # Then it is stored, listed, audited like other plan edits, and an unknown value is a 400 naming the field
        assert (status, edited["downgrade"]) == (200, "period_end")
        assert {p["id"]: p for p in call("GET", "/admin/plans")[1]["plans"]}[plan["id"]]["downgrade"] == "period_end"
        entries = call("GET", f"/admin/audit?since={int(time.time()) - 3600}")[1]["entries"]
        assert any(e["action"] == "plan.update" and e["detail"].get("downgrade") == "period_end" for e in entries)
        status, refused = call("PATCH", f"/admin/plans/{plan['id']}", {"downgrade": "tomorrow"})
        assert status == 400 and refused["error"]["field"] == "downgrade"


@pytest.mark.parametrize("value", ["PERIOD_END", "period_end\r\n", "période", 1, None, {"a": "b"}, "x" * 10_000])
def test_plan_downgrade_hostile_values_are_400_in_the_envelope(value):
    with aws_stack():
        # Given a plan
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1",
                                                           "role_id": "2"})
        # When it is created, or edited, with a value that is not one of the two timings
        created = call("POST", "/admin/plans", {"name": "Gold", "stripe_price_ids": ["price_p"],
                                                "grants": [{"community_id": community["id"]}], "downgrade": value})
        _, plan = call("POST", "/admin/plans", {"name": "Gold", "stripe_price_ids": ["price_q"],
                                                "grants": [{"community_id": community["id"]}]})
        edited = call("PATCH", f"/admin/plans/{plan['id']}", {"downgrade": value})
        # Then each is a 400 naming the field (null on PATCH means unchanged), never a 5xx
        assert created[0] == 400 and created[1]["error"]["field"] == "downgrade", created
        if value is None:
            assert edited[0] == 200 and edited[1]["downgrade"] == "immediate"
        else:
            assert edited[0] == 400 and edited[1]["error"]["field"] == "downgrade", edited
