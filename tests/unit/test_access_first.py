"""Access before messages: in a batch, no member's role waits behind another member's DMs."""

from __future__ import annotations

import json

import pytest

from membergate.domain.errors import RetryableError
from membergate.domain.model import MessageKey, MessageStatus, WorkKind
from membergate.ports import AccessWork, encode_work
from membergate.services.access_worker import access_work_first, handle_access_message, send_held_messages
from tests.support import stripe_events as se
from tests.support.harness import ROLE, T0, Harness

pytestmark = pytest.mark.unit

USERS = {"mbr_1": "555555555555555551", "mbr_2": "555555555555555552", "mbr_3": "555555555555555553"}


def three_paid_members(h: Harness) -> list[AccessWork]:
    """Three members whose payments were applied: their access work is queued, not run yet."""
    for n, (member_id, user) in enumerate(USERS.items(), start=1):
        h.member(member_id, user)
        h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id=member_id,
                                        customer=f"cus_{n}", sub_id=f"sub_{n}", event_id=f"evt_s{n}"),
                  se.checkout_completed(created=T0, member_id=member_id, customer=f"cus_{n}", sub_id=f"sub_{n}"))
    # One convergence per member is enough (the processor may queue one per event).
    work = list({w.member_id: w for w, _ in h.queue.work}.values())
    h.queue.work.clear()
    return work


def run_batch(h: Harness, bodies: list[str], seconds_left: float = 30.0) -> None:
    """What the dispatch function does with one SQS batch (functions/dispatch_access)."""
    held: list[AccessWork] = []
    for body in access_work_first(bodies, lambda b: b):
        handle_access_message(body, dispatcher=h.dispatcher, queue=h.queue, max_attempts=8, now=h.now, jitter=0.5,
                              held_messages=held)
    send_held_messages(held, dispatcher=h.dispatcher, queue=h.queue, max_attempts=8, now=h.now,
                       seconds_left=lambda: seconds_left)


def test_batch_every_role_before_any_welcome_dm():
    # Given three members who just paid, their access work in one batch
    h = Harness()
    work = three_paid_members(h)
    assert {w.member_id for w in work} == set(USERS)
    # When the batch runs
    run_batch(h, [encode_work(w) for w in work])
    # Then all three got the role before the first welcome DM went out, and each got one welcome
    kinds = [a[0] for a in h.connector.actions]
    assert kinds.count("add_member") == 3 and kinds.count("dm") == 3
    assert max(i for i, k in enumerate(kinds) if k == "add_member") < min(i for i, k in enumerate(kinds) if k == "dm")
    assert {user for user, _ in h.connector.dms} == set(USERS.values())
    assert all(ROLE in (h.connector.roles_of("111111111111111111", u) or set()) for u in USERS.values())


def test_batch_queued_message_runs_after_access_work_behind_it():
    # Given a batch whose first item is a reminder DM and whose second is a member's access work
    h = Harness()
    work = three_paid_members(h)[:1]
    reminder = AccessWork(WorkKind.NOTIFY, "mbr_2", "com_1", message_kind="grace_started", message_period="p1")
    # When the batch runs
    run_batch(h, [encode_work(reminder), encode_work(work[0])])
    # Then the role was given before any DM was sent
    kinds = [a[0] for a in h.connector.actions]
    assert kinds[0] == "add_member" and kinds[1:] == ["dm", "dm"]


def test_access_work_first_keeps_arrival_order_and_unreadable_bodies_first():
    # Given messages, access work and an unreadable body, interleaved
    notify = [encode_work(AccessWork(WorkKind.NOTIFY, f"mbr_{n}", "com_1", message_kind="welcome")) for n in (1, 2)]
    converge = [encode_work(AccessWork(WorkKind.CONVERGE, f"mbr_{n}", "com_1")) for n in (3, 4)]
    bodies = [notify[0], converge[0], "{not json", notify[1], json.dumps({"kind": "converge"}), converge[1]]
    # When ordered for the batch
    ordered = access_work_first(bodies, lambda b: b)
    # Then access work (and what cannot be read) comes first, each kind in arrival order
    assert ordered == [converge[0], "{not json", json.dumps({"kind": "converge"}), converge[1], notify[0], notify[1]]


def test_held_welcome_is_queued_when_the_invocation_is_nearly_over():
    # Given a batch of access work run with only a few seconds of the invocation left
    h = Harness()
    work = three_paid_members(h)
    # When the batch runs
    run_batch(h, [encode_work(w) for w in work], seconds_left=3.0)
    # Then the roles are given, no DM was sent, and the three welcomes wait in the queue (not lost)
    assert [a[0] for a in h.connector.actions] == ["add_member"] * 3
    queued = [w for w, _ in h.queue.work]
    assert [(w.kind, w.message_kind, w.member_id) for w in queued] == [
        (WorkKind.NOTIFY, "welcome", m) for m in USERS]
    # And they are sent once the queue runs
    h.run_access()
    assert sorted(u for u, _ in h.connector.dms) == sorted(USERS.values())


def test_held_welcome_transient_failure_is_retried_with_backoff():
    # Given the first welcome DM of a batch fails transiently
    h = Harness()
    work = three_paid_members(h)
    h.connector.fail_on["send_message"] = [RetryableError("Discord answered HTTP 500")]
    # When the batch runs
    run_batch(h, [encode_work(w) for w in work])
    # Then two welcomes went out, the third is queued with backoff and marked retrying
    assert len(h.connector.dms) == 2
    (queued, delay), = h.queue.work
    assert queued.message_kind == "welcome" and queued.attempt == 1 and delay >= 5
    assert h.stores.messages.status(MessageKey(queued.member_id, "welcome", "com_1")) is MessageStatus.RETRYING
    # And it is sent on the retry, once
    h.run_access()
    assert len(h.connector.dms) == 3 and len({u for u, _ in h.connector.dms}) == 3


def test_new_pending_entitlement_queues_no_convergence_until_it_gives_access():
    # Given a member whose subscription was just created, its checkout not completed yet
    h = Harness()
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"))
    # Then nothing is queued for the platform (no read of the member for an entitlement giving nothing)
    assert h.queue.work == []
    # When the checkout completes
    h.deliver(se.checkout_completed(created=T0, member_id="mbr_1"))
    # Then one convergence is queued, and it gives the role
    assert [(w.kind, w.member_id) for w, _ in h.queue.work] == [(WorkKind.CONVERGE, "mbr_1")]
    h.run_access()
    assert ROLE in (h.roles() or set())
