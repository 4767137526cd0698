"""One owner per fact: facts the house builds in one place stay built there (audit of issue 8, 'a house ready')."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "membergate"


def _sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in PACKAGE.rglob("*.py")}


def test_one_owner_notify_work_is_built_only_by_ports_notify_work():
    # Given every module of the package
    # When looking for message work built by hand (the kind named where an AccessWork is made)
    by_hand = [name for name, text in _sources().items()
               if name != "ports.py" and re.search(r"AccessWork\(\s*WorkKind\.NOTIFY|WorkKind\.NOTIFY\s*,", text)]
    # Then there is none: ports.notify_work is the one builder
    assert by_hand == []
