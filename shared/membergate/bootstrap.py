"""The composition root: the only place that builds concrete adapters and wires use cases.

Builders import their adapters lazily so each function pays only for what it uses (the webhook
intake never loads PynamoDB, the Stripe SDK or Powertools utilities). The local stack swaps the
clock and nothing else: every outbound base URL is configuration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from . import config

if TYPE_CHECKING:  # the containers' types; importing them at run time would slow the intake's cold start
    from .adapters.http import HttpTransport
    from .adapters.intake import EventBodies, WebhookSecrets
    from .adapters.telegram import TelegramBotApi
    from .adapters.secrets import CachedSecrets
    from .domain.model import Platform
    from .domain.billing import SubscriptionSnapshot
    from .ports import (
        AccessWorkQueue,
        BillingEventDispatch,
        BillingGateway,
        BillingReader,
        PaidInvoice,
        PaymentLookup,
        Clock,
        CommunityConnector,
        EventLedger,
        IdentityProvider,
        Stores,
        TokenCipher,
        DeploymentProbe,
    )
    from .services.health import HealthTargets
    from .services.access import AccessDispatcher
    from .services.billing_events import BillingEventProcessor
    from .services.telegram import TelegramBot
    from .adapters.discord import DiscordConnector
    from .adapters.stripe_billing import StripeBillingGateway
    from .adapters.dynamodb.whatsapp_store import DynamoWhatsAppStore
    from .adapters.whatsapp import WhatsAppCloudApi, WhatsAppConnector
    from .ports import Mailer, ReconcileStore
    from .ports import ParameterStore, StripeSetup, WebhookRegistrar
    from .services.reconcile import Reconciler
    from .ports import AlertChannel, AlertStore
    from .services.alerts import AlertRecorder


class _QueueSettings(Protocol):
    """What building the access queue needs (every function that queues access work has it)."""

    @property
    def region(self) -> str: ...
    @property
    def access_queue_url(self) -> str: ...


class _StripeSettings(Protocol):
    """What building the Stripe gateway needs."""

    @property
    def region(self) -> str: ...
    @property
    def stripe_api_key_name(self) -> str: ...
    @property
    def stripe_api_base(self) -> str: ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


@dataclass
class _Overrides:
    clock: Clock | None = None
    # Replaces Lambda's asynchronous invoke of the billing processor (local stack, tests).
    billing_invoke: Callable[[bytes], None] | None = None
    discord_transport: HttpTransport | None = None
    stripe_http_client: object | None = None  # a stripe.HTTPClient (the SDK is imported lazily)
    telegram_transport: HttpTransport | None = None
    whatsapp_transport: HttpTransport | None = None
    # Replaces Lambda's asynchronous invoke of the reconcile function (local stack, tests).
    reconcile_invoke: Callable[[bytes], None] | None = None


_overrides = _Overrides()


@contextmanager
def overridden(**values: Any) -> Iterator[None]:
    """Swap clock/transports for the local stack and tests; restores them afterwards."""
    previous = {k: getattr(_overrides, k) for k in values}
    for key, value in values.items():
        setattr(_overrides, key, value)
    _reset_caches()
    try:
        yield
    finally:
        for key, value in previous.items():
            setattr(_overrides, key, value)
        _reset_caches()


def clock() -> Clock:
    return _overrides.clock or SystemClock()


@lru_cache(maxsize=None)
def _botocore_session(lean: bool) -> Any:
    """One botocore session (and loader) for every client of the process; ``lean`` reads the
    trimmed models and endpoints of adapters/botocore_models (every service Membergate builds a
    client for), the other one botocore's full data, only built for any other service."""
    if lean:
        from .adapters.botocore_models import lean_session

        return lean_session()
    import botocore.session

    return botocore.session.get_session()


@lru_cache(maxsize=None)
def _boto3_session(lean: bool) -> Any:
    import boto3

    return boto3.Session(botocore_session=_botocore_session(lean))


# The local stack builds clients from many threads at once: two first calls racing through the
# session cache would register boto3's S3 handlers twice on one botocore session, and every S3
# client after that fails ("Cannot inject class attribute upload_file").
_CLIENT_LOCK = threading.Lock()


@lru_cache(maxsize=None)
def aws_client(service: str, region: str) -> Any:
    from .adapters.botocore_models import SERVICES

    with _CLIENT_LOCK:
        return _boto3_session(service in SERVICES).client(service, region_name=region)


def _client_factory(region: str) -> Callable[[str], Any]:
    return lambda service: aws_client(service, region)


# --- webhook intake (import-light) ----------------------------------------------------------


@dataclass(frozen=True)
class Intake:
    settings: config.IntakeSettings
    ledger: EventLedger
    dispatch: BillingEventDispatch
    secrets: WebhookSecrets


@lru_cache(maxsize=None)
def intake() -> Intake:
    from .adapters.intake import DynamoEventLedger, LambdaEventDispatch, WebhookSecrets, lambda_async_invoker

    settings = config.IntakeSettings.from_env()
    factory = _client_factory(settings.region)
    invoke = _overrides.billing_invoke or lambda_async_invoker(factory("lambda"), settings.processor_function)
    return Intake(
        settings=settings,
        ledger=DynamoEventLedger(factory("dynamodb"), settings.ledger_table,
                                 config.RetentionSettings.from_env().ledger_retention_days * 86_400),
        dispatch=LambdaEventDispatch(
            invoke=invoke,
            s3=lambda: factory("s3"),
            bucket=settings.event_bodies_bucket,
            sqs=lambda: factory("sqs"),
            dead_letter_queue_url=settings.dead_letter_queue_url,
        ),
        secrets=WebhookSecrets(_secrets(settings.region), settings.webhook_secrets_name),
    )


# --- everything else ------------------------------------------------------------------------


def stores(settings: config.StoreSettings) -> Stores:
    from .adapters.dynamodb import models
    from .adapters.dynamodb.repositories import (
        DynamoAccessRepository,
        DynamoCatalogRepository,
        DynamoCheckoutRepository,
        DynamoEntitlementRepository,
        DynamoGrantRepository,
        DynamoLedgerRepository,
        DynamoMemberRepository,
        DynamoMemberStateReader,
        DynamoMessageLog,
        DynamoPrivacyStore,
        DynamoSubscriptionRepository,
        DynamoSurveyStore,
        DynamoContactStore,
        DynamoMemberLinkStore,
        DynamoWebSessionStore,
    )
    from .adapters.dynamodb.migrations import DynamoMigrationStore
    from .adapters.dynamodb.controls import DynamoAccessCodeStore, DynamoAuditLog, DynamoGivenGrantIndex, DynamoRemovalLog
    from .adapters.dynamodb.seats import DynamoSeatStore
    from .adapters.dynamodb.checkout_locks import DynamoCheckoutLocks
    from .adapters.dynamodb.trials import DynamoTrialLedger
    from .adapters.dynamodb.repositories import DynamoCardStore
    from .adapters.dynamodb.kpi_store import DynamoFunnelLog, DynamoKpiSnapshotStore
    from .adapters.dynamodb.holds import DynamoCommunityHolds
    from .ports import Stores

    models.configure(settings.membership_table, settings.ledger_table, settings.region)
    retention = config.RetentionSettings.from_env()
    return Stores(
        catalog=DynamoCatalogRepository(),
        members=DynamoMemberRepository(),
        subscriptions=DynamoSubscriptionRepository(),
        entitlements=DynamoEntitlementRepository(),
        access=DynamoAccessRepository(),
        messages=DynamoMessageLog(retention.message_retention_days * 86_400),
        checkouts=DynamoCheckoutRepository(),
        ledger=DynamoLedgerRepository(retention.ledger_retention_days * 86_400),
        sessions=DynamoWebSessionStore(),
        grants=DynamoGrantRepository(),
        states=DynamoMemberStateReader(),
        privacy=DynamoPrivacyStore(),
        surveys=DynamoSurveyStore(),
        contacts=DynamoContactStore(),
        cards=DynamoCardStore(),
        member_links=DynamoMemberLinkStore(),
        audit=DynamoAuditLog(),
        given_grants=DynamoGivenGrantIndex(),
        access_codes=DynamoAccessCodeStore(),
        migrations=DynamoMigrationStore(),
        removals=DynamoRemovalLog(),
        seats=DynamoSeatStore(),
        checkout_locks=DynamoCheckoutLocks(),
        trials=DynamoTrialLedger(),
        funnel=DynamoFunnelLog(config.ReportingSettings.from_env().time_zone, lambda: clock().now()),
        kpi_snapshots=DynamoKpiSnapshotStore(config.ReportingSettings.from_env().time_zone),
        holds=DynamoCommunityHolds(),
    )


def _access_queue(settings: _QueueSettings) -> AccessWorkQueue:
    from .adapters.aws import SqsAccessWorkQueue
    from .observability import logger

    return SqsAccessWorkQueue(aws_client("sqs", settings.region), settings.access_queue_url, logger.get_correlation_id)


@lru_cache(maxsize=None)
def _secrets(region: str) -> CachedSecrets:
    from .adapters.secrets import CachedSecrets

    return CachedSecrets(_client_factory(region))


def _stripe(settings: _StripeSettings) -> StripeBillingGateway:
    from .adapters.stripe_billing import StripeBillingGateway

    api_key = _secrets(settings.region).get(settings.stripe_api_key_name)
    return StripeBillingGateway.build(api_key, settings.stripe_api_base, _overrides.stripe_http_client)


def _billing(settings: _StripeSettings) -> BillingGateway:
    return _stripe(settings)


class _LazyPaymentLookup:
    """Reads the Stripe key on the first dispute, not at every processor cold start."""

    def __init__(self, settings: config.ProcessorSettings):
        self._settings = settings

    def invoice_paid_by(self, payment_intent: str) -> PaidInvoice | None:
        return _stripe(self._settings).invoice_paid_by(payment_intent)


def _payment_lookup(settings: config.ProcessorSettings) -> PaymentLookup | None:
    """Which invoice a disputed payment paid; None when the processor has no Stripe key configured."""
    return _LazyPaymentLookup(settings) if settings.stripe_api_key_name else None


def _billing_reader(settings: _StripeSettings) -> BillingReader:
    """Stripe's read side (reconciliation lists subscriptions and undelivered events)."""
    return _stripe(settings)


def _discord(region: str, token_name: str, api_base: str, per_second: int) -> DiscordConnector:
    """The bot behind the connector port; ``per_second``: this function's share of the global limit
    (required: every function holding the bot token has its share, config.DISCORD_BUDGET)."""
    from .adapters.discord import BotRateLimits, DiscordCommunityConnector, DiscordConnector

    secrets = _secrets(region)
    limits = BotRateLimits(per_second=per_second)
    return DiscordConnector(
        DiscordCommunityConnector(_discord_transport(), lambda: secrets.get(token_name), api_base, rate_limits=limits)
    )


def _discord_transport() -> Any:
    if _overrides.discord_transport is not None:
        return _overrides.discord_transport
    from .adapters.http import UrllibTransport

    return UrllibTransport()


def _identity(settings: config.JoinSettings) -> IdentityProvider:
    from .adapters.discord import DiscordIdentityProvider

    secrets = _secrets(settings.region)
    return DiscordIdentityProvider(
        _discord_transport(),
        settings.discord_client_id,
        lambda: secrets.get(settings.discord_client_secret_name),
        settings.discord_api_base,
        settings.discord_oauth_base,
    )


def _cipher(settings: config.JoinSettings) -> TokenCipher:
    if settings.token_sealing == "kms":
        from .adapters.aws import KmsTokenCipher

        return KmsTokenCipher(aws_client("kms", settings.region), settings.token_key_id)
    from .adapters.aws import DataKeyTokenCipher

    secrets = _secrets(settings.region)
    return DataKeyTokenCipher(lambda: secrets.get(settings.token_keys_name))


@dataclass(frozen=True)
class Processor:
    settings: config.ProcessorSettings
    processor: BillingEventProcessor
    bodies: EventBodies


class _LazyTrialEnder:
    """Stripe for the processor's one call (ending a repeated card's trial), built on first use:
    the processor's cold start never imports the Stripe SDK nor reads the key for it."""

    def __init__(self, settings: config.ProcessorSettings) -> None:
        self.settings = settings

    def end_trial(self, subscription_id: str, idempotency_key: str) -> None:
        _stripe(self.settings).end_trial(subscription_id, idempotency_key)


class _LazyCollectionPauser:
    """Stripe for pausing a disputed subscription's billing, built on the first dispute (as above)."""

    def __init__(self, settings: config.ProcessorSettings) -> None:
        self.settings = settings

    def set_collection_paused(self, subscription_id: str, paused: bool, idempotency_key: str) -> dict[str, Any] | None:
        return _stripe(self.settings).set_collection_paused(subscription_id, paused, idempotency_key)


class _LazySubscriptionReader:
    """Stripe for reading a subscription back when two of its events tie in one second (as above)."""

    def __init__(self, settings: config.ProcessorSettings) -> None:
        self.settings = settings

    def fetch_subscription(self, subscription_id: str, read_at: int) -> SubscriptionSnapshot | None:
        return _stripe(self.settings).fetch_subscription(subscription_id, read_at)


@lru_cache(maxsize=None)
def processor() -> Processor:
    from dataclasses import replace

    from .adapters.intake import EventBodies
    from .services.billing_events import BillingEventProcessor
    from .services.catalog_snapshot import CatalogSnapshot

    settings = config.ProcessorSettings.from_env()
    base = stores(settings)
    # Plans and communities are read once per container, not per price, plan and community.
    processor_stores = replace(base, catalog=CatalogSnapshot(base.catalog))
    return Processor(
        settings,
        BillingEventProcessor(processor_stores, _access_queue(settings), dispute_policy=settings.dispute_policy,
                              payments=_payment_lookup(settings), alerts=alert_recorder(),
                              trial_ender=_LazyTrialEnder(settings) if settings.stripe_api_key_name else None,
                              collection=_LazyCollectionPauser(settings) if settings.stripe_api_key_name else None,
                              reader=_LazySubscriptionReader(settings) if settings.stripe_api_key_name else None,
                              grace_min_notice=settings.grace_min_notice_hours * 3600),
        EventBodies(aws_client("s3", settings.region)),
    )


@dataclass(frozen=True)
class Dispatcher:
    settings: config.DispatcherSettings
    dispatcher: AccessDispatcher
    queue: AccessWorkQueue


@lru_cache(maxsize=None)
def dispatcher() -> Dispatcher:
    from .domain.model import Platform
    from .domain.links import Links
    from .services.access import AccessDispatcher

    settings = config.DispatcherSettings.from_env()
    # This process's share of the bot's global limit (see DispatcherSettings).
    discord = _discord(settings.region, settings.discord_bot_token_name, settings.discord_api_base,
                       settings.discord_requests_per_second)
    # One connector per platform; Telegram and WhatsApp plug in here beside Discord.
    connectors: dict[Platform, CommunityConnector] = {Platform.DISCORD: discord}
    if settings.telegram_bot_token_name:
        from .adapters.telegram import TelegramConnector

        connectors[Platform.TELEGRAM] = TelegramConnector(_telegram_api(settings))
    repositories = stores(settings)
    if settings.whatsapp_phone_number_id:
        connectors[Platform.WHATSAPP] = _whatsapp_connector(settings, repositories)
    queue = _access_queue(settings)
    service = AccessDispatcher(
        repositories, connectors, _identity(settings), _cipher(settings), Links(settings.public_base_url),
        mailer=_mailer(settings), email_always=settings.email_messages == "always", alerts=alert_recorder(),
    )
    return Dispatcher(settings, service, queue)


def _mailer(settings: config.DispatcherSettings) -> Mailer | None:
    if not settings.email_from_address:
        return None
    from .adapters.ses import SesMailer

    return SesMailer(aws_client("sesv2", settings.region), settings.email_from_address)


def _telegram_api(
    settings: config.DispatcherSettings | config.TelegramSettings | config.ReconcileSettings | config.AdminSettings,
) -> TelegramBotApi:
    from .adapters.http import UrllibTransport
    from .adapters.telegram import TelegramBotApi

    secrets = _secrets(settings.region)
    return TelegramBotApi(
        _overrides.telegram_transport or UrllibTransport(),
        lambda: secrets.get(settings.telegram_bot_token_name),
        settings.telegram_api_base,
    )


@dataclass(frozen=True)
class Telegram:
    settings: config.TelegramSettings
    stores: Stores
    api: TelegramBot
    webhook_secret: Callable[[], str]
    queue: AccessWorkQueue
    # platform -> connector, for a member's relink (the old account is taken out of the chat)
    connectors: Callable[[], dict[Platform, CommunityConnector]] = dict


@lru_cache(maxsize=None)
def telegram() -> Telegram:
    from .adapters.telegram import TelegramConnector
    from .domain.model import Platform

    settings = config.TelegramSettings.from_env()
    secrets = _secrets(settings.region)
    name = settings.telegram_webhook_secret_name
    api = _telegram_api(settings)
    return Telegram(
        settings,
        stores(settings),
        api,
        # No secret name configured: the webhook accepts nothing (secret_matches refuses "").
        lambda: secrets.get(name) if name else "",
        _access_queue(settings),
        lambda: {Platform.TELEGRAM: TelegramConnector(api)},
    )


def whatsapp_store() -> DynamoWhatsAppStore:
    from .adapters.dynamodb.whatsapp_store import DynamoWhatsAppStore

    return DynamoWhatsAppStore()


def _whatsapp_connector(settings: config.DispatcherSettings, repositories: Stores) -> WhatsAppConnector:
    from .adapters.whatsapp import WhatsAppCloudApi, WhatsAppConnector, WhatsAppGateway
    from .domain.model import Platform

    secrets = _secrets(settings.region)
    cloud = WhatsAppCloudApi(
        _whatsapp_transport(),
        lambda: secrets.get(settings.whatsapp_access_token_name),
        settings.whatsapp_phone_number_id,
        settings.whatsapp_api_base,
    )
    gateway = None
    if settings.whatsapp_gateway_url:
        gateway = WhatsAppGateway(
            _whatsapp_transport(), settings.whatsapp_gateway_url, lambda: secrets.get(settings.whatsapp_gateway_key_name)
        )

    def find_member(phone: str) -> str | None:
        member = repositories.members.find_by_identity(Platform.WHATSAPP, phone)
        return member.id if member else None

    def locale_of(phone: str) -> str:
        # The language of a WhatsApp place the member has access records in (their community's).
        member = repositories.members.find_by_identity(Platform.WHATSAPP, phone)
        for record in repositories.access.for_member(member.id) if member else ():
            community = repositories.catalog.get_community(record.community_id)
            if community is not None and community.platform is Platform.WHATSAPP:
                return community.locale
        return "en"

    tasks: Any = whatsapp_store()
    if (alerts := alert_recorder()) is not None:
        from .adapters.alert_channels import AlertingRemovalTasks

        tasks = AlertingRemovalTasks(tasks, alerts, lambda: clock().now())
    return WhatsAppConnector(cloud, tasks, find_member, lambda: clock().now(), gateway=gateway,
                             notice_template=settings.whatsapp_notice_template, locale_of=locale_of)


@dataclass(frozen=True)
class Lifecycle:
    settings: config.LifecycleSettings
    stores: Stores
    queue: AccessWorkQueue

    @cached_property
    def billing(self) -> BillingGateway:
        """Built on first use: a sweep with nothing to cancel never reads the Stripe key."""
        return _billing(self.settings)


@lru_cache(maxsize=None)
def lifecycle() -> Lifecycle:
    settings = config.LifecycleSettings.from_env()
    return Lifecycle(settings, stores(settings), _access_queue(settings))


@dataclass(frozen=True)
class Checkout:
    settings: config.CheckoutSettings
    stores: Stores

    @cached_property
    def billing(self) -> BillingGateway:
        """Built on first use: a refused request never reads the Stripe key."""
        if not self.settings.stripe_portal_configuration:
            return _billing(self.settings)
        from .adapters.stripe_billing import StripeBillingGateway

        api_key = _secrets(self.settings.region).get(self.settings.stripe_api_key_name)
        return StripeBillingGateway.build(api_key, self.settings.stripe_api_base, _overrides.stripe_http_client,
                                          self.settings.stripe_portal_configuration)


@lru_cache(maxsize=None)
def checkout() -> Checkout:
    settings = config.CheckoutSettings.from_env()
    return Checkout(settings, stores(settings))


@dataclass(frozen=True)
class Join:
    settings: config.JoinPageSettings
    stores: Stores
    identity: IdentityProvider
    cipher: TokenCipher
    queue: AccessWorkQueue
    # platform -> connector, for a member's relink (the old account loses its role at once)
    connectors: Callable[[], dict[Platform, CommunityConnector]] = dict

    @cached_property
    def billing(self) -> BillingGateway:
        """Prices shown on the join page: the Stripe key is read only when a page asks."""
        return _billing(self.settings)


@lru_cache(maxsize=None)
def join() -> Join:
    settings = config.JoinPageSettings.from_env()

    @lru_cache(maxsize=1)
    def connectors() -> dict[Platform, CommunityConnector]:
        # Built on first use: only a relink talks to the bot.
        from .domain.model import Platform

        if not settings.discord_bot_token_name:
            return {}
        return {Platform.DISCORD: _discord(settings.region, settings.discord_bot_token_name,
                                           settings.discord_api_base, config.DISCORD_JOIN_PER_SECOND)}

    return Join(settings, stores(settings), _identity(settings), _cipher(settings), _access_queue(settings),
                connectors)


@dataclass(frozen=True)
class Admin:
    settings: config.AdminSettings
    stores: Stores
    admin_token: Callable[[], str]
    queue: AccessWorkQueue
    connectors: Callable[[], dict[Platform, CommunityConnector]] = dict  # for the bot preflight

    @cached_property
    def billing(self) -> BillingGateway | None:
        """Stripe, read lazily: plan creation checks its prices (PRICE_CHECK); None when off."""
        if not (self.settings.price_check and self.settings.stripe_api_key_name):
            return None
        return _billing(self.settings)

    @cached_property
    def stripe(self) -> BillingGateway | None:
        """Stripe for admin actions on a subscription (a tier switch), whatever PRICE_CHECK says; None without a key."""
        return _billing(self.settings) if self.settings.stripe_api_key_name else None

    @cached_property
    def health_probe(self) -> DeploymentProbe:
        """GET /admin/health reads SSM, EventBridge Scheduler and SQS through short-timeout clients."""
        from .adapters.aws import AwsDeploymentProbe

        return AwsDeploymentProbe(_health_clients(self.settings.region))

    @property
    def health_targets(self) -> HealthTargets:
        return health_targets(self.settings)


def health_targets(settings: config.AdminSettings) -> HealthTargets:
    """Every secret the deployment reads, its schedules and its dead-letter queue, by name."""
    from .domain.model import Platform
    from .services.health import HealthTargets, SecretNeed

    s = settings
    needs = [
        SecretNeed(s.admin_token_name, "the admin API's bearer token", "AdminTokenSecretName"),
        SecretNeed(s.stripe_api_key_name, "your Stripe restricted key, rk_...", "StripeApiKeySecretName"),
        SecretNeed(s.webhook_secrets_name, "the Stripe webhook signing secret, whsec_...",
                   "StripeWebhookSecretsSecretName"),
        SecretNeed(s.token_keys_name if s.token_sealing == "parameter" else "", "the data key sealing members' tokens, k1:<base64 of 32 bytes>",
                   "TokenKeysSecretName"),
        SecretNeed(s.discord_bot_token_name, "the Discord bot token", "DiscordBotTokenSecretName", Platform.DISCORD),
        SecretNeed(s.discord_client_secret_name, "the Discord OAuth2 client secret", "DiscordClientSecretSecretName",
                   Platform.DISCORD),
        SecretNeed(s.telegram_bot_token_name, "the Telegram bot token from @BotFather", "TelegramBotTokenSecretName",
                   Platform.TELEGRAM),
        SecretNeed(s.telegram_webhook_secret_name, "the Telegram webhook secret", "TelegramWebhookSecretSecretName",
                   Platform.TELEGRAM),
        SecretNeed(s.whatsapp_access_token_name, "the WhatsApp system user token", "WhatsAppAccessTokenSecretName",
                   Platform.WHATSAPP),
        SecretNeed(s.whatsapp_app_secret_name, "the Meta app secret", "WhatsAppAppSecretSecretName", Platform.WHATSAPP),
        SecretNeed(s.whatsapp_verify_token_name, "the WhatsApp webhook verify token", "WhatsAppVerifyTokenSecretName",
                   Platform.WHATSAPP),
        SecretNeed(s.whatsapp_gateway_key_name, "your WhatsApp gateway's API key", "WhatsAppGatewayKeySecretName",
                   Platform.WHATSAPP, "gateway"),
    ]
    return HealthTargets(
        secrets=tuple(n for n in needs if n.name),  # an unset name: the function has no such secret to read
        schedules=s.health_schedules,
        dead_letter_queues=(s.health_dead_letter_queue,) if s.health_dead_letter_queue else (),
        whatsapp_phone_number_id_set=bool(s.whatsapp_phone_number_id),
        whatsapp_gateway_url_set=bool(s.whatsapp_gateway_url),
        terms_url_set=bool(s.terms_url),
    )


# A health check must answer within API Gateway's 30 s: 2 s to connect, 3 s to read, one retry.
HEALTH_AWS_TIMEOUTS = {"connect_timeout": 2, "read_timeout": 3, "retries": {"max_attempts": 2, "mode": "standard"}}


def _health_clients(region: str) -> Callable[[str], Any]:
    from botocore.config import Config

    from .adapters.botocore_models import TRIMMED_SERVICES

    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            with _CLIENT_LOCK:
                made[service] = _boto3_session(service in TRIMMED_SERVICES).client(
                    service, region_name=region, config=Config(**HEALTH_AWS_TIMEOUTS))
        return made[service]

    return client


@lru_cache(maxsize=None)
def admin() -> Admin:
    settings = config.AdminSettings.from_env()
    secrets = _secrets(settings.region)

    @lru_cache(maxsize=1)
    def connectors() -> dict[Platform, CommunityConnector]:
        # Built on first use: most admin requests never talk to a platform.
        from .domain.model import Platform

        found: dict[Platform, CommunityConnector] = {}
        if settings.discord_bot_token_name:
            found[Platform.DISCORD] = _discord(settings.region, settings.discord_bot_token_name, settings.discord_api_base,
                                               config.DISCORD_ADMIN_PER_SECOND)
        if settings.telegram_bot_token_name:  # a migration's offer posted in the group
            from .adapters.telegram import TelegramConnector

            found[Platform.TELEGRAM] = TelegramConnector(_telegram_api(settings))
        return found

    return Admin(
        settings, stores(settings), lambda: secrets.get(settings.admin_token_name), _access_queue(settings), connectors
    )


@dataclass(frozen=True)
class Interactions:
    settings: config.InteractionsSettings
    stores: Stores
    queue: AccessWorkQueue


@lru_cache(maxsize=None)
def interactions() -> Interactions:
    settings = config.InteractionsSettings.from_env()
    return Interactions(settings, stores(settings), _access_queue(settings))


@dataclass(frozen=True)
class Reconcile:
    settings: config.ReconcileSettings
    reconciler: Reconciler


@lru_cache(maxsize=None)
def reconcile() -> Reconcile:
    from .adapters.dynamodb.reconcile import DynamoReconcileStore
    from .domain.model import Platform
    from .domain.reconcile import Policy
    from .ports import MemberLister
    from .services.reconcile import Reconciler

    settings = config.ReconcileSettings.from_env()
    # Its own share of the bot's global limit, beside the dispatchers' (ReconcileSettings).
    discord = _discord(settings.region, settings.discord_bot_token_name, settings.discord_api_base,
                       settings.discord_requests_per_second)
    connectors: dict[Platform, CommunityConnector] = {Platform.DISCORD: discord}
    listers: dict[Platform, MemberLister] = {Platform.DISCORD: discord}
    if settings.telegram_bot_token_name:
        from .adapters.telegram import TelegramConnector

        connectors[Platform.TELEGRAM] = TelegramConnector(_telegram_api(settings))
    policy = Policy(settings.reconcile_fix_missing, settings.reconcile_remove_extra)
    reconciler = Reconciler(stores(settings), DynamoReconcileStore(), _access_queue(settings), connectors, listers,
                            _billing_reader(settings), policy, alerts=alert_recorder())
    return Reconcile(settings, reconciler)


def start_reconcile(lease_holder: str) -> None:
    """Start the reconcile function without waiting for it (POST /admin/reconcile), under the lease it took."""
    import json

    payload = json.dumps({"source": "membergate.admin", "lease_holder": lease_holder}).encode()
    if _overrides.reconcile_invoke is not None:
        _overrides.reconcile_invoke(payload)
        return
    from .adapters.intake import lambda_async_invoker

    settings = admin().settings
    lambda_async_invoker(aws_client("lambda", settings.region), settings.reconcile_function)(payload)


def reconcile_store() -> ReconcileStore:
    """The reconciliation reports, for the admin API (its stores configure the table first)."""
    from .adapters.dynamodb.reconcile import DynamoReconcileStore

    admin()
    return DynamoReconcileStore()


@dataclass(frozen=True)
class WhatsApp:
    settings: config.WhatsAppSettings
    stores: Stores
    app_secret: Callable[[], str]
    verify_token: Callable[[], str]
    window: DynamoWhatsAppStore  # when each phone last wrote (the 24-hour window)
    cloud: Callable[[], WhatsAppCloudApi]  # the Cloud API client, built on first use (a handshake needs none)


def _whatsapp_transport() -> HttpTransport:
    if _overrides.whatsapp_transport is not None:
        return _overrides.whatsapp_transport
    from .adapters.http import UrllibTransport

    return UrllibTransport()


@lru_cache(maxsize=None)
def whatsapp() -> WhatsApp:
    settings = config.WhatsAppSettings.from_env()
    secrets = _secrets(settings.region)

    @lru_cache(maxsize=1)
    def cloud() -> WhatsAppCloudApi:
        from .adapters.whatsapp import WhatsAppCloudApi

        return WhatsAppCloudApi(
            _whatsapp_transport(),
            lambda: secrets.get(settings.whatsapp_access_token_name),
            settings.whatsapp_phone_number_id,
            settings.whatsapp_api_base,
        )

    return WhatsApp(
        settings,
        stores(settings),
        lambda: secrets.get(settings.whatsapp_app_secret_name),
        lambda: secrets.get(settings.whatsapp_verify_token_name),
        whatsapp_store(),
        cloud,
    )


# --- creator alerts ------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def alert_recorder() -> AlertRecorder | None:
    """None unless a channel is set (AlertSettings): a deployment without alerts writes none."""
    from .adapters.dynamodb.alerts import DynamoAlertStore
    from .services.alerts import AlertRecorder

    try:
        settings = config.AlertSettings.from_env()
    except config.SettingsError as error:
        # A mistyped alert setting must not stop billing or access: no alerts, and the lifecycle
        # function (which sends the digest) fails with the same message where the creator looks.
        import logging

        logging.getLogger(__name__).error("creator alerts are off: %s", error)
        return None
    return AlertRecorder(DynamoAlertStore(), settings.alert_kinds) if settings.enabled else None


@dataclass(frozen=True)
class AlertDigest:
    settings: config.AlertSettings
    store: AlertStore
    channels: list[AlertChannel]
    dashboard_url: str


@lru_cache(maxsize=None)
def alert_digest() -> AlertDigest:
    """The hourly digest's sender, built in the lifecycle function (its stores configure the table)."""
    from .adapters.alert_channels import DiscordAlertChannel, EmailAlertChannel, TelegramAlertChannel
    from .adapters.dynamodb.alerts import DynamoAlertStore

    settings = config.AlertSettings.from_env()
    host = lifecycle().settings
    channels: list[AlertChannel] = []
    if settings.enabled and settings.alert_discord_channel_id and host.discord_bot_token_name:
        bot = _discord(host.region, host.discord_bot_token_name, host.discord_api_base, config.DISCORD_ALERTS_PER_SECOND).bot
        channels.append(DiscordAlertChannel(bot, settings.alert_discord_channel_id))
    if settings.enabled and settings.alert_telegram_chat_id and host.telegram_bot_token_name:
        from .adapters.http import UrllibTransport
        from .adapters.telegram import TelegramBotApi

        secrets = _secrets(host.region)
        api = TelegramBotApi(_overrides.telegram_transport or UrllibTransport(),
                             lambda: secrets.get(host.telegram_bot_token_name), host.telegram_api_base)
        channels.append(TelegramAlertChannel(api, settings.alert_telegram_chat_id))
    if settings.enabled and settings.alert_email and host.email_from_address:
        from .adapters.ses import SesMailer

        channels.append(EmailAlertChannel(SesMailer(aws_client("sesv2", host.region), host.email_from_address),
                                          settings.alert_email))
    dashboard = f"{host.public_base_url}/admin/dashboard" if host.public_base_url else ""
    return AlertDigest(settings, DynamoAlertStore(), channels, dashboard)


def _reset_caches() -> None:
    for builder in (intake, processor, dispatcher, lifecycle, checkout, join, admin, interactions, telegram, reconcile,
                    whatsapp, aws_client, _secrets, alert_recorder, alert_digest,
                    _boto3_session, _botocore_session):
        builder.cache_clear()


# --- `membergate init` and `doctor` (on the creator's machine, never in a Lambda function) ------------


@dataclass(frozen=True)
class SetupTools:
    stripe: StripeSetup
    parameters: ParameterStore
    telegram: WebhookRegistrar | None


def stripe_setup(stripe_key: str, stripe_api_base: str, http_client: Any = None) -> StripeSetup:
    from .adapters.stripe_setup import StripeSetupApi

    return StripeSetupApi.build(stripe_key, stripe_api_base, http_client)


def setup_tools(
    stripe_key: str,
    stripe_api_base: str,
    region: str,
    telegram_bot_token: str | None = None,
    telegram_api_base: str = "",
    stripe_http_client: Any = None,
) -> SetupTools:
    """The adapters `membergate init` works through; SSM through a full client (the trimmed one only reads)."""
    from .adapters.ssm_parameters import SsmParameterStore, TelegramWebhookRegistrar

    telegram: WebhookRegistrar | None = None
    if telegram_bot_token:
        from .adapters.http import UrllibTransport
        from .adapters.telegram import DEFAULT_API_BASE, TelegramBotApi

        token = telegram_bot_token
        api = TelegramBotApi(_overrides.telegram_transport or UrllibTransport(), lambda: token,
                             telegram_api_base or DEFAULT_API_BASE)
        telegram = TelegramWebhookRegistrar(api)
    return SetupTools(
        stripe=stripe_setup(stripe_key, stripe_api_base, stripe_http_client),
        parameters=SsmParameterStore(_boto3_session(False).client("ssm", region_name=region)),
        telegram=telegram,
    )
