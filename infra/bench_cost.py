"""One member's month through the real handlers under moto: the billable requests it causes.

Measured per unit of work, then priced by infra.bench_prices: a renewal month, a month whose
renewal fails and is recovered in grace, one idle lifecycle sweep (the schedule runs whether or
not anything is due), and the item bytes a member keeps in DynamoDB.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.bench_aws import REGION, ApiCall, CallLog, Invocation, invoke, item_size, use_fake_credentials
from infra.local.lambda_events import failed_ids, sqs_event
from membergate import bootstrap, config
from membergate.adapters.dynamodb.models import LedgerItem, MembershipItem
from membergate.adapters.intake import LEDGER_DAY_SHARDS, ledger_span_shard
from membergate.domain.model import Community, Identity, Member, OAuthTokens, OnGraceEnd, OnRevoke, Plan, PlanGrant, Platform
from membergate.services.identity import seal_tokens
from tests.support import stripe_events as se
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import WEBHOOK_SECRET, aws_stack, put_secret
from tests.support.discord_spec import FakeDiscordTransport
from tests.support.handlers import load_handler
from infra.local.stripe_sandbox import StripeSandbox, WsgiStripeHttpClient

T0 = 1_800_000_000
DAY = 86_400
GUILD, ROLE, USER = "700000000000000001", "700000000000000002", "800000000000000003"
MEMBER, CUSTOMER, SUBSCRIPTION = "mbr_bench", "cus_bench", "sub_bench"
FUNCTIONS = ("stripe_webhook", "process_billing_event", "dispatch_access", "run_lifecycle", "reconcile")
STRIPE_BASE = "http://stripe.sandbox.test"  # the reconcile run lists Stripe through the real SDK
IDLE_SWEEPS = 5
# DynamoDB bills 100 bytes of overhead per stored item (and per index copy).
ITEM_OVERHEAD = 100


@dataclass
class FunctionUse:
    invocations: int = 0
    billed_ms: int = 0  # Lambda bills duration rounded up to the millisecond
    log_bytes: int = 0

    def add(self, invocation: Invocation) -> None:
        self.invocations += 1
        self.billed_ms += int(invocation.seconds * 1000) + 1
        self.log_bytes += invocation.log_bytes


@dataclass
class Usage:
    """Billable requests caused by one unit of work (a member-month, one sweep)."""

    label: str
    api_requests: int = 0
    functions: dict[str, FunctionUse] = field(default_factory=dict)
    read_units: float = 0.0
    write_units: float = 0.0
    sqs_standard: int = 0
    sqs_fifo: int = 0
    kms: int = 0
    secrets: int = 0
    stripe_events: int = 0
    operations: dict[str, float] = field(default_factory=dict)  # API operation -> calls
    metrics: set[str] = field(default_factory=set)  # EMF metric names it emitted (billed per metric-month)

    def function(self, name: str) -> FunctionUse:
        return self.functions.setdefault(name, FunctionUse())

    def add_calls(self, calls: list[ApiCall]) -> None:
        for call in calls:
            self.operations[call.name] = self.operations.get(call.name, 0) + 1
            self.read_units += call.read_units
            self.write_units += call.write_units
            if call.service == "sqs":
                if call.queue_fifo:
                    self.sqs_fifo += call.sqs_requests
                else:
                    self.sqs_standard += call.sqs_requests
            elif call.service == "kms":
                self.kms += 1
            elif call.service == "ssm":
                self.secrets += 1


@dataclass(frozen=True)
class MonthFigures:
    renewal: Usage
    failed_payment: Usage
    idle_sweep: Usage  # one sweep with nothing due
    first_invocation_extra_ms: dict[str, float]  # a fresh container's first call minus a warm one
    secrets_by_function: dict[str, int]  # distinct secrets each function reads (cached 5 min)
    member_bytes: int  # a member's items, overhead and index copies included
    ledger_item_bytes: int  # one Stripe event's ledger item, overhead and index copy included
    emf_metrics: set[str]
    # One reconciliation run: its fixed part (communities, its report, Stripe lists) and what each
    # member adds to it (their reads and the run's time), from runs over one and two members.
    reconcile_fixed: Usage = field(default_factory=lambda: Usage("reconcile, fixed"))
    reconcile_per_member: Usage = field(default_factory=lambda: Usage("reconcile, per member"))


class _Clock:
    def __init__(self, start: int):
        self.value = start

    def now(self) -> int:
        return self.value


class MemberMonthRunner:
    """Drives the real handlers the way API Gateway, SQS and the scheduler would, counting."""

    def __init__(self, stack: Any, log: CallLog, discord: Any, clock: _Clock):
        self.stack = stack
        self.log = log
        self.discord = discord
        self.clock = clock
        self.handlers = {name: load_handler(name) for name in FUNCTIONS}
        self.usage = Usage("warm-up")
        self.durations: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
        self.emf_metrics: set[str] = set()
        self.secret_reads: dict[str, int] = Counter()
        # Sweeps inside a member's month count only what the member adds to a sweep that runs
        # anyway (the idle sweep is priced once, as the schedule's fixed cost).
        self.idle_sweep: Usage | None = None

    # -- the edges ---------------------------------------------------------------------------

    def webhook(self, event: dict) -> dict:
        body, signature = se.signed(event, WEBHOOK_SECRET, int(time.time()))
        request = http_event("POST", "/webhooks/stripe", body=body, headers={"Stripe-Signature": signature})
        self.usage.api_requests += 1
        self.usage.stripe_events += 1
        invocation, _ = self._run("stripe_webhook", request)
        return invocation.result

    def pump(self) -> None:
        """Run the processor's asynchronous invokes, then deliver access messages one per invocation."""
        while self._hand_overs() or self._consume(self.stack.access_queue_url, "dispatch_access", fifo=False):
            pass

    def _hand_overs(self) -> bool:
        # An asynchronous invoke is one Lambda request, billed with the invocation: no queue.
        envelopes = self.stack.take_pending_events()
        for envelope in envelopes:
            self._run("process_billing_event", envelope)
        return bool(envelopes)

    def reconcile(self) -> dict:
        invocation, _ = self._run("reconcile", {"source": "aws.scheduler"})
        self.pump()
        if not invocation.result.get("complete"):
            raise RuntimeError(f"benchmark: the reconcile run did not finish: {invocation.result}")
        return invocation.result

    def sweep(self) -> dict:
        invocation, _ = self._run("run_lifecycle", {"source": "aws.scheduler"}, marginal=self.idle_sweep)
        self.pump()
        return invocation.result

    # -- plumbing ----------------------------------------------------------------------------

    def _consume(self, url: str, function: str, *, fifo: bool) -> bool:
        sqs = self.stack.sqs()
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"], VisibilityTimeout=0)
        messages = got.get("Messages", [])
        if not messages:
            return False
        invocation, _ = self._run(function, sqs_event(messages[:1], "arn:aws:sqs:us-east-1:123456789012:bench"))
        if messages[0]["MessageId"] in failed_ids(invocation.result):
            raise RuntimeError(f"{function} failed a message during the benchmark: {invocation.result}")
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        # The event source mapping's own requests: the receive that found it and the delete.
        if fifo:
            self.usage.sqs_fifo += 2
        else:
            self.usage.sqs_standard += 2
        return True

    def _run(self, function: str, event: dict, marginal: Usage | None = None) -> tuple[Invocation, list[ApiCall]]:
        # Clients are made lazily by the first invocation of each function: watch whatever exists.
        self.log.watch(*(bootstrap.aws_client(s, REGION) for s in ("dynamodb", "sqs", "ssm", "kms")))
        with self.log.recording(function) as calls:
            invocation = invoke(function, self.handlers[function], event, LambdaContext())
        self.log.watch(MembershipItem._get_connection().connection.client,
                       LedgerItem._get_connection().connection.client)
        self.durations[function].append(invocation.seconds)
        self.emf_metrics |= invocation.emf_metrics
        self.usage.metrics |= invocation.emf_metrics
        self.secret_reads[function] += sum(1 for c in calls if c.service == "ssm")
        if marginal is None:
            self.usage.function(function).add(invocation)
            self.usage.add_calls(calls)
        else:
            self._add_marginal_sweep(invocation, calls, marginal)
        return invocation, calls

    def _add_marginal_sweep(self, invocation: Invocation, calls: list[ApiCall], idle: Usage) -> None:
        idle_use = idle.functions["run_lifecycle"]
        extra_ms = max(0, int(invocation.seconds * 1000) + 1 - idle_use.billed_ms // idle_use.invocations)
        use = self.usage.function("run_lifecycle")
        use.billed_ms += extra_ms
        use.log_bytes += max(0, invocation.log_bytes - idle_use.log_bytes // idle_use.invocations)
        self.usage.add_calls([c for c in calls if c.index != "due"])  # the due-index reads happen anyway


# --- the scenarios ----------------------------------------------------------------------------


def _sub(status: str, at: int, **kw: Any) -> dict:
    return se.subscription_event(
        "customer.subscription.updated", created=at, member_id=MEMBER, customer=CUSTOMER, sub_id=SUBSCRIPTION,
        status=status, period_start=kw.pop("period_start", at), **kw)


def _invoice(kind: str, at: int, status: str) -> dict:
    return se.invoice_event(kind, created=at, sub_id=SUBSCRIPTION, customer=CUSTOMER, status=status)


def _arrange_member(stores: Any, discord: Any) -> None:
    stores.catalog.add_community(Community("com_1", Platform.DISCORD, "The Club", GUILD, ROLE, OnRevoke.REMOVE_ROLE,
                                           "en", T0))
    stores.catalog.add_plan(Plan("pln_monthly", "Monthly", ("price_monthly",), (PlanGrant("com_1"),), 3,
                                 OnGraceEnd.CANCEL, T0))
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    stores.members.create(Member(MEMBER, T0))
    cipher = bootstrap.join().cipher  # as the join function seals them (the data key by default)
    tokens = OAuthTokens(discord.authorize(USER), discord.issue_refresh_token(USER), T0 + 7 * DAY,
                         "identify guilds.join")
    stores.members.bind_identity(MEMBER, Identity(Platform.DISCORD, USER), seal_tokens(cipher, tokens))


def _signup(run: MemberMonthRunner) -> None:
    common = {"member_id": MEMBER, "customer": CUSTOMER, "sub_id": SUBSCRIPTION}
    run.webhook(se.subscription_event("customer.subscription.created", created=T0, **common))
    run.webhook(se.checkout_completed(created=T0, member_id=MEMBER, customer=CUSTOMER, sub_id=SUBSCRIPTION))
    run.pump()
    run.sweep()
    run.reconcile()
    if run.discord.guilds[GUILD].members.get(USER) != {ROLE}:
        raise RuntimeError("benchmark set-up: the member did not get the role at signup")


def _renewal_month(run: MemberMonthRunner) -> None:
    """Stripe's renewal, as our endpoint sees it: the subscription moves on a period, the invoice is paid."""
    renew_at = T0 + 30 * DAY
    run.clock.value = renew_at
    run.webhook(_sub("active", renew_at))
    run.webhook(_invoice("invoice.paid", renew_at + 3600, "paid"))  # charged an hour after invoice.created
    run.pump()


def _failed_payment_month(run: MemberMonthRunner) -> None:
    """The renewal charge fails, the member is reminded in grace, Stripe's retry succeeds a day later."""
    fail_at = T0 + 60 * DAY
    told = len(run.discord.delivered)  # the welcome, sent on the member's first access
    run.clock.value = fail_at
    run.webhook(_sub("past_due", fail_at))
    run.webhook(_invoice("invoice.payment_failed", fail_at + 3600, "open"))
    run.pump()
    run.clock.value = fail_at + 3600 + 300
    run.sweep()  # the "payment didn't go through" reminder
    run.clock.value = fail_at + DAY
    run.webhook(_sub("active", fail_at + DAY, period_start=fail_at))
    run.webhook(_invoice("invoice.paid", fail_at + DAY, "paid"))
    run.pump()
    run.clock.value = fail_at + 4 * DAY
    run.sweep()  # nothing left to do for this member
    if len(run.discord.delivered) != told + 1 or run.discord.guilds[GUILD].members.get(USER) != {ROLE}:
        raise RuntimeError("benchmark scenario: expected one reminder and the role kept throughout")


def _second_member(run: MemberMonthRunner, stores: Any) -> None:
    """Another paying member like the first (bound, subscribed, with the role), for the reconcile's per-member part."""
    user, member, customer, sub = "800000000000000004", "mbr_bench2", "cus_bench2", "sub_bench2"
    run.discord.add_user(user)
    stores.members.create(Member(member, T0))
    cipher = bootstrap.join().cipher
    tokens = OAuthTokens(run.discord.authorize(user), run.discord.issue_refresh_token(user), T0 + 365 * DAY,
                         "identify guilds.join")
    stores.members.bind_identity(member, Identity(Platform.DISCORD, user), seal_tokens(cipher, tokens))
    common = {"member_id": member, "customer": customer, "sub_id": sub}
    run.webhook(se.subscription_event("customer.subscription.created", created=run.clock.value,
                                      period_start=run.clock.value, **common))
    run.webhook(se.checkout_completed(created=run.clock.value, **common))
    run.pump()
    if run.discord.guilds[GUILD].members.get(user) != {ROLE}:
        raise RuntimeError(f"benchmark set-up: the second member did not get the role: {stores.access.for_member(member)} "
                           f"{stores.entitlements.for_member(member)}")


RECONCILE_SAMPLES = 3


def _fastest(run: MemberMonthRunner, samples: int) -> Usage:
    """The fastest of ``samples`` reconcile runs (requests are the same in each; only time varies)."""
    measured = []
    for n in range(samples):
        run.usage = Usage(f"reconcile sample {n}")
        run.reconcile()
        measured.append(run.usage)
    return min(measured, key=lambda u: u.functions["reconcile"].billed_ms)


def _difference(label: str, more: Usage, less: Usage) -> Usage:
    out = Usage(label, read_units=max(0.0, more.read_units - less.read_units),
                write_units=max(0.0, more.write_units - less.write_units),
                sqs_standard=max(0, more.sqs_standard - less.sqs_standard))
    for name, use in more.functions.items():
        base = less.functions.get(name, FunctionUse())
        # Same invocation count: only the time and the log lines a member adds.
        out.functions[name] = FunctionUse(0, max(0, use.billed_ms - base.billed_ms), max(0, use.log_bytes - base.log_bytes))
    return out


def _stored_bytes(stack: Any) -> tuple[int, int]:
    """(a member's items, one ledger item), each with DynamoDB's per-item overhead and index copies."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)  # fresh, unwatched: not counted
    items = dynamodb.query(TableName=stack.membership_table, KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues={":pk": {"S": f"MEMBER#{MEMBER}"}})["Items"]
    for pk in (f"STRIPE_CUSTOMER#{CUSTOMER}", f"DISCORD_USER#{USER}"):
        found = dynamodb.get_item(TableName=stack.membership_table, Key={"pk": {"S": pk}, "sk": {"S": "LINK"}})
        items += [found["Item"]] if "Item" in found else []
    member = sum(item_size(i) + ITEM_OVERHEAD for i in items)
    member += sum(item_size(i) + ITEM_OVERHEAD for i in items if "gsi1pk" in i)  # by_kind projects ALL
    ledger = [item for shard in range(LEDGER_DAY_SHARDS) for item in dynamodb.query(
        TableName=stack.ledger_table, IndexName="by_day", Limit=1, KeyConditionExpression="ledger_day = :d",
        ExpressionAttributeValues={":d": {"S": ledger_span_shard(shard)}})["Items"]][:1]
    ledger_bytes = 2 * (item_size(ledger[0]) + ITEM_OVERHEAD) if ledger else 0  # by_day projects ALL
    return member, ledger_bytes


def _metrics_env() -> str:
    """POWERTOOLS_METRICS_DISABLED as template.yaml sets it by default (BusinessMetrics=off)."""
    from infra.cfn_yaml import load_template

    parameters = load_template(Path(__file__).resolve().parents[1] / "template.yaml").get("Parameters", {})
    return "false" if str(parameters.get("BusinessMetrics", {}).get("Default", "on")) == "on" else "true"


def measure_member_month() -> MonthFigures:
    use_fake_credentials()
    with ExitStack() as scope:
        stack = scope.enter_context(aws_stack(POWERTOOLS_METRICS_DISABLED=_metrics_env(), STRIPE_API_BASE=STRIPE_BASE))
        discord = FakeDiscordTransport()
        put_secret("/membergate/discord-bot-token", discord.bot_token)
        clock = _Clock(T0)
        sandbox = StripeSandbox(clock=clock.now, deliver=lambda event: None, public_base_url=STRIPE_BASE)
        scope.enter_context(bootstrap.overridden(clock=clock, discord_transport=discord,
                                                 stripe_http_client=WsgiStripeHttpClient(sandbox.wsgi_app, STRIPE_BASE)))
        stores = bootstrap.stores(config.ProcessorSettings.from_env())
        _arrange_member(stores, discord)
        log = CallLog(inspector=boto3.client("dynamodb", region_name=REGION))
        run = MemberMonthRunner(stack, log, discord, clock)

        _signup(run)  # builds every function's dependencies: the first call of each is a cold one
        first = {name: run.durations[name][0] for name in FUNCTIONS}

        run.usage = Usage("idle sweep")
        clock.value = T0 + DAY
        for _ in range(IDLE_SWEEPS):
            run.sweep()
        idle = run.usage
        run.idle_sweep = idle

        run.usage = Usage("renewal month")
        _renewal_month(run)
        renewal = run.usage

        run.usage = Usage("failed payment, recovered in grace")
        _failed_payment_month(run)
        failed = run.usage

        # Warm runs over one member, then over two: the difference is a member's part. The fastest of
        # a few runs each, so a moment of load on the machine is not priced as a member's cost.
        run.usage = Usage("reconcile warm-up")
        run.reconcile()
        one = _fastest(run, RECONCILE_SAMPLES)
        member_bytes, ledger_bytes = _stored_bytes(stack)
        run.usage = Usage("second member's signup (not counted)")
        _second_member(run, stores)
        run.reconcile()  # the new member's first run fixes nothing but warms its reads
        two = _fastest(run, RECONCILE_SAMPLES)
        per_member = _difference("reconcile, per member", two, one)
        fixed_part = _difference("reconcile, fixed", one, per_member)
        fixed_part.functions["reconcile"].invocations = 1

        warm = {name: statistics.median(run.durations[name][1:] or run.durations[name]) for name in FUNCTIONS}
    return MonthFigures(
        renewal=renewal,
        failed_payment=failed,
        idle_sweep=_per_invocation(idle, IDLE_SWEEPS),
        first_invocation_extra_ms={n: max(0.0, (first[n] - warm[n]) * 1000) for n in FUNCTIONS},
        secrets_by_function={n: c for n, c in run.secret_reads.items() if c},
        member_bytes=member_bytes,
        ledger_item_bytes=ledger_bytes,
        emf_metrics=run.emf_metrics,
        reconcile_fixed=fixed_part,
        reconcile_per_member=per_member,
    )


def _per_invocation(usage: Usage, n: int) -> Usage:
    out = Usage(usage.label, operations={k: v / n for k, v in usage.operations.items()},
                metrics=set(usage.metrics))
    for name, use in usage.functions.items():
        out.functions[name] = FunctionUse(use.invocations // n, use.billed_ms // n, use.log_bytes // n)
    out.read_units, out.write_units = usage.read_units / n, usage.write_units / n
    out.sqs_standard, out.sqs_fifo = usage.sqs_standard // n, usage.sqs_fifo // n
    return out
