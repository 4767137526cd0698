"""Time-driven rules: which reminders and notices are due, when grace runs out, when to look again.

Every notice is computed from the stored subscription (its status and current period end), never
from Stripe's ``invoice.upcoming`` (one account-wide lead time), so each plan keeps its own.
"""

from __future__ import annotations

from calendar import monthrange, timegm
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from .billing import ENDED_STATUSES, SubscriptionRecord, grace_ends_at, grant_status, scheduled_end
from .model import EntitlementState, OnGraceEnd, Plan

DAY = 86_400
# The "grace is ending" reminder goes out a day before the end, or halfway for short graces.
MAX_REMINDER_LEAD = DAY
# French consumer law (Code de la consommation, L215-1): a tacitly renewing contract's notice goes
# out at the earliest three months and at the latest one month before the cancellation deadline.
# Membergate sends it at the window's opening; members can cancel up to the renewal itself, so the
# deadline is the renewal. Months are calendar months in the creator's time zone (90 days is not
# three months around February).
LEGAL_NOTICE_EARLIEST_MONTHS = 3
LEGAL_NOTICE_LATEST_MONTHS = 1
# The card-expiry warning has its own lead, so turning renewal notices off never silences it: a
# member whose card lapses unwarned fails the charge, runs out of grace and is removed.
CARD_NOTICE_DAYS = 7
INTERVAL_SECONDS = {"day": DAY, "week": 7 * DAY, "month": 30 * DAY, "year": 365 * DAY}

GRACE_STARTED = "grace_started"
GRACE_ENDING = "grace_ending"
RENEWAL_NOTICE = "renewal_notice"
RENEWAL_LEGAL_NOTICE = "renewal_legal_notice"
TRIAL_ENDING = "trial_ending"
CANCELLATION_RECEIPT = "cancellation_receipt"
UNCANCELLED = "uncancelled"
CARD_EXPIRING = "card_expiring"
# Sent by the access dispatcher, not the sweep: once per (member, community) ever, on first access.
WELCOME = "welcome"


@dataclass(frozen=True)
class Reminder:
    kind: str  # one of the kinds above
    subscription_id: str
    plan_id: str
    period: str  # one message per (member, kind, period)
    grace_ends_at: int | None = None  # grace reminders
    ends_at: int | None = None  # notices: the renewal, trial end or access end they announce
    # A legal renewal notice due only after its window closed (a late sweep, or a yearly
    # subscription begun less than a month before renewal): still sent, and the creator is told.
    late: bool = False


@dataclass(frozen=True)
class CardOnFile:
    """The card a customer's next charge goes to, as the newest Stripe event about it said."""

    payment_method_id: str
    expires_at: int | None  # the first second after the card's expiry month; None: not known yet
    as_of: int  # the event's ``created``
    # The customer's member was erased: nothing about the card is kept, and no later event brings it back.
    erased: bool = False
    # The card's one-trial key (trials.trial_key("card", fingerprint)): the hash only, never the
    # fingerprint, so a trialing subscription seen later still finds the card it was attached with.
    trial_key: str | None = None


def erased_card(now: int) -> CardOnFile:
    """What stays of a card on file once its member is erased: only that it was erased."""
    return CardOnFile("", None, now, erased=True)


def card_expires_at(exp_month: int, exp_year: int) -> int:
    """A card is valid through the last day of its expiry month (UTC here)."""
    year, month = (exp_year + 1, 1) if exp_month == 12 else (exp_year, exp_month + 1)
    return timegm((year, month, 1, 0, 0, 0))


def merge_card(current: CardOnFile | None, seen: CardOnFile) -> CardOnFile:
    """The card on file after an event about ``seen``, whatever order the events arrive in.

    Another card replaces it only when newer (a new default card); news of the same card keeps
    the newest known expiry (a bank's card updater changes it), so an event naming the default
    without its expiry never erases the date an older event gave. Once erased, it stays erased."""
    if current is None or seen.erased:
        return seen
    if current.erased:
        return current
    if seen.payment_method_id != current.payment_method_id:
        if seen.as_of == current.as_of:  # two cards in the same second: the same one whichever came first
            return min(current, seen, key=lambda c: c.payment_method_id)
        return seen if seen.as_of > current.as_of else current
    newer, older = (seen, current) if seen.as_of >= current.as_of else (current, seen)
    expires = newer.expires_at if newer.expires_at is not None else older.expires_at
    key = newer.trial_key if newer.trial_key is not None else older.trial_key
    return CardOnFile(current.payment_method_id, expires, newer.as_of, trial_key=key)


@dataclass(frozen=True)
class EmailOnFile:
    """A member's email, as of the Stripe event that said it (``created``; 0 when no event did, e.g. an import)."""

    email: str
    as_of: int = 0


def merge_email(current: EmailOnFile | None, seen: EmailOnFile) -> EmailOnFile:
    """The email on file after an event saying ``seen``, whatever order the events arrive in.

    Stripe delivers out of order: a late, older customer.updated must not put an old address back.
    The newest event wins; two of the same second keep the same one whichever came first (the
    smaller address), so the result is the same in any order."""
    if current is None or seen.as_of > current.as_of:
        return seen
    if seen.as_of < current.as_of:
        return current
    return min(current, seen, key=lambda e: e.email)


def card_expires_before(card: CardOnFile | None, charge_at: int) -> bool:
    return card is not None and card.expires_at is not None and card.expires_at <= charge_at


@dataclass(frozen=True)
class Cancellation:
    subscription_id: str
    idempotency_key: str


@dataclass(frozen=True)
class LifecycleDecision:
    reminders: tuple[Reminder, ...]
    cancellations: tuple[Cancellation, ...]
    next_due_at: int | None


def reminder_lead(plan: Plan) -> int:
    return min(MAX_REMINDER_LEAD, plan.grace_seconds // 2)


def decide(
    records: list[SubscriptionRecord], plans: dict[str, Plan], now: int, cards: Mapping[str, CardOnFile] | None = None,
    *, time_zone: str = "UTC",
) -> LifecycleDecision:
    """``cards``: the card on file per customer id, when read (the sweep); without it no card
    warning is due, but its time is still scheduled so the sweep comes to look. ``time_zone``: the
    creator's, where the legal notice's calendar months are counted."""
    reminders: list[Reminder] = []
    cancellations: list[Cancellation] = []
    upcoming: list[int] = []
    for record in records:
        plan = plans.get(record.plan_id)
        if plan is None or record.latest is None:
            continue
        status = grant_status(record, plan, now)
        money_back = money_back_cancellation(record, status.reason)
        if money_back is not None:
            cancellations.append(money_back)
            continue
        since = record.past_due_since
        if record.status == "past_due" and since is not None:
            # A late failure's grace runs to its minimum notice, so its grace messages still go out first.
            grace_end = grace_ends_at(record, plan)
            period = f"{record.subscription_id}:{since}"
            if status.state is EntitlementState.GRACE:
                reminders.append(Reminder(GRACE_STARTED, record.subscription_id, plan.id, period, grace_end))
                ending_at = grace_end - reminder_lead(plan)
                if now >= ending_at:
                    reminders.append(Reminder(GRACE_ENDING, record.subscription_id, plan.id, period, grace_end))
                else:
                    upcoming.append(ending_at)
                upcoming.append(grace_end)
            elif (
                status.reason == "grace_expired"
                and plan.on_grace_end is OnGraceEnd.CANCEL
                and record.cancel_requested_at is None
            ):
                cancellations.append(
                    Cancellation(record.subscription_id, f"membergate-grace-end-{record.subscription_id}-{since}")
                )
        elif status.state is EntitlementState.ACTIVE:
            end = scheduled_end(record.latest)
            if end is not None and end > now:
                upcoming.append(end)
            found, times = notices(record, plan, now, (cards or {}).get(record.customer_id), time_zone=time_zone)
            reminders.extend(found)
            upcoming.extend(times)
    future = [t for t in upcoming if t > now]
    return LifecycleDecision(tuple(reminders), tuple(cancellations), min(future) if future else None)


def money_back_cancellation(record: SubscriptionRecord, reason: str) -> Cancellation | None:
    """A subscription whose last payment came back (refund, lost dispute) is cancelled at Stripe.

    Its grant has already ended; without this the member would be charged again at renewal for
    access they no longer have. The key names the payment, so retries cancel once.
    """
    if record.cancel_requested_at is not None or record.status in ENDED_STATUSES:
        return None
    if reason == "refunded" and record.refunded_payment_at is not None:
        return Cancellation(record.subscription_id,
                            f"membergate-refund-{record.subscription_id}-{record.refunded_payment_at}")
    if reason == "dispute" and record.dispute == "lost":
        # An open dispute may still be won (access then comes back): only a lost one cancels.
        return Cancellation(record.subscription_id, f"membergate-dispute-lost-{record.subscription_id}")
    return None


def notice_lead(days: int | None, record: SubscriptionRecord) -> int | None:
    """``days`` ahead, but under the billing interval (a weekly plan cannot be told 7 days ahead)."""
    if not days:
        return None
    lead = days * DAY
    period = billing_period(record)
    if period is not None and lead >= period:
        lead = period // 2
    return lead


def billing_period(record: SubscriptionRecord) -> int | None:
    lines = record.latest.lines if record.latest else ()
    lengths = [INTERVAL_SECONDS[l.interval] * max(l.interval_count, 1) for l in lines if l.interval in INTERVAL_SECONDS]
    return min(lengths) if lengths else None


def renews_tacitly_yearly(record: SubscriptionRecord) -> bool:
    period = billing_period(record)
    return period is not None and period >= 365 * DAY


def months_before(moment: int, months: int, time_zone: str = "UTC") -> int:
    """The same wall-clock time ``months`` calendar months earlier in ``time_zone`` (the day kept,
    or the month's last day: three months before May 31 is February 28 or 29)."""
    zone = ZoneInfo(time_zone)
    local = datetime.fromtimestamp(moment, timezone.utc).astimezone(zone)
    index = local.year * 12 + local.month - 1 - months
    year, month = divmod(index, 12)
    day = min(local.day, monthrange(year, month + 1)[1])
    earlier = local.replace(year=year, month=month + 1, day=day, tzinfo=None).replace(tzinfo=zone)
    return int(earlier.timestamp())


def legal_notice_window(renewal: int, time_zone: str = "UTC") -> tuple[int, int]:
    """When L215-1's notice of a tacit renewal may go out: (3 months before, 1 month before)."""
    return (months_before(renewal, LEGAL_NOTICE_EARLIEST_MONTHS, time_zone),
            months_before(renewal, LEGAL_NOTICE_LATEST_MONTHS, time_zone))


def notices(
    record: SubscriptionRecord, plan: Plan, now: int, card: CardOnFile | None = None, *, time_zone: str = "UTC"
) -> tuple[list[Reminder], list[int]]:
    """Notices about an active or trialing subscription: (due now, times when the next fall due).

    Each is keyed by the period end it announces, so a renewal (a new period end) gives a new
    notice, and the same period never gives two. ``card``: the card on file for the next charge
    (at the period end); if it expires by then the member is warned with the renewal notice."""
    snap = record.latest
    if snap is None or snap.current_period_end is None or snap.current_period_end <= now:
        return [], []
    sub, plan_id = record.subscription_id, plan.id
    end = scheduled_end(snap)
    reminders: list[Reminder] = []
    upcoming: list[int] = []

    def at(kind: str, send_at: int, ends_at: int) -> None:
        if now >= send_at:
            reminders.append(Reminder(kind, sub, plan_id, f"{sub}:{ends_at}", ends_at=ends_at))
        else:
            upcoming.append(send_at)

    if end is not None:
        # Cancelled, access runs to ``end``: the receipt with the exact date, once per end date.
        at(CANCELLATION_RECEIPT, now, end)
        return reminders, upcoming
    period_end = snap.current_period_end
    for cancelled_end in record.cancellation_ends:
        if cancelled_end > now:
            # Cancelled then taken back before the end: the member keeps everything and is told
            # so (the sweep sends it only when the cancellation receipt for that date went out).
            at(UNCANCELLED, now, cancelled_end)
    # The card warning goes CARD_NOTICE_DAYS ahead, or with an earlier renewal notice; it stays on
    # when renewal notices are off (see CARD_NOTICE_DAYS).
    card_lead = notice_lead(max(plan.renewal_notice_days or 0, CARD_NOTICE_DAYS), record)
    if card_lead is not None and (card is None or card_expires_before(card, period_end)):
        send_at = period_end - card_lead
        if card is None:
            if send_at > now:
                upcoming.append(send_at)  # the sweep reads the card then
        else:
            at(CARD_EXPIRING, send_at, period_end)
    if snap.status == "trialing":
        lead = plan.trial_notice_days * DAY if plan.trial_notice_days else None
        if lead is not None:
            at(TRIAL_ENDING, period_end - lead, period_end)
        return reminders, upcoming
    lead = notice_lead(plan.renewal_notice_days, record)
    if lead is not None:
        at(RENEWAL_NOTICE, period_end - lead, period_end)
    if renews_tacitly_yearly(record):
        opens, closes = legal_notice_window(period_end, time_zone)
        if now >= opens:
            reminders.append(Reminder(RENEWAL_LEGAL_NOTICE, sub, plan_id, f"{sub}:{period_end}", ends_at=period_end,
                                      late=now > closes))
        else:
            upcoming.append(opens)
    return reminders, upcoming
