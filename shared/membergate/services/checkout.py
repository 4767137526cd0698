"""start_checkout: one Stripe Checkout Session per (member, plan, attempt), never a duplicate."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..domain.billing import PendingChange, SubscriptionRecord
from ..domain.checkout_terms import checkout_terms
from ..domain.errors import (
    AlreadyHeldError,
    ConcurrentUpdateError,
    ConflictError,
    CurrencyMismatchError,
    IdentityRequiredError,
    InvalidRequestError,
    NotFoundError,
    PaymentSettlingError,
    SoldOutError,
    ThrottledError,
    WaiverRequiredError,
)
from ..domain.i18n import choose_locale
from ..domain.model import CheckoutAttempt, Community, Member, Plan, PlanKind, Platform
from ..domain.seats import SeatTake
from ..domain.trials import trial_days_for, trial_keys
from ..domain.tiers import (
    DOWNGRADE_PERIOD_END,
    MoveKind,
    TierMove,
    are_tiers,
    choose_move,
    offer_of,
    switch_price,
    waits_for_period_end,
)
from ..domain.funnel import CHECKOUT
from ..ports import BillingGateway, CheckoutSession, ScheduledChange, Stores
from .funnel import count_step
from .membership import current_view

# A session is reused while it has at least this long to live; after that a new attempt starts,
# so a member coming back never lands on a session that expires under their fingers. Also more
# than Stripe's 30-minute minimum for expires_at, so a retried planned attempt stays valid.
REUSE_MARGIN_SECONDS = 40 * 60
SESSION_LIFETIME_SECONDS = 2 * 3600  # Stripe accepts 30 min to 24 h


@dataclass(frozen=True)
class CheckoutRequest:
    member_id: str
    plan_id: str
    price_id: str | None
    success_url: str
    cancel_url: str
    # The member ticked the join page's waiver box (immediate access, 14-day withdrawal right given up).
    waiver: bool = False


@dataclass(frozen=True)
class CheckoutPolicy:
    """The deployment's part of every checkout (settings): Stripe Tax allowed, the creator's terms and privacy."""

    stripe_tax: bool = False
    terms_url: str = ""
    privacy_url: str = ""


@dataclass(frozen=True)
class TierSwitch:
    """The member moved their live subscription to another tier of the same offer (no new one):
    now, or at the period end (``at``) when it is a downgrade the plan being left makes wait."""

    subscription_id: str
    from_plan_id: str
    to_plan_id: str
    effective: str = "now"  # "now" | "period_end"
    at: int | None = None  # when the new tier starts, for "period_end" (None: now)


def start_checkout(
    request: CheckoutRequest, *, stores: Stores, billing: BillingGateway, now: int,
    policy: CheckoutPolicy = CheckoutPolicy(), pause: Callable[[float], None] = time.sleep,
) -> CheckoutSession | TierSwitch:
    """A Checkout Session for a new subscription, or a switch of the live one to another tier.

    A member never gets a second subscription for one offer (plans granting the same community):
    that would charge them twice. See domain/tiers.py for the rule."""
    plan = stores.catalog.get_plan(request.plan_id)
    if plan is None:
        raise NotFoundError(f"plan {request.plan_id} does not exist")
    if plan.archived_at is not None:
        raise ConflictError(f"{plan.name} is no longer sold; ask the creator for the current offer")
    price_id = request.price_id or plan.stripe_price_ids[0]
    if price_id not in plan.stripe_price_ids:
        raise InvalidRequestError(f"price {price_id} is not sold by plan {plan.id}", field="price_id")
    member = stores.members.get(request.member_id)
    if member is None:
        raise NotFoundError(f"member {request.member_id} does not exist")
    view = current_view(stores, member.id, now)
    if plan.kind is PlanKind.LIFETIME and any(
        e.plan_id == plan.id and e.state.gives_access for e in view.entitlements
    ):
        raise ConflictError(f"you already have {plan.name} for life; nothing more to pay")
    # Passes and lifetime access are bought, not switched to: only subscriptions change tier.
    move = choose_move(plan, view.records, view.plans, now) if not plan.kind.one_time else TierMove(MoveKind.NEW)
    if move.kind is MoveKind.SAME and move.subscription_id:
        held = next(r for r in view.records if r.subscription_id == move.subscription_id)
        if held.pending_change is not None:
            # Picking the tier they are on while a downgrade waits: they keep it (the change is undone).
            return keep_current_tier(stores, billing, held, now)
    if move.kind is MoveKind.SAME:
        raise AlreadyHeldError(
            f"you already have {plan.name}; to change your card, see invoices or cancel, use "
            "\"Manage billing\" on the join page", plan_name=plan.name,
        )
    if move.kind is MoveKind.SETTLING:
        raise PaymentSettlingError(
            "your last payment for this community is still being confirmed by your bank; once it is, "
            "come back to this page to change your plan"
        )
    # Every platform the plan grants a place on needs the member's account there (Discord when
    # the plan's places cannot be read).
    places = [stores.catalog.get_community(g.community_id) for g in plan.grants]
    needed = {c.platform for c in places if c is not None} or {Platform.DISCORD}
    if Platform.DISCORD in needed and not member.identity(Platform.DISCORD):
        raise IdentityRequiredError(
            "connect your Discord account first, so your access goes to the right account"
        )
    if Platform.TELEGRAM in needed and not member.identity(Platform.TELEGRAM):
        raise IdentityRequiredError(
            "start our Telegram bot first (the 'Continue with Telegram' link on the join page), so your access "
            "goes to the right Telegram account"
        )
    if Platform.WHATSAPP in needed and not member.identity(Platform.WHATSAPP):
        raise IdentityRequiredError(
            "send the join code from your WhatsApp first (the 'Continue with WhatsApp' link on the join page), so "
            "your access goes to the right number"
        )
    if move.kind is MoveKind.SWITCH and move.subscription_id and move.from_plan_id:
        price_id = price_for_switch(billing, plan, move, view.records, request.price_id)
        return switch_subscription(stores, billing, member.id, plan, price_id, move, view.records, now)
    if not policy.terms_url and not request.waiver:
        # Without TermsUrl Stripe shows no box to tick: the join page's box is the member's express
        # consent, so no session is made without it (a tier switch opens no new purchase).
        raise WaiverRequiredError(
            "tick the box saying your access starts at once and you give up your 14-day right of "
            "withdrawal, then press the pay button again"
        )
    # A seat is held before anything is made at Stripe (a sold-out plan creates no customer), and
    # given back if no session comes of it.
    trial = offered_trial(stores, plan, member)
    fresh_seat = _take_seat(stores, plan, member.id, now)
    try:
        with _checkout_lease(stores, member.id, plan, now, pause):
            session, previous_session = _open_session(
                stores, billing, request, member, plan, price_id, places, now, policy, trial
            )
    except Exception:
        if fresh_seat and stores.seats is not None:
            stores.seats.release(plan.id, member.id, None)  # never created: the seat goes back
        raise
    if plan.seats is not None and stores.seats is not None:
        stores.seats.attach(plan.id, member.id, session.id, previous_session)
    return session


def price_for_switch(
    billing: BillingGateway, plan: Plan, move: TierMove, records: Sequence[SubscriptionRecord], named: str | None,
) -> str:
    """The target tier's price a switch moves the live subscription to: the one named, else the one
    in the subscription's currency and nearest its interval (domain/tiers.py::switch_price).

    Stripe cannot change a subscription's currency, so a price in another currency, named or not,
    is refused here with what to do rather than by Stripe mid-switch."""
    record = next((r for r in records if r.subscription_id == move.subscription_id), None)
    lines = record.latest.lines if record is not None and record.latest is not None else ()
    if not lines:  # nothing known of what the member pays: the plan's order decides, as before
        return named or plan.stripe_price_ids[0]
    current = lines[0]
    offered = billing.describe_prices(list(plan.stripe_price_ids))
    currency = current.currency.upper()
    if named is not None:
        info = next((p for p in offered if p.id == named), None)
        if info is not None and info.currency.lower() != current.currency.lower():
            raise CurrencyMismatchError(
                f"price {named} of {plan.name} is in {info.currency.upper()}, but this subscription is billed in "
                f"{currency} and Stripe cannot change a subscription's currency: pick a {currency} price of "
                f"{plan.name}, or cancel and subscribe to {plan.name} anew once the current period ends",
                plan_name=plan.name, currency=currency,
                has_price=any(p.currency.lower() == current.currency.lower() for p in offered))
        return named
    chosen = switch_price(current, offered)
    if chosen is None and len(offered) < len(plan.stripe_price_ids):
        # Stripe did not describe every price: refuse only on what is known, let Stripe judge the rest.
        return next(p for p in plan.stripe_price_ids if p not in {o.id for o in offered})
    if chosen is None:
        raise CurrencyMismatchError(
            f"{plan.name} has no {currency} price, and this subscription is billed in {currency} (Stripe cannot "
            f"change a subscription's currency): the creator can add a {currency} price to {plan.name} "
            f"(PATCH /admin/plans/{plan.id}), or the member cancels and subscribes to it anew once the current period ends",
            plan_name=plan.name, currency=currency, has_price=False)
    return chosen.id


def switch_subscription(
    stores: Stores, billing: BillingGateway, member_id: str, plan: Plan, price_id: str, move: TierMove,
    records: Sequence[SubscriptionRecord], now: int,
) -> TierSwitch:
    """Move the member's live subscription (``move``, a SWITCH) onto ``plan``'s price: the same Stripe
    subscription, never a second one. Shared by the join/manage pages and the admin API.

    Immediate and prorated, except a downgrade the plan being left makes wait (Plan.downgrade,
    domain/tiers.py::waits_for_period_end): then Stripe schedules the new price for the period end
    and Membergate records the pending change; access follows the price when Stripe applies it."""
    if move.kind is not MoveKind.SWITCH or move.subscription_id is None or move.from_plan_id is None:
        raise ValueError(f"not a switch: {move}")
    record = next(r for r in records if r.subscription_id == move.subscription_id)
    # Keyed on the newest snapshot: a double click switches once, a later switch back is new.
    version = record.latest.event_id if record.latest else "none"
    key = f"membergate-switch-{move.subscription_id}-{plan.id}-{price_id}-{version}"
    pending = record.pending_change
    later = _waits_for_period_end(stores, billing, move.from_plan_id, record, price_id)
    # A seats-limited tier is entered by a switch as by a checkout: the seat is taken first (sold
    # out: the same 409), given back if Stripe refuses the switch, and once switched it waits on
    # the subscription id instead of a session, so it is paid for good (never a stale hold, and
    # no checkout.session.expired can release it).
    fresh_seat = _take_seat(stores, plan, member_id, now)
    scheduled: ScheduledChange | None = None
    try:
        if later:
            scheduled = billing.schedule_price_change(
                subscription_id=move.subscription_id, price_id=price_id, member_id=member_id, plan_id=plan.id,
                idempotency_key=key,
            )
        else:
            billing.switch_subscription_price(
                subscription_id=move.subscription_id,
                price_id=price_id,
                member_id=member_id,
                plan_id=plan.id,
                idempotency_key=key,
            )
            if pending is not None:
                # Released after the switch, not before: both updates then carry the new price, so
                # whichever of the two same-second events ranks last, the access follows the new tier.
                billing.release_schedule(subscription_id=move.subscription_id, idempotency_key=f"{key}-release")
    except Exception:
        if fresh_seat and stores.seats is not None:
            stores.seats.release(plan.id, member_id, None)
        raise
    if plan.seats is not None and stores.seats is not None:
        # Even a hold still waiting on an older session of this tier (one another tier's checkout
        # expired a moment ago): the subscription pays for it now, that session's expiry must not free it.
        stores.seats.keep(plan.id, member_id, move.subscription_id)
    if scheduled is not None:
        # A crash before this line leaves Stripe's schedule without Membergate's record: the change
        # still happens at the period end (access follows the price); the pages just do not announce
        # it until the member or creator repeats the switch, which finds the same schedule (same keys).
        _record_pending(stores, record, PendingChange(plan.id, price_id, scheduled.at, scheduled.schedule_id, now))
        return TierSwitch(move.subscription_id, move.from_plan_id, plan.id, "period_end", scheduled.at)
    if pending is not None:
        _record_pending(stores, record, None)
    return TierSwitch(move.subscription_id, move.from_plan_id, plan.id)


def keep_current_tier(
    stores: Stores, billing: BillingGateway, record: SubscriptionRecord, now: int,
) -> TierSwitch:
    """The member (or creator) picks the tier they are on while a downgrade waits: Stripe's schedule is
    released, so the subscription renews on its current price, and the pending change is gone."""
    pending = record.pending_change
    if pending is None:
        raise ValueError(f"nothing pending on {record.subscription_id}")
    billing.release_schedule(subscription_id=record.subscription_id,
                             idempotency_key=f"membergate-keep-{record.subscription_id}-{pending.schedule_id}")
    _record_pending(stores, record, None)
    return TierSwitch(record.subscription_id, record.plan_id, record.plan_id)


def _waits_for_period_end(
    stores: Stores, billing: BillingGateway, from_plan_id: str, record: SubscriptionRecord, price_id: str,
) -> bool:
    leaving = stores.catalog.get_plan(from_plan_id)
    if leaving is None or leaving.downgrade != DOWNGRADE_PERIOD_END:
        return False  # Stripe is not asked for the price when nothing could wait
    current = record.latest.lines[0] if record.latest and record.latest.lines else None
    described = billing.describe_prices([price_id])
    return waits_for_period_end(leaving, current, described[0] if described else None)


def _record_pending(stores: Stores, record: SubscriptionRecord, pending: PendingChange | None) -> None:
    """Store (or clear) the pending change on the subscription's record, re-read on a concurrent write
    (a webhook for the same subscription may be saving it at this moment)."""
    for _ in range(5):
        fresh = stores.subscriptions.get(record.member_id, record.subscription_id)
        if fresh is None or fresh.pending == pending:
            return
        try:
            stores.subscriptions.save(replace(fresh, pending=pending))
            return
        except ConcurrentUpdateError:
            continue
    raise ConcurrentUpdateError(f"subscription {record.subscription_id} kept changing; try again")


def _open_session(
    stores: Stores, billing: BillingGateway, request: CheckoutRequest, member: Member, plan: Plan, price_id: str,
    places: list[Community | None], now: int, policy: CheckoutPolicy, trial_days: int | None,
) -> tuple[CheckoutSession, str | None]:
    """The member's Checkout Session for this plan (reused while it has time left); with the
    session the previous attempt was waiting on, if any."""
    _close_other_tiers(stores, billing, member.id, plan, now)
    customer_id = member.stripe_customer_id
    if customer_id is None:
        # One customer per member, created once: the key makes a concurrent retry return the
        # same customer, and attach_customer keeps whichever was stored first.
        created = billing.create_customer(member.id, idempotency_key=f"membergate-customer-{member.id}")
        customer_id = stores.members.attach_customer(member.id, created).stripe_customer_id or created
    previous = stores.checkouts.get_attempt(member.id, plan.id)
    usable = (
        previous
        if previous is not None and previous.price_id == price_id and previous.expires_at - REUSE_MARGIN_SECONDS > now
        else None
    )
    if usable is not None and usable.session_id and usable.url:
        return CheckoutSession(usable.session_id, usable.url, usable.expires_at), usable.session_id
    if usable is not None:
        # A planned attempt whose Stripe call may or may not have landed: same key, same
        # parameters, so Stripe answers with the session it may already have made.
        attempt = usable
    else:
        attempt = CheckoutAttempt(
            member.id,
            plan.id,
            (previous.attempt + 1) if previous else 1,
            price_id=price_id,
            expires_at=now + SESSION_LIFETIME_SECONDS,
        )
        stores.checkouts.save_attempt(attempt)
        count_step(stores, plan.id, CHECKOUT, now)  # a new attempt; a reused or retried one is not counted
    # In the community's language (not the page's: a retried attempt must send the same parameters).
    place = next((c for c in places if c is not None), None)
    terms = checkout_terms(
        plan.checkout,
        locale=choose_locale(None, place.locale if place else None),
        place=place.name if place else plan.name,
        stripe_tax=policy.stripe_tax,
        terms_url=policy.terms_url,
        privacy_url=policy.privacy_url,
    )
    session = billing.create_checkout_session(
        customer_id=customer_id,
        member_id=member.id,
        plan_id=plan.id,
        price_ids=[price_id],
        success_url=request.success_url,
        cancel_url=request.cancel_url,
        expires_at=attempt.expires_at,
        idempotency_key=f"membergate-checkout-{member.id}-{plan.id}-{attempt.attempt}",
        mode="payment" if plan.kind.one_time else "subscription",
        terms=terms,
        trial_days=trial_days,
    )
    stores.checkouts.save_attempt(replace(attempt, session_id=session.id, url=session.url, expires_at=session.expires_at))
    return session, previous.session_id if previous else None


def trial_used(stores: Stores, plan: Plan, member: Member | None) -> bool:
    """Whether the plan has a trial this member may not have: one of their chat accounts or their
    email (when known) already had one. Their card is checked when the trial starts (processor)."""
    if not plan.trial_days or plan.kind is not PlanKind.SUBSCRIPTION or member is None or stores.trials is None:
        return False
    email = stores.contacts.email(member.id) if stores.contacts is not None else None
    return stores.trials.used(trial_keys(member.identities, email))


def offered_trial(stores: Stores, plan: Plan, member: Member) -> int | None:
    """The free trial days this checkout gives (None: none)."""
    if not plan.trial_days or plan.kind is not PlanKind.SUBSCRIPTION:
        return None
    return trial_days_for(plan.trial_days, trial_used(stores, plan, member))


def _take_seat(stores: Stores, plan: Plan, member_id: str, now: int) -> bool:
    """Hold one of the plan's seats for this checkout; True when a new seat was taken (given back
    if the session is never created). A member who holds one (an open checkout, or paid) keeps it."""
    if plan.seats is None:
        return False
    if stores.seats is None:
        raise RuntimeError("no seat store wired into Stores")
    taken = stores.seats.take(plan.id, member_id, plan.seats, now)
    if taken is SeatTake.SOLD_OUT:
        raise SoldOutError(
            f"{plan.name} is sold out: all {plan.seats} places are taken. Ask the creator whether places will "
            "open again, or choose another offer"
        )
    return taken is SeatTake.TAKEN


def release_seat(stores: Stores, *, plan_id: str | None, member_id: str | None, session_id: str) -> bool:
    """checkout.session.expired: the seat its hold waited on goes back (a paid session never expires)."""
    if not plan_id or not member_id or stores.seats is None:
        return False
    plan = stores.catalog.get_plan(plan_id)
    if plan is None or plan.seats is None:
        return False
    return stores.seats.release(plan_id, member_id, session_id)


# A lease outlives the request that holds it (the checkout function times out at 15 s), so a live
# request never loses it; a request that died frees it after this long.
CHECKOUT_LEASE_SECONDS = 30
# A second request for the same member and offer (a double click, another tab) waits this long for
# the first to finish before being told to try again.
LEASE_WAIT_SECONDS = 6.0
LEASE_POLL_SECONDS = 0.2


@contextmanager
def _checkout_lease(stores: Stores, member_id: str, plan: Plan, now: int, pause: Callable[[float], None]) -> Iterator[None]:
    """Hold the member's lease on each community of the plan while a Checkout Session is made.

    Why: ``_close_other_tiers`` reads the member's open sessions for the other tiers, then expires
    them. Two tabs starting two tiers at the same moment would both read "nothing open", both get a
    session, and both could be paid: two subscriptions for one offer. The lease (one conditional
    DynamoDB item per (member, community), stores.checkout_locks) makes those requests take turns:
    the second one waits, then finds and expires the first one's session before making its own, so
    at most one session of the offer is open at any moment. A double click on one tier waits too,
    then reuses the first request's session. Simpler than noticing two live subscriptions after
    payment and refunding one: nothing is ever charged twice."""
    locks = stores.checkout_locks
    if locks is None:
        yield
        return
    holder = secrets.token_hex(8)
    held: list[str] = []
    try:
        for community_id in sorted(offer_of(plan)):
            waited = 0.0
            while not locks.acquire(member_id, community_id, holder, now, CHECKOUT_LEASE_SECONDS):
                if waited >= LEASE_WAIT_SECONDS:
                    raise ThrottledError(
                        "another checkout for this community is being prepared (another tab?); wait a few seconds, "
                        "then reload the page and try again", retry_after=5)
                pause(LEASE_POLL_SECONDS)
                waited += LEASE_POLL_SECONDS
            held.append(community_id)
        yield
    finally:
        for community_id in held:
            locks.release(member_id, community_id, holder)


def _close_other_tiers(stores: Stores, billing: BillingGateway, member_id: str, plan: Plan, now: int) -> None:
    """Expire the member's open Checkout Sessions for other tiers of this offer before selling one.

    Two open sessions for two tiers, paid in two tabs, would be two subscriptions. If one of them
    was paid in the meantime, this checkout is refused: the member already has the offer."""
    for other in stores.catalog.list_plans():
        if other.id == plan.id or not are_tiers(other, plan):
            continue
        attempt = stores.checkouts.get_attempt(member_id, other.id)
        if attempt is None or not attempt.session_id or attempt.expires_at <= now:
            continue
        if billing.expire_checkout_session(attempt.session_id) == "complete":
            raise ConflictError(
                f"your payment for {other.name} just went through; reload the page to see your membership"
            )
        stores.checkouts.save_attempt(replace(attempt, session_id=None, url=None, expires_at=0))


# What each throttled action is called in the message a throttled visitor reads.
_THROTTLED_ACTIONS = {"checkout": "checkout attempts", "portal": "billing page requests"}


def check_rate(stores: Stores, client: str, now: int, limit: int, window: int, *, scope: str = "checkout") -> None:
    """Per-client throttle on Stripe session creation (checkout blunts card testing; the portal,
    enumeration of member ids). Each scope counts separately."""
    window_start = now - now % window
    count = stores.sessions.hit(f"{scope}:{client}", window_start, window_start + 2 * window)
    if count > limit:
        raise ThrottledError(
            f"too many {_THROTTLED_ACTIONS.get(scope, 'requests')} from this address; wait a few minutes and try again",
            retry_after=window_start + window - now,
        )

