"""DynamoDB repositories: map PynamoDB items to domain objects both ways, never leak an item."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields, replace
from fractions import Fraction
from typing import Any
from datetime import datetime, timezone

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from ...domain.billing import HistoryPoint, Observation, PendingChange, SubscriptionRecord, SubscriptionSnapshot
from ...domain.consent import CheckoutConsent
from ...domain.errors import ConcurrentUpdateError, ConflictError, NotFoundError
from ...domain.grants import DISPUTE_REVOKE, SOURCE_CHECKOUT, OneTimeGrant
from ...domain.lifecycle import CardOnFile, EmailOnFile
from ...domain.survey import SurveyAnswer, SurveyLink
from ...domain.model import (
    CheckoutOptions,
    AccessRecord,
    AccessState,
    CheckoutAttempt,
    CheckoutGate,
    Community,
    Entitlement,
    EntitlementState,
    Identity,
    LedgerEntry,
    Member,
    MemberOrigin,
    MessageKey,
    MessageRecord,
    MessageStatus,
    OnGraceEnd,
    OnRevoke,
    Plan,
    PlanGrant,
    PlanKind,
    Platform,
    PriceLine,
)
from ...domain.tokens import token_key
from ...ports import ErasureRecord, HeldToken, MemberLink, MemberState, WebSession
from ..intake import (
    LEDGER_DAY_SHARDS,
    LEDGER_RETENTION_SECONDS,
    ledger_day,
    ledger_day_shard,
    ledger_span_partition,
    ledger_span_shard,
)
from .models import (
    DUE_SHARDS,
    AccessItem,
    CheckoutItem,
    ClaimItem,
    CommunityItem,
    CardItem,
    ContactItem,
    MemberLinkItem,
    CounterItem,
    CredentialsItem,
    EntitlementsItem,
    ErasureItem,
    GrantItem,
    LedgerItem,
    LegacyCheckItem,
    LinkItem,
    MemberItem,
    MemberListedItem,
    MemberRefItem,
    MembershipItem,
    MessageItem,
    OAuthStateItem,
    PlaceItem,
    PlanItem,
    PriceItem,
    SessionItem,
    SubscriptionItem,
    SurveyAnswerItem,
    SurveyLinkItem,
)

def _conditional_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


def _get(model, pk: str, sk: str):
    try:
        return model.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None


# --- catalog --------------------------------------------------------------------------------


class DynamoCatalogRepository:
    def add_community(self, community: Community) -> None:
        place_pk = _place_pk(community.platform, community.external_id)
        try:
            PlaceItem(place_pk, "PLACE", community_id=community.id).save(condition=PlaceItem.pk.does_not_exist())
        except PutError as exc:
            if not _conditional_failed(exc):
                raise
            owner = _get(PlaceItem, place_pk, "PLACE")
            raise ConflictError(
                f"this {community.platform.value} place ({community.external_id}) is already registered as community "
                f"{owner.community_id if owner else '?'}; use that community in your plans instead of registering it again"
            ) from None
        try:
            self._save_community(community)
        except Exception:
            PlaceItem(place_pk, "PLACE").delete()
            raise

    def _save_community(self, community: Community) -> None:
        CommunityItem(
            f"COMMUNITY#{community.id}",
            "COMMUNITY",
            gsi1pk="COMMUNITY",
            gsi1sk=community.id,
            community_id=community.id,
            platform=community.platform.value,
            name=community.name,
            external_id=community.external_id,
            role_id=community.role_id,
            on_revoke=community.on_revoke.value,
            locale=community.locale,
            created_at=community.created_at,
            mode=community.mode,
            invite_link=community.invite_link,
        ).save(condition=CommunityItem.pk.does_not_exist())

    def get_community(self, community_id: str) -> Community | None:
        item = _get(CommunityItem, f"COMMUNITY#{community_id}", "COMMUNITY")
        return _community(item) if item else None

    def list_communities(self) -> list[Community]:
        return [_community(i) for i in CommunityItem.by_kind.query("COMMUNITY")]

    def add_plan(self, plan: Plan) -> None:
        claimed: list[str] = []
        try:
            for price_id in plan.stripe_price_ids:
                try:
                    PriceItem(f"PRICE#{price_id}", "PRICE", price_id=price_id, plan_id=plan.id).save(
                        condition=PriceItem.pk.does_not_exist()
                    )
                except PutError as exc:
                    if _conditional_failed(exc):
                        owner = _get(PriceItem, f"PRICE#{price_id}", "PRICE")
                        raise ConflictError(
                            f"price {price_id} is already sold by plan {owner.plan_id if owner else '?'}; "
                            "a price can belong to one plan only"
                        ) from None
                    raise
                claimed.append(price_id)
            PlanItem(
                f"PLAN#{plan.id}",
                "PLAN",
                gsi1pk="PLAN",
                gsi1sk=plan.id,
                plan_id=plan.id,
                name=plan.name,
                price_ids=list(plan.stripe_price_ids),
                grants=[{"community_id": g.community_id, "role_id": g.role_id} for g in plan.grants],
                grace_days=plan.grace_days,
                on_grace_end=plan.on_grace_end.value,
                created_at=plan.created_at,
                plan_kind=plan.kind.value,
                access_days=plan.access_days,
                description=plan.description or None,
                checkout_options=_checkout_options_item(plan.checkout),
                renewal_notice_days=plan.renewal_notice_days,
                trial_notice_days=plan.trial_notice_days,
                notices_set=True,
                welcome_message=plan.welcome_message or None,
                seats=plan.seats,
                trial_days=plan.trial_days,
                dispute_policy=plan.dispute_policy or None,
                downgrade=plan.downgrade if plan.downgrade != "immediate" else None,
            ).save(condition=PlanItem.pk.does_not_exist())
        except Exception:
            for price_id in claimed:
                PriceItem(f"PRICE#{price_id}", "PRICE").delete()
            raise

    def get_plan(self, plan_id: str) -> Plan | None:
        item = _get(PlanItem, f"PLAN#{plan_id}", "PLAN")
        return _plan(item) if item else None

    def list_plans(self) -> list[Plan]:
        return [_plan(i) for i in PlanItem.by_kind.query("PLAN")]

    def plan_for_price(self, price_id: str) -> Plan | None:
        link = _get(PriceItem, f"PRICE#{price_id}", "PRICE")
        return self.get_plan(link.plan_id) if link else None

    def update_plan(self, plan: Plan) -> None:
        # Name, grace, archive and checkout options; prices go through set_plan_prices (they key other items).
        actions = [
            PlanItem.name.set(plan.name),
            PlanItem.grace_days.set(plan.grace_days),
            PlanItem.on_grace_end.set(plan.on_grace_end.value),
        ]
        actions.append(PlanItem.archived_at.set(plan.archived_at) if plan.archived_at is not None else PlanItem.archived_at.remove())
        actions.append(PlanItem.checkout_options.set(_checkout_options_item(plan.checkout)))
        actions += [
            PlanItem.renewal_notice_days.set(plan.renewal_notice_days) if plan.renewal_notice_days is not None
            else PlanItem.renewal_notice_days.remove(),
            PlanItem.trial_notice_days.set(plan.trial_notice_days) if plan.trial_notice_days is not None
            else PlanItem.trial_notice_days.remove(),
            PlanItem.notices_set.set(True),
            PlanItem.welcome_message.set(plan.welcome_message) if plan.welcome_message
            else PlanItem.welcome_message.remove(),
        ]
        actions.append(PlanItem.seats.set(plan.seats) if plan.seats is not None else PlanItem.seats.remove())
        actions.append(PlanItem.trial_days.set(plan.trial_days) if plan.trial_days else PlanItem.trial_days.remove())
        actions.append(PlanItem.dispute_policy.set(plan.dispute_policy) if plan.dispute_policy
                       else PlanItem.dispute_policy.remove())
        actions.append(PlanItem.downgrade.set(plan.downgrade) if plan.downgrade != "immediate"
                       else PlanItem.downgrade.remove())
        PlanItem(f"PLAN#{plan.id}", "PLAN").update(actions=actions, condition=PlanItem.pk.exists())

    def set_plan_prices(self, plan_id: str, price_ids: tuple[str, ...]) -> None:
        # Claim each new price (a price already this plan's is fine); a removed price keeps its
        # link so webhooks of members still paying it find their plan.
        for price_id in price_ids:
            try:
                PriceItem(f"PRICE#{price_id}", "PRICE", price_id=price_id, plan_id=plan_id).save(
                    condition=PriceItem.pk.does_not_exist() | (PriceItem.plan_id == plan_id)
                )
            except PutError as exc:
                if _conditional_failed(exc):
                    owner = _get(PriceItem, f"PRICE#{price_id}", "PRICE")
                    raise ConflictError(
                        f"price {price_id} is already sold by plan {owner.plan_id if owner else '?'}; "
                        "a price can belong to one plan only"
                    ) from None
                raise
        PlanItem(f"PLAN#{plan_id}", "PLAN").update(
            actions=[PlanItem.price_ids.set(list(price_ids))], condition=PlanItem.pk.exists()
        )

    def update_community(self, community: Community) -> None:
        # Only what an edit may change: the place and the role key other items and the members' access.
        archived = community.archived_at
        CommunityItem(f"COMMUNITY#{community.id}", "COMMUNITY").update(
            actions=[
                CommunityItem.name.set(community.name),
                CommunityItem.locale.set(community.locale),
                CommunityItem.on_revoke.set(community.on_revoke.value),
                CommunityItem.archived_at.set(archived) if archived is not None else CommunityItem.archived_at.remove(),
            ],
            condition=CommunityItem.pk.exists(),
        )


def _checkout_options_item(options: CheckoutOptions) -> dict[str, bool]:
    return {f.name: getattr(options, f.name) for f in fields(CheckoutOptions)}


def _checkout_options(stored: Any) -> CheckoutOptions:
    known = {f.name for f in fields(CheckoutOptions)}
    return CheckoutOptions(**{k: bool(v) for k, v in (stored or {}).items() if k in known})



def _place_pk(platform: Platform, external_id: str) -> str:
    return f"PLACE#{platform.value}#{external_id}"


def _community(item: CommunityItem) -> Community:
    return Community(
        id=item.community_id,
        platform=Platform(item.platform),
        name=item.name,
        external_id=item.external_id or item.guild_id or "",
        role_id=item.role_id,
        on_revoke=OnRevoke(item.on_revoke),
        locale=item.locale,
        created_at=int(item.created_at),
        mode=item.mode,
        invite_link=item.invite_link,
        archived_at=int(item.archived_at) if item.archived_at is not None else None,
    )


def _plan(item: PlanItem) -> Plan:
    return Plan(
        id=item.plan_id,
        name=item.name,
        stripe_price_ids=tuple(item.price_ids),
        grants=tuple(PlanGrant(g["community_id"], g.get("role_id")) for g in item.grants),
        grace_days=int(item.grace_days),
        on_grace_end=OnGraceEnd(item.on_grace_end),
        created_at=int(item.created_at),
        kind=PlanKind(item.plan_kind or PlanKind.SUBSCRIPTION.value),
        access_days=int(item.access_days) if item.access_days is not None else None,
        description=item.description or "",
        archived_at=int(item.archived_at) if item.archived_at is not None else None,
        checkout=_checkout_options(item.checkout_options),
        welcome_message=item.welcome_message or "",
        **_notices(item),
        seats=int(item.seats) if item.seats is not None else None,
        trial_days=int(item.trial_days) if item.trial_days is not None else None,
        dispute_policy=item.dispute_policy or "",
        downgrade=item.downgrade or "immediate",
    )


def _notices(item: PlanItem) -> dict[str, Any]:
    """The plan's notice settings; a plan stored before they existed keeps the defaults."""
    found: dict[str, Any] = {}
    if item.notices_set:
        found["renewal_notice_days"] = int(item.renewal_notice_days) if item.renewal_notice_days is not None else None
        found["trial_notice_days"] = int(item.trial_notice_days) if item.trial_notice_days is not None else None
    return found


# --- members --------------------------------------------------------------------------------


class DynamoMemberRepository:
    def get(self, member_id: str) -> Member | None:
        item = _get(MemberItem, _member_pk(member_id), "MEMBER")
        return _member(item) if item else None

    def create(self, member: Member) -> None:
        _member_item(member).save(condition=MemberItem.pk.does_not_exist())
        _listed_item(member).save()

    def find_by_customer(self, customer_id: str) -> Member | None:
        member_id = self.member_id_for_customer(customer_id)
        return self.get(member_id) if member_id else None

    def member_id_for_customer(self, customer_id: str) -> str | None:
        link = _get(LinkItem, f"STRIPE_CUSTOMER#{customer_id}", "LINK")
        return str(link.member_id) if link else None

    def find_by_identity(self, platform: Platform, external_id: str) -> Member | None:
        link = _get(LinkItem, _identity_pk(platform, external_id), "LINK")
        if link is None and platform is Platform.DISCORD:  # bound before identities were per platform
            link = _get(LinkItem, f"DISCORD_USER#{external_id}", "LINK")
        return self.get(link.member_id) if link else None

    def _claim_link(self, pk: str, member_id: str) -> str:
        """Create the one-to-one link; return the member it points to (maybe another one)."""
        try:
            LinkItem(pk, "LINK", member_id=member_id).save(condition=LinkItem.pk.does_not_exist())
            return member_id
        except PutError as exc:
            if not _conditional_failed(exc):
                raise
        existing = _get(LinkItem, pk, "LINK")
        return existing.member_id if existing else member_id

    def attach_customer(self, member_id: str, customer_id: str, known: Member | None = None) -> Member:
        if known is not None and known.id == member_id and known.stripe_customer_id is None:
            # The caller has just read the member: link and member in one write, nothing read back.
            if self._in_one_write(LinkItem(f"STRIPE_CUSTOMER#{customer_id}", "LINK", member_id=member_id),
                                  update=(MemberItem(_member_pk(member_id), "MEMBER"), customer_id)):
                return replace(known, stripe_customer_id=customer_id)
        owner = self._claim_link(f"STRIPE_CUSTOMER#{customer_id}", member_id)
        if owner != member_id:
            raise ConflictError(f"Stripe customer {customer_id} already belongs to member {owner}")
        item = MemberItem(_member_pk(member_id), "MEMBER")
        try:
            item.update(  # returns the item as stored (ALL_NEW): no read after the write
                actions=[MemberItem.stripe_customer_id.set(customer_id)],
                condition=MemberItem.pk.exists() & MemberItem.stripe_customer_id.does_not_exist(),
            )
            return _member(item)
        except UpdateError as exc:
            if not _conditional_failed(exc):
                raise
        member = self.get(member_id)  # it had a customer already: the stored one is kept
        assert member is not None
        return member

    def create_for_customer(self, customer_id: str, member_id: str, now: int) -> Member:
        member = Member(id=member_id, created_at=now, stripe_customer_id=customer_id, origin=MemberOrigin.STRIPE)
        # The usual case (a customer never seen): link, member and listing in one write.
        if self._in_one_write(LinkItem(f"STRIPE_CUSTOMER#{customer_id}", "LINK", member_id=member_id),
                              _member_item(member), _listed_item(member)):
            return member
        owner = self._claim_link(f"STRIPE_CUSTOMER#{customer_id}", member_id)
        if owner == member_id:
            try:
                self.create(member)
            except PutError as exc:
                if not _conditional_failed(exc):
                    raise
        found = self.get(owner)
        if found is None:  # link written, member lost to a crash in between: finish the job
            found = Member(id=owner, created_at=now, stripe_customer_id=customer_id, origin=MemberOrigin.STRIPE)
            self.create(found)
        return found

    @staticmethod
    def _in_one_write(link: LinkItem, *puts: MembershipItem, update: tuple[MemberItem, str] | None = None) -> bool:
        """One TransactWriteItems: the LINK only if new, members only if new, the customer only if
        unset. False when a condition fails (nothing written): the caller takes the careful path."""
        try:
            with TransactWrite(connection=MembershipItem._get_connection().connection) as tx:
                tx.save(link, condition=LinkItem.pk.does_not_exist())
                for item in puts:
                    tx.save(item, condition=MembershipItem.pk.does_not_exist() if isinstance(item, MemberItem) else None)
                if update is not None:
                    member_item, customer_id = update
                    tx.update(member_item, actions=[MemberItem.stripe_customer_id.set(customer_id)],
                              condition=MemberItem.pk.exists() & MemberItem.stripe_customer_id.does_not_exist())
        except TransactWriteError as exc:
            if getattr(exc, "cause_response_code", None) == "TransactionCanceledException":
                return False
            raise
        return True

    def bind_identity(self, member_id: str, identity: Identity, sealed_credentials: bytes | None = None) -> None:
        owner = self._claim_link(_identity_pk(identity.platform, identity.external_id), member_id)
        if owner != member_id:
            raise ConflictError(f"this {identity.platform.value} account is already bound to member {owner}")
        item = _get(MemberItem, _member_pk(member_id), "MEMBER")
        if item is None:
            raise ConflictError(f"member {member_id} does not exist")
        identities = dict(_identities(item))
        identities[identity.platform.value] = identity.external_id
        # The handle follows the account: a relink without one drops the old account's name.
        handles = {k: v for k, v in (item.handles or {}).items() if k != identity.platform.value}
        if identity.handle:
            handles[identity.platform.value] = identity.handle
        MemberItem(_member_pk(member_id), "MEMBER").update(
            actions=[MemberItem.identities.set(identities), MemberItem.handles.set(handles) if handles else MemberItem.handles.remove()],
            condition=MemberItem.pk.exists(),
        )
        if sealed_credentials is not None:
            self.save_credentials(member_id, identity.platform, sealed_credentials)

    def replace_identity(self, member_id: str, identity: Identity) -> Identity | None:
        item = _get(MemberItem, _member_pk(member_id), "MEMBER")
        if item is None:
            raise NotFoundError(f"member {member_id} does not exist")
        old = _identities(item).get(identity.platform.value)
        if old == identity.external_id:
            return identity
        # The new link first (conditional): a crash after it leaves both accounts pointing here,
        # which a retry of the same relink finishes; never an account pointing nowhere.
        self.bind_identity(member_id, identity)
        if old is not None:
            legacy = [f"DISCORD_USER#{old}"] if identity.platform is Platform.DISCORD else []
            for pk in [_identity_pk(identity.platform, old), *legacy]:
                try:  # only a link that still points here: never another member's
                    LinkItem(pk, "LINK").delete(condition=LinkItem.member_id == member_id)
                except DeleteError as exc:
                    if not _conditional_failed(exc):
                        raise
            if item.discord_user_id and identity.platform is Platform.DISCORD:
                MemberItem(_member_pk(member_id), "MEMBER").update(actions=[MemberItem.discord_user_id.remove()])
            # The old account's OAuth tokens must not be used for the new one.
            CredentialsItem(_member_pk(member_id), f"CREDENTIALS#{identity.platform.value}").delete()
        return Identity(identity.platform, old) if old is not None else None

    def save_credentials(self, member_id: str, platform: Platform, sealed: bytes) -> None:
        CredentialsItem(
            _member_pk(member_id), f"CREDENTIALS#{platform.value}", member_id=member_id, platform=platform.value, sealed=sealed
        ).save()

    def load_credentials(self, member_id: str, platform: Platform) -> bytes | None:
        item = _get(CredentialsItem, _member_pk(member_id), f"CREDENTIALS#{platform.value}")
        if item is not None:
            return item.sealed
        if platform is Platform.DISCORD:  # written before credentials were per identity
            member = _get(MemberItem, _member_pk(member_id), "MEMBER")
            return member.discord_tokens if member else None
        return None

    def page(self, limit: int, after: str | None = None) -> tuple[list[Member], str | None]:
        condition = MemberListedItem.gsi1sk > after if after else None
        listed = [i.member_id for i in MemberListedItem.by_kind.query("MEMBER", condition, limit=limit + 1)]
        ids = listed[:limit]
        found = {i.member_id: _member(i) for i in MemberItem.batch_get([(_member_pk(m), "MEMBER") for m in ids])} if ids else {}
        return [found[m] for m in ids if m in found], (ids[-1] if len(listed) > limit else None)


def _member_item(member: Member) -> MemberItem:
    return MemberItem(
        _member_pk(member.id),
        "MEMBER",
        member_id=member.id,
        created_at=member.created_at,
        origin=member.origin.value,
        stripe_customer_id=member.stripe_customer_id,
        identities={i.platform.value: i.external_id for i in member.identities} or None,
        handles={i.platform.value: i.handle for i in member.identities if i.handle} or None,
    )


def _listed_item(member: Member) -> MemberListedItem:
    return MemberListedItem(_member_pk(member.id), "LISTED", gsi1pk="MEMBER", gsi1sk=member.id, member_id=member.id)


def _identity_pk(platform: Platform, external_id: str) -> str:
    return f"IDENTITY#{platform.value}#{external_id}"


def _identities(item: MemberItem) -> dict[str, str]:
    found = dict(item.identities or {})
    if item.discord_user_id and Platform.DISCORD.value not in found:
        found[Platform.DISCORD.value] = item.discord_user_id
    return found


def _member(item: MemberItem) -> Member:
    return Member(
        id=item.member_id,
        created_at=int(item.created_at),
        stripe_customer_id=item.stripe_customer_id,
        identities=tuple(
            Identity(Platform(platform), external_id, (item.handles or {}).get(platform))
            for platform, external_id in sorted(_identities(item).items())
        ),
        origin=MemberOrigin(item.origin),
    )


# --- subscriptions --------------------------------------------------------------------------


class DynamoSubscriptionRepository:
    def get(self, member_id: str, subscription_id: str) -> SubscriptionRecord | None:
        item = _get(SubscriptionItem, _member_pk(member_id), f"SUBSCRIPTION#{subscription_id}")
        return _record(item) if item else None

    def save(self, record: SubscriptionRecord) -> SubscriptionRecord:
        item = SubscriptionItem(
            _member_pk(record.member_id),
            f"SUBSCRIPTION#{record.subscription_id}",
            gsi1pk=subscription_kind_shard(record.subscription_id),
            gsi1sk=record.subscription_id,
            subscription_id=record.subscription_id,
            member_id=record.member_id,
            customer_id=record.customer_id,
            plan_id=record.plan_id or None,
            latest=_snapshot_json(record.latest) if record.latest else None,
            observations=[[o.created, o.rank, o.status] for o in record.observations],
            via_checkout=record.via_checkout,
            checkout_gate=record.checkout_gate.value,
            cancel_requested_at=record.cancel_requested_at,
            last_paid_at=record.last_paid_at,
            refunded_payment_at=record.refunded_payment_at,
            dispute=record.dispute or None,
            dispute_policy=record.dispute_policy or None,
            dispute_paused=True if record.dispute_paused else None,
            cancellation_ends=list(record.cancellation_ends) or None,
            grace_floors=[list(pair) for pair in record.grace_floors] or None,
            history=_history_json(record.history, record.latest.lines if record.latest else ()) if record.history else None,
            consent=_consent_json(record.consent),
            pending_change=asdict(record.pending) if record.pending is not None else None,
            tax_inclusive_rate=str(record.tax_inclusive_rate) if record.tax_inclusive_rate is not None else None,
        )
        if record.version is not None:
            item.version = record.version
        try:
            item.save()
        except PutError as exc:
            if _conditional_failed(exc):
                raise ConcurrentUpdateError(
                    f"subscription {record.subscription_id} changed while being updated; retrying"
                ) from None
            raise
        return _record(item)

    def for_member(self, member_id: str) -> list[SubscriptionRecord]:
        items = SubscriptionItem.query(
            _member_pk(member_id), SubscriptionItem.sk.startswith("SUBSCRIPTION#"), consistent_read=True
        )
        return [_record(i) for i in items]

    def all_records(self) -> Iterator[SubscriptionRecord]:
        # Every shard, and the unsharded key of records saved before the index was sharded.
        for partition in [f"SUBSCRIPTION#{n}" for n in range(SUBSCRIPTION_KIND_SHARDS)] + ["SUBSCRIPTION"]:
            for item in SubscriptionItem.by_kind.query(partition):
                yield _record(item)


# Every subscription write also writes the by_kind index: one "SUBSCRIPTION" partition would take
# them all (about 2 WCU each with snapshot and observations, so ~500 subscription events/s is
# a partition's 1,000 WCU/s). Spread over shards by subscription id; readers query every shard.
SUBSCRIPTION_KIND_SHARDS = 10


# Bought grants are listed the same way, spread over shards so one partition takes no more than
# its share of one-time purchases.
GRANT_KIND_SHARDS = 10


def grant_kind_shard(grant_id: str) -> str:
    return f"GRANT#{zlib.crc32(grant_id.encode()) % GRANT_KIND_SHARDS}"


def subscription_kind_shard(subscription_id: str) -> str:
    return f"SUBSCRIPTION#{zlib.crc32(subscription_id.encode()) % SUBSCRIPTION_KIND_SHARDS}"


def _snapshot_json(s: SubscriptionSnapshot) -> dict:
    return {
        "subscription_id": s.subscription_id,
        "customer_id": s.customer_id,
        "status": s.status,
        "created": s.created,
        "event_id": s.event_id,
        "cancel_at_period_end": s.cancel_at_period_end,
        "cancel_at": s.cancel_at,
        "current_period_end": s.current_period_end,
        "pause_collection": s.pause_collection,
        "member_id_hint": s.member_id_hint,
        "livemode": s.livemode,
        "sequence": s.sequence,
        **({"schedule_id": s.schedule_id} if s.schedule_id else {}),
        "lines": [
            [l.price_id, l.currency, l.unit_amount, l.quantity, l.interval, l.interval_count] for l in s.lines
        ],
    }


def _snapshot(d: dict) -> SubscriptionSnapshot:
    return SubscriptionSnapshot(
        subscription_id=d["subscription_id"],
        customer_id=d["customer_id"],
        status=d["status"],
        created=int(d["created"]),
        event_id=d["event_id"],
        cancel_at_period_end=bool(d["cancel_at_period_end"]),
        cancel_at=d.get("cancel_at"),
        current_period_end=d.get("current_period_end"),
        pause_collection=bool(d.get("pause_collection")),
        member_id_hint=d.get("member_id_hint"),
        livemode=bool(d.get("livemode")),
        sequence=int(d.get("sequence") or 0),
        schedule_id=d.get("schedule_id") or None,
        lines=tuple(PriceLine(p, c, a, int(q), i, int(n)) for p, c, a, q, i, n in d.get("lines", [])),
    )


def _record(item: SubscriptionItem) -> SubscriptionRecord:
    latest = _snapshot(item.latest) if item.latest else None
    return SubscriptionRecord(
        subscription_id=item.subscription_id,
        member_id=item.member_id,
        customer_id=item.customer_id,
        plan_id=item.plan_id or "",
        latest=latest,
        observations=tuple(Observation(int(c), int(r), s) for c, r, s in item.observations),
        via_checkout=bool(item.via_checkout),
        checkout_gate=CheckoutGate(item.checkout_gate),
        cancel_requested_at=int(item.cancel_requested_at) if item.cancel_requested_at is not None else None,
        version=int(item.version) if item.version is not None else None,
        last_paid_at=int(item.last_paid_at) if item.last_paid_at is not None else None,
        refunded_payment_at=int(item.refunded_payment_at) if item.refunded_payment_at is not None else None,
        dispute=item.dispute or "",
        dispute_policy=item.dispute_policy or "",
        dispute_paused=bool(item.dispute_paused),
        cancellation_ends=tuple(int(e) for e in item.cancellation_ends or ()),
        grace_floors=tuple((int(c), int(f)) for c, f in item.grace_floors or ()),
        history=_history(item.history, latest.lines if latest else ()) if item.history else (),
        consent=_consent(item.consent),
        pending=PendingChange(**item.pending_change) if item.pending_change else None,
        tax_inclusive_rate=Fraction(item.tax_inclusive_rate) if item.tax_inclusive_rate else None,
    )


def _consent_json(consent: CheckoutConsent | None) -> dict | None:
    return asdict(consent) if consent is not None else None


def _consent(raw: dict | None) -> CheckoutConsent | None:
    if not isinstance(raw, dict):
        return None
    return CheckoutConsent(str(raw.get("session_id") or ""), int(raw.get("at") or 0),
                           str(raw.get("terms_of_service") or ""), str(raw.get("text_version") or ""),
                           str(raw.get("waiver") or ""))


# A point whose lines are the latest snapshot's refers to them: a subscription with thousands of
# items (they exist) would otherwise be stored twice in one item, past DynamoDB's 400 KB.
_LATEST_LINES = -1


def _history_json(points: tuple[HistoryPoint, ...], latest_lines: tuple[PriceLine, ...]) -> dict:
    # Renewals repeat the same price lines: store each distinct set once and refer to it by index.
    line_sets: list[tuple[PriceLine, ...]] = []
    encoded = []
    for p in points:
        if p.lines == latest_lines:
            index = _LATEST_LINES
        else:
            if p.lines not in line_sets:
                line_sets.append(p.lines)
            index = line_sets.index(p.lines)
        encoded.append([p.created, p.status, int(p.pause_collection), index])
    return {
        "lines": [[[l.price_id, l.currency, l.unit_amount, l.quantity, l.interval, l.interval_count] for l in ls]
                  for ls in line_sets],
        "points": encoded,
    }


def _history(d: dict, latest_lines: tuple[PriceLine, ...]) -> tuple[HistoryPoint, ...]:
    line_sets = [tuple(PriceLine(p, c, a, int(q), i, int(n)) for p, c, a, q, i, n in ls) for ls in d["lines"]]
    return tuple(
        HistoryPoint(int(c), s, latest_lines if int(i) == _LATEST_LINES else line_sets[int(i)], bool(paused))
        for c, s, paused, i in d["points"]
    )


# --- one-time grants ------------------------------------------------------------------------


class DynamoGrantRepository:
    def get(self, member_id: str, grant_id: str) -> OneTimeGrant | None:
        item = _get(GrantItem, _member_pk(member_id), f"GRANT#{grant_id}")
        return _grant(item) if item else None

    def save(self, grant: OneTimeGrant) -> None:
        GrantItem(
            _member_pk(grant.member_id),
            f"GRANT#{grant.grant_id}",
            member_id=grant.member_id,
            grant_id=grant.grant_id,
            plan_id=grant.plan_id,
            plan_kind=grant.kind.value,
            paid_at=grant.paid_at,
            access_seconds=grant.access_seconds,
            gate=grant.gate.value,
            ended_reason=grant.ended_reason or None,
            amount=grant.amount,
            currency=grant.currency or None,
            payment_intent=grant.payment_intent or None,
            dispute=grant.dispute or None,
            dispute_policy=grant.dispute_policy if grant.dispute else None,
            source=grant.source if grant.given else None,
            reason=grant.reason or None,
            consent=_consent_json(grant.consent),
            community_id=grant.community_id or None,
            ended_at=grant.ended_at or None,
            tax=grant.tax or None,
            # Bought grants are listed by the KPIs (one-time revenue); given ones are not revenue.
            gsi1pk=None if grant.given else grant_kind_shard(grant.grant_id),
            gsi1sk=None if grant.given else grant.grant_id,
        ).save()
        if grant.payment_intent:
            # Disputes name only the payment: this link leads from it back to the member.
            LinkItem(f"PAYMENT_INTENT#{grant.payment_intent}", "LINK", member_id=grant.member_id).save()

    def find_by_payment_intent(self, payment_intent: str) -> OneTimeGrant | None:
        link = _get(LinkItem, f"PAYMENT_INTENT#{payment_intent}", "LINK")
        if link is None:
            return None
        return next((g for g in self.for_member(link.member_id) if g.payment_intent == payment_intent), None)


    def all_paid(self) -> Iterator[OneTimeGrant]:
        for partition in [f"GRANT#{n}" for n in range(GRANT_KIND_SHARDS)]:
            for item in GrantItem.by_kind.query(partition):
                yield _grant(item)

    def for_member(self, member_id: str) -> list[OneTimeGrant]:
        items = GrantItem.query(_member_pk(member_id), GrantItem.sk.startswith("GRANT#"), consistent_read=True)
        return [_grant(i) for i in items]


def _grant(item: GrantItem) -> OneTimeGrant:
    return OneTimeGrant(
        grant_id=item.grant_id,
        member_id=item.member_id,
        plan_id=item.plan_id,
        kind=PlanKind(item.plan_kind),
        paid_at=int(item.paid_at),
        access_seconds=int(item.access_seconds) if item.access_seconds is not None else None,
        gate=CheckoutGate(item.gate),
        ended_reason=item.ended_reason or "",
        amount=int(item.amount or 0),
        tax=int(item.tax or 0),
        currency=item.currency or "",
        payment_intent=item.payment_intent or "",
        dispute=item.dispute or "",
        dispute_policy=item.dispute_policy or DISPUTE_REVOKE,
        source=item.source or SOURCE_CHECKOUT,
        reason=item.reason or "",
        consent=_consent(item.consent),
        community_id=item.community_id or "",
        ended_at=int(item.ended_at or 0),
    )


# --- entitlements projection and the due index ----------------------------------------------


def due_shard(member_id: str) -> str:
    return f"DUE#{zlib.crc32(member_id.encode()) % DUE_SHARDS}"


_UNREVISED = "unrevised"  # a projection written before revisions existed


def _projection(item: EntitlementsItem | None) -> tuple[list[Entitlement], str]:
    if item is None:
        return [], ""
    entitlements = [
        Entitlement(p, c, r, EntitlementState(s), int(u) if u is not None else None, reason or "")
        for p, c, r, s, u, reason in item.entitlements
    ]
    return entitlements, item.revision or _UNREVISED


class DynamoEntitlementRepository:
    def save(
        self,
        member_id: str,
        entitlements: Sequence[Entitlement],
        next_due_at: int | None,
        *,
        expected_revision: str | None = None,
    ) -> None:
        # The due index is sparse: an item appears in it only while something is due.
        item = EntitlementsItem(
            _member_pk(member_id),
            "ENTITLEMENTS",
            member_id=member_id,
            entitlements=[
                [e.plan_id, e.community_id, e.role_id, e.state.value, e.until, e.reason] for e in entitlements
            ],
            due_shard=due_shard(member_id) if next_due_at is not None else None,
            due_at=next_due_at,
            # A fresh token on every write: an optimistic writer only needs "changed since read".
            revision=uuid.uuid4().hex,
        )
        if expected_revision is None:
            item.save()
            return
        if expected_revision == "":
            condition = EntitlementsItem.pk.does_not_exist()
        elif expected_revision == _UNREVISED:
            condition = EntitlementsItem.pk.exists() & EntitlementsItem.revision.does_not_exist()
        else:
            condition = EntitlementsItem.revision == expected_revision
        try:
            item.save(condition=condition)
        except PutError as exc:
            if _conditional_failed(exc):
                raise ConcurrentUpdateError(f"entitlements of member {member_id} changed while being derived") from None
            raise

    def for_member(self, member_id: str) -> list[Entitlement]:
        return self.read(member_id)[0]

    def read(self, member_id: str) -> tuple[list[Entitlement], str]:
        return _projection(_get(EntitlementsItem, _member_pk(member_id), "ENTITLEMENTS"))

    def due(self, now: int, limit: int) -> list[str]:
        found: list[tuple[int, str]] = []
        for shard in range(DUE_SHARDS):
            for item in MembershipItem.due.query(
                f"DUE#{shard}", MembershipItem.due_at <= now, limit=limit
            ):
                found.append((int(item.due_at), item.pk.split("#", 1)[1]))
        found.sort()
        return [member_id for _, member_id in found[:limit]]


# --- access, messages, checkout attempts ----------------------------------------------------


class DynamoAccessRepository:
    def get(self, member_id: str, community_id: str) -> AccessRecord | None:
        item = _get(AccessItem, _member_pk(member_id), f"ACCESS#{community_id}")
        return _access(item) if item else None

    def save(self, record: AccessRecord) -> None:
        AccessItem(
            _member_pk(record.member_id),
            f"ACCESS#{record.community_id}",
            member_id=record.member_id,
            community_id=record.community_id,
            state=record.state.value,
            reason=record.reason or None,
            roles=list(record.roles) or None,
            updated_at=record.updated_at,
            attempts=record.attempts,
            granted_at=record.granted_at,
            refusal=record.refusal or None,
        ).save()

    def for_member(self, member_id: str) -> list[AccessRecord]:
        items = AccessItem.query(_member_pk(member_id), AccessItem.sk.startswith("ACCESS#"), consistent_read=True)
        return [_access(i) for i in items]


def _access(item: AccessItem) -> AccessRecord:
    return AccessRecord(
        member_id=item.member_id,
        community_id=item.community_id,
        state=AccessState(item.state),
        reason=item.reason or "",
        roles=tuple(item.roles or ()),
        updated_at=int(item.updated_at),
        attempts=int(item.attempts),
        granted_at=int(item.granted_at),
        refusal=item.refusal or "",
    )


class DynamoMessageLog:
    def __init__(self, retention_seconds: int | None = None):
        # MESSAGE_RETENTION_DAYS: DynamoDB's TTL deletes the record after (None: kept).
        self._retention = retention_seconds

    def _sk(self, key: MessageKey) -> str:
        return f"MESSAGE#{key.kind}#{key.period}"

    def claim(self, key: MessageKey, now: int) -> bool:
        try:
            MessageItem(
                _member_pk(key.member_id),
                self._sk(key),
                member_id=key.member_id,
                message_kind=key.kind,
                period=key.period,
                status=MessageStatus.QUEUED.value,
                claimed_at=now,
                expires_at_ttl=_ttl(now + self._retention) if self._retention else None,
            ).save(condition=MessageItem.pk.does_not_exist())
            return True
        except PutError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def finish(self, key: MessageKey, status: MessageStatus, reason: str, now: int) -> None:
        MessageItem(_member_pk(key.member_id), self._sk(key)).update(
            actions=[
                MessageItem.status.set(MessageStatus(status).value),
                MessageItem.reason.set(reason[:500]) if reason else MessageItem.reason.remove(),
                MessageItem.finished_at.set(now),
            ]
        )

    def status(self, key: MessageKey) -> MessageStatus | None:
        item = _get(MessageItem, _member_pk(key.member_id), self._sk(key))
        return MessageStatus(item.status) if item else None

    def claimed_at(self, key: MessageKey) -> int | None:
        item = _get(MessageItem, _member_pk(key.member_id), self._sk(key))
        return int(item.claimed_at) if item is not None and item.claimed_at is not None else None

    def for_member(self, member_id: str) -> list[MessageRecord]:
        items = MessageItem.query(_member_pk(member_id), MessageItem.sk.startswith("MESSAGE#"), consistent_read=True)
        return [
            MessageRecord(
                kind=i.message_kind,
                period=i.period,
                status=MessageStatus(i.status),
                reason=i.reason or "",
                at=int(i.finished_at or i.claimed_at),
            )
            for i in items
        ]


def _attempt(item: CheckoutItem) -> CheckoutAttempt:
    return CheckoutAttempt(
        member_id=item.member_id,
        plan_id=item.plan_id,
        attempt=int(item.attempt),
        price_id=item.price_id or "",
        session_id=item.session_id,
        url=item.url,
        expires_at=int(item.expires_at),
    )


class DynamoCheckoutRepository:
    def get_attempt(self, member_id: str, plan_id: str) -> CheckoutAttempt | None:
        item = _get(CheckoutItem, _member_pk(member_id), f"CHECKOUT#{plan_id}")
        return _attempt(item) if item is not None else None

    def save_attempt(self, attempt: CheckoutAttempt) -> None:
        CheckoutItem(
            _member_pk(attempt.member_id),
            f"CHECKOUT#{attempt.plan_id}",
            member_id=attempt.member_id,
            plan_id=attempt.plan_id,
            attempt=attempt.attempt,
            price_id=attempt.price_id or None,
            session_id=attempt.session_id,
            url=attempt.url,
            expires_at=attempt.expires_at,
        ).save()


# --- the billing processor's one read per member ---------------------------------------------


class DynamoMemberStateReader:
    """One strongly consistent Query over the member's partition from CHECKOUT# on.

    Sort keys come back in order (CHECKOUT#…, CREDENTIALS#…, ENTITLEMENTS, GRANT#…, MEMBER,
    MESSAGE#…, SUBSCRIPTION#…),
    so the projection is read before the subscriptions, as MemberState promises."""

    def load(self, member_id: str) -> MemberState | None:
        member: Member | None = None
        subscriptions: list[SubscriptionRecord] = []
        projection: EntitlementsItem | None = None
        checkouts: dict[str, CheckoutAttempt] = {}
        grants: list[OneTimeGrant] = []
        for item in MembershipItem.query(_member_pk(member_id), MembershipItem.sk >= "CHECKOUT#", consistent_read=True):
            if isinstance(item, MemberItem):
                member = _member(item)
            elif isinstance(item, SubscriptionItem):
                subscriptions.append(_record(item))
            elif isinstance(item, EntitlementsItem):
                projection = item
            elif isinstance(item, CheckoutItem):
                attempt = _attempt(item)
                checkouts[attempt.plan_id] = attempt
            elif isinstance(item, GrantItem):
                grants.append(_grant(item))
        if member is None:
            return None
        entitlements, revision = _projection(projection)
        return MemberState(member, subscriptions, entitlements, revision, checkouts, grants)


# --- ledger ---------------------------------------------------------------------------------


class DynamoLedgerRepository:
    def __init__(self, retention_seconds: int = LEDGER_RETENTION_SECONDS):
        self._retention = retention_seconds  # LEDGER_RETENTION_DAYS, as the intake writes it

    def get(self, event_id: str) -> LedgerEntry | None:
        try:
            item = LedgerItem.get(f"STRIPE_EVENT#{event_id}", consistent_read=True)
        except DoesNotExist:
            return None
        return _ledger(item)

    def mark(self, entry: LedgerEntry, now: int) -> None:
        # An upsert: an event queued by other means than the intake still gets its entry.
        LedgerItem(f"STRIPE_EVENT#{entry.event_id}").update(
            actions=[
                LedgerItem.status.set(entry.status),
                LedgerItem.detail.set(entry.detail[:1000] or "-"),
                LedgerItem.processed_at.set(now),
                LedgerItem.event_id.set(LedgerItem.event_id | entry.event_id),
                LedgerItem.type.set(LedgerItem.type | entry.type),
                LedgerItem.created.set(LedgerItem.created | entry.created),
                LedgerItem.received_at.set(LedgerItem.received_at | now),
                LedgerItem.ledger_day.set(LedgerItem.ledger_day | ledger_span_partition(entry.event_id)),
                LedgerItem.expires_at_ttl.set(LedgerItem.expires_at_ttl | _ttl(now + self._retention)),
            ]
            + ([LedgerItem.customer_id.set(LedgerItem.customer_id | entry.customer_id)] if entry.customer_id else []),
        )

    def recent(self, now: int, limit: int, days: int = 31) -> list[LedgerEntry]:
        """Newest first, from the start of the UTC day ``days - 1`` days ago: one Query per shard of
        the by_day index (10), plus the days that still hold entries in the older per-day layout."""
        since = _day_start(now - (days - 1) * 86_400)
        found: list[LedgerEntry] = []
        for shard in range(LEDGER_DAY_SHARDS):
            # Each shard's newest ``limit`` items hold the newest ``limit`` overall.
            query = LedgerItem.by_day.query(ledger_span_shard(shard), LedgerItem.received_at >= since,
                                            scan_index_forward=False, limit=limit)
            found += [_ledger(item) for item in query]
        found.sort(key=lambda e: e.received_at, reverse=True)
        newest_legacy = self._newest_legacy(now, days)
        if newest_legacy >= since and (len(found) < limit or found[limit - 1].received_at <= newest_legacy):
            found += self._legacy(min(now, newest_legacy), since, limit)
            found.sort(key=lambda e: e.received_at, reverse=True)
        return found[:limit]

    def _legacy(self, until: int, since: int, limit: int) -> list[LedgerEntry]:
        """The older layout: one partition per day and shard, plus the unsharded day of the first versions."""
        out: list[LedgerEntry] = []
        day_start = _day_start(until)
        while day_start >= since and len(out) < limit:
            day = ledger_day(day_start)
            for partition in [ledger_day_shard(day, n) for n in range(LEDGER_DAY_SHARDS)] + [day]:
                out += [_ledger(i) for i in LedgerItem.by_day.query(partition, scan_index_forward=False, limit=limit)]
            day_start -= 86_400
        return out

    def _newest_legacy(self, now: int, days: int) -> int:
        """When the newest entry in the per-day layout was received (0: none), found by walking the
        days once and remembered: entries are no longer written that way, so later reads walk only
        the days up to it, and none once it is older than the period read. A later read reaching
        further back than any before walks those older days only."""
        check = _get(LegacyCheckItem, "LEGACY_CHECK#ledger_by_day", "CHECK")
        if check is not None and check.newest:
            return int(check.newest)
        since = _day_start(now - (days - 1) * 86_400)
        looked_from = int(check.looked_from) if check is not None and check.looked_from else _day_start(now) + 86_400
        if since >= looked_from:
            return 0
        walked = self._legacy(looked_from - 1, since, 1)
        newest = max((e.received_at for e in walked), default=0)
        try:
            LegacyCheckItem("LEGACY_CHECK#ledger_by_day", "CHECK", newest=newest, checked_at=now, looked_from=since).save()
        except PutError:
            pass  # a role that may not write here walks again next time: slower, never wrong
        return newest


def _day_start(epoch: int) -> int:
    return epoch - epoch % 86_400


def _ledger(item: LedgerItem) -> LedgerEntry:
    return LedgerEntry(
        event_id=item.event_id,
        type=item.type,
        status=item.status,
        created=int(item.created),
        received_at=int(item.received_at),
        customer_id=item.customer_id,
        detail=item.detail or "",
    )


# --- browser sessions, OAuth states, throttle counters (ephemeral, TTL) ----------------------


class DynamoWebSessionStore:
    """Sessions, OAuth states and claim links keyed by the token's SHA-256: a read of the table
    (a backup, an export, an over-broad IAM grant) opens no session and redeems no link."""

    def create_session(self, session_id: str, expires_at: int) -> WebSession:
        SessionItem(
            _session_pk(session_id), "SESSION", expires_at=expires_at, expires_at_ttl=_ttl(expires_at)
        ).save(condition=SessionItem.pk.does_not_exist())
        return WebSession(session_id, None, expires_at)

    def get_session(self, session_id: str, now: int) -> WebSession | None:
        item = _get(SessionItem, _session_pk(session_id), "SESSION")
        # TTL deletion is lazy (up to days): expiry is checked here, not left to DynamoDB.
        if item is None or int(item.expires_at) <= now:
            return None
        return WebSession(session_id, item.member_id, int(item.expires_at))

    def set_session_member(self, session_id: str, member_id: str) -> None:
        item = SessionItem(_session_pk(session_id), "SESSION")
        item.update(actions=[SessionItem.member_id.set(member_id)], condition=SessionItem.pk.exists())
        _remember_ref(member_id, "session", item.pk, "SESSION", int(item.expires_at))

    def delete_session(self, session_id: str) -> None:
        SessionItem(_session_pk(session_id), "SESSION").delete()

    def put_oauth_state(self, state: str, session_id: str, plan_id: str | None, expires_at: int) -> None:
        OAuthStateItem(
            f"OAUTH_STATE#{token_key(state)}",
            "STATE",
            session_id=session_id,
            plan_id=plan_id,
            expires_at=expires_at,
            expires_at_ttl=_ttl(expires_at),
        ).save(condition=OAuthStateItem.pk.does_not_exist())

    def take_oauth_state(self, state: str, now: int) -> tuple[str, str | None] | None:
        item = _get(OAuthStateItem, f"OAUTH_STATE#{token_key(state)}", "STATE")
        if item is None:
            return None
        try:
            item.delete(condition=OAuthStateItem.pk.exists())
        except Exception as exc:  # a concurrent callback took it first
            if _conditional_failed(exc):
                return None
            raise
        if int(item.expires_at) <= now:
            return None
        return item.session_id, item.plan_id

    def put_claim(self, token: str, member_id: str, expires_at: int) -> None:
        ClaimItem(
            f"CLAIM#{token_key(token)}", "CLAIM", member_id=member_id, expires_at=expires_at, expires_at_ttl=_ttl(expires_at)
        ).save(condition=ClaimItem.pk.does_not_exist())
        _remember_ref(member_id, "claim", f"CLAIM#{token_key(token)}", "CLAIM", expires_at)

    def get_claim(self, token: str, now: int) -> str | None:
        item = _get(ClaimItem, f"CLAIM#{token_key(token)}", "CLAIM")
        if item is None or int(item.expires_at) <= now:
            return None
        return item.member_id

    def hit(self, key: str, window_start: int, expires_at: int) -> int:
        item = CounterItem(f"COUNTER#{key}#{window_start}", "COUNTER")
        item.update(
            actions=[
                CounterItem.hits.add(1),
                CounterItem.kind.set(CounterItem),
                CounterItem.expires_at_ttl.set(_ttl(expires_at)),
            ]
        )
        return int(item.hits)


def _remember_ref(member_id: str, kind: str, pk: str, sk: str, expires_at: int) -> None:
    # Sessions and claims are keyed by a token digest: this small item is how an erasure finds them.
    MemberRefItem(
        _member_pk(member_id), f"REF#{pk}", ref_pk=pk, ref_sk=sk, ref_kind=kind, expires_at=expires_at,
        expires_at_ttl=_ttl(expires_at),
    ).save()


def _session_pk(session_id: str) -> str:
    return f"SESSION#{token_key(session_id)}"


def _ttl(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


# --- members' data rights -------------------------------------------------------------------


class DynamoPrivacyStore:
    """A member's export and erasure: everything under MEMBER#<id>, plus the links keyed elsewhere."""

    def erasure(self, member_id: str) -> ErasureRecord | None:
        item = _get(ErasureItem, _member_pk(member_id), "ERASURE")
        if item is None:
            return None
        return ErasureRecord(
            member_id=item.member_id,
            reason=item.reason,
            requested_at=int(item.requested_at),
            erased_at=int(item.erased_at) if item.erased_at is not None else None,
            removed=tuple(sorted((str(k), int(v)) for k, v in (item.removed or {}).items())),
        )

    def record_erasure(self, record: ErasureRecord) -> None:
        ErasureItem(
            _member_pk(record.member_id),
            "ERASURE",
            member_id=record.member_id,
            reason=record.reason,
            requested_at=record.requested_at,
            erased_at=record.erased_at,
            removed=dict(record.removed) or None,
        ).save()

    def held_tokens(self, member_id: str, now: int) -> list[HeldToken]:
        refs = MemberRefItem.query(_member_pk(member_id), MemberRefItem.sk.startswith("REF#"), consistent_read=True)
        # TTL deletion is lazy: an expired ref is not a token the member still holds.
        return sorted(
            (HeldToken(r.ref_kind, int(r.expires_at)) for r in refs if int(r.expires_at) > now),
            key=lambda t: (t.expires_at, t.kind),
        )

    def checkout_attempts(self, member_id: str) -> list[CheckoutAttempt]:
        items = CheckoutItem.query(_member_pk(member_id), CheckoutItem.sk.startswith("CHECKOUT#"), consistent_read=True)
        return [_attempt(i) for i in items]

    def erase_personal_data(self, member_id: str) -> dict[str, int]:
        pk = _member_pk(member_id)
        removed = {"identities": 0, "credentials": 0, "messages": 0, "checkout_attempts": 0, "sessions": 0, "claims": 0}
        member = _get(MemberItem, pk, "MEMBER")
        if member is not None:
            for platform, external_id in _identities(member).items():
                legacy = [f"DISCORD_USER#{external_id}"] if platform == Platform.DISCORD.value else []
                for link_pk in [_identity_pk(Platform(platform), external_id), *legacy]:
                    try:  # only a link that still points here: never another member's
                        LinkItem(link_pk, "LINK").delete(condition=LinkItem.member_id == member_id)
                    except DeleteError as exc:
                        if not _conditional_failed(exc):
                            raise
                removed["identities"] += 1
            MemberItem(pk, "MEMBER").update(  # the handles too: names people are known by
                actions=[MemberItem.identities.remove(), MemberItem.discord_user_id.remove(), MemberItem.discord_tokens.remove(),
                         MemberItem.handles.remove()]
            )
        for item in MembershipItem.query(pk, consistent_read=True):
            if isinstance(item, CredentialsItem):
                removed["credentials"] += 1
            elif isinstance(item, MessageItem):
                removed["messages"] += 1
            elif isinstance(item, CheckoutItem):
                removed["checkout_attempts"] += 1
            elif isinstance(item, MemberRefItem):
                # The session or claim itself first: a ref without its target is harmless, not the reverse.
                (SessionItem if item.ref_kind == "session" else ClaimItem)(item.ref_pk, item.ref_sk).delete()
                removed["sessions" if item.ref_kind == "session" else "claims"] += 1
            else:
                continue
            item.delete()
        # The member's email (its own partition): Stripe's later customer.updated does not bring it back.
        contact = _get(ContactItem, f"CONTACT#{member_id}", "CONTACT")
        if contact is not None:
            contact.delete()
            removed["email"] = 1
        return removed


# --- exit surveys ---------------------------------------------------------------------------


class DynamoSurveyStore:
    def put_link(self, token_digest: str, link: SurveyLink) -> None:
        SurveyLinkItem(
            f"SURVEY_LINK#{token_digest}", "SURVEY_LINK", member_id=link.member_id, plan_id=link.plan_id,
            subscription_id=link.subscription_id, period=link.period, expires_at=link.expires_at,
            expires_at_ttl=_ttl(link.expires_at),
        ).save()

    def get_link(self, token_digest: str) -> SurveyLink | None:
        item = _get(SurveyLinkItem, f"SURVEY_LINK#{token_digest}", "SURVEY_LINK")
        if item is None:
            return None
        return SurveyLink(item.member_id, item.plan_id, item.subscription_id, item.period, int(item.expires_at))

    def save_answer(self, answer: SurveyAnswer) -> None:
        SurveyAnswerItem(
            f"SURVEY_ANSWER#{answer.member_id}", f"ANSWER#{answer.period}",
            gsi1pk="SURVEY_ANSWER", gsi1sk=f"{answer.at:012d}#{answer.member_id}#{answer.period}",
            member_id=answer.member_id, plan_id=answer.plan_id, subscription_id=answer.subscription_id,
            period=answer.period, choice=answer.choice, comment=answer.comment or None, answered_at=answer.at,
        ).save()

    def answers(self, limit: int) -> list[SurveyAnswer]:
        items = SurveyAnswerItem.by_kind.query("SURVEY_ANSWER", scan_index_forward=False, limit=limit)
        return [_answer(i) for i in items]

    def for_member(self, member_id: str) -> list[SurveyAnswer]:
        return [_answer(i) for i in SurveyAnswerItem.query(f"SURVEY_ANSWER#{member_id}", consistent_read=True)]

    def erase_member(self, member_id: str) -> int:
        items = list(SurveyAnswerItem.query(f"SURVEY_ANSWER#{member_id}", consistent_read=True))
        for item in items:
            item.delete()
        return len(items)


def _answer(item: SurveyAnswerItem) -> SurveyAnswer:
    return SurveyAnswer(item.member_id, item.plan_id, item.subscription_id, item.period, item.choice,
                        item.comment or "", int(item.answered_at))


# --- contacts -------------------------------------------------------------------------------


class DynamoContactStore:
    def set_email(self, member_id: str, email: str) -> None:
        ContactItem(f"CONTACT#{member_id}", "CONTACT", member_id=member_id, email=email).save()

    def email(self, member_id: str) -> str | None:
        item = _get(ContactItem, f"CONTACT#{member_id}", "CONTACT")
        return item.email if item else None

    def contact(self, member_id: str) -> EmailOnFile | None:
        item = _get(ContactItem, f"CONTACT#{member_id}", "CONTACT")
        return EmailOnFile(item.email, int(item.as_of or 0)) if item else None

    def keep_email(self, member_id: str, seen: EmailOnFile) -> bool:
        # merge_email's rule as a condition: nothing stored, older, or the same second and not smaller.
        condition = (ContactItem.pk.does_not_exist() | ContactItem.as_of.does_not_exist()
                     | (ContactItem.as_of < seen.as_of) | ((ContactItem.as_of == seen.as_of) & (ContactItem.email >= seen.email)))
        try:
            ContactItem(f"CONTACT#{member_id}", "CONTACT", member_id=member_id, email=seen.email,
                        as_of=seen.as_of).save(condition=condition)
        except PutError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True


class DynamoCardStore:
    def card(self, customer_id: str) -> CardOnFile | None:
        item = _get(CardItem, f"CARD#{customer_id}", "CARD")
        if item is None:
            return None
        expires = int(item.expires_at) if item.expires_at is not None else None
        return CardOnFile(item.payment_method_id, expires, int(item.as_of), erased=bool(item.erased),
                          trial_key=item.trial_key)

    def save_card(self, customer_id: str, card: CardOnFile) -> None:
        CardItem(f"CARD#{customer_id}", "CARD", payment_method_id=card.payment_method_id,
                 expires_at=card.expires_at, as_of=card.as_of, erased=True if card.erased else None,
                 trial_key=card.trial_key).save()

    def save_if_newer(self, customer_id: str, card: CardOnFile) -> bool:
        try:
            CardItem(f"CARD#{customer_id}", "CARD", payment_method_id=card.payment_method_id,
                     expires_at=card.expires_at, as_of=card.as_of, erased=True if card.erased else None,
                     trial_key=card.trial_key).save(
                # erased is kept as true or not at all (save_card)
                condition=CardItem.pk.does_not_exist() | ((CardItem.as_of < card.as_of) & CardItem.erased.does_not_exist())
            )
        except PutError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True


# --- personal links in messages -------------------------------------------------------------


class DynamoMemberLinkStore:
    def put_link(self, token_digest: str, link: MemberLink) -> None:
        MemberLinkItem(
            f"MEMBER_LINK#{token_digest}", "MEMBER_LINK", member_id=link.member_id, purpose=link.purpose,
            plan_id=link.plan_id or None, expires_at=link.expires_at, expires_at_ttl=_ttl(link.expires_at),
        ).save()

    def get_link(self, token_digest: str) -> MemberLink | None:
        item = _get(MemberLinkItem, f"MEMBER_LINK#{token_digest}", "MEMBER_LINK")
        if item is None:
            return None
        return MemberLink(item.member_id, item.purpose, item.plan_id or "", int(item.expires_at))
