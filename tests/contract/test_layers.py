"""Dependencies point inward: the domain is pure, services use ports, handlers are glue."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "membergate"
STDLIB = set(sys.stdlib_module_names)
INFRASTRUCTURE = {"boto3", "botocore", "pynamodb", "stripe", "requests", "httpx", "urllib3", "aws_lambda_powertools", "pydantic"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                rel = ".".join(base.relative_to(PACKAGE.parent).parts)
                found.add(f"{rel}.{node.module}" if node.module else rel)
            elif node.module:
                found.add(node.module)
    return found


def files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", files("domain"), ids=lambda p: p.name)
def test_domain_imports_only_stdlib_and_itself(path):
    for module in imports_of(path):
        top = module.split(".")[0]
        assert top in STDLIB or module.startswith("membergate.domain"), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", files("services"), ids=lambda p: p.name)
def test_services_depend_on_ports_not_adapters(path):
    for module in imports_of(path):
        top = module.split(".")[0]
        assert top not in INFRASTRUCTURE, f"{path.name} imports {module}"
        assert not module.startswith(("membergate.adapters", "membergate.bootstrap", "membergate.http")), (
            f"{path.name} imports {module}"
        )


@pytest.mark.parametrize("folder", ["domain", "services"])
def test_domain_and_services_never_read_the_clock(folder):
    for path in files(folder):
        text = path.read_text()
        for forbidden in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
            assert forbidden not in text, f"{path.name} reads the clock ({forbidden}); pass `now` in"


def test_only_bootstrap_builds_adapters():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "bootstrap.py" or "adapters" in path.parts:
            continue
        for module in imports_of(path):
            assert not module.startswith("membergate.adapters"), f"{path.relative_to(PACKAGE)} imports {module}"


def test_only_config_reads_the_environment():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "config.py":
            continue
        text = path.read_text()
        assert "os.environ" not in text and "os.getenv" not in text, f"{path.relative_to(PACKAGE)} reads the environment"


@pytest.mark.parametrize("handler", sorted((REPO / "functions").glob("*/handler.py")), ids=lambda p: p.parent.name)
def test_handlers_are_glue(handler):
    for module in imports_of(handler):
        assert module.split(".")[0] not in {"boto3", "botocore", "pynamodb", "stripe", "requests", "httpx", "urllib3"}, (
            f"{handler.parent.name} imports {module}"
        )
    assert len(handler.read_text().splitlines()) <= 60, f"{handler.parent.name}/handler.py is more than glue"


def test_webhook_intake_loads_no_heavy_library():
    # Given a fresh interpreter, when the intake handler is imported as Lambda would
    code = (
        "import sys; sys.path[:0] = ['functions/stripe_webhook', 'shared']; import handler; "
        "heavy = [m for m in ('stripe', 'pydantic_settings', 'aws_xray_sdk', 'pynamodb', 'pydantic') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    # Then none of the heavy libraries is loaded on the webhook path
    assert out.stdout.strip() == ""
