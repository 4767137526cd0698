"""A Powertools HTTP resolver with Membergate's error contract and edge checks wired in once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from ..domain.errors import MembergateError
from .errors import MethodNotAllowedError, error_body, error_payload
from .pages import SECURITY_HEADERS


DISCORD_ID_FIELDS = frozenset({"guild_id", "role_id"})

# A gate sees the raw Lambda event before any routing or validation and raises a typed error to
# refuse it (authentication, body size, encoding): so no route, validator or 404 answers first.
Gate = Callable[[Mapping[str, Any]], None]


def iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, "application/json", json.dumps(body), headers or {})


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    return json_response(status, error_body(code, message, field))


def error_result(error: MembergateError) -> dict[str, Any]:
    """A typed error as the Lambda proxy result API Gateway expects (for answers given before routing)."""
    status, headers, body = error_payload(error)
    return {"statusCode": status, "headers": with_security_headers(headers), "body": body, "isBase64Encoded": False}


def with_security_headers(headers: dict[str, str]) -> dict[str, str]:
    present = {k.lower() for k in headers}
    return {**headers, **{k: v for k, v in SECURITY_HEADERS.items() if k.lower() not in present}}


# A body that is one of several models chosen by its "platform" names the model first in an
# error's location; the caller only knows the field.
_PLATFORM_TAGS = frozenset({"discord", "telegram", "whatsapp"})


def _field_name(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    if len(parts) > 1 and parts[0] in _PLATFORM_TAGS:
        parts = parts[1:]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


class EdgeResolver(APIGatewayHttpResolver):
    """Runs the gates first, then routes; every answer carries the security headers."""

    def __init__(self, *, gates: Iterable[Gate] = (), enable_validation: bool = False):
        super().__init__(enable_validation=enable_validation)
        self._gates = list(gates)

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        try:
            for gate in self._gates:
                gate(event)
        except MembergateError as error:
            return error_result(error)
        result = super().resolve(event, context)
        result["headers"] = with_security_headers(result.get("headers") or {})
        return result

    def allowed_methods(self, path: str) -> list[str]:
        # Powertools keeps its routes in these two lists; a path known under another method is a 405.
        routes = self._static_routes + self._dynamic_routes
        return sorted({r.method for r in routes if r.rule.match(path)})


def make_resolver(
    *, enable_validation: bool = False, gates: Iterable[Gate] = (), not_found_message: str = "no such route"
) -> EdgeResolver:
    app = EdgeResolver(gates=gates, enable_validation=enable_validation)

    @app.exception_handler(MembergateError)
    def _typed(error: MembergateError) -> Response:
        status, headers, body = error_payload(error)
        return Response(status, "application/json", body, headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        problems = error.errors()
        first = problems[0] if problems else {"loc": ("body",), "msg": "invalid body"}
        field = _field_name(tuple(first.get("loc", ())))
        if first.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            field = str((first.get("ctx") or {}).get("discriminator", "platform")).strip("'\"")
        if first.get("type") == "json_invalid":
            return error_response(400, "invalid_request", "the body is not valid JSON", "body")
        # A check of our own (a field validator raising ValueError) reads as its sentence, without pydantic's
        # "Value error, " prefix.
        message = f"{field}: {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}"
        if first.get("type") == "string_pattern_mismatch" and field.split(".")[-1] in DISCORD_ID_FIELDS:
            message = (
                f"{field}: must be a Discord id, digits only (e.g. 123456789012345678); in Discord, turn on "
                "Developer Mode (User Settings → Advanced), then right-click the server or role → Copy ID"
            )
        return error_response(400, "invalid_request", message, field)

    @app.not_found
    def _missing(_: Exception) -> Response:
        event = app.current_event
        allowed = app.allowed_methods(event.path)
        if allowed:
            status, headers, body = error_payload(
                MethodNotAllowedError(f"{event.http_method} is not allowed here; use {' or '.join(allowed)}", allowed)
            )
            return Response(status, "application/json", body, headers)
        return error_response(404, "not_found", not_found_message)

    return app
