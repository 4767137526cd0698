"""The admin API's answers to bad input: 400 naming the field and saying what to do."""

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


def test_admin_guild_id_not_a_discord_id_says_where_to_find_it():
    with aws_stack():
        status, body = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "my-server"})
        assert status == 400
        assert body["error"]["field"] == "guild_id"
        assert "Copy ID" in body["error"]["message"]


def test_admin_remove_role_without_role_is_refused_with_the_choice():
    with aws_stack():
        status, body = call("POST", "/admin/communities", {"platform": "discord", "name": "Club",
                                                           "guild_id": "111111111111111111", "on_revoke": "remove_role"})
        assert status == 400 and body["error"]["field"] == "role_id" and "kick" in body["error"]["message"]


def test_admin_unknown_platform_and_extra_fields_rejected():
    with aws_stack():
        status, body = call("POST", "/admin/communities", {"platform": "irc", "name": "x", "guild_id": "1"})
        assert status == 400 and body["error"]["field"] == "platform"
        status, body = call("POST", "/admin/communities", {"platform": "discord", "name": "x", "guild_id": "1",
                                                           "role_id": "2", "colour": "blue"})
        assert status == 400 and body["error"]["field"] == "colour"


def test_admin_price_sold_by_two_plans_is_a_conflict():
    with aws_stack():
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
        plan = {"name": "M", "stripe_price_ids": ["price_x"], "grants": [{"community_id": community["id"]}]}
        assert call("POST", "/admin/plans", plan)[0] == 201
        status, body = call("POST", "/admin/plans", plan)
        assert status == 409 and "price_x" in body["error"]["message"]


def test_admin_unknown_route_is_404_and_members_without_filter_is_the_list():
    # Issue 7: without a filter the member list answers (it used to be a 400 naming stripe_customer_id).
    with aws_stack():
        status, body = call("GET", "/admin/nothing-here")
        assert status == 404 and "openapi.json" in body["error"]["message"]
        status, body = call("GET", "/admin/members")
        assert status == 200 and body == {"members": [], "next_cursor": None}


def test_admin_same_guild_registered_twice_is_a_conflict_naming_the_first():
    with aws_stack():
        # Given a guild registered as a community
        _, first = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
        # When it is registered again under another name
        status, body = call("POST", "/admin/communities", {"platform": "discord", "name": "Club 2", "guild_id": "1", "role_id": "3"})
        # Then it is refused with the existing community to use instead, and only one is listed
        assert status == 409 and first["id"] in body["error"]["message"]
        assert [c["id"] for c in call("GET", "/admin/communities")[1]["communities"]] == [first["id"]]
