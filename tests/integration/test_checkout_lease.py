"""Two tabs, two tiers, the same moment, under moto: the DynamoDB lease leaves one open Checkout Session."""

from __future__ import annotations

import threading
import time

import pytest

from membergate import bootstrap
from membergate.adapters.dynamodb.checkout_locks import DynamoCheckoutLocks
from membergate.domain.model import Identity, Member, Platform
from membergate.ports import CheckoutSession
from membergate.services.checkout import CheckoutRequest, start_checkout
from tests.integration.test_creator_controls import T0, call, stack_at
from tests.support.atomic_dynamo import atomic_writes
from tests.support.fakes import FakeBilling

pytestmark = pytest.mark.integration


class SlowBilling(FakeBilling):
    """Stripe taking a moment to make a session: wide enough for two requests to interleave."""

    def create_checkout_session(self, **params):
        time.sleep(0.05)
        return super().create_checkout_session(**params)


def _two_tiers() -> tuple[str, str]:
    _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
    ids = []
    for name, price in (("Basic", "price_basic"), ("VIP", "price_vip")):
        status, plan = call("POST", "/admin/plans", {"name": name, "stripe_price_ids": [price],
                                                      "grants": [{"community_id": community["id"]}]})
        assert status == 201, plan
        ids.append(plan["id"])
    return ids[0], ids[1]


def test_two_tabs_two_tiers_at_once_leave_one_open_session_and_no_lease_behind():
    with stack_at(), atomic_writes():
        # Given a member who connected Discord and an offer with two tiers
        basic, vip = _two_tiers()
        stores = bootstrap.admin().stores
        assert isinstance(stores.checkout_locks, DynamoCheckoutLocks)
        stores.members.create(Member("mbr_1", T0))
        stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, "900000000000000001"))
        billing = SlowBilling()
        gate = threading.Barrier(2)
        results: list[object] = []

        def tab(plan_id: str) -> None:
            gate.wait()
            request = CheckoutRequest("mbr_1", plan_id, None, "https://m.example/ok", "https://m.example/no", waiver=True)
            try:
                results.append(start_checkout(request, stores=stores, billing=billing, now=T0))
            except Exception as exc:  # noqa: BLE001 - asserted below, never swallowed
                results.append(exc)

        # When two tabs start Basic and VIP at the same moment
        threads = [threading.Thread(target=tab, args=(p,)) for p in (basic, vip)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Then each got a session, but the first was expired before the second was made: one can be paid
        assert all(isinstance(r, CheckoutSession) for r in results), results
        made = {s.id for s in billing.sessions.values()}
        assert len(made) == 2 and len(made - set(billing.expired)) == 1
        # And the leases were given back: a later checkout does not wait
        assert stores.checkout_locks.acquire("mbr_1", "x", "probe", T0, 30)
        for community_id in {g["community_id"] for g in call("GET", f"/admin/plans/{basic}")[1]["grants"]}:
            assert stores.checkout_locks.acquire("mbr_1", community_id, "probe", T0, 30)


def test_lease_of_a_request_that_died_is_taken_over_once_it_runs_out():
    with stack_at():
        locks = DynamoCheckoutLocks()
        # Given a lease held by a request that died
        assert locks.acquire("mbr_1", "com_1", "dead", T0, 30)
        # When another request asks before and after it runs out
        before = locks.acquire("mbr_1", "com_1", "alive", T0 + 29, 30)
        after = locks.acquire("mbr_1", "com_1", "alive", T0 + 30, 30)
        # Then it waits before, takes it after, and the dead request's late release does not free it
        assert (before, after) == (False, True)
        locks.release("mbr_1", "com_1", "dead")
        assert not locks.acquire("mbr_1", "com_1", "third", T0 + 31, 30)
