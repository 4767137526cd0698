"""The console's CLI commands: member list with its cursor, a member's export, and erasure with confirmation."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from membergate import cli
from membergate.cli import app
from tests.support.console_api import ScriptedApi, scripted

pytestmark = pytest.mark.unit

runner = CliRunner()
MEMBER = {"id": "mbr_1", "stripe_customer_id": "cus_1", "identities": [{"platform": "discord", "external_id": "42"}],
          "entitlements": [{"plan_id": "pln_1", "community_id": "com_1", "state": "active", "until": None}],
          "access": [], "messages": [], "created_at": "2026-11-01T00:00:00Z", "origin": "join"}
REVOKING = {"member_id": "mbr_1", "state": "revoking", "reason": "asked", "requested_at": "2026-11-30T10:00:00Z",
            "erased_at": None, "waiting_for": [{"community_id": "com_1", "state": "granted"}], "removed": {}}
ERASED = {**REVOKING, "state": "erased", "erased_at": "2026-11-30T10:00:05Z", "waiting_for": [],
          "removed": {"identities": 1, "sessions": 2, "messages": 0}}


def _cli(api: ScriptedApi, *args: str, **kw):
    return runner.invoke(app, ["--url", api.url, "--token", api.token, *args], **kw)


def test_members_without_a_filter_lists_a_page_and_prints_the_next_cursor():
    # Given a stack whose first page of members has a next cursor
    api = ScriptedApi({("GET", "/admin/members"): [(200, {"members": [MEMBER], "next_cursor": "mbr_1"})]})
    with scripted(api):
        # When listing, then asking for the page after
        first = _cli(api, "members", "--limit", "1", "--state", "active")
        second = _cli(api, "members", "--cursor", "mbr_1")
    # Then the list is a table with the way to the next page, and the cursor and filters are sent
    assert first.exit_code == 0, first.output
    assert "mbr_1" in first.output and "membergate members --cursor mbr_1" in first.output
    assert api.requests[0][2] == {"limit": ["1"], "state": ["active"]}
    assert api.requests[1][2] == {"limit": ["50"], "cursor": ["mbr_1"]}
    assert second.exit_code == 0


def test_export_member_writes_the_api_answer_to_a_file(tmp_path):
    # Given a member's export
    export = {"member": MEMBER, "subscriptions": [], "purchases": [], "held_elsewhere": "Stripe holds payments"}
    api = ScriptedApi({("GET", "/admin/members/mbr_1/export"): [(200, export)]})
    target = tmp_path / "mbr_1.json"
    with scripted(api):
        # When exporting it to a file
        result = _cli(api, "export-member", "mbr_1", "--out", str(target))
    # Then the file holds the API's answer unchanged, and the output says what Stripe holds
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text()) == export and "Stripe holds payments" in result.output


def test_erase_member_asks_for_confirmation_and_does_nothing_when_refused():
    api = ScriptedApi({("POST", "/admin/members/mbr_1/erase"): [(200, ERASED)]})
    with scripted(api):
        result = _cli(api, "erase-member", "mbr_1", "--reason", "asked", input="n\n")
    assert result.exit_code == 1 and "nothing done" in result.output
    assert api.requests == []


def test_erase_member_waits_while_access_is_removed_then_reports_what_went(monkeypatch):
    # Given a stack that removes the access on the second call
    monkeypatch.setattr(cli, "ERASE_POLL_SECONDS", 0.01)
    api = ScriptedApi({("POST", "/admin/members/mbr_1/erase"): [(202, REVOKING), (200, ERASED)]})
    with scripted(api):
        # When erasing with --yes
        result = _cli(api, "erase-member", "mbr_1", "--reason", "asked", "--yes")
    # Then it asked until erased, sending the reason, and says what was removed
    assert result.exit_code == 0, result.output
    assert [r[3] for r in api.requests] == [{"reason": "asked"}, {"reason": "asked"}]
    assert "erased" in result.output and "1 identities" in result.output and "2 sessions" in result.output


def test_erase_member_that_cannot_finish_names_the_community_and_exits_1(monkeypatch):
    monkeypatch.setattr(cli, "ERASE_POLL_SECONDS", 0.01)
    api = ScriptedApi({("POST", "/admin/members/mbr_1/erase"): [(202, REVOKING)]})
    with scripted(api):
        result = _cli(api, "erase-member", "mbr_1", "--reason", "asked", "--yes", "--wait", "0")
    assert result.exit_code == 1 and "com_1 (granted)" in result.output


def test_erase_member_refused_by_the_stack_shows_its_message():
    refusal = {"error": {"code": "subscription_live", "message": "cancel it first (Stripe Dashboard)"}}
    api = ScriptedApi({("POST", "/admin/members/mbr_1/erase"): [(409, refusal)]})
    with scripted(api):
        result = _cli(api, "erase-member", "mbr_1", "--reason", "asked", "--yes")
    assert result.exit_code == 1 and "cancel it first" in result.output



def test_sparkline_scales_between_the_series_minimum_and_maximum():
    assert cli.sparkline([]) == ""
    assert cli.sparkline([5, 5]) == "▁▁"
    assert cli.sparkline([0, 900, 1800]) == "▁▄█"


def test_kpis_shows_a_sparkline_per_figure_read_one_day_at_a_time():
    # Given today's numbers and three days of history with MRR rising
    today = {"as_of": "2026-11-30T10:00:00Z", "active_paying_members": 2, "mrr": {"eur": 1800}}
    days = [{"paying_members": n, "trialing_members": 0, "grace_members": 0, "mrr": {"eur": 900 * n}} for n in (0, 1, 2)]
    api = ScriptedApi({("GET", "/admin/kpis"): [(200, today), *[(200, d) for d in days]]})
    with scripted(api):
        # When showing the KPIs with three days of history
        result = _cli(api, "kpis", "--days", "3")
    # Then each day was asked for as a one-day period, oldest first, and the trend is drawn
    assert result.exit_code == 0, result.output
    assert [r[2] for r in api.requests[1:]] == [{"from": [d], "to": [d]} for d in ("2026-11-28", "2026-11-29", "2026-11-30")]
    assert "18.00 EUR" in result.output and "▁▄█" in result.output


def test_export_writes_the_csv_as_the_api_sends_it(tmp_path):
    # Given a members export of one member
    csv_text = "member_id,stripe_customer_id\r\nmbr_1,cus_1\r\n"
    api = ScriptedApi({("GET", "/admin/exports/members.csv"): [(200, csv_text.encode())]})
    target = tmp_path / "members.csv"
    with scripted(api):
        # When exporting it to a file, and asking for an export that does not exist
        result = _cli(api, "export", "members", "--out", str(target))
        wrong = _cli(api, "export", "everything")
    # Then the file is the CSV byte for byte, and the unknown export is a usage error
    assert result.exit_code == 0 and "(1 row(s))" in " ".join(result.output.split())
    assert target.read_bytes() == csv_text.encode()
    assert wrong.exit_code == 2 and api.requests[-1][1] == "/admin/exports/members.csv"
