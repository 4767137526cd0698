"""schemathesis, with all its checks, against the admin API of the running local stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Bounded so `make test` stays well under 10 minutes on 2 cores (about 1-2 minutes here); a fixed
# seed makes a failure reproducible. SCHEMATHESIS_EXAMPLES / SCHEMATHESIS_SEED explore further.
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "12")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261130")


def test_admin_api_schemathesis_finds_nothing(stack, tmp_path):
    # Given the running stack serving its OpenAPI document
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(CONFIG),
        "run", f"{stack.base_url}/admin/openapi.json",
        "--checks", "all",
        "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
        "--max-examples", MAX_EXAMPLES,
        "--seed", SEED,
        "--generation-database", "none",
        "--request-timeout", "20",
        "--workers", "1",
        "--no-color",
    ]
    # When schemathesis explores every operation (examples, coverage, fuzzing, stateful)
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=480)
    # Then it finds no server error, undocumented status or body, valid request rejected, or
    # request answered without the token
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]
