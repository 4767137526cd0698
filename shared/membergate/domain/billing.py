"""Subscription snapshots, how they converge whatever the delivery order, and what they grant.

Stripe delivers at least once and in any order. A subscription's state here is therefore never
"the last event applied" but a join over every snapshot seen:

* Ordering rule (written down, tested): a snapshot is newer than another when its key is larger,
  the key being ``(created, status_rank, cancel_at_period_end, current_period_end, cancel_at,
  event_id)``. ``created`` is the event's ``created`` second. Same-second ties are settled by
  lifecycle precedence ``incomplete < trialing < active < past_due < unpaid < paused < canceled =
  incomplete_expired``; then a pending cancellation beats none, then the later period end, then
  the later ``cancel_at``, then the larger event id. Every field takes part, so the order is total
  and the stored state is a pure function of the *set* of snapshots seen. (Between status and the
  rest sits ``sequence``: created < any update < deleted, see SubscriptionSnapshot.)
* Same-second tie rule: two snapshots of one subscription with the same ``created`` second, the
  same status rank and the same ``sequence`` but different content (prices, status,
  cancellation, period end, pause...) cannot be ordered by what Stripe sends: a switch and a
  switch back in one second carry random event ids. The key above still picks one (so the merge
  stays total), but ``needs_read_back`` flags the pair, and the processor then reads the
  subscription back from Stripe and merges the read as a snapshot at ``read_back_at``: the later
  of the processing time and the tied second plus one. Stripe answered after both tied events
  existed (both were delivered), so the read is at least as new as either, and ranking it in a
  later second makes it win whatever order the three arrive in. A tie with equal content needs
  no read (either snapshot says the same). Limit: a read made within the tied second counts from
  the next one, so a change Stripe makes after it, later in that second or in the next one with a
  lower-ranked status, loses to the read until the subscription's next event (one of the same
  rank in the next second ties with the read, and is read again).
* Grace starts at the ``created`` of the first ``past_due`` snapshot of the current run of
  ``past_due`` snapshots. Observations older than the newest non-``past_due`` one can never
  matter again and are pruned, which keeps the history bounded and still order-independent.
* Grace never ends sooner than a minimum notice after Membergate first learnt of the failure
  (``grace_floors``): a ``past_due`` delivered after its grace ran out (a webhook outage longer than
  the grace) still gives the member the grace messages and that notice before removal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

from .consent import CheckoutConsent
from fractions import Fraction
from .model import (
    CheckoutGate,
    Entitlement,
    EntitlementState,
    Plan,
    PriceLine,
)

STATUS_RANK: dict[str, int] = {
    "incomplete": 0,
    "trialing": 1,
    "active": 2,
    "past_due": 3,
    "unpaid": 4,
    "paused": 5,
    "canceled": 6,
    "incomplete_expired": 6,
}
KNOWN_STATUSES = frozenset(STATUS_RANK)
PAYMENT_SLACK = 3600  # seconds between a charge and its invoice being marked paid, at most
ENDED_STATUSES = frozenset({"unpaid", "canceled", "incomplete_expired", "paused"})
# The least time between Membergate learning of a failed payment and removing the member for it,
# when the event came late (the deployment's GRACE_MIN_NOTICE_HOURS, config.py, overrides it).
GRACE_MIN_NOTICE = 24 * 3600


@dataclass(frozen=True)
class PriceInfo:
    """What one Stripe price charges, as the join page shows it (amount in minor units)."""

    id: str
    amount: int | None  # None: the member chooses the amount (custom_unit_amount)
    currency: str
    type: str  # "recurring" or "one_time"
    interval: str | None = None  # day, week, month, year (recurring prices only)
    interval_count: int = 1
    trial_days: int | None = None
    nickname: str | None = None  # the creator's label, e.g. "Founder price"
    minimum: int | None = None  # pay what you want (amount None): the least the member may pay
    active: bool = True  # False once archived in Stripe: Checkout refuses it


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """What one event says a subscription looked like at ``created``."""

    subscription_id: str
    customer_id: str
    status: str
    created: int
    event_id: str
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    current_period_end: int | None = None
    pause_collection: bool = False
    lines: tuple[PriceLine, ...] = ()
    member_id_hint: str | None = None  # our metadata, set by Membergate's checkout
    livemode: bool = False
    # Where the event stands in a subscription's life: created 0, any update 1, deleted 2. Stripe's
    # ``created`` counts seconds, and a tier switch right after the purchase shares the creation's
    # second: without this, the event ids' random order decided which price won.
    sequence: int = 0
    # The subscription schedule managing it (a change waiting for the period end), if any.
    schedule_id: str | None = None

    @property
    def order_key(self) -> tuple[int, int, int, bool, int, int, str]:
        return (
            self.created,
            STATUS_RANK.get(self.status, -1),
            self.sequence,
            self.cancel_at_period_end,
            self.current_period_end or 0,
            self.cancel_at or 0,
            self.event_id,
        )

    @property
    def price_ids(self) -> tuple[str, ...]:
        return tuple(line.price_id for line in self.lines)

    @property
    def content(self) -> tuple[object, ...]:
        """What the snapshot says the subscription is (every field but where it came from and when):
        a field added later counts without being listed here."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in _PROVENANCE)


# Where and when a snapshot was seen, not what the subscription is: left out of its content.
_PROVENANCE = frozenset({"event_id", "created", "sequence", "livemode", "member_id_hint"})


def needs_read_back(a: SubscriptionSnapshot, b: SubscriptionSnapshot) -> bool:
    """Two snapshots of one subscription the ordering rule can only order by their random event ids
    (same second, same status rank, same place in its life) yet saying different things: the
    subscription must be read back from Stripe (module docstring). Symmetric; False for duplicates."""
    return (
        a.subscription_id == b.subscription_id
        and a.created == b.created
        and STATUS_RANK.get(a.status, -1) == STATUS_RANK.get(b.status, -1)
        and a.sequence == b.sequence
        and a.content != b.content
    )


def read_back_at(tied_second: int, now: int) -> int:
    """When a read settling a tie in ``tied_second`` counts as seen: never within that second, so the
    read outranks both tied snapshots whatever their order (module docstring)."""
    return max(now, tied_second + 1)


@dataclass(frozen=True)
class Observation:
    created: int
    rank: int
    status: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.created, self.rank)


@dataclass(frozen=True)
class PendingChange:
    """A tier change Membergate scheduled at Stripe for the period end (a downgrade the plan made wait).

    Recorded so the member's and the creator's pages can say "moves to <tier> on <date>" without
    calling Stripe. Stripe's schedule does the change; this is only what Membergate asked of it."""

    plan_id: str
    price_id: str
    at: int  # the period end the new price starts at
    schedule_id: str
    recorded_at: int


@dataclass(frozen=True)
class HistoryPoint:
    """What one snapshot said the subscription charged from ``created`` on (the KPIs' history).

    Kept whole, not pruned like ``observations``: past movements (an upgrade, a cancellation)
    need every status and price the subscription went through, at Stripe's times.
    """

    created: int
    status: str
    lines: tuple[PriceLine, ...] = ()
    pause_collection: bool = False

    @property
    def order_key(self) -> tuple[int, int, bool, str]:
        return (self.created, STATUS_RANK.get(self.status, -1), self.pause_collection, repr(self.lines))


# A bound on one record's history so the item (rewritten at every event) stays small: about
# 40 bytes a point, so 240 points is under 10 KB, twenty years of monthly renewals. Past it the
# oldest points go, and a KPI period older than the kept history reads the oldest kept state.
HISTORY_LIMIT = 240


@dataclass(frozen=True)
class SubscriptionRecord:
    """Everything known about one subscription, merged from snapshots and checkout facts."""

    subscription_id: str
    member_id: str
    customer_id: str
    plan_id: str
    latest: SubscriptionSnapshot | None = None
    observations: tuple[Observation, ...] = ()
    via_checkout: bool = False
    checkout_gate: CheckoutGate = CheckoutGate.UNSEEN
    cancel_requested_at: int | None = None
    version: int | None = None
    last_paid_at: int | None = None  # the latest paid invoice's payment time (invoice.paid)
    refunded_payment_at: int | None = None  # the latest fully refunded payment's time (charge.refunded)
    # A dispute on one of its payments (charge.dispute.*, found through the invoice it paid):
    # "" | open | won | lost, only moving forward; the policy in force when it was seen.
    dispute: str = ""
    dispute_policy: str = ""  # "" or revoke: the grant ends while open or once lost; keep: nothing
    # Membergate paused its collection at Stripe for that dispute (domain/disputes.py): only such a
    # pause is resumed when the dispute is won, never one the creator made.
    dispute_paused: bool = False
    # Every access end a cancellation announced (a union over snapshots, so order-independent):
    # a later snapshot without it means the member took the cancellation back.
    cancellation_ends: tuple[int, ...] = ()
    # Every (time, status, prices) the subscription went through, for the KPIs (see HistoryPoint).
    history: tuple[HistoryPoint, ...] = ()
    # What the member agreed to on the Checkout page that started it (None: not recorded, e.g.
    # made outside Checkout or before Membergate kept it).
    consent: CheckoutConsent | None = None
    # (created of a past_due snapshot, the earliest the member may be removed for it: when it was
    # first delivered plus the minimum notice), the earliest kept per snapshot; see grace_end.
    grace_floors: tuple[tuple[int, int], ...] = ()
    # A change scheduled for the period end, as recorded (see ``pending_change`` for whether it still waits).
    pending: PendingChange | None = None

    @property
    def pending_change(self) -> PendingChange | None:
        """The scheduled change still waiting: not yet applied (the price is not the new one), not
        released since (a later snapshot without a schedule), and the subscription still live."""
        pending, latest = self.pending, self.latest
        if pending is None or latest is None or latest.status in ENDED_STATUSES:
            return None
        if pending.price_id in latest.price_ids:
            return None  # the period ended and Stripe moved it: nothing waits any more
        if latest.schedule_id is None and latest.created > pending.recorded_at:
            return None  # released at Stripe after it was recorded (the Dashboard, or a switch back)
        return pending
    # The tax its prices include, as a rate of the net amount, read from its latest paid invoice
    # (stripe_events.inclusive_tax_rate): the KPIs count MRR net of it. None: no invoice said yet.
    tax_inclusive_rate: Fraction | None = None

    @property
    def last_payment_refunded(self) -> bool:
        """A full refund of the latest payment ends the grant; a later payment (renewal) brings it back.

        Stripe marks an invoice paid seconds after its charge is created, so a payment within
        ``PAYMENT_SLACK`` of the refunded charge is that same payment. Both times only grow, so the
        answer does not depend on delivery order.
        """
        if self.refunded_payment_at is None:
            return False
        return self.last_paid_at is None or self.last_paid_at <= self.refunded_payment_at + PAYMENT_SLACK

    @property
    def disputed(self) -> bool:
        """An open or lost dispute ends the grant unless the creator keeps access during disputes."""
        return self.dispute in ("open", "lost") and self.dispute_policy != "keep"

    @property
    def status(self) -> str | None:
        return self.latest.status if self.latest else None

    @property
    def past_due_since(self) -> int | None:
        return past_due_since(self.observations)


def merge_snapshot(record: SubscriptionRecord, snapshot: SubscriptionSnapshot, *,
                   removal_floor: int | None = None) -> SubscriptionRecord:
    """Fold one snapshot into a record; commutative, associative and idempotent.

    ``removal_floor``: for a snapshot delivered now, the earliest moment a failure it reports may
    remove the member (now plus the minimum notice); the earliest one per snapshot is kept."""
    latest = record.latest
    if latest is None or snapshot.order_key > latest.order_key:
        latest = snapshot
    observations = _prune(
        set(record.observations)
        | {Observation(snapshot.created, STATUS_RANK.get(snapshot.status, -1), snapshot.status)}
    )
    via_checkout = record.via_checkout or snapshot.member_id_hint is not None
    cancellation_ends = record.cancellation_ends
    end = scheduled_end(snapshot)
    if end is not None and end not in cancellation_ends:
        cancellation_ends = tuple(sorted((*cancellation_ends, end)))
    floors = dict(record.grace_floors)
    if removal_floor is not None and snapshot.status == "past_due":
        floors[snapshot.created] = min(floors.get(snapshot.created, removal_floor), removal_floor)
    failures = {o.created for o in observations if o.status == "past_due"}
    grace_floors = tuple(sorted((c, f) for c, f in floors.items() if c in failures))
    point = HistoryPoint(snapshot.created, snapshot.status, kpi_lines(snapshot.lines), snapshot.pause_collection)
    history = tuple(sorted(set(record.history) | {point}, key=lambda p: p.order_key))[-HISTORY_LIMIT:]
    return replace(
        record,
        latest=latest,
        observations=observations,
        via_checkout=via_checkout,
        cancellation_ends=cancellation_ends,
        history=history,
        grace_floors=grace_floors,
    )


def kpi_lines(lines: tuple[PriceLine, ...]) -> tuple[PriceLine, ...]:
    """The lines as the KPIs need them: one per (currency, interval, count), amounts times quantities
    summed, in first-seen order. A subscription with thousands of items keeps a small history point
    (the item holding it, rewritten at each event, stays far under DynamoDB's 400 KB)."""
    merged: dict[tuple[str, str | None, int], PriceLine] = {}
    for line in lines:
        if line.unit_amount is None:
            continue
        key = (line.currency, line.interval, line.interval_count)
        seen = merged.get(key)
        total = line.unit_amount * line.quantity + (seen.unit_amount or 0 if seen else 0)
        merged[key] = PriceLine(seen.price_id if seen else line.price_id, line.currency, total, 1, line.interval,
                                line.interval_count)
    return tuple(merged.values())


def merge_checkout_gate(record: SubscriptionRecord, gate: CheckoutGate) -> SubscriptionRecord:
    """Checkout facts only move up the lattice; PAID and FAILED are final and never flip."""
    current = record.checkout_gate
    if gate.rank > current.rank:
        current = gate
    return replace(record, via_checkout=True, checkout_gate=current)


def _prune(observations: set[Observation]) -> tuple[Observation, ...]:
    boundary = max((o.key for o in observations if o.status != "past_due"), default=None)
    kept = [o for o in observations if boundary is None or o.key >= boundary]
    return tuple(sorted(kept, key=lambda o: (o.key, o.status)))


def past_due_since(observations: tuple[Observation, ...]) -> int | None:
    ordered = sorted(observations, key=lambda o: (o.key, o.status))
    if not ordered or ordered[-1].status != "past_due":
        return None
    since = ordered[-1].created
    for obs in reversed(ordered):
        if obs.status != "past_due":
            break
        since = obs.created
    return since


@dataclass(frozen=True)
class GrantStatus:
    state: EntitlementState
    until: int | None
    reason: str
    # When an ENDED source ended, as best known (0: unknown). Two ended sources of one plan: the
    # later end names the removal (a manual grant revoked today, not the subscription that ended
    # weeks before). Not compared, so equal statuses stay equal whatever is known of the time.
    ended_at: int = field(default=0, compare=False)


def grant_status(record: SubscriptionRecord, plan: Plan, now: int) -> GrantStatus:
    """Entitlement of one subscription grant at ``now`` (pure)."""
    snap = record.latest
    if record.checkout_gate is CheckoutGate.FAILED:
        return GrantStatus(EntitlementState.ENDED, None, "payment_failed", snap.created if snap else 0)
    if record.last_payment_refunded:
        refunded_at = record.refunded_payment_at or (snap.created if snap else 0)
        return GrantStatus(EntitlementState.ENDED, None, "refunded", refunded_at)
    if record.disputed:
        return GrantStatus(EntitlementState.ENDED, None, "dispute", snap.created if snap else 0)
    if snap is None:
        return GrantStatus(EntitlementState.PENDING, None, "awaiting_subscription")
    if snap.status in ENDED_STATUSES or snap.pause_collection:
        reason = "paused" if (snap.pause_collection or snap.status == "paused") else snap.status
        if record.cancel_requested_at is not None:
            reason = "grace_expired"  # we cancelled it ourselves when grace ran out
        return GrantStatus(EntitlementState.ENDED, None, reason, snap.created)
    sold = {price for price in snap.price_ids if price}
    if sold and not sold & set(plan.stripe_price_ids):
        # Moved to a price this plan doesn't sell (and no plan does, or the grant would have
        # followed it): the plan's access ends rather than lingering.
        return GrantStatus(EntitlementState.ENDED, None, "price_not_sold", snap.created)
    if record.via_checkout and record.checkout_gate in (CheckoutGate.UNSEEN, CheckoutGate.AWAITING):
        # A delayed method (SEPA) grants only once the payment succeeded.
        return GrantStatus(EntitlementState.PENDING, None, "awaiting_payment")
    if snap.status == "incomplete":
        return GrantStatus(EntitlementState.PENDING, None, "incomplete")
    if snap.status in ("trialing", "active"):
        end = scheduled_end(snap)
        if end is not None and now >= end:
            return GrantStatus(EntitlementState.ENDED, None, "cancelled_at_period_end", end)
        if end is None and snap.current_period_end is not None and snap.current_period_end > now:
            # Renewing: the state holds until the period (or trial) ends, when the renewal decides.
            end = snap.current_period_end
        return GrantStatus(EntitlementState.ACTIVE, end, "")
    if snap.status == "past_due":
        grace_end = grace_ends_at(record, plan)
        if now >= grace_end:
            return GrantStatus(EntitlementState.ENDED, None, "grace_expired", grace_end)
        return GrantStatus(EntitlementState.GRACE, grace_end, "payment_failed")
    # A status Stripe may add later: grant nothing, but don't call it ended either.
    return GrantStatus(EntitlementState.PENDING, None, f"unknown_status:{snap.status}")


def grace_ends_at(record: SubscriptionRecord, plan: Plan) -> int:
    """When a past_due subscription's grace ends: the plan's grace from the failure's Stripe time,
    but never before the removal floor of the first delivery of that failure (a late event)."""
    since = record.past_due_since
    if since is None:
        since = record.latest.created if record.latest else 0
    floors = [floor for created, floor in record.grace_floors if created >= since]
    return max(since + plan.grace_seconds, min(floors, default=0))


def scheduled_end(snap: SubscriptionSnapshot) -> int | None:
    if snap.cancel_at is not None:
        return snap.cancel_at
    if snap.cancel_at_period_end:
        return snap.current_period_end
    return None


_STATE_ORDER = {
    EntitlementState.ENDED: 0,
    EntitlementState.PENDING: 1,
    EntitlementState.GRACE: 2,
    EntitlementState.ACTIVE: 3,
}


def best(a: GrantStatus | None, b: GrantStatus) -> GrantStatus:
    """Union of two grants for the same plan: the one giving the most access wins."""
    if a is None:
        return b

    def key(g: GrantStatus) -> tuple[int, bool, int]:
        # None as "until" on an active grant means open-ended, which beats any date.
        open_ended = g.until is None and g.state.gives_access
        return (_STATE_ORDER[g.state], open_ended, g.until or 0)

    if key(b) == key(a) and b.state is EntitlementState.ENDED:
        # Both ended: the later end is what took access away, and its reason is the one to tell.
        return b if b.ended_at > a.ended_at else a
    return b if key(b) > key(a) else a


def removal_subject(ended_here: Sequence[Entitlement]) -> Entitlement | None:
    """Of the ended entitlements of one place, the one a removal is about: the latest to end
    (its plan and reason go on the receipt, the removal record and the preview alike)."""
    ended = [e for e in ended_here if e.state is EntitlementState.ENDED]
    return max(ended, key=lambda e: (e.ended_at, e.plan_id)) if ended else None


def derive_entitlements(
    records: list[SubscriptionRecord],
    plans: dict[str, Plan],
    community_roles: dict[str, str | None],
    now: int,
    one_time: Sequence[tuple[str, GrantStatus]] = (),
    scoped: Sequence[tuple[str, str, GrantStatus]] = (),
) -> list[Entitlement]:
    """One entitlement per plan grant the member has ever had, ended ones included.

    Every source of a plan (subscriptions, and ``one_time``: (plan id, status) of passes and
    lifetime purchases, see domain/grants.py) counts: the one giving the most access wins, so one
    source ending never takes away what another still gives. ``scoped``: (plan id, community id,
    status) of grants of one place of a plan only (an undone removal), counted for that place."""
    per_plan: dict[str, GrantStatus] = {}
    for record in records:
        plan = plans.get(record.plan_id)
        if plan is None:
            continue
        per_plan[plan.id] = best(per_plan.get(plan.id), grant_status(record, plan, now))
    for plan_id, status in one_time:
        if plan_id in plans:
            per_plan[plan_id] = best(per_plan.get(plan_id), status)
    per_place: dict[tuple[str, str], GrantStatus] = {}
    for plan_id, community_id, status in scoped:
        if plan_id in plans:
            per_place[(plan_id, community_id)] = best(per_place.get((plan_id, community_id)), status)
    out: list[Entitlement] = []
    for plan_id in sorted(per_plan.keys() | {p for p, _ in per_place}):
        for grant in plans[plan_id].grants:
            whole, place = per_plan.get(plan_id), per_place.get((plan_id, grant.community_id))
            found = best(whole, place) if place is not None else whole
            if found is None:
                continue  # only another place of this plan was given back
            role = grant.role_id or community_roles.get(grant.community_id)
            out.append(
                Entitlement(plan_id, grant.community_id, role, found.state, found.until, found.reason, found.ended_at)
            )
    return out


def monthly_amount(line: PriceLine) -> tuple[int, int]:
    """A line's recurring amount per month as an exact fraction (numerator, denominator)."""
    if line.unit_amount is None or line.interval is None:
        return (0, 1)
    total = line.unit_amount * line.quantity
    count = max(line.interval_count, 1)
    per = {"day": (365, 12), "week": (52, 12), "month": (1, 1), "year": (1, 12)}.get(line.interval)
    if per is None:
        return (0, 1)
    return (total * per[0], count * per[1])
