"""WhatsApp test doubles: the spec checker, a spec-checking fake Cloud API, and an in-process WSGI transport."""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.test import Client

from infra.local.whatsapp_spec import SPEC_RELATIVE_PATH, SpecViolation, WhatsAppSpec, load_spec
from membergate.adapters.http import Headers, HttpResponse

from .specs import specs_dir

try:  # main's shared rule for missing specs (skip, or fail under CI); this branch predates it
    from .specs import missing_spec
except ImportError:  # pragma: no cover - removed once merged

    def missing_spec(message: str) -> None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}; CI needs the specs (CI=true): a contract test that checks nothing is not a pass")
        pytest.skip(message)

API_BASE = "https://graph.facebook.com/v23.0"
ACCESS_TOKEN = "EAAfaketoken123"
PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "0123456789abcdef0123456789abcdef"

__all__ = ["SpecViolation", "whatsapp_spec", "spec_path", "SpecCheckingCloudTransport", "WsgiTransport", "graph_error"]


def spec_path():
    return specs_dir() / SPEC_RELATIVE_PATH


def whatsapp_spec() -> WhatsAppSpec:
    """The parsed WhatsApp OpenAPI spec. When it is missing the test is skipped (saying where it
    was looked for), except under CI=true, where a missing spec fails the run instead."""
    spec = load_spec(spec_path())
    if spec is None:
        missing_spec(f"WhatsApp OpenAPI spec not found at {spec_path()} (set MEMBERGATE_SPECS_DIR)")
    return spec


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    url: str
    path: str  # from the API root, e.g. /v23.0/106540352242922/messages
    headers: Headers
    body: bytes | None
    operations: tuple[str, ...] = ()

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode())


def graph_error(code: int, status: int = 400, message: str = "error", headers: Mapping[str, str] | None = None) -> HttpResponse:
    """An error answer in the Graph API's shape."""
    return json_response(
        status,
        {"error": {"message": message, "type": "OAuthException", "code": code, "error_data": {"details": message},
                   "fbtrace_id": "AbCdEf123"}},
        headers,
    )


@dataclass
class FakeGroup:
    participants: set[str] = field(default_factory=set)  # E.164
    join_requests: dict[str, str] = field(default_factory=dict)  # request id -> E.164


class SpecCheckingCloudTransport:
    """An HttpTransport that fails the test on any request the WhatsApp spec does not allow, and
    answers from a tiny model (messages accepted, groups with participants and join requests) or
    from scripted responses (``enqueue``), used first, in order."""

    def __init__(self, spec: WhatsAppSpec, *, api_base: str = API_BASE):
        self.spec = spec
        self.api_root = api_base.rstrip("/").rsplit("/", 1)[0]  # https://graph.facebook.com
        self.requests: list[RecordedRequest] = []
        self.groups: dict[str, FakeGroup] = {}
        self.sent: list[dict[str, Any]] = []
        self._script: list[tuple[str | None, HttpResponse]] = []
        self._ids = itertools.count(1)

    def enqueue(self, response: HttpResponse, *, operation: str | None = None) -> None:
        """Answer the next request (or the next one the spec names ``operation``) with ``response``."""
        self._script.append((operation, response))

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float) -> HttpResponse:
        if not url.startswith(self.api_root + "/"):
            raise SpecViolation(f"{method} {url}: not under {self.api_root}")
        path = url[len(self.api_root):]
        operations = self.spec.validate_request(method, path, headers, body)
        request = RecordedRequest(method, url, path, Headers(headers), body, operations)
        self.requests.append(request)
        for index, (operation, response) in enumerate(self._script):
            if operation is None or operation in operations:
                del self._script[index]
                return response
        response = self._answer(request)
        # The model's own answers are checked too, so the fake cannot drift from Meta's shapes.
        self.spec.validate_response(method, path, response.status, response.body)
        return response

    def _answer(self, r: RecordedRequest) -> HttpResponse:
        bare = r.path.split("?")[0]
        if r.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return graph_error(190, 401, "Invalid OAuth access token - Cannot parse access token")
        if "sendMessage" in r.operations:
            self.sent.append(r.json)
            to = r.json["to"]
            return json_response(200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                                       "messages": [{"id": f"wamid.TEST{next(self._ids)}"}]})
        if "createGroup" in r.operations:
            group_id = f"R1JPVVAtest{next(self._ids)}"
            self.groups[group_id] = FakeGroup()
            return json_response(200, {"messaging_product": "whatsapp", "request_id": f"{next(self._ids):015d}"})
        m = re.fullmatch(r"/v23\.0/([^/]+)(?:/([a-z_]+))?", bare)
        group = self.groups.get(m.group(1)) if m else None
        if group is None:
            return graph_error(100, 400, "Unsupported request - object does not exist")
        edge = m.group(2)
        if edge is None and r.method == "GET":
            return json_response(200, {"id": m.group(1), "messaging_product": "whatsapp", "subject": "Circle",
                                       "participants": [{"wa_id": p[1:]} for p in sorted(group.participants)],
                                       "total_participant_count": len(group.participants),
                                       "join_approval_mode": "approval_required", "suspended": False})
        if edge == "invite_link":
            return json_response(200, {"messaging_product": "whatsapp", "invite_link": f"https://chat.whatsapp.com/LINK{next(self._ids)}"})
        if edge == "join_requests" and r.method == "GET":
            return json_response(200, {"data": [{"join_request_id": rid, "wa_id": p[1:], "creation_timestamp": 1_780_000_000}
                                                for rid, p in group.join_requests.items()]})
        if edge == "join_requests":
            ids = r.json["join_requests"]
            for rid in ids:
                phone = group.join_requests.pop(rid, None)
                if phone and r.method == "POST":
                    group.participants.add(phone)
            key = "approved_join_requests" if r.method == "POST" else "rejected_join_requests"
            return json_response(200, {"messaging_product": "whatsapp", key: ids})
        if edge == "participants" and r.method == "DELETE":
            for item in r.json["participants"]:
                group.participants.discard(item["user"])
            return HttpResponse(200, {}, b"")
        return graph_error(100, 400, "Unsupported request")


class WsgiTransport:
    """An HttpTransport that hands requests to a WSGI app in-process, mounted at ``base_url``.

    With ``spec``, answers under /v23.0 are checked against the spec's response schemas."""

    def __init__(self, app: Callable, base_url: str, *, spec: WhatsAppSpec | None = None):
        self._client = Client(app)
        self._base = base_url.rstrip("/")
        self._spec = spec
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float) -> HttpResponse:
        assert url.startswith(self._base + "/"), f"{url} is not under {self._base}"
        path = url[len(self._base):]
        self.calls.append((method, path))
        response = self._client.open(path, method=method, headers=dict(headers), data=body or b"")
        answer = HttpResponse(response.status_code, dict(response.headers.items()), response.get_data())
        if self._spec is not None and path.startswith("/v23.0/"):
            self._spec.validate_response(method, path, answer.status, answer.body)
        return answer
