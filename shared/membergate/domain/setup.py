"""Setup rules for `membergate init` and `doctor`: key modes, the webhook endpoint's drift, samconfig.toml merging."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequestError, MembergateError

# The Stripe key formats Membergate accepts: a secret or restricted key, test or live.
STRIPE_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]{8,247}$")
# A plan's name becomes part of the lookup key `membergate:<plan>` and of metadata values.
PLAN_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
INTERVALS = ("day", "week", "month", "year")
# What Membergate writes on the objects it creates, and finds them by on a re-run.
PLAN_METADATA = "membergate_plan"
LOOKUP_KEY_PREFIX = "membergate:"


class SetupError(MembergateError):
    """A setup step cannot go on; the message says what to do."""

    code = "setup"


def stripe_key_mode(key: str) -> str:
    """``test`` or ``live`` for a well-formed key; a ValidationError saying which key to use otherwise."""
    match = STRIPE_KEY.match(key)
    if match is None:
        raise InvalidRequestError(
            "That is not a Stripe secret or restricted key: copy one that starts with sk_test_, rk_test_, "
            "sk_live_ or rk_live_ from Dashboard → Developers → API keys",
            field="stripe_key",
        )
    return match.group(2)


def plan_key(name: str) -> str:
    """The plan's name as the slug of its lookup key: 'Gold Members' -> 'gold-members'."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-")[:40]
    if not PLAN_KEY.match(slug):
        raise InvalidRequestError("The plan name needs at least one letter or digit (e.g. --plan-name Gold)",
                              field="plan_name")
    return slug


def lookup_key(plan: str) -> str:
    return LOOKUP_KEY_PREFIX + plan


@dataclass(frozen=True)
class EndpointDrift:
    """How a registered webhook endpoint differs from what Membergate needs."""

    missing: tuple[str, ...]
    extra: tuple[str, ...]
    wrong_version: bool
    disabled: bool

    @property
    def events_differ(self) -> bool:
        return bool(self.missing or self.extra)

    @property
    def ok(self) -> bool:
        return not (self.events_differ or self.wrong_version or self.disabled)


def endpoint_drift(
    enabled_events: Iterable[str], api_version: str | None, status: str, handled: Iterable[str], pinned_version: str
) -> EndpointDrift:
    """Exactly the handled events (``*`` counts as none missing and every other one extra) and the pinned version."""
    have, want = set(enabled_events), set(handled)
    missing = () if "*" in have else tuple(sorted(want - have))
    return EndpointDrift(
        missing=missing,
        extra=tuple(sorted(have - want)),
        wrong_version=api_version != pinned_version,
        disabled=status != "enabled",
    )


# --- samconfig.toml ---------------------------------------------------------------------------


def parse_overrides(value: Any) -> dict[str, str]:
    """``parameter_overrides`` as SAM writes it (``'A="x" B=y'`` or a list of ``A=x``) as a dict."""
    items: list[str]
    if isinstance(value, list):
        items = [str(v) for v in value]
    elif isinstance(value, str):
        items = re.findall(r'[^\s=]+=(?:"[^"]*"|\S*)', value)
    else:
        return {}
    found: dict[str, str] = {}
    for item in items:
        key, _, raw = item.partition("=")
        found[key] = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    return found


def merge_samconfig(existing: str, stack_name: str, region: str, overrides: Mapping[str, str]) -> str:
    """``samconfig.toml`` with the deploy settings Membergate needs; every other key the creator has is kept.

    Comments in the old file are not kept (TOML is rewritten from its data)."""
    try:
        data: dict[str, Any] = tomllib.loads(existing) if existing.strip() else {}
    except tomllib.TOMLDecodeError as error:
        raise SetupError(f"samconfig.toml is not valid TOML ({error}): fix or move it away, then re-run") from None
    data.setdefault("version", 0.1)
    env = data.setdefault("default", {})
    deploy = _table(env, "deploy")
    params = _table(deploy, "parameters")
    params["stack_name"] = stack_name
    params["region"] = region
    params.setdefault("capabilities", "CAPABILITY_IAM")
    params.setdefault("resolve_s3", True)
    merged = parse_overrides(params.get("parameter_overrides", ""))
    merged.update(overrides)
    params["parameter_overrides"] = " ".join(f'{k}="{v}"' for k, v in merged.items())
    return dump_toml(data)


def _table(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def dump_toml(data: Mapping[str, Any]) -> str:
    """TOML for nested tables of strings, numbers, booleans and lists of those (what samconfig holds)."""
    lines: list[str] = []
    _dump_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _dump_table(table: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if scalars or not tables:
        if path:
            lines.append("")
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars.items())
    for key, child in tables.items():
        _dump_table(child, [*path, key], lines)


def _key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else _string(key)


def _string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    escaped = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return _string(str(value))
