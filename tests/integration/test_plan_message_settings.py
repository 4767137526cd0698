"""Per-plan notice settings and welcome text through the admin API handler, stored in DynamoDB (moto)."""

from __future__ import annotations

import json

import pytest

from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def call(method, path, body=None, headers=AUTH):
    reply = load_handler("admin_api").lambda_handler(http_event(method, path, body=body, headers=headers), LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def _plan(**extra) -> tuple[int, dict]:
    _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
    return call("POST", "/admin/plans", {"name": "Monthly", "stripe_price_ids": ["price_p"],
                                         "grants": [{"community_id": community["id"]}], **extra})


def test_plan_create_with_notices_and_welcome_reads_back():
    with aws_stack():
        # When a plan is created with its own notice days and welcome
        status, plan = _plan(renewal_notice_days=14, trial_notice_days=60,
                             welcome_message="  Salut {name} ! Les règles sont dans #règles. {manage_url}  ")
        # Then they are stored (the welcome trimmed) and read back by GET
        assert status == 201
        assert (plan["renewal_notice_days"], plan["trial_notice_days"]) == (14, 60)
        assert plan["welcome_message"] == "Salut {name} ! Les règles sont dans #règles. {manage_url}"
        assert call("GET", f"/admin/plans/{plan['id']}") == (200, plan)


def test_plan_defaults_are_seven_and_three_days_and_the_default_welcome():
    with aws_stack():
        _, plan = _plan()
        assert (plan["renewal_notice_days"], plan["trial_notice_days"], plan["welcome_message"]) == (7, 3, "")


def test_plan_patch_null_turns_a_notice_off_and_absent_keeps_it():
    with aws_stack():
        # Given a plan with the defaults
        _, plan = _plan()
        # When the creator turns renewal notices off, then edits only the welcome
        status, off = call("PATCH", f"/admin/plans/{plan['id']}", {"renewal_notice_days": None, "trial_notice_days": 10})
        _, welcomed = call("PATCH", f"/admin/plans/{plan['id']}", {"welcome_message": "Hi {name}"})
        # Then null is off, what was not sent is kept, and GET and the plan list agree
        assert status == 200 and (off["renewal_notice_days"], off["trial_notice_days"]) == (None, 10)
        assert welcomed == {**off, "welcome_message": "Hi {name}"}
        assert call("GET", f"/admin/plans/{plan['id']}") == (200, welcomed)
        listed = {p["id"]: p for p in call("GET", "/admin/plans")[1]["plans"]}
        assert listed[plan["id"]] == welcomed
        # And an empty welcome (or null) goes back to the default
        assert call("PATCH", f"/admin/plans/{plan['id']}", {"welcome_message": None})[1]["welcome_message"] == ""


@pytest.mark.parametrize(
    "body,field",
    [
        ({"renewal_notice_days": 0}, "renewal_notice_days"),
        ({"renewal_notice_days": 61}, "renewal_notice_days"),
        ({"trial_notice_days": "3"}, "trial_notice_days"),
        ({"trial_notice_days": 2.5}, "trial_notice_days"),
        ({"trial_notice_days": True}, "trial_notice_days"),
        ({"welcome_message": "x" * 1501}, "welcome_message"),
        ({"welcome_message": "Hi {prenom}"}, "welcome_message"),
        ({"welcome_message": "bell \x07"}, "welcome_message"),
        ({"welcome_message": 12}, "welcome_message"),
    ],
)
def test_plan_patch_bad_setting_is_400_naming_it(body, field):
    with aws_stack():
        _, plan = _plan()
        status, answer = call("PATCH", f"/admin/plans/{plan['id']}", body)
        assert status == 400 and answer["error"]["field"] == field and answer["error"]["message"]
        # And nothing changed
        assert call("GET", f"/admin/plans/{plan['id']}") == (200, plan)


def test_plan_create_bad_welcome_is_400_and_no_plan_is_made():
    with aws_stack():
        status, answer = _plan(welcome_message="Hello {first_name}")
        assert status == 400 and answer["error"]["field"] == "welcome_message"
        assert "{name} {community} {manage_url}" in answer["error"]["message"]
        assert call("GET", "/admin/plans")[1]["plans"] == []
