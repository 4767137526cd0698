"""reconcile: compare Stripe, Membergate and each community's real members; report drift, fix what is allowed.

One run goes through four phases, each page by page: Stripe's subscriptions created since the
last finished run (``created[gte]``), Stripe's live subscriptions against the plan Membergate
holds for each (``live``), its undelivered events of the last 30 days, then each community's
members.

What the ``live`` phase costs: one Stripe list request per 100 live subscriptions (every run:
Stripe has no "changed since" filter), one DynamoDB read per listed customer (their member) and
one query per member found (their subscription records); a ``plan_mismatch`` being fixed adds one
Stripe read (the subscription read back) and the member's refresh (as a webhook would); prices are
mapped to plans by the processor's rule, one catalog read per distinct price of a page. Labelling
a member entitled by free grants only (``granted_without_access``) costs two queries (records,
grants) per member found without their access, nothing for the others.

After every page the cursor and the report so far are stored, so an invocation that runs out
of time or meets a rate limit stops there and the next one (scheduled or ``POST
/admin/reconcile``) continues. Fixes go through the existing access dispatcher: a
missing access is re-queued as convergence work carrying what the platform showed (so the
dispatcher reads nothing again, and changes only the roles that differ).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from ..domain.access import Capability, Presence, PresenceState, desired_roles
from ..domain.errors import PermanentError, ReconcileRunningError, RetryableError
from ..domain.model import AccessRecord, AccessState, Community, Entitlement, Platform, WorkKind
from ..domain.billing import merge_snapshot
from ..domain.reconcile import (
    EVENTS_LOOKBACK_SECONDS,
    LIVE_STATUSES,
    DriftKind,
    HeldSubscription,
    Fix,
    FixKind,
    KnownAccount,
    PlaceMember,
    Policy,
    Report,
    Window,
    compare_billing,
    compare_live_subscriptions,
    compare_place,
    granted_only,
)
from ..domain.grants import statuses
from ..domain.tiers import offer_of
from ..ports import (
    AccessWork,
    AccessWorkQueue,
    BillingReader,
    CommunityConnector,
    MemberLister,
    ReconcileStore,
    Stores,
)
from ..domain.alerts import AlertKind
from .access import CatalogSnapshot
from .alerts import AlertRecorder, record_alert
from .membership import refresh_member

MEMBERS_PAGE = 1000  # Discord's List Guild Members maximum
# The one-run lease outlives the function's 900 s timeout: a crashed run blocks the next for at most this.
LEASE_SECONDS = 960
STRIPE_PAGE = 100  # Stripe's list maximum
MEMBER_READ_PAGE = 200
# Access states that say Membergate let the member in (or tried): checked on platforms that
# cannot list members (Telegram), where each check is one request.
_TOUCHED = frozenset({AccessState.GRANTED, AccessState.INVITED, AccessState.RETRYING, AccessState.FAILED,
                      AccessState.PENDING})

TELEGRAM_NOTE = ("telegram: bots cannot list a chat's members, so only members Membergate knows were checked "
                 "(getChatMember); strangers in the chat cannot be seen")
WHATSAPP_NOTE = ("whatsapp: Membergate cannot read a WhatsApp group (manual mode): report only; see each member's "
                 "access in GET /admin/members and the community's removal tasks")
DISCORD_READS_NOTE = ("discord: Discord has no 'changed since' listing, so every run reads the whole member list "
                      "(one request per 1,000 members)")


@dataclass
class Cursor:
    phase: str = "subscriptions"  # subscriptions -> live -> events -> places -> done
    stripe_after: str | None = None
    community_index: int = 0
    after: str = "0"


class Reconciler:
    def __init__(
        self,
        stores: Stores,
        store: ReconcileStore,
        queue: AccessWorkQueue,
        connectors: Mapping[Platform, CommunityConnector],
        listers: Mapping[Platform, MemberLister],
        billing: BillingReader | None,
        policy: Policy,
        alerts: AlertRecorder | None = None,
    ):
        self.alerts = alerts  # a finished run that found drift is a creator alert
        self.stores = stores
        self.store = store
        self.queue = queue
        self.connectors = dict(connectors)
        self.listers = dict(listers)
        self.billing = billing
        self.policy = policy

    def run(self, now: int, *, max_pages: int | None = None, time_left: Callable[[], float] | None = None,
            holder: str | None = None) -> Report:
        """Continue the stored run (or start one) until it finishes, ``max_pages`` pages were read,
        ``time_left()`` falls under a safety margin, or a rate limit asks to wait.

        One run at a time: it holds a lease (``holder``: the one ``POST /admin/reconcile`` took for
        it) and raises ReconcileRunningError when another run holds it."""
        holder = holder or f"run_{uuid.uuid4().hex}"
        started = self.store.acquire_lease(holder, now, LEASE_SECONDS)
        if started is not None:
            raise ReconcileRunningError(started)
        try:
            return self._run(now, max_pages, time_left)
        finally:
            self.store.release_lease(holder)

    def _run(self, now: int, max_pages: int | None, time_left: Callable[[], float] | None) -> Report:
        stored = self.store.load_run()
        if stored is None:
            latest = self.store.latest()
            since = int(latest["started_at"]) if latest and latest.get("started_at") is not None else 0
            report, cursor = Report(now), Cursor()
        else:
            since = int(stored.get("since") or 0)
            report, cursor = Report.from_dict(stored["report"]), Cursor(**stored["cursor"])
        report.invocations += 1
        pages = 0
        self._known: dict[str, list[KnownAccount]] | None = None
        catalog = CatalogSnapshot.load(self.stores.catalog)
        communities = sorted(catalog.communities.values(), key=lambda c: c.id)
        try:
            while True:
                if cursor.phase == "places" and cursor.community_index >= len(communities):
                    cursor.phase = "done"
                if cursor.phase == "done":
                    break
                if (max_pages is not None and pages >= max_pages) or (time_left is not None and time_left() < 5):
                    break
                self._step(cursor, report, since, now, catalog, communities)
                pages += 1
                report.pages_read += 1
                self.store.save_run({"since": since, "cursor": asdict(cursor), "report": report.to_dict()})
        except RetryableError as error:
            # A rate limit or an outage: what was read is kept; the next run continues from here.
            report.note(f"paused: {error.message}; the next run continues where this one stopped")
            self.store.save_run({"since": since, "cursor": asdict(cursor), "report": report.to_dict()})
            return report
        if cursor.phase == "done":
            report.finished_at = now
            self.store.save_latest(report.to_dict())
            self.store.clear_run()
            found = {k: v for k, v in sorted(report.counts.items()) if v}
            if found:
                record_alert(self.alerts, AlertKind.DRIFT, f"drift:{report.started_at}", now,
                             subject=", ".join(f"{k} {v}" for k, v in found.items()), detail="GET /admin/reconcile")
        return report

    # -- phases ----------------------------------------------------------------------------------

    def _step(self, cursor: Cursor, report: Report, since: int, now: int, catalog: CatalogSnapshot,
              communities: list[Community]) -> None:
        if cursor.phase == "subscriptions":
            self._subscriptions(cursor, report, since, now)
        elif cursor.phase == "live":
            self._live(cursor, report, now, catalog)
        elif cursor.phase == "events":
            self._events(cursor, report, now)
        else:
            self._place(cursor, report, communities[cursor.community_index], catalog, now)

    def _subscriptions(self, cursor: Cursor, report: Report, since: int, now: int) -> None:
        if self.billing is None:
            report.note("stripe: not read (no Stripe key configured for this function)")
            cursor.phase, cursor.stripe_after = "events", None
            return
        subs, more = self.billing.list_subscriptions(since, cursor.stripe_after, STRIPE_PAGE)
        members = {s.customer: self.stores.members.member_id_for_customer(s.customer) for s in subs}
        known = {s.id for s in subs if members.get(s.customer)
                 and self.stores.subscriptions.get(members[s.customer] or "", s.id) is not None}
        report.add(compare_billing(subs, known, members, (), (), now))
        if more and subs:
            cursor.stripe_after = subs[-1].id
        else:
            cursor.phase, cursor.stripe_after = "live", None

    def _live(self, cursor: Cursor, report: Report, now: int, catalog: CatalogSnapshot) -> None:
        """One page of Stripe's live subscriptions: the plan each bills against the one Membergate holds,
        and a member's second live subscription of one offer (costs: module docstring)."""
        assert self.billing is not None  # the subscriptions phase skips to events without Stripe
        subs, more = self.billing.list_live_subscriptions(cursor.stripe_after, STRIPE_PAGE)
        members = {s.customer: self.stores.members.member_id_for_customer(s.customer) for s in subs}
        held = {
            member: [HeldSubscription(r.subscription_id, r.plan_id,
                                      r.latest is not None and r.latest.status in LIVE_STATUSES)
                     for r in self.stores.subscriptions.for_member(member)]
            for member in sorted({m for m in members.values() if m})
        }
        # The processor's own price -> plan rule (catalog.plan_for_price), once per distinct price of the page.
        plan_of_price = {price: plan.id for price in sorted({p for s in subs for p in s.price_ids})
                         if (plan := self.stores.catalog.plan_for_price(price)) is not None}
        offers = {p.id: offer_of(p) for p in catalog.plans.values()}
        result = compare_live_subscriptions(subs, members, held, plan_of_price, offers, self.policy)
        reported = {(d.kind, d.detail) for d in report.drifts}
        report.add(d for d in result.drifts if (d.kind, d.detail) not in reported)
        for subscription_id in result.read_back:
            member = members.get(next(s.customer for s in subs if s.id == subscription_id))
            if member:
                self._read_back(member, subscription_id, now, plan_of_price)
        if more and subs:
            cursor.stripe_after = subs[-1].id
        else:
            cursor.phase, cursor.stripe_after = "events", None

    def _read_back(self, member_id: str, subscription_id: str, now: int, plan_of_price: Mapping[str, str]) -> None:
        """The billing processor's store update for a snapshot read back from Stripe (lifecycle's recheck does
        the same): merged into the record, the plan following the price, then the member refreshed."""
        assert self.billing is not None
        record = self.stores.subscriptions.get(member_id, subscription_id)
        snapshot = self.billing.fetch_subscription(subscription_id, now)
        if record is None or snapshot is None:
            return
        merged = merge_snapshot(record, snapshot)
        plan_id = next((plan_of_price[p] for p in snapshot.price_ids if p in plan_of_price), None)
        if plan_id is not None and merged.latest is snapshot:
            merged = replace(merged, plan_id=plan_id)
        self.stores.subscriptions.save(merged)
        refresh_member(self.stores, self.queue, member_id, now, sweep_now=True)

    def _events(self, cursor: Cursor, report: Report, now: int) -> None:
        if self.billing is None:
            cursor.phase = "places"
            return
        events, more = self.billing.list_undelivered_events(now - EVENTS_LOOKBACK_SECONDS, cursor.stripe_after,
                                                            STRIPE_PAGE)
        seen = {e.id for e in events if self.stores.ledger.get(e.id) is not None}
        report.add(compare_billing((), (), {}, events, seen, now))
        if more and events:
            cursor.stripe_after = events[-1].id
        else:
            cursor.phase, cursor.stripe_after = "places", None

    def _place(self, cursor: Cursor, report: Report, community: Community, catalog: CatalogSnapshot, now: int) -> None:
        connector = self.connectors.get(community.platform)
        lister = self.listers.get(community.platform)
        managed = catalog.managed_roles(community)
        if connector is None:
            report.note(WHATSAPP_NOTE if community.platform is Platform.WHATSAPP else
                        f"{community.platform.value}: no connector configured here, {community.name} not checked")
            self._next_community(cursor)
            return
        known = self._known_accounts(now, catalog).get(community.id, [])
        roles_based = Capability.ROLES in connector.capabilities
        try:
            if lister is not None:
                report.note(DISCORD_READS_NOTE)
                page = lister.list_members(community, cursor.after, MEMBERS_PAGE)
                listed = [PlaceMember(m.user_id, m.roles) for m in page]
                window = Window.page(cursor.after, listed, MEMBERS_PAGE)
                result = compare_place(community.id, known, listed, window, managed, self.policy, now,
                                       roles_based=roles_based)
                if window.through is None:
                    self._next_community(cursor)
                else:
                    cursor.after = str(window.through)
            elif Capability.CHECK_MEMBER in connector.capabilities:
                report.note(TELEGRAM_NOTE if community.platform is Platform.TELEGRAM else
                            f"{community.platform.value}: only known members checked one by one")
                checked, listed = self._check_known(connector, community, known)
                result = compare_place(community.id, [a for a in known if a.user in checked], listed,
                                       Window(only=frozenset(checked)), managed, self.policy, now,
                                       roles_based=roles_based, can_list=False)
                self._next_community(cursor)
            else:
                report.note(WHATSAPP_NOTE)
                self._next_community(cursor)
                return
        except PermanentError as error:
            report.note(f"{community.platform.value} community {community.name} ({community.id}) not checked: "
                        f"{error.message}")
            self._next_community(cursor)
            return
        report.add(granted_only(d, self._free_sources(d.member_id, community.id, catalog, now))
                   if d.kind is DriftKind.PAID_WITHOUT_ACCESS and d.member_id else d for d in result.drifts)
        self._apply(result.fixes, connector, community)

    def _free_sources(self, member_id: str, community_id: str, catalog: CatalogSnapshot, now: int) -> set[str]:
        """The kinds of free grant (migration, manual, access_code) that alone give the member this place;
        empty when a live subscription or a paid pass/lifetime gives it (two queries, drifting members only)."""
        here = {p.id for p in catalog.plans.values() if community_id in offer_of(p)}
        if any(r.plan_id in here and r.latest is not None and r.latest.status in LIVE_STATUSES
               for r in self.stores.subscriptions.for_member(member_id)):
            return set()
        given: set[str] = set()
        for grant, status in statuses(self.stores.grants.for_member(member_id), now):
            if grant.plan_id in here and status.state.gives_access:
                if not grant.given:
                    return set()
                given.add(grant.source)
        return given

    def _check_known(
        self, connector: CommunityConnector, community: Community, known: list[KnownAccount]
    ) -> tuple[set[str], list[PlaceMember]]:
        checked: set[str] = set()
        listed: list[PlaceMember] = []
        for account in known:
            presence = connector.check_member(community, account.user)
            if presence.state is PresenceState.UNKNOWN:
                continue
            checked.add(account.user)
            if presence.state is PresenceState.PRESENT:
                listed.append(PlaceMember(account.user, presence.roles))
        return checked, listed

    @staticmethod
    def _next_community(cursor: Cursor) -> None:
        cursor.community_index += 1
        cursor.after = "0"

    def _apply(self, fixes: tuple[Fix, ...], connector: CommunityConnector, community: Community) -> None:
        work = [
            AccessWork(
                WorkKind.CONVERGE, fix.member_id, community.id,
                observed=Presence(PresenceState.PRESENT if fix.present else PresenceState.ABSENT, frozenset(fix.held)),
            )
            for fix in fixes
            if fix.kind is FixKind.CONVERGE and fix.member_id
        ]
        if work:
            self.queue.send(work)
        for fix in fixes:
            if fix.kind is FixKind.REVOKE_ROLES and fix.user:
                for role in fix.roles:
                    connector.revoke_role(community, fix.user, role)

    # -- Membergate's view -----------------------------------------------------------------------

    def _known_accounts(self, now: int, catalog: CatalogSnapshot) -> dict[str, list[KnownAccount]]:
        """Every member's account per community, with whether they are entitled there (read once per invocation)."""
        if self._known is not None:
            return self._known
        known: dict[str, list[KnownAccount]] = {c: [] for c in catalog.communities}
        after: str | None = None
        while True:
            members, after = self.stores.members.page(MEMBER_READ_PAGE, after)
            for member in members:
                if not member.identities:
                    continue
                # The stored projection, not a fresh derivation: two reads a member instead of
                # four, and the lifecycle sweep keeps it current within minutes.
                entitlements = self.stores.entitlements.for_member(member.id)
                records = {r.community_id: r for r in self.stores.access.for_member(member.id)}
                for community in catalog.communities.values():
                    account = _account(member.id, member.identity(community.platform), community, entitlements,
                                       records.get(community.id), self.connectors.get(community.platform),
                                       listable=community.platform in self.listers)
                    if account is not None:
                        known[community.id].append(account)
            if after is None:
                break
        self._known = known
        return known


def _account(member_id: str, user: str | None, community: Community, entitlements: Sequence[Entitlement],
             record: AccessRecord | None, connector: CommunityConnector | None, *, listable: bool) -> KnownAccount | None:
    if not user:
        return None
    here = [e for e in entitlements if e.community_id == community.id]
    entitled = any(e.state.gives_access for e in here)
    if not listable and not entitled and (record is None or record.state not in _TOUCHED):
        return None  # checked one request at a time: only those Membergate gave access or owes it
    caps = connector.capabilities if connector is not None else frozenset()
    return KnownAccount(
        member_id, user, entitled, desired_roles(here, caps) if entitled else (),
        record.refusal if record is not None else "", record.reason if record is not None else "",
    )
