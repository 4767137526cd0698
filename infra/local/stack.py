"""The local stack: Membergate on a laptop with no AWS account and no internet (`make dev`).

One process: a moto server (DynamoDB, SQS, S3, KMS, SSM Parameter Store) built from template.yaml,
the HTTP API on 127.0.0.1:$PORT with the template's routes calling the real Lambda handlers,
asynchronous invokes (retries, on-failure queue), queue consumers running concurrently the way
Lambda scales them, and schedules on a controllable business clock, a local Stripe sandbox and
a local Discord stand-in. With real credentials in the environment, the same stack
talks to real Stripe test mode and real Discord instead.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import nullcontext
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local.async_invoke import LocalAsyncInvoke
from infra.local.discord_standin import DiscordStandIn
from infra.local.telegram_standin import DEFAULT_TOKEN as TELEGRAM_STANDIN_TOKEN
from infra.local.telegram_standin import TelegramStandIn
from infra.local.whatsapp_standin import DEFAULT_BUSINESS_NUMBER, DEFAULT_PHONE_NUMBER_ID, WhatsAppStandIn
from infra.local.lambda_events import failed_ids, sqs_event
from infra.local.resources import Route, Template, create_resources, function_environment, read_template

DEFAULT_WEBHOOK_SECRET = "whsec_local_membergate_dev"
DEFAULT_ADMIN_TOKEN = "local-admin-token"
DEFAULT_TELEGRAM_WEBHOOK_SECRET = "local_telegram_webhook_secret"
LOCAL_STRIPE_KEY = "sk_test_local_sandbox"
REGION = "us-east-1"
LOCAL_EMAIL_FROM = "members@membergate.local"
OUTBOUND_BASE_SUFFIXES = ("_API_BASE", "_OAUTH_BASE")
ALERT_PARAMETERS = {"ALERT_DISCORD_CHANNEL_ID": "AlertDiscordChannelId", "ALERT_TELEGRAM_CHAT_ID": "AlertTelegramChatId",
                    "ALERT_EMAIL": "AlertEmail"}
DAILY = 86_400


class LocalClock:
    """Business time: the wall clock plus an offset that POST /_local/clock moves forward."""

    def __init__(self) -> None:
        self.offset = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        return int(time.time()) + self.offset

    def advance(self, seconds: int) -> int:
        with self._lock:
            self.offset += seconds
        return self.now()


class _Context:
    """Lambda's context object, named after the real function (its logs say which one ran)."""

    memory_limit_in_mb = 512

    def __init__(self, function_name: str = "local"):
        import uuid

        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


@dataclass
class Settings:
    port: int
    webhook_secret: str
    admin_token: str
    stripe_key: str
    stripe_api_base: str | None
    discord_api_base: str | None
    discord_bot_token: str
    discord_client_id: str
    discord_client_secret: str
    quiet: bool
    telegram_bot_token: str = ""
    telegram_webhook_secret: str = ""
    telegram_api_base: str | None = None  # read once: the stack itself sets TELEGRAM_API_BASE later
    # Every outbound base URL set in the environment (STRIPE_API_BASE, DISCORD_API_BASE,
    # DISCORD_OAUTH_BASE, any other *_API_BASE / *_OAUTH_BASE): it wins over the template's value
    # and over the local stand-ins, as the README promises.
    outbound_bases: dict[str, str] = field(default_factory=dict)
    # Template parameters set as `sam deploy --parameter-overrides` would, from
    # MEMBERGATE_PARAMETER_OVERRIDES="Name=value Name2=value2" (e.g. CheckoutRateLimit for a bench).
    parameter_overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        e = os.environ
        return cls(
            port=int(e.get("PORT", "3000")),
            webhook_secret=e.get("STRIPE_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET,
            admin_token=e.get("ADMIN_TOKEN") or DEFAULT_ADMIN_TOKEN,
            stripe_key=e.get("STRIPE_API_KEY") or LOCAL_STRIPE_KEY,
            stripe_api_base=e.get("STRIPE_API_BASE") or None,
            discord_api_base=e.get("DISCORD_API_BASE") or None,
            discord_bot_token=e.get("DISCORD_BOT_TOKEN") or "local-bot-token",
            discord_client_id=e.get("DISCORD_CLIENT_ID") or "100000000000000001",
            discord_client_secret=e.get("DISCORD_CLIENT_SECRET") or "local-client-secret",
            quiet=e.get("MEMBERGATE_QUIET", "") == "1",
            telegram_bot_token=e.get("TELEGRAM_BOT_TOKEN") or TELEGRAM_STANDIN_TOKEN,
            telegram_webhook_secret=e.get("TELEGRAM_WEBHOOK_SECRET") or DEFAULT_TELEGRAM_WEBHOOK_SECRET,
            telegram_api_base=e.get("TELEGRAM_API_BASE") or None,
            outbound_bases=outbound_bases_from(e),
            parameter_overrides=parameter_overrides_from(e.get("MEMBERGATE_PARAMETER_OVERRIDES", "")),
        )

    @property
    def real_stripe(self) -> bool:
        return self.stripe_key != LOCAL_STRIPE_KEY

    @property
    def real_discord(self) -> bool:
        return "DISCORD_BOT_TOKEN" in os.environ

    @property
    def real_telegram(self) -> bool:
        return bool(self.telegram_api_base)


def outbound_bases_from(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.endswith(OUTBOUND_BASE_SUFFIXES) and v}


def parameter_overrides_from(text: str) -> dict[str, str]:
    """`Name=value Name2=value2` (sam deploy's --parameter-overrides shorthand) as a dict."""
    pairs = (item.split("=", 1) for item in text.split() if "=" in item)
    return {name: value for name, value in pairs if name}


def function_env_overrides(settings: Settings, base_url: str) -> dict[str, str]:
    """What the local stack puts over the template's function environment: its own URL, the
    local Stripe sandbox and Discord stand-in unless real credentials are set, and above all
    whatever outbound base the environment names."""
    env = {
        "PUBLIC_BASE_URL": base_url,
        "STRIPE_API_BASE": "https://api.stripe.com" if settings.real_stripe else f"{base_url}/_local/stripe",
    }
    if not settings.real_discord:
        env["DISCORD_API_BASE"] = f"{base_url}/_local/discord/api/v10"
        env["DISCORD_OAUTH_BASE"] = f"{base_url}/_local/discord/oauth2"
        # The stand-in's servers hold only the roles set through POST /guilds/<id>/setup, so
        # registering against it checks the bot only when asked (the check route always does).
        env["COMMUNITY_PREFLIGHT"] = os.environ.get("COMMUNITY_PREFLIGHT", "off")
    if not settings.real_telegram:
        env["TELEGRAM_API_BASE"] = f"{base_url}/_local/telegram"
    if "WHATSAPP_API_BASE" not in settings.outbound_bases:
        env["WHATSAPP_API_BASE"] = f"{base_url}/_local/whatsapp/v23.0"
    # Member emails go to moto's SES, which keeps them (GET /_local/mail) and sends nothing.
    env["EMAIL_FROM_ADDRESS"] = os.environ.get("EMAIL_FROM_ADDRESS") or LOCAL_EMAIL_FROM
    env.update(settings.outbound_bases)
    return env


# The local WhatsApp stand-in's credentials (nothing real: it runs in this process).
LOCAL_WHATSAPP = {"access_token": "local-whatsapp-token", "app_secret": "local-app-secret",
                  "verify_token": "local-verify-token", "gateway_key": "local-gateway-key"}


class LocalStack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.clock = LocalClock()
        self.base_url = f"http://127.0.0.1:{settings.port}"
        self.template: Template = read_template()
        self._work_lock = threading.RLock()
        self._stop = threading.Event()
        self._handlers: dict[str, Any] = {}
        self._next_schedule: dict[str, int] = {}
        self.discord = DiscordStandIn()
        self.telegram = TelegramStandIn(bot_token=settings.telegram_bot_token or TELEGRAM_STANDIN_TOKEN)
        # Meta's Cloud API and a gateway, behind WHATSAPP_API_BASE unless the environment sets it;
        # inbound messages are posted, signed, to this stack's /webhooks/whatsapp.
        self.whatsapp = WhatsAppStandIn(
            app_secret=LOCAL_WHATSAPP["app_secret"],
            webhook_url=f"{self.base_url}/webhooks/whatsapp",
            clock=lambda: float(self.clock.now()),
            access_token=LOCAL_WHATSAPP["access_token"],
            gateway_key=LOCAL_WHATSAPP["gateway_key"],
        )
        self.sandbox: Any = None
        self.queue_urls: dict[str, str] = {}
        self.function_names: dict[str, str] = {}  # folder -> the deployed function's name
        self.async_invokes: dict[str, LocalAsyncInvoke] = {}  # logical id -> emulated async invoke
        self._consuming = 0  # consumer batches being handled right now
        self._consuming_lock = threading.Lock()
        self.ready = threading.Event()

    # --- start-up ---------------------------------------------------------------------------

    def start(self) -> None:
        import logging

        from infra.local.moto_server import MotoProcess

        # The consumers poll the moto server several times a second: its access log would drown
        # everything else. Our own server's requests are logged by the handlers (Powertools).
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

        # Moto serves from a process of its own (AWS is not inside the functions either), with
        # persistent connections: see infra/local/moto_server.py for why.
        self._moto = MotoProcess("127.0.0.1")
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://{host}:{port}",
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
        )
        os.environ.pop("AWS_PROFILE", None)
        import boto3

        session = boto3.Session(region_name=REGION)
        params = self.template.parameter_defaults()
        secret_values = {
            params["StripeApiKeySecretName"]: self.settings.stripe_key,
            params["StripeWebhookSecretsSecretName"]: self.settings.webhook_secret,
            params["DiscordBotTokenSecretName"]: self.settings.discord_bot_token,
            params["DiscordClientSecretSecretName"]: self.settings.discord_client_secret,
            params["AdminTokenSecretName"]: self.settings.admin_token,
            params["TelegramBotTokenSecretName"]: self.settings.telegram_bot_token,
            params["TelegramWebhookSecretSecretName"]: self.settings.telegram_webhook_secret,
            # A fresh data key per run: members' tokens sealed by a previous run are not kept anyway.
            params["TokenKeysSecretName"]: "k1:" + base64.b64encode(os.urandom(32)).decode(),
            params["WhatsAppAccessTokenSecretName"]: os.environ.get("WHATSAPP_ACCESS_TOKEN") or LOCAL_WHATSAPP["access_token"],
            params["WhatsAppAppSecretSecretName"]: os.environ.get("WHATSAPP_APP_SECRET") or LOCAL_WHATSAPP["app_secret"],
            params["WhatsAppVerifyTokenSecretName"]: os.environ.get("WHATSAPP_VERIFY_TOKEN") or LOCAL_WHATSAPP["verify_token"],
            params["WhatsAppGatewayKeySecretName"]: os.environ.get("WHATSAPP_GATEWAY_KEY") or LOCAL_WHATSAPP["gateway_key"],
        }
        intrinsics = create_resources(self.template, session.client, secret_values)
        # As the creator verifies their sender in SES before deploying (moto refuses others too).
        session.client("sesv2").create_email_identity(
            EmailIdentity=os.environ.get("EMAIL_FROM_ADDRESS") or LOCAL_EMAIL_FROM)
        intrinsics.parameters.update(self.settings.parameter_overrides)
        # The creator's alert channel exists in the Discord stand-in once the deployment names it.
        alert_channel = str(intrinsics.parameters.get("AlertDiscordChannelId") or "")
        if alert_channel and not self.settings.real_discord:
            self.discord.add_text_channel(alert_channel)
        intrinsics.parameters["DiscordClientId"] = self.settings.discord_client_id
        intrinsics.parameters["PublicBaseUrl"] = self.base_url
        intrinsics.parameters["WhatsAppPhoneNumberId"] = os.environ.get("WHATSAPP_PHONE_NUMBER_ID") or DEFAULT_PHONE_NUMBER_ID
        intrinsics.parameters["WhatsAppBusinessNumber"] = os.environ.get("WHATSAPP_BUSINESS_NUMBER") or DEFAULT_BUSINESS_NUMBER
        intrinsics.parameters["WhatsAppGatewayUrl"] = os.environ.get("WHATSAPP_GATEWAY_URL") or f"{self.base_url}/_local/whatsapp/gateway"
        env = function_environment(self.template, intrinsics)
        env.update(function_env_overrides(self.settings, self.base_url))
        # Optional URL parameters (empty by default) are the caller's, or none: never the parameter's name.
        for variable in ("TERMS_URL", "PRIVACY_URL"):
            env[variable] = os.environ.get(variable, "")
        # Creator alert channels: empty unless the deployment names them (the parameters' overrides).
        for variable, parameter in ALERT_PARAMETERS.items():
            env[variable] = str(intrinsics.parameters.get(parameter) or "")
        # DISPATCH_MAX_CONCURRENCY divides Discord's global limit among the dispatch function's
        # concurrent instances, one limiter each. Here those instances are threads of this one process
        # sharing one limiter, so the process's share is theirs together: the same total as on AWS.
        dispatch_threads = next((c.max_concurrency for c in self.template.consumers if c.folder == "dispatch_access"), 1)
        deployed = int(env.get("DISPATCH_MAX_CONCURRENCY") or 1)
        env["DISPATCH_MAX_CONCURRENCY"] = str(max(1, -(-deployed // max(1, dispatch_threads))))
        env["POWERTOOLS_METRICS_DISABLED"] = "true"
        if self.settings.quiet:
            env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        os.environ.update(env)
        self.queue_urls = {c.queue: intrinsics.values[c.queue] for c in self.template.consumers}
        for logical_id, function in self.template.of_type("AWS::Serverless::Function").items():
            self.function_names[Path(str(function["Properties"]["CodeUri"])).name] = intrinsics.values[logical_id]
        self._build_sandbox()
        from membergate import bootstrap

        for target in self.template.async_targets:
            dlq_url = intrinsics.values.get(target.on_failure or "")
            self.async_invokes[target.function] = LocalAsyncInvoke(
                lambda event, context, folder=target.folder: self._handler(folder).lambda_handler(event, context),
                function_arn=intrinsics.attributes[(target.function, "Arn")],
                context_factory=lambda folder=target.folder: self._context(folder),
                on_failure=lambda record, url=dlq_url: self._sqs().send_message(QueueUrl=url, MessageBody=record)
                if url else None,
                max_retries=target.max_retries,
                max_concurrency=target.max_concurrency,
            )
        processor = self.async_invokes.get("ProcessBillingEventFunction")
        self._clock_override = bootstrap.overridden(clock=self.clock, billing_invoke=processor,
                                                    reconcile_invoke=self.async_invokes.get("ReconcileFunction"))
        self._clock_override.__enter__()
        now = self.clock.now()
        for schedule in self.template.schedules:
            self._next_schedule[schedule.function] = now + schedule.every_seconds
        # Import every handler now (Lambda's init phase), so the first member doesn't wait for it.
        for folder in {r.folder for r in self.template.routes} | {c.folder for c in self.template.consumers} | {
            s.folder for s in self.template.schedules
        }:
            self._handler(folder)
        if not self.settings.real_telegram:
            # The stand-in delivers its updates here, as setWebhook would (local URLs are http://).
            self.telegram.webhook = {"url": f"{self.base_url}/webhooks/telegram",
                                     "secret_token": self.settings.telegram_webhook_secret,
                                     "allowed_updates": ["message", "chat_join_request", "chat_member", "callback_query"]}
        self._server = make_server("127.0.0.1", self.settings.port, self._app(), threaded=True)
        threading.Thread(target=self._server.serve_forever, name="http", daemon=True).start()
        # As Lambda's event source mappings: up to MaximumConcurrency batches of a queue at once.
        for consumer in self.template.consumers:
            for n in range(consumer.max_concurrency):
                threading.Thread(target=self._consume_loop, args=(consumer,), name=f"{consumer.folder}-{n}",
                                 daemon=True).start()
        threading.Thread(target=self._schedule_loop, name="schedules", daemon=True).start()
        self.ready.set()

    def _build_sandbox(self) -> None:
        from infra.local.stripe_sandbox import StripeSandbox, signed_delivery

        def post(payload: bytes, headers: dict[str, str]) -> int:
            request = urllib.request.Request(f"{self.base_url}/webhooks/stripe", data=payload, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        self.sandbox = StripeSandbox(
            clock=self.clock.now,
            deliver=signed_delivery(self.settings.webhook_secret, post),
            public_base_url=f"{self.base_url}/_local/stripe",
        )

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        # Let the work in flight finish before moto goes: otherwise it fails with "connection
        # refused" on the way out, and that reads like a fault of the stack.
        for invoke in self.async_invokes.values():
            invoke.close(wait=True)
        deadline = time.monotonic() + 5
        while self._consuming and time.monotonic() < deadline:
            time.sleep(0.05)
        self._clock_override.__exit__(None, None, None)
        self._moto.stop()

    # --- HTTP -------------------------------------------------------------------------------

    def _app(self) -> Any:
        mounts = {"/_local/discord": self.discord, "/_local/telegram": self.telegram,
                  "/_local/whatsapp": self.whatsapp}
        if self.sandbox is not None:
            mounts["/_local/stripe"] = self.sandbox.wsgi_app
        return DispatcherMiddleware(self._main, mounts)

    def _main(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        if path == "/health":
            response = _json(200, {"status": "ok" if self.ready.is_set() else "starting"})
        elif path == "/_local/clock":
            response = self._clock_route(request)
        elif path == "/_local/drain" and request.method == "POST":
            response = _json(200, self.drain())
        elif path == "/_local/mail" and request.method == "GET":
            response = _json(200, {"mail": sent_mail()})
        else:
            response = self._invoke_route(request)
        return response(environ, start_response)

    def _clock_route(self, request: Request) -> Response:
        if request.method == "POST":
            body = request.get_json(silent=True) or {}
            seconds = body.get("advance_seconds")
            if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
                return _json(400, {"error": {"code": "invalid_request", "message": "advance_seconds must be a whole number ≥ 0", "field": "advance_seconds"}})
            self.clock.advance(seconds)
            if self.sandbox is not None:
                # Stripe first, as a test clock would: renewals, trial ends, retries, then our schedules.
                self.sandbox.advance_clock()
            # Events already on their way are processed before the schedules run: on AWS the sweep comes
            # minutes after them, so a sweep must not find a member as they were before their last event
            # (a portal cancellation sent just before the clock moved got no receipt until the next sweep).
            self.drain()
            ran = self.run_schedules(force=True)
            drained = self.drain()
            return _json(200, {**self._clock_view(), "schedules_run": ran, **drained})
        return _json(200, self._clock_view())

    def _clock_view(self) -> dict[str, Any]:
        now = self.clock.now()
        return {"now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "epoch": now, "offset_seconds": self.clock.offset}

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.template.routes:
            if route.method not in ("ANY", method):
                continue
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None

    def _invoke_route(self, request: Request) -> Response:
        matched = self._match(request.method, request.path)
        if matched is None:
            return _json(404, {"error": {"code": "not_found", "message": f"no route for {request.method} {request.path}"}})
        route, params = matched
        handler = self._handler(route.folder)
        event = _http_event(request, route, params)
        # The webhook intake never waits for the consumers: the sandbox delivers events while
        # another request (a payment, a sweep's cancellation) may hold the lock. The Telegram and
        # WhatsApp webhooks neither: their own API calls make the stand-ins deliver updates back to them.
        with self._work_lock if route.folder not in ("stripe_webhook", "telegram_webhook", "whatsapp_webhook") else nullcontext():
            result = handler.lambda_handler(event, self._context(route.folder))
        return _to_response(result)

    def _context(self, folder: str) -> _Context:
        return _Context(self.function_names.get(folder, folder))

    def _handler(self, folder: str) -> Any:
        if folder not in self._handlers:
            import importlib.util

            from infra.local.resources import REPO

            spec = importlib.util.spec_from_file_location(f"membergate_fn_{folder}", REPO / "functions" / folder / "handler.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            _log_keys_per_thread()
            self._handlers[folder] = module
        return self._handlers[folder]

    # --- queues and schedules ---------------------------------------------------------------

    def _sqs(self) -> Any:
        from membergate import bootstrap

        return bootstrap.aws_client("sqs", REGION)

    def poll_queue(self, consumer: Any, wait_seconds: int = 0) -> int:
        """Receive one batch and run the consumer on it; delete what it did not report as failed."""
        sqs = self._sqs()
        url = self.queue_urls[consumer.queue]
        # Counted as busy from before the receive: a batch taken off the queue (invisible there) but
        # not yet handled must keep drain() waiting, or drain returns with the work in flight.
        with self._consuming_lock:
            self._consuming += 1
        try:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(consumer.batch_size, 10),
                                      AttributeNames=["All"], MessageAttributeNames=["All"],
                                      WaitTimeSeconds=wait_seconds)
            messages = got.get("Messages", [])
            if not messages:
                return 0
            arn = f"arn:aws:sqs:{REGION}:123456789012:{url.rsplit('/', 1)[-1]}"
            event = sqs_event(messages, arn)
            result = self._handler(consumer.folder).lambda_handler(event, self._context(consumer.folder))
            failed = failed_ids(result)
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return len(messages) - len(failed)
        finally:
            with self._consuming_lock:
                self._consuming -= 1

    def run_schedules(self, force: bool = False) -> list[str]:
        ran = []
        now = self.clock.now()
        for schedule in self.template.schedules:
            due = self._next_schedule.get(schedule.function, now)
            # Moving the clock runs the frequent schedules at once (the lifecycle sweep); a daily
            # one (reconciliation) runs when business time reaches it, as EventBridge would.
            if (force and schedule.every_seconds < DAILY) or now >= due:
                with self._work_lock:
                    self._handler(schedule.folder).lambda_handler({"source": "local.scheduler"}, self._context(schedule.folder))
                self._next_schedule[schedule.function] = now + schedule.every_seconds
                ran.append(schedule.function)
        return ran

    def _delayed(self) -> int:
        """Messages waiting out their DelaySeconds in the consumers' queues."""
        sqs = self._sqs()
        return sum(int(sqs.get_queue_attributes(QueueUrl=self.queue_urls[c.queue],
                                                AttributeNames=["ApproximateNumberOfMessagesDelayed"])
                       ["Attributes"].get("ApproximateNumberOfMessagesDelayed", 0))
                   for c in self.template.consumers)

    def _busy(self) -> bool:
        return self._consuming > 0 or any(invoke.busy for invoke in self.async_invokes.values())

    def drain(self, max_rounds: int = 200, max_delay_wait: float = 15.0) -> dict[str, int]:
        """Run every pending invoke and visible message until nothing is left anywhere.

        Work re-queued with a delay (a platform's rate-limit window, a short backoff) counts as
        left: drain waits for it, up to ``max_delay_wait`` seconds in all."""
        processed = 0
        give_up_at = time.monotonic() + max_delay_wait
        for _ in range(max_rounds):
            for invoke in self.async_invokes.values():
                invoke.wait_idle()
            round_total = sum(self.poll_queue(c) for c in self.template.consumers)
            processed += round_total
            if round_total == 0 and not self._busy():
                if self._delayed() and time.monotonic() < give_up_at:
                    time.sleep(0.2)
                    continue
                break
            if round_total == 0:
                time.sleep(0.02)  # a background consumer holds a batch: let it finish
        return {"messages_processed": processed}

    def _consume_loop(self, consumer: Any) -> None:
        while not self._stop.is_set():
            try:
                # Short polls: moto serves a long poll by holding the request, which stalls its
                # other requests (every DynamoDB call) for the length of the wait.
                if not self.poll_queue(consumer):
                    self._stop.wait(0.05)
            except Exception as error:  # keep serving; the failure is in the logs
                print(f"[local-stack] consumer error: {error!r}", file=sys.stderr)
                self._stop.wait(0.2)

    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_schedules()
            except Exception as error:
                print(f"[local-stack] schedule error: {error!r}", file=sys.stderr)
            self._stop.wait(0.5)


def _log_keys_per_thread() -> None:
    """Keep the Powertools Logger's appended keys per thread.

    On AWS each function runs in a process of its own, one invocation at a time, so the keys its
    handler appends (`function_name`, `correlation_id`, ...) are the process's. Here every function
    shares one process and its consumers run in threads: process-wide keys would give one function's
    log lines another's name and another payment's correlation id. Threads start with an empty
    context, so each consumer thread keeps its own keys, as each Lambda would."""
    from membergate.observability import logger

    formatter = logger.registered_formatter
    formatter.append_keys = formatter.thread_safe_append_keys  # type: ignore[method-assign]


def sent_mail() -> list[dict[str, Any]]:
    """Every email the functions sent through SES, as moto recorded it (oldest first).

    Moto runs in its own process (infra/local/moto_server.py), which answers this one extra route."""
    import urllib.request

    from infra.local.moto_server import MAIL_PATH

    with urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL"] + MAIL_PATH, timeout=10) as reply:
        mail: list[dict[str, Any]] = json.loads(reply.read())["mail"]
    return mail


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _http_event(request: Request, route: Route, params: dict[str, str]) -> dict[str, Any]:
    raw = request.get_data()
    content_type = request.headers.get("Content-Type", "")
    textual = not raw or content_type.startswith(("application/json", "text/", "application/x-www-form-urlencoded"))
    try:
        body = raw.decode("utf-8") if textual else None
    except UnicodeDecodeError:
        body = None
    encoded = body is None and bool(raw)
    headers = {k.lower(): v for k, v in request.headers.items()}
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    now_ms = int(time.time() * 1000)
    return {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode(),
        "cookies": cookies,
        "headers": headers,
        "queryStringParameters": {k: ",".join(request.args.getlist(k)) for k in request.args} or None,
        "pathParameters": params or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": "local",
            "http": {"method": request.method, "path": request.path, "protocol": "HTTP/1.1",
                     "sourceIp": request.remote_addr or "127.0.0.1", "userAgent": request.user_agent.string},
            "requestId": f"local-{now_ms}",
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": now_ms,
        },
        "body": base64.b64encode(raw).decode() if encoded else (body or None),
        "isBase64Encoded": encoded,
    }


def _to_response(result: dict[str, Any]) -> Response:
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(data, status=int(result.get("statusCode", 200)))
    response.headers.clear()
    for key, value in (result.get("headers") or {}).items():
        response.headers[key] = value
    for key, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(key, value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


def main() -> None:
    import faulthandler

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack (a stuck consumer)
    settings = Settings.from_env()
    stack = LocalStack(settings)
    stack.start()
    mode = []
    mode.append("real Stripe test mode" if settings.real_stripe else "local Stripe sandbox")
    mode.append("real Discord" if settings.real_discord else "local Discord stand-in")
    mode.append("Telegram at TELEGRAM_API_BASE" if settings.real_telegram else "local Telegram stand-in")
    mode.append("WhatsApp at WHATSAPP_API_BASE" if "WHATSAPP_API_BASE" in settings.outbound_bases
                else "local WhatsApp stand-in")
    print(
        f"Membergate local stack on {stack.base_url} ({', '.join(mode)})\n"
        f"  STRIPE_WEBHOOK_SECRET={settings.webhook_secret}\n"
        f"  ADMIN_TOKEN={settings.admin_token}\n"
        f"  webhook: POST {stack.base_url}/webhooks/stripe   admin: {stack.base_url}/admin/openapi.json\n"
        f"  clock: GET/POST {stack.base_url}/_local/clock   drain: POST {stack.base_url}/_local/drain\n"
        f"  Stripe sandbox: {stack.base_url}/_local/stripe   Discord stand-in calls: {stack.base_url}/_local/discord/calls\n"
        f"  Telegram stand-in: {stack.base_url}/_local/telegram/calls   TELEGRAM_WEBHOOK_SECRET={settings.telegram_webhook_secret}\n"
        f"  WhatsApp stand-in: {stack.base_url}/_local/whatsapp/calls   inbound: POST {stack.base_url}/_local/whatsapp/_control/inbound\n"
        f"  dashboard: {stack.base_url}/admin/dashboard (log in with the ADMIN_TOKEN above)\n"
        f"  AWS (moto), for `membergate init` or the aws CLI: AWS_ENDPOINT_URL={os.environ.get('AWS_ENDPOINT_URL', '')} "
        f"AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION={REGION}\n"
        "Ctrl-C to stop.",
        flush=True,
    )
    if os.environ.get("SEED") == "1":
        # `make dev SEED=1`: a few months of demo members through the real routes (infra/local/seed.py).
        from infra.local.seed import SeedFailed, seed

        print("Seeding demo data (SEED=1): about four months of members on the business clock…", flush=True)
        try:
            seed(stack.base_url, settings.admin_token, out=lambda line: print(line, flush=True))
            print(f"Demo data ready: {stack.base_url}/admin/dashboard", flush=True)
        except SeedFailed as error:
            print(f"Seeding failed: {error}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
