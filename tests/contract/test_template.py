"""template.yaml agrees with the code: functions, settings, tables, queues, logs, IAM, build, lint."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from infra import build
from infra.cfn_yaml import dump_template, load_template, loads_template
from membergate import config
from membergate.adapters.aws import KmsTokenCipher
from membergate.adapters.dynamodb.models import LedgerItem, MembershipItem

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
TEMPLATE = load_template(TEMPLATE_PATH)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
GLOBAL_FUNCTION: dict[str, Any] = TEMPLATE.get("Globals", {}).get("Function", {})
GLOBAL_ENV: dict[str, Any] = GLOBAL_FUNCTION.get("Environment", {}).get("Variables", {})

# Set by the Lambda runtime itself; a function may not define them.
RUNTIME_PROVIDED = {"AWS_REGION", "AWS_DEFAULT_REGION"}
TABLES_BY_MODEL = {"MembershipTable": MembershipItem, "LedgerTable": LedgerItem}
REQUIRED_ROUTES = {
    ("POST", "/webhooks/stripe"): "stripe_webhook",
    ("POST", "/checkout"): "start_checkout",
    ("POST", "/billing/portal"): "start_checkout",
    ("GET", "/join/{plan_id}"): "join",
    ("GET", "/auth/discord/start"): "join",
    ("GET", "/auth/discord/callback"): "join",
    ("ANY", "/admin/{proxy+}"): "admin_api",
}
SECRET_LOOKING = re.compile(r"(sk|rk|pk)_(live|test)_|whsec_|xox[abp]-|[A-Za-z0-9_-]{24}\.[A-Za-z0-9_-]{6}\.")


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


FUNCTIONS = of_type("AWS::Serverless::Function")


def folder_of(function: dict[str, Any]) -> str:
    code_uri = function["Properties"]["CodeUri"]
    match = re.fullmatch(r"functions/([a-z0-9_]+)/?", code_uri)
    assert match, f"CodeUri {code_uri!r} is not functions/<folder>/"
    return match.group(1)


FUNCTION_BY_FOLDER = {folder_of(f): name for name, f in FUNCTIONS.items()}


def env_of(function: dict[str, Any]) -> dict[str, Any]:
    return function["Properties"].get("Environment", {}).get("Variables", {})


def ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def get_att(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        return resource, attribute
    return None


def walk(node: Any):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


NO_VALUE = {"Ref": "AWS::NoValue"}


def _branches(statement: Any) -> list[dict[str, Any]]:
    """A statement, or both sides of an ``!If`` choosing between statements (AWS::NoValue dropped)."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        _, yes, no = statement["Fn::If"]
        return [s for branch in (yes, no) for s in _branches(branch)]
    return [] if statement == NO_VALUE else [statement]


def role_of(function: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    role = get_att(function["Properties"].get("Role"))
    assert role and role[1] == "Arn", "every function names its own AWS::IAM::Role (Role: !GetAtt <X>Role.Arn)"
    assert RESOURCES[role[0]]["Type"] == "AWS::IAM::Role", role
    return role[0], RESOURCES[role[0]]


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Allow/Deny statement the function's role may hold (either side of a condition)."""
    assert "Policies" not in function["Properties"], (
        "no SAM Policies on a function: SAM would add AWSLambdaBasicExecutionRole (logs on every resource)"
    )
    _, role = role_of(function)
    found = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            found.extend(_branches(statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(function: dict[str, Any], action: str, resource_hint: str) -> bool:
    """Does an Allow statement give ``action`` on a resource whose expression mentions the hint?"""
    for statement in statements(function):
        actions = as_list(statement["Action"])
        if statement["Effect"] == "Allow" and any(fnmatch.fnmatch(action.lower(), a.lower()) for a in actions):
            if any(resource_hint in str(r) for r in as_list(statement["Resource"])):
                return True
    return False


def http_events(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["Properties"] for e in function["Properties"].get("Events", {}).values() if e["Type"] == "HttpApi"]


# --- functions and settings -----------------------------------------------------------------------


def test_template_functions_match_settings_by_function():
    # Given the settings registry and the template
    # When comparing the function folders both name
    # Then each use case has exactly one function and vice versa
    assert set(FUNCTION_BY_FOLDER) == set(config.SETTINGS_BY_FUNCTION)
    assert len(FUNCTION_BY_FOLDER) == len(FUNCTIONS)


def test_existing_function_folders_are_in_template_with_matching_code_uri():
    folders = {p.name for p in (ROOT / "functions").iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert folders <= set(FUNCTION_BY_FOLDER), f"function folders without a template function: {folders - set(FUNCTION_BY_FOLDER)}"
    for folder in folders:
        assert FUNCTIONS[FUNCTION_BY_FOLDER[folder]]["Properties"]["CodeUri"].rstrip("/") == f"functions/{folder}"
        assert not any((ROOT / "functions" / folder).glob("test_*.py")), f"tests do not belong in functions/{folder}"


def test_function_logical_ids_follow_the_naming_rule():
    for name in FUNCTIONS:
        assert re.fullmatch(r"[A-Z][A-Za-z]+Function", name), name


@pytest.mark.parametrize("folder", sorted(config.SETTINGS_BY_FUNCTION))
def test_function_environment_is_exactly_what_its_settings_read(folder):
    # Given the settings class the function's handler builds
    settings = config.SETTINGS_BY_FUNCTION[folder]
    read = settings.env_names()
    assert {f.name for f in fields(settings)} <= set(config.ENV_NAMES), "a settings field has no variable name"
    # When collecting the variables the template sets for it (Globals merge into every function)
    function = FUNCTIONS[FUNCTION_BY_FOLDER[folder]]
    own = set(env_of(function))
    # Then everything read is set, and nothing else is set on the function itself
    assert read - RUNTIME_PROVIDED <= own | set(GLOBAL_ENV)
    assert own == read - RUNTIME_PROVIDED - set(GLOBAL_ENV)
    assert not own & RUNTIME_PROVIDED


def test_no_secret_value_is_set_in_the_environment():
    for name, function in FUNCTIONS.items():
        for var, value in {**GLOBAL_ENV, **env_of(function)}.items():
            assert not SECRET_LOOKING.search(str(value)), f"{name}.{var} looks like a secret value"
            if re.search(r"SECRET|TOKEN|PASSWORD|API_KEY", var) and var not in ("TOKEN_KEY_ID", "TOKEN_SEALING"):
                assert var.endswith("_NAME"), f"{name}.{var}: secrets are passed by name (…_NAME)"
                parameter = ref(value)
                assert parameter in PARAMETERS, f"{name}.{var} must be a !Ref to a template parameter"
                assert parameter.endswith("SecretName"), parameter
                assert "Default" not in PARAMETERS[parameter] or not SECRET_LOOKING.search(
                    str(PARAMETERS[parameter]["Default"])
                )
        if "TOKEN_KEY_ID" in env_of(function):
            # The KMS key id only when TokenSealing=kms; empty otherwise (the key does not exist).
            condition, key, otherwise = env_of(function)["TOKEN_KEY_ID"]["Fn::If"]
            assert RESOURCES[ref(key)]["Type"] == "AWS::KMS::Key" and otherwise == ""
            assert RESOURCES[ref(key)]["Condition"] == condition


def test_functions_can_read_the_secrets_they_are_told_to_read():
    for name, function in FUNCTIONS.items():
        for var, value in env_of(function).items():
            if var.endswith("_NAME") and ref(value) in PARAMETERS:
                assert grants(function, "ssm:GetParameter", "${" + ref(value) + "}"), (
                    f"{name} reads {var} but may not read that parameter"
                )


def test_functions_can_send_to_the_queues_they_are_given():
    for name, function in FUNCTIONS.items():
        for var, value in env_of(function).items():
            if var.endswith("_QUEUE_URL"):
                queue = ref(value)
                assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue"
                assert grants(function, "sqs:SendMessage", f"'{queue}'"), f"{name} cannot send to {queue}"


def test_token_key_permissions_match_the_cipher_encryption_context():
    # Given the encryption context the real cipher sends to KMS
    class RecordingKms:
        def __init__(self):
            self.contexts = []

        def encrypt(self, **kwargs):
            self.contexts.append(kwargs["EncryptionContext"])
            return {"CiphertextBlob": b"sealed"}

    kms = RecordingKms()
    KmsTokenCipher(kms, "key").seal(b"token")
    (context,) = kms.contexts
    # When reading the KMS statements of every function holding the key id
    for name, function in FUNCTIONS.items():
        if "TOKEN_KEY_ID" not in env_of(function):
            continue
        kms_statements = [s for s in statements(function) if any(a.startswith("kms:") for a in as_list(s["Action"]))]
        # Then each is scoped to the key and to exactly that context
        assert kms_statements, f"{name} has the key id but no kms permission"
        for statement in kms_statements:
            assert get_att(statement["Resource"]) == ("TokenKey", "Arn")
            assert RESOURCES["TokenKey"]["Condition"] == "SealWithKms"
            expected = {f"kms:EncryptionContext:{k}": v for k, v in context.items()}
            assert statement["Condition"]["StringEquals"] == expected


def test_functions_with_http_events_do_not_reference_the_api_id():
    # Referencing HttpApi from a function that the API integrates creates a dependency cycle.
    for name, function in FUNCTIONS.items():
        if not http_events(function):
            continue
        properties = {k: v for k, v in function["Properties"].items() if k != "Events"}
        assert "HttpApi" not in str(properties), f"{name} references HttpApi outside its events"


def test_every_function_uses_the_shared_layer():
    assert of_type("AWS::Serverless::LayerVersion")["SharedLayer"]["Properties"]["ContentUri"].rstrip("/") == "shared"
    for name, function in FUNCTIONS.items():
        assert function["Properties"]["Layers"] == [{"Ref": "SharedLayer"}], name


def test_globals_pin_runtime_architecture_and_handler():
    assert GLOBAL_FUNCTION["Runtime"] in ("python3.12", "python3.13")
    assert GLOBAL_FUNCTION["Architectures"] == ["arm64"]
    assert GLOBAL_FUNCTION["Handler"] == "handler.lambda_handler"
    assert {"POWERTOOLS_SERVICE_NAME", "LOG_LEVEL"} <= set(GLOBAL_ENV)


# --- routes -------------------------------------------------------------------------------------------


def test_required_routes_are_served_by_the_right_functions():
    routes = {}
    for name, function in FUNCTIONS.items():
        for event in http_events(function):
            assert ref(event["ApiId"]) == "HttpApi", f"{name}: routes belong to the one HttpApi"
            key = (event["Method"].upper(), event["Path"])
            assert key not in routes, f"route {key} is served twice"
            routes[key] = folder_of(function)
    for key, folder in REQUIRED_ROUTES.items():
        assert routes.get(key) == folder, f"{key} should be served by functions/{folder}"


def test_nothing_local_only_is_deployed():
    for name, function in FUNCTIONS.items():
        for event in http_events(function):
            assert not event["Path"].startswith("/_local"), f"{name} exposes {event['Path']}"
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert not re.search(r"localhost|127\.0\.0\.1|0\.0\.0\.0|http://", text)


@pytest.mark.parametrize("route", ["POST /checkout", "POST /billing/portal"])
def test_stripe_session_routes_have_a_stricter_throttle_than_the_default(route):
    # Each call creates a Stripe session: card testing and member-id guessing are capped here too.
    api = RESOURCES["HttpApi"]["Properties"]
    default, strict = api["DefaultRouteSettings"], api["RouteSettings"][route]
    assert strict["ThrottlingRateLimit"] < default["ThrottlingRateLimit"]
    assert strict["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"]


# --- tables -------------------------------------------------------------------------------------------


def _key_schema(entries: list[dict[str, str]]) -> dict[str, str]:
    return {e["AttributeName"]: e["KeyType"] for e in entries}


@pytest.mark.parametrize("table_id", sorted(TABLES_BY_MODEL))
def test_table_matches_its_pynamodb_model(table_id):
    # Given the model's schema as PynamoDB would create the table
    schema = TABLES_BY_MODEL[table_id]._get_schema()
    table = RESOURCES[table_id]["Properties"]
    # Then keys, attribute types and indexes are the same in the template
    assert _key_schema(table["KeySchema"]) == _key_schema(schema["key_schema"])
    as_types = lambda defs: {d["AttributeName"]: d["AttributeType"] for d in defs}  # noqa: E731
    assert as_types(table["AttributeDefinitions"]) == as_types(schema["attribute_definitions"])
    template_indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
    model_indexes = {i["index_name"]: i for i in schema["global_secondary_indexes"]}
    assert set(template_indexes) == set(model_indexes)
    for index_name, model_index in model_indexes.items():
        template_index = template_indexes[index_name]
        assert _key_schema(template_index["KeySchema"]) == _key_schema(model_index["key_schema"]), index_name
        projection = template_index["Projection"]
        assert projection["ProjectionType"] == model_index["projection"]["ProjectionType"], index_name
        assert set(projection.get("NonKeyAttributes", [])) == set(model_index["projection"].get("NonKeyAttributes", []))
    assert not table.get("LocalSecondaryIndexes") and not schema["local_secondary_indexes"]


@pytest.mark.parametrize("table_id", sorted(TABLES_BY_MODEL))
def test_table_ttl_pitr_encryption_and_retention(table_id):
    model = TABLES_BY_MODEL[table_id]
    ttl = [n for n, a in model.get_attributes().items() if type(a).__name__ == "TTLAttribute"]
    table = RESOURCES[table_id]
    properties = table["Properties"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": ttl[0], "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


# --- queues -------------------------------------------------------------------------------------------


def _consumers(queue_id: str) -> list[dict[str, Any]]:
    found = []
    for function in FUNCTIONS.values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS" and get_att(event["Properties"]["Queue"]) == (queue_id, "Arn"):
                found.append((function, event["Properties"]))
    return found


def test_every_queue_has_a_dead_letter_queue_and_an_alarm():
    queues = of_type("AWS::SQS::Queue")
    dlqs = {
        get_att(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])[0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    } | {  # on-failure destinations of asynchronously invoked functions are dead-letter queues too
        get_att(f["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"])[0]
        for f in FUNCTIONS.values()
        if "DestinationConfig" in (f["Properties"].get("EventInvokeConfig") or {})
    }
    alarmed = {
        get_att(d["Value"])[0]
        for alarm in of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
        and alarm["Properties"]["Threshold"] == 0
        for d in alarm["Properties"]["Dimensions"]
        if d["Name"] == "QueueName"
    }
    assert dlqs, "no dead-letter queue at all"
    for queue_id, queue in queues.items():
        properties = queue["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True, queue_id
        if queue_id in dlqs:
            assert properties["MessageRetentionPeriod"] == 14 * 86_400, queue_id
            assert queue_id in alarmed, f"{queue_id} has no alarm on visible messages"
            continue
        redrive = properties.get("RedrivePolicy")
        assert redrive, f"{queue_id} has no dead-letter queue"
        assert redrive["maxReceiveCount"] >= 5
        dlq = get_att(redrive["deadLetterTargetArn"])[0]
        assert queues[dlq]["Properties"].get("FifoQueue", False) == properties.get("FifoQueue", False)


def test_queue_visibility_covers_six_consumer_timeouts_and_reports_partial_failures():
    default_timeout = GLOBAL_FUNCTION["Timeout"]
    for queue_id, queue in of_type("AWS::SQS::Queue").items():
        for function, event in _consumers(queue_id):
            timeout = function["Properties"].get("Timeout", default_timeout)
            assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout, queue_id
            assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"], queue_id


def test_billing_processor_invoked_async_with_retries_and_dead_letter_queue():
    # The intake hands events over by asynchronous invoke: nothing polled while idle, Lambda
    # retries, and what still fails is parked in the one (alarmed, never polled) queue.
    function = RESOURCES["ProcessBillingEventFunction"]["Properties"]
    config_ = function["EventInvokeConfig"]
    assert config_["MaximumRetryAttempts"] == 2
    assert config_["MaximumEventAgeInSeconds"] >= 3600
    assert config_["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    assert not function.get("Events"), "the processor is not fed by a polled queue"
    assert "FifoQueue" not in RESOURCES["DeadLetterQueue"]["Properties"]
    invokes = [s for s in statements(FUNCTIONS["StripeWebhookFunction"]) if s["Action"] == "lambda:InvokeFunction"]
    # Named, not referenced: a GetAtt on the function would tie the webhook's role to it (its name is
    # fixed by FunctionName, so the grant is exactly that one function).
    assert [s["Resource"] for s in invokes] == [
        {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-process-billing-event"}
    ]


def test_event_bodies_bucket_private_encrypted_and_expiring():
    properties = RESOURCES["EventBodiesBucket"]["Properties"]
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and 30 <= rule["ExpirationInDays"] <= 40


# --- logs -------------------------------------------------------------------------------------------


def test_every_function_logs_to_its_own_log_group_with_retention():
    log_groups = of_type("AWS::Logs::LogGroup")
    used = set()
    for name, function in FUNCTIONS.items():
        group_id = ref(function["Properties"].get("LoggingConfig", {}).get("LogGroup"))
        assert group_id in log_groups, f"{name} has no LoggingConfig.LogGroup"
        assert group_id not in used
        used.add(group_id)
        group = log_groups[group_id]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        function_name = function["Properties"]["FunctionName"]["Fn::Sub"]
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{function_name}"}


# --- IAM ---------------------------------------------------------------------------------------------


def _all_policy_statements() -> list[tuple[str, dict[str, Any]]]:
    found = [(name, s) for name, f in FUNCTIONS.items() for s in statements(f)]
    for name, resource in RESOURCES.items():
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            # A role's trust policy (who may assume it) has no Resource: only its permissions count.
            permissions = {k: v for k, v in resource["Properties"].items() if k != "AssumeRolePolicyDocument"}
            for node in walk(permissions):
                if isinstance(node, dict) and "Action" in node and "Effect" in node:
                    found.append((name, node))
    return found


def test_no_managed_policies_and_one_role_per_function():
    # Given every role in the template and every function
    roles = of_type("AWS::IAM::Role")
    used = [role_of(function)[0] for function in FUNCTIONS.values()]
    # Then no role carries a managed policy and no function shares its role
    for name, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], f"{name} carries a managed policy"
        assert "PermissionsBoundary" not in role["Properties"], name
    assert not of_type("AWS::IAM::ManagedPolicy"), "managed policies are not allowed"
    assert len(set(used)) == len(used) == len(FUNCTIONS)
    for name, function in FUNCTIONS.items():
        assert "Policies" not in function["Properties"], f"{name}: SAM Policies would add managed policies"


def test_each_function_writes_only_its_own_log_group():
    for name, function in FUNCTIONS.items():
        group = ref(function["Properties"]["LoggingConfig"]["LogGroup"])
        log_statements = [s for s in statements(function) if any(a.startswith("logs:") for a in as_list(s["Action"]))]
        assert log_statements, f"{name} cannot write its logs"
        for statement in log_statements:
            assert set(as_list(statement["Action"])) == {"logs:CreateLogStream", "logs:PutLogEvents"}, name
            assert [get_att(r) for r in as_list(statement["Resource"])] == [(group, "Arn")], name


def test_index_permissions_name_indexes_the_table_has():
    # "<table>/index/<name>" rather than "/index/*": a function reads the indexes it queries.
    for owner, statement in _all_policy_statements():
        for resource in as_list(statement["Resource"]):
            text = resource.get("Fn::Sub", "") if isinstance(resource, dict) else str(resource)
            if match := re.fullmatch(r"\$\{(\w+)\.Arn\}/index/(.+)", str(text)):
                table, index = match.groups()
                names = {i["IndexName"] for i in RESOURCES[table]["Properties"].get("GlobalSecondaryIndexes", [])}
                assert index in names, f"{owner}: {table} has no index {index!r}"


def test_business_metrics_are_off_unless_the_creator_opts_in():
    # Custom metrics cost $0.30 each a month: Powertools publishes none unless BusinessMetrics=on.
    assert PARAMETERS["BusinessMetrics"]["Default"] == "off"
    assert GLOBAL_ENV["POWERTOOLS_METRICS_DISABLED"] == {"Fn::If": ["PublishBusinessMetrics", "false", "true"]}
    assert TEMPLATE["Conditions"]["PublishBusinessMetrics"] == {"Fn::Equals": [{"Ref": "BusinessMetrics"}, "on"]}


def test_one_alarm_on_function_errors_and_one_per_dead_letter_queue():
    alarms = of_type("AWS::CloudWatch::Alarm")
    errors = [a["Properties"] for a in alarms.values() if a["Properties"]["Namespace"] == "AWS/Lambda"]
    assert [(e["MetricName"], e.get("Dimensions"), e["Threshold"]) for e in errors] == [("Errors", None, 0)]
    assert RESOURCES["DeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    assert "FifoQueue" not in RESOURCES["DeadLetterQueue"]["Properties"]
    redrive = RESOURCES["AccessQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
    assert get_att(redrive) == ("DeadLetterQueue", "Arn")


def test_no_policy_grants_scan_or_wildcards():
    for owner, statement in _all_policy_statements():
        for action in as_list(statement["Action"]):
            assert not fnmatch.fnmatch("dynamodb:scan", action.lower()), f"{owner} may Scan: {action}"
            assert action.lower() not in ("*", "dynamodb:*"), f"{owner} grants {action}"
            assert not action.endswith("*"), f"{owner} grants a wildcard action {action}"
        resources = as_list(statement["Resource"])
        if owner == "TokenKey":  # a key policy's Resource "*" means this key
            continue
        assert "*" not in resources, f"{owner} grants {statement['Action']} on every resource"
        for resource in resources:
            text = str(resource.get("Fn::Sub", "")) if isinstance(resource, dict) else str(resource)
            if re.fullmatch(r"\$\{[A-Za-z]+Bucket\.Arn\}/[a-z-]+/\*", text):
                continue  # S3 objects under one key prefix of our own bucket (object ARNs need a key)
            assert "*" not in text, f"{owner} grants {statement['Action']} on a wildcard: {text}"


def test_parameter_resources_name_one_parameter_each():
    # SSM parameter ARNs are arn:...:parameter/<name>; the names start with "/" (AllowedPattern).
    for owner, statement in _all_policy_statements():
        assert not any(a.startswith("secretsmanager:") for a in as_list(statement["Action"])), owner
        if "ssm:GetParameter" in as_list(statement["Action"]):
            assert as_list(statement["Action"]) == ["ssm:GetParameter"], owner
            for resource in as_list(statement["Resource"]):
                match = re.fullmatch(r"arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}"
                                     r":parameter\$\{(\w+)\}", resource["Fn::Sub"])
                assert match and PARAMETERS[match.group(1)]["AllowedPattern"].startswith("^/"), (owner, resource)


def test_token_key_rotates():
    assert RESOURCES["TokenKey"]["Properties"]["EnableKeyRotation"] is True


# --- build and lint --------------------------------------------------------------------------------------


def test_makefile_has_a_sam_build_target_for_every_function_and_the_layer():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for name, function in FUNCTIONS.items():
        assert function["Metadata"]["BuildMethod"] == "makefile", name
        recipe = re.search(rf"^build-{name}:\n\t(.+)$", makefile, re.M)
        assert recipe, f"Makefile has no build-{name} target (sam build calls it)"
        assert f"functions/{folder_of(function)} " in recipe.group(1) + " ", recipe.group(1)
    layer = RESOURCES["SharedLayer"]["Metadata"]
    assert layer["BuildMethod"] == "makefile" and layer["BuildArchitecture"] == "arm64"
    assert re.search(r"^build-SharedLayer:", makefile, re.M)


def test_cfn_lint_reports_nothing():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    command = [str(cfn_lint)] if cfn_lint.exists() else [sys.executable, "-m", "cfnlint"]
    result = subprocess.run([*command, str(TEMPLATE_PATH)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_yaml_reads_short_form_tags_as_long_form_and_round_trips():
    # Given a template using short-form intrinsics and an unquoted date
    text = """
AWSTemplateFormatVersion: 2010-09-09
Conditions:
  HasEmail: !Not [!Equals [!Ref Email, ""]]
Outputs:
  A: {Value: !GetAtt Queue.Arn}
  B: {Value: !GetAtt [Stack, Outputs.Url]}
  C: {Value: !Sub "https://${Api}.example"}
  D: {Value: !If [HasEmail, !Ref Topic, !Ref AWS::NoValue]}
  E: {Value: !Join ["", [!Select [0, !Split [",", !Ref List]]]]}
"""
    # When it is loaded, dumped and loaded again
    template = loads_template(text)
    # Then every intrinsic is in its JSON form and nothing is lost on the way back
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Conditions"]["HasEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Email"}, ""]}]}
    outputs = {k: v["Value"] for k, v in template["Outputs"].items()}
    assert outputs["A"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert outputs["B"] == {"Fn::GetAtt": ["Stack", "Outputs.Url"]}
    assert outputs["C"] == {"Fn::Sub": "https://${Api}.example"}
    assert outputs["D"] == {"Fn::If": ["HasEmail", {"Ref": "Topic"}, {"Ref": "AWS::NoValue"}]}
    assert outputs["E"] == {"Fn::Join": ["", [{"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "List"}]}]}]]}
    assert loads_template(dump_template(template)) == template
    assert loads_template(dump_template(TEMPLATE)) == TEMPLATE


def test_function_build_copies_the_handler_and_no_tests_or_caches(tmp_path):
    # Given a function folder with a handler, a test, a helper and a bytecode cache
    src = tmp_path / "src"
    (src / "__pycache__").mkdir(parents=True)
    (src / "handler.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    (src / "helpers.py").write_text("X = 1\n")
    (src / "test_handler.py").write_text("def test(): ...\n")
    (src / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"stale")
    # When it is built
    out = build.build_function(src, tmp_path / "out")
    # Then only the code ships (a bytecode cache may only be one compiled for Lambda's Python)
    shipped = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"handler.py", "helpers.py"} <= shipped
    assert not {s for s in shipped if "test" in s or "cpython-311" in s}


def test_deploy_guide_registers_exactly_the_handled_event_types():
    # The webhook endpoint must send what the intake handles, no more (ignored events cost calls).
    from membergate.domain.stripe_events import HANDLED_EVENT_TYPES

    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    registered = re.findall(r"enabled_events\[\]=([a-z_.]+)", guide)
    assert sorted(registered) == sorted(HANDLED_EVENT_TYPES)
