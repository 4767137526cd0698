"""Writes the trimmed botocore data the layer ships (`python -m infra.botocore_models`).

botocore parses a service's whole model when a client is created: SSM's is 144 KB gzipped (about
10x Secrets Manager's), which alone costs the webhook intake a noticeable share of its cold start
for the one operation it calls. The layer ships only the operations Membergate calls, with the
shapes they reference, copied from the installed botocore (a contract test checks they match).
Likewise endpoints.json (1.2 MB, parsed by a session's first client) keeps every partition but only
the services Membergate builds clients for (adapters/botocore_models.SERVICES).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "shared" / "membergate" / "adapters" / "botocore_models"
# service -> operations the functions call on it through bootstrap.aws_client (every other
# DynamoDB access goes through PynamoDB's own client, which keeps botocore's full model)
TRIMMED = {"ssm": ("GetParameter",), "dynamodb": ("PutItem",), "lambda": ("Invoke",)}


def _shape_names(shapes: dict[str, Any], name: str, found: set[str]) -> None:
    if name in found:
        return
    found.add(name)
    shape = shapes[name]
    refs = [m["shape"] for m in shape.get("members", {}).values()]
    refs += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
    for ref in refs:
        _shape_names(shapes, ref, found)


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


def trimmed_model(service: str, operations: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """(api version, the service model with only ``operations`` and their shapes)."""
    import botocore.loaders

    loader = botocore.loaders.Loader()
    version = loader.determine_latest_version(service, "service-2")
    full = loader.load_service_model(service, "service-2", version)
    shapes: set[str] = set()
    for op in operations:
        spec = full["operations"][op]
        for ref in [spec.get("input"), spec.get("output"), *spec.get("errors", [])]:
            if ref:
                _shape_names(full["shapes"], ref["shape"], shapes)
    model = {
        "version": full.get("version", "2.0"),
        "metadata": full["metadata"],
        "operations": {op: full["operations"][op] for op in operations},
        "shapes": {name: full["shapes"][name] for name in sorted(shapes)},
    }
    return version, _strip_docs(model)


def trimmed_endpoints(services: dict[str, str]) -> dict[str, Any]:
    """botocore's endpoints.json with, in each partition, only the entries of ``services``' endpoint prefixes."""
    import botocore.loaders

    full = botocore.loaders.Loader().load_data("endpoints")
    keep = set(services.values())
    partitions = [{**p, "services": {k: v for k, v in p["services"].items() if k in keep}} for p in full["partitions"]]
    return {**full, "partitions": partitions}


ENDPOINTS_PATH = MODELS_DIR / "endpoints.json"


def model_path(service: str, version: str) -> Path:
    return MODELS_DIR / service / version / "service-2.json"


def stale() -> list[str]:
    """The shipped files that differ from what the botocore this interpreter imports would write."""
    from membergate.adapters.botocore_models import SERVICES

    found = []
    for service, operations in TRIMMED.items():
        version, model = trimmed_model(service, operations)
        path = model_path(service, version)
        if not path.is_file() or json.loads(path.read_text(encoding="utf-8")) != model:
            found.append(str(path.relative_to(ROOT)))
    if json.loads(ENDPOINTS_PATH.read_text(encoding="utf-8")) != trimmed_endpoints(SERVICES):
        found.append(str(ENDPOINTS_PATH.relative_to(ROOT)))
    return found


def main(argv: list[str] | None = None) -> int:
    if "--check" in (sys.argv[1:] if argv is None else argv):  # the build runs it against the layer's botocore
        import botocore

        differing = stale()
        print(f"botocore {botocore.__version__}: " + (", ".join(differing) + " differ" if differing else "trimmed data up to date"))
        return 1 if differing else 0
    for service, operations in TRIMMED.items():
        version, model = trimmed_model(service, operations)
        path = model_path(service, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(model, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes, {', '.join(operations)})")
    from membergate.adapters.botocore_models import SERVICES

    endpoints = trimmed_endpoints(SERVICES)
    ENDPOINTS_PATH.write_text(json.dumps(endpoints, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {ENDPOINTS_PATH.relative_to(ROOT)} ({ENDPOINTS_PATH.stat().st_size:,} bytes, {', '.join(SERVICES)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
