"""A local WhatsApp stand-in: the Cloud API messages and Groups routes, a self-hosted gateway, controls and a call log.

Membergate's real WhatsApp clients talk to it over HTTP (WHATSAPP_API_BASE and
WHATSAPP_GATEWAY_URL point here), so what runs locally is the code that runs against
graph.facebook.com. It behaves as Meta documents, where that matters to Membergate:

- every Cloud API request is checked against Meta's OpenAPI file (infra/local/whatsapp_spec.py)
  and refused with a Graph error (code 100) when it does not match;
- free-form text outside the member's 24-hour window, and messages to a number that is not on
  WhatsApp, are accepted (200 with a message id) and then fail in a signed "failed" status
  webhook (131047 / 131026), as on the real platform; an unknown template is refused at once
  (132001);
- its own limits answer 130429 (messages per second) and 131056 (the same recipient too often);
- official groups hold at most 8 participants; join requests come through the current invite
  link only (a revoked link lets no one ask).

Routes (under the mount point; Cloud API under /v23.0, the gateway under /gateway):
  POST /v23.0/{phone_number_id}/messages, POST /v23.0/{phone_number_id}/groups (the group_create
  webhook follows), GET /v23.0/{group_id}, POST|DELETE /v23.0/{group_id}/invite_link,
  GET|POST|DELETE /v23.0/{group_id}/join_requests, POST|DELETE /v23.0/{group_id}/participants,
  POST|GET /gateway/groups/{group}/participants, DELETE /gateway/groups/{group}/participants/{phone}.
Views and controls:
  GET /calls (every API call, in order), GET /messages (what was sent and its status),
  GET /groups/{id} (participants, pending join requests, invite link),
  POST /_control/groups {"subject", "participants"?, "id"?} -> {"id", "invite_link"},
  POST /_control/inbound {"from", "text", "profile_name"?} -> posts Meta's signed webhook to the
  configured URL (opens the 24-hour window), POST /_control/join_requests {"group_id", "phone",
  "invite_link"?}, POST /_control/unreachable {"phone"} (the number is not on WhatsApp).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from membergate.domain.errors import InvalidRequestError
from membergate.domain.whatsapp import (
    OFFICIAL_GROUP_MAX_PARTICIPANTS,
    SERVICE_WINDOW_SECONDS,
    compute_signature,
    is_e164,
    normalise_phone,
)

from .whatsapp_spec import SPEC_RELATIVE_PATH, SpecViolation, WhatsAppSpec, load_spec

API = "/v23.0"
GATEWAY = "/gateway"
DEFAULT_PHONE_NUMBER_ID = "106540352242922"
DEFAULT_BUSINESS_NUMBER = "+15550783881"
DEFAULT_WABA_ID = "102290129340398"
PAIR_WINDOW_SECONDS = 6.0

Deliver = Callable[[str, bytes, dict[str, str]], int]


def default_spec() -> WhatsAppSpec | None:
    """Meta's spec from MEMBERGATE_SPECS_DIR or ../shared/specs beside the repository, if present."""
    base = os.environ.get("MEMBERGATE_SPECS_DIR") or str(Path(__file__).resolve().parents[3] / "shared" / "specs")
    return load_spec(Path(base) / SPEC_RELATIVE_PATH)


def post_webhook(url: str, body: bytes, headers: dict[str, str]) -> int:
    """Deliver a webhook over HTTP as Meta would; returns the status (0 when unreachable)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def graph_error(status: int, code: int, message: str, details: str | None = None) -> Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AStandIn"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return _json(status, {"error": error})


@dataclass
class Group:
    id: str
    subject: str
    participants: set[str] = field(default_factory=set)  # E.164
    join_requests: dict[str, str] = field(default_factory=dict)  # request id -> E.164
    invite_link: str | None = None
    gateway: set[str] = field(default_factory=set)  # participants as the gateway sees them (gateway mode)


class WhatsAppStandIn:
    def __init__(
        self,
        *,
        app_secret: str = "local-app-secret",
        webhook_url: str | None = None,
        deliver: Deliver = post_webhook,
        clock: Callable[[], float] = time.time,
        spec: WhatsAppSpec | None | bool = True,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
        business_number: str = DEFAULT_BUSINESS_NUMBER,
        access_token: str | None = None,
        gateway_key: str = "local-gateway-key",
        templates: set[str] | None = None,
        messages_per_second: int = 80,
        pair_limit: int = 10,
        send_delivery_statuses: bool = False,
    ):
        self._lock = threading.RLock()
        self.app_secret = app_secret
        self.webhook_url = webhook_url
        self._deliver = deliver
        self._clock = clock
        self.spec: WhatsAppSpec | None = default_spec() if spec is True else (spec or None)
        self.phone_number_id = phone_number_id
        self.business_number = business_number
        self.access_token = access_token  # None: any bearer token is accepted
        self.gateway_key = gateway_key
        self.templates = templates  # None: every template name is "approved"
        self.messages_per_second = messages_per_second
        self.pair_limit = pair_limit
        self.send_delivery_statuses = send_delivery_statuses
        self.calls: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        # Webhooks are posted after the lock is released: the receiver may call the stand-in back.
        self._outbox: list[tuple[dict[str, Any], bytes, dict[str, str]]] = []
        self.groups: dict[str, Group] = {}
        self.last_inbound: dict[str, int] = {}  # E.164 -> epoch of their last message
        self.unreachable: set[str] = set()
        self._sent_at: deque[float] = deque()
        self._sent_to: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self.url_map = Map(
            [
                Rule(f"{API}/<node>/messages", endpoint="messages", methods=["POST"]),
                Rule(f"{API}/<node>/groups", endpoint="create_group", methods=["POST"]),
                Rule(f"{API}/<group_id>", endpoint="group_info", methods=["GET"]),
                Rule(f"{API}/<group_id>/invite_link", endpoint="invite_link", methods=["POST", "DELETE"]),
                Rule(f"{API}/<group_id>/join_requests", endpoint="join_requests", methods=["GET", "POST", "DELETE"]),
                Rule(f"{API}/<group_id>/participants", endpoint="participants", methods=["POST", "DELETE"]),
                Rule(f"{GATEWAY}/groups/<group_id>/participants", endpoint="gw_participants", methods=["GET", "POST"]),
                Rule(f"{GATEWAY}/groups/<group_id>/participants/<phone>", endpoint="gw_participant", methods=["DELETE"]),
                Rule("/calls", endpoint="list_calls", methods=["GET"]),
                Rule("/messages", endpoint="list_messages", methods=["GET"]),
                Rule("/groups/<group_id>", endpoint="group_state", methods=["GET"]),
                Rule("/_control/groups", endpoint="control_group", methods=["POST"]),
                Rule("/_control/inbound", endpoint="control_inbound", methods=["POST"]),
                Rule("/_control/join_requests", endpoint="control_join_request", methods=["POST"]),
                Rule("/_control/unreachable", endpoint="control_unreachable", methods=["POST"]),
            ]
        )

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        api_call = request.path.startswith((API + "/", GATEWAY + "/"))
        record: dict[str, Any] = {}
        endpoint = ""
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
            with self._lock:
                response = self._dispatch(request, endpoint, args, record)
                outbox, self._outbox = self._outbox, []
            statuses = self._deliver_all(outbox)
            if endpoint == "control_inbound" and response.status_code == 200:
                answer = json.loads(response.get_data()) | {"delivered_status": statuses[-1] if statuses else None}
                response = _json(200, answer)
        except NotFound:
            response = graph_error(404, 100, "Unsupported request - method type or path not supported")
        except InvalidRequestError as exc:  # a control given a phone that is not E.164
            response = graph_error(400, 100, "(#100) Invalid parameter", exc.message)
        except HTTPException as exc:
            response = graph_error(exc.code or 400, 100, exc.description or "error")
        if api_call:
            if response.status_code >= 400:
                # Meta answers its rate limits (130429, 131056) as 400s: the code says which it was.
                try:
                    error = json.loads(response.get_data() or b"{}").get("error") or {}
                    record["error_code"] = error.get("code") if isinstance(error, dict) else None
                except (ValueError, AttributeError):
                    record["error_code"] = None
            with self._lock:
                self.calls.append(
                    {
                        "at": self._clock(),
                        "method": request.method,
                        "path": request.full_path.rstrip("?"),
                        "status": response.status_code,
                        "body": request.get_json(silent=True) if request.data else None,
                        **record,
                    }
                )
        return response(environ, start_response)

    def _dispatch(self, request: Request, endpoint: str, args: dict[str, str], record: dict[str, Any]) -> Response:
        if request.path.startswith(API + "/"):
            denied = self._check_cloud_request(request, record)
            if denied is not None:
                return denied
        elif request.path.startswith(GATEWAY + "/"):
            if request.headers.get("Authorization") != f"Bearer {self.gateway_key}":
                return _json(401, {"error": {"code": "unauthorized", "message": "wrong or missing gateway key"}})
        return getattr(self, f"on_{endpoint}")(request, **args)

    def _check_cloud_request(self, request: Request, record: dict[str, Any]) -> Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or (self.access_token is not None and auth != f"Bearer {self.access_token}"):
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if self.spec is None:
            return None
        try:
            record["operations"] = list(
                self.spec.validate_request(request.method, request.full_path.rstrip("?"), request.headers, request.get_data() or None)
            )
        except SpecViolation as exc:
            record["violation"] = str(exc)
            return graph_error(400, 100, "(#100) Invalid parameter", str(exc))
        return None

    # --- messages ---------------------------------------------------------------------------

    def on_messages(self, request: Request, node: str) -> Response:
        if node != self.phone_number_id:
            return graph_error(400, 100, f"Unsupported post request. Object with ID '{node}' does not exist")
        body = request.get_json(silent=True) or {}
        try:
            to = normalise_phone(str(body.get("to", "")), assume_international=True)
        except InvalidRequestError:
            return graph_error(400, 100, "(#100) Invalid parameter", "to is not a phone number")
        now = self._clock()
        limited = self._rate_limit(to, now)
        if limited is not None:
            return limited
        kind = body.get("type")
        template = body.get("template") or {}
        if kind == "template" and self.templates is not None and template.get("name") not in self.templates:
            return graph_error(404, 132001, "(#132001) Template name does not exist in the translation",
                               f"template name ({template.get('name')}) does not exist in {template.get('language', {}).get('code')}")
        message_id = f"wamid.STANDIN{next(self._ids):08d}"
        failure = None
        if to in self.unreachable:
            failure = (131026, "Message undeliverable")
        elif kind != "template" and not self._window_open(to, now):
            failure = (131047, "Re-engagement message")
        message = {"id": message_id, "to": to, "type": kind, "at": now, "status": "failed" if failure else "sent",
                   "text": (body.get("text") or {}).get("body"), "template": template or None,
                   "error_code": failure[0] if failure else None}
        self.messages.append(message)
        if failure:
            self._post_status(message_id, to, "failed", now, failure)
        elif self.send_delivery_statuses:
            self._post_status(message_id, to, "sent", now, None)
            self._post_status(message_id, to, "delivered", now, None)
        return _json(200, {"messaging_product": "whatsapp", "contacts": [{"input": body.get("to"), "wa_id": to[1:]}],
                           "messages": [{"id": message_id}]})

    def _window_open(self, phone: str, now: float) -> bool:
        last = self.last_inbound.get(phone)
        return last is not None and now < last + SERVICE_WINDOW_SECONDS

    def _rate_limit(self, to: str, now: float) -> Response | None:
        while self._sent_at and self._sent_at[0] <= now - 1.0:
            self._sent_at.popleft()
        if len(self._sent_at) >= self.messages_per_second:
            return graph_error(400, 130429, "(#130429) Rate limit hit",
                               f"Cloud API message throughput has been reached ({self.messages_per_second}/s here)")
        recent = self._sent_to.setdefault(to, deque())
        while recent and recent[0] <= now - PAIR_WINDOW_SECONDS:
            recent.popleft()
        if len(recent) >= self.pair_limit:
            return graph_error(400, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                               f"more than {self.pair_limit} messages to this number in {PAIR_WINDOW_SECONDS:.0f} s")
        self._sent_at.append(now)
        recent.append(now)
        return None

    # --- groups (Cloud API) -----------------------------------------------------------------

    def on_create_group(self, request: Request, node: str) -> Response:
        if node != self.phone_number_id:
            return graph_error(400, 100, f"Unsupported post request. Object with ID '{node}' does not exist")
        body = request.get_json(silent=True) or {}
        request_id = f"{next(self._ids):015d}"
        group_id = f"R1JPVVA{next(self._ids):06d}"
        self.groups[group_id] = Group(group_id, str(body.get("subject", "")).strip())
        # Meta creates the group asynchronously and announces it by webhook with the request id.
        event = {"timestamp": int(self._clock()), "group_id": group_id, "type": "group_create",
                 "request_id": request_id, "subject": self.groups[group_id].subject}
        if body.get("description"):
            event["description"] = body["description"]
        self._post_webhook({"messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": self.business_number[1:], "phone_number_id": self.phone_number_id},
                            "groups": [event]}, field="group_lifecycle_update")
        return _json(200, {"messaging_product": "whatsapp", "request_id": request_id})

    def _group(self, group_id: str) -> Group | None:
        return self.groups.get(group_id)

    @staticmethod
    def _unknown_group(group_id: str) -> Response:
        return graph_error(400, 100, f"Unsupported request. Object with ID '{group_id}' does not exist")

    def on_group_info(self, request: Request, group_id: str) -> Response:
        group = self._group(group_id)
        if group is None:
            return self._unknown_group(group_id)
        info = {"id": group.id, "messaging_product": "whatsapp", "subject": group.subject,
                "join_approval_mode": "approval_required", "suspended": False,
                "creation_timestamp": 1_700_000_000,
                "participants": [{"wa_id": p[1:]} for p in sorted(group.participants)],
                "total_participant_count": len(group.participants)}
        fields = request.args.get("fields")
        if fields:
            wanted = {f.strip() for f in fields.split(",")} | {"id"}
            info = {k: v for k, v in info.items() if k in wanted}
        return _json(200, info)

    def on_invite_link(self, request: Request, group_id: str) -> Response:
        group = self._group(group_id)
        if group is None:
            return self._unknown_group(group_id)
        if request.method == "DELETE":
            group.invite_link = None
            return _json(200, {"messaging_product": "whatsapp", "success": "true"})
        group.invite_link = f"https://chat.whatsapp.com/STANDIN{next(self._ids):06d}"
        return _json(200, {"messaging_product": "whatsapp", "invite_link": group.invite_link})

    def on_join_requests(self, request: Request, group_id: str) -> Response:
        group = self._group(group_id)
        if group is None:
            return self._unknown_group(group_id)
        if request.method == "GET":
            return _json(200, {"data": [{"join_request_id": rid, "wa_id": phone[1:], "creation_timestamp": int(self._clock())}
                                        for rid, phone in group.join_requests.items()]})
        ids = (request.get_json(silent=True) or {}).get("join_requests") or []
        done, failed = [], []
        for rid in ids:
            phone = group.join_requests.get(rid)
            if phone is None:
                failed.append({"join_request_id": rid, "errors": [{"code": 100, "message": "join request not found"}]})
            elif request.method == "POST" and len(group.participants) >= OFFICIAL_GROUP_MAX_PARTICIPANTS:
                failed.append({"join_request_id": rid, "errors": [
                    {"code": 100, "message": f"group is full ({OFFICIAL_GROUP_MAX_PARTICIPANTS} participants)"}]})
            else:
                del group.join_requests[rid]
                if request.method == "POST":
                    group.participants.add(phone)
                done.append(rid)
        key = "approved_join_requests" if request.method == "POST" else "rejected_join_requests"
        answer: dict[str, Any] = {"messaging_product": "whatsapp", key: done}
        if failed:
            answer["failed_join_requests"] = failed
        return _json(200, answer)

    def on_participants(self, request: Request, group_id: str) -> Response:
        group = self._group(group_id)
        if group is None:
            return self._unknown_group(group_id)
        users = [p.get("user", "") for p in (request.get_json(silent=True) or {}).get("participants") or []]
        phones = [normalise_phone(u, assume_international=True) for u in users if _readable(u)]
        if request.method == "DELETE":
            group.participants.difference_update(phones)
            return _json(200, {"messaging_product": "whatsapp", "success": True})
        if len(group.participants | set(phones)) > OFFICIAL_GROUP_MAX_PARTICIPANTS:
            return graph_error(400, 100, f"(#100) group is full ({OFFICIAL_GROUP_MAX_PARTICIPANTS} participants)")
        group.participants.update(phones)
        return _json(200, {"messaging_product": "whatsapp", "success": True})

    # --- the gateway ------------------------------------------------------------------------

    def on_gw_participants(self, request: Request, group_id: str) -> Response:
        group = self._group(group_id)
        if group is None:
            return _json(404, {"error": {"code": "unknown_group", "message": f"no group {group_id}"}})
        if request.method == "GET":
            return _json(200, {"participants": [{"phone": p} for p in sorted(group.gateway)]})
        phone = (request.get_json(silent=True) or {}).get("phone", "")
        if not is_e164(phone):
            return _json(400, {"error": {"code": "invalid_phone", "message": "phone must be E.164"}})
        if phone in group.gateway:
            return _json(409, {"error": {"code": "already_participant", "message": "already in the group"}})
        group.gateway.add(phone)
        return _json(201, {"phone": phone})

    def on_gw_participant(self, request: Request, group_id: str, phone: str) -> Response:
        group = self._group(group_id)
        if group is None:
            return _json(404, {"error": {"code": "unknown_group", "message": f"no group {group_id}"}})
        if phone not in group.gateway:
            return _json(404, {"error": {"code": "not_participant", "message": "not in the group"}})
        group.gateway.discard(phone)
        return Response(status=204)

    # --- views and controls -----------------------------------------------------------------

    def on_list_calls(self, request: Request) -> Response:
        return _json(200, {"calls": self.calls})

    def on_list_messages(self, request: Request) -> Response:
        return _json(200, {"messages": self.messages, "webhooks": self.webhooks})

    def on_group_state(self, request: Request, group_id: str) -> Response:
        group = self._group(group_id)
        if group is None:
            return _json(404, {"error": "unknown group"})
        return _json(200, {"id": group.id, "subject": group.subject, "participants": sorted(group.participants),
                           "join_requests": group.join_requests, "invite_link": group.invite_link,
                           "gateway_participants": sorted(group.gateway)})

    def on_control_group(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        group_id = body.get("id") or f"R1JPVVA{next(self._ids):06d}"
        participants = {normalise_phone(p) for p in body.get("participants") or []}
        group = Group(group_id, str(body.get("subject") or "Membergate group"), set(participants), gateway=set(participants))
        group.invite_link = f"https://chat.whatsapp.com/STANDIN{next(self._ids):06d}"
        self.groups[group_id] = group
        return _json(201, {"id": group_id, "invite_link": group.invite_link})

    def on_control_join_request(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        group = self._group(str(body.get("group_id", "")))
        if group is None:
            return _json(404, {"error": "unknown group"})
        link = body.get("invite_link")
        if group.invite_link is None or (link is not None and link != group.invite_link):
            return _json(409, {"error": "this invite link was reset: ask the group admin for a new one"})
        phone = normalise_phone(str(body.get("phone", "")))
        request_id = f"JR{next(self._ids):08d}"
        group.join_requests[request_id] = phone
        return _json(201, {"join_request_id": request_id})

    def on_control_unreachable(self, request: Request) -> Response:
        phone = normalise_phone(str((request.get_json(silent=True) or {}).get("phone", "")))
        self.unreachable.add(phone)
        return _json(200, {"phone": phone, "reachable": False})

    def on_control_inbound(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        phone = normalise_phone(str(body.get("from", "")))
        now = int(self._clock())
        message = {"from": phone[1:], "id": f"wamid.IN{next(self._ids):08d}", "timestamp": str(now), "type": "text",
                   "text": {"body": str(body.get("text", ""))}}
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": self.business_number[1:], "phone_number_id": self.phone_number_id},
                 "contacts": [{"profile": {"name": str(body.get("profile_name") or "WhatsApp user")}, "wa_id": phone[1:]}],
                 "messages": [message]}
        self.last_inbound[phone] = now
        self._post_webhook(value)
        return _json(200, {"message_id": message["id"]})

    # --- webhooks ---------------------------------------------------------------------------

    def _post_status(self, message_id: str, phone: str, status: str, now: float, failure: tuple[int, str] | None) -> None:
        item: dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(int(now)), "recipient_id": phone[1:]}
        if failure:
            item["errors"] = [{"code": failure[0], "title": failure[1], "message": failure[1],
                               "error_data": {"details": failure[1]},
                               "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": self.business_number[1:], "phone_number_id": self.phone_number_id},
                 "statuses": [item]}
        self._post_webhook(value)

    def _deliver_all(self, outbox: list[tuple[dict[str, Any], bytes, dict[str, str]]]) -> list[int | None]:
        statuses: list[int | None] = []
        for record, raw, headers in outbox:
            status = self._deliver(self.webhook_url, raw, headers) if self.webhook_url else None
            with self._lock:
                record["status"] = status
            statuses.append(status)
        return statuses

    def _post_webhook(self, value: dict[str, Any], field: str = "messages") -> None:
        payload = {"object": "whatsapp_business_account",
                   "entry": [{"id": DEFAULT_WABA_ID, "changes": [{"value": value, "field": field}]}]}
        # Meta escapes non-ASCII in its bodies; the signature covers these exact bytes.
        raw = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": compute_signature(self.app_secret, raw)}
        record: dict[str, Any] = {"payload": payload, "status": None}
        self.webhooks.append(record)
        self._outbox.append((record, raw, headers))


def _readable(user: str) -> bool:
    try:
        normalise_phone(user, assume_international=True)
    except InvalidRequestError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in alone: ``python -m infra.local.whatsapp_standin --port 3100 --webhook-url URL``."""
    import argparse

    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument("--webhook-url", default=None, help="where inbound messages and statuses are posted")
    parser.add_argument("--app-secret", default="local-app-secret", help="signs the webhooks (WHATSAPP_APP_SECRET)")
    args = parser.parse_args(argv)
    standin = WhatsAppStandIn(app_secret=args.app_secret, webhook_url=args.webhook_url)
    if standin.spec is None:
        print("WhatsApp spec not found: requests are not checked against it (set MEMBERGATE_SPECS_DIR)")
    print(f"WhatsApp stand-in on http://127.0.0.1:{args.port} (Cloud API base http://127.0.0.1:{args.port}{API})")
    run_simple("127.0.0.1", args.port, standin, threaded=True)


if __name__ == "__main__":
    main()
