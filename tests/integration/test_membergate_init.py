"""`membergate init` and doctor's Stripe checks against the Stripe sandbox (real SDK) and moto's SSM."""

from __future__ import annotations

import io
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import boto3
import pytest
import stripe
import yaml
from moto import mock_aws
from typer.testing import CliRunner

from infra.local.stripe_sandbox import StripeSandbox, WsgiStripeHttpClient, parse_form
from membergate import bootstrap, cli
from membergate.adapters.ssm_parameters import SsmParameterStore
from membergate.adapters.stripe_billing import StripeBillingGateway
from membergate.config import CheckoutSettings, SettingsError
from membergate.adapters.stripe_setup import StripeSetupApi
from membergate.domain.errors import InvalidRequestError, PermanentError
from membergate.domain.setup import parse_overrides
from membergate.domain.stripe_events import HANDLED_EVENT_TYPES
from membergate.services.setup import PARAMETER_NAMES, InitRequest, run_init
from tests.support.setup_doubles import FAKE_LIVE_KEY, MemoryParameters, RecordingRegistrar
from tests.support.specs import stripe_openapi

pytestmark = pytest.mark.integration

BASE = "http://127.0.0.1:3000/_local/stripe"
KEY = "sk_test_0123456789abcdef"
# A stack nobody answers at: doctor's admin-API checks fail fast; its Stripe checks use the URL only.
API_URL = "http://127.0.0.1:9"
HOOK = API_URL + "/webhooks/stripe"
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def sandbox() -> StripeSandbox:
    return StripeSandbox(lambda: 1_800_000_000, lambda event: None, BASE)


@pytest.fixture
def ssm() -> Iterator[SsmParameterStore]:
    with mock_aws():
        yield SsmParameterStore(boto3.client("ssm", region_name="us-east-1"))


def setup_api(sandbox: StripeSandbox) -> StripeSetupApi:
    return StripeSetupApi.build(KEY, BASE, WsgiStripeHttpClient(sandbox.wsgi_app, BASE))


def request(**overrides) -> InitRequest:
    values = dict(stripe_key=KEY, api_url=API_URL, plan_name="Gold", amount=900, currency="eur", interval="month")
    values.update(overrides)
    return InitRequest(**values)


def counts(sandbox: StripeSandbox) -> tuple[int, int, int, int]:
    return (len(sandbox.products), len(sandbox.prices), len(sandbox.webhook_endpoints),
            len(sandbox.portal_configurations))


SAMCONFIG = """version = 0.1

[default.deploy.parameters]
stack_name = "old-name"
s3_prefix = "mine"
parameter_overrides = "AlertEmail=\\"me@example.com\\" StripeMode=\\"live\\""

[default.global.parameters]
beta_features = true
"""


# --- init -----------------------------------------------------------------------------------------------


def test_init_first_run_creates_everything_second_run_creates_nothing(sandbox, ssm) -> None:
    # Given an empty Stripe account and Parameter Store, and a samconfig.toml with the creator's own keys
    stripe_api = setup_api(sandbox)
    # When init runs twice
    first = run_init(request(), stripe_api, ssm, None, SAMCONFIG)
    after_first = counts(sandbox)
    second = run_init(request(), stripe_api, ssm, None, first.samconfig)
    # Then the first run made one product, price, endpoint and portal configuration (+ the Dashboard default)...
    assert after_first == (1, 1, 1, 2)
    assert {s.name for s in first.steps if s.outcome == "created"} >= {
        "Stripe product and price", "Stripe webhook endpoint", "Stripe customer portal configuration",
        "Stripe API key", "Stripe webhook signing secret", "admin token"}
    # ... and the second made nothing new and changed nothing
    assert counts(sandbox) == after_first
    assert second.count("created") == 0 and second.count("updated") == 0
    assert second.samconfig == first.samconfig
    assert not first.problems and not second.problems


def test_init_registers_exactly_the_handled_events_with_the_pinned_version(sandbox, ssm) -> None:
    # Given / When init runs
    run_init(request(), setup_api(sandbox), ssm, None, "")
    # Then the one endpoint posts to the stack, with the processor's events and the SDK's version
    (endpoint,) = sandbox.webhook_endpoints.values()
    assert endpoint.url == HOOK
    assert sorted(endpoint.enabled_events) == sorted(HANDLED_EVENT_TYPES)
    assert endpoint.api_version == stripe.api_version


def test_init_stores_secrets_under_the_template_names_and_prints_no_secret(sandbox, ssm) -> None:
    # Given / When init runs with a Discord bot token
    report = run_init(request(discord_bot_token="discord.secret.token"), setup_api(sandbox), ssm, None, "")
    # Then the key, the endpoint's signing secret and the bot token are in SSM under the template's names
    (endpoint,) = sandbox.webhook_endpoints.values()
    assert ssm.get(PARAMETER_NAMES["StripeApiKeySecretName"]) == KEY
    assert ssm.get(PARAMETER_NAMES["StripeWebhookSecretsSecretName"]) == endpoint.secret
    assert ssm.get(PARAMETER_NAMES["DiscordBotTokenSecretName"]) == "discord.secret.token"
    # ... and no value appears in what init reports
    shown = json.dumps([s.__dict__ for s in report.steps])
    for secret in (KEY, endpoint.secret, "discord.secret.token", ssm.get(PARAMETER_NAMES["AdminTokenSecretName"])):
        assert secret and secret not in shown


def test_init_portal_configuration_cancels_at_period_end_and_switches_among_the_plan_prices(sandbox, ssm) -> None:
    # Given / When init runs
    run_init(request(), setup_api(sandbox), ssm, None, "")
    # Then the Membergate configuration has the three features, over the plan's price
    (made,) = [c for c in sandbox.portal_configurations.values() if not c.is_default]
    (price,) = sandbox.prices.values()
    assert made.features["subscription_cancel"]["enabled"] and made.features["subscription_cancel"]["mode"] == "at_period_end"
    assert made.features["payment_method_update"]["enabled"]
    assert made.features["subscription_update"]["products"] == [{"product": price.product_id, "prices": [price.id]}]


def test_init_samconfig_keeps_the_creators_keys_and_sets_the_parameters(sandbox, ssm) -> None:
    # Given / When init runs over the creator's samconfig.toml
    report = run_init(request(stack_name="my-gate", region="eu-west-1"), setup_api(sandbox), ssm, None, SAMCONFIG)
    # Then their keys stay, the stack and region are set, and the overrides are merged
    data = tomllib.loads(report.samconfig)
    params = data["default"]["deploy"]["parameters"]
    assert params["s3_prefix"] == "mine" and data["default"]["global"]["parameters"]["beta_features"] is True
    assert params["stack_name"] == "my-gate" and params["region"] == "eu-west-1"
    overrides = parse_overrides(params["parameter_overrides"])
    assert overrides["AlertEmail"] == "me@example.com" and overrides["StripeMode"] == "test"
    assert overrides["StripeApiKeySecretName"] == "/membergate/stripe-api-key"


def test_init_endpoint_missing_an_event_is_updated_not_duplicated(sandbox, ssm) -> None:
    # Given a first run, then an event removed from the endpoint in the Dashboard
    stripe_api = setup_api(sandbox)
    run_init(request(), stripe_api, ssm, None, "")
    (endpoint,) = sandbox.webhook_endpoints.values()
    endpoint.enabled_events.remove("invoice.paid")
    # When init runs again
    report = run_init(request(), stripe_api, ssm, None, "")
    # Then the same endpoint gets the event back
    assert len(sandbox.webhook_endpoints) == 1 and "invoice.paid" in endpoint.enabled_events
    assert [s.outcome for s in report.steps if s.name == "Stripe webhook endpoint"] == ["updated"]


def test_init_found_endpoint_without_stored_secret_is_a_problem_with_its_fix(sandbox, ssm) -> None:
    # Given an endpoint registered earlier whose secret never reached SSM
    setup_api(sandbox).create_webhook_endpoint(HOOK, sorted(HANDLED_EVENT_TYPES), stripe.api_version)
    # When init runs
    report = run_init(request(), setup_api(sandbox), ssm, None, "")
    # Then it does not make a second endpoint and says how to store the secret
    assert len(sandbox.webhook_endpoints) == 1
    (problem,) = report.problems
    assert "Roll secret" in problem.detail and PARAMETER_NAMES["StripeWebhookSecretsSecretName"] in problem.detail


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"stripe_key": FAKE_LIVE_KEY}, "stripe_key"),
        ({"stripe_key": "pk_test_0123456789abcdef"}, "stripe_key"),
        ({"stripe_key": "sk_test_é0123456789"}, "stripe_key"),
        ({"stripe_key": "sk_test_01234567\r\nX-Evil: 1"}, "stripe_key"),
        ({"api_url": "ftp://x"}, "api_url"),
        ({"amount": 0}, "amount"),
        ({"currency": "euro"}, "currency"),
        ({"interval": "fortnight"}, "interval"),
        ({"plan_name": "¡¿!"}, "plan_name"),
    ],
)
def test_init_bad_input_is_refused_before_anything_is_made(sandbox, ssm, overrides, field) -> None:
    # Given / When init runs with one bad value
    with pytest.raises(InvalidRequestError) as refused:
        run_init(request(**overrides), setup_api(sandbox), ssm, None, "")
    # Then it names the value and Stripe was not touched
    assert refused.value.field == field
    assert counts(sandbox) == (0, 0, 0, 1)


def test_init_live_key_is_accepted_with_live(ssm) -> None:
    # Given a live key and --live; Stripe is not reachable here
    api = StripeSetupApi.build(FAKE_LIVE_KEY, "http://127.0.0.1:9")
    # When init runs
    with pytest.raises(PermanentError) as refused:
        run_init(request(stripe_key=FAKE_LIVE_KEY, live=True), api, ssm, None, "")
    # Then it got past the mode check to Stripe, which it could not reach, and says what to do
    assert refused.value.reason == "stripe_unreachable" and "re-run" in refused.value.message


def test_init_restricted_key_without_a_permission_names_it(ssm) -> None:
    # Given a Stripe that answers 403 as for a restricted key without Webhook Endpoints write
    def forbidden(environ, start_response):
        start_response("403 Forbidden", [("Content-Type", "application/json")])
        return [json.dumps({"error": {"type": "invalid_request_error", "message": "The provided key does not "
                                      "have the required permissions for this endpoint."}}).encode()]

    api = StripeSetupApi.build("rk_test_0123456789abcdef", BASE, WsgiStripeHttpClient(forbidden, BASE))
    # When / Then the error names the permission and what to do
    with pytest.raises(PermanentError) as refused:
        api.webhook_endpoints()
    assert "Webhook Endpoints: Write" in refused.value.message and "sk_" in refused.value.message


def test_parameter_names_are_template_defaults() -> None:
    # Given template.yaml's parameters (CloudFormation tags read as plain values)
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=Loader)
    # Then init stores each secret under the name the stack reads by default
    for parameter, name in PARAMETER_NAMES.items():
        assert template["Parameters"][parameter]["Default"] == name


# --- the CLI: init and doctor ---------------------------------------------------------------------------------


@pytest.fixture
def wired(sandbox, monkeypatch) -> StripeSandbox:
    """The CLI's Stripe calls go to the in-process sandbox."""
    monkeypatch.setattr(bootstrap, "stripe_setup",
                        lambda key, base, http_client=None: StripeSetupApi.build(
                            key, BASE, WsgiStripeHttpClient(sandbox.wsgi_app, BASE)))
    return sandbox


def test_cli_init_twice_then_doctor_passes_the_stripe_checks(wired, tmp_path, monkeypatch) -> None:
    # Given the CLI wired to the sandbox and moto
    monkeypatch.chdir(tmp_path)
    args = ["--json", "init", "--yes", "--stripe-key", KEY, "--api-url", API_URL, "--plan-name", "Gold",
            "--amount", "900", "--currency", "eur", "--interval", "month", "--region", "us-east-1"]
    with mock_aws():
        # When init runs twice and doctor checks Stripe
        first = runner.invoke(cli.app, args)
        second = runner.invoke(cli.app, args)
        doctor = runner.invoke(cli.app, ["--url", API_URL, "--json", "doctor", "--stripe-key", KEY])
    # Then both inits pass, the second creates nothing, samconfig.toml is written, and no secret is printed
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    outcomes = [s["outcome"] for s in json.loads(second.output)["steps"]]
    assert "created" not in outcomes
    assert "sam deploy" in json.loads(first.output)["next"]
    assert (tmp_path / "samconfig.toml").exists() and KEY not in first.output + second.output
    # ... and doctor's Stripe checks all pass (the admin API is unreachable here, so doctor exits 1)
    checks = {c["check"]: c for c in json.loads(doctor.output)["checks"]}
    stripe_checks = {k: v for k, v in checks.items() if "Stripe" in k or "webhook" in k or "portal" in k}
    assert len(stripe_checks) >= 7 and all(c["ok"] for c in stripe_checks.values()), stripe_checks


def test_cli_doctor_names_the_event_the_endpoint_misses(wired) -> None:
    # Given an endpoint for the stack missing one handled event
    events = sorted(HANDLED_EVENT_TYPES - {"customer.subscription.deleted"})
    setup_api(wired).create_webhook_endpoint(HOOK, events, stripe.api_version)
    # When doctor checks Stripe
    result = runner.invoke(cli.app, ["--url", API_URL, "--json", "doctor", "--stripe-key", KEY,
                                     "--stripe-mode", "test"])
    # Then it fails, naming the event and the fix
    assert result.exit_code == 1
    (failed,) = [c for c in json.loads(result.output)["checks"] if c["check"].endswith("sends every handled event")]
    assert "customer.subscription.deleted" in failed["fix"] and "membergate init" in failed["fix"]


def test_cli_doctor_live_key_against_a_test_stack_is_a_problem(wired) -> None:
    # Given / When doctor checks a live key for a test-mode stack
    result = runner.invoke(cli.app, ["--url", API_URL, "--json", "doctor", "--stripe-key", "rk_" + "live_0123456789ab",
                                     "--stripe-mode", "test"])
    # Then the mode check fails with its fix
    (mode,) = [c for c in json.loads(result.output)["checks"] if "StripeMode" in c["check"]]
    assert result.exit_code == 1 and not mode["ok"] and "use a test key" in mode["fix"]


@pytest.mark.parametrize("key", ["nonsense", "sk_test_short", "sk_test_ünïcode0123456", FAKE_LIVE_KEY])
def test_cli_init_bad_key_is_a_clear_message_without_traceback(wired, tmp_path, monkeypatch, key) -> None:
    # Given / When init runs with a bad or live key
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["init", "--yes", "--stripe-key", key, "--api-url", API_URL, "--plan-name", "Gold",
                                     "--amount", "900"])
    # Then it exits 1 with the message, no traceback, and writes nothing
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and ("Stripe" in result.output or "key" in result.output)
    assert not (tmp_path / "samconfig.toml").exists()


def test_cli_init_unreachable_stripe_is_a_clear_message(tmp_path, monkeypatch) -> None:
    # Given Stripe at an address nothing listens on
    monkeypatch.chdir(tmp_path)
    with mock_aws():
        # When init runs
        result = runner.invoke(cli.app, ["init", "--yes", "--stripe-key", KEY, "--api-url", API_URL, "--plan-name",
                                          "Gold", "--amount", "900", "--stripe-api-base", "http://127.0.0.1:9"])
    # Then it says so and what to do, exit 1, no traceback
    assert result.exit_code == 1, result.output
    assert "cannot reach Stripe" in result.output and "Traceback" not in result.output


def test_cli_init_without_yes_values_missing_asks_or_refuses(tmp_path, monkeypatch) -> None:
    # Given / When init runs with --yes but no key
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["init", "--yes", "--api-url", API_URL], env={"STRIPE_API_KEY": ""})
    # Then it names the flag
    assert result.exit_code == 1 and "--stripe-key" in result.output


# --- Telegram ---------------------------------------------------------------------------------------------------


def test_init_telegram_token_stores_it_and_registers_the_webhook_with_the_stored_secret(sandbox) -> None:
    # Given a Telegram bot token, Parameter Store in memory and a registrar that records
    parameters, telegram = MemoryParameters(), RecordingRegistrar()
    # When init runs twice
    first = run_init(request(telegram_bot_token="123:ABC"), setup_api(sandbox), parameters, telegram, "")
    run_init(request(telegram_bot_token="123:ABC"), setup_api(sandbox), parameters, telegram, "")
    # Then the token and one generated secret are stored, and both runs register with that same secret
    secret = parameters.values[PARAMETER_NAMES["TelegramWebhookSecretSecretName"]]
    assert parameters.values[PARAMETER_NAMES["TelegramBotTokenSecretName"]] == "123:ABC"
    assert telegram.calls == [(API_URL + "/webhooks/telegram", secret)] * 2
    assert parameters.writes.count(PARAMETER_NAMES["TelegramWebhookSecretSecretName"]) == 1
    assert [s.outcome for s in first.steps if s.name == "Telegram webhook"] == ["updated"]


def test_init_telegram_refusal_is_a_problem_not_a_crash(sandbox) -> None:
    # Given Telegram refusing the URL (it delivers to https only)
    telegram = RecordingRegistrar(refuse="Telegram only delivers updates to an https:// webhook URL")
    # When init runs
    report = run_init(request(telegram_bot_token="123:ABC"), setup_api(sandbox), MemoryParameters(), telegram, "")
    # Then the step is a problem with Telegram's reason, and the rest is done
    (problem,) = report.problems
    assert problem.name == "Telegram webhook" and "https" in problem.detail
    assert len(sandbox.webhook_endpoints) == 1


# --- the portal configuration reaches member portal sessions ----------------------------------------------------


def test_init_writes_the_portal_configuration_id_and_portal_sessions_use_it(sandbox, ssm) -> None:
    # Given init run once
    report = run_init(request(), setup_api(sandbox), ssm, None, "")
    overrides = parse_overrides(tomllib.loads(report.samconfig)["default"]["deploy"]["parameters"]["parameter_overrides"])
    (made,) = [c for c in sandbox.portal_configurations.values() if not c.is_default]
    # When the billing gateway is built with that id (the StartCheckout function's STRIPE_PORTAL_CONFIGURATION)
    gateway = StripeBillingGateway.build(KEY, BASE, WsgiStripeHttpClient(sandbox.wsgi_app, BASE), made.id)
    customer = setup_api(sandbox)._client.v1.customers.create({})
    gateway.create_portal_session(customer.id, "https://example.com/back")
    # Then samconfig names it and the portal session was opened with it
    assert overrides["StripePortalConfigurationId"] == made.id
    (session,) = sandbox.portal_sessions.values()
    assert session.configuration == made.id


def test_checkout_settings_portal_configuration_must_be_an_id() -> None:
    # Given / When / Then a bpc_ id is read; anything else is refused at start-up
    env = {"MEMBERSHIP_TABLE": "m", "LEDGER_TABLE": "l", "ACCESS_QUEUE_URL": "q", "STRIPE_API_KEY_NAME": "/k",
           "PUBLIC_BASE_URL": "https://x.example"}
    assert CheckoutSettings.from_env({**env, "STRIPE_PORTAL_CONFIGURATION": "bpc_123abc"}).stripe_portal_configuration \
        == "bpc_123abc"
    assert CheckoutSettings.from_env(env).stripe_portal_configuration == ""
    with pytest.raises(SettingsError):
        CheckoutSettings.from_env({**env, "STRIPE_PORTAL_CONFIGURATION": "bpc_1\r\nx"})


def test_init_parameter_store_unavailable_stops_before_stripe_is_touched(sandbox) -> None:
    # Given a Parameter Store that cannot be read (no AWS credentials)
    class Unavailable(MemoryParameters):
        def get(self, name: str) -> str | None:
            raise PermanentError("SSM Parameter Store refused it (NoCredentialsError)", "ssm_unavailable")

    # When init runs
    with pytest.raises(PermanentError):
        run_init(request(), setup_api(sandbox), Unavailable(), None, "")
    # Then no endpoint was made whose signing secret would be lost
    assert counts(sandbox) == (0, 0, 0, 1)


# --- what init sends, against Stripe's OpenAPI spec ----------------------------------------------------------------


def _violations(value, schema: dict, where: str) -> list[str]:
    """Names, enum values and lengths the spec does not allow (objects, arrays, anyOf)."""
    if "anyOf" in schema:
        options = [_violations(value, option, where) for option in schema["anyOf"]]
        return [] if any(not o for o in options) else options[0]
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None and isinstance(schema.get("additionalProperties"), dict):  # metadata: any keys
            return [v for k, item in value.items()
                    for v in _violations(item, schema["additionalProperties"], f"{where}[{k}]")]
        if props is None:
            return [f"{where}: an object where the spec has {schema.get('type')}"]
        found = [f"{where}[{k}]: not in the spec" for k in value if k not in props]
        found += [f"{where}[{k}]: required" for k in schema.get("required", []) if k not in value]
        return found + [v for k, item in value.items() if k in props for v in _violations(item, props[k], f"{where}[{k}]")]
    if isinstance(value, list):
        if schema.get("type") != "array":
            return [f"{where}: a list where the spec has {schema.get('type')}"]
        return [v for i, item in enumerate(value) for v in _violations(item, schema["items"], f"{where}[{i}]")]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not one of the spec's values"]
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        return [f"{where}: longer than {schema['maxLength']}"]
    return []


def test_init_requests_follow_stripes_spec(sandbox, ssm) -> None:
    # Given Stripe's OpenAPI spec and a sandbox that records every request init makes
    spec = stripe_openapi("init's Stripe requests cannot be checked")
    seen: list[tuple[str, str, dict]] = []

    def recording(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # the sandbox reads it again
        raw_form = body.decode() if environ["REQUEST_METHOD"] == "POST" else environ.get("QUERY_STRING", "")
        seen.append((environ["REQUEST_METHOD"].lower(), environ["PATH_INFO"],
                     parse_form(parse_qsl(raw_form, keep_blank_values=True))))
        return sandbox.wsgi_app(environ, start_response)

    api = StripeSetupApi.build(KEY, BASE, WsgiStripeHttpClient(recording, BASE))
    # When init runs (first run: every create call is made)
    run_init(request(), api, ssm, None, "")
    # Then every path, parameter name and value is one the spec allows; the API version is the
    # SDK's, newer than the spec (2023-08-16), so only its presence is checked
    problems: list[str] = []
    for method, path, params in seen:
        template = next(t for t in spec["paths"] if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", t), path))
        operation = spec["paths"][template][method]
        if method == "post":
            schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
            params.pop("api_version", None) if path == "/v1/webhook_endpoints" else None
            problems += _violations(params, schema, f"{method.upper()} {path} ")
        else:
            allowed = {p["name"] for p in operation.get("parameters", [])}
            problems += [f"GET {path} {k}: not in the spec" for k in params if k not in allowed]
    assert {(m, p) for m, p, _ in seen} >= {("post", "/v1/webhook_endpoints"), ("post", "/v1/prices"),
                                            ("post", "/v1/products"), ("post", "/v1/billing_portal/configurations")}
    assert problems == []
