"""The dashboard's reads over a span (ledger, funnel counters, audit log) find what older versions stored too."""

from __future__ import annotations

from collections import Counter

import pytest

from membergate.domain.model import LedgerEntry
from tests.support.dynamodb_calls import dynamodb_calls
from tests.support.aws import aws_stack

pytestmark = pytest.mark.integration
DAY = 86_400
T0 = 1_800_000_000 - 1_800_000_000 % DAY + 12 * 3600  # noon UTC


def _stores():  # type: ignore[no-untyped-def]
    from membergate import bootstrap
    from membergate.config import ProcessorSettings

    return bootstrap.stores(ProcessorSettings.from_env())


def _old_ledger_entry(event_id: str, at: int, key: str, status: str = "failed") -> None:
    """An entry as versions before the span shards wrote it: by_day keyed ``<day>#<shard>`` (or ``<day>``)."""
    from membergate.adapters.dynamodb.models import LedgerItem

    LedgerItem(f"STRIPE_EVENT#{event_id}", event_id=event_id, type="invoice.paid", status=status, created=at,
               received_at=at, ledger_day=key, detail="x").save()


def _day(at: int) -> str:
    from membergate.adapters.intake import ledger_day

    return ledger_day(at)


def test_ledger_recent_with_entries_of_both_layouts_lists_them_newest_first():
    with aws_stack():
        stores = _stores()
        # Given entries written the older way (sharded day, unsharded day, one outside the month)
        _old_ledger_entry("evt_old_2d", T0 - 2 * DAY, f"{_day(T0 - 2 * DAY)}#3")
        _old_ledger_entry("evt_old_5d", T0 - 5 * DAY, _day(T0 - 5 * DAY))
        _old_ledger_entry("evt_old_40d", T0 - 40 * DAY, f"{_day(T0 - 40 * DAY)}#1")
        # and entries written now, one older than the newest old one
        stores.ledger.mark(LedgerEntry("evt_new_1d", "invoice.paid", "processed", T0 - DAY, T0 - DAY, None, "ok"), T0 - DAY)
        stores.ledger.mark(LedgerEntry("evt_new_3d", "invoice.paid", "processed", T0 - 3 * DAY, T0 - 3 * DAY, None, "ok"),
                           T0 - 3 * DAY)
        # When the recent entries are read, in full and cut
        everything = [e.event_id for e in stores.ledger.recent(T0, 10)]
        newest_two = [e.event_id for e in stores.ledger.recent(T0, 2)]
        newest_three = [e.event_id for e in stores.ledger.recent(T0, 3)]
    # Then both layouts are merged by time, within the month only
    assert everything == ["evt_new_1d", "evt_old_2d", "evt_new_3d", "evt_old_5d"]
    assert newest_two == ["evt_new_1d", "evt_old_2d"]
    assert newest_three == ["evt_new_1d", "evt_old_2d", "evt_new_3d"]


def test_ledger_recent_after_the_first_read_queries_each_shard_once_not_each_day():
    with aws_stack():
        stores = _stores()
        # Given a store with no entry of the older layout, read once (the one look for old entries)
        stores.ledger.mark(LedgerEntry("evt_1", "invoice.paid", "failed", T0, T0, None, "boom"), T0)
        with dynamodb_calls() as first:
            stores.ledger.recent(T0, 200)
        # When it is read again
        with dynamodb_calls() as later:
            got = stores.ledger.recent(T0 + 60, 200)
    # Then the later read is one Query per shard and the remembered look, not 31 days x 11 partitions
    assert [e.event_id for e in got] == ["evt_1"]
    assert sum(first.values()) > 300
    assert later == Counter({"Query": 10, "GetItem": 1}), later


def test_ledger_recent_after_the_look_still_reads_the_old_days_that_hold_entries():
    with aws_stack():
        stores = _stores()
        # Given an old-layout entry 3 days back, and a first read that remembered it
        _old_ledger_entry("evt_old", T0 - 3 * DAY, f"{_day(T0 - 3 * DAY)}#0")
        stores.ledger.recent(T0, 200)
        # When the ledger is read a day later, and again once that entry left the month
        with dynamodb_calls() as calls:
            next_day = [e.event_id for e in stores.ledger.recent(T0 + DAY, 200)]
        with dynamodb_calls() as after_month:
            later = [e.event_id for e in stores.ledger.recent(T0 + 30 * DAY, 200)]
    # Then the old entry is still listed, reading only its day and those before in the month
    assert next_day == ["evt_old"]
    assert calls["Query"] == 10 + 11 * (31 - 4)
    assert later == [] and after_month["Query"] == 10


class _At:
    def __init__(self, at: int) -> None:
        self.at = at

    def now(self) -> int:
        return self.at


def _old_counter(day: str, plan_id: str, step: str, hits: int) -> None:
    """A funnel counter as versions before the by_kind index wrote it (no gsi1pk)."""
    from membergate.adapters.dynamodb.models import FunnelItem

    FunnelItem(f"FUNNEL#{day}", f"{plan_id}#{step}", plan_id=plan_id, step=step, hits=hits).save()


def test_funnel_counts_over_a_period_read_old_counters_and_new_ones_alike():
    from dataclasses import replace
    from datetime import timedelta

    from membergate import bootstrap
    from membergate.domain.funnel import FunnelCount

    with aws_stack():
        bootstrap._overrides.clock = _At(T0)
        try:
            stores = _stores()
            from tests.integration.test_repositories import plan

            stores.catalog.add_plan(replace(plan(), created_at=T0 - 30 * DAY))  # no counter is older than its plan
            today = stores.funnel.day_of(T0)
            # Given counters written the older way 3 and 2 days back, then counts by this version
            _old_counter((today - timedelta(days=3)).isoformat(), "pln_1", "view", 4)
            _old_counter((today - timedelta(days=2)).isoformat(), "pln_1", "view", 2)
            stores.funnel.count("pln_1", "view", T0 - 2 * DAY)  # adds to an old counter: now indexed
            stores.funnel.count("pln_1", "view", T0 - DAY)
            stores.funnel.count("pln_1", "paid", T0)
            # When a period is read (the first read looks for old counters once), and again
            first = stores.funnel.counts(today - timedelta(days=10), today)
            with dynamodb_calls() as calls:
                again = stores.funnel.counts(today - timedelta(days=10), today)
                part = stores.funnel.counts(today - timedelta(days=1), today)
        finally:
            bootstrap._overrides.clock = None
    # Then every counter is there once, and later reads walk only the days up to the old ones
    expected = [
        FunnelCount("pln_1", today - timedelta(days=3), "view", 4),
        FunnelCount("pln_1", today - timedelta(days=2), "view", 3),
        FunnelCount("pln_1", today - timedelta(days=1), "view", 1),
        FunnelCount("pln_1", today, "paid", 1),
    ]
    assert sorted(first, key=lambda c: (c.day, c.step)) == expected
    assert sorted(again, key=lambda c: (c.day, c.step)) == expected
    assert part == expected[2:]
    # again: the remembered look, 8 days up to the newest unindexed counter (3 days back; the one 2
    # days back was raised since, which indexed it) and 1 index Query; part: the look and 1 Query
    assert calls == Counter({"GetItem": 2, "Query": 8 + 1 + 1}), calls


def _old_audit(at: int, audit_id: str) -> None:
    """An audit entry as versions before the by_kind listing wrote it: its day's partition only."""
    from membergate.adapters.dynamodb.models import AuditItem

    day = _day(at)
    AuditItem(f"AUDIT#{day}", f"{at:010d}#{audit_id}", audit_id=audit_id, at=at, actor="token:x",
              action="plan.update", target="pln_1").save()


def _community_since(at: int) -> None:
    """The deployment's first community, registered at ``at``: no admin action is older."""
    from membergate.adapters.dynamodb.repositories import DynamoCatalogRepository
    from membergate.domain.model import Community, OnRevoke, Platform

    DynamoCatalogRepository().add_community(
        Community("com_first", Platform.DISCORD, "Club", "1", "2", OnRevoke.REMOVE_ROLE, "en", at))


def _all_pages(log, since: int, now: int, limit: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids: list[str] = []
    after = None
    for _ in range(50):
        entries, after = log.page(since, now, limit, after)
        ids += [e.id for e in entries]
        if after is None:
            return ids
    raise AssertionError("the pages never end")


def test_audit_pages_list_old_and_new_entries_in_order_across_cursors():
    from membergate.domain.controls import AuditEntry

    with aws_stack():
        log = _stores().audit
        _community_since(T0 - 200 * DAY)
        # Given entries of the older layout (40 and 10 days back) and of this one, around and between them
        _old_audit(T0 - 40 * DAY, "aud_old40")
        _old_audit(T0 - 10 * DAY, "aud_old10")
        for back, audit_id in ((50, "aud_new50"), (9, "aud_new9"), (2, "aud_new2"), (0, "aud_new0")):
            log.record(AuditEntry(audit_id, T0 - back * DAY, "token:x", "plan.update", "pln_1"))
        log.record(AuditEntry("aud_new0b", T0, "token:x", "plan.update", "pln_1"))
        # When the log is read in pages of every size, since 120 days back (first read: the one look)
        pages = {limit: _all_pages(log, T0 - 120 * DAY, T0, limit) for limit in (1, 2, 3, 100)}
        since_45 = _all_pages(log, T0 - 45 * DAY, T0, 2)
        with dynamodb_calls() as calls:
            recent, after = log.page(T0 - 8 * DAY, T0, 100, None)
    # Then every entry is listed once, oldest first, whatever the page size
    expected = ["aud_new50", "aud_old40", "aud_old10", "aud_new9", "aud_new2", "aud_new0", "aud_new0b"]
    assert all(ids == expected for ids in pages.values()), pages
    assert since_45 == expected[1:]
    # and a page after the newest old entry is the remembered look and one Query, not a Query a day
    assert [e.id for e in recent] == expected[-3:] and after is None
    assert calls == Counter({"GetItem": 1, "Query": 1}), calls


def test_audit_page_over_quiet_months_is_one_query_after_the_look():
    from membergate.domain.controls import AuditEntry

    with aws_stack():
        log = _stores().audit
        _community_since(T0 - 200 * DAY)
        # Given a store whose only entry is today's, looked at once
        log.record(AuditEntry("aud_1", T0, "token:x", "community.create", "com_1"))
        with dynamodb_calls() as first:
            log.page(T0 - 120 * DAY, T0, 100, None)
        # When 120 days are read again
        with dynamodb_calls() as later:
            entries, after = log.page(T0 - 120 * DAY, T0 + 60, 100, None)
    # Then the look walked the days once, and the read after is a single Query
    assert [e.id for e in entries] == ["aud_1"] and after is None
    assert first["Query"] == 121 + 1 + 1  # the days, the communities, the index
    assert later == Counter({"GetItem": 1, "Query": 1}), later


def test_audit_read_further_back_than_the_first_look_finds_old_entries_there():
    from membergate.domain.controls import AuditEntry

    with aws_stack():
        log = _stores().audit
        _community_since(T0 - 200 * DAY)
        # Given an old-layout entry 60 days back, a new entry today, and a first read of the last week only
        _old_audit(T0 - 60 * DAY, "aud_old60")
        log.record(AuditEntry("aud_new", T0, "token:x", "plan.update", "pln_1"))
        week = [e.id for e in log.page(T0 - 7 * DAY, T0, 100, None)[0]]
        # When 120 days are read (the look goes on from where it stopped), then again
        with dynamodb_calls() as extended:
            months = [e.id for e in log.page(T0 - 120 * DAY, T0, 100, None)[0]]
        again = [e.id for e in log.page(T0 - 120 * DAY, T0, 100, None)[0]]
    # Then the old entry is found, looking only at the days the first look had not
    assert week == ["aud_new"]
    assert months == again == ["aud_old60", "aud_new"]
    # the remembered look, days -8..-60 looked at, days -120..-60 walked, one index Query
    assert extended["Query"] == 53 + 61 + 1 + 1, extended  # + the communities


def test_ledger_read_further_back_than_the_first_look_finds_old_entries_there():
    with aws_stack():
        stores = _stores()
        # Given an old-layout entry 10 days back, and a first read of the last 3 days only
        _old_ledger_entry("evt_old", T0 - 10 * DAY, f"{_day(T0 - 10 * DAY)}#2")
        short = stores.ledger.recent(T0, 200, days=3)
        # When the month is read, then again
        month = [e.event_id for e in stores.ledger.recent(T0, 200)]
        again = [e.event_id for e in stores.ledger.recent(T0, 200)]
    # Then the old entry is found by the look going on from where it stopped
    assert short == []
    assert month == again == ["evt_old"]


def test_audit_since_the_epoch_looks_back_only_to_the_first_community():
    from membergate.domain.controls import AuditEntry

    with aws_stack():
        log = _stores().audit
        # Given a deployment whose first community is 5 days old, with one entry today
        _community_since(T0 - 5 * DAY)
        log.record(AuditEntry("aud_1", T0, "token:x", "community.create", "com_first"))
        # When the whole log is asked for, since 1970 (GET /admin/audit?since=0), twice
        with dynamodb_calls() as first:
            entries = _all_pages(log, 0, T0, 100)
        with dynamodb_calls() as again:
            log.page(0, T0, 100, None)
    # Then the look read 6 days, not 20,000, and the next read is one Query
    assert entries == ["aud_1"]
    assert first["Query"] <= 6 + 1 + 1, first
    assert again == Counter({"GetItem": 1, "Query": 1}), again
