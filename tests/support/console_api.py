"""A scripted admin API on a loopback port that records every request (for the console's CLI commands)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class ScriptedApi:
    """(method, path) -> replies given in turn (the last one repeats); requests recorded in order."""

    replies: dict[tuple[str, str], list[tuple[int, Any]]]
    token: str = "t0ken"
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        self.requests.append((method, parts.path, parse_qs(parts.query), body))
        queue = self.replies.get((method, parts.path))
        if not queue:
            return 404, {"error": {"code": "not_found", "message": "no such route"}}
        return queue.pop(0) if len(queue) > 1 else queue[0]


@contextmanager
def scripted(api: ScriptedApi) -> Iterator[ScriptedApi]:
    """Serve ``api`` behind its bearer token; ``api.url`` is the base URL while inside."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self, method: str) -> None:
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                return self._send(401, {"error": {"code": "unauthorized", "message": "no"}})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            self._send(*api.answer(method, self.path, body))

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def _send(self, status: int, body: Any) -> None:
            # bytes are sent as they are (a CSV export); anything else as JSON.
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/csv" if isinstance(body, bytes) else "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
