"""Daily KPI snapshots under moto: the store (fake and DynamoDB alike), and the admin function's schedule."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.integration.test_member_journey import bind_discord, pay, pipeline, setup_catalog  # noqa: F401
from tests.support.apigw import LambdaContext
from tests.support.aws import aws_stack
from tests.support.fakes import fake_stores
from tests.support.handlers import load_handler
from membergate.domain.kpis import DaySnapshot, Movements

pytestmark = pytest.mark.integration
DAY = 86_400


@pytest.fixture(params=["fake", "dynamodb"])
def store(request):
    if request.param == "fake":
        yield fake_stores().kpi_snapshots
        return
    with aws_stack(TIME_ZONE="Europe/Paris"):
        from membergate import bootstrap
        from membergate.config import ProcessorSettings

        yield bootstrap.stores(ProcessorSettings.from_env()).kpi_snapshots


def snap(d: date, mrr: int) -> DaySnapshot:
    from fractions import Fraction

    return DaySnapshot(d, {"eur": Fraction(mrr)}, {"eur": Fraction(2500, 3)}, 1, 1, 0, 0, {"eur": 1},
                       {"eur": Movements(new=Fraction(1, 3))})


def test_kpi_snapshot_store_round_trip_and_marks_cleared_only_when_seen(store):
    # Given two days written, and a late event's mark
    store.write([snap(date(2026, 2, 1), 900), snap(date(2026, 2, 2), 800)], date(2026, 2, 2), frozenset())
    store.mark_dirty(date(2026, 2, 2), "evt_a")
    seen = store.state()
    # When another mark arrives after the run read the state, and the run writes what it saw
    store.mark_dirty(date(2026, 2, 1), "evt_b")
    store.write([snap(date(2026, 2, 2), 700)], date(2026, 2, 3), seen.dirty)
    # Then the days read back exactly (fractions kept), the run's mark is cleared, the newer one stays
    assert [s.mrr_start for s in store.read(date(2026, 2, 1), date(2026, 2, 28))] == [{"eur": 900}, {"eur": 700}]
    assert store.read(date(2026, 2, 2), date(2026, 2, 2))[0].mrr == {"eur": __import__("fractions").Fraction(2500, 3)}
    state = store.state()
    assert state.through == date(2026, 2, 3) and state.dirty == {"2026-02-01#evt_b"}
    assert state.dirty_from == date(2026, 2, 1)


def test_admin_function_schedule_writes_snapshots_and_the_kpis_read_them_unchanged(pipeline):  # noqa: F811
    p = pipeline
    # Given a member who paid, three days ago
    plan_id = setup_catalog(p)
    pay(p, bind_discord(p, plan_id), plan_id)
    p.advance(3 * DAY)
    before = p.admin("GET", "/admin/kpis")["body"]
    # When the KpiSnapshots schedule invokes the admin function (template.yaml's Input)
    ran = load_handler("admin_api").lambda_handler({"source": "membergate.kpi_snapshots"}, LambdaContext())
    again = load_handler("admin_api").lambda_handler({"source": "membergate.kpi_snapshots"}, LambdaContext())
    # Then the closed days are written once, and the KPIs read from them say the same
    assert ran["days_written"] == 3 and again["days_written"] == 0, (ran, again)
    after = p.admin("GET", "/admin/kpis")["body"]
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    assert after["mrr"] == {"eur": 900} and after["movements"]["eur"]["new"] == 900
