"""The billing processor's catalog snapshot: one read per minute, and a creator's edit seen within it."""

from __future__ import annotations

from dataclasses import replace

from membergate.domain.model import OnGraceEnd, Plan, PlanGrant
from membergate.services.catalog_snapshot import MAX_AGE_SECONDS, CatalogSnapshot
from tests.support.fakes import FakeCatalog


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


class CountingCatalog(FakeCatalog):
    def __init__(self) -> None:
        super().__init__()
        self.plan_reads = 0

    def list_plans(self) -> list[Plan]:
        self.plan_reads += 1
        return super().list_plans()


def _plan(grace_days: int = 3) -> Plan:
    return Plan("pln_1", "Gold", ("price_1",), (PlanGrant("com_1", "role_1"),), grace_days, OnGraceEnd.CANCEL, 0)


def test_snapshot_reads_plans_once_while_fresh():
    # Given a snapshot over a catalog with one plan
    catalog, ticks = CountingCatalog(), Ticks()
    catalog.add_plan(_plan())
    snapshot = CatalogSnapshot(catalog, clock=ticks)
    # When the plan is looked up by price and by id many times within the minute
    for _ in range(10):
        assert snapshot.plan_for_price("price_1") is not None
        assert snapshot.get_plan("pln_1") is not None
        ticks.at += 1
    # Then the catalog was read once
    assert catalog.plan_reads == 1


def test_snapshot_sees_a_creators_grace_edit_once_the_minute_is_over():
    # Given a warm snapshot that read a plan with 3 days of grace
    catalog, ticks = CountingCatalog(), Ticks()
    catalog.add_plan(_plan(grace_days=3))
    snapshot = CatalogSnapshot(catalog, clock=ticks)
    assert snapshot.plan_for_price("price_1").grace_days == 3
    # When the creator changes grace to 7 days from another container (the admin function)
    catalog.update_plan(replace(_plan(), grace_days=7))
    # Then the snapshot may answer the old value within the minute, and the new one after it
    ticks.at += MAX_AGE_SECONDS - 1
    assert snapshot.plan_for_price("price_1").grace_days == 3
    ticks.at += 1
    assert snapshot.plan_for_price("price_1").grace_days == 7
    assert snapshot.get_plan("pln_1").grace_days == 7


def test_snapshot_finds_a_plan_added_a_second_ago_at_once():
    # Given a warm snapshot
    catalog, ticks = CountingCatalog(), Ticks()
    snapshot = CatalogSnapshot(catalog, clock=ticks)
    assert snapshot.plan_for_price("price_1") is None
    # When a plan is added and looked up a second later
    catalog.add_plan(_plan())
    ticks.at += 1
    # Then the miss reloads and finds it
    assert snapshot.plan_for_price("price_1").id == "pln_1"
