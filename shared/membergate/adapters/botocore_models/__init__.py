"""Trimmed botocore data: one lean session whose clients parse only what Membergate uses.

Creating a boto3 client parses the service's whole model; SSM's is about ten times Secrets
Manager's and the intake calls one operation of it (GetParameter) on every cold start. The
session's first client also parses botocore's endpoints.json (1.2 MB, every service of every
partition) and, for each service, walks botocore's ~400 service folders to check it exists. The
models here hold only the operations Membergate calls and endpoints.json only the services it
builds clients for; both are copied from the installed botocore by ``python -m
infra.botocore_models`` and a contract test keeps them equal, so endpoints, signatures and
retries are botocore's own. Everything else (partitions, rule sets, defaults) still comes from
botocore through its loader.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TRIMMED_SERVICES = frozenset(p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith("_"))
ENDPOINTS_PATH = str(HERE / "endpoints.json")
# Every service Membergate builds a client for through bootstrap.aws_client, with the endpoint
# prefix endpoints.json files it under (SES v2 is "email"). endpoints.json here holds these only;
# a client of any other service comes from a stock session.
SERVICES = {"dynamodb": "dynamodb", "lambda": "lambda", "ssm": "ssm", "s3": "s3", "sqs": "sqs", "kms": "kms",
            "sesv2": "email"}


@lru_cache(maxsize=None)
def _shipped_version(service: str) -> str:
    return max(p.name for p in (HERE / service).iterdir() if p.is_dir())


class _TrimmedLoader:
    """botocore's data loader, except for the service models and endpoints shipped here."""

    def __init__(self, loader: Any):
        self._loader = loader
        self._parsed: dict[str, Any] = {}  # one parse per file, as botocore's loader caches its own

    def _read(self, path: str) -> Any:
        if path not in self._parsed:
            with open(path, encoding="utf-8") as f:
                self._parsed[path] = json.load(f)
        return self._parsed[path]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        if service_name in TRIMMED_SERVICES:
            version = api_version or _shipped_version(service_name)
            if type_name == "service-2":
                path = HERE / service_name / version / "service-2.json"
                if path.is_file():
                    return self._read(str(path))
            elif type_name == "endpoint-rule-set-1":
                # botocore's own file, without first listing every service folder to check that
                # this one exists (no extras exist for rule sets: the contract test compares)
                return self._loader.load_data(f"{service_name}/{version}/{type_name}")
        return self._loader.load_service_model(service_name, type_name, api_version)

    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        if name == "endpoints":
            return self._read(ENDPOINTS_PATH), ENDPOINTS_PATH
        return self._loader.load_data_with_path(name)  # type: ignore[no-any-return]

    def load_data(self, name: str) -> Any:
        return self.load_data_with_path(name)[0]

    def is_builtin_path(self, path: str) -> bool:
        # botocore's data, trimmed: a custom endpoints file would make every client pass the
        # legacy endpoint to the rule set as a custom endpoint, which botocore's data does not.
        return path == ENDPOINTS_PATH or bool(self._loader.is_builtin_path(path))


def lean_session() -> Any:
    """A botocore session reading the trimmed models and endpoints (clients of SERVICES only)."""
    import botocore.session
    from botocore.credentials import CredentialResolver, EnvProvider

    session = botocore.session.get_session()
    session.register_component("data_loader", _TrimmedLoader(session.get_component("data_loader")))
    env = EnvProvider()
    if env.load() is not None:
        # Lambda sets the role's credentials in the environment, the first provider of botocore's
        # chain, which then never asks the others; building them (the instance metadata fetcher's
        # HTTP session, the profile providers) is skipped, not the answer.
        session.register_component("credential_provider", CredentialResolver([env]))
    return session
