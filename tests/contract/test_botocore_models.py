"""The trimmed botocore models the layer ships match the installed botocore, and clients use them."""

from __future__ import annotations

import json

import pytest

from infra import botocore_models
from membergate import bootstrap

pytestmark = pytest.mark.contract


@pytest.mark.parametrize("service", sorted(botocore_models.TRIMMED))
def test_trimmed_model_equals_the_installed_botocore_operations(service):
    # Given the installed botocore's model, trimmed to the operations Membergate calls
    version, expected = botocore_models.trimmed_model(service, botocore_models.TRIMMED[service])
    # When reading the shipped file
    shipped = json.loads(botocore_models.model_path(service, version).read_text(encoding="utf-8"))
    # Then they are the same (regenerate with `python -m infra.botocore_models` after a botocore upgrade)
    assert shipped == expected


def test_ssm_client_parses_only_the_trimmed_model_and_reads_a_parameter():
    from tests.support.aws import aws_stack, put_secret

    with aws_stack():
        # Given a SecureString parameter
        put_secret("/membergate/bench", "value")
        # When the functions' SSM client reads it
        client = bootstrap.aws_client("ssm", "us-east-1")
        value = client.get_parameter(Name="/membergate/bench", WithDecryption=True)["Parameter"]["Value"]
        # Then it works with a model of only the operations Membergate calls
        assert value == "value"
        assert client.meta.service_model.operation_names == ["GetParameter"]
        # And other clients keep botocore's full models
        assert "SendMessage" in bootstrap.aws_client("sqs", "us-east-1").meta.service_model.operation_names


def test_trimmed_endpoints_equal_the_installed_botocore_for_membergate_services():
    # Given botocore's endpoints.json, each partition keeping only the services Membergate uses
    from membergate.adapters.botocore_models import SERVICES

    expected = botocore_models.trimmed_endpoints(SERVICES)
    # When reading the shipped file
    shipped = json.loads(botocore_models.ENDPOINTS_PATH.read_text(encoding="utf-8"))
    # Then they are the same, every partition included (regenerate with `python -m infra.botocore_models`)
    assert shipped == expected
    assert {p["partition"] for p in shipped["partitions"]} >= {"aws", "aws-cn", "aws-us-gov"}
    assert all(set(p["services"]) <= set(SERVICES.values()) for p in shipped["partitions"])


@pytest.mark.parametrize("service", sorted(botocore_models.TRIMMED))
def test_lean_loader_reads_botocore_rule_sets_unchanged(service):
    import botocore.loaders

    from membergate.adapters.botocore_models import _TrimmedLoader

    # Given botocore's loader and the lean one over it
    stock = botocore.loaders.Loader()
    version, _ = botocore_models.trimmed_model(service, botocore_models.TRIMMED[service])
    # When both load the service's endpoint rule set, with and without its version
    lean = _TrimmedLoader(botocore.loaders.Loader())
    # Then the lean loader hands back botocore's own (no extras skipped)
    expected = stock.load_service_model(service, "endpoint-rule-set-1", version)
    assert lean.load_service_model(service, "endpoint-rule-set-1", version) == expected
    assert lean.load_service_model(service, "endpoint-rule-set-1") == expected


class _Sent(Exception):
    """Stops a request once botocore has built and signed it: nothing leaves the process."""


# One call per operation Membergate makes on each service the lean session serves.
_CALLS = {
    "dynamodb": ("put_item", {"TableName": "ledger", "Item": {"pk": {"S": "x"}},
                               "ConditionExpression": "attribute_not_exists(pk)"}),
    "lambda": ("invoke", {"FunctionName": "processor", "InvocationType": "Event", "Payload": b"{}"}),
    "ssm": ("get_parameter", {"Name": "/membergate/stripe-webhook-secrets", "WithDecryption": True}),
    "s3": ("put_object", {"Bucket": "bodies", "Key": "events/evt_1.json", "Body": b"{}"}),
    "sqs": ("send_message", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq", "MessageBody": "x"}),
    "kms": ("encrypt", {"KeyId": "alias/membergate", "Plaintext": b"x"}),
    "sesv2": ("send_email", {"FromEmailAddress": "a@example.com", "Destination": {"ToAddresses": ["b@example.com"]},
                             "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}}}),
}
# Random or time-dependent per request; the signature's credential scope (region, service) is kept.
_VARYING = {"x-amz-date", "amz-sdk-invocation-id", "amz-sdk-request"}


def _sent_request(client, operation: str, params: dict) -> dict:
    seen: dict = {}

    def capture(request, **kwargs):
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _VARYING}
        auth = headers.pop("authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        credential = auth.split("Credential=")[1].split(",")[0].split("/")
        signed_headers = auth.split("SignedHeaders=")[1].split(",")[0]
        body = request.body.read() if hasattr(request.body, "read") else request.body  # S3 streams it (aws-chunked)
        seen.update(method=request.method, url=request.url, body=body, headers=headers,
                    scope=credential[2:], signed_headers=signed_headers)
        raise _Sent

    client.meta.events.register_first("before-send", capture)
    with pytest.raises(_Sent):
        getattr(client, operation)(**params)
    return seen


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "cn-north-1", "us-gov-west-1"])
@pytest.mark.parametrize("service", sorted(_CALLS))
def test_lean_client_sends_the_request_a_stock_client_sends(service, region, monkeypatch):
    import boto3

    from membergate.adapters.botocore_models import SERVICES, lean_session

    assert set(_CALLS) == set(SERVICES)  # every service the lean session serves is compared
    for name in ("AWS_ENDPOINT_URL", f"AWS_ENDPOINT_URL_{service.upper()}", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    # Given a client from a stock boto3 session and one from the lean session
    stock = boto3.Session().client(service, region_name=region)
    lean = boto3.Session(botocore_session=lean_session()).client(service, region_name=region)
    operation, params = _CALLS[service]
    # When each builds and signs the same call
    expected, got = _sent_request(stock, operation, params), _sent_request(lean, operation, params)
    # Then the requests are the same: URL, method, body, headers, signing region and service
    assert got == expected
    # And so are the retry policy and the endpoint the client was built with
    assert lean.meta.config.retries == stock.meta.config.retries
    assert lean.meta.endpoint_url == stock.meta.endpoint_url
    assert lean.meta.partition == stock.meta.partition
    # And the rule set gets the same built-ins (no custom SDK::Endpoint from a non-builtin endpoints file)
    def builtins(client):  # the account id is a deferred lookup (a function per client): compare its value
        return {k: v() if callable(v) else v for k, v in client._ruleset_resolver._builtins.items()}

    assert builtins(lean) == builtins(stock)


def test_lean_session_with_environment_credentials_reads_only_them(monkeypatch):
    import botocore.session

    from membergate.adapters.botocore_models import lean_session

    # Given the role's credentials in the environment, as Lambda sets them
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    # When the lean session and a stock one resolve credentials
    lean, stock = lean_session(), botocore.session.get_session()
    # Then they are the same ones, found by the environment provider alone
    assert lean.get_credentials().get_frozen_credentials() == stock.get_credentials().get_frozen_credentials()
    assert lean.get_credentials().method == stock.get_credentials().method == "env"
    assert [p.METHOD for p in lean.get_component("credential_provider").providers] == ["env"]


def test_lean_session_without_environment_credentials_keeps_botocore_chain(monkeypatch):
    import botocore.session

    from membergate.adapters.botocore_models import lean_session

    # Given no credentials in the environment
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # When the lean session builds its credential chain
    providers = [p.METHOD for p in lean_session().get_component("credential_provider").providers]
    # Then it is botocore's whole chain (profiles, container, instance metadata...)
    assert providers == [p.METHOD for p in botocore.session.get_session().get_component("credential_provider").providers]
    assert len(providers) > 5
