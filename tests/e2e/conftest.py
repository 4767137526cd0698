"""Starts the local stack (`make dev`'s process) once for the e2e tests and drives it over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.client import Client
from infra.local.demo import free_port

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_e2e_secret"
ADMIN_TOKEN = "e2e-admin-token"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("stack") / "stack.log"
    env = {**os.environ, "PORT": str(port), "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "ADMIN_TOKEN": ADMIN_TOKEN,
           "MEMBERGATE_QUIET": "1",
           # Every e2e member checks out from 127.0.0.1: the per-address limit (20 a window) is for
           # strangers, not for one test session buying dozens of memberships.
           # StripeTax on: only plans with checkout.automatic_tax ask Checkout for it. EmailMessages always:
           # members get each message by email too (tests/e2e/test_billing_gaps_stack.py shows both).
           "MEMBERGATE_PARAMETER_OVERRIDES": "CheckoutRateLimit=1000 StripeTax=on EmailMessages=always"}
    for leaked in ("AWS_ENDPOINT_URL", "STRIPE_API_KEY", "DISCORD_BOT_TOKEN", "STRIPE_API_BASE", "DISCORD_API_BASE",
                   "TELEGRAM_API_BASE", "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "WHATSAPP_API_BASE",
                   "WHATSAPP_GATEWAY_URL", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_BUSINESS_NUMBER"):
        env.pop(leaked, None)
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "infra.local.stack"], cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    client = Client(f"http://127.0.0.1:{port}", ADMIN_TOKEN)
    try:
        client.wait_healthy(timeout=120)
        yield client
    except TimeoutError:
        pytest.fail(f"the local stack did not start; its log:\n{log_path.read_text()[-3000:]}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
