"""join_page_view: everything the join, success and manage pages show, gathered once for the HTTP edge."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.billing import PriceInfo, SubscriptionRecord
from ..domain.errors import MembergateError
from ..domain.i18n import choose_locale
from ..domain.model import EntitlementState, Member, Plan, PlanKind, Platform, PriceLine
from ..domain.seats import seats_left
from ..domain.tiers import are_tiers, switch_price
from ..ports import BillingGateway, Stores
from .checkout import trial_used


# The identity step kinds the member completes on the page before the pay button is shown.
BEFORE_PAYMENT = ("oauth", "bot", "message")


@dataclass(frozen=True)
class IdentityStep:
    """How the member proves who they are on one platform the plan grants.

    Discord binds before payment (OAuth2, ``connect_url``); Telegram too, through its bot (``kind``
    "bot": the t.me deep link binds the account and the bot sends the pay link); WhatsApp through a
    message (``kind`` "message": the wa.me link sends a one-time code from the member's phone, the
    reply carries the pay link). ``kind`` "invite" says an invite comes after payment."""

    platform: str
    # "oauth", "bot" and "message" bind before paying; "invite" (personal invite after paying), "manual"
    kind: str
    bound_as: str | None = None  # the account shown to the member: a handle, never a raw id
    bound: bool = False
    connect_url: str | None = None
    external_id: str | None = None  # for machines only (the page's data attribute), never shown


@dataclass(frozen=True)
class PlaceView:
    """One place (server, group) the plan opens, and where the member's access there stands."""

    community_id: str
    name: str
    platform: str
    state: str | None = None  # AccessState value; the page says it in words
    invite_url: str | None = None


@dataclass(frozen=True)
class TierOption:
    """Another tier of the offer the member holds, as the manage page offers it (a switch, never a 2nd subscription)."""

    plan_id: str
    name: str
    prices: tuple[PriceInfo, ...]  # only those a switch can land on: the member's subscription currency
    sold_out: bool = False  # a seats-limited tier with no seat left for this member
    checked: str | None = None  # the price pre-checked: the one nearest what the member pays now
    missing_currency: str | None = None  # the tier has no price in this currency (the member's): no switch


@dataclass(frozen=True)
class JoinPageView:
    plan_id: str
    plan_name: str
    description: str
    locale: str
    prices: tuple[PriceInfo, ...]
    prices_unavailable: bool
    places: tuple[PlaceView, ...]
    identity_steps: tuple[IdentityStep, ...]
    bound: bool  # every step that must come before payment is done
    plan_access_state: str | None = None  # the member's entitlement to this plan: active or grace
    plan_access_until: int | None = None
    has_billing: bool = False
    switch_from: str | None = None
    paid: bool = False
    switched: bool = False
    manage: bool = False
    community_locale: str = "en"
    relink_proof: str | None = None  # the manage page's relink forms (this session only)
    relinked: str | None = None  # "1" after a relink moved the membership, "same" when nothing moved
    terms_url: str = ""  # the creator's terms and privacy policy (deployment settings), beside the pay button
    privacy_url: str = ""
    redeemed: bool = False  # back from an access code accepted (POST /join/{plan}/code)
    seats_left: int | None = None  # a plan with seats: how many are still for sale (None: no limit)
    trial_days: int | None = None  # the plan's free trial, for a member who may have it
    trial_used: bool = False  # the plan has a trial, but this member (account or email) already had one
    other_tiers: tuple[TierOption, ...] = ()  # the manage page of a member holding this plan: where they can switch
    # A downgrade of this plan's subscription waiting for the period end: (the tier's name, when).
    pending_switch: tuple[str, int] | None = None

    @property
    def discord(self) -> IdentityStep | None:
        return next((s for s in self.identity_steps if s.platform == Platform.DISCORD.value), None)

    @property
    def telegram(self) -> IdentityStep | None:
        return next((s for s in self.identity_steps if s.platform == Platform.TELEGRAM.value), None)

    @property
    def whatsapp(self) -> IdentityStep | None:
        return next((s for s in self.identity_steps if s.platform == Platform.WHATSAPP.value), None)


def join_page_view(
    plan_id: str,
    *,
    stores: Stores,
    billing: BillingGateway | None,
    member_id: str | None,
    lang: str | None = None,
    accept_language: str | None = None,
    paid: bool = False,
    switched: bool = False,
    manage: bool = False,
    redeemed: bool = False,
) -> JoinPageView | None:
    """The page's view model, or None when the plan does not exist."""
    plan = stores.catalog.get_plan(plan_id)
    if plan is None:
        return None
    communities = [c for c in (stores.catalog.get_community(g.community_id) for g in plan.grants) if c]
    community_locale = communities[0].locale if communities else "en"
    member = stores.members.get(member_id) if member_id else None
    access = {a.community_id: a for a in stores.access.for_member(member.id)} if member else {}
    entitlements = stores.entitlements.for_member(member.id) if member else []
    held = [e for e in entitlements if e.plan_id == plan.id and e.state.gives_access]
    held.sort(key=lambda e: e.state is not EntitlementState.GRACE)  # grace first: the member must act
    offer = {c.id for c in communities}
    other = next((e.plan_id for e in entitlements
                  if e.plan_id != plan.id and e.community_id in offer and e.state.gives_access), None)
    other_plan = stores.catalog.get_plan(other) if other else None
    places = tuple(
        PlaceView(c.id, c.name, c.platform.value, access[c.id].state.value if c.id in access else None)
        for c in communities
    )
    steps = tuple(_identity_step(platform, member, plan.id) for platform in dict.fromkeys(c.platform for c in communities))
    prices, unavailable = _prices(billing, plan.stripe_price_ids)
    tiers = _other_tiers(stores, billing, plan, member) if manage and held and member else ()
    pending = _pending_switch(stores, plan, member) if manage and held and member else None
    return JoinPageView(
        plan_id=plan.id,
        plan_name=plan.name,
        description=plan.description,
        locale=choose_locale(lang, community_locale, accept_language),
        prices=prices,
        prices_unavailable=unavailable,
        places=places,
        identity_steps=steps,
        bound=all(s.bound for s in steps if s.kind in BEFORE_PAYMENT),
        plan_access_state=held[0].state.value if held else None,
        plan_access_until=held[0].until if held else None,
        has_billing=bool(member and member.stripe_customer_id),
        switch_from=other_plan.name if other_plan else None,
        paid=paid,
        switched=switched,
        manage=manage,
        community_locale=community_locale,
        redeemed=redeemed,
        seats_left=seats_left(plan.seats, stores.seats.taken(plan.id)) if plan.seats and stores.seats else None,
        trial_days=plan.trial_days if plan.kind is PlanKind.SUBSCRIPTION else None,
        trial_used=trial_used(stores, plan, member),
        other_tiers=tiers,
        pending_switch=pending,
    )


def _pending_switch(stores: Stores, plan: Plan, member: Member) -> tuple[str, int] | None:
    """The downgrade waiting on the member's subscription to ``plan``, from Membergate's record (no Stripe call)."""
    for record in stores.subscriptions.for_member(member.id):
        pending = record.pending_change
        if record.plan_id == plan.id and pending is not None:
            target = stores.catalog.get_plan(pending.plan_id)
            return (target.name if target else pending.plan_id, pending.at)
    return None


def _other_tiers(stores: Stores, billing: BillingGateway | None, plan: Plan, member: Member) -> tuple[TierOption, ...]:
    """The offer's other subscription tiers still sold, each with its prices (one Stripe read for all).

    Passes and lifetime access are bought beside a subscription, not switched to, so they are not
    listed. A sold-out tier is listed as such unless the member already holds one of its seats.
    Stripe cannot change a subscription's currency: only the prices in the member's currency are
    offered, the one nearest their interval pre-checked (the switch's own default); a tier with
    none is listed without a button (``missing_currency``). What the member pays is unknown (no
    snapshot yet): every price, as before; price_for_switch still refuses a mismatch."""
    if plan.kind.one_time:
        return ()
    others = [p for p in stores.catalog.list_plans()
              if p.id != plan.id and p.archived_at is None and not p.kind.one_time and are_tiers(p, plan)]
    if not others:
        return ()
    prices, _ = _prices(billing, tuple(price for p in others for price in p.stripe_price_ids))
    by_id = {price.id: price for price in prices}
    current = _current_line(stores.subscriptions.for_member(member.id), plan.id)
    return tuple(
        _tier_option(p, tuple(by_id[i] for i in p.stripe_price_ids if i in by_id), current, _sold_out_for(stores, p, member))
        for p in sorted(others, key=lambda p: p.name)
    )


def _tier_option(plan: Plan, prices: tuple[PriceInfo, ...], current: PriceLine | None, sold_out: bool) -> TierOption:
    if current is None or not prices:
        return TierOption(plan.id, plan.name, prices, sold_out)
    fitting = tuple(p for p in prices if p.currency.lower() == current.currency.lower() and p.type == "recurring")
    chosen = switch_price(current, fitting)
    if chosen is None:
        return TierOption(plan.id, plan.name, (), sold_out, missing_currency=current.currency.upper())
    return TierOption(plan.id, plan.name, fitting, sold_out, checked=chosen.id)


def _current_line(records: list[SubscriptionRecord], plan_id: str) -> PriceLine | None:
    """What the member pays now for ``plan_id``: the first item of its newest live subscription's snapshot."""
    held = [r.latest for r in records if r.plan_id == plan_id and r.latest is not None and r.latest.lines]
    if not held:
        return None
    newest = max(held, key=lambda s: (s.status not in ("canceled", "incomplete_expired"), s.created))
    return newest.lines[0]


def _sold_out_for(stores: Stores, plan: Plan, member: Member) -> bool:
    if plan.seats is None or stores.seats is None:
        return False
    return seats_left(plan.seats, stores.seats.taken(plan.id)) == 0 and not stores.seats.held_by(plan.id, member.id)


def _identity_step(platform: Platform, member: Member | None, plan_id: str) -> IdentityStep:
    bound_id = member.identity(platform) if member else None
    handle = member.handle(platform) if member else None
    if platform is Platform.DISCORD:
        # Without a handle (bound before handles were kept) the page says "your Discord account", never the id.
        return IdentityStep(platform.value, "oauth", bound=bound_id is not None, external_id=bound_id, bound_as=handle,
                            connect_url=f"/auth/discord/start?plan_id={plan_id}")
    if platform is Platform.TELEGRAM:
        # The bot binds the account (/start from the deep link), then sends the pay link that signs the
        # member in here; the invite link comes from the bot after payment.
        return IdentityStep(platform.value, "bot", bound=bound_id is not None, external_id=bound_id, bound_as=handle,
                            connect_url=f"/telegram/start/{plan_id}")
    if platform is Platform.WHATSAPP:
        # The member sends a one-time code from their phone (wa.me link); the reply carries the pay link.
        return IdentityStep(platform.value, "message", bound=bound_id is not None, external_id=bound_id,
                            bound_as=masked_phone(bound_id) if bound_id else None,
                            connect_url=f"/whatsapp/start/{plan_id}")
    return IdentityStep(platform.value, "invite", bound=bound_id is not None)


def masked_phone(phone: str) -> str:
    """A phone as the page shows it: enough for the member to recognise, not the whole number."""
    return f"{phone[:3]}•••{phone[-3:]}" if len(phone) > 7 else "•••"


def _prices(billing: BillingGateway | None, price_ids: tuple[str, ...]) -> tuple[tuple[PriceInfo, ...], bool]:
    """The plan's prices as Stripe has them; an outage leaves the page usable (Checkout shows the price)."""
    if billing is None or not price_ids:
        return (), bool(price_ids)
    try:
        return tuple(billing.describe_prices(list(price_ids))), False
    except MembergateError:
        return (), True
