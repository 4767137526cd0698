"""The creator's numbers (MRR, movements, churn, LTV, conversion, cohorts) as pure functions of Stripe's history.

Every formula is written down in docs/kpis.md. The rules that shape this module:

* Money is integer minor units in, exact ``Fraction`` inside, rounded half up to the minor unit
  only when a report is rendered (``KpiReport.as_dict``). Currencies are never mixed.
* Time is Stripe's: an observation counts from its event's ``created`` second, never from when it
  arrived, so a late or back-dated event changes exactly the days from its ``created`` onwards
  (``days_touched``). ``now`` is passed in.
* Days are whole days in the creator's time zone; a day's values are measured at its last second
  (or at ``now`` for today). ``from`` and ``to`` are inclusive.
* The history is a *set*: the same observation twice, or in any order, gives the same numbers.
* ``daily_snapshot`` computes one day; ``summarise`` turns a run of stored snapshots into a
  report, so reading a period costs O(days) once the snapshots exist. ``compute_kpis`` is both
  steps in one call (what the snapshots must reproduce).
"""

from __future__ import annotations

from typing import Any

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from .billing import ENDED_STATUSES, STATUS_RANK
from .model import PriceLine

DAY_SECONDS = 86_400
DEFAULT_GRACE_SECONDS = 3 * DAY_SECONDS
# A month, for turning a period's churn into a monthly rate: 365 / 12 days.
DAYS_PER_MONTH = Fraction(365, 12)
# Interval -> months per interval unit, as an exact multiplier to a monthly amount.
_PER_MONTH = {
    "day": Fraction(365, 12),
    "week": Fraction(52, 12),
    "month": Fraction(1),
    "year": Fraction(1, 12),
}
ZERO = Fraction(0)


# --------------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True)
class Discount:
    """A coupon on a subscription (Stripe ``discount.coupon``); optional input, absent by default.

    ``percent_off`` is in percent (25 means a quarter off); ``amount_off`` is minor units off
    each invoice, in the subscription's currency. A ``once`` coupon changes one invoice, not the
    run rate, so it leaves MRR alone; ``forever`` and ``repeating`` apply while Stripe still shows
    them on the subscription (Stripe removes an expired one with a ``customer.subscription.updated``).
    """

    percent_off: Fraction = ZERO
    amount_off: int = 0
    duration: str = "forever"


@dataclass(frozen=True)
class SubscriptionObservation:
    """What one Stripe event said a member's subscription looked like at ``created``.

    ``discount``, ``tax_inclusive_rate`` and ``collection_paused`` are optional additions
    (defaults: none). A subscription whose collection is paused counts nowhere, as it gives no access.

    Net of tax (Stripe, *Billing metric definitions*: taxes are excluded from MRR): a price with
    ``tax_behavior=exclusive`` is already net, as Stripe Tax adds the tax on top. One with
    ``inclusive`` holds the tax, but the price does not say how much (Stripe Tax picks the rate from
    the customer's address), and ``unspecified`` follows the account's default, so neither can be
    made net from the price. The source of truth is the subscription's latest paid invoice:
    ``tax_inclusive_rate`` is the tax its prices included over their net amount
    (``subtotal / subtotal_excluding_tax − 1``, stripe_events.inclusive_tax_rate), 0 for an
    exclusive or untaxed one, and the monthly amount is divided by ``1 + rate`` after discounts
    (1,200 at 20 % → 1,000, which is the invoice's ``total_excluding_tax``). None (no paid invoice
    seen yet) leaves the price as is.
    """

    member_id: str
    subscription_id: str
    created: int
    status: str
    lines: tuple[PriceLine, ...] = ()
    event_id: str = ""
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    discount: Discount | None = None
    tax_inclusive_rate: Fraction | None = None
    # Stripe's pause_collection on an otherwise active subscription: no invoices, no access
    # (billing.grant_status), so no revenue either.
    collection_paused: bool = False

    @property
    def order_key(self) -> tuple[int, int, str, str]:
        # Same precedence as billing.SubscriptionSnapshot.order_key for same-second ties.
        return (self.created, STATUS_RANK.get(self.status, -1), self.event_id, repr(self))

    def monthly(self) -> dict[str, Fraction]:
        """Monthly-normalised recurring amount per currency, discounts applied, net of tax."""
        per_currency: dict[str, Fraction] = defaultdict(Fraction)
        unit_factor: Fraction | None = None
        for line in self.lines:
            factor = _months_factor(line)
            if factor is None or line.unit_amount is None or not line.currency:
                continue
            unit_factor = unit_factor if unit_factor is not None else factor
            per_currency[line.currency] += line.unit_amount * line.quantity * factor
        out: dict[str, Fraction] = {}
        for currency, amount in per_currency.items():
            if self.discount is not None and self.discount.duration != "once":
                amount = amount * (1 - Fraction(self.discount.percent_off) / 100)
                amount -= self.discount.amount_off * (unit_factor or 1)
            if self.tax_inclusive_rate:
                amount = amount / (1 + Fraction(self.tax_inclusive_rate))
            out[currency] = max(amount, ZERO)
        return out


def _months_factor(line: PriceLine) -> Fraction | None:
    per = _PER_MONTH.get(line.interval or "")
    if per is None:
        return None
    return per / max(line.interval_count, 1)


@dataclass(frozen=True)
class OneTimePayment:
    """A paid one-time purchase (a pass, or lifetime access), net of tax, kept apart from MRR."""

    member_id: str
    payment_id: str
    created: int
    currency: str
    amount: int
    kind: str = "pass"  # "pass" or "lifetime"


@dataclass(frozen=True)
class FunnelDay:
    """One day of the join funnel, counted in the creator's time zone."""

    day: date
    views: int = 0  # join page views
    bound: int = 0  # identities bound
    checkouts: int = 0  # checkouts started
    paid: int = 0  # checkouts paid


@dataclass(frozen=True)
class History:
    observations: tuple[SubscriptionObservation, ...] = ()
    payments: tuple[OneTimePayment, ...] = ()
    funnel: tuple[FunnelDay, ...] = ()


# --------------------------------------------------------------------------------------------
# Output


@dataclass(frozen=True)
class Movements:
    """MRR movements, each a positive amount: end − start = new + expansion + reactivation − contraction − churned."""

    new: Fraction = ZERO
    expansion: Fraction = ZERO
    contraction: Fraction = ZERO
    churned: Fraction = ZERO
    reactivation: Fraction = ZERO

    def __add__(self, other: Movements) -> Movements:
        return Movements(
            self.new + other.new,
            self.expansion + other.expansion,
            self.contraction + other.contraction,
            self.churned + other.churned,
            self.reactivation + other.reactivation,
        )

    @property
    def net(self) -> Fraction:
        return self.new + self.expansion + self.reactivation - self.contraction - self.churned


@dataclass(frozen=True)
class DaySnapshot:
    """One day's numbers: balances at the start and end of the day and what moved in between."""

    day: date
    mrr_start: dict[str, Fraction]
    mrr: dict[str, Fraction]
    paying_start: int
    paying: int
    trialing: int
    grace: int
    paying_by_currency: dict[str, int]
    movements: dict[str, Movements]
    new_members: int = 0
    reactivated_members: int = 0
    churned_voluntary: int = 0
    churned_involuntary: int = 0
    churned_mrr_voluntary: dict[str, Fraction] = field(default_factory=dict)
    churned_mrr_involuntary: dict[str, Fraction] = field(default_factory=dict)


@dataclass(frozen=True)
class Churn:
    """Churn over a span: members who stopped paying and recurring revenue lost."""

    logo_rate: Fraction | None
    voluntary_members: int
    involuntary_members: int
    voluntary_rate: Fraction | None
    involuntary_rate: Fraction | None
    revenue_rate: dict[str, Fraction]
    voluntary_mrr: dict[str, Fraction]
    involuntary_mrr: dict[str, Fraction]
    at_risk: int  # the denominator: paying at the start + new + reactivated in the span


@dataclass(frozen=True)
class Cohort:
    month: str  # YYYY-MM of the member's first paid day
    size: int
    retained: tuple[int, ...]  # paying at the end of month 0, 1, ... (the last one at ``to``)


@dataclass(frozen=True)
class KpiReport:
    start: date
    end: date
    time_zone: str
    mrr_start: dict[str, Fraction]
    mrr: dict[str, Fraction]
    movements: dict[str, Movements]
    paying_members: int
    trialing_members: int
    grace_members: int
    churn: Churn
    churn_by_month: tuple[tuple[str, Churn], ...]
    arpu: dict[str, Fraction]
    monthly_logo_churn: Fraction | None
    ltv: dict[str, Fraction | None]
    nrr: dict[str, Fraction]
    funnel: FunnelDay
    trials_ended: int
    trials_converted: int
    cohorts: tuple[Cohort, ...]
    one_time: dict[str, int]
    lifetime: dict[str, int]
    # Each plan's funnel over the period (plan id, totals); the summed one is ``funnel``.
    funnel_by_plan: tuple[tuple[str, FunnelDay], ...] = ()

    @property
    def arr(self) -> dict[str, Fraction]:
        return {currency: 12 * amount for currency, amount in self.mrr.items()}

    def as_dict(self) -> dict[str, Any]:
        """The report as the admin API answers it: amounts rounded half up, rates to 4 places."""
        currencies = sorted(set(self.mrr) | set(self.movements) | set(self.mrr_start))
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "time_zone": self.time_zone,
            "mrr": {c: round_half_up(self.mrr.get(c, ZERO)) for c in currencies},
            "mrr_start": {c: round_half_up(self.mrr_start.get(c, ZERO)) for c in currencies},
            "arr": {c: round_half_up(12 * self.mrr.get(c, ZERO)) for c in currencies},
            "movements": {
                c: _movements_dict(self.movements.get(c, Movements())) for c in currencies
            },
            "paying_members": self.paying_members,
            "trialing_members": self.trialing_members,
            "grace_members": self.grace_members,
            "churn": _churn_dict(self.churn)
            | {"by_month": [{"month": m} | _churn_dict(c) for m, c in self.churn_by_month]},
            "arpu": {c: round_half_up(v) for c, v in sorted(self.arpu.items())},
            "ltv": {c: (None if v is None else round_half_up(v)) for c, v in sorted(self.ltv.items())},
            "monthly_logo_churn_rate": rate(self.monthly_logo_churn),
            "nrr": {c: rate(v) for c, v in sorted(self.nrr.items())},
            "conversion": {
                "views": self.funnel.views,
                "bound": self.funnel.bound,
                "checkouts": self.funnel.checkouts,
                "paid": self.funnel.paid,
                "view_to_bound": rate(_ratio(self.funnel.bound, self.funnel.views)),
                "bound_to_checkout": rate(_ratio(self.funnel.checkouts, self.funnel.bound)),
                "checkout_to_paid": rate(_ratio(self.funnel.paid, self.funnel.checkouts)),
                "view_to_paid": rate(_ratio(self.funnel.paid, self.funnel.views)),
                "by_plan": {plan_id: _funnel_dict(f) for plan_id, f in self.funnel_by_plan},
                "trials_ended": self.trials_ended,
                "trials_converted": self.trials_converted,
                "trial_to_paid": rate(_ratio(self.trials_converted, self.trials_ended)),
            },
            "cohorts": [
                {"month": c.month, "size": c.size, "retained": list(c.retained)} for c in self.cohorts
            ],
            "one_time_revenue": dict(sorted(self.one_time.items())),
            "lifetime_revenue": dict(sorted(self.lifetime.items())),
        }


def _funnel_dict(f: FunnelDay) -> dict[str, Any]:
    return {
        "views": f.views,
        "bound": f.bound,
        "checkouts": f.checkouts,
        "paid": f.paid,
        "view_to_bound": rate(_ratio(f.bound, f.views)),
        "bound_to_checkout": rate(_ratio(f.checkouts, f.bound)),
        "checkout_to_paid": rate(_ratio(f.paid, f.checkouts)),
        "view_to_paid": rate(_ratio(f.paid, f.views)),
    }


def _movements_dict(m: Movements) -> dict[str, int]:
    return {
        "new": round_half_up(m.new),
        "expansion": round_half_up(m.expansion),
        "contraction": round_half_up(m.contraction),
        "churned": round_half_up(m.churned),
        "reactivation": round_half_up(m.reactivation),
    }


def _churn_dict(c: Churn) -> dict[str, Any]:
    return {
        "logo_rate": rate(c.logo_rate),
        "revenue_rate": {cur: rate(v) for cur, v in sorted(c.revenue_rate.items())},
        "voluntary": {
            "members": c.voluntary_members,
            "logo_rate": rate(c.voluntary_rate),
            "mrr": {cur: round_half_up(v) for cur, v in sorted(c.voluntary_mrr.items())},
        },
        "involuntary": {
            "members": c.involuntary_members,
            "logo_rate": rate(c.involuntary_rate),
            "mrr": {cur: round_half_up(v) for cur, v in sorted(c.involuntary_mrr.items())},
        },
    }


def round_half_up(amount: Fraction | int) -> int:
    """To the minor unit, halves away from zero (amounts here are never negative)."""
    value = Fraction(amount)
    if value < 0:
        return -round_half_up(-value)
    return int((value + Fraction(1, 2)) // 1)


def rate(value: Fraction | None, places: int = 4) -> float | None:
    """A ratio for display: half up to ``places`` decimals (0.2222 for 2/9); None when undefined."""
    if value is None:
        return None
    scale = 10**places
    return float(round_half_up(value * scale) / scale)


def _ratio(numerator: int | Fraction, denominator: int | Fraction) -> Fraction | None:
    return Fraction(numerator) / denominator if denominator else None


# --------------------------------------------------------------------------------------------
# Time


def day_start(day: date, tz: str) -> int:
    """Epoch second at which ``day`` begins in time zone ``tz``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp())


def day_of(moment: int, tz: str) -> date:
    return datetime.fromtimestamp(moment, ZoneInfo(tz)).date()


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def days_touched(created: int, now: int, tz: str) -> list[date]:
    """The daily snapshots an event created at ``created`` changes: its day up to today."""
    first, today = day_of(created, tz), day_of(now, tz)
    return days_between(first, today) if first <= today else []


def _end_moment(day: date, tz: str, now: int) -> int:
    """Last second of ``day`` (values at the end of a day), or ``now`` for a day not over yet."""
    return min(day_start(day + timedelta(days=1), tz) - 1, now)


def _month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _month_end(day: date) -> date:
    nxt = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


# --------------------------------------------------------------------------------------------
# State at a moment


@dataclass(frozen=True)
class _SubState:
    kind: str  # "paying", "grace", "trialing" or "none"
    mrr: dict[str, Fraction]
    involuntary: bool  # when not paying: it stopped because a payment failed


class _Timeline:
    """One subscription's observations in Stripe's order, queried at any moment."""

    def __init__(self, observations: Iterable[SubscriptionObservation]):
        self.obs = sorted(observations, key=lambda o: o.order_key)
        self.times = [o.created for o in self.obs]

    def upto(self, moment: int) -> int:
        return bisect.bisect_right(self.times, moment)

    def grace_ends(self) -> list[int]:
        """Every moment at which a grace period of this subscription could run out."""
        ends, since = [], None
        for obs in self.obs:
            if obs.status != "past_due":
                since = None
                continue
            since = obs.created if since is None else since
            ends.append(since + obs.grace_seconds)
        return ends

    def state(self, moment: int) -> _SubState:
        n = self.upto(moment)
        if n == 0:
            return _SubState("none", {}, False)
        last = self.obs[n - 1]
        if last.collection_paused:
            return _SubState("none", {}, False)
        if last.status == "active":
            return _SubState("paying", last.monthly(), False)
        if last.status == "trialing":
            return _SubState("trialing", {}, False)
        if last.status == "past_due":
            since = last.created
            for obs in reversed(self.obs[: n - 1]):
                if obs.status != "past_due":
                    break
                since = obs.created
            if moment < since + last.grace_seconds:
                return _SubState("grace", last.monthly(), False)
            return _SubState("none", {}, True)  # past due after grace: counts nowhere
        # Ended (or a status Stripe may add): no revenue. Involuntary when it ended from past_due
        # or unpaid, i.e. because a payment failed.
        previous = self.obs[n - 2].status if n >= 2 else None
        involuntary = last.status == "unpaid" or (last.status in ENDED_STATUSES and previous in ("past_due", "unpaid"))
        return _SubState("none", {}, involuntary)


@dataclass(frozen=True)
class _MemberState:
    mrr: dict[str, Fraction]
    paying: bool
    grace: bool
    trialing: bool


class _Index:
    """The history arranged for queries: per member, per subscription, a timeline."""

    def __init__(self, history: History):
        observations = set(history.observations)  # a set: duplicates and order never matter
        by_sub: dict[tuple[str, str], list[SubscriptionObservation]] = defaultdict(list)
        for obs in observations:
            by_sub[(obs.member_id, obs.subscription_id)].append(obs)
        self.members: dict[str, list[_Timeline]] = defaultdict(list)
        for (member_id, _), items in sorted(by_sub.items()):
            self.members[member_id].append(_Timeline(items))
        self.payments = sorted(set(history.payments), key=lambda p: (p.created, p.payment_id))
        self.funnel = set(history.funnel)  # one row per day; the same row twice is one
        self._first_paid: dict[str, int | None] = {}
        # Moments at which a member's state may change: each observation, and each possible end
        # of grace. Between two of them nothing moves, so a day only looks at members with one.
        changes = sorted(
            {(o.created, member_id) for member_id, ts in self.members.items() for t in ts for o in t.obs}
            | {(moment, member_id) for member_id, ts in self.members.items() for t in ts for moment in t.grace_ends()}
        )
        self._change_times = [moment for moment, _ in changes]
        self._change_members = [member_id for _, member_id in changes]

    def changed_members(self, start: int, end: int) -> list[str]:
        """Members whose state may differ between ``start`` and ``end`` (start < moment <= end)."""
        lo = bisect.bisect_right(self._change_times, start)
        hi = bisect.bisect_right(self._change_times, end)
        return sorted(set(self._change_members[lo:hi]))

    def member_state(self, member_id: str, moment: int) -> _MemberState:
        mrr: dict[str, Fraction] = defaultdict(Fraction)
        paying = grace = trialing = False
        for timeline in self.members[member_id]:
            state = timeline.state(moment)
            if state.kind in ("paying", "grace"):
                for currency, amount in state.mrr.items():
                    mrr[currency] += amount
                paying = True
                grace = grace or state.kind == "grace"
            elif state.kind == "trialing":
                trialing = True
        mrr = {c: a for c, a in mrr.items() if a > 0}
        return _MemberState(dict(mrr), paying, grace and paying, trialing and not paying)

    def first_paid(self, member_id: str) -> int | None:
        """The first second at which the member had recurring revenue, if ever."""
        if member_id not in self._first_paid:
            moments = sorted({o.created for t in self.members[member_id] for o in t.obs})
            self._first_paid[member_id] = next(
                (m for m in moments if sum(self.member_state(member_id, m).mrr.values(), ZERO) > 0), None
            )
        return self._first_paid[member_id]

    def churn_involuntary(self, member_id: str, start: int, end: int) -> bool:
        """Whether a member who stopped paying between ``start`` and ``end`` did so because a payment failed."""
        for timeline in self.members[member_id]:
            if timeline.state(start).kind in ("paying", "grace") and timeline.state(end).involuntary:
                return True
        return False


# --------------------------------------------------------------------------------------------
# Daily snapshot


def daily_snapshot(history: History, day: date, tz: str, now: int) -> DaySnapshot:
    """One day's numbers, to be stored; re-run it for each day in ``days_touched`` by a late event."""
    return _snapshot(_Index(history), day, tz, now)


class _Totals:
    """Balances over all members at one moment, kept up to date member by member."""

    def __init__(self) -> None:
        self.mrr: dict[str, Fraction] = defaultdict(Fraction)
        self.by_currency: dict[str, int] = defaultdict(int)
        self.paying = self.trialing = self.grace = 0

    def apply(self, state: _MemberState, sign: int) -> None:
        for currency, amount in state.mrr.items():
            self.mrr[currency] += sign * amount
            self.by_currency[currency] += sign
        self.paying += sign * state.paying
        self.trialing += sign * state.trialing
        self.grace += sign * state.grace

    def mrr_now(self) -> dict[str, Fraction]:
        return {c: a for c, a in self.mrr.items() if a}

    def by_currency_now(self) -> dict[str, int]:
        return {c: n for c, n in self.by_currency.items() if n}


class _Carry:
    """Every member's state and the totals at ``moment``, handed from one day to the next."""

    def __init__(self) -> None:
        self.moment: int | None = None
        self.states: dict[str, _MemberState] = {}
        self.totals = _Totals()


def daily_snapshots(history: History, days: Iterable[date], tz: str, now: int) -> list[DaySnapshot]:
    """Several days' snapshots in one pass (e.g. every day in ``days_touched`` by a late event):
    the history is indexed once and consecutive days carry their state over."""
    index, carry = _Index(history), _Carry()
    return [_snapshot(index, day, tz, now, carry) for day in sorted(set(days))]


def _snapshot(index: _Index, day: date, tz: str, now: int, carry: _Carry | None = None) -> DaySnapshot:
    """One day. Computing days in a row with one ``carry`` only revisits members whose state may
    have changed that day; the result is the same as computing the day alone."""
    start = min(day_start(day, tz) - 1, now)  # the end of the previous day
    end = _end_moment(day, tz, now)
    carry = carry or _Carry()
    if carry.moment != start:
        carry.states = {m: index.member_state(m, start) for m in index.members}
        carry.totals = _Totals()
        for state in carry.states.values():
            carry.totals.apply(state, +1)
    totals = carry.totals
    mrr_start, paying_start = totals.mrr_now(), totals.paying
    movements: dict[str, Movements] = defaultdict(Movements)
    new_members = reactivated = 0
    churned = {False: 0, True: 0}
    churned_mrr: dict[bool, dict[str, Fraction]] = {False: defaultdict(Fraction), True: defaultdict(Fraction)}
    for member_id in index.changed_members(start, end):
        before = carry.states[member_id]
        after = index.member_state(member_id, end)
        if after == before:
            continue
        carry.states[member_id] = after
        totals.apply(before, -1)
        totals.apply(after, +1)
        had_paid_before = (first := index.first_paid(member_id)) is not None and first <= start
        if after.paying and not before.paying:
            if had_paid_before:
                reactivated += 1
            else:
                new_members += 1
        involuntary = False
        if before.paying and not after.paying:
            involuntary = index.churn_involuntary(member_id, start, end)
            churned[involuntary] += 1
        for currency in set(before.mrr) | set(after.mrr):
            old, new = before.mrr.get(currency, ZERO), after.mrr.get(currency, ZERO)
            if old == new:
                continue
            if old == 0:
                move = Movements(reactivation=new) if had_paid_before else Movements(new=new)
            elif new == 0:
                move = Movements(churned=old)
                churned_mrr[involuntary if not after.paying else False][currency] += old
            elif new > old:
                move = Movements(expansion=new - old)
            else:
                move = Movements(contraction=old - new)
            movements[currency] = movements[currency] + move
    carry.moment = end
    return DaySnapshot(
        day=day,
        mrr_start=mrr_start,
        mrr=totals.mrr_now(),
        paying_start=paying_start,
        paying=totals.paying,
        trialing=totals.trialing,
        grace=totals.grace,
        paying_by_currency=totals.by_currency_now(),
        movements=dict(movements),
        new_members=new_members,
        reactivated_members=reactivated,
        churned_voluntary=churned[False],
        churned_involuntary=churned[True],
        churned_mrr_voluntary=dict(churned_mrr[False]),
        churned_mrr_involuntary=dict(churned_mrr[True]),
    )


def snapshot_to_json(snapshot: DaySnapshot) -> dict[str, Any]:
    """A snapshot as plain JSON for storage; exact amounts are kept as "numerator/denominator"."""

    def amounts(d: dict[str, Fraction]) -> dict[str, str]:
        return {c: str(Fraction(v)) for c, v in sorted(d.items())}

    return {
        "day": snapshot.day.isoformat(),
        "mrr_start": amounts(snapshot.mrr_start),
        "mrr": amounts(snapshot.mrr),
        "paying_start": snapshot.paying_start,
        "paying": snapshot.paying,
        "trialing": snapshot.trialing,
        "grace": snapshot.grace,
        "paying_by_currency": dict(sorted(snapshot.paying_by_currency.items())),
        "movements": {
            c: {k: str(getattr(m, k)) for k in ("new", "expansion", "contraction", "churned", "reactivation")}
            for c, m in sorted(snapshot.movements.items())
        },
        "new_members": snapshot.new_members,
        "reactivated_members": snapshot.reactivated_members,
        "churned_voluntary": snapshot.churned_voluntary,
        "churned_involuntary": snapshot.churned_involuntary,
        "churned_mrr_voluntary": amounts(snapshot.churned_mrr_voluntary),
        "churned_mrr_involuntary": amounts(snapshot.churned_mrr_involuntary),
    }


def snapshot_from_json(data: dict[str, Any]) -> DaySnapshot:
    def amounts(d: dict[str, str]) -> dict[str, Fraction]:
        return {c: Fraction(v) for c, v in d.items()}

    return DaySnapshot(
        day=date.fromisoformat(data["day"]),
        mrr_start=amounts(data["mrr_start"]),
        mrr=amounts(data["mrr"]),
        paying_start=int(data["paying_start"]),
        paying=int(data["paying"]),
        trialing=int(data["trialing"]),
        grace=int(data["grace"]),
        paying_by_currency={c: int(n) for c, n in data["paying_by_currency"].items()},
        movements={c: Movements(**{k: Fraction(v) for k, v in m.items()}) for c, m in data["movements"].items()},
        new_members=int(data["new_members"]),
        reactivated_members=int(data["reactivated_members"]),
        churned_voluntary=int(data["churned_voluntary"]),
        churned_involuntary=int(data["churned_involuntary"]),
        churned_mrr_voluntary=amounts(data["churned_mrr_voluntary"]),
        churned_mrr_involuntary=amounts(data["churned_mrr_involuntary"]),
    )


# --------------------------------------------------------------------------------------------
# Period report


def compute_kpis(history: History, start: date, end: date, tz: str, now: int) -> KpiReport:
    """Every KPI for ``start``..``end`` (inclusive, whole days in ``tz``), computed from the history."""
    _check_period(start, end)
    index = _Index(history)
    carry = _Carry()
    snapshots = [_snapshot(index, day, tz, now, carry) for day in days_between(start, end)]
    return _report(index, snapshots, start, end, tz, now)


def summarise(history: History, snapshots: Sequence[DaySnapshot], start: date, end: date, tz: str, now: int) -> KpiReport:
    """The report from stored daily snapshots (one per day of the period) plus the history for
    what snapshots do not hold (NRR, cohorts, trials, funnel, one-time revenue)."""
    _check_period(start, end)
    wanted = days_between(start, end)
    by_day = {s.day: s for s in snapshots}
    missing = [d for d in wanted if d not in by_day]
    if missing:
        raise ValueError(f"no snapshot for {missing[0].isoformat()}; compute it with daily_snapshot first")
    return _report(_Index(history), [by_day[d] for d in wanted], start, end, tz, now)


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise ValueError("'to' is before 'from'; give from <= to (both inclusive, YYYY-MM-DD)")


def _churn(snapshots: Sequence[DaySnapshot]) -> Churn:
    first = snapshots[0]
    voluntary = sum(s.churned_voluntary for s in snapshots)
    involuntary = sum(s.churned_involuntary for s in snapshots)
    at_risk = first.paying_start + sum(s.new_members + s.reactivated_members for s in snapshots)
    moves = _sum_movements(snapshots)
    revenue_rate = {
        c: (moves[c].churned + moves[c].contraction) / amount if c in moves else ZERO
        for c, amount in first.mrr_start.items()
        if amount
    }
    return Churn(
        logo_rate=_ratio(voluntary + involuntary, at_risk),
        voluntary_members=voluntary,
        involuntary_members=involuntary,
        voluntary_rate=_ratio(voluntary, at_risk),
        involuntary_rate=_ratio(involuntary, at_risk),
        revenue_rate=revenue_rate,
        voluntary_mrr=_sum_dicts(s.churned_mrr_voluntary for s in snapshots),
        involuntary_mrr=_sum_dicts(s.churned_mrr_involuntary for s in snapshots),
        at_risk=at_risk,
    )


def _sum_movements(snapshots: Iterable[DaySnapshot]) -> dict[str, Movements]:
    total: dict[str, Movements] = defaultdict(Movements)
    for s in snapshots:
        for currency, move in s.movements.items():
            total[currency] = total[currency] + move
    return dict(total)


def _sum_dicts(items: Iterable[dict[str, Fraction]]) -> dict[str, Fraction]:
    total: dict[str, Fraction] = defaultdict(Fraction)
    for item in items:
        for key, value in item.items():
            total[key] += value
    return {k: v for k, v in total.items() if v}


def _report(index: _Index, snapshots: list[DaySnapshot], start: date, end: date, tz: str, now: int) -> KpiReport:
    first, last = snapshots[0], snapshots[-1]
    period_start = min(day_start(start, tz) - 1, now)
    period_end = _end_moment(end, tz, now)
    churn = _churn(snapshots)
    by_month: dict[str, list[DaySnapshot]] = defaultdict(list)
    for s in snapshots:
        by_month[_month_key(s.day)].append(s)
    churn_by_month = tuple((month, _churn(items)) for month, items in sorted(by_month.items()))

    arpu = {c: last.mrr[c] / last.paying_by_currency[c] for c in last.mrr if last.paying_by_currency.get(c)}
    monthly_churn = None
    if churn.logo_rate is not None:
        monthly_churn = churn.logo_rate * DAYS_PER_MONTH / len(snapshots)
    ltv = {c: (a / monthly_churn if monthly_churn else None) for c, a in arpu.items()}

    # NRR follows the members paying at the start only (new and returning members excluded).
    retained: dict[str, Fraction] = defaultdict(Fraction)
    for member_id in index.members:
        before = index.member_state(member_id, period_start)
        if not before.mrr:
            continue
        after = index.member_state(member_id, period_end)
        for currency in before.mrr:
            retained[currency] += after.mrr.get(currency, ZERO)
    nrr = {c: retained[c] / amount for c, amount in first.mrr_start.items() if amount}

    funnel = FunnelDay(start)
    for row in index.funnel:
        if start <= row.day <= end:
            funnel = FunnelDay(
                start,
                funnel.views + row.views,
                funnel.bound + row.bound,
                funnel.checkouts + row.checkouts,
                funnel.paid + row.paid,
            )
    trials_ended, trials_converted = _trials(index, period_start, period_end)

    one_time: dict[str, int] = defaultdict(int)
    lifetime: dict[str, int] = defaultdict(int)
    for p in index.payments:
        if period_start < p.created <= period_end:
            (lifetime if p.kind == "lifetime" else one_time)[p.currency] += p.amount

    return KpiReport(
        start=start,
        end=end,
        time_zone=tz,
        mrr_start=dict(first.mrr_start),
        mrr=dict(last.mrr),
        movements=_sum_movements(snapshots),
        paying_members=last.paying,
        trialing_members=last.trialing,
        grace_members=last.grace,
        churn=churn,
        churn_by_month=churn_by_month,
        arpu=arpu,
        monthly_logo_churn=monthly_churn,
        ltv=ltv,
        nrr=nrr,
        funnel=funnel,
        trials_ended=trials_ended,
        trials_converted=trials_converted,
        cohorts=_cohorts(index, end, tz, now),
        one_time=dict(one_time),
        lifetime=dict(lifetime),
    )


def _trials(index: _Index, start: int, end: int) -> tuple[int, int]:
    """Trials that ended in (start, end], and how many of them became active (paid)."""
    ended = converted = 0
    for timelines in index.members.values():
        for timeline in timelines:
            obs = timeline.obs[: timeline.upto(end)]
            for i, o in enumerate(obs):
                if o.status != "trialing" or i + 1 >= len(obs) or obs[i + 1].status == "trialing":
                    continue
                if start < obs[i + 1].created <= end:
                    ended += 1
                    converted += any(later.status == "active" for later in obs[i + 1 :])
    return ended, converted


def _cohorts(index: _Index, end: date, tz: str, now: int) -> tuple[Cohort, ...]:
    """Members by the month of their first paid day; paying at the end of each later month."""
    members_by_month: dict[date, list[str]] = defaultdict(list)
    last_moment = _end_moment(end, tz, now)
    for member_id in index.members:
        first = index.first_paid(member_id)
        if first is None or first > last_moment:
            continue
        joined = day_of(first, tz)
        members_by_month[date(joined.year, joined.month, 1)].append(member_id)
    cohorts = []
    for month in sorted(members_by_month):
        members = members_by_month[month]
        retained = []
        cursor = month
        while cursor <= end:
            moment = min(_end_moment(_month_end(cursor), tz, now), last_moment)
            retained.append(sum(index.member_state(m, moment).paying for m in members))
            cursor = _month_end(cursor) + timedelta(days=1)
        cohorts.append(Cohort(_month_key(month), len(members), tuple(retained)))
    return tuple(cohorts)
