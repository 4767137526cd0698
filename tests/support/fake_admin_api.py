"""A canned admin API on a loopback port, for testing the CLI's reading of answers it cannot provoke."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@contextmanager
def serving(routes: dict[str, Any], token: str = "t0ken") -> Iterator[str]:
    """Serve ``routes`` (path -> JSON body) behind a bearer token; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = urlsplit(self.path).path
            if path != "/admin/openapi.json" and self.headers.get("Authorization") != f"Bearer {token}":
                return self._send(401, {"error": {"code": "unauthorized", "message": "no"}})
            if path not in routes:
                return self._send(404, {"error": {"code": "not_found", "message": "no such route"}})
            return self._send(200, routes[path])

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
