"""The sharded by_day and by_kind indexes: writes spread over shards, and every reader sees every shard."""

from __future__ import annotations

import json

import boto3
import pytest

from membergate.domain.billing import SubscriptionRecord, SubscriptionSnapshot
from membergate.domain.model import Community, LedgerEntry, OnGraceEnd, OnRevoke, Plan, PlanGrant, Platform, PriceLine
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, REGION, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
COUNT = 50
DAY = 86_400


def call(path: str) -> dict:
    reply = load_handler("admin_api").lambda_handler(http_event("GET", path, headers=AUTH), LambdaContext())
    assert reply["statusCode"] == 200, reply
    return json.loads(reply["body"])


def _stores():
    from membergate import bootstrap

    return bootstrap.admin().stores


def _index_keys(table: str, attribute: str) -> dict[str, str]:
    """pk -> the index's partition attribute as stored (a test may scan; the code never does)."""
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=table)["Items"]
    return {f'{i["pk"]["S"]}|{i.get("sk", {}).get("S", "")}': i[attribute]["S"] for i in items if attribute in i}


def _unshard(table: str, key: dict, attribute: str, value: str) -> None:
    """Rewrite one item's index key as it was before the index was sharded."""
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=table, Key=key, UpdateExpression=f"SET {attribute} = :v", ExpressionAttributeValues={":v": {"S": value}})


def test_sharded_ledger_spreads_a_day_over_shards_and_admin_events_lists_every_one():
    from membergate.adapters.intake import DynamoEventLedger, ledger_day

    with aws_stack() as stack:
        from membergate import bootstrap

        # Given 50 events received today through the intake's own writer (as a webhook writes them)
        now = bootstrap.clock().now()
        ledger = DynamoEventLedger(boto3.client("dynamodb", region_name=REGION), stack.ledger_table)
        for n in range(COUNT):
            assert ledger.record_received(LedgerEntry(f"evt_{n:02d}", "invoice.paid", "received", now, now - n)) is None
        # And one entry written before the index was sharded (its partition is the bare day)
        ledger.record_received(LedgerEntry("evt_legacy", "invoice.paid", "received", now, now - COUNT))
        _unshard(stack.ledger_table, {"pk": {"S": "STRIPE_EVENT#evt_legacy"}}, "ledger_day", ledger_day(now))
        keys = _index_keys(stack.ledger_table, "ledger_day")
        # When the creator lists the events (the API's largest page), and filters them
        listed = call("/admin/events?limit=200")["events"]
        filtered = call("/admin/events?limit=200&status=received&type=invoice.paid")["events"]
    # Then today's 50 entries used several shards of the day, the legacy one the bare day
    shards = {v for k, v in keys.items() if not k.startswith("STRIPE_EVENT#evt_legacy")}
    assert len(shards) >= 2 and all("#" in s for s in shards), shards
    assert keys["STRIPE_EVENT#evt_legacy|"] == ledger_day(now)
    # And every entry is listed exactly once, newest first, the legacy one too
    expected = [f"evt_{n:02d}" for n in range(COUNT)] + ["evt_legacy"]
    assert [e["event_id"] for e in listed] == expected
    assert [e["event_id"] for e in filtered] == expected


def test_sharded_ledger_marked_by_the_processor_is_listed_from_every_shard():
    with aws_stack() as stack:
        from membergate import bootstrap

        # Given 50 events the processor recorded (the repository's upsert, not the intake's put)
        now = bootstrap.clock().now()
        ledger = _stores().ledger
        for n in range(COUNT):
            ledger.mark(LedgerEntry(f"evt_{n:02d}", "invoice.paid", "processed", now - n, now - n), now - n)
        keys = _index_keys(stack.ledger_table, "ledger_day")
        # When the ledger's reader lists the newest 50
        recent = ledger.recent(now, COUNT)
    # Then the writes used several shards and the reader found all of them
    assert len(set(keys.values())) >= 2, keys
    assert sorted(e.event_id for e in recent) == [f"evt_{n:02d}" for n in range(COUNT)]


def _subscription(n: int, now: int) -> SubscriptionRecord:
    snapshot = SubscriptionSnapshot(f"sub_{n:02d}", f"cus_{n:02d}", "active", now - DAY, f"evt_s{n:02d}",
                                    current_period_end=now + 20 * DAY, lines=(PriceLine("price_a", "eur", 500, 1, "month", 1),))
    return SubscriptionRecord(f"sub_{n:02d}", f"mbr_{n:02d}", f"cus_{n:02d}", "pln_1", latest=snapshot)


def test_sharded_subscriptions_spread_over_shards_and_every_kpi_reader_counts_all():
    with aws_stack() as stack:
        from membergate import bootstrap

        # Given a plan and 50 active subscriptions saved through the repository
        now = bootstrap.clock().now()
        stores = _stores()
        stores.catalog.add_community(Community("com_1", Platform.DISCORD, "Club", "1", "2", OnRevoke.REMOVE_ROLE, "en", now))
        stores.catalog.add_plan(Plan("pln_1", "Monthly", ("price_a",), (PlanGrant("com_1", "2"),), 3, OnGraceEnd.CANCEL, now))
        for n in range(COUNT):
            stores.subscriptions.save(_subscription(n, now))
        # And one saved before the by_kind index was sharded (partition "SUBSCRIPTION")
        stores.subscriptions.save(_subscription(COUNT, now))
        _unshard(stack.membership_table, {"pk": {"S": f"MEMBER#mbr_{COUNT:02d}"}, "sk": {"S": f"SUBSCRIPTION#sub_{COUNT:02d}"}},
                 "gsi1pk", "SUBSCRIPTION")
        keys = {k: v for k, v in _index_keys(stack.membership_table, "gsi1pk").items() if "|SUBSCRIPTION#" in k}
        # When the index reader, the KPI report and the history behind it read every subscription
        every = [r.subscription_id for r in stores.subscriptions.all_records()]
        kpis = call("/admin/kpis")
    # Then the 50 used several shards, the old one the bare partition
    shards = {v for k, v in keys.items() if f"sub_{COUNT:02d}" not in k}
    assert len(shards) >= 2 and all(s.startswith("SUBSCRIPTION#") for s in shards), shards
    assert keys[f"MEMBER#mbr_{COUNT:02d}|SUBSCRIPTION#sub_{COUNT:02d}"] == "SUBSCRIPTION"
    # And each reader saw all 51 exactly once
    assert sorted(every) == [f"sub_{n:02d}" for n in range(COUNT + 1)]
    assert kpis["members_with_access"] == COUNT + 1 and kpis["active_paying_members"] == COUNT + 1, kpis
    assert kpis["mrr"] == {"eur": 500 * (COUNT + 1)}, kpis
