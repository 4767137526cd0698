"""Cold-start cost of the webhook intake against a bare ``import boto3``, side by side.

Two figures: the handler's import alone, and the full cold start a first event really costs
(import, bootstrap and clients, the SSM parameter read, the event's own calls), the latter in a
fresh interpreter whose AWS calls go over HTTP to a moto server the parent runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "shared"
FUNCTIONS = ROOT / "functions"

# Libraries the intake must never load: each costs about as much as boto3 itself (FACTS.md).
FORBIDDEN_ON_INTAKE = ("stripe", "pydantic_settings", "aws_xray_sdk", "pynamodb")

# What template.yaml gives the intake; the settings are read lazily, set anyway as Lambda would.
INTAKE_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_SERVICE_NAME": "membergate",
    "LOG_LEVEL": "INFO",
    "LEDGER_TABLE": "bench-ledger",
    "PROCESSOR_FUNCTION_NAME": "bench-process-billing-event",
    "EVENT_BODIES_BUCKET": "bench-event-bodies",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-dead-letters",
    "STRIPE_WEBHOOK_SECRETS_NAME": "/membergate/stripe-webhook-secrets",
    "STRIPE_MODE": "test",
}

# Runs in a fresh interpreter: Lambda's sys.path (function folder, then the layer), one import,
# timed inside the process so interpreter start-up (the same for both kinds) is left out.
_PROBE = """
import json, sys, time
sys.path[:0] = [{function_dir!r}, {shared!r}]
start = time.perf_counter()
import {module}
seconds = time.perf_counter() - start
loaded = sorted({{m.split(".")[0] for m in sys.modules}})
start = time.perf_counter()
{deferred}
deferred = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "loaded": loaded, "deferred": deferred}}))
"""
# What the intake imports lazily on its first event (bootstrap.intake() and aws_client()): still
# part of a cold start, so it is reported next to the import time (the budget is on the import).
INTAKE_FIRST_EVENT_IMPORTS = "import boto3, membergate.adapters.intake"


# The Lambda context both first-event probes pass to the handler (substituted as text: the
# probes run in a fresh interpreter that must import nothing but the handler).
_PROBE_CONTEXT = """class Context:
    function_name = "stripe-webhook"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stripe-webhook"
    aws_request_id = "bench-first-event"
    @staticmethod
    def get_remaining_time_in_millis():
        return 10_000"""


# A fresh interpreter's first event: import the handler, then call it once (bootstrap, clients,
# the signing secret from SSM, ledger write and queue send over HTTP to the parent's moto server).
# The event is read from a file before the clock starts; nothing else is imported before it.
_FIRST_EVENT_PROBE = """
import sys, time
sys.path[:0] = [{function_dir!r}, {shared!r}]
import json
with open({event_path!r}) as f:
    event = json.load(f)
{context}
start = time.perf_counter()
import handler
imported = time.perf_counter()
result = handler.lambda_handler(event, Context())
done = time.perf_counter()
print(json.dumps({{"import": imported - start, "total": done - start, "status": result["statusCode"],
                  "outcome": json.loads(result["body"]).get("outcome")}}))
"""


# The same first event, split where its costs are (for the breakdown the bench prints, not the
# budget): the handler's import, the AWS SDK and adapters it imports lazily, building the session
# and clients, the secret read, then the event itself. Every JSON file opened is counted (an audit
# hook: botocore's data files and the trimmed ones), with its size on disk.
_PHASES_PROBE = """
import sys, time
sys.path[:0] = [{function_dir!r}, {shared!r}]
import json, os
with open({event_path!r}) as f:
    event = json.load(f)
opened = []
def audit(name, args):
    if name == "open" and isinstance(args[0], str) and args[0].endswith((".json", ".json.gz")):
        opened.append(args[0])
sys.addaudithook(audit)
{context}
before = len(sys.modules)
t0 = time.perf_counter()
import handler
t1 = time.perf_counter()
import boto3, botocore.session, botocore.client
from membergate.adapters import botocore_models, intake, secrets
t2 = time.perf_counter()
from membergate import bootstrap
deps = bootstrap.intake()
t3 = time.perf_counter()
deps.secrets.get()
t4 = time.perf_counter()
result = handler.lambda_handler(event, Context())
t5 = time.perf_counter()
print(json.dumps({{"phases": {{"handler import": t1 - t0, "AWS SDK and adapters import": t2 - t1,
                              "session and clients": t3 - t2, "secret read (SSM client, GetParameter)": t4 - t3,
                              "the event (verify, PutItem, Invoke)": t5 - t4}},
                  "status": result["statusCode"], "modules": len(sys.modules) - before,
                  "files": opened, "file_bytes": sum(os.path.getsize(p) for p in opened)}}))
"""


@dataclass(frozen=True)
class FirstEventFigures:
    """Full cold start of the intake (import + first event) against a bare ``import boto3``."""

    runs_each: int
    first_event_median_s: float
    boto3_median_s: float
    ratio: float
    budget_ratio: float
    first_event_runs_s: list[float]
    statuses: list[str]  # "200 queued" for each run: the event really went through
    # Breakdown, from as many separate phase runs interleaved with the others (medians per phase)
    phases_median_s: dict[str, float] = field(default_factory=dict)
    modules_loaded: int = 0  # modules the handler's import and its first event load
    data_files: list[str] = field(default_factory=list)  # JSON data files opened (botocore's, the trimmed ones)
    data_bytes_read: int = 0  # their size on disk (botocore's are mostly gzipped)

    @property
    def ok(self) -> bool:
        return self.ratio <= self.budget_ratio and all(s.startswith("200 ") for s in self.statuses)


@dataclass(frozen=True)
class ImportFigures:
    runs_each: int
    intake_median_s: float
    boto3_median_s: float
    ratio: float
    budget_ratio: float
    intake_runs_s: list[float]
    boto3_runs_s: list[float]
    intake_first_event_imports_median_s: float  # boto3 and the adapters, imported on the first event
    forbidden_loaded: dict[str, bool]
    slowest_self: list[tuple[str, float]]  # module, self ms
    largest_direct: list[tuple[str, float]]  # the handler's own imports, cumulative ms

    @property
    def ok(self) -> bool:
        return self.ratio <= self.budget_ratio and not any(self.forbidden_loaded.values())


def _probe(module: str, function: str = "stripe_webhook", importtime: bool = False,
           deferred: str = "pass") -> subprocess.CompletedProcess:
    code = _PROBE.format(function_dir=str(FUNCTIONS / function), shared=str(SHARED), module=module,
                         deferred=deferred)
    args = [sys.executable] + (["-X", "importtime"] if importtime else []) + ["-c", code]
    env = {**os.environ, **INTAKE_ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(ROOT), check=True)


@dataclass(frozen=True)
class _Probe:
    seconds: float
    loaded: list[str]
    deferred_s: float


def time_import(module: str, function: str = "stripe_webhook", deferred: str = "pass") -> _Probe:
    out = json.loads(_probe(module, function, deferred=deferred).stdout.strip().splitlines()[-1])
    return _Probe(out["seconds"], out["loaded"], out["deferred"])


def parse_importtime(stderr: str, root: str = "handler") -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(-X importtime) → modules under ``root`` by self time, and ``root``'s direct imports by cumulative time."""
    group: list[tuple[int, str, float, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        level = (len(name) - len(name.lstrip()) - 1) // 2  # nested imports are indented under their importer
        # Lines come after their children: a top-level line closes the group of lines before it.
        group.append((level, name.strip(), int(self_us) / 1000, int(cumulative_us) / 1000))
        if level == 0:
            if name.strip() == root:
                break
            group = []
    by_self = sorted(((n, s) for _, n, s, _ in group), key=lambda pair: -pair[1])
    direct = sorted(((n, c) for level, n, _, c in group if level == 1), key=lambda pair: -pair[1])
    return by_self, direct


def measure_imports(runs: int = 15, budget_ratio: float = 1.5, top: int = 12) -> ImportFigures:
    # One untimed run of each first, so byte-code caches exist for both sides.
    time_import("handler")
    time_import("boto3")
    intake, bare, first_event = [], [], []
    loaded: set[str] = set()
    for _ in range(runs):  # interleaved (ABAB...): a noisy neighbour hits both kinds alike
        probe = time_import("handler", deferred=INTAKE_FIRST_EVENT_IMPORTS)
        intake.append(probe.seconds)
        first_event.append(probe.deferred_s)
        loaded.update(probe.loaded)
        bare.append(time_import("boto3").seconds)
    by_self, direct = parse_importtime(_probe("handler", importtime=True).stderr)
    intake_median, boto3_median = statistics.median(intake), statistics.median(bare)
    return ImportFigures(
        runs_each=runs,
        intake_median_s=intake_median,
        boto3_median_s=boto3_median,
        ratio=intake_median / boto3_median,
        budget_ratio=budget_ratio,
        intake_runs_s=intake,
        boto3_runs_s=bare,
        intake_first_event_imports_median_s=statistics.median(first_event),
        forbidden_loaded={name: name in loaded for name in FORBIDDEN_ON_INTAKE},
        slowest_self=by_self[:top],
        largest_direct=direct[:8],
    )


def init_seconds(function: str, runs: int = 3) -> float:
    """Median import time of another function's handler (its cold-start init, for the cost model)."""
    return statistics.median(time_import("handler", function).seconds for _ in range(runs))


@contextmanager
def _moto_account() -> Iterator[dict[str, str]]:
    """A moto server with template.yaml's resources and SSM parameters; yields the intake's env."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call otherwise

    from infra.local.resources import create_resources, function_environment, read_template

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name=INTAKE_ENV["AWS_REGION"])
        template = read_template()
        secrets = {value: FIRST_EVENT_WEBHOOK_SECRET if key == "StripeWebhookSecretsSecretName" else "bench-value"
                   for key, value in template.parameter_defaults().items() if key.endswith("SecretName")}
        secrets[template.parameter_defaults()["TokenKeysSecretName"]] = "k1:" + "A" * 43 + "="
        intrinsics = create_resources(template, lambda s: session.client(s, endpoint_url=endpoint), secrets,
                                      prefix="bench")
        env = {**function_environment(template, intrinsics), **{k: v for k, v in INTAKE_ENV.items()
                                                                if k not in ("LEDGER_TABLE", "BILLING_EVENTS_QUEUE_URL")}}
        env.update(AWS_ENDPOINT_URL=endpoint, POWERTOOLS_LOG_LEVEL="WARNING")
        _processor_function(lambda s: session.client(s, endpoint_url=endpoint), env["PROCESSOR_FUNCTION_NAME"])
        _answer_invokes_without_docker(endpoint)
        yield env
    finally:
        server.stop()


def _answer_invokes_without_docker(endpoint: str) -> None:
    """moto otherwise tries to run the invoked function in Docker (absent here) on every invoke,
    adding its own failed attempt to the intake's measured time; Lambda's asynchronous invoke only
    queues the event, which moto's Docker-less backend does too."""
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                     data=json.dumps({"lambda": {"use_docker": False}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _processor_function(client: Callable[[str], Any], name: str) -> None:
    """The function the intake invokes asynchronously: Lambda answers 202 once it holds the event
    (moto does the same without running it, which is all the intake's first event waits for)."""
    import io
    import zipfile

    role = client("iam").create_role(RoleName="bench-processor", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.lambda_handler",
                                     Code={"ZipFile": code.getvalue()})


FIRST_EVENT_WEBHOOK_SECRET = "whsec_bench_first_event"


def _signed_event_file(folder: Path) -> Path:
    import hashlib
    import hmac

    now = int(time.time())
    event_id = f"evt_bench_{uuid.uuid4().hex[:16]}"
    body = json.dumps({
        "id": event_id, "object": "event", "type": "customer.subscription.updated", "created": now,
        "livemode": False, "api_version": "2025-03-31.basil",
        "data": {"object": {"id": "sub_bench", "object": "subscription", "customer": "cus_bench",
                            "status": "active", "items": {"data": []}}},
    })
    signature = hmac.new(FIRST_EVENT_WEBHOOK_SECRET.encode(), f"{now}.{body}".encode(), hashlib.sha256).hexdigest()
    event = {"version": "2.0", "routeKey": "POST /webhooks/stripe", "rawPath": "/webhooks/stripe",
             "rawQueryString": "", "headers": {"stripe-signature": f"t={now},v1={signature}",
                                               "content-type": "application/json"},
             "requestContext": {"requestId": event_id, "http": {"method": "POST", "path": "/webhooks/stripe"}},
             "body": body, "isBase64Encoded": False}
    path = folder / f"{event_id}.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return path


def _short(path: str) -> str:
    """botocore/data/... or membergate/... : where a data file comes from, without the machine's prefix."""
    parts = Path(path).parts
    for anchor in ("site-packages", "shared"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + 1:])
    return path


def measure_first_event(runs: int = 15, budget_ratio: float = 2.2) -> FirstEventFigures:
    """Import + first event in fresh interpreters, interleaved with bare ``import boto3`` runs
    (and with as many phase runs, for the breakdown)."""
    with _moto_account() as env, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **env}
        env.pop("PYTHONDONTWRITEBYTECODE", None)

        def probe(template: str) -> dict:
            code = template.format(function_dir=str(FUNCTIONS / "stripe_webhook"), shared=str(SHARED),
                                   event_path=str(_signed_event_file(Path(tmp))), context=_PROBE_CONTEXT)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                 cwd=str(ROOT), check=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        probe(_FIRST_EVENT_PROBE)  # untimed: byte-code caches exist for both sides, as the built layer ships them
        time_import("boto3")
        totals, bare, statuses, phases = [], [], [], []
        for _ in range(runs):
            first = probe(_FIRST_EVENT_PROBE)
            totals.append(first["total"])
            statuses.append(f"{first['status']} {first['outcome']}")
            bare.append(time_import("boto3").seconds)
            phases.append(probe(_PHASES_PROBE))
    first_median, boto3_median = statistics.median(totals), statistics.median(bare)
    return FirstEventFigures(
        runs, first_median, boto3_median, first_median / boto3_median, budget_ratio, totals, statuses,
        phases_median_s={name: statistics.median(p["phases"][name] for p in phases) for name in phases[0]["phases"]},
        modules_loaded=phases[-1]["modules"], data_files=[_short(path) for path in phases[-1]["files"]],
        data_bytes_read=phases[-1]["file_bytes"],
    )
