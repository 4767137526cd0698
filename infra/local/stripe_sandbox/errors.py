"""The errors the sandbox answers with, in Stripe's ``{"error": {...}}`` shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar


class SandboxError(Exception):
    """An error Stripe would answer with: HTTP status plus the ``{"error": {...}}`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "code": self.code, "message": self.message}
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        return {"error": error}


_T = TypeVar("_T")


def lookup(store: Mapping[str, _T], kind: str, object_id: str) -> _T:
    """``store[object_id]``, or the 404 Stripe answers for an unknown id."""
    found = store.get(object_id)
    if found is None:
        raise no_such(kind, object_id)
    return found


def missing(param: str) -> SandboxError:
    return SandboxError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def no_such(kind: str, object_id: str) -> SandboxError:
    return SandboxError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")
