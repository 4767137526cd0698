"""Reconciliation as pure functions: where Stripe, Membergate and a community's members disagree.

Three views are compared: Stripe's subscriptions and its events whose delivery failed, what
Membergate stores (subscription records, derived entitlements, access records), and who is
actually in a community with which roles. The result is a list of ``Drift`` items, each with
what to do about it and whether Membergate does it itself (the creator's ``Policy``: by default
missing access is fixed, extra access only reported). No I/O and no clock: ``now`` is passed in.

A community's members are compared one *window* at a time (a page of a listing sorted by user
id, or the users checked one by one), so a run can stop after any page and resume later: a
known member is judged only when the window covers their account.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# Stripe statuses that mean "the customer is paying (or trialing) for access" (docs: Subscription.status).
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})
# How far back Stripe keeps events one can list (docs: api/events: "the last 30 days").
EVENTS_LOOKBACK_SECONDS = 30 * 86_400
# A report keeps at most this many items per kind (the counts stay exact): one stored item is
# at most 400 KB in DynamoDB, and a creator reads the first ones first.
MAX_ITEMS_PER_KIND = 100


class DriftKind(str, Enum):
    PAID_WITHOUT_ACCESS = "paid_without_access"  # entitled, but not in the place or missing a role
    ACCESS_WITHOUT_PAYMENT = "access_without_payment"  # a known member not entitled, still holding access
    UNKNOWN_MEMBER = "unknown_member"  # holds a managed role, and no Membergate member has this account
    UNKNOWN_SUBSCRIPTION = "unknown_subscription"  # a Stripe subscription Membergate has no record of
    MISSED_EVENT = "missed_event"  # Stripe could not deliver an event, and the ledger never saw it
    PLAN_MISMATCH = "plan_mismatch"  # a known live subscription billing another plan than the one Membergate holds
    DUPLICATE_SUBSCRIPTIONS = "duplicate_subscriptions"  # one member, two live subscriptions of one offer
    GRANTED_WITHOUT_ACCESS = "granted_without_access"  # entitled by a free grant only (migration, manual, code)


@dataclass(frozen=True)
class Policy:
    """What the creator lets reconciliation change by itself (the rest is only reported)."""

    fix_missing_access: bool = True
    remove_extra_access: bool = False


class FixKind(str, Enum):
    CONVERGE = "converge"  # re-queue access work for (member, community) through the dispatcher
    REVOKE_ROLES = "revoke_roles"  # take managed roles from an account no member owns


@dataclass(frozen=True)
class Fix:
    kind: FixKind
    community_id: str
    member_id: str | None = None
    user: str | None = None
    roles: tuple[str, ...] = ()
    # What the platform showed, so the dispatcher need not read the member again.
    present: bool | None = None
    held: tuple[str, ...] = ()


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    fix: str  # what to do about it, in the creator's words
    auto_fixed: bool  # whether this run queued the fix itself
    community_id: str | None = None
    member_id: str | None = None
    user: str | None = None  # the account on the community's platform
    subscription_id: str | None = None
    customer_id: str | None = None
    event_id: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "fix": self.fix, "auto_fixed": self.auto_fixed}
        for name in ("community_id", "member_id", "user", "subscription_id", "customer_id", "event_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Drift:
        return cls(
            DriftKind(data["kind"]),
            str(data.get("fix", "")),
            bool(data.get("auto_fixed")),
            **{k: data.get(k) for k in ("community_id", "member_id", "user", "subscription_id", "customer_id",
                                          "event_id")},
            detail=str(data.get("detail", "")),
        )


# --- a community's members ------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownAccount:
    """Membergate's view of one member's account in one community."""

    member_id: str
    user: str  # external id on the community's platform
    entitled: bool
    desired_roles: tuple[str, ...] = ()  # the roles the entitlements give (empty on role-less platforms)
    refusal: str = ""  # a remembered platform refusal (fixing it needs the creator first)
    reason: str = ""  # the access record's reason, for the report


@dataclass(frozen=True)
class PlaceMember:
    """Someone the platform shows in the place, with their roles."""

    user: str
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Window:
    """Which accounts one comparison covers.

    A page of a listing sorted by numeric user id covers ``after < id <= through`` (``through``
    None: to the end); users checked one by one are covered by ``only``."""

    after: int = -1
    through: int | None = None
    only: frozenset[str] | None = None

    def covers(self, user: str) -> bool:
        if self.only is not None:
            return user in self.only
        if not user.isdigit():
            return False
        number = int(user)
        return number > self.after and (self.through is None or number <= self.through)

    @classmethod
    def page(cls, after: str, listed: Sequence[PlaceMember], limit: int) -> Window:
        """The window a page of ``limit`` read after ``after`` covers: a short page is the last one."""
        start = int(after) if after.isdigit() else -1
        if len(listed) < limit:
            return cls(start, None)
        return cls(start, max(int(m.user) for m in listed if m.user.isdigit()))


@dataclass(frozen=True)
class PlaceComparison:
    drifts: tuple[Drift, ...]
    fixes: tuple[Fix, ...]


def compare_place(
    community_id: str,
    known: Iterable[KnownAccount],
    listed: Iterable[PlaceMember],
    window: Window,
    managed_roles: Collection[str],
    policy: Policy,
    now: int,
    *,
    roles_based: bool = True,
    can_list: bool = True,
) -> PlaceComparison:
    """Compare the members Membergate knows with who the platform shows, within ``window``.

    ``roles_based``: access is a role (Discord), else presence itself is access (Telegram).
    ``can_list``: the platform listed the place (strangers can be seen), else only known accounts
    were checked one by one. Role changes are only ever asked for roles that differ.
    """
    del now  # part of the contract: time-dependent rules belong here; none needs it yet
    managed = frozenset(managed_roles)
    shown = {m.user: m for m in listed if window.covers(m.user)}
    drifts: list[Drift] = []
    fixes: list[Fix] = []
    known_users: set[str] = set()
    for account in sorted(known, key=lambda a: (a.user, a.member_id)):
        if not window.covers(account.user):
            continue
        known_users.add(account.user)
        member = shown.get(account.user)
        present = member is not None
        held = frozenset(member.roles) & managed if member is not None else frozenset()
        if account.entitled:
            missing = tuple(r for r in account.desired_roles if r not in held) if roles_based else ()
            if present and not missing:
                continue
            detail = "not in the place" if not present else "missing role(s) " + ", ".join(missing)
            drifts.append(_paid_without_access(community_id, account, detail, policy))
            if policy.fix_missing_access and not account.refusal:
                fixes.append(Fix(FixKind.CONVERGE, community_id, account.member_id, account.user,
                                 present=present, held=tuple(sorted(member.roles)) if member else ()))
            continue
        extra = bool(held) if roles_based else present
        if not extra:
            continue
        detail = ("holds " + ", ".join(sorted(held))) if roles_based else "is in the place"
        auto = policy.remove_extra_access and not account.refusal
        drifts.append(Drift(
            DriftKind.ACCESS_WITHOUT_PAYMENT,
            "Membergate removes it (removal allowed by your reconcile policy)" if auto else
            "no live payment or grant gives this access: remove it by hand, give the member a grant, or set "
            "RECONCILE_REMOVE_EXTRA=on to let reconciliation remove it",
            auto, community_id, account.member_id, account.user, detail=detail,
        ))
        if auto:
            fixes.append(Fix(FixKind.CONVERGE, community_id, account.member_id, account.user,
                             present=present, held=tuple(sorted(member.roles)) if member else ()))
    if can_list and roles_based:
        for user, member in sorted(shown.items()):
            held = frozenset(member.roles) & managed
            if user in known_users or not held:
                continue
            auto = policy.remove_extra_access
            drifts.append(Drift(
                DriftKind.UNKNOWN_MEMBER,
                "Membergate removed the role(s) (removal allowed by your reconcile policy)" if auto else
                "no Membergate member owns this account: if they paid, send them a claim link "
                "(POST /admin/members/{id}/claim-link); otherwise remove the role by hand, or set "
                "RECONCILE_REMOVE_EXTRA=on",
                auto, community_id, None, user, detail="holds " + ", ".join(sorted(held)),
            ))
            if auto:
                fixes.append(Fix(FixKind.REVOKE_ROLES, community_id, None, user, roles=tuple(sorted(held))))
    return PlaceComparison(tuple(drifts), tuple(fixes))


def _paid_without_access(community_id: str, account: KnownAccount, detail: str, policy: Policy) -> Drift:
    if account.refusal:
        fix = (f"access failed before ({account.refusal}): {account.reason or 'see the member'}; fix that, then "
               "POST /admin/members/{id}/resync")
        return Drift(DriftKind.PAID_WITHOUT_ACCESS, fix, False, community_id, account.member_id, account.user,
                     detail=detail)
    if policy.fix_missing_access:
        return Drift(DriftKind.PAID_WITHOUT_ACCESS, "Membergate queued the member's access again", True,
                     community_id, account.member_id, account.user, detail=detail)
    return Drift(DriftKind.PAID_WITHOUT_ACCESS,
                 "POST /admin/members/{id}/resync gives the access back (or set RECONCILE_FIX_MISSING=on)", False,
                 community_id, account.member_id, account.user, detail=detail)


# --- billing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StripeSubscription:
    id: str
    customer: str
    status: str
    created: int
    price_ids: tuple[str, ...] = ()  # its items' prices, as Stripe bills them now


@dataclass(frozen=True)
class HeldSubscription:
    """Membergate's record of one of a member's subscriptions: the plan it holds, and whether it is live."""

    id: str
    plan_id: str
    live: bool


@dataclass(frozen=True)
class LiveComparison:
    drifts: tuple[Drift, ...]
    read_back: tuple[str, ...]  # subscriptions to read back from Stripe and merge (plan_mismatch, fix allowed)


def compare_live_subscriptions(
    subscriptions: Iterable[StripeSubscription],
    customer_members: Mapping[str, str | None],
    held: Mapping[str, Sequence[HeldSubscription]],
    plan_of_price: Mapping[str, str],
    offers: Mapping[str, frozenset[str]],
    policy: Policy,
) -> LiveComparison:
    """Stripe's live subscriptions (one page) against the records Membergate holds for their members.

    ``plan_mismatch``: Stripe bills a price of another plan than the record's (a lost or mis-ordered
    update); fixed by reading the subscription back when the creator lets missing access be fixed.
    ``duplicate_subscriptions``: the member has another live subscription (Stripe's on this page or
    Membergate's record) of a plan sharing a community; always reported, never cancelled (which to
    end is the member's and creator's call). A pair is reported under its smaller id, so the
    caller drops a pair it already reported from another page. ``held`` maps a member to their
    records; ``offers`` a plan to the communities it grants."""
    drifts: list[Drift] = []
    read_back: list[str] = []
    listed = sorted((s for s in subscriptions if s.status in LIVE_STATUSES), key=lambda s: s.id)
    for sub in listed:
        member = customer_members.get(sub.customer)
        if not member:
            continue  # unknown customers are compare_billing's unknown_subscription
        records = {r.id: r for r in held.get(member, ())}
        record = records.get(sub.id)
        billed = next((plan_of_price[p] for p in sub.price_ids if p in plan_of_price), None)
        if record is not None and record.plan_id and billed and billed != record.plan_id:
            fix = ("Membergate read the subscription back from Stripe and moved the member to the plan Stripe bills"
                   if policy.fix_missing_access else
                   "resend the subscription's latest event from the Stripe Dashboard (Developers → Events), or set "
                   "RECONCILE_FIX_MISSING=on to let reconciliation read it back")
            drifts.append(Drift(DriftKind.PLAN_MISMATCH, fix, policy.fix_missing_access, member_id=member,
                                subscription_id=sub.id, customer_id=sub.customer,
                                detail=f"Stripe bills {billed}, Membergate holds {record.plan_id}"))
            if policy.fix_missing_access:
                read_back.append(sub.id)
        plan = billed or (record.plan_id if record is not None else "")
        others = {r.id: r.plan_id for r in records.values() if r.live and r.id != sub.id}
        others.update({o.id: next((plan_of_price[p] for p in o.price_ids if p in plan_of_price), "")
                       for o in listed if o.id != sub.id and customer_members.get(o.customer) == member})
        for other_id, other_plan in sorted(others.items()):
            if other_id < sub.id or not plan or not (offers.get(plan, frozenset()) & offers.get(other_plan, frozenset())):
                continue
            shared = sorted(offers.get(plan, frozenset()) & offers.get(other_plan, frozenset()))
            drifts.append(Drift(
                DriftKind.DUPLICATE_SUBSCRIPTIONS,
                "the member pays twice for one offer: ask them which to keep, then cancel the other in the Stripe "
                "Dashboard (Membergate never cancels one by itself); a switch between tiers keeps one subscription",
                False, shared[0], member_id=member, subscription_id=sub.id, customer_id=sub.customer,
                detail=f"{sub.id} ({plan}) and {other_id} ({other_plan or 'a price no plan sells'})"))
    return LiveComparison(tuple(drifts), tuple(read_back))


def granted_only(drift: Drift, sources: Collection[str]) -> Drift:
    """A paid_without_access item whose member holds the access by free grants only (``sources``: their
    kinds, e.g. migration) says so: nothing was paid, and the fix is the same."""
    if drift.kind is not DriftKind.PAID_WITHOUT_ACCESS or not sources:
        return drift
    given = " and ".join(f"{s.replace('_', ' ')} grant" for s in sorted(sources))
    detail = f"{drift.detail}; given by a free {given}, not a payment"
    return Drift(DriftKind.GRANTED_WITHOUT_ACCESS, drift.fix, drift.auto_fixed, drift.community_id, drift.member_id,
                 drift.user, drift.subscription_id, drift.customer_id, drift.event_id, detail)


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: int
    pending_webhooks: int = 0


def compare_billing(
    subscriptions: Iterable[StripeSubscription],
    known_subscriptions: Collection[str],
    customer_members: Mapping[str, str | None],
    failed_events: Iterable[StripeEvent],
    ledger_seen: Collection[str],
    now: int,
) -> tuple[Drift, ...]:
    """Stripe's subscriptions Membergate has no record of, and undelivered events it never saw.

    ``known_subscriptions`` are the subscription ids Membergate stores; ``customer_members`` maps
    each listed subscription's customer to its member (None: no member); ``ledger_seen`` the
    event ids the ledger holds. Ended subscriptions Membergate never saw give no access: not drift.
    Events older than Stripe's 30-day window are ignored (Stripe cannot resend them any more).
    """
    drifts: list[Drift] = []
    for sub in sorted(subscriptions, key=lambda s: s.id):
        if sub.id in known_subscriptions or sub.status not in LIVE_STATUSES:
            continue
        member = customer_members.get(sub.customer)
        if member:
            fix = ("Membergate never received this subscription's events: resend its latest event from the Stripe "
                   "Dashboard (Developers → Events), then check the member")
        else:
            fix = ("the customer is not a Membergate member (a subscription made outside Membergate): create the "
                   "member's claim link (POST /admin/members/{id}/claim-link) once their events arrive, or resend "
                   "the subscription's events from the Stripe Dashboard")
        drifts.append(Drift(DriftKind.UNKNOWN_SUBSCRIPTION, fix, False, member_id=member, subscription_id=sub.id,
                            customer_id=sub.customer, detail=f"Stripe status {sub.status}"))
    for event in sorted(failed_events, key=lambda e: (e.created, e.id)):
        if event.id in ledger_seen or event.created < now - EVENTS_LOOKBACK_SECONDS:
            continue
        drifts.append(Drift(
            DriftKind.MISSED_EVENT,
            "Stripe could not deliver this event to Membergate: check the webhook endpoint and its signing "
            "secret, then resend it from the Stripe Dashboard (Developers → Events → Resend)",
            False, event_id=event.id, detail=event.type,
        ))
    return tuple(drifts)


# --- the report -------------------------------------------------------------------------------------


@dataclass
class Report:
    """One reconciliation run: drift found so far, notes on what could not be checked, progress."""

    started_at: int
    finished_at: int | None = None
    drifts: list[Drift] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pages_read: int = 0
    invocations: int = 0

    @property
    def complete(self) -> bool:
        return self.finished_at is not None

    def add(self, drifts: Iterable[Drift]) -> None:
        for drift in drifts:
            kind = drift.kind.value
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if self.counts[kind] <= MAX_ITEMS_PER_KIND:
                self.drifts.append(drift)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "complete": self.complete,
            "counts": {k.value: self.counts.get(k.value, 0) for k in DriftKind},
            "auto_fixed": sum(1 for d in self.drifts if d.auto_fixed),
            "items": [d.to_dict() for d in self.drifts],
            "truncated": any(v > MAX_ITEMS_PER_KIND for v in self.counts.values()),
            "notes": list(self.notes),
            "pages_read": self.pages_read,
            "invocations": self.invocations,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        report = cls(int(data["started_at"]), data.get("finished_at"))
        report.drifts = [Drift.from_dict(d) for d in data.get("items") or ()]
        report.counts = {str(k): int(v) for k, v in (data.get("counts") or {}).items() if v}
        report.notes = [str(n) for n in data.get("notes") or ()]
        report.pages_read = int(data.get("pages_read") or 0)
        report.invocations = int(data.get("invocations") or 0)
        return report
