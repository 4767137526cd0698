"""Settings: the only module that reads the environment. One validated model per function.

Plain dataclasses on purpose: the webhook intake must not pay for a settings library at cold
start. Secrets are named here (Secrets Manager names or SSM parameter paths), never valued.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .domain.alerts import ALL_KINDS, AlertKind, parse_kinds


class SettingsError(ValueError):
    """A function is misconfigured; the message names the variable and what to set."""


def _env(environ: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = environ.get(name, default)
    if value is None or value == "":
        if default is not None:
            return default
        raise SettingsError(f"environment variable {name} is not set; it is defined in template.yaml")
    return value


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name} must be a whole number, got {raw!r}") from None


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = _env(environ, name, default).strip().lower()
    if raw not in allowed:
        raise SettingsError(f"environment variable {name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _bool_mode(environ: Mapping[str, str], name: str) -> bool:
    raw = _env(environ, name, "test").lower()
    if raw not in ("live", "test"):
        raise SettingsError(f"environment variable {name} must be 'live' or 'test', got {raw!r}")
    return raw == "live"


def metrics_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """POWERTOOLS_METRICS_DISABLED as Powertools reads it; template.yaml sets it from BusinessMetrics."""
    e = os.environ if environ is None else environ
    return e.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in ("1", "true", "yes", "on", "y", "t")


@dataclass(frozen=True)
class Settings:
    """Fields shared by every function."""

    service: str
    region: str

    @classmethod
    def env_names(cls) -> set[str]:
        return {ENV_NAMES[f.name] for f in fields(cls) if f.name in ENV_NAMES}


# Discord's global limit per bot (docs: topics/rate-limits#global-rate-limit).
DISCORD_GLOBAL_REQUESTS_PER_SECOND = 50
# Every function holding the bot token shares those 50/s, each process counting only its own: the
# shares x each function's maximum concurrency stay within 80 % of them (tests/contract/
# test_discord_budget.py sums them against template.yaml). Fixed small shares for the functions
# that call Discord now and then; the dispatchers divide what is left.
DISCORD_BUDGET = int(DISCORD_GLOBAL_REQUESTS_PER_SECOND * 0.8)
DISCORD_RECONCILE_PER_SECOND = 5  # a weekly run: list members, read a few; never in a hurry
DISCORD_ALERTS_PER_SECOND = 1  # the lifecycle function's hourly alert digest (one post)
DISCORD_ADMIN_PER_SECOND = 4  # health and POST .../check (several requests per community within 10 s), migration posts
DISCORD_JOIN_PER_SECOND = 2  # a member's relink from the manage page: one removal
# The HTTP API bounds no function's concurrency: the admin API serves one creator, and relinks are
# rare, so one process each is what the budget assumes (the contract test names the assumption).
DISCORD_API_FUNCTION_CONCURRENCY = 1
DISCORD_DISPATCH_BUDGET = DISCORD_BUDGET - DISCORD_RECONCILE_PER_SECOND - DISCORD_ALERTS_PER_SECOND - (
    DISCORD_ADMIN_PER_SECOND + DISCORD_JOIN_PER_SECOND) * DISCORD_API_FUNCTION_CONCURRENCY

# Field -> environment variable. template.yaml sets exactly these (a contract test checks).
ENV_NAMES = {
    "service": "POWERTOOLS_SERVICE_NAME",
    "region": "AWS_REGION",
    "membership_table": "MEMBERSHIP_TABLE",
    "ledger_table": "LEDGER_TABLE",
    "processor_function": "PROCESSOR_FUNCTION_NAME",
    "event_bodies_bucket": "EVENT_BODIES_BUCKET",
    "dead_letter_queue_url": "DEAD_LETTER_QUEUE_URL",
    "access_queue_url": "ACCESS_QUEUE_URL",
    "livemode": "STRIPE_MODE",
    "webhook_secrets_name": "STRIPE_WEBHOOK_SECRETS_NAME",
    "stripe_api_key_name": "STRIPE_API_KEY_NAME",
    "stripe_api_base": "STRIPE_API_BASE",
    "discord_api_base": "DISCORD_API_BASE",
    "discord_oauth_base": "DISCORD_OAUTH_BASE",
    "discord_bot_token_name": "DISCORD_BOT_TOKEN_NAME",
    "discord_client_id": "DISCORD_CLIENT_ID",
    "discord_client_secret_name": "DISCORD_CLIENT_SECRET_NAME",
    "admin_token_name": "ADMIN_TOKEN_NAME",
    "token_key_id": "TOKEN_KEY_ID",
    "token_sealing": "TOKEN_SEALING",
    "token_keys_name": "TOKEN_KEYS_NAME",
    "public_base_url": "PUBLIC_BASE_URL",
    "checkout_rate_limit": "CHECKOUT_RATE_LIMIT",
    "checkout_rate_window": "CHECKOUT_RATE_WINDOW_SECONDS",
    "max_attempts": "ACCESS_MAX_ATTEMPTS",
    "dispatch_max_concurrency": "DISPATCH_MAX_CONCURRENCY",
    "time_zone": "TIME_ZONE",
    "community_preflight": "COMMUNITY_PREFLIGHT",
    "discord_public_key": "DISCORD_PUBLIC_KEY",
    "dispute_policy": "DISPUTE_POLICY",
    "grace_min_notice_hours": "GRACE_MIN_NOTICE_HOURS",
    "telegram_api_base": "TELEGRAM_API_BASE",
    "telegram_bot_token_name": "TELEGRAM_BOT_TOKEN_NAME",
    "telegram_webhook_secret_name": "TELEGRAM_WEBHOOK_SECRET_NAME",
    "reconcile_function": "RECONCILE_FUNCTION_NAME",
    "reconcile_fix_missing": "RECONCILE_FIX_MISSING",
    "reconcile_remove_extra": "RECONCILE_REMOVE_EXTRA",
    "terms_url": "TERMS_URL",
    "privacy_url": "PRIVACY_URL",
    "stripe_tax": "STRIPE_TAX",
    "stripe_portal_configuration": "STRIPE_PORTAL_CONFIGURATION",
    "whatsapp_access_token_name": "WHATSAPP_ACCESS_TOKEN_NAME",
    "whatsapp_phone_number_id": "WHATSAPP_PHONE_NUMBER_ID",
    "whatsapp_app_secret_name": "WHATSAPP_APP_SECRET_NAME",
    "whatsapp_verify_token_name": "WHATSAPP_VERIFY_TOKEN_NAME",
    "whatsapp_business_number": "WHATSAPP_BUSINESS_NUMBER",
    "whatsapp_api_base": "WHATSAPP_API_BASE",
    "whatsapp_gateway_url": "WHATSAPP_GATEWAY_URL",
    "whatsapp_gateway_key_name": "WHATSAPP_GATEWAY_KEY_NAME",
    "whatsapp_notice_template": "WHATSAPP_NOTICE_TEMPLATE",
    "ledger_retention_days": "LEDGER_RETENTION_DAYS",
    "message_retention_days": "MESSAGE_RETENTION_DAYS",
    "price_check": "PRICE_CHECK",
    "removal_undo_days": "REMOVAL_UNDO_DAYS",
    "email_from_address": "EMAIL_FROM_ADDRESS",
    "email_messages": "EMAIL_MESSAGES",
    "alert_discord_channel_id": "ALERT_DISCORD_CHANNEL_ID",
    "alert_telegram_chat_id": "ALERT_TELEGRAM_CHAT_ID",
    "alert_email": "ALERT_EMAIL",
    "alert_kinds": "ALERT_KINDS",
    "alert_locale": "ALERT_LOCALE",
    "health_schedules": "HEALTH_SCHEDULES",
    "health_dead_letter_queue": "HEALTH_DEAD_LETTER_QUEUE",
}


def _common(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "service": _env(environ, "POWERTOOLS_SERVICE_NAME", "membergate"),
        "region": _env(environ, "AWS_REGION", _env(environ, "AWS_DEFAULT_REGION", "us-east-1")),
    }


@dataclass(frozen=True)
class IntakeSettings(Settings):
    ledger_table: str
    processor_function: str
    event_bodies_bucket: str
    dead_letter_queue_url: str
    webhook_secrets_name: str
    livemode: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IntakeSettings:
        e = os.environ if environ is None else environ
        return cls(
            **_common(e),
            ledger_table=_env(e, "LEDGER_TABLE"),
            processor_function=_env(e, "PROCESSOR_FUNCTION_NAME"),
            event_bodies_bucket=_env(e, "EVENT_BODIES_BUCKET"),
            dead_letter_queue_url=_env(e, "DEAD_LETTER_QUEUE_URL"),
            webhook_secrets_name=_env(e, "STRIPE_WEBHOOK_SECRETS_NAME"),
            livemode=_bool_mode(e, "STRIPE_MODE"),
        )


@dataclass(frozen=True)
class StoreSettings(Settings):
    membership_table: str
    ledger_table: str


def _stores(e: Mapping[str, str]) -> dict[str, Any]:
    return {**_common(e), "membership_table": _env(e, "MEMBERSHIP_TABLE"), "ledger_table": _env(e, "LEDGER_TABLE")}


def _public_base_url(e: Mapping[str, str]) -> str:
    return _env(e, "PUBLIC_BASE_URL", "").rstrip("/")


@dataclass(frozen=True)
class ProcessorSettings(StoreSettings):
    access_queue_url: str
    dispute_policy: str = "revoke"  # revoke | keep: what a dispute on a payment does
    # Stripe, read to find the subscription a disputed payment paid ("": disputes on subscription
    # payments are only reported) and to end a free trial whose card already had one
    # (domain/trials.py; "": audited only).
    stripe_api_key_name: str = ""
    stripe_api_base: str = "https://api.stripe.com"
    # A past_due event delivered late (after its grace ran out) removes the member no sooner than
    # this many hours after it arrived, so the grace messages go out first (domain/billing.py).
    grace_min_notice_hours: int = 24

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProcessorSettings:
        e = os.environ if environ is None else environ
        policy = _env(e, "DISPUTE_POLICY", "revoke")
        if policy not in ("revoke", "keep"):
            raise SettingsError(f"environment variable DISPUTE_POLICY must be revoke or keep, got {policy!r}")
        notice = _int(e, "GRACE_MIN_NOTICE_HOURS", 24)
        if not 1 <= notice <= 24 * 14:
            raise SettingsError(f"environment variable GRACE_MIN_NOTICE_HOURS must be 1 to 336 (hours), got {notice}")
        return cls(**_stores(e), access_queue_url=_env(e, "ACCESS_QUEUE_URL"), dispute_policy=policy,
                   grace_min_notice_hours=notice,
                   stripe_api_key_name=_env(e, "STRIPE_API_KEY_NAME", ""),
                   stripe_api_base=_env(e, "STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"))


@dataclass(frozen=True)
class CheckoutSettings(StoreSettings):
    stripe_api_key_name: str
    stripe_api_base: str
    public_base_url: str
    checkout_rate_limit: int
    checkout_rate_window: int
    # The creator's terms and privacy policy (empty: none linked, no terms checkbox in Checkout).
    terms_url: str = ""
    privacy_url: str = ""
    # Stripe Tax turned on for this deployment (Dashboard: Tax settings done); plans then opt in.
    stripe_tax: bool = False
    # The customer-portal configuration `membergate init` made (bpc_...); empty: the account's default.
    stripe_portal_configuration: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CheckoutSettings:
        e = os.environ if environ is None else environ
        tax = _env(e, "STRIPE_TAX", "off").lower()
        if tax not in ("on", "off"):
            raise SettingsError(f"environment variable STRIPE_TAX must be 'on' or 'off', got {tax!r}")
        return cls(
            **_stores(e),
            stripe_api_key_name=_env(e, "STRIPE_API_KEY_NAME"),
            stripe_api_base=_env(e, "STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
            public_base_url=_public_base_url(e),
            checkout_rate_limit=_int(e, "CHECKOUT_RATE_LIMIT", 10),
            checkout_rate_window=_int(e, "CHECKOUT_RATE_WINDOW_SECONDS", 600),
            **_legal(e),
            stripe_tax=tax == "on",
            stripe_portal_configuration=_portal_configuration(e),
        )


def _portal_configuration(e: Mapping[str, str]) -> str:
    value = _env(e, "STRIPE_PORTAL_CONFIGURATION", "").strip()
    if value and not re.match(r"^bpc_[A-Za-z0-9]{1,100}$", value):
        raise SettingsError(f"environment variable STRIPE_PORTAL_CONFIGURATION must be a bpc_... id, got {value[:80]!r}")
    return value


def _legal(e: Mapping[str, str]) -> dict[str, str]:
    """TERMS_URL and PRIVACY_URL: absolute http(s) URLs, or empty."""
    urls = {}
    for field_name, name in (("terms_url", "TERMS_URL"), ("privacy_url", "PRIVACY_URL")):
        value = _env(e, name, "").strip()
        if value and (not value.startswith(("https://", "http://")) or any(c in value for c in " '\"<>")):
            raise SettingsError(f"environment variable {name} must be an https:// URL, got {value[:80]!r}")
        urls[field_name] = value
    return urls


def _token_sealing(e: Mapping[str, str]) -> dict[str, Any]:
    sealing = _env(e, "TOKEN_SEALING", "parameter")
    if sealing not in ("parameter", "kms"):
        raise SettingsError(f"environment variable TOKEN_SEALING must be 'parameter' or 'kms', got {sealing!r}")
    values = {"token_sealing": sealing, "token_keys_name": _env(e, "TOKEN_KEYS_NAME", ""),
              "token_key_id": _env(e, "TOKEN_KEY_ID", "")}
    needed = "TOKEN_KEYS_NAME" if sealing == "parameter" else "TOKEN_KEY_ID"
    if not values["token_keys_name" if sealing == "parameter" else "token_key_id"]:
        raise SettingsError(f"environment variable {needed} is not set (TOKEN_SEALING={sealing}); "
                            "it is defined in template.yaml")
    return values


@dataclass(frozen=True)
class JoinSettings(StoreSettings):
    access_queue_url: str
    discord_oauth_base: str
    discord_api_base: str
    discord_client_id: str
    discord_client_secret_name: str
    token_sealing: str  # "parameter" (data key in an SSM SecureString) or "kms" (a dedicated key)
    token_keys_name: str
    token_key_id: str
    public_base_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JoinSettings:
        e = os.environ if environ is None else environ
        return cls(
            **_stores(e),
            access_queue_url=_env(e, "ACCESS_QUEUE_URL"),
            discord_oauth_base=_env(e, "DISCORD_OAUTH_BASE", "https://discord.com/oauth2").rstrip("/"),
            discord_api_base=_env(e, "DISCORD_API_BASE", "https://discord.com/api/v10").rstrip("/"),
            discord_client_id=_env(e, "DISCORD_CLIENT_ID"),
            discord_client_secret_name=_env(e, "DISCORD_CLIENT_SECRET_NAME"),
            **_token_sealing(e),
            public_base_url=_public_base_url(e),
        )


@dataclass(frozen=True)
class JoinPageSettings(JoinSettings):
    """The join function's settings: the join page also reads the plan's prices from Stripe."""

    stripe_api_key_name: str
    stripe_api_base: str
    # A member's relink from the manage page takes the old account's role away at once (empty: it
    # is reported as failed, for the creator to remove by hand).
    discord_bot_token_name: str = ""
    # Linked from the join page beside the pay button (empty: not shown).
    terms_url: str = ""
    privacy_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JoinPageSettings:
        e = os.environ if environ is None else environ
        base = JoinSettings.from_env(e)
        return cls(
            **{f.name: getattr(base, f.name) for f in fields(JoinSettings)},
            stripe_api_key_name=_env(e, "STRIPE_API_KEY_NAME"),
            stripe_api_base=_env(e, "STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
            discord_bot_token_name=_env(e, "DISCORD_BOT_TOKEN_NAME", ""),
            **_legal(e),
        )


WHATSAPP_DEFAULT_API_BASE = "https://graph.facebook.com/v23.0"


@dataclass(frozen=True)
class DispatcherSettings(JoinSettings):
    discord_bot_token_name: str
    max_attempts: int
    # Discord's 50 requests/s is per bot, but each dispatcher process counts its own: every
    # process keeps under DISCORD_DISPATCH_BUDGET / DISPATCH_MAX_CONCURRENCY (the template's
    # MaximumConcurrency), so all functions holding the token together stay within 80 % of the limit.
    dispatch_max_concurrency: int = 2
    # Telegram is optional: without a bot token name no Telegram connector is registered.
    telegram_api_base: str = "https://api.telegram.org"
    telegram_bot_token_name: str = ""
    # WhatsApp (optional: without a phone number id no WhatsApp connector is registered).
    whatsapp_access_token_name: str = ""
    whatsapp_phone_number_id: str = ""
    whatsapp_api_base: str = WHATSAPP_DEFAULT_API_BASE
    whatsapp_gateway_url: str = ""
    whatsapp_gateway_key_name: str = ""
    # The approved template that carries a message outside the 24-hour window (one body variable).
    whatsapp_notice_template: str = "membergate_notice"
    # Member emails through SES: the sender (empty: no email at all), and whether every message
    # is emailed too ("always") or only those the platform refused ("fallback").
    email_from_address: str = ""
    email_messages: str = "fallback"

    @property
    def discord_requests_per_second(self) -> int:
        return max(1, DISCORD_DISPATCH_BUDGET // max(1, self.dispatch_max_concurrency))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DispatcherSettings:
        e = os.environ if environ is None else environ
        base = JoinSettings.from_env(e)
        values = {f.name: getattr(base, f.name) for f in fields(JoinSettings)}
        # Messages carry join links and nothing else knows the public URL here (no request).
        values["public_base_url"] = _env(e, "PUBLIC_BASE_URL").rstrip("/")
        return cls(
            **values,
            discord_bot_token_name=_env(e, "DISCORD_BOT_TOKEN_NAME"),
            max_attempts=_int(e, "ACCESS_MAX_ATTEMPTS", 8),
            dispatch_max_concurrency=_int(e, "DISPATCH_MAX_CONCURRENCY", 2),
            **_telegram(e),
            whatsapp_access_token_name=_env(e, "WHATSAPP_ACCESS_TOKEN_NAME", ""),
            whatsapp_phone_number_id=_env(e, "WHATSAPP_PHONE_NUMBER_ID", ""),
            whatsapp_api_base=_env(e, "WHATSAPP_API_BASE", WHATSAPP_DEFAULT_API_BASE).rstrip("/"),
            whatsapp_gateway_url=_env(e, "WHATSAPP_GATEWAY_URL", ""),
            whatsapp_gateway_key_name=_env(e, "WHATSAPP_GATEWAY_KEY_NAME", ""),
            whatsapp_notice_template=_env(e, "WHATSAPP_NOTICE_TEMPLATE", "membergate_notice"),
            email_from_address=_env(e, "EMAIL_FROM_ADDRESS", ""),
            email_messages=_choice(e, "EMAIL_MESSAGES", ("fallback", "always"), "fallback"),
        )


def _telegram(e: Mapping[str, str]) -> dict[str, str]:
    return {
        "telegram_api_base": _env(e, "TELEGRAM_API_BASE", "https://api.telegram.org").rstrip("/"),
        "telegram_bot_token_name": _env(e, "TELEGRAM_BOT_TOKEN_NAME", ""),
    }


@dataclass(frozen=True)
class TelegramSettings(StoreSettings):
    """The Telegram webhook and the deep-link pages around it (identity before payment)."""

    access_queue_url: str
    telegram_api_base: str
    telegram_bot_token_name: str
    telegram_webhook_secret_name: str
    public_base_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelegramSettings:
        e = os.environ if environ is None else environ
        return cls(
            **_stores(e),
            access_queue_url=_env(e, "ACCESS_QUEUE_URL"),
            **_telegram(e),
            telegram_webhook_secret_name=_env(e, "TELEGRAM_WEBHOOK_SECRET_NAME", ""),
            public_base_url=_public_base_url(e),
        )


@dataclass(frozen=True)
class LifecycleSettings(StoreSettings):
    access_queue_url: str
    stripe_api_key_name: str
    stripe_api_base: str
    # The hourly creator alert digest (services/alerts.py) is sent from here: its channels' bots.
    public_base_url: str = ""
    discord_api_base: str = "https://discord.com/api/v10"
    discord_bot_token_name: str = ""
    telegram_api_base: str = "https://api.telegram.org"
    telegram_bot_token_name: str = ""
    email_from_address: str = ""
    time_zone: str = "UTC"  # the creator's: the legal renewal notice's calendar months are counted there

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LifecycleSettings:
        e = os.environ if environ is None else environ
        return cls(
            **_stores(e),
            access_queue_url=_env(e, "ACCESS_QUEUE_URL"),
            stripe_api_key_name=_env(e, "STRIPE_API_KEY_NAME"),
            stripe_api_base=_env(e, "STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
            public_base_url=_env(e, "PUBLIC_BASE_URL", "").rstrip("/"),
            discord_api_base=_env(e, "DISCORD_API_BASE", "https://discord.com/api/v10").rstrip("/"),
            discord_bot_token_name=_env(e, "DISCORD_BOT_TOKEN_NAME", ""),
            **_telegram(e),
            email_from_address=_env(e, "EMAIL_FROM_ADDRESS", ""),
            time_zone=_time_zone(e),
        )


@dataclass(frozen=True)
class AdminSettings(StoreSettings):
    admin_token_name: str
    public_base_url: str
    access_queue_url: str
    time_zone: str = "UTC"  # the creator's time zone: KPI days are whole days there
    # The bot preflight (POST /admin/communities/{id}/check; and at registration unless "off").
    discord_api_base: str = "https://discord.com/api/v10"
    discord_bot_token_name: str = ""
    community_preflight: bool = True
    # POST /admin/reconcile starts the reconcile function (an asynchronous invoke) by this name.
    reconcile_function: str = ""
    # Plan creation checks each price at Stripe (exists, active, the type the plan's kind needs).
    stripe_api_key_name: str = ""
    stripe_api_base: str = "https://api.stripe.com"
    price_check: bool = True
    # A migration's announcement is posted in a Telegram group by the bot ("" : no Telegram bot).
    telegram_api_base: str = "https://api.telegram.org"
    telegram_bot_token_name: str = ""
    # POST /admin/removals/{id}/undo is taken this many days after the removal; later, a grant.
    removal_undo_days: int = 7
    # GET /admin/health: the deployment's other secrets (by name, never valued), its schedules
    # (EventBridge Scheduler names, comma-separated) and its dead-letter queue.
    health_dead_letter_queue: str = ""  # its URL
    webhook_secrets_name: str = ""
    discord_client_secret_name: str = ""
    token_sealing: str = "parameter"  # "kms": no data key parameter to check
    token_keys_name: str = ""
    telegram_webhook_secret_name: str = ""
    whatsapp_access_token_name: str = ""
    whatsapp_app_secret_name: str = ""
    whatsapp_verify_token_name: str = ""
    whatsapp_phone_number_id: str = ""  # official mode's Cloud API number
    whatsapp_gateway_url: str = ""  # gateway mode
    whatsapp_gateway_key_name: str = ""
    health_schedules: tuple[str, ...] = ()
    # The creator's terms (TermsUrl): GET /admin/health reports a deployment without them.
    terms_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AdminSettings:
        e = os.environ if environ is None else environ
        preflight = _env(e, "COMMUNITY_PREFLIGHT", "on").lower()
        if preflight not in ("on", "off"):
            raise SettingsError(f"COMMUNITY_PREFLIGHT must be 'on' or 'off', not {preflight!r}")
        price_check = _env(e, "PRICE_CHECK", "on").lower()
        if price_check not in ("on", "off"):
            raise SettingsError(f"PRICE_CHECK must be 'on' or 'off', not {price_check!r}")
        if _int(e, "REMOVAL_UNDO_DAYS", 7) < 0:
            raise SettingsError("REMOVAL_UNDO_DAYS must be 0 (no undo) or more days")
        return cls(
            **_stores(e),
            admin_token_name=_env(e, "ADMIN_TOKEN_NAME"),
            public_base_url=_public_base_url(e),
            access_queue_url=_env(e, "ACCESS_QUEUE_URL"),
            time_zone=_time_zone(e),
            discord_api_base=_env(e, "DISCORD_API_BASE", "https://discord.com/api/v10").rstrip("/"),
            discord_bot_token_name=_env(e, "DISCORD_BOT_TOKEN_NAME", ""),
            community_preflight=preflight == "on",
            reconcile_function=_env(e, "RECONCILE_FUNCTION_NAME", ""),
            stripe_api_key_name=_env(e, "STRIPE_API_KEY_NAME", ""),
            stripe_api_base=_env(e, "STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
            price_check=price_check == "on",
            telegram_api_base=_env(e, "TELEGRAM_API_BASE", "https://api.telegram.org").rstrip("/"),
            telegram_bot_token_name=_env(e, "TELEGRAM_BOT_TOKEN_NAME", ""),
            removal_undo_days=_int(e, "REMOVAL_UNDO_DAYS", 7),
            health_dead_letter_queue=_env(e, "HEALTH_DEAD_LETTER_QUEUE", ""),
            webhook_secrets_name=_env(e, "STRIPE_WEBHOOK_SECRETS_NAME", ""),
            discord_client_secret_name=_env(e, "DISCORD_CLIENT_SECRET_NAME", ""),
            token_sealing=_choice(e, "TOKEN_SEALING", ("parameter", "kms"), "parameter"),
            token_keys_name=_env(e, "TOKEN_KEYS_NAME", ""),
            telegram_webhook_secret_name=_env(e, "TELEGRAM_WEBHOOK_SECRET_NAME", ""),
            whatsapp_access_token_name=_env(e, "WHATSAPP_ACCESS_TOKEN_NAME", ""),
            whatsapp_app_secret_name=_env(e, "WHATSAPP_APP_SECRET_NAME", ""),
            whatsapp_verify_token_name=_env(e, "WHATSAPP_VERIFY_TOKEN_NAME", ""),
            whatsapp_phone_number_id=_env(e, "WHATSAPP_PHONE_NUMBER_ID", ""),
            whatsapp_gateway_url=_env(e, "WHATSAPP_GATEWAY_URL", ""),
            whatsapp_gateway_key_name=_env(e, "WHATSAPP_GATEWAY_KEY_NAME", ""),
            health_schedules=tuple(n.strip() for n in _env(e, "HEALTH_SCHEDULES", "").split(",") if n.strip()),
            terms_url=_legal(e)["terms_url"],
        )


def _time_zone(e: Mapping[str, str]) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = _env(e, "TIME_ZONE", "UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"environment variable TIME_ZONE must be an IANA time zone such as UTC or Europe/Paris, got {name!r}"
        ) from None
    return name


@dataclass(frozen=True)
class InteractionsSettings(StoreSettings):
    """The Discord interactions endpoint: verifies with the application's public key, queues resyncs."""

    discord_public_key: str
    access_queue_url: str
    public_base_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InteractionsSettings:
        e = os.environ if environ is None else environ
        return cls(
            **_stores(e),
            # Empty until the creator pastes it from the developer portal: then every request is a 401.
            discord_public_key=_env(e, "DISCORD_PUBLIC_KEY", ""),
            access_queue_url=_env(e, "ACCESS_QUEUE_URL"),
            public_base_url=_public_base_url(e),
        )


def _on_off(e: Mapping[str, str], name: str, default: str) -> bool:
    value = _env(e, name, default).lower()
    if value not in ("on", "off"):
        raise SettingsError(f"environment variable {name} must be 'on' or 'off', got {value!r}")
    return value == "on"


@dataclass(frozen=True)
class ReconcileSettings(StoreSettings):
    """The reconcile function: reads Stripe, the stores and each community; queues access fixes."""

    access_queue_url: str
    stripe_api_key_name: str
    stripe_api_base: str
    discord_api_base: str
    discord_bot_token_name: str
    telegram_api_base: str
    telegram_bot_token_name: str
    # The creator's policy: re-queue missing access (default on); remove extra access (default off).
    reconcile_fix_missing: bool = True
    reconcile_remove_extra: bool = False

    @property
    def discord_requests_per_second(self) -> int:
        """Its share of the bot's global 50/s (DISCORD_BUDGET): small, a weekly run is never in a hurry."""
        return DISCORD_RECONCILE_PER_SECOND

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReconcileSettings:
        e = os.environ if environ is None else environ
        return cls(
            **_stores(e),
            access_queue_url=_env(e, "ACCESS_QUEUE_URL"),
            stripe_api_key_name=_env(e, "STRIPE_API_KEY_NAME"),
            stripe_api_base=_env(e, "STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
            discord_api_base=_env(e, "DISCORD_API_BASE", "https://discord.com/api/v10").rstrip("/"),
            discord_bot_token_name=_env(e, "DISCORD_BOT_TOKEN_NAME"),
            **_telegram(e),
            reconcile_fix_missing=_on_off(e, "RECONCILE_FIX_MISSING", "on"),
            reconcile_remove_extra=_on_off(e, "RECONCILE_REMOVE_EXTRA", "off"),
        )


@dataclass(frozen=True)
class WhatsAppSettings(StoreSettings):
    """The WhatsApp webhook: Meta's handshake and signatures, one-time codes, the pay link reply."""

    whatsapp_access_token_name: str
    whatsapp_phone_number_id: str
    whatsapp_app_secret_name: str
    whatsapp_verify_token_name: str
    whatsapp_business_number: str
    whatsapp_api_base: str
    public_base_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WhatsAppSettings:
        e = os.environ if environ is None else environ
        return cls(
            **_stores(e),
            whatsapp_access_token_name=_env(e, "WHATSAPP_ACCESS_TOKEN_NAME"),
            # Empty until the creator sets WhatsApp up: the handshake still answers (403), replies fail visibly.
            whatsapp_phone_number_id=_env(e, "WHATSAPP_PHONE_NUMBER_ID", ""),
            whatsapp_app_secret_name=_env(e, "WHATSAPP_APP_SECRET_NAME"),
            whatsapp_verify_token_name=_env(e, "WHATSAPP_VERIFY_TOKEN_NAME"),
            whatsapp_business_number=_env(e, "WHATSAPP_BUSINESS_NUMBER", ""),
            whatsapp_api_base=_env(e, "WHATSAPP_API_BASE", WHATSAPP_DEFAULT_API_BASE).rstrip("/"),
            public_base_url=_public_base_url(e),
        )


@dataclass(frozen=True)
class RetentionSettings:
    """How long records are kept before DynamoDB's TTL deletes them (every function, from Globals).

    Sessions (7 days), OAuth states (10 minutes) and claim links (30 days) are deleted at their
    expiry; a member's own records (accounts, purchases) stay until the creator erases the member."""

    # The Stripe event ledger: 400 days covers a yearly renewal's disputes; /admin/events reads 31.
    ledger_retention_days: int = 400
    # What became of each member message (sent, failed and why); 400 days by default.
    message_retention_days: int = 400

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetentionSettings:
        e = os.environ if environ is None else environ
        ledger = _int(e, "LEDGER_RETENTION_DAYS", cls.ledger_retention_days)
        messages = _int(e, "MESSAGE_RETENTION_DAYS", cls.message_retention_days)
        if not 32 <= ledger <= 3650:
            raise SettingsError(f"LEDGER_RETENTION_DAYS must be 32 to 3650 (the admin API reads 31 days), got {ledger}")
        if not 1 <= messages <= 3650:
            raise SettingsError(f"MESSAGE_RETENTION_DAYS must be 1 to 3650, got {messages}")
        return cls(ledger_retention_days=ledger, message_retention_days=messages)


@dataclass(frozen=True)
class AlertSettings:
    """Creator alerts (every function that records them, from Globals; empty channels: alerts off).

    The kinds are recorded where they happen only when at least one channel is set, so a
    deployment without alerts pays no write for them."""

    alert_discord_channel_id: str = ""  # a private channel of the creator's server the bot may post in
    alert_telegram_chat_id: str = ""  # a chat (the creator's, or a private group) the bot is in
    alert_email: str = ""  # an inbox; sent through SES from EMAIL_FROM_ADDRESS
    alert_kinds: frozenset[AlertKind] = ALL_KINDS
    alert_locale: str = "en"

    @property
    def enabled(self) -> bool:
        return bool(self.alert_kinds) and any(
            (self.alert_discord_channel_id, self.alert_telegram_chat_id, self.alert_email))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertSettings:
        e = os.environ if environ is None else environ
        channel = _env(e, "ALERT_DISCORD_CHANNEL_ID", "")
        if channel and not (channel.isascii() and channel.isdigit() and 17 <= len(channel) <= 20):
            raise SettingsError(f"ALERT_DISCORD_CHANNEL_ID must be a Discord channel id (17 to 20 digits), got {channel!r}")
        chat = _env(e, "ALERT_TELEGRAM_CHAT_ID", "")
        if chat and not (chat.isascii() and chat.lstrip("-").isdigit()):
            raise SettingsError(f"ALERT_TELEGRAM_CHAT_ID must be a Telegram chat id (digits, '-' first for groups), got {chat!r}")
        email = _env(e, "ALERT_EMAIL", "")
        if email and ("@" not in email or any(c.isspace() for c in email)):
            raise SettingsError(f"ALERT_EMAIL must be one email address, got {email!r}")
        try:
            kinds = parse_kinds(_env(e, "ALERT_KINDS", "all"))
        except ValueError as exc:
            raise SettingsError(f"ALERT_KINDS: {exc}") from None
        return cls(channel, chat, email, kinds, _choice(e, "ALERT_LOCALE", ("en", "fr"), "en"))


@dataclass(frozen=True)
class ReportingSettings:
    """The creator's time zone for every function that counts something by day (Globals' TIME_ZONE):
    join funnel counters and KPI snapshots are whole days there."""

    time_zone: str = "UTC"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReportingSettings:
        return cls(time_zone=_time_zone(os.environ if environ is None else environ))


SETTINGS_BY_FUNCTION = {
    "stripe_webhook": IntakeSettings,
    "process_billing_event": ProcessorSettings,
    "start_checkout": CheckoutSettings,
    "join": JoinPageSettings,
    "dispatch_access": DispatcherSettings,
    "run_lifecycle": LifecycleSettings,
    "admin_api": AdminSettings,
    "discord_interactions": InteractionsSettings,
    "telegram_webhook": TelegramSettings,
    "reconcile": ReconcileSettings,
    "whatsapp_webhook": WhatsAppSettings,
}
