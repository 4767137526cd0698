"""Removals made and their undo, through the admin handler under moto."""

from __future__ import annotations

import pytest

from membergate import bootstrap
from membergate.domain.controls import Removal, removal_id
from tests.integration.test_creator_controls import DAY, T0, _converge_work, _entitlement, _member, _offer, call, stack_at

pytestmark = pytest.mark.integration


def _removed(member_id: str, community_id: str, plan_id: str, at: int, reason: str = "grace_expired") -> Removal:
    """A removal as the dispatcher keeps it (services/access.py), written through the DynamoDB adapter."""
    removal = Removal(removal_id(member_id, community_id, at - 30 * DAY), member_id, community_id, "discord", at, reason, plan_id)
    assert bootstrap.admin().stores.removals.record(removal)
    return removal


def test_removal_recorded_twice_is_one_record():
    with stack_at():
        # Given a removal kept once
        community_id, plan_id = _offer()
        first = _removed(_member(), community_id, plan_id, T0)
        # When the dispatcher's retry keeps it again, later
        again = bootstrap.admin().stores.removals.record(Removal(first.id, "mbr_1", community_id, "discord", T0 + 60, "grace_expired", plan_id))
        # Then the second write is refused and the list shows one removal, at the first time
        _, listed = call("GET", f"/admin/removals?since={T0 - DAY}")
        assert again is False
        assert [(r["id"], r["at"]) for r in listed["removals"]] == [(first.id, "2027-01-15T08:00:00Z")]


def test_removals_list_newest_first_across_days_with_since_and_pages():
    with stack_at(T0 + 10 * DAY):
        # Given removals on day 0, day 2 (two) and day 9
        community_id, plan_id = _offer()
        made = [_removed(_member(f"mbr_{i}"), community_id, plan_id, at)
                for i, at in enumerate((T0, T0 + 2 * DAY, T0 + 2 * DAY + 5, T0 + 9 * DAY))]
        # When the creator lists since day 1 two at a time, then everything
        status, page_1 = call("GET", f"/admin/removals?since={T0 + DAY}&limit=2")
        _, page_2 = call("GET", f"/admin/removals?since={T0 + DAY}&limit=2&cursor={page_1['next_cursor']}")
        _, everything = call("GET", f"/admin/removals?since={T0 - DAY}&limit=200")
        # Then newest first, day 0 left out by since, pages joining without a gap or a repeat
        assert status == 200
        assert [r["id"] for r in page_1["removals"] + page_2["removals"]] == [made[3].id, made[2].id, made[1].id]
        assert page_2["next_cursor"] is None
        assert [r["id"] for r in everything["removals"]] == [m.id for m in reversed(made)]
        first = everything["removals"][-1]
        assert first["platform"] == "discord" and first["reason"] == "grace_expired" and first["plan_id"] == plan_id
        assert first["undo_until"] == "2027-01-22T08:00:00Z" and first["undone_at"] is None


def test_undo_gives_a_manual_grant_audited_and_tells_the_member():
    with stack_at(T0 + DAY) as (stack, _):
        # Given a member removed yesterday when grace ran out
        community_id, plan_id = _offer(locale="fr")
        member_id = _member()
        removal = _removed(member_id, community_id, plan_id, T0)
        _converge_work(stack)
        # When the creator undoes it
        status, body = call("POST", f"/admin/removals/{removal.id}/undo", {"reason": "kicked by mistake"})
        # Then access is given back as a manual grant with that reason, for the undo window by default
        # (intended change: it used to have no end, free access for good after a failed payment)
        assert status == 200, body
        assert body["removal"]["undone_at"] == "2027-01-16T08:00:00Z" and body["removal"]["undo_grant_id"] == body["grant"]["id"]
        assert body["grant"]["source"] == "manual" and body["grant"]["reason"] == "kicked by mistake"
        assert body["grant"]["until"] == "2027-01-23T08:00:00Z" and _entitlement(member_id)["state"] == "active"
        # and the answer says billing did not restart and how the member keeps access: paying again via the link
        assert body["billing_restarted"] is False
        assert body["next_step"].startswith("Billing was not restarted")
        assert f"/join/{plan_id}" in body["next_step"] and "2027-01-23T08:00:00Z" in body["next_step"]
        # and access work plus the member's message (once per removal) are queued
        work = _converge_work(stack)
        assert ("converge", community_id) in [(w["kind"], w["community_id"]) for w in work]
        notify = [w for w in work if w["kind"] == "notify"]
        assert [(n["message_kind"], n["message_period"]) for n in notify] == [("access_restored", removal.id)]
        # and the audit log says who undid what and why
        _, log = call("GET", f"/admin/audit?since={T0}")
        actions = {(e["action"], e["target"]) for e in log["entries"]}
        assert ("removal.undo", removal.id) in actions and ("grant.create", body["grant"]["id"]) in actions
        # and the list shows it undone
        _, listed = call("GET", f"/admin/removals?since={T0 - DAY}")
        assert listed["removals"][0]["undone_at"] == "2027-01-16T08:00:00Z"


@pytest.mark.parametrize(("reason", "says", "never"), [
    ("pass_expired", "there is no subscription to restart", "failed payment"),
    ("revoked", "there is no subscription to restart", "failed payment"),
    ("grant_expired", "a grant you gave, an access code or a migration", "failed payment"),
    ("canceled", "subscription stays as it is (canceled: cancelled, nothing is charged)", "failed payment"),
    ("grace_expired", "after a failed payment", "no subscription"),
    ("refunded", "the payment was refunded", "failed payment"),
    ("dispute", "the payment is disputed", "failed payment"),
])
def test_undo_next_step_says_what_became_of_billing_by_the_removals_reason(reason: str, says: str, never: str):
    with stack_at(T0 + DAY):
        # Given a removal made for this reason
        community_id, plan_id = _offer()
        removal = _removed(_member(), community_id, plan_id, T0, reason=reason)
        # When the creator undoes it
        status, body = call("POST", f"/admin/removals/{removal.id}/undo", {"reason": "mistake"})
        # Then the next step tells what happened to billing for that reason, and names the grant given
        assert status == 200, body
        assert says in body["next_step"] and never not in body["next_step"]
        assert body["grant"]["id"] in body["next_step"]


def test_undo_for_some_days_gives_a_grant_ending_then():
    with stack_at(T0 + DAY):
        # Given a removal / When undone for 3 days / Then the grant ends 3 days from now
        community_id, plan_id = _offer()
        removal = _removed(_member(), community_id, plan_id, T0)
        status, body = call("POST", f"/admin/removals/{removal.id}/undo", {"reason": "goodwill", "days": 3})
        assert status == 200 and body["grant"]["until"] == "2027-01-19T08:00:00Z"


def test_undo_with_days_null_explicitly_gives_access_with_no_end():
    with stack_at(T0 + DAY):
        # Given a removal / When undone with "days": null given explicitly
        community_id, plan_id = _offer()
        removal = _removed(_member(), community_id, plan_id, T0)
        status, body = call("POST", f"/admin/removals/{removal.id}/undo", {"reason": "lifetime gift", "days": None})
        # Then the grant has no end, and the answer says nothing is billed
        assert status == 200 and body["grant"]["until"] is None
        assert body["billing_restarted"] is False and "no end" in body["next_step"]
        # and the way to end it names this grant, not a placeholder
        assert f"DELETE /admin/grants/{body['grant']['id']}" in body["next_step"] and "{id}" not in body["next_step"]


def test_undo_gives_back_only_the_place_removed_unless_every_place_is_asked():
    with stack_at(T0 + DAY):
        # Given a plan granting two Discord servers, and a member removed from one of them
        _, first = call("POST", "/admin/communities", {"platform": "discord", "name": "A", "guild_id": "1", "role_id": "2"})
        _, second = call("POST", "/admin/communities", {"platform": "discord", "name": "B", "guild_id": "3", "role_id": "4"})
        _, plan = call("POST", "/admin/plans", {"name": "Both", "stripe_price_ids": ["price_m"], "grants": [
            {"community_id": first["id"]}, {"community_id": second["id"]}]})
        removal = _removed(_member("mbr_1"), first["id"], plan["id"], T0)
        other = _removed(_member("mbr_2"), first["id"], plan["id"], T0)
        # When the creator undoes the first member's removal (default), and the second one's for every place
        assert call("POST", f"/admin/removals/{removal.id}/undo", {"reason": "mistake"})[0] == 200
        assert call("POST", f"/admin/removals/{other.id}/undo", {"reason": "mistake", "every_place": True})[0] == 200
        # Then the first gets back only the server removed from; the second both
        def places(member_id):
            _, body = call("GET", f"/admin/members?member_id={member_id}")
            return {e["community_id"]: e["state"] for e in body["members"][0]["entitlements"]}
        assert places("mbr_1") == {first["id"]: "active"}
        assert places("mbr_2") == {first["id"]: "active", second["id"]: "active"}


def test_undo_twice_is_already_undone_and_gives_one_grant():
    with stack_at(T0 + DAY):
        # Given a removal undone once
        community_id, plan_id = _offer()
        member_id = _member()
        removal = _removed(member_id, community_id, plan_id, T0)
        call("POST", f"/admin/removals/{removal.id}/undo", {"reason": "mistake"})
        # When undone again
        status, body = call("POST", f"/admin/removals/{removal.id}/undo", {"reason": "mistake again"})
        # Then 409 already_undone, and the member holds one manual grant
        assert status == 409 and body["error"]["code"] == "already_undone"
        grants = [g for g in bootstrap.admin().stores.grants.for_member(member_id) if g.source == "manual"]
        assert len(grants) == 1


def test_undo_after_the_window_is_refused_with_the_way_to_grant_instead():
    with stack_at(T0 + 7 * DAY + 1):
        # Given a removal more than 7 days old
        community_id, plan_id = _offer()
        removal = _removed(_member(), community_id, plan_id, T0)
        # When the creator tries to undo it
        status, body = call("POST", f"/admin/removals/{removal.id}/undo", {"reason": "late"})
        # Then 409, saying to give a grant instead
        assert status == 409 and body["error"]["code"] == "undo_window_closed"
        assert "POST /admin/members/mbr_1/grants" in body["error"]["message"]


def test_undo_unknown_or_hostile_answers_in_the_envelope():
    with stack_at():
        _offer()
        answers = [
            call("POST", "/admin/removals/rmv_nope/undo", {"reason": "x"}),
            call("POST", "/admin/removals/rmv_x%0D%0Aevil/undo", {"reason": "x"}),
            call("POST", "/admin/removals/rmv_nope/undo", {"reason": "x"}, headers={}),
            call("GET", "/admin/removals/rmv_nope/undo"),
            call("POST", "/admin/removals/rmv_nope/undo", {"reason": ""}),
            call("POST", "/admin/removals/rmv_nope/undo", {"reason": "x", "days": 0}),
            call("GET", "/admin/removals?cursor=%C3%A9"),
            call("GET", "/admin/removals?since=tomorrow"),
            call("POST", "/admin/removals/rmv_nope/undo", {"reason": "x", "every_place": "yes"}),
            call("POST", "/admin/removals/rmv_nope/undo", {"reason": "x", "days": "null"}),
            call("POST", "/admin/removals/rmv_nope/undo", {"reason": "x", "every_place": {"a": [[[]]]}}),
        ]
        assert [status for status, _ in answers] == [404, 400, 401, 405, 400, 400, 400, 400, 400, 400, 400]
        assert all(set(body) == {"error"} and {"code", "message"} <= set(body["error"]) for _, body in answers)
        assert "GET /admin/removals" in answers[0][1]["error"]["message"]
