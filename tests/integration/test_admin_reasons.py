"""Creator guard-rails through the admin handler under moto: a "why" on catalogue and member actions, readable names."""

from __future__ import annotations

import pytest

from membergate import bootstrap
from tests.integration.test_creator_controls import T0, _member, call, stack_at

pytestmark = pytest.mark.integration


def _reasons() -> dict[str, list[str]]:
    _, log = call("GET", f"/admin/audit?since={T0}&limit=200")
    found: dict[str, list[str]] = {}
    for entry in log["entries"]:
        found.setdefault(entry["action"], []).append(entry.get("reason") or "")
    return found


def test_catalogue_and_member_actions_keep_the_reason_given_in_the_audit_log():
    with stack_at():
        # Given a creator who says why at each step
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1",
                                                           "role_id": "2", "reason": "launch"})
        _, plan = call("POST", "/admin/plans", {"name": "M", "stripe_price_ids": ["price_m"],
                                                "grants": [{"community_id": community["id"]}], "reason": "launch offer"})
        member_id = _member()
        # When they edit, resync, send a claim link and archive, each with a reason (and one archive without a body)
        replies = [
            call("PATCH", f"/admin/plans/{plan['id']}", {"seats": 50, "reason": "founder places"}),
            call("PATCH", f"/admin/communities/{community['id']}", {"locale": "fr", "reason": "French audience"}),
            call("POST", f"/admin/members/{member_id}/resync", {"reason": "role lost after a server move"}),
            call("POST", f"/admin/members/{member_id}/claim-link", {"reason": "asked by email"}),
            call("POST", f"/admin/plans/{plan['id']}/archive", {"reason": "offer ended"}),
            call("POST", f"/admin/communities/{community['id']}/archive"),
        ]
        # Then each succeeds and the audit log shows each reason with its action ("" where none was given)
        assert [status for status, _ in replies] == [200, 200, 202, 201, 200, 200], replies
        assert _reasons() == {
            "community.create": ["launch"], "plan.create": ["launch offer"], "plan.update": ["founder places"],
            "community.update": ["French audience"], "member.resync": ["role lost after a server move"],
            "member.claim_link": ["asked by email"], "plan.archive": ["offer ended"], "community.archive": [""],
        }
        plan_after = bootstrap.admin().stores.catalog.get_plan(plan["id"])
        assert plan_after is not None and plan_after.seats == 50


def test_reason_blank_too_long_or_not_text_is_refused_in_the_envelope():
    with stack_at():
        # Given a plan
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
        _, plan = call("POST", "/admin/plans", {"name": "M", "stripe_price_ids": ["price_m"],
                                                "grants": [{"community_id": community["id"]}]})
        # When a reason is blank, too long, or not a string
        answers = [call("POST", f"/admin/plans/{plan['id']}/archive", {"reason": reason}) for reason in ("   ", "x" * 501, 7)]
        # Then each is 400 on the reason field and nothing is archived
        assert [(status, body["error"]["field"]) for status, body in answers] == [(400, "reason")] * 3, answers
        assert call("GET", f"/admin/plans/{plan['id']}")[1]["archived_at"] is None


@pytest.mark.parametrize("name", ["\u202e\u200b", "\u200b \u00a0", "\ufeff\u2060", "\u3000\t"])
def test_names_made_only_of_invisible_characters_are_refused_saying_so(name):
    with stack_at():
        # Given a community and a plan with readable names
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
        _, plan = call("POST", "/admin/plans", {"name": "M", "stripe_price_ids": ["price_m"],
                                                "grants": [{"community_id": community["id"]}]})
        # When a name made only of invisible characters is given to each create and edit
        answers = [
            call("POST", "/admin/plans", {"name": name, "stripe_price_ids": ["price_m"], "grants": [{"community_id": community["id"]}]}),
            call("PATCH", f"/admin/plans/{plan['id']}", {"name": name}),
            call("POST", "/admin/communities", {"platform": "discord", "name": name, "guild_id": "3", "role_id": "4"}),
            call("POST", "/admin/communities", {"platform": "telegram", "name": name, "chat_id": "-1001234567890"}),
            call("PATCH", f"/admin/communities/{community['id']}", {"name": name}),
        ]
        # Then each is 400 on name, saying the name is invisible and what to give instead; the names stay
        for status, body in answers:
            assert status == 400 and body["error"]["field"] == "name", body
            assert "invisible characters" in body["error"]["message"] and "members can read" in body["error"]["message"]
            assert body["error"]["message"].startswith("name: is made only of invisible"), body  # no "Value error, "
        assert call("GET", f"/admin/plans/{plan['id']}")[1]["name"] == "M"
        assert call("GET", f"/admin/communities/{community['id']}")[1]["name"] == "Club"


def test_names_with_invisible_characters_around_visible_ones_are_kept_as_given():
    with stack_at():
        # Given a community; When a plan name has a zero-width joiner inside an emoji sequence and French text
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
        status, plan = call("POST", "/admin/plans", {"name": "Équipe 👩\u200d💻", "stripe_price_ids": ["price_m"],
                                                     "grants": [{"community_id": community["id"]}]})
        # Then it is accepted unchanged
        assert status == 201 and plan["name"] == "Équipe 👩\u200d💻"
