"""`membergate init` as a use case: the Stripe objects, the secrets, the bot webhook and samconfig.toml, each found or made once."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ..domain.errors import InvalidRequestError, PermanentError, RetryableError
from ..domain.setup import (
    INTERVALS,
    PLAN_METADATA,
    endpoint_drift,
    lookup_key,
    merge_samconfig,
    plan_key,
    stripe_key_mode,
)
from ..domain.stripe_events import HANDLED_EVENT_TYPES
from ..ports import ParameterStore, SetupPrice, StripeSetup, WebhookRegistrar

# The SSM parameter names template.yaml's parameters default to (a contract test keeps them equal).
PARAMETER_NAMES = {
    "StripeApiKeySecretName": "/membergate/stripe-api-key",
    "StripeWebhookSecretsSecretName": "/membergate/stripe-webhook-secrets",
    "DiscordBotTokenSecretName": "/membergate/discord-bot-token",
    "TelegramBotTokenSecretName": "/membergate/telegram-bot-token",
    "TelegramWebhookSecretSecretName": "/membergate/telegram-webhook-secret",
    "AdminTokenSecretName": "/membergate/admin-token",
}
STRIPE_WEBHOOK_PATH = "/webhooks/stripe"
TELEGRAM_WEBHOOK_PATH = "/webhooks/telegram"


@dataclass(frozen=True)
class InitRequest:
    stripe_key: str
    api_url: str
    plan_name: str
    amount: int
    currency: str
    interval: str
    stack_name: str = "membergate"
    region: str = "us-east-1"
    live: bool = False
    discord_bot_token: str | None = None
    telegram_bot_token: str | None = None


@dataclass(frozen=True)
class Step:
    name: str
    outcome: str  # created, found, updated, skipped or problem
    detail: str = ""


@dataclass
class InitReport:
    steps: list[Step] = field(default_factory=list)
    samconfig: str = ""

    def add(self, name: str, outcome: str, detail: str = "") -> None:
        self.steps.append(Step(name, outcome, detail))

    def count(self, outcome: str) -> int:
        return sum(1 for s in self.steps if s.outcome == outcome)

    @property
    def problems(self) -> list[Step]:
        return [s for s in self.steps if s.outcome == "problem"]


def check_request(request: InitRequest) -> str:
    """Refuse what cannot work before anything is made; answers the key's mode."""
    mode = stripe_key_mode(request.stripe_key)
    if mode == "live" and not request.live:
        raise InvalidRequestError(
            "That is a live Stripe key: run init with a test key first (sk_test_/rk_test_), or pass --live "
            "when you mean to set up live mode", field="stripe_key")
    if not request.api_url.startswith(("https://", "http://")) or any(c.isspace() for c in request.api_url):
        raise InvalidRequestError(
            "--api-url must be your stack's HTTP API base URL (the HttpApiUrl output, https://…)", field="api_url")
    if request.amount < 1 or request.amount > 99_999_999:
        raise InvalidRequestError("--amount is in the currency's minor units (900 = 9.00 EUR), 1 to 99999999",
                                  field="amount")
    if len(request.currency) != 3 or not request.currency.isascii() or not request.currency.isalpha():
        raise InvalidRequestError("--currency is a three-letter ISO code such as eur or usd", field="currency")
    if request.interval not in INTERVALS:
        raise InvalidRequestError(f"--interval is one of {', '.join(INTERVALS)}", field="interval")
    plan_key(request.plan_name)
    return mode


def run_init(
    request: InitRequest,
    stripe: StripeSetup,
    parameters: ParameterStore,
    telegram: WebhookRegistrar | None,
    samconfig_text: str,
    new_secret: Callable[[], str] = lambda: secrets.token_urlsafe(32),
) -> InitReport:
    """Every step finds what an earlier run made before it makes anything: a re-run creates nothing new."""
    mode = check_request(request)
    # Parameter Store is read before Stripe is touched: a new endpoint's signing secret is shown once,
    # so it must not be made when it cannot be stored (no credentials, wrong region).
    current_key = parameters.get(PARAMETER_NAMES["StripeApiKeySecretName"])
    report = InitReport()
    base = request.api_url.rstrip("/")
    plan = plan_key(request.plan_name)
    price = _plan_price(request, plan, stripe, report)
    webhook_secret = _webhook_endpoint(base + STRIPE_WEBHOOK_PATH, stripe, report)
    portal = _portal(request, plan, price.product_id, price.id, stripe, report)

    _store(parameters, PARAMETER_NAMES["StripeApiKeySecretName"], request.stripe_key, "Stripe API key", report,
           current_key)
    name = PARAMETER_NAMES["StripeWebhookSecretsSecretName"]
    if webhook_secret is not None:
        _store(parameters, name, webhook_secret, "Stripe webhook signing secret", report)
    elif parameters.get(name):
        report.add("Stripe webhook signing secret", "found", name)
    else:
        report.add("Stripe webhook signing secret", "problem",
                   f"the endpoint exists but {name} is empty and Stripe shows a secret only once: in Dashboard → "
                   f"Developers → Webhooks → the endpoint → Roll secret, then store it with "
                   f"`aws ssm put-parameter --type SecureString --name {name} --value whsec_...`")
    if parameters.get(PARAMETER_NAMES["AdminTokenSecretName"]):
        report.add("admin token", "found", PARAMETER_NAMES["AdminTokenSecretName"])
    else:
        parameters.put(PARAMETER_NAMES["AdminTokenSecretName"], new_secret())
        report.add("admin token", "created",
                   f"{PARAMETER_NAMES['AdminTokenSecretName']} (read it with aws ssm get-parameter --with-decryption)")
    if request.discord_bot_token:
        _store(parameters, PARAMETER_NAMES["DiscordBotTokenSecretName"], request.discord_bot_token,
               "Discord bot token", report)
    if request.telegram_bot_token:
        _telegram(request.telegram_bot_token, base + TELEGRAM_WEBHOOK_PATH, parameters, telegram, new_secret, report)

    overrides = {"StripeMode": mode, **PARAMETER_NAMES, "StripePortalConfigurationId": portal}
    report.samconfig = merge_samconfig(samconfig_text, request.stack_name, request.region, overrides)
    outcome = "found" if report.samconfig == samconfig_text else "updated" if samconfig_text.strip() else "created"
    report.add("samconfig.toml", outcome, f"stack {request.stack_name} in {request.region}, StripeMode={mode}")
    return report


def _plan_price(request: InitRequest, plan: str, stripe: StripeSetup, report: InitReport) -> SetupPrice:
    key = lookup_key(plan)
    found = stripe.price_by_lookup_key(key)
    if found is not None:
        same = (found.unit_amount, found.currency, found.interval) == (
            request.amount, request.currency.lower(), request.interval)
        report.add("Stripe product and price", "found",
                   f"{found.id} ({key})" + ("" if same else ": it differs from --amount/--currency/--interval; Stripe "
                                            "prices never change, so create a plan with a new --plan-name instead"))
        return found
    product_id = stripe.product_by_metadata(PLAN_METADATA, plan)
    made_product = product_id is None
    if product_id is None:
        # The idempotency keys make a retried first run (a dropped connection) create nothing twice.
        product_id = stripe.create_product(request.plan_name, {PLAN_METADATA: plan}, f"membergate-init-product-{plan}")
    price = stripe.create_price(product_id, request.amount, request.currency.lower(), request.interval, key,
                                f"membergate-init-price-{plan}-{request.amount}-{request.currency}-{request.interval}")
    report.add("Stripe product and price", "created",
               f"{price.id} ({key})" + ("" if made_product else f" under the existing product {product_id}"))
    return price


def _webhook_endpoint(url: str, stripe: StripeSetup, report: InitReport) -> str | None:
    """The one endpoint for ``url``: created with its secret, or found and brought to the handled events."""
    events = sorted(HANDLED_EVENT_TYPES)
    existing = [e for e in stripe.webhook_endpoints() if e.url == url]
    if not existing:
        endpoint, secret = stripe.create_webhook_endpoint(url, events, stripe.api_version)
        report.add("Stripe webhook endpoint", "created",
                   f"{endpoint.id} → {url} ({len(events)} events, API {stripe.api_version})")
        return secret
    endpoint = existing[0]
    drift = endpoint_drift(endpoint.enabled_events, endpoint.api_version, endpoint.status, events, stripe.api_version)
    if drift.events_differ or drift.disabled:
        stripe.update_webhook_endpoint(endpoint.id, events)
        report.add("Stripe webhook endpoint", "updated",
                   f"{endpoint.id}: events set to the {len(events)} handled ones and enabled")
    else:
        report.add("Stripe webhook endpoint", "found", f"{endpoint.id} → {url}")
    if drift.wrong_version:
        report.add("Stripe webhook API version", "problem",
                   f"{endpoint.id} sends API {endpoint.api_version or 'the account default'}, Membergate reads "
                   f"{stripe.api_version}; Stripe cannot change it: delete the endpoint in the Dashboard and re-run init")
    return None


def _portal(request: InitRequest, plan: str, product_id: str, price_id: str, stripe: StripeSetup,
            report: InitReport) -> str:
    found = stripe.portal_configuration_by_metadata(PLAN_METADATA, plan)
    if found is not None:
        report.add("Stripe customer portal configuration", "found", found)
        return found
    made = stripe.create_portal_configuration(product_id, [price_id], request.plan_name[:60], {PLAN_METADATA: plan})
    report.add("Stripe customer portal configuration", "created",
               f"{made} (cancel at period end, update the card, switch among the plan's prices)")
    return made


def _store(parameters: ParameterStore, name: str, value: str, what: str, report: InitReport,
           current: str | None = None) -> None:
    current = current if current is not None else parameters.get(name)
    if current == value:
        report.add(what, "found", name)
        return
    parameters.put(name, value)
    report.add(what, "created" if current is None else "updated", name)


def _telegram(token: str, url: str, parameters: ParameterStore, telegram: WebhookRegistrar | None,
              new_secret: Callable[[], str], report: InitReport) -> None:
    _store(parameters, PARAMETER_NAMES["TelegramBotTokenSecretName"], token, "Telegram bot token", report)
    name = PARAMETER_NAMES["TelegramWebhookSecretSecretName"]
    secret = parameters.get(name)
    if secret is None:
        secret = new_secret()
        parameters.put(name, secret)
        report.add("Telegram webhook secret", "created", name)
    else:
        report.add("Telegram webhook secret", "found", name)
    if telegram is None:
        report.add("Telegram webhook", "skipped", "no Telegram API to call")
        return
    try:
        bot = telegram.register(url, secret)
    except (PermanentError, RetryableError) as error:
        report.add("Telegram webhook", "problem", error.message)
        return
    report.add("Telegram webhook", "updated", f"@{bot} → {url}")
