"""The real stripe SDK talking to the sandbox in process: an HTTP client that calls a WSGI app."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import stripe
from stripe._http_client import HTTPClient
from werkzeug.test import Client


class WsgiStripeHttpClient(HTTPClient):
    """A stripe-python HTTP client that hands requests to a WSGI app instead of the network.

    ``base_url`` is what the StripeClient is given as its API base (``base_addresses={"api": ...}``):
    the prefix under which ``app`` (normally ``sandbox.wsgi_app``) is mounted.
    """

    name = "wsgi"

    def __init__(self, app: Callable, base_url: str):
        super().__init__()
        self._app = app
        self._base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        body, status, response_headers = self._send(method, url, headers, post_data)
        return body.decode("utf-8"), status, response_headers

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        body, status, response_headers = self._send(method, url, headers, post_data)
        return io.BytesIO(body), status, response_headers

    def _send(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any
    ) -> tuple[bytes, int, dict[str, str]]:
        if not url.startswith(self._base_url + "/"):
            raise stripe.APIConnectionError(f"{url} is not under the sandbox base {self._base_url}")
        if isinstance(post_data, str):
            post_data = post_data.encode("utf-8")
        response = Client(self._app).open(
            url[len(self._base_url) :],
            base_url=self._base_url,
            method=method.upper(),
            headers=list((headers or {}).items()),
            data=post_data,
        )
        # Lower-case header names, as the SDK's own urllib client returns them.
        return response.get_data(), response.status_code, {k.lower(): v for k, v in response.headers.items()}

    def close(self) -> None:
        pass
