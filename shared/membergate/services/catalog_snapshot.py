"""CatalogSnapshot: the creator's plans and communities read once a minute per container, not per lookup.

Plans are added far more often than edited, but they are edited: the admin function changes grace
days, what grace's end does, seats, trial days, and archives plans, from another container. A snapshot
is therefore trusted for ``MAX_AGE_SECONDS`` (an edit reaches the billing processor within a minute,
a delay the README states), and a lookup that misses reloads at once, so a plan added a second ago is
found. Two Queries a minute at most on a warm container instead of a GetItem per price, plan and
community on every event.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ..domain.model import Community, Plan
from ..ports import CatalogRepository


MAX_AGE_SECONDS = 60.0


class CatalogSnapshot:
    """A CatalogRepository for the billing processor: reads from memory, writes through."""

    def __init__(self, catalog: CatalogRepository, clock: Callable[[], float] = time.monotonic):
        self._catalog = catalog
        self._clock = clock  # the cache's age only (monotonic), never a business time
        self._lock = threading.Lock()
        self._plans: dict[str, Plan] | None = None
        self._plans_at = 0.0
        self._by_price: dict[str, Plan] = {}
        self._communities: dict[str, Community] | None = None
        self._communities_at = 0.0

    # -- reads -----------------------------------------------------------------------------

    def plan_for_price(self, price_id: str) -> Plan | None:
        self._plans_loaded()
        if price_id not in self._by_price:
            self._reload_plans()
        return self._by_price.get(price_id)

    def get_plan(self, plan_id: str) -> Plan | None:
        plans = self._plans_loaded()
        if plan_id not in plans:
            plans = self._reload_plans()
        return plans.get(plan_id)

    def list_plans(self) -> list[Plan]:
        return list(self._reload_plans().values())

    def get_community(self, community_id: str) -> Community | None:
        communities = self._communities
        if communities is None or community_id not in communities or self._stale(self._communities_at):
            communities = self._reload_communities()
        return communities.get(community_id)

    def list_communities(self) -> list[Community]:
        return list(self._reload_communities().values())

    # -- writes (not the processor's job, passed through for completeness) -----------------

    def add_community(self, community: Community) -> None:
        self._catalog.add_community(community)
        self._communities = None

    def add_plan(self, plan: Plan) -> None:
        self._catalog.add_plan(plan)
        self._plans = None

    def update_plan(self, plan: Plan) -> None:
        self._catalog.update_plan(plan)
        self._plans = None

    def set_plan_prices(self, plan_id: str, price_ids: tuple[str, ...]) -> None:
        self._catalog.set_plan_prices(plan_id, price_ids)
        self._plans = None

    def update_community(self, community: Community) -> None:
        self._catalog.update_community(community)
        self._communities = None

    # -- loading ---------------------------------------------------------------------------

    def _stale(self, loaded_at: float) -> bool:
        return self._clock() - loaded_at >= MAX_AGE_SECONDS

    def _plans_loaded(self) -> dict[str, Plan]:
        plans = self._plans
        return plans if plans is not None and not self._stale(self._plans_at) else self._reload_plans()

    def _reload_plans(self) -> dict[str, Plan]:
        loaded_at = self._clock()
        plans = {p.id: p for p in self._catalog.list_plans()}
        with self._lock:
            self._plans, self._plans_at = plans, loaded_at
            self._by_price = {price: p for p in plans.values() for price in p.stripe_price_ids}
        return plans

    def _reload_communities(self) -> dict[str, Community]:
        loaded_at = self._clock()
        communities = {c.id: c for c in self._catalog.list_communities()}
        with self._lock:
            self._communities, self._communities_at = communities, loaded_at
        return communities
