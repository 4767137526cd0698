"""PynamoDB models: the two tables' items. Nothing outside adapters/dynamodb sees these classes.

MembershipTable is a single table with prefixed keys:

    COMMUNITY#<id>        / COMMUNITY        (by_kind: COMMUNITY / <id>)
    PLAN#<id>             / PLAN             (by_kind: PLAN / <id>)
    PRICE#<price>         / PRICE            a price is sold by one plan (conditional create)
    MEMBER#<id>           / MEMBER
    MEMBER#<id>           / SUBSCRIPTION#<sub>   (by_kind: SUBSCRIPTION#<shard> / <sub>)
    MEMBER#<id>           / LISTED           (by_kind: MEMBER / <id>) the admin member list
    MEMBER#<id>           / SUBSCRIPTION#<sub>   (by_kind: SUBSCRIPTION / <sub>)
    MEMBER#<id>           / ENTITLEMENTS         (due: DUE#<shard> / due_at, only while due)
    MEMBER#<id>           / ACCESS#<community>
    MEMBER#<id>           / MESSAGE#<kind>#<period>
    MEMBER#<id>           / CHECKOUT#<plan>
    MEMBER#<id>           / GRANT#<session>      a pass or lifetime purchase
    MEMBER#<id>           / CREDENTIALS#<platform>   sealed per-identity secrets (OAuth tokens)
    MEMBER#<id>           / REF#<pk>         a session or claim link of the member (TTL: its expiry),
                                             so an erasure finds what is keyed by a token digest
    MEMBER#<id>           / ERASURE          a data-rights erasure: asked, then done (no personal data)
    MEMBER#<id>           / AUDIT#<at>#<id>      admin actions on this member (the timeline)
    AUDIT#<YYYY-MM-DD>    / <at>#<id>            every admin action, one partition per day
    LEGACY_CHECK#<what>   / CHECK            a reader's one look for items in an older key layout
    GRANT#<id>            / LINK                 a manual or access-code grant -> its member
    ACCESS_CODE#<sha256>  / CODE                 an access code (only its hash is stored)
    STRIPE_CUSTOMER#<cus> / LINK             one member per Stripe customer
    IDENTITY#<platform>#<external id> / LINK one member per platform account
    SESSION#<id>, OAUTH_STATE#<state>, CLAIM#<token>, COUNTER#<key>#<window>: ephemeral, with TTL

LedgerTable holds one item per Stripe event id (``STRIPE_EVENT#<id>``), listed by day
(by_day: ``span#<shard>`` / received_at, one Query a shard over any span; entries of older
versions keep ``<YYYY-MM-DD>#<shard>`` or ``<YYYY-MM-DD>``, read day by day until they leave the month).
"""

from __future__ import annotations

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeSetAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

DUE_SHARDS = 4


class ByKindIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_kind"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class DueIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "due"
        # Keys plus the discriminator: PynamoDB filters polymorphic queries on it.
        projection = IncludeProjection(["kind"])

    due_shard = UnicodeAttribute(hash_key=True)
    due_at = NumberAttribute(range_key=True)


class MembershipItem(Model):
    class Meta:
        table_name = "MembershipTable"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    expires_at_ttl = TTLAttribute(null=True)

    by_kind = ByKindIndex()
    due = DueIndex()


class CommunityItem(MembershipItem, discriminator="community"):
    community_id = UnicodeAttribute()
    platform = UnicodeAttribute()
    name = UnicodeAttribute()
    # The place on its platform (guild / chat / group id); items written before it was
    # platform-neutral hold ``guild_id`` instead.
    external_id = UnicodeAttribute(null=True)
    guild_id = UnicodeAttribute(null=True)
    role_id = UnicodeAttribute(null=True)
    on_revoke = UnicodeAttribute()
    locale = UnicodeAttribute()
    created_at = NumberAttribute()
    mode = UnicodeAttribute(null=True)  # WhatsApp: official | manual | gateway
    invite_link = UnicodeAttribute(null=True)
    archived_at = NumberAttribute(null=True)


class WhatsAppTaskItem(MembershipItem, discriminator="wa_task"):
    """A removal the creator must do by hand (WhatsApp manual mode); under its community."""

    task_id = UnicodeAttribute()
    community_id = UnicodeAttribute()
    task_kind = UnicodeAttribute()
    phone = UnicodeAttribute()
    member_id = UnicodeAttribute(null=True)
    due = NumberAttribute()
    done = BooleanAttribute()
    cancelled = BooleanAttribute()
    reminders = NumberAttribute()


class WhatsAppWindowItem(MembershipItem, discriminator="wa_window"):
    """When a phone last wrote to the business number: free-form text only within 24 hours of it."""

    last_inbound_at = NumberAttribute()


class CommunityHoldItem(MembershipItem, discriminator="community_hold"):
    """A community-scoped platform refusal (domain/holds.py): pk HOLD#<community>, sk HOLD."""

    community_id = UnicodeAttribute()
    refusal = UnicodeAttribute()
    detail = UnicodeAttribute()
    since = NumberAttribute()
    probed_at = NumberAttribute()


class HeldMemberItem(MembershipItem, discriminator="held_member"):
    """A member skipped under a hold, to resync on release: sk G#<hold since>#M#<member>, expires by TTL."""

    member_id = UnicodeAttribute()


class PlanItem(MembershipItem, discriminator="plan"):
    plan_id = UnicodeAttribute()
    name = UnicodeAttribute()
    price_ids = ListAttribute(of=UnicodeAttribute)
    grants = JSONAttribute()
    grace_days = NumberAttribute()
    on_grace_end = UnicodeAttribute()
    created_at = NumberAttribute()
    plan_kind = UnicodeAttribute(null=True)  # absent on plans stored before kinds: subscription
    access_days = NumberAttribute(null=True)
    description = UnicodeAttribute(null=True)  # absent on plans stored before descriptions
    archived_at = NumberAttribute(null=True)
    checkout_options = JSONAttribute(null=True)  # absent on plans stored before: Checkout's defaults
    # Absent on plans stored before notices: the defaults (Plan's).
    renewal_notice_days = NumberAttribute(null=True)
    trial_notice_days = NumberAttribute(null=True)
    notices_set = BooleanAttribute(null=True)  # whether the two above were stored (None is "off")
    welcome_message = UnicodeAttribute(null=True)  # absent: the default welcome
    seats = NumberAttribute(null=True)  # absent: no limit
    trial_days = NumberAttribute(null=True)  # absent: no trial
    dispute_policy = UnicodeAttribute(null=True)  # absent: the deployment's DISPUTE_POLICY
    downgrade = UnicodeAttribute(null=True)  # absent: immediate


class PriceItem(MembershipItem, discriminator="price"):
    price_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()


class MemberItem(MembershipItem, discriminator="member"):
    member_id = UnicodeAttribute()
    created_at = NumberAttribute()
    origin = UnicodeAttribute()
    stripe_customer_id = UnicodeAttribute(null=True)
    identities = JSONAttribute(null=True)  # {platform: external id}
    handles = JSONAttribute(null=True)  # {platform: handle shown to the member}, when known
    # Read only, from items written before identities were platform-neutral.
    discord_user_id = UnicodeAttribute(null=True)
    discord_tokens = BinaryAttribute(null=True, legacy_encoding=False)


class MemberListedItem(MembershipItem, discriminator="member_listed"):
    """MEMBER#<id> / LISTED (by_kind: MEMBER / <id>): written once at creation so the admin list
    pages through members without a Scan, and without putting the often-updated MEMBER item (and
    its size) in the index at every write."""

    member_id = UnicodeAttribute()


class CredentialsItem(MembershipItem, discriminator="credentials"):
    member_id = UnicodeAttribute()
    platform = UnicodeAttribute()
    # Sealed by the token cipher: never logged, never in plaintext at rest.
    sealed = BinaryAttribute(legacy_encoding=False)


class LinkItem(MembershipItem, discriminator="link"):
    member_id = UnicodeAttribute()


class PlaceItem(MembershipItem, discriminator="place"):
    """One per (platform, external id): a guild, chat or group is registered as one community."""

    community_id = UnicodeAttribute()


class SubscriptionItem(MembershipItem, discriminator="subscription"):
    subscription_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    plan_id = UnicodeAttribute(null=True)
    latest = JSONAttribute(null=True)
    observations = JSONAttribute()
    via_checkout = BooleanAttribute()
    checkout_gate = UnicodeAttribute()
    cancel_requested_at = NumberAttribute(null=True)
    last_paid_at = NumberAttribute(null=True)
    refunded_payment_at = NumberAttribute(null=True)
    dispute = UnicodeAttribute(null=True)
    dispute_policy = UnicodeAttribute(null=True)
    dispute_paused = BooleanAttribute(null=True)  # absent: Membergate paused nothing
    cancellation_ends = ListAttribute(of=NumberAttribute, null=True)
    # [[created of a past_due snapshot, earliest removal for it]]: a late failure's minimum notice
    grace_floors = JSONAttribute(null=True)
    # The KPIs' history: {"lines": [distinct price lines], "points": [[created, status, paused, line set]]}
    history = JSONAttribute(null=True)
    version = VersionAttribute()
    # What the member agreed to on the Checkout page: {"session_id", "at", "terms_of_service", "text_version"}
    consent = JSONAttribute(null=True)
    # A tier change scheduled for the period end: {"plan_id", "price_id", "at", "schedule_id", "recorded_at"}
    pending_change = JSONAttribute(null=True)
    # The tax its prices include, from its latest paid invoice, as an exact "numerator/denominator"
    tax_inclusive_rate = UnicodeAttribute(null=True)


class GrantItem(MembershipItem, discriminator="grant"):
    member_id = UnicodeAttribute()
    grant_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    plan_kind = UnicodeAttribute()
    paid_at = NumberAttribute()
    access_seconds = NumberAttribute(null=True)
    gate = UnicodeAttribute()
    ended_reason = UnicodeAttribute(null=True)
    amount = NumberAttribute(default=0)
    currency = UnicodeAttribute(null=True)
    payment_intent = UnicodeAttribute(null=True)
    dispute = UnicodeAttribute(null=True)
    dispute_policy = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)  # manual | access_code; absent: paid through checkout
    reason = UnicodeAttribute(null=True)
    consent = JSONAttribute(null=True)  # as SubscriptionItem.consent
    community_id = UnicodeAttribute(null=True)  # only this place of the plan (an undone removal); absent: all
    ended_at = NumberAttribute(null=True)  # when ended_reason was set, where known (a revoke)
    tax = NumberAttribute(null=True)  # the tax inside amount (Stripe Tax); absent: none


class AuditItem(MembershipItem, discriminator="audit"):
    audit_id = UnicodeAttribute()
    at = NumberAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    target = UnicodeAttribute()
    member_id = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    detail = JSONAttribute(null=True)


class RemovalItem(MembershipItem, discriminator="removal"):
    removal_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    community_id = UnicodeAttribute()
    platform = UnicodeAttribute()
    at = NumberAttribute()
    reason = UnicodeAttribute()
    plan_id = UnicodeAttribute(null=True)
    undone_at = NumberAttribute(null=True)
    undo_grant_id = UnicodeAttribute(null=True)


class TrialItem(MembershipItem, discriminator="trial"):
    subscription_id = UnicodeAttribute()
    at = NumberAttribute()


class SeatCountItem(MembershipItem, discriminator="seat_count"):
    taken = NumberAttribute(default=0)


class SeatHoldItem(MembershipItem, discriminator="seat_hold"):
    member_id = UnicodeAttribute()
    held_at = NumberAttribute()
    session_id = UnicodeAttribute(null=True)


class CheckoutLockItem(MembershipItem, discriminator="checkout_lock"):
    holder = UnicodeAttribute()
    until = NumberAttribute()


class AccessCodeItem(MembershipItem, discriminator="access_code"):
    code_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    days = NumberAttribute(null=True)
    uses = NumberAttribute()
    used = NumberAttribute(default=0)
    expires_at = NumberAttribute(null=True)
    created_at = NumberAttribute()


class EntitlementsItem(MembershipItem, discriminator="entitlements"):
    member_id = UnicodeAttribute()
    entitlements = JSONAttribute()
    revision = UnicodeAttribute(null=True)  # optimistic lock of the projection (a token per write)


class AccessItem(MembershipItem, discriminator="access"):
    member_id = UnicodeAttribute()
    community_id = UnicodeAttribute()
    state = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    roles = ListAttribute(of=UnicodeAttribute, null=True)
    updated_at = NumberAttribute()
    attempts = NumberAttribute()
    granted_at = NumberAttribute()
    refusal = UnicodeAttribute(null=True)


class MessageItem(MembershipItem, discriminator="message"):
    member_id = UnicodeAttribute()
    message_kind = UnicodeAttribute()
    period = UnicodeAttribute()
    status = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    claimed_at = NumberAttribute()
    finished_at = NumberAttribute(null=True)


class CheckoutItem(MembershipItem, discriminator="checkout"):
    member_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    attempt = NumberAttribute()
    price_id = UnicodeAttribute(null=True)
    session_id = UnicodeAttribute(null=True)
    url = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()


class SessionItem(MembershipItem, discriminator="session"):
    member_id = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()


class OAuthStateItem(MembershipItem, discriminator="oauth_state"):
    session_id = UnicodeAttribute()
    plan_id = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()


class ClaimItem(MembershipItem, discriminator="claim"):
    member_id = UnicodeAttribute()
    expires_at = NumberAttribute()


class MemberRefItem(MembershipItem, discriminator="member_ref"):
    """MEMBER#<id> / REF#<pk>: points at an item of the member keyed elsewhere (a session or claim
    link, keyed by the token's digest), so erasing the member reaches it without a Scan."""

    ref_pk = UnicodeAttribute()
    ref_sk = UnicodeAttribute()
    ref_kind = UnicodeAttribute()  # session | claim
    expires_at = NumberAttribute()


class ErasureItem(MembershipItem, discriminator="erasure"):
    """MEMBER#<id> / ERASURE: the creator's erasure of a member (GDPR art. 17), kept as its proof."""

    member_id = UnicodeAttribute()
    reason = UnicodeAttribute()
    requested_at = NumberAttribute()
    erased_at = NumberAttribute(null=True)
    removed = JSONAttribute(null=True)  # {what: how many items}


class CounterItem(MembershipItem, discriminator="counter"):
    hits = NumberAttribute(default=0)


class LedgerByDayIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    ledger_day = UnicodeAttribute(hash_key=True)
    received_at = NumberAttribute(range_key=True)


class LedgerItem(Model):
    """Written by the intake with plain boto3 (same attribute names), read and marked here."""

    class Meta:
        table_name = "LedgerTable"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute()
    type = UnicodeAttribute()
    status = UnicodeAttribute()
    created = NumberAttribute()
    received_at = NumberAttribute()
    ledger_day = UnicodeAttribute()
    customer_id = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    processed_at = NumberAttribute(null=True)
    expires_at_ttl = TTLAttribute(null=True)

    by_day = LedgerByDayIndex()


def configure(membership_table: str, ledger_table: str, region: str, host: str | None = None) -> None:
    """Point the models at the deployed tables (names come from settings, not from code)."""
    for sub in MembershipItem.__subclasses__():
        sub.__dict__.get("_connection") and delattr(sub, "_connection")
    for model, name in ((MembershipItem, membership_table), (LedgerItem, ledger_table)):
        model.Meta.table_name = name
        model.Meta.region = region
        model.Meta.host = host
        model._connection = None
        # Made on the base class now, so every item class inherits it: one botocore client per
        # table instead of one per class (each costs ~80 ms to build on a cold start).
        model._get_connection()


class SurveyLinkItem(MembershipItem, discriminator="survey_link"):
    """An exit survey link, keyed by its token's SHA-256 digest (the token itself is never stored)."""

    member_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    period = UnicodeAttribute()
    expires_at = NumberAttribute()


class SurveyAnswerItem(MembershipItem, discriminator="survey_answer"):
    """One member's answer about one cancellation (its own partition: the member's reads stay as they were)."""

    member_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    period = UnicodeAttribute()
    choice = UnicodeAttribute()
    comment = UnicodeAttribute(null=True)
    answered_at = NumberAttribute()


class MemberLinkItem(MembershipItem, discriminator="member_link"):
    """A personal link in a member message, keyed by its token's SHA-256 digest."""

    member_id = UnicodeAttribute()
    purpose = UnicodeAttribute()
    plan_id = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()


class ContactItem(MembershipItem, discriminator="contact"):
    """A member's email (its own partition: the member's reads stay as they were)."""

    member_id = UnicodeAttribute()
    email = UnicodeAttribute()
    as_of = NumberAttribute(null=True)  # the created of the Stripe event that said it (ordering guard)


class CardItem(MembershipItem, discriminator="card"):
    """A Stripe customer's card on file: which payment method, when it expires, as of which event."""

    payment_method_id = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)
    as_of = NumberAttribute()
    erased = BooleanAttribute(null=True)  # the member was erased: the card is forgotten for good
    trial_key = UnicodeAttribute(null=True)  # the card's hashed one-trial key, never the fingerprint


class FunnelItem(MembershipItem, discriminator="funnel"):
    """FUNNEL#<YYYY-MM-DD> / <plan>#<step>: one join funnel counter, raised with an atomic ADD.

    One item per (plan, day, step), so no single item takes every view; a day's items share a
    partition that DynamoDB splits by sort key under load, and a period reads one Query a day."""

    plan_id = UnicodeAttribute()
    step = UnicodeAttribute()
    hits = NumberAttribute(default=0)


class KpiSnapshotItem(MembershipItem, discriminator="kpi_snapshot"):
    """KPI_SNAPSHOT#<time zone> / <YYYY-MM-DD>: one closed day's KPI snapshot (exact amounts as
    "n/d" strings); a period is one Query on the sort key."""

    data = JSONAttribute()


class KpiStateItem(MembershipItem, discriminator="kpi_state"):
    """KPI_SNAPSHOT#<time zone> / STATE: snapshots written through ``through``; ``dirty`` holds a
    mark per late or back-dated event (ADD to a set: no read, no lost update)."""

    through = UnicodeAttribute(null=True)
    dirty = UnicodeSetAttribute(null=True)


class LegacyCheckItem(MembershipItem, discriminator="legacy_check"):
    """LEGACY_CHECK#<what> / CHECK: the one look a reader took for items in an older key layout
    (``newest``: the newest such item seen, 0 for none; ``checked_at``), so later reads skip them."""

    newest = NumberAttribute()
    checked_at = NumberAttribute()
    looked_from = NumberAttribute(null=True)  # the oldest day looked at, when the look is by span
