"""Where the reference API specs live (beside the repo, never committed into it)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def missing_spec(message: str) -> None:
    """Skip the calling test when a spec is absent, saying where it looked; under CI, fail instead.

    CI runs with the specs beside the repo: a missing one there means the contract tests would
    silently check nothing, so the run must go red."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI needs the specs (CI=true): a contract test that checks nothing is not a pass")
    pytest.skip(message)


def specs_dir() -> Path:
    return Path(os.environ.get("MEMBERGATE_SPECS_DIR") or REPO.parent / "shared" / "specs")


@lru_cache(maxsize=None)
def _stripe_fixtures() -> dict | None:
    path = specs_dir() / "stripe" / "fixtures3.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["resources"]


def stripe_fixture(resource: str) -> dict:
    """A deep copy of Stripe's own example object; skips the test when the specs are absent."""
    fixtures = _stripe_fixtures()
    if fixtures is None:
        missing_spec(f"Stripe fixtures not found under {specs_dir()} (set MEMBERGATE_SPECS_DIR)")
    return json.loads(json.dumps(fixtures[resource]))


@lru_cache(maxsize=None)
def _stripe_openapi(path: Path) -> dict | None:
    if not path.exists():
        return None
    import yaml

    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def stripe_openapi(why: str) -> dict:
    """Stripe's OpenAPI spec (spec3.yaml), parsed once per test process: read-only, callers must not change it.

    The 4 MB YAML takes 2-7 s to parse, and four test modules check requests against it; each parsed
    it itself. ``why`` says what cannot be checked when it is absent (skip, or fail under CI)."""
    path = specs_dir() / "stripe" / "spec3.yaml"
    spec = _stripe_openapi(path)
    if spec is None:
        missing_spec(f"{path} is missing: {why}")
    assert spec is not None
    return spec
