"""DynamoDB calls and capacity units per billing event type, through the real processor, under moto.

One member's life as Stripe tells it (signup, renewal, a failed payment and its recovery), each
event posted to the real intake and then applied by the real processor handler, one invocation
per event as Lambda's asynchronous invokes run them. The first event runs in a cold container
(the catalog is read then); the rest are warm. Only the processor's own calls are counted.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3

from infra import bench_cost
from infra.bench_aws import REGION, CallLog, use_fake_credentials
from membergate import bootstrap, config
from membergate.adapters.dynamodb.models import LedgerItem, MembershipItem
from tests.support import stripe_events as se
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import WEBHOOK_SECRET, aws_stack
from tests.support.discord_spec import FakeDiscordTransport
from tests.support.handlers import load_handler

BUDGET_DYNAMODB_CALLS_PER_EVENT = 6
T0, DAY = bench_cost.T0, 86_400


@dataclass
class EventTypeCalls:
    label: str
    calls: int  # the event's own calls (the catalog's once-per-container reads not included)
    read_units: float
    write_units: float
    operations: list[str] = field(default_factory=list)
    catalog_calls: int = 0  # reads of the catalog index: a cold container's, once, for every event after

    @property
    def ok(self) -> bool:
        return self.calls <= BUDGET_DYNAMODB_CALLS_PER_EVENT


def _post(event: dict) -> None:
    body, signature = se.signed(event, WEBHOOK_SECRET, int(__import__("time").time()))
    request = http_event("POST", "/webhooks/stripe", body=body, headers={"Stripe-Signature": signature})
    reply = load_handler("stripe_webhook").lambda_handler(request, LambdaContext())
    if reply["statusCode"] != 200:
        raise RuntimeError(f"benchmark set-up: the intake refused an event: {reply}")


def _attached(customer: str, pm_id: str, at: int) -> dict:
    """A card attached to the customer, its fingerprint in the payload as Stripe sends it."""
    event = se.payment_method_event(created=at, pm_id=pm_id, customer=customer)
    event["data"]["object"]["card"]["fingerprint"] = f"fp_{pm_id}"
    return event


def _trial_checkout(member: str, customer: str, sub_id: str, at: int) -> dict:
    """The trial's Checkout completing after its subscription event, naming the buyer's email."""
    event = se.checkout_completed(created=at, member_id=member, customer=customer, sub_id=sub_id,
                                  payment_status="no_payment_required")
    event["data"]["object"]["customer_details"] = {"email": "bench-trial@example.com", "name": None}
    return event


def measure_processor_calls(with_trials: bool = False) -> list[EventTypeCalls]:
    """The member's story; ``with_trials``: then a trial whose card is attached before, and one after."""
    use_fake_credentials()
    member, customer, sub = bench_cost.MEMBER, bench_cost.CUSTOMER, bench_cost.SUBSCRIPTION
    common = {"member_id": member, "customer": customer, "sub_id": sub}

    def sub_event(type_: str, status: str, at: int, **kw: Any) -> dict:
        return se.subscription_event(type_, created=at, status=status, period_start=kw.pop("period_start", at),
                                     **common, **kw)

    def invoice(kind: str, at: int, status: str) -> dict:
        return se.invoice_event(kind, created=at, sub_id=sub, customer=customer, status=status)

    story = [
        ("customer.subscription.created (cold container)", sub_event("customer.subscription.created", "active", T0)),
        ("checkout.session.completed", se.checkout_completed(created=T0, member_id=member, customer=customer,
                                                             sub_id=sub)),
        ("customer.subscription.updated (renewal)", sub_event("customer.subscription.updated", "active", T0 + 30 * DAY)),
        ("invoice.paid", invoice("invoice.paid", T0 + 30 * DAY + 3600, "paid")),
        ("customer.subscription.updated (past_due)", sub_event("customer.subscription.updated", "past_due",
                                                               T0 + 60 * DAY)),
        ("invoice.payment_failed", invoice("invoice.payment_failed", T0 + 60 * DAY + 3600, "open")),
        ("customer.subscription.deleted", sub_event("customer.subscription.deleted", "canceled", T0 + 70 * DAY)),
        # A subscription made in the Stripe dashboard for a customer Membergate has never seen:
        # no member id in it, the member is created from the customer.
        ("customer.subscription.created (new customer, no member id)",
         se.subscription_event("customer.subscription.created", created=T0 + 71 * DAY, status="active",
                               customer="cus_bench_dashboard", sub_id="sub_bench_dashboard")),
    ]
    trials = [
        # One trial per card (domain/trials.py): the card's fingerprint comes only in payment_method.attached,
        # which Stripe may deliver before or after the trialing subscription's event.
        ("payment_method.attached (before the subscription)", _attached(customer, "pm_bench_1", T0 + 72 * DAY)),
        ("customer.subscription.created (trialing, card seen before)",
         se.subscription_event("customer.subscription.created", created=T0 + 72 * DAY + 60, status="trialing",
                               sub_id="sub_bench_trial", **{k: v for k, v in common.items() if k != "sub_id"})),
        ("checkout.session.completed (trial)", _trial_checkout(member, customer, "sub_bench_trial", T0 + 72 * DAY + 120)),
        ("customer.subscription.trial_will_end",
         se.subscription_event("customer.subscription.trial_will_end", created=T0 + 76 * DAY, status="trialing",
                               sub_id="sub_bench_trial", **{k: v for k, v in common.items() if k != "sub_id"})),
        ("customer.subscription.created (trialing, card not seen yet)",
         se.subscription_event("customer.subscription.created", created=T0 + 77 * DAY, status="trialing",
                               customer="cus_bench_dashboard", sub_id="sub_bench_dashboard_trial")),
        ("payment_method.attached (after the trialing subscription)",
         _attached("cus_bench_dashboard", "pm_bench_2", T0 + 77 * DAY + 60)),
    ]
    if with_trials:
        story += trials
    results: list[EventTypeCalls] = []
    with ExitStack() as scope:
        stack = scope.enter_context(aws_stack())
        discord = FakeDiscordTransport()
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name="/membergate/discord-bot-token", Value=discord.bot_token, Type="SecureString", Overwrite=True)
        clock = bench_cost._Clock(T0)
        scope.enter_context(bootstrap.overridden(clock=clock, discord_transport=discord))
        bench_cost._arrange_member(bootstrap.stores(config.ProcessorSettings.from_env()), discord)
        # A new container: its dependencies are built (Lambda's init), nothing is read yet.
        scope.enter_context(bootstrap.overridden(clock=clock, discord_transport=discord))
        bootstrap.processor()
        log = CallLog(inspector=boto3.client("dynamodb", region_name=REGION))
        log.watch(MembershipItem._get_connection().connection.client, LedgerItem._get_connection().connection.client)
        handler = load_handler("process_billing_event")
        for label, event in story:
            clock.value = int(event["created"])
            _post(event)
            for envelope in stack.take_pending_events():
                with log.recording(label) as calls:
                    handler.lambda_handler(envelope, LambdaContext())
                dynamodb = [c for c in calls if c.service == "dynamodb"]
                catalog = [c for c in dynamodb if c.index == "by_kind"]  # plans and communities
                own = [c for c in dynamodb if c.index != "by_kind"]
                results.append(EventTypeCalls(label, len(own), sum(c.read_units for c in dynamodb),
                                              sum(c.write_units for c in dynamodb), [c.operation for c in own],
                                              catalog_calls=len(catalog)))
    return results


if __name__ == "__main__":
    for row in measure_processor_calls(with_trials=True):
        print(f"{row.label:<48} {row.calls:>2} calls (+{row.catalog_calls} catalog)  {row.read_units:>4.1f} RRU  {row.write_units:>4.1f} WRU  "
              f"{', '.join(row.operations)}")
