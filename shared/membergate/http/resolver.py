"""A Powertools HTTP resolver with Membergate's error contract wired in once."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from ..domain.errors import MembergateError
from .errors import error_body, error_payload


DISCORD_ID_FIELDS = frozenset({"guild_id", "role_id"})


def iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, "application/json", json.dumps(body), headers or {})


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    return json_response(status, error_body(code, message, field))


def _field_name(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


def make_resolver(*, enable_validation: bool = False) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=enable_validation)

    @app.exception_handler(MembergateError)
    def _typed(error: MembergateError) -> Response:
        status, headers, body = error_payload(error)
        return Response(status, "application/json", body, headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        problems = error.errors()
        first = problems[0] if problems else {"loc": ("body",), "msg": "invalid body"}
        field = _field_name(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            return error_response(400, "invalid_request", "the body is not valid JSON", "body")
        message = f"{field}: {first.get('msg', 'invalid')}"
        if first.get("type") == "string_pattern_mismatch" and field.split(".")[-1] in DISCORD_ID_FIELDS:
            message = (
                f"{field}: must be a Discord id, digits only (e.g. 123456789012345678); in Discord, turn on "
                "Developer Mode (User Settings → Advanced), then right-click the server or role → Copy ID"
            )
        return error_response(400, "invalid_request", message, field)

    @app.not_found
    def _missing(_: Exception) -> Response:
        return error_response(404, "not_found", "no such route; see /admin/openapi.json for the admin API")

    return app
