"""docs/state-machine.md is checked row by row against the code that derives access."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from membergate.domain.billing import SubscriptionRecord, SubscriptionSnapshot, grant_status, merge_snapshot
from membergate.domain.access import ACCESS_ENDED, INVITE
from membergate.domain.controls import Removal, end_grant
from membergate.domain.errors import ConflictError
from membergate.domain.grants import OneTimeGrant, one_time_status, windows
from membergate.domain.lifecycle import WELCOME, decide
from membergate.domain.messages import template_key
from membergate.domain.returns import ACCESS_BACK
from membergate.domain.model import CheckoutGate, EntitlementState, OnGraceEnd, Plan, PlanGrant, PlanKind, PriceLine

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"
T0, DAY = 1_800_000_000, 86_400
PLAN = Plan("pln_m", "Monthly", ("price_m",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0)


def table(name: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"<!-- table:{name} -->", 1)[1].split("<!-- /table -->", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in body.strip().splitlines()]
    return [r for r in rows[2:] if r and r[0]]  # header and separator first


def subscription_record(fact: str) -> tuple[SubscriptionRecord, int]:
    """The record a row describes, and when it is looked at."""
    status = re.match(r"`([a-z_]+)`", fact).group(1)
    cancel = "cancel at period end" in fact
    snap = SubscriptionSnapshot("sub_1", "cus_1", status, T0, "evt_1", cancel_at_period_end=cancel,
                                current_period_end=T0 + 30 * DAY, lines=(PriceLine("price_m", "eur", 900, 1, "month", 1),))
    record = merge_snapshot(SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_m"), snap)
    at = T0 + DAY
    if "period over" in fact or "grace over" in fact:
        at = T0 + 31 * DAY
    if "fully refunded" in fact:
        record = replace(record, last_paid_at=T0, refunded_payment_at=T0)
    if "disputed" in fact or "dispute" in fact:
        outcome = "won" if "won" in fact else "lost" if "lost" in fact else "open"
        record = replace(record, dispute=outcome, dispute_policy="keep" if "(keep)" in fact else "revoke")
    if "in 2 days" in fact:  # the trial or the period ends two days later
        at = T0 + 28 * DAY
    if "last day of grace" in fact:
        at = T0 + PLAN.grace_seconds - 3_600
    if "followed by a renewal" in fact:
        record = replace(record, last_paid_at=T0 + 30 * DAY, refunded_payment_at=T0)
        at = T0 + 30 * DAY + 60
    return record, at


@pytest.mark.parametrize("row", table("subscription"), ids=lambda r: r[0])
def test_subscription_row_matches_grant_status(row):
    fact, access, reason = row[0], row[1], row[2]
    record, at = subscription_record(fact)
    status = grant_status(record, PLAN, at)
    assert (status.state.value, status.reason) == (access, reason)


ONE_TIME_FACTS = {
    "paid, within its days": ({}, DAY),
    "paid, days over": ({}, 31 * DAY),
    "SEPA payment settling": ({"gate": CheckoutGate.AWAITING}, DAY),
    "SEPA payment failed": ({"gate": CheckoutGate.FAILED}, DAY),
    "paid": ({}, 400 * DAY),
    "partial refund": ({}, DAY),  # a partial refund records nothing (tests/unit/test_refunds_disputes.py)
    "full refund": ({"ended_reason": "refunded"}, DAY),
    "dispute open (revoke)": ({"dispute": "open"}, DAY),
    "dispute lost (revoke)": ({"dispute": "lost"}, DAY),
    "dispute won (revoke)": ({"dispute": "won"}, DAY),
    "dispute open (keep)": ({"dispute": "open", "dispute_policy": "keep"}, DAY),
    "customer deleted": ({"ended_reason": "customer_deleted"}, DAY),
}


@pytest.mark.parametrize("row", table("one_time"), ids=lambda r: f"{r[0]}: {r[1]}")
def test_one_time_row_matches_one_time_status(row):
    kind, fact, access, reason = row[0], row[1], row[2], row[3]
    fields, after = ONE_TIME_FACTS[fact]
    plan_kind = PlanKind(kind)
    grant = OneTimeGrant("cs_1", "mbr_1", "pln_x", plan_kind, T0, 30 * DAY if plan_kind is PlanKind.PASS else None,
                         **fields)
    status = one_time_status(grant, windows([grant]).get("cs_1"), T0 + after)
    assert (status.state.value, status.reason) == (access, reason)


def test_every_handled_event_type_is_named_in_the_document():
    from membergate.domain.stripe_events import HANDLED_EVENT_TYPES

    text = DOC.read_text(encoding="utf-8")
    assert {t for t in HANDLED_EVENT_TYPES if f"`{t}`" not in text} == set()


@pytest.mark.parametrize(("fact", "key"), [
    ("`active`, latest payment fully refunded", f"membergate-refund-sub_1-{T0}"),
    ("`active`, dispute lost (revoke)", "membergate-dispute-lost-sub_1"),
    ("`active`, a payment disputed (`charge.dispute.created`, revoke)", None),
    ("`active`, a payment disputed (keep)", None),
    ("`active`, dispute won", None),
])
def test_rows_saying_subscription_cancelled_are_the_ones_the_sweep_cancels(fact, key):
    # Given the row's record (its text says "subscription cancelled" exactly when a key is expected)
    (row,) = [r for r in table("subscription") if r[0].startswith(fact)]
    record, at = subscription_record(row[0])
    # When the lifecycle decides
    decision = decide([record], {PLAN.id: PLAN}, at)
    # Then the subscription is cancelled at Stripe under that key, or not at all
    assert [c.idempotency_key for c in decision.cancellations] == ([key] if key else [])
    assert ("subscription cancelled" in row[3]) == (key is not None)


# --- messages: the "Message" columns and the messages table ------------------------------------

SRC = Path(__file__).resolve().parents[2] / "shared" / "membergate"
# Which module "Sent by" names: where the code decides to send that kind.
SENT_BY = {
    "domain/lifecycle.py": "sweep",
    "domain/access.py": "dispatcher",
    "services/access.py": "dispatcher",
    "services/billing_events.py": "billing events",
    "services/removals.py": "undo",
    "services/migration.py": "migration",
}


def kinds_in(cell: str) -> set[str]:
    """The message templates a cell names (backticked); "—" names none."""
    return set(re.findall(r"`([a-z_.]+)`", cell))


def reason_in_words(template: str, reason: str) -> bool:
    """The member reads the reason in words: its own template, or reason.<reason> in every language."""
    from membergate.domain.i18n import CATALOGUES

    return template != ACCESS_ENDED or all(f"reason.{reason}" in texts for texts in CATALOGUES.values())


def expected_ended(reason: str, on_grace_end: OnGraceEnd | None = None) -> set[str]:
    """The receipt template the dispatcher renders for an access ended for ``reason`` (services/access.py::_text)."""
    policies = list(OnGraceEnd) if reason == "grace_expired" and on_grace_end is None else [on_grace_end or PLAN.on_grace_end]
    return {template_key(ACCESS_ENDED, reason, policy.value) for policy in policies}


@pytest.mark.parametrize("row", table("subscription"), ids=lambda r: r[0])
def test_subscription_row_message_is_what_the_sweep_and_dispatcher_send(row):
    # Given the row's record at its moment
    fact, access, reason, message = row[0], row[1], row[2], row[4]
    record, at = subscription_record(fact)
    # When the sweep decides what is due (and, for an ended grant, the removal's receipt)
    due = {r.kind for r in decide([record], {PLAN.id: PLAN}, at).reminders}
    ended = expected_ended(reason) if access == "ended" else set()
    # Then the row names exactly those templates; a welcome only where access is active
    named = kinds_in(message)
    assert named - {WELCOME, ACCESS_BACK} == due | ended
    assert WELCOME not in named or access == "active"
    # Intended change (msg10): access coming back after a removal is now told, only where access is active again
    assert ACCESS_BACK not in named or access == "active"
    assert all(reason_in_words(t, reason) for t in ended), f"{reason} has no words for the member"


@pytest.mark.parametrize("row", table("one_time"), ids=lambda r: f"{r[0]}: {r[1]}")
def test_one_time_row_message_is_the_removal_receipt(row):
    access, reason, message = row[2], row[3], row[5]
    ended = expected_ended(reason) if access == "ended" else set()
    named = kinds_in(message)
    assert named - {WELCOME, ACCESS_BACK} == ended
    assert WELCOME not in named or access == "active"
    assert ACCESS_BACK not in named or access == "active"
    assert all(reason_in_words(t, reason) for t in ended), f"{reason} has no words for the member"


def _queued_kinds() -> dict[str, set[str]]:
    """Every message kind the code can queue, with the "Sent by" of each module that queues it.

    Read from the source: ``message_kind=NAME`` (or a literal) anywhere, and the lifecycle's
    ``Reminder(NAME, ...)`` / ``at(NAME, ...)``; names resolved in the module that uses them."""
    import importlib

    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        source = path.read_text(encoding="utf-8")
        names = re.findall(r"message_kind=([A-Z_]+|\"[a-z_]+\")", source)
        # ports.notify_work(member, community, KIND, period, ...): the one builder of message work
        names += re.findall(r"notify_work\(\s*[^,()]+,\s*[^,()]+,\s*([A-Z_]+|\"[a-z_]+\")", source)
        if rel == "domain/lifecycle.py":
            names += re.findall(r"(?:Reminder|at)\(([A-Z_]+),", source)
        if not names:
            continue
        module = importlib.import_module("membergate." + rel.removesuffix(".py").replace("/", "."))
        for name in names:
            kind = name.strip('"') if name.startswith('"') else getattr(module, name)
            found.setdefault(kind, set()).add(SENT_BY.get(rel, rel))
    return found


def test_messages_table_lists_every_kind_the_code_queues_under_the_module_that_queues_it():
    # Given the messages table and the kinds found in the code
    rows = {next(iter(kinds_in(r[0]))): r[1] for r in table("messages")}
    queued = _queued_kinds()
    # Then each kind is listed once, with the module that sends it (a new kind must be documented)
    assert len(rows) == len(table("messages"))
    assert {kind: {sent_by} for kind, sent_by in rows.items()} == queued


def test_every_message_named_in_the_tables_has_a_text_in_every_language():
    from membergate.domain.i18n import CATALOGUES

    listed = {next(iter(kinds_in(r[0]))) for r in table("messages")}
    named = set(listed)
    for name, column in (("subscription", 4), ("one_time", 5), ("sources", 4)):
        for row in table(name):
            named |= kinds_in(row[column])
    # Then every template named has its text, and every one belongs to a kind of the messages table
    for template in named:
        assert template.split(".")[0] in listed, template
        texts = [f"msg.{template}"] if template != INVITE else ["msg.invite", "msg.invite_group"]
        for locale, catalogue in CATALOGUES.items():
            assert all(t in catalogue for t in texts), f"{locale}: {template}"


# --- grant sources ------------------------------------------------------------------------------

LONG_AFTER = 100 * 365 * DAY
MONEY_BACK = {  # what a paid grant's later charge events set (tests/unit/test_refunds_disputes.py)
    "refunded": {"ended_reason": "refunded"},
    "dispute": {"dispute": "open"},
    "customer_deleted": {"ended_reason": "customer_deleted"},
    "payment_failed": {"gate": CheckoutGate.FAILED},
}


def built_grant(source_cell: str) -> OneTimeGrant:
    """The row's grant, made by the code path that makes it (30 days where it takes days)."""
    from tests.support import stripe_events as se
    from tests.support.harness import Harness
    from tests.support.removals import FakeRemovalLog
    from tests.support.timeline import timed_harness

    from membergate.domain.migration import Migration, migration_grant
    from membergate.services import controls, removals

    if source_cell.startswith("`checkout`"):
        kind = PlanKind.LIFETIME if "lifetime" in source_cell else PlanKind.PASS
        h = Harness()
        h.stores.catalog.add_plan(Plan("pln_x", "X", ("price_x",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0, kind,
                                       30 if kind is PlanKind.PASS else None))
        h.member()
        h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_x"))
        (grant,) = h.stores.grants.for_member("mbr_1")
        return grant
    h = timed_harness()
    h.member()
    if source_cell == "`manual`":
        return controls.give_grant(h.stores, h.queue, member_id="mbr_1", plan_id="pln_monthly", days=30, reason="mod",
                                   actor="creator", now=T0)
    if source_cell == "`manual` (undo)":
        log = FakeRemovalLog()
        h.stores = replace(h.stores, removals=log)
        log.record(Removal("rem_1", "mbr_1", "com_1", "discord", T0 - DAY, "grace_expired", "pln_monthly"))
        _, grant = removals.undo(h.stores, h.queue, removal_id="rem_1", reason="mistake", days=30, actor="creator",
                                 now=T0, window_days=7)
        assert grant.grant_id == "undo_rem_1"
        return grant
    if source_cell == "`access_code`":
        typed, _ = controls.create_code(h.stores, plan_id="pln_monthly", days=30, uses=1, expires_at=None,
                                        actor="creator", now=T0)
        return controls.redeem_code(h.stores, h.queue, typed=typed, plan_id="pln_monthly", member_id="mbr_1",
                                    now=T0).grant
    if source_cell == "`migration`":
        return migration_grant(Migration("mig_1", "com_1", "pln_monthly", T0 + 30 * DAY, "", T0), "mbr_1", T0)
    raise AssertionError(f"no way to build {source_cell}: add it to built_grant")


def status_of(grant: OneTimeGrant, at: int):
    return one_time_status(grant, windows([grant]).get(grant.grant_id), at)


@pytest.mark.parametrize("row", table("sources"), ids=lambda r: r[0])
def test_source_row_is_how_the_code_makes_and_ends_that_grant(row):
    # Given the grant the row's source makes
    grant = built_grant(row[0])
    reasons, named = kinds_in(row[3]), kinds_in(row[4])
    # Then it has that source, gives access from its start, and ends with the reasons the row lists
    assert f"`{grant.source}`" == row[0].split(" ")[0]
    assert status_of(grant, grant.paid_at + 1).state is EntitlementState.ACTIVE
    reached = set()
    if grant.access_seconds is None:
        assert status_of(grant, grant.paid_at + LONG_AFTER).state is EntitlementState.ACTIVE
    else:
        reached.add(status_of(grant, grant.paid_at + grant.access_seconds).reason)
    if grant.given:
        reached.add(status_of(end_grant(grant), grant.paid_at + 1).reason)
    else:
        with pytest.raises(ConflictError):
            end_grant(grant)  # a paid grant is ended in Stripe (refund), never by the creator
        for reason, fields in MONEY_BACK.items():
            assert status_of(replace(grant, **fields), grant.paid_at + 1).reason == reason
            reached.add(reason)
    assert reasons == reached
    # And the member reads each end in words, with a receipt the row names
    assert all(reason_in_words(t, r) for r in reasons for t in expected_ended(r, OnGraceEnd.CANCEL))
    assert {t for r in reasons for t in expected_ended(r, OnGraceEnd.CANCEL)} <= named
