"""GET /admin/kpis?from=&to=: the KPI report behind the admin token, keeping the fields it always had."""

from __future__ import annotations

import json

import pytest

from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def call(path, headers=AUTH):
    reply = load_handler("admin_api").lambda_handler(http_event("GET", path, headers=headers), LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def test_admin_kpis_period_answers_the_issue_shape_and_todays_fields():
    with aws_stack():
        # When a period is asked for on an empty deployment
        status, body = call("/admin/kpis?from=2026-01-01&to=2026-01-31")
    # Then every KPI of the issue is there, next to the fields the API always had
    assert status == 200, body
    for key in ("mrr", "movements", "paying_members", "trialing_members", "grace_members", "churn", "arpu",
                "ltv", "nrr", "conversion", "cohorts", "active_paying_members", "members_in_grace",
                "members_with_access", "as_of"):
        assert key in body
    assert (body["period_start"], body["period_end"], body["time_zone"]) == ("2026-01-01", "2026-01-31", "UTC")
    assert set(body["churn"]) >= {"logo_rate", "revenue_rate", "voluntary", "involuntary"}
    assert body["mrr"] == {} and body["paying_members"] == 0 and body["churn"]["logo_rate"] is None


def test_admin_kpis_without_period_reads_this_month_to_date():
    with aws_stack():
        status, body = call("/admin/kpis")
    assert status == 200
    assert body["period_start"].endswith("-01") and body["period_end"] == body["as_of"][:10]


@pytest.mark.parametrize(
    ("query", "field"),
    [("from=2026-13-01&to=2026-01-31", "from"), ("from=yesterday", "from"), ("from=2026-02-01&to=2026-01-31", "to")],
)
def test_admin_kpis_bad_period_is_400_naming_the_field(query, field):
    with aws_stack():
        status, body = call(f"/admin/kpis?{query}")
    assert status == 400 and body["error"]["field"] == field, body
    assert "YYYY-MM-DD" in body["error"]["message"] or "from" in body["error"]["message"]


def test_admin_kpis_without_token_is_401():
    with aws_stack():
        status, _ = call("/admin/kpis?from=2026-01-01&to=2026-01-31", headers={})
    assert status == 401


def test_admin_kpis_days_are_in_the_deployments_time_zone():
    # Given the deployment's TIME_ZONE is Europe/Paris
    with aws_stack(TIME_ZONE="Europe/Paris"):
        status, body = call("/admin/kpis?from=2026-01-01&to=2026-01-31")
    # Then the period is read in Paris days
    assert status == 200 and body["time_zone"] == "Europe/Paris"


def test_admin_settings_refuse_an_unknown_time_zone_saying_what_is_expected():
    from membergate import config

    env = {"MEMBERSHIP_TABLE": "m", "LEDGER_TABLE": "l", "ADMIN_TOKEN_NAME": "t", "ACCESS_QUEUE_URL": "q"}
    assert config.AdminSettings.from_env(env).time_zone == "UTC"
    assert config.AdminSettings.from_env({**env, "TIME_ZONE": "Asia/Tokyo"}).time_zone == "Asia/Tokyo"
    with pytest.raises(config.SettingsError, match="IANA time zone"):
        config.AdminSettings.from_env({**env, "TIME_ZONE": "Mars/Olympus"})


def test_admin_kpis_one_time_revenue_counts_bought_passes_and_lifetime_apart_from_mrr():
    from membergate import bootstrap
    from membergate.config import AdminSettings
    from membergate.domain.grants import OneTimeGrant
    from membergate.domain.model import PlanKind

    paid_at = 1_768_000_000  # 2026-01-09
    with aws_stack():
        # Given, paid in January: a 49 EUR pass, a 199 EUR lifetime purchase, a refunded 49 EUR pass
        # and a creator's manual grant (no money)
        grants = bootstrap.stores(AdminSettings.from_env()).grants
        grants.save(OneTimeGrant("cs_pass", "mbr_1", "pln_pass", PlanKind.PASS, paid_at, 30 * 86_400,
                                 amount=4900, currency="eur"))
        grants.save(OneTimeGrant("cs_life", "mbr_2", "pln_life", PlanKind.LIFETIME, paid_at, None,
                                 amount=19900, currency="eur"))
        grants.save(OneTimeGrant("cs_back", "mbr_3", "pln_pass", PlanKind.PASS, paid_at, 30 * 86_400,
                                 amount=4900, currency="eur", ended_reason="refunded"))
        grants.save(OneTimeGrant("grt_gift", "mbr_4", "pln_life", PlanKind.LIFETIME, paid_at, None,
                                 source="manual", reason="moderator"))
        # When January's KPIs are read
        status, body = call("/admin/kpis?from=2026-01-01&to=2026-01-31")
    # Then the bought pass and lifetime access are revenue, each apart, and none of it is MRR
    assert status == 200, body
    assert body["one_time_revenue"] == {"eur": 4900}
    assert body["lifetime_revenue"] == {"eur": 19900}
    assert body["mrr"] == {}
