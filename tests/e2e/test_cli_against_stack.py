"""The `membergate` CLI against the running local stack, as a creator would point it at `make dev`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from membergate.cli import app
from tests.e2e.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

runner = CliRunner()


def cli(stack, *args: str):
    return runner.invoke(app, ["--url", stack.base_url, "--token", ADMIN_TOKEN, *args])


def test_cli_reads_back_what_the_admin_api_holds(stack):
    # Given a community and a plan created through the admin API
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "CLI club", "guild_id": "710000000000000001", "role_id": "710000000000000002"}).json()
    stack.post("/_local/stripe/_control/prices", json_body={"price_id": "price_cli_monthly", "unit_amount": 500,
                                                            "currency": "eur", "interval": "month"})
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": "CLI monthly", "stripe_price_ids": ["price_cli_monthly"],
        "grants": [{"community_id": community["id"]}]}).json()
    # When the creator lists plans and KPIs with the CLI
    plans = cli(stack, "--json", "plans")
    kpis = cli(stack, "--json", "kpis")
    # Then the CLI shows exactly what the API answers
    assert plans.exit_code == 0, plans.output
    assert plan["id"] in {p["id"] for p in json.loads(plans.output)["plans"]}
    assert kpis.exit_code == 0, kpis.output
    assert json.loads(kpis.output)["mrr"] == stack.get("/admin/kpis", admin=True).json()["mrr"]


def test_cli_doctor_confirms_the_token_and_catalog(stack):
    result = cli(stack, "--json", "doctor")
    report = json.loads(result.output)
    by_name = {c["check"]: c["ok"] for c in report["checks"]}
    assert by_name["the stack answers"] and by_name["the admin token is accepted"]


def test_cli_doctor_with_a_wrong_token_fails_with_the_fix(stack):
    result = runner.invoke(app, ["--url", stack.base_url, "--token", "not-the-token", "doctor"])
    assert result.exit_code == 1
    assert "ADMIN_TOKEN" in result.output
