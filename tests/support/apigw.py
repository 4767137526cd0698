"""API Gateway HTTP API (payload 2.0) events, as Lambda receives them."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def http_event(
    method: str,
    path: str,
    *,
    body: str | bytes | dict | None = None,
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
    base64_body: bool = False,
    source_ip: str = "203.0.113.7",
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
    request_id: str = "req-1",
) -> dict[str, Any]:
    parts = urlsplit(path)
    if isinstance(body, dict):
        body = json.dumps(body)
        headers = {"content-type": "application/json", **(headers or {})}
    if isinstance(body, bytes):
        body_text = base64.b64encode(body).decode() if base64_body else body.decode()
    elif body is not None and base64_body:
        body_text = base64.b64encode(body.encode()).decode()
    else:
        body_text = body
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return {
        "version": "2.0",
        "routeKey": route_key or f"{method} {parts.path}",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "cookies": cookies or [],
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "queryStringParameters": query or None,
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": "pytest"},
            "requestId": request_id,
            "routeKey": route_key or f"{method} {parts.path}",
            "stage": "$default",
            "time": "27/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_800_000_000_000,
        },
        "body": body_text,
        "isBase64Encoded": base64_body,
    }


class LambdaContext:
    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000
