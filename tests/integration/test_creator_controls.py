"""Creator controls through the admin handler under moto: audit log, manual grants, access codes."""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager

import pytest

from membergate import bootstrap
from membergate.domain.grants import OneTimeGrant
from membergate.domain.model import CheckoutGate, Member, PlanKind
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, aws_stack
from tests.support.atomic_dynamo import atomic_writes
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
T0 = 1_800_000_000
DAY = 86_400
FINGERPRINT = "token:" + hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:12]


class Clock:
    def __init__(self, at: int) -> None:
        self.at = at

    def now(self) -> int:
        return self.at


def call(method, path, body=None, headers=AUTH):
    reply = load_handler("admin_api").lambda_handler(http_event(method, path, body=body, headers=headers), LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


@contextmanager
def stack_at(at: int = T0):
    clock = Clock(at)
    with aws_stack() as stack, bootstrap.overridden(clock=clock):
        yield stack, clock


def _offer(locale: str = "en") -> tuple[str, str]:
    """A community and a monthly plan for it; returns (community id, plan id)."""
    _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2",
                                                       "locale": locale})
    _, plan = call("POST", "/admin/plans", {"name": "M", "stripe_price_ids": ["price_m"], "grants": [{"community_id": community["id"]}]})
    return community["id"], plan["id"]


def _member(member_id: str = "mbr_1") -> str:
    bootstrap.admin().stores.members.create(Member(member_id, T0))
    return member_id


def _entitlement(member_id: str) -> dict:
    _, body = call("GET", f"/admin/members?member_id={member_id}")
    (entitlement,) = body["members"][0]["entitlements"]
    return entitlement


def _converge_work(stack) -> list[dict]:
    return [json.loads(m["Body"]) for m in stack.drain(stack.access_queue_url)]


def test_manual_grant_gives_access_for_its_days_through_the_dispatcher_queue():
    with stack_at() as (stack, _):
        # Given a member without any grant
        community_id, plan_id = _offer()
        member_id = _member()
        # When the creator gives them 10 days of the plan
        status, grant = call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 10, "reason": "moderator"})
        # Then the grant is answered, the entitlement is active until its end, and access work is queued
        assert status == 201
        assert grant["source"] == "manual" and grant["reason"] == "moderator" and grant["until"] == "2027-01-25T08:00:00Z"
        entitlement = _entitlement(member_id)
        assert entitlement["state"] == "active" and entitlement["until"] == grant["until"]
        assert [(w["kind"], w["community_id"]) for w in _converge_work(stack)] == [("converge", community_id)]


def test_manual_grant_forever_has_no_until_and_extending_it_is_a_conflict():
    with stack_at():
        # Given a grant with no end
        _, plan_id = _offer()
        member_id = _member()
        _, grant = call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": None, "reason": "guest"})
        # When the creator tries to extend it
        status, body = call("POST", f"/admin/grants/{grant['id']}/extend", {"days": 5, "reason": "more"})
        # Then it has no end to extend (409), and the entitlement says no end either
        assert grant["until"] is None
        assert status == 409 and body["error"]["code"] == "conflict"
        assert _entitlement(member_id)["until"] is None and _entitlement(member_id)["state"] == "active"


def test_extend_counts_from_the_end_or_from_now_once_it_ran_out():
    with stack_at() as (_, clock):
        # Given a 3-day grant
        _, plan_id = _offer()
        member_id = _member()
        _, grant = call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 3, "reason": "trial"})
        # When it is extended by 2 days while running, then by 1 day after it ran out
        _, running = call("POST", f"/admin/grants/{grant['id']}/extend", {"days": 2, "reason": "sorry"})
        clock.at = T0 + 10 * DAY
        assert _entitlement(member_id)["state"] == "ended"
        _, late = call("POST", f"/admin/grants/{grant['id']}/extend", {"days": 1, "reason": "again"})
        # Then the first runs to day 5, the second from now to now + 1 day, and access is back
        assert running["until"] == "2027-01-20T08:00:00Z"
        assert late["until"] == "2027-01-26T08:00:00Z"
        assert _entitlement(member_id)["state"] == "active"


def test_ending_a_manual_grant_keeps_what_a_lifetime_purchase_still_gives():
    with stack_at() as (stack, _):
        # Given a member with a lifetime purchase and a manual grant of the same plan
        _, plan_id = _offer()
        member_id = _member()
        bootstrap.admin().stores.grants.save(
            OneTimeGrant("cs_paid", member_id, plan_id, PlanKind.LIFETIME, T0 - DAY, None, CheckoutGate.PAID)
        )
        _, grant = call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 30, "reason": "bonus"})
        _converge_work(stack)
        # When the creator ends the manual grant (reason in the query)
        status, ended = call("DELETE", f"/admin/grants/{grant['id']}?reason=mistake")
        # Then it is ended (revoked) but the member keeps access through the lifetime purchase
        assert status == 200 and ended["ended_reason"] == "revoked"
        entitlement = _entitlement(member_id)
        assert entitlement["state"] == "active" and entitlement["until"] is None


def test_ending_the_only_grant_ends_access_and_queues_the_revoke():
    with stack_at() as (stack, _):
        # Given a member whose only source is a manual grant
        community_id, plan_id = _offer()
        member_id = _member()
        _, grant = call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 30, "reason": "guest"})
        _converge_work(stack)
        # When it is ended with the reason in the body
        status, _ = call("DELETE", f"/admin/grants/{grant['id']}", {"reason": "left the team"})
        # Then the entitlement ends and access work for the community is queued
        assert status == 200
        assert _entitlement(member_id)["state"] == "ended"
        assert [w["community_id"] for w in _converge_work(stack)] == [community_id]


def test_grant_routes_refuse_unknowns_and_missing_reason_in_the_envelope():
    with stack_at():
        _, plan_id = _offer()
        member_id = _member()
        cases = [
            ("POST", "/admin/members/mbr_nobody/grants", {"plan_id": plan_id, "days": 1, "reason": "x"}, 404, None),
            ("POST", f"/admin/members/{member_id}/grants", {"plan_id": "pln_nope", "days": 1, "reason": "x"}, 404, None),
            ("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 1}, 400, "reason"),
            ("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": "1", "reason": "x"}, 400, "days"),
            ("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 0, "reason": "x"}, 400, "days"),
            ("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 2.5, "reason": "x"}, 400, "days"),
            ("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 5.0, "reason": "x"}, 201, None),
            ("POST", "/admin/grants/mgr_nope/extend", {"days": 1, "reason": "x"}, 404, None),
            ("DELETE", "/admin/grants/mgr_nope?reason=x", None, 404, None),
            ("DELETE", "/admin/grants/mgr_nope", None, 400, "reason"),
            ("DELETE", "/admin/grants/mgr_nope", {"reason": {"a": [1]}}, 400, "reason"),
            ("PUT", "/admin/grants/mgr_nope", None, 405, None),
        ]
        for method, path, body, expected, field in cases:
            status, answer = call(method, path, body)
            assert status == expected, (method, path, answer)
            if expected == 201:  # JSON Schema's integer: 5.0 is 5
                assert answer["until"] == "2027-01-20T08:00:00Z"
                continue
            assert set(answer) == {"error"} and answer["error"]["message"]
            if field:
                assert answer["error"]["field"] == field
        # Without the token nothing is done or told
        assert call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 1, "reason": "x"},
                    headers={"authorization": "Bearer wrong"})[0] == 401


def test_audit_lists_every_admin_action_with_who_when_why_and_pages():
    with stack_at() as (_, clock):
        # Given a creator who registers a community, a plan, edits it, resyncs and grants a member,
        # then renames the community and archives it
        community_id, plan_id = _offer()
        member_id = _member()
        clock.at += 60
        call("PATCH", f"/admin/plans/{plan_id}", {"grace_days": 5})
        call("POST", f"/admin/members/{member_id}/resync")
        clock.at += 60
        _, grant = call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 7, "reason": "moderator"})
        call("POST", f"/admin/plans/{plan_id}/archive")
        assert call("PATCH", f"/admin/communities/{community_id}", {"name": "Club 2"})[0] == 200
        assert call("POST", f"/admin/communities/{community_id}/archive")[0] == 200
        # When the audit log is read two entries at a time
        seen, cursor = [], None
        while True:
            status, page = call("GET", f"/admin/audit?since={T0}&limit=2" + (f"&cursor={cursor}" if cursor else ""))
            assert status == 200
            seen += page["entries"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # Then every action is there once, oldest first, by the token's fingerprint, with the reason given
        assert [e["action"] for e in seen] == [
            "community.create", "plan.create", "plan.update", "member.resync", "grant.create", "plan.archive",
            "community.update", "community.archive"]
        assert {e["actor"] for e in seen} == {FINGERPRINT}
        assert ADMIN_TOKEN not in json.dumps(seen)
        granted = seen[4]
        assert granted["target"] == grant["id"] and granted["member_id"] == member_id and granted["reason"] == "moderator"
        assert seen[2]["detail"] == {"grace_days": "5"}
        assert seen[6]["target"] == community_id and seen[6]["detail"] == {"name": "Club 2"}


def test_member_timeline_shows_admin_actions_on_that_member():
    with stack_at():
        # Given a member granted by the creator
        _, plan_id = _offer()
        member_id = _member()
        call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": 7, "reason": "compensation"})
        # When the timeline is read
        _, timeline = call("GET", f"/admin/members/{member_id}/timeline")
        # Then the grant appears as an admin entry with who and why
        admin_entries = [e for e in timeline["entries"] if e["kind"] == "admin"]
        assert [e["summary"] for e in admin_entries] == [f"grant.create by {FINGERPRINT}: compensation"]


def test_audit_since_in_the_future_is_empty_and_bad_cursor_is_400():
    with stack_at():
        _offer()
        assert call("GET", f"/admin/audit?since={T0 + DAY}") == (200, {"entries": [], "next_cursor": None})
        status, body = call("GET", "/admin/audit?cursor=abc")
        assert status == 400 and body["error"]["field"] == "cursor"


# --- access codes ---------------------------------------------------------------------------


def _signed_in(member_id: str, session_id: str) -> str:
    sessions = bootstrap.admin().stores.sessions
    sessions.create_session(session_id, T0 + DAY)
    sessions.set_session_member(session_id, member_id)
    return f"mg_session={session_id}"


def redeem(plan_id: str, code: str, cookie: str | None, *, lang: str = "en", ip: str = "203.0.113.7") -> dict:
    from urllib.parse import urlencode

    event = http_event("POST", f"/join/{plan_id}/code", body=urlencode({"code": code}).encode(),
                       headers={"content-type": "application/x-www-form-urlencoded", "accept-language": lang},
                       cookies=[cookie] if cookie else [], source_ip=ip)
    return load_handler("join").lambda_handler(event, LambdaContext())


def test_access_code_is_stored_hashed_and_redeemed_once_per_member_into_a_grant():
    with stack_at() as (stack, _):
        # Given a two-use code for a 14-day grant, and two signed-in members
        community_id, plan_id = _offer()
        status, created = call("POST", "/admin/access-codes", {"plan_id": plan_id, "days": 14, "uses": 2, "expires_at": None})
        first, second = _member("mbr_a"), _member("mbr_b")
        # When the first member redeems it twice (a double submit, typed in lower case) and the second once
        cookie = _signed_in(first, "sess_a")
        replies = [redeem(plan_id, created["code"].lower(), cookie) for _ in range(2)]
        replies.append(redeem(plan_id, created["code"].replace("-", " "), _signed_in(second, "sess_b")))
        # Then each goes back to the join page, both members hold an access-code grant, and the code is not stored in clear
        assert status == 201 and len(created["code"]) == 14
        assert [r["statusCode"] for r in replies] == [303, 303, 303]
        assert replies[0]["headers"]["Location"].endswith(f"/join/{plan_id}?redeemed=1")
        for member_id in (first, second):
            entitlement = _entitlement(member_id)
            assert entitlement["state"] == "active" and entitlement["until"] == "2027-01-29T08:00:00Z"
        items = boto_items(stack)
        assert created["code"].replace("-", "") not in json.dumps(items, default=str)
        (code_item,) = [i for i in items if i["pk"]["S"].startswith("ACCESS_CODE#")]
        assert code_item["used"]["N"] == "2"


def boto_items(stack) -> list[dict]:
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    return client.scan(TableName=stack.membership_table)["Items"]


def test_access_code_used_up_expired_wrong_or_for_another_plan_is_a_clear_page_in_the_members_language():
    with stack_at() as (_, clock):
        # Given a single-use code already used, a code expiring in an hour, and a French community's member
        _, plan_id = _offer("fr")
        _, other_plan = call("POST", "/admin/plans", {"name": "Y", "stripe_price_ids": ["price_y"],
                                                     "grants": [{"community_id": call("GET", "/admin/communities")[1]["communities"][0]["id"]}]})
        _, used = call("POST", "/admin/access-codes", {"plan_id": plan_id, "days": 1, "uses": 1, "expires_at": None})
        _, soon = call("POST", "/admin/access-codes", {"plan_id": plan_id, "days": 1, "uses": 5, "expires_at": T0 + 3600})
        redeem(plan_id, used["code"], _signed_in(_member("mbr_first"), "sess_first"))
        cookie = _signed_in(_member("mbr_fr"), "sess_fr")
        clock.at = T0 + 7200
        # When the French member tries each
        pages = {
            "used": redeem(plan_id, used["code"], cookie, lang="fr"),
            "expired": redeem(plan_id, soon["code"], cookie, lang="fr"),
            "wrong": redeem(plan_id, "NOPE-NOPE-NOPE", cookie, lang="fr"),
            "other": redeem(other_plan["id"], soon["code"], cookie, lang="fr"),
            "nobody": redeem(plan_id, soon["code"], None, lang="fr"),
        }
        # Then each is an HTML page saying what happened and what to do, in French ("tu")
        assert {k: r["statusCode"] for k, r in pages.items()} == {
            "used": 409, "expired": 409, "wrong": 400, "other": 400, "nobody": 403}
        assert "autant de fois" in pages["used"]["body"] and "Demande-en" in pages["used"]["body"]
        assert "a expiré" in pages["expired"]["body"]
        assert "On ne connaît pas ce code" in pages["wrong"]["body"]
        assert "autre offre" in pages["other"]["body"]
        assert "abord ton compte" in pages["nobody"]["body"]
        assert all(r["headers"]["Content-Type"].startswith("text/html") for r in pages.values())
        assert _entitlement_or_none("mbr_fr") is None


def _entitlement_or_none(member_id: str):
    _, body = call("GET", f"/admin/members?member_id={member_id}")
    entitlements = body["members"][0]["entitlements"]
    return entitlements[0] if entitlements else None


def test_ten_members_racing_for_the_last_use_of_a_code_exactly_one_wins():
    from concurrent.futures import ThreadPoolExecutor

    from membergate.services.controls import redeem_code

    with stack_at():
        # Given a single-use code and ten members
        _, plan_id = _offer()
        _, code = call("POST", "/admin/access-codes", {"plan_id": plan_id, "days": 5, "uses": 1, "expires_at": None})
        members = [_member(f"mbr_{i}") for i in range(10)]
        admin = bootstrap.admin()
        # When they all redeem it at once (one Lambda request each: the service, since one resolver
        # object serves one request at a time; moto made atomic per write, as DynamoDB is)
        with atomic_writes(), ThreadPoolExecutor(10) as pool:
            outcomes = list(pool.map(lambda m: redeem_code(admin.stores, admin.queue, typed=code["code"], plan_id=plan_id,
                                                           member_id=m, now=T0).refusal, members))
        # Then exactly one gets in; the others are told it is used up
        assert sorted(outcomes) == [""] + ["code_used"] * 9
        assert len([m for m in members if _entitlement_or_none(m)]) == 1


@pytest.mark.parametrize(("body", "content_type", "base64_body", "status"), [
    (b"code=\xff\xfe", "application/x-www-form-urlencoded", True, 400),
    (b'{"code": "\xff"}', "application/json", True, 400),
    ('{"code": ' + "[" * 5000 + "]" * 5000 + "}", "application/json", False, 400),
    ('{"code": 5}', "application/json", False, 400),
    ('["ABCD-EFGH-JKLM"]', "application/json", False, 400),
    ("code=" + "A" * 70_000, "application/x-www-form-urlencoded", False, 413),
])
def test_access_code_form_bad_body_is_a_page_in_the_members_language(body, content_type, base64_body, status):
    with stack_at():
        # Given a French community's join page and a signed-in member
        _, plan_id = _offer("fr")
        cookie = _signed_in(_member("mbr_fr_code"), "sess_fr_code")
        # When the code form is posted with a body it cannot read
        event = http_event("POST", f"/join/{plan_id}/code", body=body, base64_body=base64_body,
                           headers={"content-type": content_type, "accept-language": "fr"}, cookies=[cookie])
        reply = load_handler("join").lambda_handler(event, LambdaContext())
        # Then a 4xx HTML page in French that says the code did not go through, not the admin JSON envelope
        assert reply["statusCode"] == status, reply
        assert reply["headers"]["Content-Type"].startswith("text/html")
        assert "Ce code ne fonctionne pas" in reply["body"] and '"error"' not in reply["body"]


def test_access_code_routes_refuse_bad_input_in_the_envelope():
    with stack_at():
        _, plan_id = _offer()
        for body, field in [
            ({"plan_id": "pln_nope", "days": 1, "uses": 1, "expires_at": None}, "plan_id"),
            ({"plan_id": plan_id, "days": 1, "uses": 0, "expires_at": None}, "uses"),
            ({"plan_id": plan_id, "days": 1, "uses": 1, "expires_at": T0 - 1}, "expires_at"),
            ({"plan_id": plan_id, "days": 1, "uses": 1, "expires_at": "tomorrow"}, "expires_at"),
        ]:
            status, answer = call("POST", "/admin/access-codes", body)
            assert status == 400 and answer["error"]["field"] == field, answer
        # and the audit log names the codes made, never the code itself
        _, made = call("POST", "/admin/access-codes", {"plan_id": plan_id, "days": None, "uses": 3, "expires_at": None})
        _, log = call("GET", f"/admin/audit?since={T0}")
        assert [e["target"] for e in log["entries"] if e["action"] == "access_code.create"] == [made["id"]]
        assert made["code"] not in json.dumps(log)


# --- removals preview -----------------------------------------------------------------------


def test_removals_preview_lists_what_the_sweep_would_remove_by_then_and_nothing_a_live_grant_still_gives():
    with stack_at():
        # Given three members: a 5-day grant, a 20-day grant, and a 5-day grant beside a lifetime purchase
        community_id, plan_id = _offer()
        short, long_, covered = _member("mbr_short"), _member("mbr_long"), _member("mbr_covered")
        for member_id, days in ((short, 5), (long_, 20), (covered, 5)):
            call("POST", f"/admin/members/{member_id}/grants", {"plan_id": plan_id, "days": days, "reason": "x"})
        bootstrap.admin().stores.grants.save(
            OneTimeGrant("cs_life", covered, plan_id, PlanKind.LIFETIME, T0 - DAY, None, CheckoutGate.PAID))
        call("POST", f"/admin/members/{covered}/resync")
        # When the creator previews removals by day 10, then by day 30
        status, by_day_10 = call("GET", f"/admin/removals/preview?until={T0 + 10 * DAY}")
        _, by_day_30 = call("GET", f"/admin/removals/preview?until={T0 + 30 * DAY}")
        # Then day 10 shows only the 5-day grant's member, when and why; day 30 adds the 20-day one
        assert status == 200 and by_day_10["complete"] is True
        assert by_day_10["removals"] == [{"member_id": short, "community_id": community_id,
                                          "at": "2027-01-20T08:00:00Z", "reason": "grant_expired"}]
        assert [r["member_id"] for r in by_day_30["removals"]] == [short, long_]


def test_removals_preview_needs_until_as_epoch_seconds():
    with stack_at():
        for query in ("", "?until=tomorrow", "?until=-1"):
            status, body = call("GET", f"/admin/removals/preview{query}")
            assert status == 400 and body["error"]["field"] == "until"
