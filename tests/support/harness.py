"""The services wired to in-memory fakes: feed Stripe events, run the queues, read outcomes."""

from __future__ import annotations

import itertools
import json
from typing import Any

from membergate.domain.model import (
    Community,
    Identity,
    EntitlementState,
    Member,
    OnGraceEnd,
    OnRevoke,
    Plan,
    PlanGrant,
    Platform,
)
from membergate.ports import encode_work
from membergate.services.access import AccessDispatcher, Links
from membergate.services.access_worker import handle_access_message
from membergate.services.billing_events import BillingEventProcessor
from membergate.services.identity import seal_tokens
from membergate.services.lifecycle import run_lifecycle
from membergate.domain.model import OAuthTokens
from tests.support.fakes import FakeBilling, FakeCipher, FakeConnector, FakeIdentity, FakeQueue, fake_stores

T0 = 1_800_000_000
DAY = 86_400
GUILD = "111111111111111111"
ROLE = "222222222222222222"
VIP_ROLE = "333333333333333333"


class Harness:
    def __init__(self, *, on_revoke: OnRevoke = OnRevoke.REMOVE_ROLE, on_grace_end: OnGraceEnd = OnGraceEnd.CANCEL,
                 grace_days: int = 3, locale: str = "en"):
        self.stores = fake_stores()
        self.queue = FakeQueue()
        self.billing = FakeBilling()
        self.connector = FakeConnector()
        self.identity = FakeIdentity()
        self.cipher = FakeCipher()
        ids = itertools.count(1)
        self.processor = BillingEventProcessor(self.stores, self.queue, lambda: f"mbr_auto{next(ids)}")
        self.dispatcher = AccessDispatcher(self.stores, {Platform.DISCORD: self.connector}, self.identity, self.cipher, Links("https://m.example"))
        self.community = Community("com_1", Platform.DISCORD, "The Club", GUILD, ROLE, on_revoke, locale, T0)
        self.stores.catalog.add_community(self.community)
        self.plan = Plan("pln_monthly", "Monthly", ("price_monthly",), (PlanGrant("com_1"),), grace_days, on_grace_end, T0)
        self.stores.catalog.add_plan(self.plan)
        self.vip = Plan("pln_vip", "VIP", ("price_vip",), (PlanGrant("com_1", VIP_ROLE),), grace_days, on_grace_end, T0)
        self.stores.catalog.add_plan(self.vip)
        self.now = T0

    def member(self, member_id: str = "mbr_1", discord_user_id: str | None = "555555555555555555") -> Member:
        self.stores.members.create(Member(member_id, T0))
        if discord_user_id:
            tokens = OAuthTokens(f"access-{discord_user_id}", f"refresh-{discord_user_id}", T0 + 7 * DAY)
            self.stores.members.bind_identity(member_id, Identity(Platform.DISCORD, discord_user_id), seal_tokens(self.cipher, tokens))
        return self.stores.members.get(member_id)

    def deliver(self, *events: dict[str, Any]) -> list[str]:
        return [self.processor.apply(json.dumps(e), self.now).status for e in events]

    def run_access(self, max_steps: int = 100) -> int:
        """Run queued access work (delays ignored: they are only waits) until none is left."""
        steps = 0
        while self.queue.work and steps < max_steps:
            work, _delay = self.queue.work.pop(0)
            handle_access_message(encode_work(work), dispatcher=self.dispatcher, queue=self.queue,
                                  max_attempts=3, now=self.now, jitter=0.5)
            steps += 1
        return steps

    def sweep(self):
        report = run_lifecycle(stores=self.stores, billing=self.billing, access_queue=self.queue, now=self.now)
        self.run_access()
        return report

    def at(self, when: int) -> Harness:
        self.now = when
        return self

    def states(self, member_id: str = "mbr_1") -> dict[str, EntitlementState]:
        from membergate.services.membership import current_view

        return {e.plan_id: e.state for e in current_view(self.stores, member_id, self.now).entitlements}

    def roles(self, user: str = "555555555555555555") -> set[str] | None:
        return self.connector.roles_of(GUILD, user)

    def access(self, member_id: str = "mbr_1"):
        return self.stores.access.get(member_id, "com_1")

    def dm_texts(self) -> list[str]:
        return [text for _, text in self.connector.dms]
