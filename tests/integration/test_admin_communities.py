"""Communities through the admin handler under moto: read back, edit (by platform), archive, 405."""

from __future__ import annotations

import json

import pytest

from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
DISCORD = {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"}
TELEGRAM = {"platform": "telegram", "name": "TG club", "chat_id": "-1001234567890"}


def call(method, path, body=None, headers=AUTH):
    reply = load_handler("admin_api").lambda_handler(http_event(method, path, body=body, headers=headers), LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def test_community_patch_changes_only_the_fields_given_and_reads_back():
    with aws_stack():
        # Given a Discord community
        _, community = call("POST", "/admin/communities", DISCORD)
        # When renaming it, switching member messages to French and kicking on revoke
        status, edited = call("PATCH", f"/admin/communities/{community['id']}", {"name": "Le Club", "locale": "fr",
                                                                                 "on_revoke": "kick"})
        # Then those change, the place and role stay, and it reads back edited (in the list too)
        assert status == 200
        assert edited == {**community, "name": "Le Club", "locale": "fr", "on_revoke": "kick"}
        assert call("GET", f"/admin/communities/{community['id']}") == (200, edited)
        assert call("GET", "/admin/communities")[1]["communities"] == [edited]


@pytest.mark.parametrize("community,body,field", [
    (TELEGRAM, {"on_revoke": "remove_role"}, "on_revoke"),
    ({**DISCORD, "role_id": None, "on_revoke": "kick"}, {"on_revoke": "remove_role"}, "on_revoke"),
    (DISCORD, {"name": "   "}, "name"),
    (DISCORD, {"locale": "de"}, "locale"),
    (DISCORD, {"guild_id": "3"}, "guild_id"),
    (DISCORD, {"role_id": "3"}, "role_id"),
    (DISCORD, {"name": 3}, "name"),
])
def test_community_patch_refuses_what_the_platform_cannot_do_naming_the_field(community, body, field):
    with aws_stack():
        _, created = call("POST", "/admin/communities", {k: v for k, v in community.items() if v is not None})
        status, answer = call("PATCH", f"/admin/communities/{created['id']}", body)
        assert status == 400 and answer["error"]["field"] == field, answer
        assert call("GET", f"/admin/communities/{created['id']}") == (200, created)


def test_archived_community_cannot_be_granted_by_a_new_plan_and_archive_is_idempotent():
    with aws_stack():
        # Given a community a plan already grants
        _, community = call("POST", "/admin/communities", DISCORD)
        grants = [{"community_id": community["id"]}]
        assert call("POST", "/admin/plans", {"name": "Before", "stripe_price_ids": ["price_a"], "grants": grants})[0] == 201
        # When it is archived (twice)
        status, archived = call("POST", f"/admin/communities/{community['id']}/archive")
        again = call("POST", f"/admin/communities/{community['id']}/archive")[1]
        # Then it reads back archived with its first date, and a new plan granting it is refused
        assert status == 200 and archived["archived_at"] and again == archived
        status, refused = call("POST", "/admin/plans", {"name": "After", "stripe_price_ids": ["price_b"], "grants": grants})
        assert status == 400 and refused["error"]["field"] == "grants[0].community_id"
        assert "archived" in refused["error"]["message"]
        # And the plan that already granted it is untouched
        assert [p["name"] for p in call("GET", "/admin/plans")[1]["plans"]] == ["Before"]


@pytest.mark.parametrize("method,path", [("PATCH", "/admin/communities/com_nope"), ("POST", "/admin/communities/com_nope/archive")])
def test_community_edit_of_an_unknown_community_is_404(method, path):
    with aws_stack():
        status, body = call(method, path, {"name": "x"} if method == "PATCH" else None)
        assert status == 404 and "GET /admin/communities" in body["error"]["message"]


@pytest.mark.parametrize("method,path", [("DELETE", "/admin/communities/com_x"), ("PUT", "/admin/communities/com_x"),
                                         ("GET", "/admin/communities/com_x/archive"), ("PATCH", "/admin/communities")])
def test_wrong_method_on_a_community_path_is_405_and_without_token_401(method, path):
    with aws_stack():
        status, body = call(method, path, {})
        assert status == 405 and body["error"]["code"] == "method_not_allowed"
        assert call(method, path, {}, headers={})[0] == 401
