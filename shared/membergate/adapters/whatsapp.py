"""WhatsApp adapters over HttpTransport: Meta's Cloud API (messages, Groups API) and an opt-in self-hosted gateway.

Honest limits (docs/whatsapp.md): the Groups API used in ``official`` mode is open only to
Official Business Accounts and a group holds at most 8 participants; ``gateway`` mode talks to an
unofficial linked-device gateway the creator runs, which breaks Meta's terms and risks a ban of
the number it uses. Neither is a connector yet: the platform-neutral connector port is being
written at the same time, and these clients plug into it afterwards.

Settings these clients need (read by config.py, passed in by bootstrap.py): WHATSAPP_ACCESS_TOKEN
(a system user token; its secret name), WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_API_BASE (default
https://graph.facebook.com/v23.0), and for gateway mode WHATSAPP_GATEWAY_URL and
WHATSAPP_GATEWAY_KEY. The webhook side needs WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN
(domain/whatsapp.py), and the join link WHATSAPP_BUSINESS_NUMBER.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.model import Community
from ..domain.preflight import Preflight
from ..domain.errors import InvalidRequestError, PermanentError, RetryableError
from ..domain.whatsapp import (
    OFFICIAL_GROUP_MAX_PARTICIPANTS,
    MessageKind,
    classify_error,
    message_kind,
    normalise_phone,
)
from .http import HttpResponse, HttpTransport
from .platform_text import fingerprint, fit_text, non_negative_number

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://graph.facebook.com/v23.0"
# The spec's User-Agent pattern: name/major.minor.patch.
USER_AGENT = "Membergate/0.1.0"
REQUEST_TIMEOUT = 10.0
# Cloud API default throughput: 80 messages per second per business number (higher tiers exist;
# staying at the default is always safe).
MESSAGES_PER_SECOND = 80
# text.body: at most 4096 characters (Cloud API "Text messages").
TEXT_LIMIT = 4096
# Template body parameters: the spec's TextParameter maxLength; Meta also refuses newlines and
# tabs in them and more than four consecutive spaces.
TEMPLATE_PARAMETER_LIMIT = 32768

# Codes after which nothing is sent for a while: they limit the app or the whole account.
_ACCOUNT_LIMIT_CODES = frozenset({4, 80007, 130429})
_PAIR_LIMIT_CODE = 131056
_TOKEN_CODES = frozenset({0, 190})

_PHONE_NUMBER_ID = re.compile(r"^[0-9]{1,32}$")
# Graph node ids of groups are URL-safe base64 ("Y2FwaV9ncm91cDo..."); checked so "../" never
# reaches a request path.
_GROUP_ID = re.compile(r"^[A-Za-z0-9_\-=]{1,256}$")


class WindowClosedError(PermanentError):
    """Meta refused free-form text because the member's 24-hour window is closed: send a template."""

    def __init__(self, message: str):
        super().__init__(message, "whatsapp_window_closed")


@dataclass(frozen=True)
class Template:
    """An approved message template: its name, language code and the texts of its body variables."""

    name: str
    language: str
    body_parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class JoinRequest:
    id: str
    phone: str  # E.164
    created_at: int | None


@dataclass(frozen=True)
class GroupInfo:
    id: str
    subject: str | None
    participants: tuple[str, ...]  # E.164, the business excluded
    total_participants: int
    join_approval_mode: str | None
    suspended: bool

    @property
    def full(self) -> bool:
        return self.total_participants >= OFFICIAL_GROUP_MAX_PARTICIPANTS


# --- limits ---------------------------------------------------------------------------------


class CloudRateLimits:
    """One business number's limits: messages per second, and pauses Meta asked for.

    Account-wide pauses follow codes 4, 80007 and 130429 (with the wait Meta states in
    X-Business-Use-Case-Usage when it does); a per-recipient pause follows 131056 (the pair rate
    limit: the same person messaged too often). Shared by every client in the process."""

    _MAX_RECIPIENTS = 4096

    def __init__(self, per_second: int = MESSAGES_PER_SECOND):
        self._per_second = per_second
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._recipients: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_before(self, now: float, *, message_to: str | None) -> float:
        """0 after taking a slot (messages only), else how long until one frees or a pause ends."""
        with self._lock:
            waits = [self._blocked_until - now]
            if message_to is not None:
                waits.append(self._recipients.get(message_to, 0.0) - now)
            longest = max(waits)
            if longest > 0:
                return longest
            if message_to is None:
                return 0.0
            while self._sent and self._sent[0] <= now - 1.0:
                self._sent.popleft()
            if len(self._sent) >= self._per_second:
                return self._sent[0] + 1.0 - now
            self._sent.append(now)
            return 0.0

    def pause_all(self, until: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, until)

    def pause_recipient(self, phone: str, until: float, now: float) -> None:
        with self._lock:
            if len(self._recipients) >= self._MAX_RECIPIENTS:
                self._recipients = {p: t for p, t in self._recipients.items() if t > now}
            self._recipients[phone] = max(self._recipients.get(phone, 0.0), until)


SHARED_CLOUD_LIMITS = CloudRateLimits()


# --- the Cloud API client -------------------------------------------------------------------


class WhatsAppCloudApi:
    """Messages (text inside the 24-hour window, templates outside) and the Groups API (``official`` mode)."""

    _MAX_WAITS = 3

    def __init__(
        self,
        transport: HttpTransport,
        access_token: Callable[[], str],
        phone_number_id: str,
        api_base: str = DEFAULT_API_BASE,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        max_inline_wait: float = 2.0,
        limits: CloudRateLimits | None = None,
    ):
        if not isinstance(phone_number_id, str) or not _PHONE_NUMBER_ID.match(phone_number_id):
            raise PermanentError(
                f"WHATSAPP_PHONE_NUMBER_ID {str(phone_number_id)[:32]!r} is not a phone number id: copy the "
                "\"Phone number ID\" (digits, not the phone number) from the Meta app dashboard → WhatsApp → API Setup",
                "whatsapp_phone_number_id_invalid",
            )
        self._transport = transport
        self._access_token = access_token
        self._phone_number_id = phone_number_id
        self._base = api_base.rstrip("/")
        self._sleep = sleep
        self._monotonic = monotonic
        self._max_wait = max_inline_wait
        self._limits = SHARED_CLOUD_LIMITS if limits is None else limits
        # A token Meta answered 190 to, so the same bad token is not sent again and again.
        self._rejected: str | None = None

    # -- messages ----------------------------------------------------------------------------

    def send_text(self, phone: str, body: str, *, preview_url: bool = False) -> str:
        """Send free-form text (only delivered inside the 24-hour window); returns the message id."""
        if not body:
            raise PermanentError("a WhatsApp text message needs a body", "whatsapp_empty_message")
        to = normalise_phone(phone)
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"body": truncate_text(body), "preview_url": preview_url},
        }
        return self._send_message(to, payload)

    def send_template(self, phone: str, template: Template) -> str:
        """Send an approved template (delivered any time); returns the message id."""
        to = normalise_phone(phone)
        body: dict[str, Any] = {
            "name": template.name,
            # The spec's LanguageObject requires the policy; "deterministic" is its only value.
            "language": {"policy": "deterministic", "code": template.language},
        }
        if template.body_parameters:
            body["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": _template_parameter(p)} for p in template.body_parameters]}
            ]
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "template", "template": body}
        return self._send_message(to, payload)

    def notify(self, phone: str, text: str, template: Template, *, last_inbound_at: int | None, now: int) -> tuple[MessageKind, str]:
        """Text while the member's window is open, the template otherwise, and the template too when
        Meta says the window closed after all. Returns what was sent and its message id."""
        if message_kind(last_inbound_at, now) is MessageKind.TEXT:
            try:
                return MessageKind.TEXT, self.send_text(phone, text)
            except WindowClosedError:
                log.info("WhatsApp window closed earlier than recorded; sending the template instead")
        return MessageKind.TEMPLATE, self.send_template(phone, template)

    # -- Groups API (official mode) ----------------------------------------------------------

    def create_group(self, subject: str, description: str | None = None) -> str:
        """Ask Meta to create a group whose joiners need approval; returns the request id. The group
        id arrives later in a ``group_create`` webhook carrying it (domain.whatsapp.GroupEvent)."""
        subject = " ".join(str(subject).split())[:128]
        if not subject:
            raise PermanentError("a WhatsApp group needs a name (subject)", "whatsapp_group_subject_missing")
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "subject": subject,
                                   # Join requests, so Membergate can admit the paying number only.
                                   "join_approval_mode": "approval_required"}
        if description:
            payload["description"] = description[:2048]
        response = self._call("POST", f"/{self._phone_number_id}/groups", payload)
        request_id = _body(response).get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise RetryableError("WhatsApp answered the group creation without a request id; retried automatically")
        return request_id

    def create_invite_link(self, group_id: str) -> str:
        """A new invite link for the group (the previous one stops working)."""
        response = self._call("POST", f"/{_group(group_id)}/invite_link", {"messaging_product": "whatsapp"})
        link = _body(response).get("invite_link")
        if not isinstance(link, str) or not link.startswith("https://"):
            raise RetryableError("WhatsApp answered the invite link request without a link; retried automatically")
        return link

    def get_group(self, group_id: str) -> GroupInfo:
        fields = "subject,participants,total_participant_count,join_approval_mode,suspended"
        response = self._call("GET", f"/{_group(group_id)}?{urllib.parse.urlencode({'fields': fields})}")
        data = _body(response)
        participants = []
        for item in data.get("participants") or []:
            wa_id = item.get("wa_id") if isinstance(item, dict) else None
            if isinstance(wa_id, str):
                participants.append(normalise_phone(wa_id, assume_international=True))
        total = data.get("total_participant_count")
        return GroupInfo(
            id=str(data.get("id", group_id)),
            subject=data.get("subject") if isinstance(data.get("subject"), str) else None,
            participants=tuple(participants),
            total_participants=total if isinstance(total, int) and not isinstance(total, bool) else len(participants),
            join_approval_mode=data.get("join_approval_mode"),
            suspended=data.get("suspended") is True,
        )

    def list_join_requests(self, group_id: str) -> list[JoinRequest]:
        """Open join requests (the spec's operation takes no paging cursor: the first page only)."""
        response = self._call("GET", f"/{_group(group_id)}/join_requests")
        requests = []
        for item in _body(response).get("data") or []:
            if not isinstance(item, dict) or not isinstance(item.get("join_request_id"), str):
                continue
            try:
                phone = normalise_phone(str(item.get("wa_id", "")), assume_international=True)
            except InvalidRequestError:  # an odd entry is skipped, never approved
                continue
            created = item.get("creation_timestamp")
            requests.append(JoinRequest(item["join_request_id"], phone, created if isinstance(created, int) else None))
        return requests

    def approve_join_requests_from(self, group_id: str, phone: str) -> list[str]:
        """Approve the open join requests of ``phone`` (the paying member) and nobody else's.

        Returns the approved request ids ([] when the member has not asked to join yet). Refuses
        with ``whatsapp_group_full`` when the group already has 8 participants."""
        member = normalise_phone(phone)
        mine = [r.id for r in self.list_join_requests(group_id) if r.phone == member]
        if not mine:
            return []
        group = self.get_group(group_id)
        if member in group.participants:
            return []
        if group.full:
            raise PermanentError(
                f"The WhatsApp group is full: Meta's Groups API allows {OFFICIAL_GROUP_MAX_PARTICIPANTS} participants. "
                "Switch the community to manual mode (members get the invite link, you remove people yourself) or "
                "remove someone from the group.",
                "whatsapp_group_full",
            )
        response = self._call("POST", f"/{_group(group_id)}/join_requests", {"messaging_product": "whatsapp", "join_requests": mine})
        data = _body(response)
        self._raise_item_failures(data, "approve the join request")
        approved = data.get("approved_join_requests")
        return [a for a in approved if isinstance(a, str)] if isinstance(approved, list) else mine

    def reject_join_requests(self, group_id: str, request_ids: Sequence[str]) -> None:
        if not request_ids:
            return
        response = self._call(
            "DELETE", f"/{_group(group_id)}/join_requests", {"messaging_product": "whatsapp", "join_requests": list(request_ids)}
        )
        self._raise_item_failures(_body(response), "reject join requests")

    def remove_participants(self, group_id: str, phones: Collection[str]) -> None:
        """Remove people from the group, at most 8 per request as the spec allows."""
        users = sorted({normalise_phone(p) for p in phones})
        for start in range(0, len(users), OFFICIAL_GROUP_MAX_PARTICIPANTS):
            chunk = users[start : start + OFFICIAL_GROUP_MAX_PARTICIPANTS]
            self._call(
                "DELETE", f"/{_group(group_id)}/participants",
                {"messaging_product": "whatsapp", "participants": [{"user": u} for u in chunk]},
            )

    # -- sending -----------------------------------------------------------------------------

    def _send_message(self, to: str, payload: dict[str, Any]) -> str:
        response = self._call("POST", f"/{self._phone_number_id}/messages", payload, message_to=to)
        data = _body(response)
        messages = data.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict) and isinstance(messages[0].get("id"), str):
            return messages[0]["id"]
        raise RetryableError("WhatsApp accepted the message without a message id; retried automatically")

    def _call(self, method: str, path: str, payload: Any = None, *, message_to: str | None = None) -> HttpResponse:
        """Return a 2xx response; wait out short limits inline; raise RetryableError or PermanentError."""
        what = f"{method} {path.split('?')[0]}"
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() if payload is not None else None
        for _ in range(self._MAX_WAITS):
            wait = self._limits.wait_before(self._monotonic(), message_to=message_to)
            if wait > 0:
                if wait > self._max_wait:
                    raise RetryableError(f"WhatsApp sending paused to respect its rate limits ({what})", retry_after=wait)
                self._sleep(wait)
                continue
            token = self._token()
            headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
            if body is not None:
                headers["Content-Type"] = "application/json"
            response = self._transport.request(method, self._base + path, headers=headers, body=body, timeout=REQUEST_TIMEOUT)
            if 200 <= response.status < 300:
                return response
            error = self._failure(response, what, token, message_to)
            if isinstance(error, RetryableError) and error.retry_after is not None and error.retry_after <= self._max_wait:
                self._sleep(error.retry_after)
                continue
            raise error
        raise RetryableError(f"WhatsApp kept limiting {what}; retried automatically")

    def _token(self) -> str:
        token = self._access_token()
        if not token:
            raise PermanentError("No WhatsApp access token is configured: " + classify_error(190).advice, "whatsapp_token_invalid")
        if self._rejected is not None and self._rejected == fingerprint(token):
            raise PermanentError(classify_error(190).advice, "whatsapp_token_invalid")
        return token

    def _failure(self, response: HttpResponse, what: str, token: str, message_to: str | None) -> RetryableError | PermanentError:
        error = _graph_error(response)
        code = error.get("code") if isinstance(error.get("code"), int) else None
        meaning = classify_error(code, response.status)
        now = self._monotonic()
        detail = f"(WhatsApp {response.status}/{code} on {what})"
        if code in _TOKEN_CODES or (code is None and response.status == 401):
            self._rejected = fingerprint(token)
            return PermanentError(f"{classify_error(190).advice} {detail}", "whatsapp_token_invalid")
        if meaning.reason == "whatsapp_window_closed":
            return WindowClosedError(f"{meaning.advice} {detail}")
        if meaning.retryable:
            retry_after = _regain_access_seconds(response.headers) or meaning.retry_after
            if code in _ACCOUNT_LIMIT_CODES and retry_after:
                self._limits.pause_all(now + retry_after)
            elif code == _PAIR_LIMIT_CODE and message_to and retry_after:
                self._limits.pause_recipient(message_to, now + retry_after, now)
            log.warning("WhatsApp refused %s for now: code %s, HTTP %s", what, code, response.status)
            return RetryableError(f"{meaning.advice} {detail}", retry_after=retry_after)
        return PermanentError(f"{meaning.advice} {detail}", meaning.reason)

    @staticmethod
    def _raise_item_failures(data: Mapping[str, Any], what: str) -> None:
        failed = data.get("failed_join_requests")
        errors = [e for item in failed if isinstance(item, dict) for e in item.get("errors") or []] if isinstance(failed, list) else []
        errors += [e for e in data.get("errors") or [] if isinstance(e, dict)] if isinstance(data.get("errors"), list) else []
        if not errors:
            return
        code = errors[0].get("code") if isinstance(errors[0], dict) and isinstance(errors[0].get("code"), int) else None
        meaning = classify_error(code)
        message = f"{meaning.advice} (WhatsApp could not {what}: error {code})"
        if meaning.retryable:
            raise RetryableError(message, retry_after=meaning.retry_after)
        raise PermanentError(message, meaning.reason)


# --- the gateway client (gateway mode) ------------------------------------------------------


class WhatsAppGateway:
    """A minimal client for a self-hosted WhatsApp HTTP gateway (``gateway`` mode, opt-in).

    Such gateways drive a linked device of an ordinary WhatsApp account: unofficial, against
    Meta's terms, and the account can be banned. The expected API is generic and documented in
    docs/whatsapp.md (phones in E.164, percent-encoded in paths):

        POST   {base}/groups/{group}/participants          {"phone": "+33612345678"}
        DELETE {base}/groups/{group}/participants/{phone}
        GET    {base}/groups/{group}/participants          -> {"participants": [{"phone": "+33..."}]}

    with ``Authorization: Bearer <WHATSAPP_GATEWAY_KEY>``. Adding someone already in the group
    (409) and removing someone already gone (404 ``not_participant``) count as done."""

    def __init__(
        self,
        transport: HttpTransport,
        base_url: str,
        api_key: Callable[[], str],
        *,
        timeout: float = REQUEST_TIMEOUT,
    ):
        if not base_url or not base_url.startswith(("https://", "http://")):
            raise PermanentError(
                "WHATSAPP_GATEWAY_URL must be the http(s) address of your WhatsApp gateway (gateway mode); "
                "leave gateway mode off if you do not run one",
                "whatsapp_gateway_url_invalid",
            )
        self._transport = transport
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout

    def add_participant(self, group: str, phone: str) -> None:
        member = normalise_phone(phone)
        response = self._request("POST", f"/groups/{_segment(group)}/participants", {"phone": member})
        if response.status == 409 and _gateway_code(response) in ("already_participant", ""):
            return  # already in the group
        self._check(response, "add the member to the group")

    def remove_participant(self, group: str, phone: str) -> None:
        member = normalise_phone(phone)
        response = self._request("DELETE", f"/groups/{_segment(group)}/participants/{_segment(member)}")
        if response.status == 404 and _gateway_code(response) == "not_participant":
            return  # already gone
        self._check(response, "remove the member from the group")

    def list_participants(self, group: str) -> list[str]:
        response = self._request("GET", f"/groups/{_segment(group)}/participants")
        self._check(response, "list the group's participants")
        data = response.json()
        items = data.get("participants") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise RetryableError("the WhatsApp gateway answered without a participants list; retried automatically")
        phones = []
        for item in items:
            raw = item.get("phone") if isinstance(item, dict) else item
            if isinstance(raw, str):
                phones.append(normalise_phone(raw, assume_international=True))
        return phones

    def _request(self, method: str, path: str, payload: Any = None) -> HttpResponse:
        key = self._api_key()
        if not key:
            raise PermanentError("No WhatsApp gateway key is configured: set WHATSAPP_GATEWAY_KEY (gateway mode)", "whatsapp_gateway_key_invalid")
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json", "User-Agent": USER_AGENT}
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload, separators=(",", ":")).encode()
        return self._transport.request(method, self._base + path, headers=headers, body=body, timeout=self._timeout)

    @staticmethod
    def _check(response: HttpResponse, what: str) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        code = _gateway_code(response)
        if status == 429 or status >= 500:
            raise RetryableError(
                f"The WhatsApp gateway could not {what} now (HTTP {status}{', ' + code if code else ''}); retried automatically",
                retry_after=non_negative_number(response.headers.get("Retry-After")),
            )
        if status in (401, 403) and code != "not_admin":
            raise PermanentError(
                f"The WhatsApp gateway refused the key (HTTP {status}): put the gateway's API key into WHATSAPP_GATEWAY_KEY",
                "whatsapp_gateway_key_invalid",
            )
        if code == "not_admin":
            raise PermanentError(
                f"The gateway's WhatsApp account is not an admin of the group, so it cannot {what}: make that number "
                "a group admin in WhatsApp (Group info → Participants → Make group admin)",
                "whatsapp_gateway_not_admin",
            )
        if code == "unknown_group":
            raise PermanentError(
                "The WhatsApp gateway does not know this group: check the community's group id against the gateway's "
                "group list, and that the gateway's account is still in the group",
                "whatsapp_gateway_unknown_group",
            )
        if code == "logged_out":
            raise PermanentError(
                "The WhatsApp gateway's linked device is logged out (or the number was banned): link it again from the "
                "gateway (scan its QR code with WhatsApp → Linked devices)",
                "whatsapp_gateway_logged_out",
            )
        raise PermanentError(
            f"The WhatsApp gateway refused to {what} (HTTP {status}{', ' + code if code else ''}); retrying will not help: "
            "check the gateway's logs",
            f"whatsapp_gateway_{status}",
        )


# --- helpers --------------------------------------------------------------------------------


def truncate_text(text: str, limit: int = TEXT_LIMIT) -> str:
    """Fit a text message into WhatsApp's body limit (counted in characters)."""
    return fit_text(text, limit, count="code_points")


def _template_parameter(value: str) -> str:
    # Meta refuses template parameters with newlines or tabs, or more than 4 consecutive spaces.
    flat = re.sub(r"\s*[\r\n\t]+\s*", " ", str(value))
    flat = re.sub(r" {5,}", "    ", flat).strip()
    if not flat:
        raise PermanentError("a WhatsApp template parameter is empty: every template variable needs a value", "whatsapp_template_parameters")
    return flat[:TEMPLATE_PARAMETER_LIMIT]


def _group(group_id: str) -> str:
    if not isinstance(group_id, str) or not _GROUP_ID.match(group_id):
        raise PermanentError(
            f"group id {str(group_id)[:32]!r} is not a WhatsApp group id: copy the id the Groups API returned "
            "(letters, digits, - and _)",
            "whatsapp_group_id_invalid",
        )
    return group_id


def _segment(value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise PermanentError(f"{str(value)[:32]!r} is not a group id or phone the gateway accepts", "whatsapp_gateway_invalid_id")
    return urllib.parse.quote(value, safe="")


def _body(response: HttpResponse) -> dict[str, Any]:
    data = response.json()
    return data if isinstance(data, dict) else {}


def _graph_error(response: HttpResponse) -> dict[str, Any]:
    data = response.json()
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _gateway_code(response: HttpResponse) -> str:
    data = response.json()
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else error
    return code if isinstance(code, str) else ""


def _regain_access_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in X-Business-Use-Case-Usage, in seconds."""
    raw = headers.get("X-Business-Use-Case-Usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes = [
        non_negative_number(entry.get("estimated_time_to_regain_access"))
        for entries in (usage.values() if isinstance(usage, dict) else [])
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    longest = max((m for m in minutes if m), default=None)
    return longest * 60 if longest else None


# --- the connector (the core's CommunityConnector port, one per community mode) ---------------

# Outside the 24-hour window only approved templates are delivered. The core hands connectors a
# rendered text, so one generic template carries it as its single body variable; its name is
# configurable (WHATSAPP_NOTICE_TEMPLATE) and it must exist in each community language.
DEFAULT_NOTICE_TEMPLATE = "membergate_notice"


class WhatsAppConnector:
    """WhatsApp behind the core's CommunityConnector port; what it can do depends on the community's mode.

    - manual: "adding" the member sends them the group's invite link (and cancels a removal task
      still open for them: they paid again); removing opens a task for the creator.
    - official: Groups API (Official Business Accounts, 8 participants at most): invite link,
      join requests of the paying number approved, participants removed.
    - gateway (opt-in, against Meta's terms): the creator's gateway adds and removes by phone.
    """

    def preflight(self, community: Community, role_ids: Sequence[str]) -> Preflight:
        """No preflight yet (the connector does not declare Capability.PREFLIGHT): no checks, nothing refused."""
        return Preflight(checks=())


    platform: Any = None  # set in __init__ (Platform.WHATSAPP); a class attribute for the port's shape

    def __init__(
        self,
        cloud: WhatsAppCloudApi,
        store: Any,
        find_member: Callable[[str], str | None],
        clock: Callable[[], int],
        *,
        gateway: WhatsAppGateway | None = None,
        notice_template: str = DEFAULT_NOTICE_TEMPLATE,
        locale_of: Callable[[str], str] | None = None,
    ):
        from ..domain.access import Capability
        from ..domain.model import Platform

        self.platform = Platform.WHATSAPP
        self._cloud = cloud
        self._store = store
        self._find_member = find_member
        self._clock = clock
        self._gateway = gateway
        self._notice = notice_template or DEFAULT_NOTICE_TEMPLATE
        # The template's language must be one Meta approved: the member's community language.
        self._locale_of = locale_of or (lambda phone: "en")
        self._caps = {
            "manual": frozenset({Capability.ADD_MEMBER, Capability.REMOVE_MEMBER, Capability.MESSAGE}),
            "official": frozenset({Capability.CHECK_MEMBER, Capability.INVITE, Capability.APPROVE_JOIN,
                                   Capability.REMOVE_MEMBER, Capability.MESSAGE}),
            "gateway": frozenset({Capability.CHECK_MEMBER, Capability.ADD_MEMBER, Capability.REMOVE_MEMBER,
                                  Capability.MESSAGE}),
        }
        # Without a community (e.g. a message to a member), what every mode can do.
        self.capabilities = frozenset({Capability.MESSAGE})

    def capabilities_for(self, community: Any) -> frozenset:
        return self._caps.get(community.mode or "manual", self._caps["manual"])

    # -- presence ----------------------------------------------------------------------------

    def check_member(self, community: Any, user: str) -> Any:
        from ..domain.access import Presence, PresenceState

        mode = community.mode or "manual"
        if mode == "gateway":
            present = normalise_phone(user) in self._require_gateway().list_participants(community.external_id)
            return Presence(PresenceState.PRESENT if present else PresenceState.ABSENT)
        if mode == "official":
            phone = normalise_phone(user)
            if phone in self._cloud.get_group(community.external_id).participants:
                return Presence(PresenceState.PRESENT)
            if any(r.phone == phone for r in self._cloud.list_join_requests(community.external_id)):
                return Presence(PresenceState.REQUESTED)
            return Presence(PresenceState.ABSENT)
        return Presence(PresenceState.UNKNOWN)  # manual: WhatsApp does not tell a business

    # -- bringing in -------------------------------------------------------------------------

    def add_member(self, community: Any, user: str, roles: Sequence[str], credential: str | None) -> None:
        del roles, credential  # WhatsApp groups have no roles and no member token
        phone = normalise_phone(user)
        if (community.mode or "manual") == "gateway":
            self._require_gateway().add_participant(community.external_id, phone)
            return
        # Manual: paying again before the creator removed them cancels the removal task.
        self._store.cancel_removals(community.id, phone)
        if not community.invite_link:
            raise PermanentError(
                "this WhatsApp community has no invite link: add the group's link (Group info → Invite via link)",
                "whatsapp_invite_link_missing",
            )
        from ..domain.messages import render

        text = render("invite_group", community.locale, community=community.name, invite_url=community.invite_link)
        self.send_message(phone, text, idempotency_key=f"invite:{community.id}")

    def create_invite(self, community: Any, user: str, now: int) -> str:
        del user, now
        # Official groups admit by approved join request only, so one link serves every member.
        return community.invite_link or self._cloud.create_invite_link(community.external_id)

    def approve_join(self, community: Any, user: str) -> None:
        self._cloud.approve_join_requests_from(community.external_id, user)

    def decline_join(self, community: Any, user: str) -> None:
        phone = normalise_phone(user)
        mine = [r.id for r in self._cloud.list_join_requests(community.external_id) if r.phone == phone]
        self._cloud.reject_join_requests(community.external_id, mine)

    def grant_role(self, community: Any, user: str, role_id: str) -> None:
        raise PermanentError("WhatsApp groups have no roles", "unsupported_action")

    def revoke_role(self, community: Any, user: str, role_id: str) -> None:
        raise PermanentError("WhatsApp groups have no roles", "unsupported_action")

    # -- taking out --------------------------------------------------------------------------

    def remove_member(self, community: Any, user: str) -> None:
        phone = normalise_phone(user)
        mode = community.mode or "manual"
        if mode == "gateway":
            self._require_gateway().remove_participant(community.external_id, phone)
        elif mode == "official":
            self._cloud.remove_participants(community.external_id, [phone])
        else:
            # No API removes people from a group a business does not own: the creator does it.
            self._store.add_removal(community.id, phone, self._find_member(phone), self._clock())

    # -- messages ----------------------------------------------------------------------------

    def send_message(self, user: str, text: str, idempotency_key: str) -> None:
        """Text inside the member's 24-hour window, the notice template (carrying the text) outside it."""
        del idempotency_key  # the Cloud API has none; the core's message log keeps sends once
        phone = normalise_phone(user)
        last, now = self._store.last_inbound(phone), self._clock()
        # The language is looked up only when the template is what goes out (window closed).
        language = self._locale_of(phone) if message_kind(last, now) is not MessageKind.TEXT else "en"
        template = Template(self._notice, language, (text,))
        self._cloud.notify(phone, text, template, last_inbound_at=last, now=now)

    def _require_gateway(self) -> WhatsAppGateway:
        if self._gateway is None:
            raise PermanentError(
                "this community is in gateway mode but no gateway is configured: set WHATSAPP_GATEWAY_URL and "
                "WHATSAPP_GATEWAY_KEY_NAME, or switch the community to manual mode",
                "whatsapp_gateway_missing",
            )
        return self._gateway
