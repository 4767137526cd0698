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
from functools import lru_cache
from typing import Any

from . import config


class SystemClock:
    def now(self) -> int:
        return int(time.time())


@dataclass
class _Overrides:
    clock: Any = None
    # Replaces Lambda's asynchronous invoke of the billing processor (local stack, tests).
    billing_invoke: Any = None
    discord_transport: Any = None
    stripe_http_client: Any = None
    telegram_transport: Any = None


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


def clock() -> Any:
    return _overrides.clock or SystemClock()


@lru_cache(maxsize=None)
def _botocore_session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@lru_cache(maxsize=None)
def _boto3_session(trimmed: bool) -> Any:
    """Every client shares one botocore loader (and its caches); ``trimmed`` clients read the
    trimmed service models of adapters/botocore_models through it (the intake's SSM client)."""
    import boto3

    if not trimmed:
        return boto3.Session(botocore_session=_botocore_session())
    from .adapters.botocore_models import trimmed_session

    return boto3.Session(botocore_session=trimmed_session(_botocore_session()))


# The local stack builds clients from many threads at once: two first calls racing through the
# session cache would register boto3's S3 handlers twice on one botocore session, and every S3
# client after that fails ("Cannot inject class attribute upload_file").
_CLIENT_LOCK = threading.Lock()


@lru_cache(maxsize=None)
def aws_client(service: str, region: str) -> Any:
    from .adapters.botocore_models import TRIMMED_SERVICES

    with _CLIENT_LOCK:
        return _boto3_session(service in TRIMMED_SERVICES).client(service, region_name=region)


def _client_factory(region: str) -> Callable[[str], Any]:
    return lambda service: aws_client(service, region)


# --- webhook intake (import-light) ----------------------------------------------------------


@dataclass(frozen=True)
class Intake:
    settings: config.IntakeSettings
    ledger: Any
    dispatch: Any
    secrets: Any


@lru_cache(maxsize=None)
def intake() -> Intake:
    from .adapters.intake import DynamoEventLedger, LambdaEventDispatch, WebhookSecrets, lambda_async_invoker

    settings = config.IntakeSettings.from_env()
    factory = _client_factory(settings.region)
    invoke = _overrides.billing_invoke or lambda_async_invoker(factory("lambda"), settings.processor_function)
    return Intake(
        settings=settings,
        ledger=DynamoEventLedger(factory("dynamodb"), settings.ledger_table),
        dispatch=LambdaEventDispatch(
            invoke=invoke,
            s3=factory("s3"),
            bucket=settings.event_bodies_bucket,
            sqs=factory("sqs"),
            dead_letter_queue_url=settings.dead_letter_queue_url,
        ),
        secrets=WebhookSecrets(_secrets(settings.region), settings.webhook_secrets_name),
    )


# --- everything else ------------------------------------------------------------------------


def stores(settings: config.StoreSettings) -> Any:
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
        DynamoSubscriptionRepository,
        DynamoWebSessionStore,
    )
    from .adapters.dynamodb.controls import DynamoAccessCodeStore, DynamoAuditLog, DynamoGivenGrantIndex
    from .ports import Stores

    models.configure(settings.membership_table, settings.ledger_table, settings.region)
    return Stores(
        catalog=DynamoCatalogRepository(),
        members=DynamoMemberRepository(),
        subscriptions=DynamoSubscriptionRepository(),
        entitlements=DynamoEntitlementRepository(),
        access=DynamoAccessRepository(),
        messages=DynamoMessageLog(),
        checkouts=DynamoCheckoutRepository(),
        ledger=DynamoLedgerRepository(),
        sessions=DynamoWebSessionStore(),
        grants=DynamoGrantRepository(),
        states=DynamoMemberStateReader(),
        audit=DynamoAuditLog(),
        given_grants=DynamoGivenGrantIndex(),
        access_codes=DynamoAccessCodeStore(),
    )


def _access_queue(settings: Any) -> Any:
    from .adapters.aws import SqsAccessWorkQueue
    from .observability import logger

    return SqsAccessWorkQueue(aws_client("sqs", settings.region), settings.access_queue_url, logger.get_correlation_id)


@lru_cache(maxsize=None)
def _secrets(region: str) -> Any:
    from .adapters.secrets import CachedSecrets

    return CachedSecrets(_client_factory(region))


def _billing(settings: Any) -> Any:
    from .adapters.stripe_billing import StripeBillingGateway

    api_key = _secrets(settings.region).get(settings.stripe_api_key_name)
    return StripeBillingGateway.build(api_key, settings.stripe_api_base, _overrides.stripe_http_client)


def _discord_transport() -> Any:
    if _overrides.discord_transport is not None:
        return _overrides.discord_transport
    from .adapters.http import UrllibTransport

    return UrllibTransport()


def _identity(settings: config.JoinSettings) -> Any:
    from .adapters.discord import DiscordIdentityProvider

    secrets = _secrets(settings.region)
    return DiscordIdentityProvider(
        _discord_transport(),
        settings.discord_client_id,
        lambda: secrets.get(settings.discord_client_secret_name),
        settings.discord_api_base,
        settings.discord_oauth_base,
    )


def _cipher(settings: config.JoinSettings) -> Any:
    if settings.token_sealing == "kms":
        from .adapters.aws import KmsTokenCipher

        return KmsTokenCipher(aws_client("kms", settings.region), settings.token_key_id)
    from .adapters.aws import DataKeyTokenCipher

    secrets = _secrets(settings.region)
    return DataKeyTokenCipher(lambda: secrets.get(settings.token_keys_name))


@dataclass(frozen=True)
class Processor:
    settings: config.ProcessorSettings
    processor: Any
    bodies: Any


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
        BillingEventProcessor(processor_stores, _access_queue(settings), dispute_policy=settings.dispute_policy),
        EventBodies(aws_client("s3", settings.region)),
    )


@dataclass(frozen=True)
class Dispatcher:
    settings: config.DispatcherSettings
    dispatcher: Any
    queue: Any


@lru_cache(maxsize=None)
def dispatcher() -> Dispatcher:
    from .adapters.discord import BotRateLimits, DiscordCommunityConnector, DiscordConnector
    from .domain.model import Platform
    from .services.access import AccessDispatcher, Links

    settings = config.DispatcherSettings.from_env()
    secrets = _secrets(settings.region)
    bot = DiscordCommunityConnector(
        _discord_transport(),
        lambda: secrets.get(settings.discord_bot_token_name),
        settings.discord_api_base,
        # This process's share of the bot's global limit (see DispatcherSettings).
        rate_limits=BotRateLimits(per_second=settings.discord_requests_per_second),
    )
    # One connector per platform; Telegram and WhatsApp plug in here beside Discord.
    connectors: dict[Any, Any] = {Platform.DISCORD: DiscordConnector(bot)}
    if settings.telegram_bot_token_name:
        from .adapters.telegram import TelegramConnector

        connectors[Platform.TELEGRAM] = TelegramConnector(_telegram_api(settings))
    queue = _access_queue(settings)
    service = AccessDispatcher(
        stores(settings), connectors, _identity(settings), _cipher(settings), Links(settings.public_base_url)
    )
    return Dispatcher(settings, service, queue)


def _telegram_api(settings: Any) -> Any:
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
    stores: Any
    api: Any
    webhook_secret: Callable[[], str]
    queue: Any


@lru_cache(maxsize=None)
def telegram() -> Telegram:
    settings = config.TelegramSettings.from_env()
    secrets = _secrets(settings.region)
    name = settings.telegram_webhook_secret_name
    return Telegram(
        settings,
        stores(settings),
        _telegram_api(settings),
        # No secret name configured: the webhook accepts nothing (secret_matches refuses "").
        lambda: secrets.get(name) if name else "",
        _access_queue(settings),
    )


@dataclass(frozen=True)
class Lifecycle:
    settings: config.LifecycleSettings
    stores: Any
    billing: Any
    queue: Any


@lru_cache(maxsize=None)
def lifecycle() -> Lifecycle:
    settings = config.LifecycleSettings.from_env()
    return Lifecycle(settings, stores(settings), _LazyBilling(settings), _access_queue(settings))


@dataclass(frozen=True)
class Checkout:
    settings: config.CheckoutSettings
    stores: Any
    billing: Any


@lru_cache(maxsize=None)
def checkout() -> Checkout:
    settings = config.CheckoutSettings.from_env()
    return Checkout(settings, stores(settings), _LazyBilling(settings))


@dataclass(frozen=True)
class Join:
    settings: config.JoinPageSettings
    stores: Any
    identity: Any
    cipher: Any
    queue: Any
    billing: Any = None  # prices shown on the join page (read lazily: only when a page asks)


@lru_cache(maxsize=None)
def join() -> Join:
    settings = config.JoinPageSettings.from_env()
    return Join(settings, stores(settings), _identity(settings), _cipher(settings), _access_queue(settings),
                _LazyBilling(settings))


@dataclass(frozen=True)
class Admin:
    settings: config.AdminSettings
    stores: Any
    admin_token: Callable[[], str]
    queue: Any
    connectors: Callable[[], dict] = dict  # platform -> connector, for the bot preflight


@lru_cache(maxsize=None)
def admin() -> Admin:
    settings = config.AdminSettings.from_env()
    secrets = _secrets(settings.region)

    @lru_cache(maxsize=1)
    def connectors() -> dict:
        # Built on first use: most admin requests never talk to a platform.
        from .adapters.discord import DiscordCommunityConnector, DiscordConnector
        from .domain.model import Platform

        if not settings.discord_bot_token_name:
            return {}
        bot = DiscordCommunityConnector(
            _discord_transport(), lambda: secrets.get(settings.discord_bot_token_name), settings.discord_api_base
        )
        return {Platform.DISCORD: DiscordConnector(bot)}

    return Admin(
        settings, stores(settings), lambda: secrets.get(settings.admin_token_name), _access_queue(settings), connectors
    )


@dataclass(frozen=True)
class Interactions:
    settings: config.InteractionsSettings
    stores: Any
    queue: Any


@lru_cache(maxsize=None)
def interactions() -> Interactions:
    settings = config.InteractionsSettings.from_env()
    return Interactions(settings, stores(settings), _access_queue(settings))


class _LazyBilling:
    """Reads the Stripe key on first use, so a function that never calls Stripe never fetches it."""

    def __init__(self, settings: Any):
        self._settings = settings
        self._gateway: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._gateway is None:
            self._gateway = _billing(self._settings)
        return getattr(self._gateway, name)


def _reset_caches() -> None:
    for builder in (intake, processor, dispatcher, lifecycle, checkout, join, admin, interactions, telegram, aws_client,
                    _secrets,
                    _boto3_session, _botocore_session):
        builder.cache_clear()
