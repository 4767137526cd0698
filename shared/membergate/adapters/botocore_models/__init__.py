"""Trimmed botocore service models: clients that parse only the operations Membergate calls.

Creating a boto3 client parses the service's whole model; SSM's is about ten times Secrets
Manager's and the intake calls one operation of it (GetParameter) on every cold start. The
models here are copied from the installed botocore by ``python -m infra.botocore_models`` (a
contract test keeps them equal); everything else (endpoints, partitions, rules) still comes from
botocore through the shared loader, whose caches the main session has already filled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TRIMMED_SERVICES = frozenset(p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith("_"))


class _TrimmedLoader:
    """botocore's data loader, except for the service models shipped here."""

    def __init__(self, loader: Any):
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        if type_name == "service-2" and service_name in TRIMMED_SERVICES:
            version = api_version or self._loader.determine_latest_version(service_name, type_name)
            path = HERE / service_name / version / "service-2.json"
            if path.is_file():
                return json.loads(path.read_text(encoding="utf-8"))
        return self._loader.load_service_model(service_name, type_name, api_version)


def trimmed_session(main: Any) -> Any:
    """A botocore session sharing ``main``'s loader but reading the trimmed service models."""
    import botocore.session

    session = botocore.session.get_session()
    session.register_component("data_loader", _TrimmedLoader(main.get_component("data_loader")))
    return session
