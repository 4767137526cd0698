"""CatalogSnapshot: the creator's plans and communities read once per container, not per lookup.

Plans and communities are only ever added, never changed (a new price means a new plan), so a
snapshot stays true while the container lives; a lookup that misses reloads once, so a plan
added a second ago is found. Two Queries on a cold start instead of a GetItem per price, plan
and community on every event.
"""

from __future__ import annotations

import threading

from ..domain.model import Community, Plan
from ..ports import CatalogRepository


class CatalogSnapshot:
    """A CatalogRepository for the billing processor: reads from memory, writes through."""

    def __init__(self, catalog: CatalogRepository):
        self._catalog = catalog
        self._lock = threading.Lock()
        self._plans: dict[str, Plan] | None = None
        self._by_price: dict[str, Plan] = {}
        self._communities: dict[str, Community] | None = None

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
        if communities is None or community_id not in communities:
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

    def _plans_loaded(self) -> dict[str, Plan]:
        plans = self._plans
        return plans if plans is not None else self._reload_plans()

    def _reload_plans(self) -> dict[str, Plan]:
        plans = {p.id: p for p in self._catalog.list_plans()}
        with self._lock:
            self._plans = plans
            self._by_price = {price: p for p in plans.values() for price in p.stripe_price_ids}
        return plans

    def _reload_communities(self) -> dict[str, Community]:
        communities = {c.id: c for c in self._catalog.list_communities()}
        with self._lock:
            self._communities = communities
        return communities
