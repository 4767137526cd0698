"""One mapping from typed errors to HTTP answers; every error body is {"error": {"code", "message"}}."""

from __future__ import annotations

import json
from typing import Any

from ..domain.errors import (
    ConflictError,
    ForbiddenError,
    IdentityRequiredError,
    InvalidRequestError,
    MalformedEventError,
    MembergateError,
    NotFoundError,
    PermanentError,
    RetryableError,
    SignatureError,
    ThrottledError,
    UnauthorizedError,
)

class PayloadTooLargeError(MembergateError):
    code = "payload_too_large"

    def __init__(self, limit: int):
        super().__init__(f"the body is larger than {limit} bytes; send only the documented fields")
        self.limit = limit


class UnsupportedMediaTypeError(MembergateError):
    code = "unsupported_media_type"


class MethodNotAllowedError(MembergateError):
    code = "method_not_allowed"

    def __init__(self, message: str, allowed: list[str]):
        super().__init__(message)
        self.allowed = allowed


STATUS_BY_ERROR: list[tuple[type[MembergateError], int]] = [
    (InvalidRequestError, 400),
    (SignatureError, 400),
    (MalformedEventError, 400),
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (MethodNotAllowedError, 405),
    (PayloadTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (IdentityRequiredError, 409),
    (ConflictError, 409),
    (ThrottledError, 429),
    (RetryableError, 503),
    (PermanentError, 502),
]


def status_for(error: MembergateError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return {"error": body}


def error_payload(error: MembergateError) -> tuple[int, dict[str, str], str]:
    """(status, headers, JSON body) for a typed error."""
    headers = {"Content-Type": "application/json"}
    if isinstance(error, ThrottledError):
        headers["Retry-After"] = str(max(error.retry_after, 1))
    if isinstance(error, RetryableError) and error.retry_after:
        headers["Retry-After"] = str(int(error.retry_after) + 1)
    if isinstance(error, MethodNotAllowedError):
        headers["Allow"] = ", ".join(error.allowed)
    field = getattr(error, "field", None)
    code = error.reason if isinstance(error, PermanentError) else error.code
    return status_for(error), headers, json.dumps(error_body(code, error.message, field))
