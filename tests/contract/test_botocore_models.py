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
