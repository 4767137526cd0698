"""Secret values by SSM parameter name (SecureString, standard tier), cached five minutes.

Standard library only: the webhook intake uses it too (no Powertools utilities, no pydantic on
its path). Standard parameters cost nothing a month where a Secrets Manager secret costs $0.40;
the cache lets a rotation reach running instances without a redeploy, at one call per parameter
per instance per five minutes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

CACHE_SECONDS = 300


def read_secret(client_factory: Callable[[str], Any], name: str) -> str:
    """The decrypted value of the SSM parameter ``name`` (``/membergate/...``)."""
    ssm = client_factory("ssm")
    return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def parse_secret_list(value: str) -> list[str]:
    """Several secrets in one value during a rotation: "new,old", a JSON list or {current, previous}."""
    value = value.strip()
    if value.startswith("[") or value.startswith("{"):
        parsed = json.loads(value)
        if isinstance(parsed, dict):
            parsed = [parsed.get("current"), parsed.get("previous")]
        return [str(v).strip() for v in parsed if v]
    return [v.strip() for v in value.split(",") if v.strip()]


class CachedSecrets:
    def __init__(self, client_factory: Callable[[str], Any], clock: Callable[[], float] = time.monotonic):
        self._factory = client_factory
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}

    def get(self, name: str) -> str:
        hit = self._cache.get(name)
        if hit and self._clock() - hit[0] < CACHE_SECONDS:
            return hit[1]
        value = read_secret(self._factory, name)
        self._cache[name] = (self._clock(), value)
        return value
