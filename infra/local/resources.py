"""Reads template.yaml and creates its tables, queues, key and SSM secrets in a moto server.

template.yaml stays the single source of truth: the local stack's tables, indexes, queues,
routes, schedules and function environments all come from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.cfn_yaml import load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
# Lambda scales an asynchronously invoked function to the account's limit; locally, this many.
LOCAL_CONCURRENCY_CAP = 4


@dataclass(frozen=True)
class Route:
    method: str  # "GET", "POST", ... or "ANY"
    path: str  # template form: /join/{plan_id}, /admin/{proxy+}
    function: str  # logical id
    folder: str  # functions/<folder>

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", self.path)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class QueueConsumer:
    queue: str  # logical id
    function: str
    folder: str
    batch_size: int
    max_concurrency: int = 5  # ScalingConfig.MaximumConcurrency, or a local cap


@dataclass(frozen=True)
class AsyncTarget:
    """A function invoked asynchronously: its retries and on-failure destination (EventInvokeConfig)."""

    function: str
    folder: str
    max_retries: int
    on_failure: str | None  # logical id of the destination queue
    max_concurrency: int  # ReservedConcurrentExecutions, or a local cap


@dataclass(frozen=True)
class Schedule:
    function: str
    folder: str
    every_seconds: int


@dataclass
class Template:
    raw: dict[str, Any]
    routes: list[Route] = field(default_factory=list)
    consumers: list[QueueConsumer] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    async_targets: list[AsyncTarget] = field(default_factory=list)

    @property
    def resources(self) -> dict[str, Any]:
        return self.raw["Resources"]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == kind}

    def parameter_defaults(self) -> dict[str, str]:
        return {k: str(v.get("Default", "")) for k, v in self.raw.get("Parameters", {}).items()}


def _folder(function: dict[str, Any]) -> str:
    return Path(str(function["Properties"]["CodeUri"])).name


def _rate_seconds(expression: str) -> int:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise ValueError(f"the local stack runs rate() schedules only, got {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86_400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


def read_template(path: Path = TEMPLATE) -> Template:
    template = Template(load_template(path))
    for logical_id, function in template.of_type("AWS::Serverless::Function").items():
        folder = _folder(function)
        invoke_config = function["Properties"].get("EventInvokeConfig")
        if invoke_config and invoke_config.get("MaximumRetryAttempts", 2) > 0:
            destination = ((invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            template.async_targets.append(AsyncTarget(
                logical_id, folder, int(invoke_config.get("MaximumRetryAttempts", 2)),
                destination["Fn::GetAtt"][0] if isinstance(destination, dict) else None,
                int(function["Properties"].get("ReservedConcurrentExecutions", LOCAL_CONCURRENCY_CAP)),
            ))
        for event in (function["Properties"].get("Events") or {}).values():
            props = event.get("Properties", {})
            if event["Type"] == "HttpApi":
                template.routes.append(Route(props["Method"].upper(), props["Path"], logical_id, folder))
            elif event["Type"] == "SQS":
                queue = props["Queue"]["Fn::GetAtt"][0]
                scaling = props.get("ScalingConfig") or {}
                template.consumers.append(QueueConsumer(queue, logical_id, folder, int(props.get("BatchSize", 10)),
                                                        int(scaling.get("MaximumConcurrency", 5))))
            elif event["Type"] in ("Schedule", "ScheduleV2"):
                expression = props.get("ScheduleExpression") or props.get("Schedule")
                template.schedules.append(Schedule(logical_id, folder, _rate_seconds(expression)))
    # Most specific first, so /admin/openapi.json-like literals beat {proxy+}.
    template.routes.sort(key=lambda r: (r.method == "ANY", "+}" in r.path, -len(r.path)))
    return template


class Intrinsics:
    """Just enough CloudFormation to resolve function environments locally."""

    def __init__(self, template: Template, values: dict[str, str], parameters: dict[str, str]):
        self.template = template
        self.values = values  # logical id -> what Ref returns (table name, queue URL, key id)
        self.attributes: dict[tuple[str, str], str] = {}
        self.parameters = parameters
        self.pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                       "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "membergate-local"}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                if arg in self.parameters:  # an empty default ("") is a value, not a missing parameter
                    return self.parameters[arg]
                return self.pseudo.get(arg) or self.values.get(arg, arg)
            if key == "Fn::GetAtt":
                resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attributes.get((resource, attribute), self.values.get(resource, resource))
            if key == "Fn::If":
                condition, yes, no = arg
                return self.resolve(yes if self.condition(condition) else no)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.resolve(extra.get(m.group(1)) or self._sub_ref(m.group(1)))), text)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(self.resolve(i)) for i in items)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _sub_ref(self, name: str) -> Any:
        if "." in name:
            resource, attribute = name.split(".", 1)
            return {"Fn::GetAtt": [resource, attribute]}
        return {"Ref": name}

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.template.raw.get("Conditions", {})[name]))

    def _evaluate(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            (key, arg), = expr.items()
            if key == "Fn::Equals":
                return self._evaluate(arg[0]) == self._evaluate(arg[1])
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Fn::And":
                return all(self._evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(self._evaluate(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        return self.resolve(expr)


def create_resources(template: Template, clients: Any, secret_values: dict[str, str], prefix: str = "membergate-local") -> Intrinsics:
    """Create every table, queue and key the template declares, and the SSM secrets; return the resolver."""
    values: dict[str, str] = {}
    parameters = template.parameter_defaults()
    intrinsics = Intrinsics(template, values, parameters)
    dynamodb, sqs, kms, ssm = clients("dynamodb"), clients("sqs"), clients("kms"), clients("ssm")
    s3 = clients("s3")
    for logical_id in template.of_type("AWS::S3::Bucket"):
        name = f"{prefix}-{logical_id}".lower()
        s3.create_bucket(Bucket=name)
        values[logical_id] = name
        intrinsics.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    for logical_id, function in template.of_type("AWS::Serverless::Function").items():
        # Ref to a function is its name; the local stack's fake context reports the same name.
        name = str(intrinsics.resolve(function["Properties"].get("FunctionName", logical_id)))
        values[logical_id] = name
        intrinsics.attributes[(logical_id, "Arn")] = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    for logical_id, table in template.of_type("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        name = f"{prefix}-{logical_id}"
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
                for gsi in props["GlobalSecondaryIndexes"]
            ]
        dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        values[logical_id] = name
    queues = template.of_type("AWS::SQS::Queue")
    # Dead-letter queues first, so redrive policies can point at them.
    ordered = sorted(queues.items(), key=lambda kv: "RedrivePolicy" in kv[1].get("Properties", {}))
    for logical_id, queue in ordered:
        props = queue.get("Properties", {})
        fifo = bool(props.get("FifoQueue"))
        name = f"{prefix}-{logical_id}" + (".fifo" if fifo else "")
        attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
        if fifo:
            attributes["FifoQueue"] = "true"
            attributes["ContentBasedDeduplication"] = "true" if props.get("ContentBasedDeduplication") else "false"
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        values[logical_id] = url
        intrinsics.attributes[(logical_id, "Arn")] = arn
        intrinsics.attributes[(logical_id, "QueueName")] = name
        intrinsics.attributes[(logical_id, "QueueUrl")] = url
        redrive = props.get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]
            sqs.set_queue_attributes(
                QueueUrl=url,
                Attributes={"RedrivePolicy": f'{{"deadLetterTargetArn":"{intrinsics.resolve(target)}","maxReceiveCount":"{redrive.get("maxReceiveCount", 5)}"}}'},
            )
    for logical_id in template.of_type("AWS::KMS::Key"):
        key = kms.create_key(Description=f"{prefix} {logical_id}")["KeyMetadata"]
        values[logical_id] = key["KeyId"]
        intrinsics.attributes[(logical_id, "Arn")] = key["Arn"]
    # Named ScheduleV2 events as EventBridge Scheduler schedules, so GET /admin/health reads their
    # state as deployed. The local stack runs its schedules itself, whatever their state here.
    scheduler = clients("scheduler")
    for logical_id, function in template.of_type("AWS::Serverless::Function").items():
        for event in (function["Properties"].get("Events") or {}).values():
            props = event.get("Properties", {})
            if event["Type"] == "ScheduleV2" and props.get("Name"):
                scheduler.create_schedule(
                    Name=str(intrinsics.resolve(props["Name"])), ScheduleExpression=props["ScheduleExpression"],
                    FlexibleTimeWindow={"Mode": "OFF"}, State=props.get("State", "ENABLED"),
                    Target={"Arn": intrinsics.attributes[(logical_id, "Arn")],
                            "RoleArn": "arn:aws:iam::123456789012:role/membergate-local-scheduler"},
                )
    for name, value in secret_values.items():  # what the creator puts in Parameter Store before deploying
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    return intrinsics


def function_environment(template: Template, intrinsics: Intrinsics) -> dict[str, str]:
    """The union of every function's environment (they agree on shared names)."""
    env: dict[str, str] = {}
    globals_env = (template.raw.get("Globals", {}).get("Function", {}).get("Environment", {}) or {}).get("Variables", {})
    for key, value in globals_env.items():
        env[key] = str(intrinsics.resolve(value))
    for function in template.of_type("AWS::Serverless::Function").values():
        variables = (function["Properties"].get("Environment") or {}).get("Variables", {})
        for key, value in variables.items():
            env[key] = str(intrinsics.resolve(value))
    return env
