"""Where the reference API specs live (beside the repo, never committed into it)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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
        pytest.skip(f"Stripe fixtures not found under {specs_dir()} (set MEMBERGATE_SPECS_DIR)")
    return json.loads(json.dumps(fixtures[resource]))
