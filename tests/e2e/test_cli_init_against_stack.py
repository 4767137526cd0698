"""`membergate init` and `doctor --stripe-key` against the running local stack's Stripe sandbox, over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from tests.support.setup_doubles import FAKE_LIVE_KEY
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from infra.local.demo import free_port
from membergate.cli import app
from membergate.services.setup import PARAMETER_NAMES
from tests.e2e.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

runner = CliRunner()
KEY = "sk_test_e2einit0123456789"


@pytest.fixture
def aws(monkeypatch) -> Iterator[str]:
    """A Parameter Store of the test's own (the stack's moto server is private to its process)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    try:
        yield endpoint
    finally:
        server.stop()


def test_cli_init_twice_against_the_stack_then_doctor_finds_it_all(stack, aws, tmp_path, monkeypatch) -> None:
    # Given the local stack's Stripe sandbox and a Parameter Store
    monkeypatch.chdir(tmp_path)
    sandbox = f"{stack.base_url}/_local/stripe"
    args = ["--url", stack.base_url, "--token", ADMIN_TOKEN, "--json", "init", "--yes", "--stripe-key", KEY,
            "--plan-name", "E2E Gold", "--amount", "1200", "--currency", "eur", "--interval", "month",
            "--stripe-api-base", sandbox, "--region", "us-east-1"]
    # When the creator runs init twice and then doctor with the key
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    doctor = runner.invoke(app, ["--url", stack.base_url, "--token", ADMIN_TOKEN, "--json", "doctor",
                                 "--stripe-key", KEY, "--stripe-api-base", sandbox])
    # Then the first run creates, the second finds, and the stack's Stripe holds one endpoint for the stack
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "created" not in {s["outcome"] for s in json.loads(second.output)["steps"]}
    endpoints = stack.get("/_local/stripe/v1/webhook_endpoints",
                          headers={"Authorization": f"Bearer {KEY}"}).json()["data"]
    assert [e["url"] for e in endpoints if e["url"] == f"{stack.base_url}/webhooks/stripe"] == [
        f"{stack.base_url}/webhooks/stripe"]
    # ... the key is in the Parameter Store, never in the output
    ssm = boto3.client("ssm", region_name="us-east-1")
    stored = ssm.get_parameter(Name=PARAMETER_NAMES["StripeApiKeySecretName"], WithDecryption=True)
    assert stored["Parameter"]["Value"] == KEY and KEY not in first.output + second.output
    # ... and doctor's Stripe checks pass
    checks = json.loads(doctor.output)["checks"]
    stripe_checks = [c for c in checks if "Stripe" in c["check"] or "webhook endpoint" in c["check"]
                     or "portal" in c["check"]]
    assert len(stripe_checks) >= 7 and all(c["ok"] for c in stripe_checks), stripe_checks


def test_cli_doctor_against_the_stack_with_a_bad_key_names_the_fix(stack) -> None:
    # Given / When doctor runs with a key the sandbox refuses (a live key against a test stack)
    result = runner.invoke(app, ["--url", stack.base_url, "--token", ADMIN_TOKEN, "--json", "doctor",
                                 "--stripe-key", FAKE_LIVE_KEY, "--stripe-mode", "test",
                                 "--stripe-api-base", f"{stack.base_url}/_local/stripe"])
    # Then it exits 1 with the mode problem and Stripe's refusal, no traceback
    checks = {c["check"]: c for c in json.loads(result.output)["checks"]}
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not checks["Stripe answers with this key"]["ok"]
    assert "Stripe refused the key" in checks["Stripe answers with this key"]["fix"]
