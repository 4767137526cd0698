"""Test doubles for reconciliation: its report store, a paged member lister, and Stripe's lists."""

from __future__ import annotations

import copy
from typing import Any

from membergate.domain.errors import RetryableError
from membergate.domain.billing import SubscriptionSnapshot
from membergate.domain.model import Community
from membergate.domain.reconcile import StripeEvent, StripeSubscription
from membergate.ports import GuildMember
from tests.support.fakes import FakeConnector


class FakeReconcileStore:
    def __init__(self) -> None:
        self.run: dict[str, Any] | None = None
        self.latest_report: dict[str, Any] | None = None
        self.saves = 0

    def load_run(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.run)

    def save_run(self, run: dict[str, Any]) -> None:
        self.saves += 1
        self.run = copy.deepcopy(run)

    def clear_run(self) -> None:
        self.run = None

    def save_latest(self, report: dict[str, Any]) -> None:
        self.latest_report = copy.deepcopy(report)

    def latest(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.latest_report)

    lease: tuple[str, int, int] | None = None  # (holder, started_at, expires_at)

    def acquire_lease(self, holder: str, now: int, seconds: int) -> int | None:
        if self.lease is not None and self.lease[2] > now and self.lease[0] != holder:
            return self.lease[1]
        self.lease = (holder, now, now + seconds)
        return None

    def release_lease(self, holder: str) -> None:
        if self.lease is not None and self.lease[0] == holder:
            self.lease = None


class FakeLister:
    """Pages a FakeConnector's guild in user-id order, as List Guild Members does; failures injectable."""

    def __init__(self, connector: FakeConnector) -> None:
        self.connector = connector
        self.pages: list[tuple[str, str, int]] = []  # (guild, after, limit)
        self.fail_on_page: dict[int, RetryableError] = {}  # page number (1-based) -> error

    def list_members(self, community: Community, after: str, limit: int) -> list[GuildMember]:
        self.pages.append((community.external_id, after, limit))
        failure = self.fail_on_page.pop(len(self.pages), None)
        if failure is not None:
            raise failure
        members = self.connector.guild(community.external_id).members
        users = sorted((u for u in members if int(u) > int(after)), key=int)[:limit]
        return [GuildMember(u, frozenset(members[u])) for u in users]


class FakeBillingReader:
    def __init__(self, subscriptions: list[StripeSubscription] | None = None,
                 events: list[StripeEvent] | None = None) -> None:
        self.subscriptions = subscriptions or []
        self.events = events or []
        self.snapshots: dict[str, SubscriptionSnapshot] = {}  # what fetch_subscription answers
        self.calls: list[tuple[str, int, str | None]] = []

    def list_subscriptions(self, created_gte: int, starting_after: str | None,
                           limit: int = 100) -> tuple[list[StripeSubscription], bool]:
        self.calls.append(("subscriptions", created_gte, starting_after))
        found = [s for s in self.subscriptions if s.created >= created_gte]
        return _page(found, starting_after, limit)

    def list_live_subscriptions(self, starting_after: str | None,
                                limit: int = 100) -> tuple[list[StripeSubscription], bool]:
        self.calls.append(("live", 0, starting_after))
        found = [s for s in self.subscriptions if s.status not in ("canceled", "incomplete_expired")]
        return _page(found, starting_after, limit)

    def fetch_subscription(self, subscription_id: str, read_at: int) -> SubscriptionSnapshot | None:
        self.calls.append(("fetch", read_at, subscription_id))
        return self.snapshots.get(subscription_id)

    def list_undelivered_events(self, created_gte: int, starting_after: str | None,
                                limit: int = 100) -> tuple[list[StripeEvent], bool]:
        self.calls.append(("events", created_gte, starting_after))
        return _page([e for e in self.events if e.created >= created_gte], starting_after, limit)


def _page(found: list[Any], after: str | None, limit: int) -> tuple[list[Any], bool]:
    ids = [f.id for f in found]
    rest = found[ids.index(after) + 1:] if after in ids else found
    return rest[:limit], len(rest) > limit
