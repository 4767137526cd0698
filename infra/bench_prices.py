"""The monthly AWS bill for N paying members, priced from measured requests and durations.

List prices, us-east-1, free tiers ignored; every price used is in PRICES below with the AWS
pricing page it comes from and the date it was recorded. "Fixed" means paid even with no
members at all (resources that exist, a schedule that runs, queues that are polled), read from
template.yaml as it is; "usage" grows with members. DESIGN.md's budget: total at most $1.00 a
month for 10,000 paying members, fixed at most $0.60.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.bench_cost import FUNCTIONS, MonthFigures, Usage
from infra.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 10_000
# Assumed share of members whose renewal fails in a month and is recovered in grace (the rest
# renew quietly). Signups, upgrades and cancellations are not modelled.
FAILED_PAYMENT_SHARE = 0.05
MEMBER_SCALES = (1_000, 10_000, 100_000)
TOTAL_BUDGET_USD = 1.00  # DESIGN.md "Budgets": at 10,000 paying members, list prices, no free tier
FIXED_BUDGET_USD = 0.60
DAYS_PER_MONTH = 30
LEDGER_RETENTION_DAYS = 400  # LEDGER_RETENTION_SECONDS in the ledger adapters
GIB = 1024**3

# Lambda writes START, END and REPORT lines for every invocation (about this many bytes).
PLATFORM_LOG_BYTES = 330
# Assumed: at most one cold start per function per 10 minutes in which it runs.
MAX_COLD_STARTS = DAYS_PER_MONTH * 24 * 6
SECRET_CACHE_SECONDS = 300  # CachedSecrets: one GetParameter per parameter per 5 minutes per container
# Assumed, not measured (moto has no event source mappings): Lambda long-polls each SQS event
# source with 5 connections, 20 s waits, whether or not messages arrive.
IDLE_POLL_REQUESTS_PER_QUEUE = 5 * 3 * 60 * 24 * DAYS_PER_MONTH


@dataclass(frozen=True)
class Price:
    usd: float  # per one unit
    label: str
    source: str  # the AWS pricing page the price is listed on


# Recorded on PRICES_AS_OF from the pages named (us-east-1, on-demand list prices, no free tier).
# The benchmark does not fetch them: check the pages before relying on the figure.
PRICES_AS_OF = "2026-11-30"
_LAMBDA = "https://aws.amazon.com/lambda/pricing/"
_DYNAMODB = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
_SQS = "https://aws.amazon.com/sqs/pricing/"
_CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
_KMS = "https://aws.amazon.com/kms/pricing/"
_SSM = "https://aws.amazon.com/systems-manager/pricing/"
PRICES = {
    "http_api": Price(1.00 / 1e6, "$1.00/M requests", "https://aws.amazon.com/api-gateway/pricing/"),
    "lambda_request": Price(0.20 / 1e6, "$0.20/M requests", _LAMBDA),
    "lambda_gb_s": Price(0.0000133334, "$0.0000133334/GB-s arm64", _LAMBDA),
    "dynamodb_read": Price(0.125 / 1e6, "$0.125/M RRU", _DYNAMODB),
    "dynamodb_write": Price(0.625 / 1e6, "$0.625/M WRU", _DYNAMODB),
    "dynamodb_storage": Price(0.25 + 0.20, "$0.25 + $0.20 PITR /GB-month", _DYNAMODB),
    "sqs_standard": Price(0.40 / 1e6, "$0.40/M requests", _SQS),
    "sqs_fifo": Price(0.50 / 1e6, "$0.50/M requests", _SQS),
    "scheduler": Price(1.00 / 1e6, "$1.00/M invocations", "https://aws.amazon.com/eventbridge/pricing/"),
    "ssm_parameter": Price(0.0, "$0 standard parameter (SecureString too)", _SSM),
    "ssm_call": Price(0.0, "$0 GetParameter, standard throughput", _SSM),
    "secret": Price(0.40, "$0.40/secret-month", "https://aws.amazon.com/secrets-manager/pricing/"),
    "kms_key": Price(1.00, "$1.00/key-month", _KMS),
    "kms_request": Price(0.03 / 1e4, "$0.03/10k requests", _KMS),
    "logs_ingest": Price(0.50 / GIB, "$0.50/GB ingested", _CLOUDWATCH),
    "custom_metric": Price(0.30, "$0.30/metric-month", _CLOUDWATCH),
    "alarm": Price(0.10, "$0.10/standard alarm-month", _CLOUDWATCH),
}


@dataclass(frozen=True)
class CostLine:
    service: str
    what: str
    quantity: float
    price: str
    usage_usd: float
    fixed_usd: float
    note: str = ""


@dataclass
class CostModel:
    members: int
    failed_payment_share: float
    sweeps_per_month: int
    memory_mb: dict[str, int]
    init_s: dict[str, float]
    polled_queues: dict[str, bool] = field(default_factory=dict)  # queue id -> FIFO?, from template.yaml
    lines: list[CostLine] = field(default_factory=list)
    per_member_month: dict[str, dict[str, float]] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    @property
    def usage_usd(self) -> float:
        return sum(line.usage_usd for line in self.lines)

    @property
    def fixed_usd(self) -> float:
        return sum(line.fixed_usd for line in self.lines)

    @property
    def total_usd(self) -> float:
        return self.usage_usd + self.fixed_usd

    @property
    def ok(self) -> bool:
        return self.total_usd <= TOTAL_BUDGET_USD and self.fixed_usd <= FIXED_BUDGET_USD


# --- what template.yaml says --------------------------------------------------------------------


def _template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def function_memory_mb(template: dict[str, Any]) -> dict[str, int]:
    default = int(template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    out = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        name = Path(str(resource["Properties"]["CodeUri"])).name
        out[name] = int(resource["Properties"].get("MemorySize", default))
    return out


def sweeps_per_month(template: dict[str, Any]) -> int:
    units = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86_400, "days": 86_400}
    for resource in template["Resources"].values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            expression = str(event.get("Properties", {}).get("ScheduleExpression", ""))
            if match := re.fullmatch(r"rate\((\d+) (\w+)\)", expression):
                return DAYS_PER_MONTH * 86_400 // (int(match.group(1)) * units[match.group(2)])
    raise ValueError("template.yaml has no rate(...) schedule")


def runs_per_month(template: dict[str, Any], folder: str) -> int:
    """How often the schedule of the function in functions/<folder> runs in a month (0 if it has none)."""
    units = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86_400, "days": 86_400}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function" or Path(str(resource["Properties"]["CodeUri"])).name != folder:
            continue
        for event in resource.get("Properties", {}).get("Events", {}).values():
            expression = str(event.get("Properties", {}).get("ScheduleExpression", ""))
            if match := re.fullmatch(r"rate\((\d+) (\w+)\)", expression):
                return DAYS_PER_MONTH * 86_400 // (int(match.group(1)) * units[match.group(2)])
    return 0


def count_resources(template: dict[str, Any], kind: str) -> int:
    return sum(1 for r in template["Resources"].values() if r["Type"] == kind and "Condition" not in r)


def secret_names(template: dict[str, Any]) -> list[str]:
    """Template parameters naming an SSM SecureString parameter the creator creates."""
    return [name for name in template.get("Parameters", {}) if name.endswith("SecretName")]


def polled_queues(template: dict[str, Any]) -> dict[str, bool]:
    """Queues a Lambda event source long-polls, whether or not messages arrive: id -> FIFO?"""
    resources = template["Resources"]
    out: dict[str, bool] = {}
    for resource in resources.values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "SQS":
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                out[queue] = bool(resources[queue]["Properties"].get("FifoQueue"))
    return out


def business_metrics_default(template: dict[str, Any]) -> bool:
    return str(template.get("Parameters", {}).get("BusinessMetrics", {}).get("Default", "on")) == "on"


def declared_metrics() -> set[str]:
    """Business metric names the handlers can emit: count("X") and the dicts that map outcomes to X."""
    names: set[str] = set()
    for path in sorted((ROOT / "functions").glob("*/handler.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "count" and node.args:
                names |= _strings(node.args[0])
            if isinstance(node, ast.Dict):
                names |= {v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return {n for n in names if re.fullmatch(r"(?:[A-Z][a-z]+){2,}", n)}


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


# --- the model ----------------------------------------------------------------------------------


def quantities(usage: Usage) -> dict[str, float]:
    q: dict[str, float] = {
        "api_requests": usage.api_requests,
        "stripe_events": usage.stripe_events,
        "rru": usage.read_units,
        "wru": usage.write_units,
        "sqs_standard": usage.sqs_standard,
        "sqs_fifo": usage.sqs_fifo,
        "kms": usage.kms,
    }
    for name, use in usage.functions.items():
        q[f"invocations:{name}"] = use.invocations
        q[f"ms:{name}"] = use.billed_ms
        q[f"log_bytes:{name}"] = use.log_bytes + PLATFORM_LOG_BYTES * use.invocations
    return q


def _mix(a: dict[str, float], b: dict[str, float], share_b: float) -> dict[str, float]:
    return {k: (1 - share_b) * a.get(k, 0.0) + share_b * b.get(k, 0.0) for k in a.keys() | b.keys()}


def _times(q: dict[str, float], factor: float) -> dict[str, float]:
    return {k: v * factor for k, v in q.items()}


def _plus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in a.keys() | b.keys()}


def build_cost_model(month: MonthFigures, init_s: dict[str, float], members: int = MEMBERS,
                     failed_share: float = FAILED_PAYMENT_SHARE, template: dict[str, Any] | None = None) -> CostModel:
    """Price ``members`` member-months; fixed resources as ``template`` (template.yaml by default) declares."""
    template = _template() if template is None else template
    memory = function_memory_mb(template)
    sweeps = sweeps_per_month(template)
    reconciles = runs_per_month(template, "reconcile")
    per_member = _mix(quantities(month.renewal), quantities(month.failed_payment), failed_share)
    # Each reconciliation reads every member: what one member adds to a run, times the runs.
    per_member = _plus(per_member, _times(quantities(month.reconcile_per_member), reconciles))
    usage = _times(per_member, members)
    fixed = _plus(_times(quantities(month.idle_sweep), sweeps), _times(quantities(month.reconcile_fixed), reconciles))
    fixed["reconcile_runs"] = reconciles
    model = CostModel(members, failed_share, sweeps, memory, init_s, polled_queues(template))
    model.per_member_month = {
        "renewal": quantities(month.renewal),
        "failed payment, recovered in grace": quantities(month.failed_payment),
        f"mix ({1 - failed_share:.0%} / {failed_share:.0%})": per_member,
        "idle sweep (one invocation)": quantities(month.idle_sweep),
        "reconcile run, fixed part": quantities(month.reconcile_fixed),
        "reconcile run, per member": quantities(month.reconcile_per_member),
    }
    _price_requests(model, usage, fixed)
    _price_lambda(model, usage, fixed, month)
    _price_storage(model, usage, month)
    _price_resources(model, template, usage, month)
    model.assumptions = _assumptions(model)
    return model


def _line(model: CostModel, service: str, what: str, price: str, usage_qty: float, fixed_qty: float,
          note: str = "") -> None:
    p = PRICES[price]
    model.lines.append(CostLine(service, what, usage_qty + fixed_qty, p.label,
                                usage_qty * p.usd, fixed_qty * p.usd, note))


def _price_requests(model: CostModel, usage: dict, fixed: dict) -> None:
    _line(model, "API Gateway", "HTTP API requests (Stripe webhooks)", "http_api", usage.get("api_requests", 0), 0)
    _line(model, "DynamoDB", "read request units", "dynamodb_read", usage.get("rru", 0), fixed.get("rru", 0),
          "consistent reads: 1 RRU per 4 KB; index queries 0.5")
    _line(model, "DynamoDB", "write request units (incl. index writes)", "dynamodb_write", usage.get("wru", 0),
          fixed.get("wru", 0))
    _line(model, "SQS", "standard queue requests (access work)", "sqs_standard", usage.get("sqs_standard", 0),
          fixed.get("sqs_standard", 0), "sends per 64 KB + the poller's receive and delete per message")
    _line(model, "SQS", "FIFO queue requests (billing events)", "sqs_fifo", usage.get("sqs_fifo", 0),
          fixed.get("sqs_fifo", 0))
    for queue, fifo in model.polled_queues.items():
        _line(model, "SQS", f"idle long polling by Lambda, {queue}", "sqs_fifo" if fifo else "sqs_standard", 0,
              IDLE_POLL_REQUESTS_PER_QUEUE, "assumed: 5 pollers x 20 s waits, not measured")
    _line(model, "EventBridge Scheduler", "lifecycle sweeps, rate(5 minutes)", "scheduler", 0, model.sweeps_per_month)
    _line(model, "EventBridge Scheduler", "reconciliation runs (template schedule)", "scheduler", 0,
          fixed.get("reconcile_runs", 0))
    _line(model, "KMS", "requests (seal/open Discord tokens)", "kms_request", usage.get("kms", 0), fixed.get("kms", 0))


def _price_lambda(model: CostModel, usage: dict, fixed: dict, month: MonthFigures) -> None:
    requests = {"usage": 0.0, "fixed": 0.0}
    compute = {"usage": 0.0, "fixed": 0.0}
    init = {"usage": 0.0, "fixed": 0.0}
    logs = {"usage": 0.0, "fixed": 0.0}
    for name in FUNCTIONS:
        gb = model.memory_mb.get(name, 512) / 1024
        for kind, q in (("usage", usage), ("fixed", fixed)):
            invocations = q.get(f"invocations:{name}", 0.0)
            requests[kind] += invocations
            compute[kind] += q.get(f"ms:{name}", 0.0) / 1000 * gb
            logs[kind] += q.get(f"log_bytes:{name}", 0.0)
        total = usage.get(f"invocations:{name}", 0.0) + fixed.get(f"invocations:{name}", 0.0)
        cold_seconds = model.init_s.get(name, 0.0) + month.first_invocation_extra_ms.get(name, 0.0) / 1000
        # Cold starts belong to whoever invokes the function: the schedule for the sweep.
        kind = "fixed" if fixed.get(f"invocations:{name}") else "usage"
        init[kind] += min(total, MAX_COLD_STARTS) * cold_seconds * gb
    gb_s = PRICES["lambda_gb_s"]
    for what, price, split, note in (
        ("requests", PRICES["lambda_request"], requests, ""),
        ("duration (measured in-process, moto as the network)", gb_s, compute, "GB-s; memory from template.yaml"),
        ("cold-start init + first call (billed since 2025-08)", gb_s, init,
         "GB-s; assumed <= 1 cold start per function per 10 min"),
    ):
        model.lines.append(CostLine("Lambda", what, sum(split.values()), price.label,
                                    split["usage"] * price.usd, split["fixed"] * price.usd, note))
    logs_price = PRICES["logs_ingest"]
    model.lines.append(CostLine("CloudWatch Logs", "ingestion (handler output + START/END/REPORT)",
                                sum(logs.values()) / GIB, logs_price.label,
                                logs["usage"] * logs_price.usd, logs["fixed"] * logs_price.usd,
                                "GiB; bytes measured from what the handlers print"))
    secret_calls = 0.0
    for name, secrets in month.secrets_by_function.items():
        invocations = usage.get(f"invocations:{name}", 0.0) + fixed.get(f"invocations:{name}", 0.0)
        secret_calls += secrets * min(invocations, DAYS_PER_MONTH * 86_400 / SECRET_CACHE_SECONDS)
    _line(model, "SSM Parameter Store", "GetParameter calls (5-minute cache, upper bound)", "ssm_call",
          secret_calls, 0, "at most one per parameter per 5 minutes per warm container")


def _price_storage(model: CostModel, usage: dict, month: MonthFigures) -> None:
    months_kept = LEDGER_RETENTION_DAYS / DAYS_PER_MONTH
    ledger_items = usage.get("stripe_events", 0.0) * months_kept
    stored = model.members * month.member_bytes + ledger_items * month.ledger_item_bytes
    _line(model, "DynamoDB", "storage + point-in-time recovery (steady state)", "dynamodb_storage", stored / GIB, 0,
          f"GiB; members' items + {LEDGER_RETENTION_DAYS} days of ledger")


def _price_resources(model: CostModel, template: dict, usage: dict, month: MonthFigures) -> None:
    secrets = secret_names(template)
    _line(model, "SSM Parameter Store", f"SecureString parameters ({len(secrets)} named in template.yaml)",
          "ssm_parameter", 0, len(secrets), "standard tier; the aws/ssm key is AWS-managed (no key charge)")
    keys = count_resources(template, "AWS::KMS::Key")
    _line(model, "KMS", "customer managed key (only with TokenSealing=kms)", "kms_key", 0, keys,
          "default: a data key in an SSM parameter; kms adds $1/month (+$1 per rotation kept)")
    # Custom metrics are prorated by the hours in which they receive data: one the schedule emits
    # every 5 minutes is billed all month, so is one emitted on every Stripe event at this volume.
    scheduled = _metric_names(month.idle_sweep.metrics)
    per_event = _metric_names(month.renewal.metrics | month.failed_payment.metrics) - scheduled
    optional = declared_metrics() - scheduled - per_event
    _line(model, "CloudWatch", "custom metrics (EMF) emitted with the template's defaults", "custom_metric", 0,
          len(scheduled | per_event), ", ".join(sorted(scheduled | per_event)) or
          ("none: BusinessMetrics=off" if not business_metrics_default(template) else "none measured"))
    _line(model, "CloudWatch", "custom metrics with BusinessMetrics=on (not counted)", "custom_metric", 0, 0,
          f"opt-in: up to {len(optional)} x $0.30 (prorated by hours with data)")
    alarms = count_resources(template, "AWS::CloudWatch::Alarm")
    _line(model, "CloudWatch", f"alarms ({alarms} in template.yaml)", "alarm", 0, alarms)


def _metric_names(emf: set[str]) -> set[str]:
    """"Namespace/Name[dimensions]" → Name (every metric here has the same service dimension)."""
    return {m.split("/", 1)[-1].split("[", 1)[0] for m in emf}


def _assumptions(model: CostModel) -> list[str]:
    return [
        f"{model.members:,} paying members; a month = {DAYS_PER_MONTH} days; free tiers ignored; us-east-1 list prices",
        f"member-month = {1 - model.failed_payment_share:.0%} quiet renewals + {model.failed_payment_share:.0%} "
        "failed renewals recovered in grace (2 + 4 subscribed Stripe events); signups/cancellations not modelled",
        "each queued message reaches its consumer alone (batch of 1): events of one member trickle in",
        "Lambda duration = in-process handler time under moto (stands in for DynamoDB/SQS round trips)",
        f"sweeps: {model.sweeps_per_month:,} per month from template.yaml's rate(); each reads the 4 due-index shards",
        f"prices recorded {PRICES_AS_OF} from the AWS pricing pages listed below; not fetched by the benchmark",
    ]


def member_month_table(model: CostModel) -> list[tuple[str, ...]]:
    """Rows: what one member-month causes, per scenario."""
    keys = ["api_requests", *(f"invocations:{n}" for n in FUNCTIONS), "rru", "wru", "sqs_fifo", "sqs_standard", "kms",
            *(f"ms:{n}" for n in FUNCTIONS)]
    rows = [("", *model.per_member_month.keys())]
    for key in keys:
        values = [q.get(key, 0.0) for q in model.per_member_month.values()]
        rows.append((key, *(f"{v:.2f}".rstrip("0").rstrip(".") if v else "0" for v in values)))
    return rows


def fmt_usd(value: float) -> str:
    return f"${value:.4f}" if value < 0.1 else f"${value:.2f}"


def fmt_qty(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.3g}" if not math.isclose(value, round(value)) else f"{value:.0f}"


def price_sources(model: CostModel) -> list[tuple[str, str, str]]:
    """(price, label, source page) for every price a line of the model uses."""
    used = {line.price for line in model.lines}
    return [(key, p.label, p.source) for key, p in PRICES.items() if p.label in used]
