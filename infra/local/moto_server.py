"""The local stack's moto server: persistent HTTP/1.1 connections and a deep listen backlog.

Why not moto's ThreadedMotoServer as it is: werkzeug's development server (which it runs) answers
every request with ``Connection: close``, then lingers up to 10 ms draining the socket. Every
boto3 call of every function therefore opened a new TCP connection (name lookup, connect, a new
server thread, a close leaving a TIME_WAIT behind): a DynamoDB call cost about twice its work,
and under a burst of concurrent functions the pending connections outgrew the listen queue
(socketserver's default is 5, werkzeug's 128). Connections the kernel could not queue were
dropped and retried a second later (the 1 s stalls of the latency bench) or refused (the Errno 111
the stack used to hide behind botocore retries).

Here each client connection stays open and is served by one thread for as long as the client
keeps it (botocore pools them), requests on it one after another; the listen queue is as deep as
the kernel allows. And the server runs in a process of its own (``MotoProcess``), as AWS's
services are not in the Lambda functions' process: in the stack's process, moto's parsing and
serialising took the one interpreter lock from the functions it serves, so ten members paying at
once queued behind each other on one core.
"""

from __future__ import annotations

import threading
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from werkzeug.serving import ThreadedWSGIServer

LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn


class _Server(ThreadedWSGIServer):
    request_queue_size = LISTEN_BACKLOG


class _BodyReader:
    """The request body as the app sees it: exactly Content-Length bytes, the rest left to drain."""

    def __init__(self, rfile: Any, length: int):
        self._rfile = rfile
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self._rfile.read(size)
        self.left -= len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self._rfile.readline(size)
        self.left -= len(data)
        return data

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> None:
        while self.left > 0 and self.read(min(self.left, 65536)):
            pass


def _handler_class() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
        """Moto's handler (its header handling) with keep-alive: one response, Content-Length, no close."""

        protocol_version = "HTTP/1.1"
        # Headers and body leave in one write, without Nagle's delay: otherwise a kept-alive
        # connection waits for the client's delayed ACK (40 ms) on every response.
        disable_nagle_algorithm = True

        def run_wsgi(self) -> None:
            environ = self.make_environ()
            chunked = "wsgi.input_terminated" in environ
            body: _BodyReader | None = None
            if not chunked:
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                except ValueError:
                    length = 0
                body = _BodyReader(self.rfile, max(0, length))
                environ["wsgi.input"] = body
            response: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                response["status"], response["headers"] = status, headers
                return chunks.append

            chunks: list[bytes] = []
            try:
                result = self.server.app(environ, start_response)
                try:
                    chunks.extend(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            except Exception as error:  # as werkzeug would: a 500, and this connection is done
                self.log_error("moto failed on %s %s: %r", self.command, self.path, error)
                response["status"], response["headers"], chunks = "500 Internal Server Error", [], []
                self.close_connection = True
            if body is not None:
                body.drain()  # whatever the app left unread must not be taken for the next request
            else:
                self.close_connection = True  # a chunked body may be half read: start afresh
            payload = b"".join(chunks)
            code, _, reason = response["status"].partition(" ")
            self.send_response(int(code), reason)
            for name, value in response["headers"]:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            # end_headers() would write the headers alone: add the body to http.server's header
            # buffer and write both at once.
            self._headers_buffer.append(b"\r\n")
            if self.command != "HEAD":
                self._headers_buffer.append(payload)
            self.flush_headers()

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # hundreds of calls a second: the functions log what matters

    return KeepAliveHandler


MAIL_PATH = "/_local/mail"


def sent_mail() -> list[dict[str, Any]]:
    """Every email sent through SES as moto (in this process) recorded it, oldest first."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    mail = []
    for region_backend in ses_backends[DEFAULT_ACCOUNT_ID].values():
        for m in region_backend.sent_messages:
            if hasattr(m, "subject"):
                mail.append({"id": m.id, "from": m.source, "to": m.destinations.get("ToAddresses", []),
                             "subject": m.subject, "body": m.body})
    return mail


def _with_local_routes(app: Any) -> Any:
    """Moto's app plus one read-only route: the mail SES recorded (moto keeps it in this process)."""
    import json

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == MAIL_PATH and environ.get("REQUEST_METHOD") == "GET":
            payload = json.dumps({"mail": sent_mail()}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [payload]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_") and target.split(".", 1)[-1] in _DYNAMODB_WRITES:
            # DynamoDB checks a write's condition and applies it in one step; moto checks, then
            # writes, unlocked: two functions racing on one item's version both won, and the
            # later put erased the earlier one's change (a lost past_due snapshot, issue 8).
            with _DYNAMODB_WRITE_LOCK:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


_DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
_DYNAMODB_WRITE_LOCK = threading.Lock()


class LocalMotoServer:
    """Same surface as moto's ThreadedMotoServer (start, get_host_and_port, stop)."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0):
        self._address = (ip_address, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = _with_local_routes(DomainDispatcherApplication(create_backend_app))
        server = _Server(*self._address, app, handler=_handler_class())
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class MotoProcess:
    """A LocalMotoServer in a child process; it exits when the parent closes its stdin (or dies)."""

    def __init__(self, ip_address: str = "127.0.0.1"):
        self._ip = ip_address
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    def start(self, timeout: float = 60.0) -> None:
        root = Path(__file__).resolve().parents[2]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "infra.local.moto_server", self._ip], cwd=root,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode().strip()  # "listening <port>"
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the moto server did not start (said {line!r}); run `python -m infra.local.moto_server`")
        self._port = int(line.split()[1])

    def get_host_and_port(self) -> tuple[str, int]:
        return self._ip, self._port

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    """Serve moto on an ephemeral port, say which on stdout, stop when stdin closes."""
    import logging

    from moto import backends as moto_backends

    # moto resolves every request's service under one global lock, listing its package directory
    # each time (hundreds of stat calls): the listing never changes, compute it once.
    modules = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = LocalMotoServer(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1", 0)
    server.start()
    print(f"listening {server.get_host_and_port()[1]}", flush=True)
    sys.stdin.read()  # EOF: the stack stopped or died
    server.stop()


if __name__ == "__main__":
    main()
