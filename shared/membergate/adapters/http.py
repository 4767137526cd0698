"""A minimal HTTP transport port and its urllib implementation, so adapters can be tested with fakes."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain.errors import RetryableError


class Headers(Mapping[str, str]):
    """Read-only header mapping with case-insensitive lookup (HTTP field names are; RFC 9110 §5.1)."""

    def __init__(self, items: Mapping[str, str] | None = None):
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in (items or {}).items():
            self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self._items.values())!r})"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON (e.g. a proxy's HTML page)."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HttpTransport(Protocol):
    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> HttpResponse:
        """Send one request. Any status is returned; only network failures raise RetryableError."""


class UrllibTransport:
    """HttpTransport over the standard library: no third-party client in the Lambda package."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> HttpResponse:
        req = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpResponse(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as exc:
            # A non-2xx answer is still an answer: the caller decides what it means.
            with exc:
                return HttpResponse(exc.code, dict(exc.headers.items()) if exc.headers else {}, exc.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            # The query string is left out: it could carry an OAuth code or state.
            raise RetryableError(f"network error calling {method} {_without_query(url)}: {_describe(exc)}") from None


def _without_query(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return type(exc).__name__ + (f" ({reason})" if reason else "")
