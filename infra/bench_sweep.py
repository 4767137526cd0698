"""Items DynamoDB returns to one lifecycle sweep: it must follow the members due, not all members.

The population is realistic and fast to build: two template members (one paying, one past due)
are written by the real billing-event processor and repositories, read back raw, and cloned
with ``batch_write_item`` under new ids, so every clone has exactly the item layout the code writes.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from moto.dynamodb.models.table import Table

from infra.bench_aws import READ_OPERATIONS, REGION, CallLog, use_fake_credentials
from membergate import bootstrap, config
from membergate.adapters.dynamodb.models import MembershipItem
from membergate.adapters.dynamodb.repositories import due_shard
from membergate.domain.model import (
    AccessRecord,
    AccessState,
    Community,
    Identity,
    Member,
    OnGraceEnd,
    OnRevoke,
    Plan,
    PlanGrant,
    Platform,
)
from membergate.services.billing_events import BillingEventProcessor
from membergate.services.lifecycle import run_lifecycle
from tests.support import stripe_events as se
from tests.support.aws import aws_stack

T0 = 1_800_000_000
DAY = 86_400
PAST_DUE_AT = T0 + 30 * DAY
SWEEP_AT = PAST_DUE_AT + 60
GUILD, ROLE = "700000000000000001", "700000000000000002"
PRICE = "price_monthly"  # what tests.support.stripe_events sells
SEALED_TOKEN_BYTES = 220  # about what KMS returns for a sealed Discord token pair

# Template ids, distinctive so that substituting them in raw items cannot hit anything else.
TEMPLATES = {
    "active": {"member": "mbr_TPLACTIVE", "customer": "cus_TPLACTIVE", "sub": "sub_TPLACTIVE",
               "discord": "799999999999999991"},
    "due": {"member": "mbr_TPLDUE", "customer": "cus_TPLDUE", "sub": "sub_TPLDUE", "discord": "799999999999999992"},
}


@dataclass(frozen=True)
class SweepFigures:
    members: int
    due: int
    swept: int  # members the sweep looked at
    reminders: int
    items_read: int
    read_calls: int
    scans: int
    operations: dict[str, int]
    populate_s: float
    sweep_s: float

    @property
    def items_per_due_member(self) -> float:
        return self.items_read / self.due if self.due else float(self.items_read)


class _DiscardQueue:
    """The access queue, counting only: the sweep's DynamoDB reads are what is measured here."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, work: Iterable[Any], delay_seconds: int = 0) -> None:
        self.sent += len(list(work))


class _RecordingBilling:
    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> None:
        self.cancelled.append(subscription_id)


def _ids(kind: str, n: int) -> dict[str, str]:
    return {"member": f"mbr_{kind}{n:07d}", "customer": f"cus_{kind}{n:07d}", "sub": f"sub_{kind}{n:07d}",
            "discord": f"8{n:017d}" if kind == "a" else f"9{n:017d}"}


def _write_template(stores: Any, processor: Any, ids: dict[str, str], *, past_due: bool) -> None:
    """One member as the real code writes it: join, bind Discord, pay, (fail renewal), granted."""
    member = ids["member"]
    stores.members.create(Member(member, T0))
    stores.members.bind_identity(member, Identity(Platform.DISCORD, ids["discord"]), b"\x01" * SEALED_TOKEN_BYTES)
    common: dict[str, Any] = {"member_id": member, "customer": ids["customer"], "sub_id": ids["sub"]}
    if not past_due:
        # A paying member mid-period at the sweep: its card warning (7 days before the renewal, on
        # whatever the plan's renewal notice) is due after it, as a sweep running every few
        # minutes would have it.
        common.update(period_start=SWEEP_AT - 10 * DAY, period_end=SWEEP_AT + 20 * DAY)
    events = [
        (T0, se.subscription_event("customer.subscription.created", created=T0, **common)),
        (T0, se.checkout_completed(created=T0, member_id=member, customer=ids["customer"], sub_id=ids["sub"])),
    ]
    if past_due:
        failed = se.subscription_event(created=PAST_DUE_AT, status="past_due", period_start=PAST_DUE_AT, **common)
        events.append((PAST_DUE_AT, failed))
    for now, event in events:
        processor.apply(json.dumps(event), now)
    stores.access.save(AccessRecord(member, "com_1", AccessState.GRANTED, "", (ROLE,), T0, 0, T0))


def _raw_items(client: Any, table: str, ids: dict[str, str]) -> list[dict]:
    items = client.query(TableName=table, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                         ExpressionAttributeValues={":pk": {"S": f"MEMBER#{ids['member']}"}})["Items"]
    for pk in (f"STRIPE_CUSTOMER#{ids['customer']}", f"IDENTITY#discord#{ids['discord']}"):
        link = client.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "LINK"}}, ConsistentRead=True)
        items.append(link["Item"])
    return items


def _substitute(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: (_replace(v, mapping) if k == "S" else _substitute(v, mapping)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, mapping) for v in value]
    return value


def _replace(text: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        text = text.replace(old, new)
    return text


def _clones(template: list[dict], template_ids: dict[str, str], kind: str, count: int) -> Iterator[dict]:
    for n in range(count):
        ids = _ids(kind, n)
        mapping = {template_ids[k]: ids[k] for k in template_ids}
        for item in template:
            clone = _substitute(item, mapping)
            if "due_shard" in clone:  # the shard is derived from the member id
                clone["due_shard"] = {"S": due_shard(ids["member"])}
            yield clone


def _batch_write(client: Any, table: str, items: Iterable[dict]) -> int:
    written, batch = 0, []
    for item in items:
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:  # BatchWriteItem's limit
            written += _flush(client, table, batch)
            batch = []
    if batch:
        written += _flush(client, table, batch)
    return written


def _flush(client: Any, table: str, batch: list[dict]) -> int:
    request = {table: batch}
    while request:
        request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return len(batch)


def populate(stack: Any, stores: Any, members: int, due: int) -> None:
    """``members`` members in all, ``due`` of them past due with their due time before the sweep."""
    stores.catalog.add_community(Community("com_1", Platform.DISCORD, "The Club", GUILD, ROLE, OnRevoke.REMOVE_ROLE,
                                           "en", T0))
    # No renewal notice: only the past-due members are due at the sweep, as the figures assume
    # (each active member is due once a period anyway, N days before its renewal with a notice on,
    # 7 days before it for the card warning: the active members renew after that, see _write_template).
    stores.catalog.add_plan(Plan("pln_monthly", "Monthly", (PRICE,), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
                                 renewal_notice_days=None))
    processor = BillingEventProcessor(stores, _DiscardQueue())
    client = boto3.client("dynamodb", region_name=REGION)
    for kind, count, past_due in (("a", members - due, False), ("d", due, True)):
        if count <= 0:
            continue
        template_ids = TEMPLATES["due" if past_due else "active"]
        _write_template(stores, processor, template_ids, past_due=past_due)
        # The template itself is member number one of its kind; the clones are the others.
        template = _raw_items(client, stack.membership_table, template_ids)
        _batch_write(client, stack.membership_table, _clones(template, template_ids, kind, count - 1))


@contextlib.contextmanager
def partition_scoped_moto_queries() -> Iterator[None]:
    """Make moto's base-table Query look at the queried partition only (as DynamoDB does).

    moto 5 sorts every item of the table on each Query before keeping the partition asked for,
    which turns a 10,000-member sweep into minutes of moto time. Narrowing the candidates to that
    partition keeps moto's own filtering, sorting and paging, so responses are unchanged; index
    queries are left alone.
    """
    original = Table.query
    signature = inspect.signature(original)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name") or hash_key is None or not self.range_key_attr:
            return original(self, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition  # shadows the method on this instance only
        try:
            return original(self, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query
    try:
        yield
    finally:
        Table.query = original


def measure_sweep(members: int, due: int) -> SweepFigures:
    use_fake_credentials()
    with aws_stack() as stack, partition_scoped_moto_queries():
        stores = bootstrap.stores(config.ProcessorSettings.from_env())
        started = time.perf_counter()
        populate(stack, stores, members, due)
        populate_s = time.perf_counter() - started
        log = CallLog()
        # PynamoDB builds its botocore client lazily, once per table (models.configure).
        log.watch(MembershipItem._get_connection().connection.client)
        started = time.perf_counter()
        with log.recording("sweep") as calls:
            report = run_lifecycle(stores=stores, billing=_RecordingBilling(), access_queue=_DiscardQueue(),
                                   now=SWEEP_AT)
        sweep_s = time.perf_counter() - started
    reads = [c for c in calls if c.operation in READ_OPERATIONS]
    operations: dict[str, int] = {}
    for call in calls:
        operations[call.operation] = operations.get(call.operation, 0) + 1
    return SweepFigures(
        members=members,
        due=due,
        swept=report.members,
        reminders=report.reminders,
        items_read=sum(c.items_read for c in reads),
        read_calls=len(reads),
        scans=sum(1 for c in calls if c.operation == "Scan"),
        operations=operations,
        populate_s=populate_s,
        sweep_s=sweep_s,
    )


def scales_with_due(small: SweepFigures, large: SweepFigures, margin: float = 0.02) -> bool:
    """Same due members, more members in all: items read may differ by a couple of percent at most."""
    allowed = max(2, margin * small.items_read)
    return small.due == large.due and abs(large.items_read - small.items_read) <= allowed
