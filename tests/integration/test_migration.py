"""Free -> paid migration through the admin handler under moto: create, import, track, announce, extend."""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager

import pytest

from membergate import bootstrap
from membergate.domain.grants import OneTimeGrant
from membergate.domain.model import CheckoutGate, PlanKind
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
T0 = 1_800_000_000
DAY = 86_400
DEADLINE = T0 + 14 * DAY
IDS = ["112233445566778801", "112233445566778802", "112233445566778803"]


class Clock:
    def __init__(self, at: int) -> None:
        self.at = at

    def now(self) -> int:
        return self.at


def call(method, path, body=None, headers=AUTH, *, base64_body=False):
    reply = load_handler("admin_api").lambda_handler(
        http_event(method, path, body=body, headers=headers, base64_body=base64_body), LambdaContext()
    )
    return reply["statusCode"], json.loads(reply["body"])


def upload(migration_id: str, text: str | bytes, content_type: str = "text/csv", **kw):
    return call("POST", f"/admin/migrations/{migration_id}/members", text, {**AUTH, "content-type": content_type}, **kw)


@contextmanager
def stack_at(at: int = T0):
    clock = Clock(at)
    with aws_stack() as stack, bootstrap.overridden(clock=clock):
        yield stack, clock


def _offer(locale: str = "fr") -> tuple[str, str]:
    _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2",
                                                       "locale": locale})
    _, plan = call("POST", "/admin/plans", {"name": "Founder", "stripe_price_ids": ["price_founder"],
                                            "grants": [{"community_id": community["id"]}]})
    return community["id"], plan["id"]


def _migration(community_id: str, plan_id: str) -> dict:
    status, body = call("POST", "/admin/migrations", {"community_id": community_id, "plan_id": plan_id, "deadline": DEADLINE,
                                                      "message": "Merci d'être là depuis le début"})
    assert status == 201, body
    return body


def _member_of(external_id: str) -> str:
    _, found = call("GET", f"/admin/members?discord_user_id={external_id}")
    return found["members"][0]["id"]


def _pay(member_id: str, plan_id: str, at: int) -> None:
    """The member took the offer: a paid (checkout) lifetime grant of the offer's plan."""
    bootstrap.admin().stores.grants.save(OneTimeGrant(f"cs_{member_id}", member_id, plan_id, PlanKind.LIFETIME, at, None,
                                                      CheckoutGate.PAID, amount=500, currency="eur"))


def test_import_gives_each_member_access_until_the_deadline_and_is_idempotent():
    with stack_at():
        # Given a free community moving to a founder price
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        text = "platform_id,email,name\n" + "\n".join(f"{i},m{n}@example.com,Member {n}" for n, i in enumerate(IDS))
        # When its members are imported, twice
        first = upload(migration["id"], text)
        second = upload(migration["id"], text)
        # Then each became a member with a migration grant until the deadline; the second import changed nothing
        assert first == (200, {"imported": 3, "already_members": 0, "invalid": []})
        assert second == (200, {"imported": 0, "already_members": 3, "invalid": []})
        _, found = call("GET", f"/admin/members?discord_user_id={IDS[0]}")
        (entitlement,) = found["members"][0]["entitlements"]
        assert entitlement["state"] == "active" and entitlement["until"] == "2027-01-29T08:00:00Z"
        member_id = found["members"][0]["id"]
        grants = bootstrap.admin().stores.grants.for_member(member_id)
        assert [(g.source, g.paid_at + (g.access_seconds or 0)) for g in grants] == [("migration", DEADLINE)]
        assert bootstrap.admin().stores.contacts.email(member_id) == "m0@example.com"
        _, state = call("GET", f"/admin/migrations/{migration['id']}")
        assert (state["imported"], state["paid"], state["pending"], state["would_lose_access_at_deadline"]) == (3, 0, 3, 3)


def test_import_reports_hostile_lines_and_stores_formulas_as_text():
    with stack_at():
        # Given a migration
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        text = ("platform_id,email,name\r\n"
                f"{IDS[0]},,=cmd|' /C calc'!A0\r\n"  # formula injection in a name
                "1122 3344 5566 7788 01,,\r\n"  # spaces inside an id
                "not-an-id,,\r\n"
                f"{IDS[1]},not an email,\r\n"
                f"{IDS[0]},,again\r\n"  # the same id twice
                '"unclosed,,\r\n'
                f"  {IDS[2]}  ,,\u00e9l\u00e8ve\x00\r\n")
        # When it is imported
        status, body = upload(migration["id"], text)
        # Then valid lines are imported, each bad one is reported with its line, and the formula is plain text
        assert status == 200
        assert body["imported"] == 2 and body["already_members"] == 0
        assert [i["line"] for i in body["invalid"]] == [3, 4, 5, 6, 7]
        assert "already on an earlier line" in body["invalid"][3]["reason"]
        member = bootstrap.admin().stores.members.get(_member_of(IDS[0]))
        assert member.identities[0].handle == "=cmd|' /C calc'!A0"
        assert bootstrap.admin().stores.members.get(_member_of(IDS[2])).identities[0].handle == "élève"


@pytest.mark.parametrize(
    ("body", "headers", "base64_body", "status", "code"),
    [
        (b"\xff\xfe" + "1".encode("utf-16-le"), {"content-type": "text/csv"}, True, 400, "invalid_request"),
        ("x" * (1024 * 1024 + 1), {"content-type": "text/csv"}, False, 413, "payload_too_large"),
        (f"{IDS[0]}\n", {"content-type": "application/json"}, False, 415, "unsupported_media_type"),
        (f"{IDS[0]}\n", {"content-type": "text/plain"}, False, 415, "unsupported_media_type"),
        ("\n".join(str(112233445566778801 + n) for n in range(10_001)), {"content-type": "text/csv"}, False, 400, "invalid_request"),
    ],
    ids=["not-utf8", "over-1MiB", "json-type", "other-type", "too-many-rows"],
)
def test_import_refuses_a_hostile_body_with_the_envelope(body, headers, base64_body, status, code):
    with stack_at():
        # Given a migration
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        # When a hostile file is sent
        got, reply = call("POST", f"/admin/migrations/{migration['id']}/members", body, {**AUTH, **headers},
                          base64_body=base64_body)
        # Then it is refused in the envelope, never a 5xx
        assert got == status, reply
        assert reply["error"]["code"] == code


def test_migration_routes_check_auth_first_and_answer_404_and_405():
    with stack_at():
        # Given no token, an unknown migration, and a wrong method
        no_token = call("POST", "/admin/migrations/mig_x/members", "1\n", {"content-type": "text/csv"})
        unknown = call("GET", "/admin/migrations/mig_unknown")
        wrong = call("DELETE", "/admin/migrations/mig_unknown")
        bad_id = call("GET", "/admin/migrations/mig%0Ax")
        # Then 401 before anything, 404 with what to do, 405, and 400 for an id that is not one
        assert no_token[0] == 401 and unknown[0] == 404 and "POST /admin/migrations" in unknown[1]["error"]["message"]
        assert wrong[0] == 405 and bad_id[0] in (400, 404)


def test_create_refuses_a_past_deadline_and_a_plan_not_granting_the_community():
    with stack_at():
        # Given a community and a plan for another community
        community_id, plan_id = _offer()
        _, other = call("POST", "/admin/communities", {"platform": "discord", "name": "Other", "guild_id": "9", "role_id": "8"})
        # When migrations are created with a past deadline and with the wrong community
        past = call("POST", "/admin/migrations", {"community_id": community_id, "plan_id": plan_id, "deadline": T0 - 1})
        wrong = call("POST", "/admin/migrations", {"community_id": other["id"], "plan_id": plan_id, "deadline": DEADLINE})
        # Then both are 400 naming the field
        assert past[0] == 400 and past[1]["error"]["field"] == "deadline"
        assert wrong[0] == 400 and wrong[1]["error"]["field"] == "plan_id"


def test_status_and_member_pages_tell_paid_from_pending_and_extend_moves_only_pending_grants():
    with stack_at() as (_, clock):
        # Given three imported members, one of whom took the founder price
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS))
        payer = _member_of(IDS[1])
        _pay(payer, plan_id, T0 + DAY)
        clock.at = T0 + 2 * DAY
        # When the creator reads the status and the pending members, then extends by a week
        _, state = call("GET", f"/admin/migrations/{migration['id']}")
        _, pending = call("GET", f"/admin/migrations/{migration['id']}/members?state=pending&limit=1")
        _, rest = call("GET", f"/admin/migrations/{migration['id']}/members?state=pending&limit=1&cursor={pending['next_cursor']}")
        _, paid = call("GET", f"/admin/migrations/{migration['id']}/members?state=paid")
        past = call("POST", f"/admin/migrations/{migration['id']}/extend", {"deadline": T0, "reason": "typo"})
        status, extended = call("POST", f"/admin/migrations/{migration['id']}/extend", {"deadline": DEADLINE + 7 * DAY, "reason": "holidays"})
        # Then 1 paid, 2 pending (2 would lose access), pages walk the pending ones, and only they moved
        assert (state["paid"], state["pending"], state["would_lose_access_at_deadline"]) == (1, 2, 2)
        assert state["reached"] == {"dm": 0, "post": 0, "email": 0, "none": 3}
        assert [m["member_id"] for m in paid["members"]] == [payer]
        assert len(pending["members"]) == 1 and rest["next_cursor"] is None
        assert {m["member_id"] for m in pending["members"] + rest["members"]} == {_member_of(IDS[0]), _member_of(IDS[2])}
        assert past[0] == 400 and past[1]["error"]["field"] == "deadline"
        assert status == 200 and extended["members_moved"] == 2 and extended["migration"]["deadline_epoch"] == DEADLINE + 7 * DAY
        _, audit = call("GET", f"/admin/audit?since={T0}")
        actions = [(e["action"], e["reason"]) for e in audit["entries"] if e["target"] == migration["id"]]
        assert ("migration.extend", "holidays") in actions
        fingerprint = "token:" + hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:12]
        assert {e["actor"] for e in audit["entries"] if e["target"] == migration["id"]} == {fingerprint}


def test_status_paged_counts_each_member_once_across_pages_and_answers_next_cursor():
    with stack_at() as (_, clock):
        # Given three imported members, one of whom took the founder price
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS))
        _pay(_member_of(IDS[1]), plan_id, T0 + DAY)
        clock.at = T0 + 2 * DAY
        path = f"/admin/migrations/{migration['id']}"
        # When the creator reads the status in pages of two, following next_cursor
        _, first = call("GET", f"{path}?limit=2")
        _, second = call("GET", f"{path}?limit=2&cursor={first['next_cursor']}")
        _, whole = call("GET", path)
        # Then each page counts its own members, the second one ends the walk, and the sums are the whole
        assert first["imported"] == 2 and first["next_cursor"] is not None
        assert second["imported"] == 1 and second["next_cursor"] is None
        summed = {k: first[k] + second[k] for k in ("imported", "paid", "pending", "would_lose_access_at_deadline")}
        assert summed == {"imported": 3, "paid": 1, "pending": 2, "would_lose_access_at_deadline": 2}
        assert {k: whole[k] for k in summed} == summed and whole["next_cursor"] is None


def test_status_counts_a_member_given_access_by_the_creator_as_paid():
    with stack_at() as (_, clock):
        # Given three imported members: one pays, one is given 90 days by hand, one does nothing
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS))
        _pay(_member_of(IDS[0]), plan_id, T0 + DAY)
        given = call("POST", f"/admin/members/{_member_of(IDS[1])}/grants", {"plan_id": plan_id, "days": 90, "reason": "moderator"})
        assert given[0] == 201, given
        clock.at = T0 + 2 * DAY
        # When the creator reads the status and the paid members
        _, state = call("GET", f"/admin/migrations/{migration['id']}")
        _, paid = call("GET", f"/admin/migrations/{migration['id']}/members?state=paid")
        # Then the payer and the member given access count as paid; the migration grant alone does not
        assert (state["paid"], state["pending"]) == (2, 1)
        assert {m["member_id"] for m in paid["members"]} == {_member_of(IDS[0]), _member_of(IDS[1])}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=a%0Ab", "cursor=%C3%A9%FF", "limit=" + "9" * 400])
def test_status_refuses_a_bad_page_with_the_error_envelope(query):
    with stack_at():
        # Given a migration
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        # When the page asked for is invalid
        status, reply = call("GET", f"/admin/migrations/{migration['id']}?{query}")
        # Then it is refused with the envelope, not a 5xx
        assert status in (400, 422) and set(reply["error"]) >= {"code", "message"}


def test_deadline_ends_the_migration_grants_of_those_who_did_not_pay():
    with stack_at() as (stack, clock):
        # Given two imported members, one of whom paid
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS[:2]))
        _pay(_member_of(IDS[0]), plan_id, T0 + DAY)
        # When the deadline has passed and the scheduled sweep runs
        clock.at = DEADLINE + 1
        load_handler("run_lifecycle").lambda_handler({}, LambdaContext())
        _, state = call("GET", f"/admin/migrations/{migration['id']}")
        _, payer = call("GET", f"/admin/members?discord_user_id={IDS[0]}")
        _, other = call("GET", f"/admin/members?discord_user_id={IDS[1]}")
        # Then the payer keeps access, the other's migration grant has ended on its own (access work queued),
        # and nobody is left to lose access at the (past) deadline
        assert state["paid"] == 1 and state["pending"] == 1 and state["would_lose_access_at_deadline"] == 0
        assert [e["state"] for e in payer["members"][0]["entitlements"]] == ["active"]
        assert [(e["state"], e["reason"]) for e in other["members"][0]["entitlements"]] == [("ended", "grant_expired")]
        work = [json.loads(m["Body"]) for m in stack.drain(stack.access_queue_url)]
        assert {"kind": "converge", "member": _member_of(IDS[1])} in [{"kind": w["kind"], "member": w["member_id"]} for w in work]


def _work(stack) -> list[dict]:
    return [json.loads(m["Body"]) for m in stack.drain(stack.access_queue_url)]


def test_announce_queues_one_offer_per_member_through_the_work_queue_and_not_twice():
    with stack_at() as (stack, _):
        # Given three imported members (their access work already drained)
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS))
        _work(stack)
        # When the creator announces twice before anything was delivered
        status, first = call("POST", f"/admin/migrations/{migration['id']}/announce")
        queued = _work(stack)
        _, second = call("POST", f"/admin/migrations/{migration['id']}/announce")
        # Then one NOTIFY per member went to the dispatcher's queue, with the deadline and a personal link token
        assert status == 200 and first["queued"] == 3
        assert {(w["kind"], w["message_kind"], w["message_period"]) for w in queued} == {
            ("notify", "migration_offer", f"{migration['id']}:1")}
        assert {w["details"]["ends_at"] for w in queued} == {str(DEADLINE)}
        assert len({w["details"]["offer_token"] for w in queued}) == 3
        # And the second announce writes to nobody still being delivered; without a channel nothing is posted, said so
        assert (second["queued"], second["in_flight"]) == (0, 3)
        assert first["posted"] is False and first["post_problem"].startswith("announcement_channel_missing")


def test_announce_paged_reaches_each_member_exactly_once_and_answers_next_cursor():
    with stack_at() as (stack, _):
        # Given three imported members (their access work already drained)
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS))
        _work(stack)
        path = f"/admin/migrations/{migration['id']}/announce"
        # When the creator announces in pages of two, following next_cursor
        _, first = call("POST", path, {"limit": 2})
        _, second = call("POST", path, {"cursor": first["next_cursor"], "limit": 2})
        queued = _work(stack)
        # Then the first page handled two members and pointed further, the second finished
        assert (first["queued"], second["queued"]) == (2, 1)
        assert first["next_cursor"] is not None and second["next_cursor"] is None
        # And every member got exactly one offer, all in the same round
        assert sorted(w["member_id"] for w in queued) == sorted({w["member_id"] for w in queued}) and len(queued) == 3
        assert {w["message_period"] for w in queued} == {f"{migration['id']}:1"}
        # And announcing again from the start writes to nobody twice
        _, again = call("POST", path, {"limit": 200})
        assert (again["queued"], again["in_flight"], again["next_cursor"]) == (0, 3, None)


@pytest.mark.parametrize("body", [{"limit": 0}, {"limit": 201}, {"cursor": 5}, {"limit": 2, "extra": 1}])
def test_announce_refuses_a_bad_page_with_the_error_envelope(body):
    with stack_at():
        # Given a migration
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        # When the page asked for is invalid
        status, reply = call("POST", f"/admin/migrations/{migration['id']}/announce", body)
        # Then it is refused with the envelope, not a 5xx
        assert status in (400, 422) and set(reply["error"]) >= {"code", "message"}


def test_offer_link_signs_the_member_in_once_valid_and_refuses_hostile_tokens():
    with stack_at() as (stack, clock):
        # Given an imported member and the personal link of their announcement
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], IDS[0])
        _work(stack)
        call("POST", f"/admin/migrations/{migration['id']}/announce")
        (work,) = _work(stack)
        token = work["details"]["offer_token"]
        join = load_handler("join")

        def open_link(value: str) -> dict:
            return join.lambda_handler(http_event("GET", f"/offer/{value}"), LambdaContext())

        # When the member opens it, and strangers try forged, hostile and unknown tokens
        opened = open_link(token)
        hostile = [open_link(v) for v in ("x" * 300, "%C3%A9t%C3%A9", "a%0D%0Ab", "unknown_token_123")]
        # Then the member lands on the offer's join page signed in; the others get an HTML page, never a 5xx
        assert opened["statusCode"] == 302 and opened["headers"]["Location"].endswith(f"/join/{plan_id}")
        assert opened["cookies"] and "HttpOnly" in opened["cookies"][0]
        assert [r["statusCode"] for r in hostile] == [404, 404, 404, 404]
        assert all("text/html" in r["headers"]["Content-Type"] for r in hostile)
        # When the member has paid, the link no longer signs anybody in (it may have been forwarded)
        _pay(_member_of(IDS[0]), plan_id, T0 + 60)
        after_paying = open_link(token)
        assert after_paying["statusCode"] == 409 and "already taken this offer" in after_paying["body"]


def test_whatsapp_import_reads_phone_numbers_as_people_type_them():
    with stack_at():
        # Given a WhatsApp group in manual mode moving to paid
        _, community = call("POST", "/admin/communities", {"platform": "whatsapp", "name": "Groupe", "mode": "manual",
                                                           "invite_link": "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv"})
        _, plan = call("POST", "/admin/plans", {"name": "Founder", "stripe_price_ids": ["price_wa_founder"],
                                                "grants": [{"community_id": community["id"]}]})
        migration = _migration(community["id"], plan["id"])
        # When phones are imported with spaces, 00 and without a country code
        status, body = upload(migration["id"], "platform_id\n+33 6 12 34 56 78\n0033612345679\n06 12 34 56 80\n")
        # Then the first two are members under their E.164 number; the third is refused with how to write it
        assert status == 200 and body["imported"] == 2
        assert [(i["line"], "country code" in i["reason"]) for i in body["invalid"]] == [(4, True)]
        _, found = call("GET", "/admin/members?whatsapp_phone=%2B33612345678")
        assert found["members"][0]["identities"] == [{"platform": "whatsapp", "external_id": "+33612345678"}]


def test_extend_in_pages_moves_the_deadline_at_once_then_each_member_once():
    with stack_at() as (_, clock):
        # Given three imported members
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS))
        clock.at = T0 + DAY
        path = f"/admin/migrations/{migration['id']}/extend"
        body = {"deadline": DEADLINE + 7 * DAY, "reason": "holidays", "limit": 2}
        # When the creator extends in pages of two, then repeats the whole extension
        first = call("POST", path, body)
        _, between = call("GET", f"/admin/migrations/{migration['id']}")
        second = call("POST", path, {**body, "cursor": first[1]["next_cursor"]})
        repeat = call("POST", path, {**body, "limit": 10})
        # Then the first page moved the deadline (the status shows it, nobody previewed as losing access
        # earlier), the pages moved each member once, and the repeat wrote nothing
        assert first[0] == 200 and first[1]["migration"]["deadline_epoch"] == DEADLINE + 7 * DAY
        assert (first[1]["members_moved"], first[1]["next_cursor"]) == (2, _member_of(IDS[1]))
        assert between["migration"]["deadline_epoch"] == DEADLINE + 7 * DAY and between["would_lose_access_at_deadline"] == 3
        assert second == (200, {**second[1], "members_moved": 1, "already_moved": 0, "next_cursor": None})
        assert repeat[0] == 200 and (repeat[1]["members_moved"], repeat[1]["already_moved"]) == (0, 3)
        for external_id in IDS:
            _, found = call("GET", f"/admin/members?discord_user_id={external_id}")
            (entitlement,) = found["members"][0]["entitlements"]
            assert entitlement["state"] == "active" and entitlement["until"] == "2027-02-05T08:00:00Z"


def test_extend_to_an_earlier_deadline_is_refused_unless_shorten_is_asked():
    with stack_at() as (_, clock):
        # Given a migration with three imported members, its deadline 2027-01-29
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS))
        clock.at = T0 + DAY
        path = f"/admin/migrations/{migration['id']}/extend"
        # When the creator "extends" to an earlier date, then does it again saying it is meant
        refused = call("POST", path, {"deadline": DEADLINE - 7 * DAY, "reason": "typo"})
        _, unchanged = call("GET", f"/admin/migrations/{migration['id']}")
        meant = call("POST", path, {"deadline": DEADLINE - 7 * DAY, "reason": "ending early", "shorten": True})
        # Then the first is a 409 naming the current deadline and the way to shorten on purpose, nothing moved
        assert refused[0] == 409 and refused[1]["error"]["code"] == "conflict"
        message = refused[1]["error"]["message"]
        assert "2027-01-29" in message and '"shorten": true' in message and "--shorten" in message
        assert unchanged["migration"]["deadline_epoch"] == DEADLINE
        # and the second moves the deadline and every pending member earlier
        assert meant[0] == 200 and meant[1]["migration"]["deadline_epoch"] == DEADLINE - 7 * DAY
        assert meant[1]["members_moved"] == 3


def test_extend_with_a_cursor_not_in_the_migration_is_a_400_saying_to_start_again():
    with stack_at() as (_, clock):
        # Given a migration with three imported members, extended once
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        upload(migration["id"], "\n".join(IDS))
        clock.at = T0 + DAY
        path = f"/admin/migrations/{migration['id']}/extend"
        body = {"deadline": DEADLINE + 7 * DAY, "reason": "holidays", "limit": 1}
        assert call("POST", path, body)[0] == 200
        # When a page is asked with a forged cursor
        status, got = call("POST", path, {**body, "cursor": "mbr_zzzz"})
        # Then a 400 on the cursor that says to extend again without one, not a silent "done"
        assert status == 400 and got["error"]["field"] == "cursor"
        assert "without a cursor" in got["error"]["message"]


@pytest.mark.parametrize(
    ("body", "base64_body", "status", "code"),
    [
        ({"deadline": "tomorrow", "reason": "r"}, False, 400, "invalid_request"),
        ({"deadline": 1.5e9, "reason": "r"}, False, 400, "invalid_request"),
        ({"deadline": True, "reason": "r"}, False, 400, "invalid_request"),
        ({"deadline": T0 - 1, "reason": "r"}, False, 400, "invalid_request"),
        ({"deadline": 10**30, "reason": "r"}, False, 400, "invalid_request"),
        ({"deadline": DEADLINE + DAY}, False, 400, "invalid_request"),  # no reason
        ({"deadline": DEADLINE + DAY, "reason": "r", "cursor": "mbr_1\r\nX-Evil: 1"}, False, 400, "invalid_request"),
        ({"deadline": DEADLINE + DAY, "reason": "r", "cursor": "mbr_é"}, False, 400, "invalid_request"),
        ({"deadline": DEADLINE + DAY, "reason": "r", "limit": 0}, False, 400, "invalid_request"),
        ({"deadline": DEADLINE + DAY, "reason": "r", "limit": 10_000}, False, 400, "invalid_request"),
        (b'{"deadline": 1800000000, "reason": "\xff\xfe"}', True, 400, "invalid_request"),
        ('{"deadline": ' + "[" * 5000 + "]" * 5000 + ', "reason": "r"}', False, 400, "invalid_request"),
        ('{"deadline": 1800000000, "reason": "' + "x" * 2_000_000 + '"}', False, 413, "payload_too_large"),
    ],
)
def test_extend_refuses_hostile_bodies_with_the_envelope(body, base64_body, status, code):
    with stack_at():
        # Given a migration
        community_id, plan_id = _offer()
        migration = _migration(community_id, plan_id)
        # When extend gets a hostile body
        headers = {**AUTH, "content-type": "application/json"}
        got_status, got = call("POST", f"/admin/migrations/{migration['id']}/extend", body, headers, base64_body=base64_body)
        # Then a 4xx in the envelope, never a 5xx, and the deadline did not move
        assert (got_status, got["error"]["code"]) == (status, code), got
        assert got["error"]["message"]
        _, state = call("GET", f"/admin/migrations/{migration['id']}")
        assert state["migration"]["deadline_epoch"] == DEADLINE


def test_extend_unknown_migration_or_without_token_is_refused_with_the_envelope():
    with stack_at():
        # Given no such migration / When extended, with and without a token
        unknown = call("POST", "/admin/migrations/mig_nope/extend", {"deadline": DEADLINE, "reason": "r"})
        anonymous = call("POST", "/admin/migrations/mig_nope/extend", {"deadline": DEADLINE, "reason": "r"}, {})
        bad_id = call("POST", "/admin/migrations/mig%0D%0Abad/extend", {"deadline": DEADLINE, "reason": "r"})
        # Then 404 saying how to make one, 401 without a token, and 400/404 for an id with CR/LF
        assert unknown[0] == 404 and "POST /admin/migrations" in unknown[1]["error"]["message"]
        assert anonymous[0] == 401 and anonymous[1]["error"]["code"]
        assert bad_id[0] in (400, 404) and bad_id[1]["error"]["code"]


def test_announce_names_the_founder_price_with_its_amount_beside_the_regular_one_in_french():
    from tests.support.discord_spec import SpecCheckingDiscordTransport
    from tests.support.pipeline import Pipeline

    with Pipeline(SpecCheckingDiscordTransport(), env={"PRICE_CHECK": "on"}) as p:
        # Given a French community, a founder price of 5 € a month, the regular one at 9 €, and a migration naming both
        p.sandbox.register_price("price_founder", 500, "eur")
        p.sandbox.register_price("price_regular", 900, "eur")
        p.discord.add_user(IDS[0])  # a member whose DMs are open
        community = p.admin("POST", "/admin/communities", body={
            "platform": "discord", "name": "Le Cercle", "guild_id": "700000000000000001",
            "role_id": "700000000000000002", "locale": "fr"})["body"]
        plans = [p.admin("POST", "/admin/plans", body={"name": name, "stripe_price_ids": [price],
                                                       "grants": [{"community_id": community["id"]}]})["body"]
                 for name, price in (("Fondateur", "price_founder"), ("Mensuel", "price_regular"))]
        created = p.admin("POST", "/admin/migrations", body={
            "community_id": community["id"], "plan_id": plans[0]["id"], "regular_plan_id": plans[1]["id"],
            "deadline": p.clock.now() + 14 * DAY, "announcement_channel_id": "700000000000000009"})
        assert created["status"] == 201 and created["body"]["regular_plan_id"] == plans[1]["id"], created
        migration_id = created["body"]["id"]
        p.call("admin_api", "POST", f"/admin/migrations/{migration_id}/members", body=IDS[0],
               headers={**AUTH, "content-type": "text/csv"})
        # When the offer is announced and delivered
        announced = p.admin("POST", f"/admin/migrations/{migration_id}/announce")
        p.pump()
        # Then the group post and the member's DM both give the amount, beside the regular price
        said = [r.json["content"] for r in p.discord.requests_to("POST", r"/channels/\d+/messages")]
        assert announced["status"] == 200, announced
        words = "Fondateur (5,00 € / mois au lieu de 9,00 € / mois)"
        assert len(said) == 2 and all(words in text for text in said), said
        assert any("tu as droit au tarif fondateur" in text for text in said)


def test_create_with_a_regular_plan_that_is_unknown_or_the_offer_itself_is_400_naming_the_field():
    with stack_at():
        # Given a community and its founder plan
        community_id, plan_id = _offer()
        body = {"community_id": community_id, "plan_id": plan_id, "deadline": DEADLINE}
        # When the migration names an unknown regular plan, the offer itself, or an id with CR/LF
        unknown = call("POST", "/admin/migrations", {**body, "regular_plan_id": "pln_nope"})
        itself = call("POST", "/admin/migrations", {**body, "regular_plan_id": plan_id})
        crlf = call("POST", "/admin/migrations", {**body, "regular_plan_id": "pln_1\r\nx"})
        # Then each is a 400 naming regular_plan_id
        for status, reply in (unknown, itself, crlf):
            assert status == 400 and reply["error"]["field"] in ("regular_plan_id", "body.regular_plan_id"), reply


@pytest.mark.parametrize(("on_revoke", "warned"), [("kick", True), ("remove_role", False)])
def test_create_migration_on_a_kicking_discord_community_answers_a_warning_with_the_fix(on_revoke, warned):
    with stack_at():
        # Given a Discord community whose removals kick (or only take the role)
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Kick Club", "guild_id": "1",
                                                           "role_id": "2", "on_revoke": on_revoke})
        _, plan = call("POST", "/admin/plans", {"name": "Founder", "stripe_price_ids": ["price_founder"],
                                                "grants": [{"community_id": community["id"]}]})
        # When the creator creates a migration of it
        status, body = call("POST", "/admin/migrations", {"community_id": community["id"], "plan_id": plan["id"],
                                                          "deadline": DEADLINE})
        # Then it is created; only the kicking one warns that non-payers leave the whole server, with the fix
        assert status == 201, body
        if warned:
            assert "removed from the whole Discord server" in body["warning"]
            assert f"PATCH /admin/communities/{community['id']}" in body["warning"] and "remove_role" in body["warning"]
        else:
            assert body["warning"] is None
