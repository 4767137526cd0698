"""The dispatcher and its worker: messages never lost nor doubled, waits are not failures, refusals remembered."""

from __future__ import annotations

import pytest

from membergate.domain.errors import ConflictError, PermanentError, RateLimitedError, RetryableError
from membergate.domain.model import (
    AccessState,
    Identity,
    Member,
    MessageKey,
    MessageStatus,
    OAuthTokens,
    Platform,
    WorkKind,
)
from membergate.ports import AccessWork, encode_work
from membergate.services import admin
from membergate.services.access_worker import handle_access_message
from membergate.services.identity import bind_member_identity, open_tokens, seal_tokens
from tests.support import stripe_events as se
from tests.support.harness import DAY, ROLE, T0, Harness

pytestmark = pytest.mark.unit

USER = "555555555555555555"


def paid_signup(h: Harness) -> None:
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    h.run_access()


def cancel(h: Harness, at: int = T0 + DAY) -> None:
    h.at(at).deliver(se.subscription_event(created=at, member_id="mbr_1", status="canceled"))


def step(h: Harness, max_attempts: int = 8):
    work, _ = h.queue.work.pop(0)
    return handle_access_message(encode_work(work), dispatcher=h.dispatcher, queue=h.queue,
                                 max_attempts=max_attempts, now=h.now, jitter=0.5)


def receipt_key() -> MessageKey:
    return MessageKey("mbr_1", "access_ended", f"com_1:{T0}")


def test_receipt_transient_failure_is_retried_until_sent():
    # Given a granted member whose removal receipt fails transiently (a 500 on the DM)
    h = Harness()
    paid_signup(h)
    welcomed = len(h.connector.dms)  # the welcome on first access
    cancel(h)
    h.connector.fail_on["send_message"] = [RetryableError("Discord answered HTTP 500")]
    # When the access work runs, then the queued follow-ups
    h.run_access()
    # Then the role is gone and the receipt was delivered exactly once, on a retry
    assert h.roles() == set()
    assert h.stores.messages.status(receipt_key()) is MessageStatus.SENT
    assert len([t for t in h.dm_texts() if "ended" in t or "Club" in t]) >= 1
    assert len(h.connector.dms) == welcomed + 1


def test_receipt_transient_failure_is_queued_with_access_backoff_and_visible():
    # Given the receipt's send fails transiently
    h = Harness()
    paid_signup(h)
    cancel(h)
    h.connector.fail_on["send_message"] = [RetryableError("Discord answered HTTP 500")]
    # When the converge runs once
    step(h)
    # Then the removal went on, and the message waits in the queue (seconds, not hours), marked retrying
    assert h.roles() == set() and h.access().state is AccessState.REVOKED
    queued, delay = h.queue.work[0]
    assert queued.kind is WorkKind.NOTIFY and queued.message_kind == "access_ended"
    assert 5 <= delay <= 60
    assert h.stores.messages.status(receipt_key()) is MessageStatus.RETRYING


def test_notify_lost_answer_is_not_sent_twice():
    # Given the platform accepts the message but the answer is lost (a timeout after delivery)
    h = Harness()
    paid_signup(h)
    welcomed = list(h.connector.message_keys)  # the welcome on first access
    cancel(h)
    key = f"mbr_1:{receipt_key()}"
    h.connector.lose_answer_for[key] = RetryableError("read timeout")
    # When the work and its retries run
    h.run_access()
    # Then the member got one message (the retry carried the same idempotency key)
    assert len(h.connector.dms) == len(welcomed) + 1
    assert h.connector.message_keys == welcomed + [key]
    assert h.stores.messages.status(receipt_key()) is MessageStatus.SENT


def test_notify_work_failure_does_not_touch_access_state():
    # Given a granted member and a reminder whose send fails transiently
    h = Harness()
    paid_signup(h)
    h.queue.send([AccessWork(WorkKind.NOTIFY, "mbr_1", "com_1", "grace_started", "sub_1:1")])
    h.stores.messages.claim(MessageKey("mbr_1", "grace_started", "sub_1:1"), h.now)
    h.connector.fail_on["send_message"] = [RetryableError("Discord answered HTTP 502")]
    # When it runs once
    step(h)
    # Then access stays granted, and the message is retrying with the attempt counted
    assert h.access().state is AccessState.GRANTED
    retried, delay = h.queue.work[0]
    assert retried.attempt == 1 and delay >= 7
    assert h.stores.messages.status(MessageKey("mbr_1", "grace_started", "sub_1:1")) is MessageStatus.RETRYING


def test_notify_gives_up_after_max_attempts_as_failed_with_reason():
    h = Harness()
    paid_signup(h)
    key = MessageKey("mbr_1", "grace_started", "sub_1:1")
    h.stores.messages.claim(key, h.now)
    h.queue.send([AccessWork(WorkKind.NOTIFY, "mbr_1", "com_1", "grace_started", "sub_1:1")])
    h.connector.fail_next = [RetryableError("Discord answered HTTP 502")] * 3
    h.run_access()
    assert h.stores.messages.status(key) is MessageStatus.FAILED
    assert "gave up after 3 attempts" in h.stores.messages.items[key][1]


def test_rate_limit_wait_is_not_an_attempt_and_keeps_access_state():
    # Given a granted member whose renewal changes roles, and a rate-limited grant
    h = Harness()
    paid_signup(h)
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", price_id="price_vip"))
    work, _ = h.queue.work.pop(0)
    checks_before = h.connector.calls.count("check_member")
    # (the check passes; the grant is rate limited)
    h.connector.fail_on["grant_role"] = [RateLimitedError("Discord rate limit on PUT role", retry_after=30.0)]
    handle_access_message(encode_work(work), dispatcher=h.dispatcher, queue=h.queue, max_attempts=8, now=h.now,
                          jitter=0.5)
    # Then the work waits the platform's window, with the same attempt and what was seen carried
    requeued, delay = h.queue.work[0]
    assert requeued.attempt == 0 and 30 <= delay <= 32
    assert requeued.observed is not None and ROLE in requeued.observed.roles
    assert h.access().state is AccessState.GRANTED and h.access().attempts == 0
    # And the retry does not read the member again
    h.run_access()
    assert h.connector.calls.count("check_member") == checks_before + 1
    assert h.access().state is AccessState.GRANTED


def test_renewal_with_nothing_changed_reads_nothing():
    # Given a granted member
    h = Harness()
    paid_signup(h)
    calls = len(h.connector.calls)
    # When a renewal moves the period end (converge queued)
    h.at(T0 + 30 * DAY).deliver(se.subscription_event(created=T0 + 30 * DAY, member_id="mbr_1",
                                                      period_end=T0 + 60 * DAY))
    h.run_access()
    # Then no request reaches the platform
    assert h.connector.calls[calls:] == []
    assert h.access().state is AccessState.GRANTED


def test_permanent_refusal_is_remembered_until_resync():
    # Given the bot lacks Manage Roles: the first grant is refused
    h = Harness()
    h.member()
    h.connector.fail_next = [PermanentError("give the bot Manage Roles", "missing_permissions")]
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.run_access()
    assert h.access().state is AccessState.FAILED and h.access().refusal == "missing_permissions"
    calls = len(h.connector.calls)
    # When many more billing events arrive for that member
    for day in range(1, 20):
        h.at(T0 + day * DAY).deliver(se.subscription_event(created=T0 + day * DAY, member_id="mbr_1",
                                                           period_end=T0 + (40 + day) * DAY))
        h.run_access()
    # Then no request is sent again and the failure stays visible
    assert h.connector.calls[calls:] == []
    assert h.access().state is AccessState.FAILED and h.access().reason.startswith("missing_permissions")
    # When the creator fixed the permission and resyncs
    admin.resync_member(h.stores, h.queue, "mbr_1", h.now)
    h.run_access()
    # Then access is delivered and the refusal forgotten
    assert h.roles() == {ROLE}
    assert h.access().state is AccessState.GRANTED and h.access().refusal == ""


def test_admin_member_lists_message_outcomes_with_the_platform_reason():
    # Given a member with closed DMs whose access ended
    h = Harness()
    paid_signup(h)
    h.connector.closed_dms.add(USER)
    cancel(h)
    h.run_access()
    # When the creator looks the member up
    details = admin.find_members(h.stores, now=h.now, discord_user_id=USER)[0]
    # Then the receipt is listed as failed because DMs are closed, and access is revoked
    assert [(m.kind, m.status, m.reason) for m in details.messages] == [
        ("welcome", MessageStatus.SENT, ""),
        ("access_ended", MessageStatus.FAILED, "dms_closed"),
    ]
    # And the access record says so too, not a bare "revoked"
    assert h.access().state is AccessState.REVOKED and "dms_closed" in h.access().reason


def test_retry_after_a_failure_reads_the_platform_again():
    # Given a grant interrupted by a 502 after the member was read
    h = Harness()
    paid_signup(h)
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", price_id="price_vip"))
    h.connector.fail_on["grant_role"] = [RetryableError("Discord answered HTTP 502")]
    # When it runs once
    step(h)
    # Then the retry carries nothing stale (the member may have left meanwhile) and counts the attempt
    retried, _ = h.queue.work[0]
    assert retried.observed is None and retried.attempt == 1


def test_many_members_refused_cost_one_invalid_request_each():
    # Given 50 paying members each refused for a reason of their own (at Discord's server limit);
    # a refusal about the whole community is held once instead (tests/unit/test_community_holds.py)
    h = Harness()
    h.connector.fail_on["add_member"] = [PermanentError("leave a server first", "member_guild_limit")] * 50
    for n in range(50):
        member_id, user = f"mbr_{n}", f"5{n:017d}"
        h.member(member_id, user)
        h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id=member_id,
                                        customer=f"cus_{n}", sub_id=f"sub_{n}"),
                  se.checkout_completed(created=T0, member_id=member_id, customer=f"cus_{n}", sub_id=f"sub_{n}"))
    h.run_access(max_steps=1000)
    # When every member's subscription changes five more times
    for day in range(1, 6):
        for n in range(50):
            h.at(T0 + day * DAY).deliver(se.subscription_event(created=T0 + day * DAY, member_id=f"mbr_{n}",
                                                               customer=f"cus_{n}", sub_id=f"sub_{n}",
                                                               period_end=T0 + (40 + day) * DAY))
        h.run_access(max_steps=1000)
    # Then each member cost one refused request, not one per event
    assert h.connector.calls.count("add_member") == 50


def test_access_token_expired_is_refreshed_and_stored():
    # Given a member whose Discord token expires before the grant runs
    h = Harness()
    h.stores.members.create(Member("mbr_1", T0))
    tokens = OAuthTokens(f"access-{USER}", f"refresh-{USER}", T0 + 60)
    h.stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, USER), seal_tokens(h.cipher, tokens))
    # When the member pays (the grant needs the member's token)
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.run_access()
    # Then the token was refreshed once, stored sealed, and the member added
    assert h.identity.refreshed == 1
    stored = open_tokens(h.cipher, h.stores.members.load_credentials("mbr_1", Platform.DISCORD))
    assert stored.access_token == f"access2-{USER}"
    assert h.roles() == {ROLE}


def test_access_token_expired_without_refresh_token_fails_with_the_fix():
    h = Harness()
    h.stores.members.create(Member("mbr_1", T0))
    tokens = OAuthTokens(f"access-{USER}", None, T0 - 1)
    h.stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, USER), seal_tokens(h.cipher, tokens))
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.run_access()
    assert h.access().state is AccessState.FAILED
    assert h.access().refusal == "discord_authorization_expired" and "reconnect Discord" in h.access().reason


def test_binding_concurrent_conflict_returns_the_member_that_won():
    # Given another callback bound the same Discord account a moment earlier
    h = Harness()
    h.stores.members.create(Member("mbr_winner", T0))
    h.stores.members.bind_identity("mbr_winner", Identity(Platform.DISCORD, USER), b"sealed:old")
    members = h.stores.members
    real_find = members.find_by_identity
    seen = []

    def racing_find(platform, external_id):
        # The first lookup happens before the winner's LINK was visible.
        seen.append(external_id)
        return None if len(seen) == 1 else real_find(platform, external_id)

    members.find_by_identity = racing_find
    # When this callback binds it too
    member = bind_member_identity(h.stores, Identity(Platform.DISCORD, USER), b"sealed:new", session_member_id=None,
                                  new_member_id=lambda: "mbr_loser", now=T0)
    # Then the account stays with the winner, whose credentials are the fresh ones
    assert member.id == "mbr_winner"
    assert h.stores.members.load_credentials("mbr_winner", Platform.DISCORD) == b"sealed:new"
    assert h.stores.members.get("mbr_loser").identities == ()


def test_binding_account_of_another_member_to_a_claimed_membership_is_refused():
    # Given a claimed (Stripe-made) membership in this browser, and a Discord account with its own membership
    h = Harness()
    h.stores.members.create_for_customer("cus_dash", "mbr_claimed", T0)
    h.stores.members.create(Member("mbr_other", T0))
    h.stores.members.bind_identity("mbr_other", Identity(Platform.DISCORD, USER))
    # When that account is connected
    # Then it is refused with what to do
    with pytest.raises(ConflictError, match="connect the account"):
        bind_member_identity(h.stores, Identity(Platform.DISCORD, USER), None, session_member_id="mbr_claimed",
                             new_member_id=lambda: "x", now=T0)


def test_additions_rate_limited_once_each_read_each_member_once():
    # Given 200 members paying at once, and every first add answered with a rate-limit wait
    h = Harness()
    h.connector.fail_on["add_member"] = [RateLimitedError("Discord rate limit", retry_after=1.0)] * 200
    for n in range(200):
        member_id = f"mbr_{n}"
        h.member(member_id, f"5{n:017d}")
        h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id=member_id,
                                        customer=f"cus_{n}", sub_id=f"sub_{n}"),
                  se.checkout_completed(created=T0, member_id=member_id, customer=f"cus_{n}", sub_id=f"sub_{n}"))
    h.queue.work.clear()  # one work item per member, as after a batch of payments
    h.queue.send([AccessWork(WorkKind.CONVERGE, f"mbr_{n}", "com_1") for n in range(200)])
    # When the queue drains
    h.run_access(max_steps=5000)
    # Then all 200 are in, with one GET each (the wait carried what was read) and no attempt spent
    assert h.connector.calls.count("check_member") == 200
    assert h.connector.calls.count("add_member") == 400
    assert all(h.stores.access.get(f"mbr_{n}", "com_1").state is AccessState.GRANTED for n in range(200))
    assert all(h.stores.access.get(f"mbr_{n}", "com_1").attempts == 0 for n in range(200))


def test_dispatch_batch_reads_the_catalog_once():
    # Given 20 members to converge and a catalog that counts its reads
    h = Harness()
    for n in range(20):
        member_id = f"mbr_{n}"
        h.member(member_id, f"5{n:017d}")
        h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id=member_id,
                                        customer=f"cus_{n}", sub_id=f"sub_{n}"),
                  se.checkout_completed(created=T0, member_id=member_id, customer=f"cus_{n}", sub_id=f"sub_{n}"))
    catalog = h.stores.catalog
    reads: list[str] = []
    for name in ("get_plan", "list_plans", "get_community", "list_communities"):
        real = getattr(catalog, name)
        setattr(catalog, name, lambda *a, _real=real, _name=name: reads.append(_name) or _real(*a))
    # When one batch is dispatched with the catalog read once for it
    snapshot = h.dispatcher.load_catalog()
    for work, _ in list(h.queue.work):
        handle_access_message(encode_work(work), dispatcher=h.dispatcher, queue=h.queue, max_attempts=8, now=h.now,
                              jitter=0.5, catalog=snapshot)
    # Then plans and communities were read once, not once per member
    assert sorted(reads) == ["list_communities", "list_plans"]
    assert all(h.stores.access.get(f"mbr_{n}", "com_1").state is AccessState.GRANTED for n in range(20))
