"""The admin API's member list, search, timeline, catalog reads, ledger filters and CSV exports."""

from __future__ import annotations

import csv
import io
import json

import pytest

from membergate.domain.model import Identity, LedgerEntry, Member, Platform
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
T0 = 1_800_000_000


def raw(method, path, body=None, headers=AUTH):
    reply = load_handler("admin_api").lambda_handler(http_event(method, path, body=body, headers=headers), LambdaContext())
    return reply


def call(method, path, body=None, headers=AUTH):
    reply = raw(method, path, body, headers)
    return reply["statusCode"], json.loads(reply["body"])


def _stores():
    from membergate import bootstrap

    return bootstrap.admin().stores


def _members(count: int) -> list[str]:
    stores = _stores()
    ids = [f"mbr_{i:02d}" for i in range(count)]
    for member_id in ids:
        stores.members.create(Member(member_id, T0))
    return ids


def test_members_list_pages_with_a_cursor_until_null():
    with aws_stack():
        # Given seven members
        ids = _members(7)
        # When walking the list three at a time
        seen, cursor, pages = [], None, 0
        while True:
            status, body = call("GET", "/admin/members?limit=3" + (f"&cursor={cursor}" if cursor else ""))
            assert status == 200
            seen += [m["id"] for m in body["members"]]
            cursor, pages = body["next_cursor"], pages + 1
            if cursor is None:
                break
        # Then each member appears once, in three pages
        assert seen == ids and pages == 3


def test_members_search_finds_by_any_platform_id_or_customer():
    with aws_stack():
        # Given a member with a Telegram account and a Stripe customer
        _members(2)
        stores = _stores()
        stores.members.bind_identity("mbr_01", Identity(Platform.TELEGRAM, "424242"))
        stores.members.attach_customer("mbr_01", "cus_found")
        # When searching by either id, or by one nobody has
        by_telegram = call("GET", "/admin/members?q=424242")[1]
        by_customer = call("GET", "/admin/members?q=cus_found")[1]
        nobody = call("GET", "/admin/members?q=cus_nobody")[1]
        # Then the member is found once each time, and nobody is an empty list
        assert [m["id"] for m in by_telegram["members"]] == ["mbr_01"]
        assert [m["id"] for m in by_customer["members"]] == ["mbr_01"]
        assert nobody == {"members": [], "next_cursor": None}


def test_members_filter_by_platform_and_state_none():
    with aws_stack():
        # Given two members, one with a WhatsApp number
        _members(2)
        _stores().members.bind_identity("mbr_00", Identity(Platform.WHATSAPP, "+33600000000"))
        # When filtering
        whatsapp = call("GET", "/admin/members?platform=whatsapp")[1]
        discord = call("GET", "/admin/members?platform=discord")[1]
        no_entitlement = call("GET", "/admin/members?state=none")[1]
        # Then only the matching members come back
        assert [m["id"] for m in whatsapp["members"]] == ["mbr_00"]
        assert discord["members"] == []
        assert [m["id"] for m in no_entitlement["members"]] == ["mbr_00", "mbr_01"]


@pytest.mark.parametrize("query,field", [("limit=0", "limit"), ("limit=3a", "limit"), ("state=gone", "state"),
                                         ("cursor=a%0Db", "cursor"), ("platform=irc", "platform")])
def test_members_list_bad_query_is_400_naming_the_field(query, field):
    with aws_stack():
        status, body = call("GET", f"/admin/members?{query}")
        assert status == 400 and body["error"]["field"] == field


def test_plan_and_community_read_back_and_404_when_unknown():
    with aws_stack():
        # Given a community and a plan
        _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
        _, plan = call("POST", "/admin/plans", {"name": "M", "stripe_price_ids": ["price_r"],
                                                "grants": [{"community_id": community["id"]}]})
        # When reading them back, and ids that do not exist
        # Then each answers as created; unknown ids are a 404 in the envelope
        assert call("GET", f"/admin/communities/{community['id']}") == (200, community)
        assert call("GET", f"/admin/plans/{plan['id']}") == (200, plan)
        status, body = call("GET", "/admin/plans/pln_nope")
        assert status == 404 and "GET /admin/plans" in body["error"]["message"]
        assert call("GET", "/admin/communities/com_nope")[0] == 404


def test_wrong_method_on_an_existing_path_is_405_in_the_envelope():
    with aws_stack():
        status, body = call("DELETE", "/admin/members")
        assert status == 405 and body["error"]["code"]


def test_timeline_lists_what_happened_oldest_first():
    with aws_stack():
        # Given a member who bound an account
        _members(1)
        # When reading the timeline, and one of an unknown member
        status, body = call("GET", "/admin/members/mbr_00/timeline")
        missing, _ = call("GET", "/admin/members/mbr_zz/timeline")
        # Then it starts with the member's creation; the unknown member is a 404
        assert status == 200 and body["member_id"] == "mbr_00"
        assert body["entries"][0]["kind"] == "joined" and body["entries"][0]["at"].startswith("2027-01-15")
        assert missing == 404


def test_members_csv_has_a_header_and_one_row_per_member_and_defuses_formulas():
    with aws_stack():
        # Given two members, one whose customer id starts like a spreadsheet formula
        _members(2)
        _stores().members.attach_customer("mbr_01", "-cus")
        # When exporting
        reply = raw("GET", "/admin/exports/members.csv")
        # Then a CSV attachment with both members, the formula quoted
        assert reply["statusCode"] == 200 and reply["headers"]["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(reply["body"])))
        assert rows[0][0] == "member_id" and [r[0] for r in rows[1:]] == ["mbr_00", "mbr_01"]
        assert rows[2][1] == "'-cus"


def test_events_filtered_by_status_and_type_and_payments_csv():
    with aws_stack():
        from membergate import bootstrap

        # Given three ledger entries received now
        now = bootstrap.clock().now()
        ledger = _stores().ledger
        for event_id, type_, status in [("evt_1", "invoice.paid", "processed"), ("evt_2", "invoice.paid", "failed"),
                                        ("evt_3", "customer.updated", "processed")]:
            ledger.mark(LedgerEntry(event_id, type_, status, now, now, "cus_1"), now)
        # When filtering the ledger, and exporting payments
        failed = call("GET", "/admin/events?status=failed")[1]
        paid = call("GET", "/admin/events?type=invoice.paid")[1]
        future = call("GET", "/admin/events?since=2999-01-01")[1]
        payments = list(csv.reader(io.StringIO(raw("GET", "/admin/exports/payments.csv")["body"])))
        # Then only matching entries; the export holds the payment events only
        assert [e["event_id"] for e in failed["events"]] == ["evt_2"]
        assert sorted(e["event_id"] for e in paid["events"]) == ["evt_1", "evt_2"]
        assert future["events"] == []
        assert sorted(r[0] for r in payments[1:]) == ["evt_1", "evt_2"]


def _plan() -> dict:
    _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
    _, plan = call("POST", "/admin/plans", {"name": "Monthly", "stripe_price_ids": ["price_p"],
                                            "grants": [{"community_id": community["id"]}]})
    return plan


def test_plan_patch_changes_only_the_fields_given():
    with aws_stack():
        # Given a plan
        plan = _plan()
        # When renaming it and lengthening its grace
        status, edited = call("PATCH", f"/admin/plans/{plan['id']}", {"name": "Monthly club", "grace_days": 7})
        # Then those change, the rest (prices, grants, join link) stays, and it reads back edited
        assert status == 200
        assert edited == {**plan, "name": "Monthly club", "grace_days": 7}
        assert call("GET", f"/admin/plans/{plan['id']}") == (200, edited)


@pytest.mark.parametrize("body,field", [({"grace_days": "3"}, "grace_days"), ({"name": "   "}, "name"),
                                        ({"stripe_price_ids": ["price q"]}, "stripe_price_ids[0]"), ({"stripe_price_ids": []}, "stripe_price_ids"),
                                        ({"grace_days": 61}, "grace_days")])
def test_plan_patch_bad_field_is_400_naming_it(body, field):
    with aws_stack():
        plan = _plan()
        status, answer = call("PATCH", f"/admin/plans/{plan['id']}", body)
        assert status == 400 and answer["error"]["field"] == field


def test_archived_plan_join_link_is_410_and_reads_back_archived():
    with aws_stack():
        # Given a plan whose join link works
        plan = _plan()
        join = load_handler("join").lambda_handler(http_event("GET", f"/join/{plan['id']}"), LambdaContext())
        assert join["statusCode"] == 200
        # When the creator archives it (twice: idempotent)
        status, archived = call("POST", f"/admin/plans/{plan['id']}/archive")
        again = call("POST", f"/admin/plans/{plan['id']}/archive")[1]
        # Then it reads back archived, and the join link answers 410 with a page saying the offer is closed
        assert status == 200 and archived["archived_at"] and again == archived
        join = load_handler("join").lambda_handler(http_event("GET", f"/join/{plan['id']}"), LambdaContext())
        assert join["statusCode"] == 410 and "offer is closed" in join["body"]
        assert call("POST", "/admin/plans/pln_nope/archive")[0] == 404
        assert call("DELETE", f"/admin/plans/{plan['id']}")[0] == 405
