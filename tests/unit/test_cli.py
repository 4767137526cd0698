"""The `membergate` CLI: amounts, advice on connection/token problems, and doctor's findings."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from membergate.cli import app, format_amount
from tests.support.fake_admin_api import serving

pytestmark = pytest.mark.unit

runner = CliRunner()
HEALTHY = {
    "/admin/openapi.json": {"openapi": "3.1.0"},
    "/admin/communities": {"communities": [{"id": "com_1", "platform": "discord", "name": "Club", "guild_id": "1"}]},
    "/admin/plans": {"plans": [{"id": "pln_1", "name": "Monthly", "stripe_price_ids": ["price_1"],
                                "grants": [{"community_id": "com_1", "role_id": None}], "grace_days": 3,
                                "on_grace_end": "cancel", "join_url": "http://x/join/pln_1"}]},
    "/admin/events": {"events": []},
    "/admin/health": {"ok": True, "checks": [{"check": "secret /membergate/admin-token is set", "ok": True, "fix": None}]},
    "/admin/kpis": {"active_paying_members": 2, "trialing_members": 0, "members_in_grace": 1,
                    "members_with_access": 2, "mrr": {"eur": 1800, "jpy": 500}, "as_of": "2026-11-30T10:00:00Z"},
}


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [(900, "eur", "9.00 EUR"), (500, "jpy", "500 JPY"), (1234, "kwd", "1.234 KWD"), (-5, "usd", "-0.05 USD"),
     (123456789, "eur", "1,234,567.89 EUR")],
)
def test_format_amount_uses_the_currency_exponent(minor, currency, shown):
    assert format_amount(minor, currency) == shown


def test_cli_without_url_says_how_to_point_it_at_a_stack(monkeypatch):
    # Given no URL anywhere
    monkeypatch.delenv("MEMBERGATE_URL", raising=False)
    # When a read command runs
    result = runner.invoke(app, ["kpis"])
    # Then it fails with the way to fix it
    assert result.exit_code == 1
    assert "MEMBERGATE_URL" in result.output


def test_cli_with_unreachable_stack_suggests_make_dev():
    result = runner.invoke(app, ["--url", "http://127.0.0.1:9", "--token", "x", "plans"])
    assert result.exit_code == 1
    assert "make dev" in result.output


def test_cli_with_wrong_token_names_the_admin_token_secret():
    with serving(HEALTHY) as url:
        result = runner.invoke(app, ["--url", url, "--token", "wrong", "plans"])
    assert result.exit_code == 1
    assert "ADMIN_TOKEN" in result.output


def test_kpis_json_is_the_api_answer_unchanged():
    with serving(HEALTHY) as url:
        result = runner.invoke(app, ["--url", url, "--token", "t0ken", "--json", "kpis"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == HEALTHY["/admin/kpis"]


def test_kpis_table_shows_amounts_in_major_units():
    with serving(HEALTHY) as url:
        result = runner.invoke(app, ["--url", url, "--token", "t0ken", "kpis"])
    assert result.exit_code == 0, result.output
    assert "18.00 EUR" in result.output and "500 JPY" in result.output


def test_doctor_on_a_healthy_stack_passes():
    with serving(HEALTHY) as url:
        result = runner.invoke(app, ["--url", url, "--token", "t0ken", "doctor"])
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.output


def test_doctor_reports_failed_and_stuck_events_and_dangling_grants_with_fixes():
    # Given a stack with a failed event, an event received long ago and never processed, and a
    # plan granting a community that does not exist
    broken = {
        **HEALTHY,
        "/admin/plans": {"plans": [{"id": "pln_2", "grants": [{"community_id": "com_gone"}]}]},
        "/admin/events": {"events": [
            {"event_id": "evt_failed", "type": "customer.subscription.updated", "status": "failed",
             "received_at": "2026-11-29T10:00:00Z", "detail": "bad payload"},
            {"event_id": "evt_stuck", "type": "invoice.paid", "status": "received",
             "received_at": "2020-01-01T00:00:00Z", "detail": None},
        ]},
    }
    # When the doctor runs
    with serving(broken) as url:
        result = runner.invoke(app, ["--url", url, "--token", "t0ken", "--json", "doctor"])
    # Then it exits non-zero and names each problem with its fix
    assert result.exit_code == 1
    report = json.loads(result.output)
    failing = {c["check"]: c["fix"] for c in report["checks"] if not c["ok"]}
    assert "com_gone" in failing["plan pln_2 grants existing communities"]
    assert "evt_failed" in failing["no Stripe event failed recently"]
    assert "evt_stuck" in failing["no Stripe event waits to be processed for over an hour"]


def test_doctor_prints_the_stacks_health_problems_with_their_fixes_and_fails():
    # Given a stack whose health check finds a plan role above the bot and a dead letter
    broken = {**HEALTHY, "/admin/health": {"ok": False, "checks": [
        {"check": "secret /membergate/admin-token is set", "ok": True, "fix": None},
        {"check": "discord community com_1 (Club): role_below_bot:7", "ok": False,
         "fix": "move the Membergate role above 'VIP' in Server Settings → Roles"},
        {"check": "dead-letter queue mg-dlq is empty", "ok": False, "fix": "1 message(s) failed for good", "detail": "1 message(s)"},
    ]}}
    with serving(broken) as url:
        # When the doctor runs, as text and as JSON
        text = runner.invoke(app, ["--url", url, "--token", "t0ken", "doctor"])
        as_json = runner.invoke(app, ["--url", url, "--token", "t0ken", "--json", "doctor"])
    # Then both exit 1 and carry each failing check with its fix, next to the passing ones
    assert text.exit_code == 1 and as_json.exit_code == 1
    assert "move the Membergate role above 'VIP'" in text.output and "2 problem(s)" in text.output
    checks = {c["check"]: c for c in json.loads(as_json.output)["checks"]}
    assert checks["secret /membergate/admin-token is set"]["ok"] is True
    assert checks["discord community com_1 (Club): role_below_bot:7"]["fix"].startswith("move the Membergate role")
    assert checks["dead-letter queue mg-dlq is empty"]["ok"] is False


def test_doctor_against_a_stack_without_the_health_route_says_to_deploy():
    old = {k: v for k, v in HEALTHY.items() if k != "/admin/health"}
    with serving(old) as url:
        result = runner.invoke(app, ["--url", url, "--token", "t0ken", "--json", "doctor"])
    assert result.exit_code == 1
    failing = {c["check"]: c["fix"] for c in json.loads(result.output)["checks"] if not c["ok"]}
    assert "sam deploy" in failing["the stack reports its deployment health"]


LATEST = {"report": {"started_at": 1800000000, "finished_at": 1800000060, "complete": True,
                     "counts": {"paid_without_access": 1, "unknown_member": 1}, "auto_fixed": 1,
                     "items": [{"kind": "paid_without_access", "fix": "Membergate queued the member's access again",
                                "auto_fixed": True, "member_id": "mbr_1", "user": "5", "detail": "not in the place"},
                               {"kind": "unknown_member", "fix": "remove the role by hand", "auto_fixed": False,
                                "user": "9", "detail": "holds 2"}],
                     "truncated": False, "notes": ["telegram: only known members checked"], "pages_read": 3,
                     "invocations": 1},
          "running": None}


def test_reconcile_latest_prints_each_drift_with_its_fix_and_notes():
    # Given a stack whose latest reconciliation found two drifts
    with serving({"/admin/reconcile/latest": LATEST}) as url:
        # When the creator reads it
        result = runner.invoke(app, ["--url", url, "--token", "t0ken", "reconcile", "--latest"])
    # Then each drift is shown with what was done or what to do, and the notes
    assert result.exit_code == 0, result.output
    assert "[fixed] paid_without_access: mbr_1" in result.output
    assert "[to do] unknown_member: 9 holds 2 → remove the role by hand" in result.output
    assert "note: telegram: only known members checked" in result.output


def test_reconcile_latest_json_is_the_api_answer():
    with serving({"/admin/reconcile/latest": LATEST}) as url:
        result = runner.invoke(app, ["--url", url, "--token", "t0ken", "--json", "reconcile", "--latest"])
    assert result.exit_code == 0 and json.loads(result.output) == LATEST


def test_cli_members_search_prints_matches_and_how_to_get_more():
    # Given a stack whose search answers one member and a next page
    routes = {**HEALTHY, "/admin/members": {"members": [
        {"id": "mbr_1", "created_at": "2026-11-01T00:00:00Z", "origin": "join", "stripe_customer_id": None,
         "identities": [{"platform": "discord", "external_id": "7000", "handle": "Alice (@alice)"}],
         "entitlements": [], "access": [], "messages": []}], "next_cursor": "mbr_1"}}
    with serving(routes) as url:
        result = runner.invoke(app, ["--url", url, "--token", "t0ken", "members", "--search", "Ali ce"])
    # Then the member is shown, with the command for the next page (the query quoted)
    assert result.exit_code == 0, result.output
    assert "mbr_1" in result.output
    assert "membergate members --search 'Ali ce' --cursor mbr_1" in result.output
