"""WhatsApp rules: E.164 phones, Meta's webhook shape, one-time codes, wa.me links, signatures, the 24-hour window.

What the platform allows, stated plainly (docs/whatsapp.md has the long version):

- Meta's official Groups API (Cloud API) is only open to Official Business Accounts and caps a
  group at 8 participants: it suits coaching circles and masterminds, not a paid community.
- Larger WhatsApp groups can only be managed through unofficial "linked device" gateways that
  drive a WhatsApp account like a phone would. They break Meta's terms of service and can get the
  number banned, so Membergate uses one only when the creator opts in (``gateway`` mode).
- Otherwise (``manual`` mode) the member receives the group's invite link and the creator gets a
  removal task when access ends: WhatsApp gives a business no API to remove people from a
  group it does not own through the Groups API.

Everything here is pure (stdlib only, ``now`` passed in), so the rules are tested without a network.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ForbiddenError, InvalidRequestError, MalformedEventError, SignatureError


class WhatsAppMode(enum.StrEnum):
    """How a WhatsApp community's membership is managed; the creator chooses per community."""

    OFFICIAL = "official"  # Groups API: invite link, approve join requests, remove participants (<= 8 people)
    MANUAL = "manual"  # the member gets the invite link; the creator removes people by hand from tasks
    GATEWAY = "gateway"  # opt-in self-hosted linked-device gateway; against Meta's terms, ban risk


# Groups API limit (Cloud API "Groups" docs): at most 8 participants besides the business.
OFFICIAL_GROUP_MAX_PARTICIPANTS = 8

# Free-form messages are allowed for 24 hours after the member's last message to the business
# (the "customer service window"); outside it only approved templates are delivered.
SERVICE_WINDOW_SECONDS = 24 * 3600
# Text is chosen only with this much of the window left, so a message queued for a few minutes
# does not arrive after the window closed (Meta would refuse it with 131047).
WINDOW_SAFETY_MARGIN_SECONDS = 300

# --- phones ---------------------------------------------------------------------------------

# E.164: a country code that never starts with 0, at most 15 digits in all. The shortest
# numbers in service have 7 digits with the country code (e.g. Saint Helena, +290 xxxx).
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Separators people type or paste; anything else (letters, non-ASCII digits) is refused.
_SEPARATORS = re.compile(r"[ \t\-.()/\u00a0]")


def normalise_phone(raw: str, *, assume_international: bool = False) -> str:
    """Return ``raw`` as E.164 (``+`` and digits only), or raise InvalidRequestError saying how to fix it.

    ``+33 6 12 34 56 78`` and ``0033 6 12 34 56 78`` both give ``+33612345678``. Digits without
    ``+`` or ``00`` are refused unless ``assume_international`` (Meta's ``wa_id`` and ``from``
    fields are international numbers without the ``+``): ``0612345678`` could be any country."""
    if not isinstance(raw, str):
        raise InvalidRequestError("a phone number must be text such as +33612345678", "phone")
    compact = _SEPARATORS.sub("", raw.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif not compact.startswith("+"):
        if not assume_international:
            raise InvalidRequestError(
                f"{_shown(raw)} has no country code: write it in international form, starting with + and the "
                "country code (for example +33612345678 for a French mobile)",
                "phone",
            )
        compact = "+" + compact
    if not _E164.match(compact):
        raise InvalidRequestError(
            f"{_shown(raw)} is not an international phone number: use + then the country code and number, "
            "digits only, 7 to 15 digits in all (for example +33612345678)",
            "phone",
        )
    return compact


def is_e164(value: str) -> bool:
    return isinstance(value, str) and bool(_E164.match(value))


def phone_digits(phone: str) -> str:
    """The digits of an E.164 phone, as wa.me links, Meta's ``to`` and ``wa_id`` fields use them."""
    return normalise_phone(phone)[1:]


def _shown(raw: Any) -> str:
    return repr(str(raw)[:32])


# --- one-time codes and the wa.me link -------------------------------------------------------

# Codes are read back from a message a person may retype, so the alphabet leaves out
# look-alikes (0/O, 1/I/L, U/V) and is matched case-insensitively.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
CODE_LENGTH = 10  # 29**10, about 48 bits: guessing a live code within its lifetime is not practical
CODE_PREFIX = "MG"
_CODE_IN_TEXT = re.compile(
    rf"(?<![A-Za-z0-9]){CODE_PREFIX}[ \-]?([{CODE_ALPHABET}]{{5}})[ \-]?([{CODE_ALPHABET}]{{5}})(?![A-Za-z0-9])",
    re.IGNORECASE,
)


CODE_SPACE = len(CODE_ALPHABET) ** CODE_LENGTH


def format_code(number: int) -> str:
    """A one-time code such as ``MG-7KQ4X-2PDHN`` from a random integer in ``range(CODE_SPACE)``
    (the caller draws it, e.g. ``secrets.randbelow(CODE_SPACE)``, so every code is equally likely)."""
    if not 0 <= number < CODE_SPACE:
        raise ValueError("format_code takes a number in range(CODE_SPACE)")
    chars = []
    for _ in range(CODE_LENGTH):
        number, index = divmod(number, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[index])
    code = "".join(chars)
    return f"{CODE_PREFIX}-{code[:5]}-{code[5:]}"


def find_code(text: str | None) -> str | None:
    """The one code in a member's message (any case, dashes or spaces optional), canonical; None if
    there is none or several different ones (a message with two codes binds nothing)."""
    if not text:
        return None
    found = {f"{CODE_PREFIX}-{a.upper()}-{b.upper()}" for a, b in _CODE_IN_TEXT.findall(text)}
    return found.pop() if len(found) == 1 else None


def wa_me_link(business_number: str, text: str) -> str:
    """``https://wa.me/<digits>?text=<text>``: opens a chat with the business, the text typed in."""
    return f"https://wa.me/{phone_digits(business_number)}?text={urllib.parse.quote(text, safe='')}"


# --- webhook signature and subscription handshake ---------------------------------------------

_SIGNATURE_PREFIX = b"sha256="


def compute_signature(app_secret: str, raw_body: bytes) -> str:
    """The X-Hub-Signature-256 header Meta sends: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_signature(raw_body: bytes, header: str | None, app_secrets: str | Iterable[str]) -> None:
    """Raise SignatureError unless ``header`` is the HMAC of exactly these bytes under one of the secrets.

    Non-ASCII headers are refused before any comparison: compare_digest would raise on them, and
    no valid signature contains them. The comparison is over bytes, in constant time."""
    if not header:
        raise SignatureError("missing X-Hub-Signature-256 header")
    if not header.isascii():
        raise SignatureError("X-Hub-Signature-256 is not ASCII")
    given = header.strip().encode("ascii")
    if not given.startswith(_SIGNATURE_PREFIX) or len(given) != len(_SIGNATURE_PREFIX) + 64:
        raise SignatureError("X-Hub-Signature-256 must be 'sha256=' and 64 hex digits")
    given = given.lower()
    secrets = [app_secrets] if isinstance(app_secrets, str) else list(app_secrets)
    matched = False
    for secret in secrets:
        if secret:
            expected = compute_signature(secret, raw_body).encode("ascii")
            # No early exit: every configured secret costs the same time.
            matched = hmac.compare_digest(expected, given) or matched
    if not matched:
        raise SignatureError("X-Hub-Signature-256 does not match the app secret (WHATSAPP_APP_SECRET)")


# Meta sends a number; anything else is refused rather than echoed back to the caller.
_CHALLENGE = re.compile(r"^[A-Za-z0-9_\-]{1,256}$")


def verify_subscription(params: Mapping[str, str], verify_token: str) -> str:
    """The GET handshake Meta makes when the webhook is configured: return ``hub.challenge`` to echo
    with 200, or raise ForbiddenError (403)."""
    mode = params.get("hub.mode")
    token = params.get("hub.verify_token") or ""
    challenge = params.get("hub.challenge") or ""
    if mode != "subscribe":
        raise ForbiddenError("hub.mode must be 'subscribe'")
    if not verify_token:
        raise ForbiddenError(
            "no verify token is configured: set WHATSAPP_VERIFY_TOKEN, then type the same value as the "
            "Verify token in the Meta app dashboard (WhatsApp → Configuration → Webhook)"
        )
    if not token.isascii() or not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise ForbiddenError(
            "hub.verify_token does not match: type the value of WHATSAPP_VERIFY_TOKEN as the Verify token in "
            "the Meta app dashboard (WhatsApp → Configuration → Webhook)"
        )
    if not _CHALLENGE.match(challenge):
        raise ForbiddenError("hub.challenge is missing or not a plain token")
    return challenge


# --- the 24-hour window ---------------------------------------------------------------------


class MessageKind(enum.StrEnum):
    TEXT = "text"  # free-form, only inside the customer service window
    TEMPLATE = "template"  # a pre-approved template, any time


def window_open(last_inbound_at: int | None, now: int, *, margin: int = WINDOW_SAFETY_MARGIN_SECONDS) -> bool:
    """True while a free-form text sent now still lands inside the window opened by the member's
    last message (``last_inbound_at``, the webhook timestamp), with ``margin`` seconds to spare."""
    if last_inbound_at is None:
        return False
    return now < last_inbound_at + SERVICE_WINDOW_SECONDS - margin


def message_kind(last_inbound_at: int | None, now: int, *, margin: int = WINDOW_SAFETY_MARGIN_SECONDS) -> MessageKind:
    """Text inside the 24-hour window, an approved template outside it."""
    return MessageKind.TEXT if window_open(last_inbound_at, now, margin=margin) else MessageKind.TEMPLATE


# --- Graph API error codes ------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorClass:
    """What a Cloud API error code means for Membergate: retry later, or a stable reason and a fix."""

    retryable: bool
    reason: str
    advice: str
    retry_after: float | None = None


_TOKEN_ADVICE = (
    "Meta rejected the WhatsApp access token (expired or revoked). In Meta Business Settings → System users, "
    "generate a permanent token with whatsapp_business_messaging and whatsapp_business_management for this "
    "app and put it in the secret named by WHATSAPP_ACCESS_TOKEN."
)
_RATE_ADVICE = "WhatsApp is limiting how fast this number sends; Membergate retries by itself, nothing to do."

# Codes from Meta's "Error codes" reference (Cloud API); they arrive either in the answer to a
# request or later, in a "failed" status webhook (131047 and 131026 usually come that way).
GRAPH_ERRORS: dict[int, ErrorClass] = {
    0: ErrorClass(False, "whatsapp_token_invalid", _TOKEN_ADVICE),  # AuthException
    190: ErrorClass(False, "whatsapp_token_invalid", _TOKEN_ADVICE),
    10: ErrorClass(
        False, "whatsapp_permission_denied",
        "The access token lacks a WhatsApp permission. Give the system user whatsapp_business_messaging and "
        "whatsapp_business_management for this WhatsApp Business Account, then create a new token.",
    ),
    200: ErrorClass(
        False, "whatsapp_permission_denied",
        "The access token lacks a WhatsApp permission. Give the system user whatsapp_business_messaging and "
        "whatsapp_business_management for this WhatsApp Business Account, then create a new token.",
    ),
    100: ErrorClass(
        False, "whatsapp_invalid_request",
        "WhatsApp refused a parameter: check WHATSAPP_PHONE_NUMBER_ID (WhatsApp Manager → Phone numbers) and the "
        "community's group id; report it to Membergate if they are right.",
    ),
    4: ErrorClass(True, "whatsapp_rate_limited", _RATE_ADVICE, 60.0),  # app-level call limit
    80007: ErrorClass(True, "whatsapp_rate_limited", _RATE_ADVICE, 60.0),  # WhatsApp Business Account limit
    130429: ErrorClass(True, "whatsapp_rate_limited", _RATE_ADVICE, 1.0),  # throughput (messages per second)
    131056: ErrorClass(True, "whatsapp_rate_limited", _RATE_ADVICE, 6.0),  # pair limit: same recipient too often
    131048: ErrorClass(
        True, "whatsapp_spam_limited",
        "WhatsApp paused messages from this number because recipients blocked or reported it. Check the "
        "number's quality rating in WhatsApp Manager; Membergate retries later.", 3600.0,
    ),
    131000: ErrorClass(True, "whatsapp_unavailable", "WhatsApp had an internal error; Membergate retries by itself."),
    131016: ErrorClass(True, "whatsapp_unavailable", "WhatsApp is overloaded; Membergate retries by itself.", 60.0),
    1: ErrorClass(True, "whatsapp_unavailable", "WhatsApp had an internal error; Membergate retries by itself."),
    2: ErrorClass(True, "whatsapp_unavailable", "WhatsApp is temporarily unavailable; Membergate retries by itself."),
    131047: ErrorClass(
        False, "whatsapp_window_closed",
        "More than 24 hours passed since the member last wrote to you, so WhatsApp only delivers approved "
        "templates: Membergate sends the template instead; check the template names in the settings.",
    ),
    470: ErrorClass(  # the same rule under its older code
        False, "whatsapp_window_closed",
        "More than 24 hours passed since the member last wrote to you, so WhatsApp only delivers approved "
        "templates: Membergate sends the template instead; check the template names in the settings.",
    ),
    131026: ErrorClass(
        False, "whatsapp_undeliverable",
        "WhatsApp could not deliver to this number: it may not be on WhatsApp, may run an old WhatsApp version "
        "or may not have accepted WhatsApp's latest terms. Ask the member to update WhatsApp and write to your "
        "business number once; Membergate then delivers what is pending.",
    ),
    131050: ErrorClass(
        False, "whatsapp_member_opted_out",
        "The member stopped marketing messages from your business in WhatsApp; they still get service messages "
        "after writing to you.",
    ),
    131031: ErrorClass(
        False, "whatsapp_account_locked",
        "Meta locked your WhatsApp Business Account (policy or payment). Open WhatsApp Manager → Account quality "
        "to see why and request a review.",
    ),
    131042: ErrorClass(
        False, "whatsapp_payment_issue",
        "Meta refused to send because of a payment problem on the WhatsApp Business Account: add or fix the "
        "payment method in WhatsApp Manager → Billing.",
    ),
    368: ErrorClass(
        False, "whatsapp_policy_block",
        "Meta temporarily blocked this number for a policy violation. Open WhatsApp Manager → Account quality "
        "for the reason and the end date.",
    ),
    132000: ErrorClass(
        False, "whatsapp_template_parameters",
        "The template's variables do not match what Membergate sends: the body of each Membergate template must "
        "have exactly the variables listed in docs/whatsapp.md.",
    ),
    132001: ErrorClass(
        False, "whatsapp_template_missing",
        "The template does not exist in that language, or is not approved yet: create it in WhatsApp Manager → "
        "Message templates with the name and language Membergate uses (docs/whatsapp.md), or change the template "
        "names in the settings.",
    ),
    132015: ErrorClass(
        False, "whatsapp_template_paused",
        "Meta paused the template for low quality: edit it in WhatsApp Manager → Message templates, or point "
        "Membergate at another approved template.",
    ),
    132016: ErrorClass(
        False, "whatsapp_template_disabled",
        "Meta disabled the template: create a new one in WhatsApp Manager → Message templates and set its name in "
        "the settings.",
    ),
}


def classify_error(code: int | None, http_status: int | None = None) -> ErrorClass:
    """The meaning of a Graph API error code; unknown codes are retried on 5xx/429 and shown otherwise."""
    known = GRAPH_ERRORS.get(code) if code is not None else None
    if known is not None:
        return known
    if http_status is not None and (http_status >= 500 or http_status == 429):
        return ErrorClass(True, "whatsapp_unavailable", "WhatsApp is temporarily unavailable; Membergate retries by itself.")
    return ErrorClass(
        False, f"whatsapp_error_{code}" if code is not None else "whatsapp_error",
        f"WhatsApp refused the request (error {code}); retrying will not help. Look the code up in Meta's Cloud API "
        "error codes reference, and report it to Membergate if the settings look right.",
    )


# --- webhook payloads -----------------------------------------------------------------------


@dataclass(frozen=True)
class InboundMessage:
    """A message a person sent to the business number; it opens (or renews) the 24-hour window."""

    phone: str  # E.164
    message_id: str
    timestamp: int  # seconds since the epoch, as Meta stamped it
    type: str
    text: str | None  # the text of text messages and of button and interactive replies
    profile_name: str | None
    phone_number_id: str  # the business number that received it


@dataclass(frozen=True)
class StatusUpdate:
    """What became of a message the business sent (sent, delivered, read, failed)."""

    message_id: str
    phone: str | None  # E.164; None for a message sent to a group
    status: str
    timestamp: int
    error_codes: tuple[int, ...] = ()

    @property
    def failure(self) -> ErrorClass | None:
        if self.status != "failed":
            return None
        return classify_error(self.error_codes[0] if self.error_codes else None)


@dataclass(frozen=True)
class GroupEvent:
    """A Groups API event (official mode): a group created or deleted, people added or removed.

    Creating a group is asynchronous: the create call returns a request id, and the group id
    arrives later in a ``group_create`` event carrying that request id."""

    type: str  # group_create, group_delete, group_settings_update, group_add_participants, group_remove_participants
    group_id: str
    request_id: str
    timestamp: int
    subject: str | None = None
    added: tuple[str, ...] = ()  # E.164
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebhookBatch:
    messages: tuple[InboundMessage, ...]
    statuses: tuple[StatusUpdate, ...]
    skipped: int  # items that were not understood (logged by the caller, never retried by Meta)
    groups: tuple[GroupEvent, ...] = ()


def parse_webhook(payload: Any) -> WebhookBatch:
    """Read Meta's ``entry[].changes[].value`` shape into inbound messages and statuses.

    Raises MalformedEventError only when the envelope is not a WhatsApp webhook at all. A single
    item that cannot be read is counted in ``skipped`` rather than failing the batch: Meta
    redelivers a refused webhook for days, so one odd item must not block the others."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise MalformedEventError("not a WhatsApp Business Account webhook (object must be 'whatsapp_business_account')")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise MalformedEventError("a WhatsApp webhook without an entry list")
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    groups: list[GroupEvent] = []
    skipped = 0
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            skipped += 1
            continue
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                skipped += 1
                continue
            if change.get("field") in _GROUP_FIELDS:
                for item in _list(value.get("groups")):
                    event = _group_event(item)
                    if event is None:
                        skipped += 1
                    else:
                        groups.append(event)
                continue
            if change.get("field") != "messages":
                continue  # fields Membergate does not subscribe to
            found_metadata = value.get("metadata")
            metadata: dict[str, Any] = found_metadata if isinstance(found_metadata, dict) else {}
            number_id = str(metadata.get("phone_number_id", ""))
            names = _profile_names(value.get("contacts"))
            for item in _list(value.get("messages")):
                message = _inbound(item, names, number_id)
                if message is None:
                    skipped += 1
                else:
                    messages.append(message)
            for item in _list(value.get("statuses")):
                status = _status(item)
                if status is None:
                    skipped += 1
                else:
                    statuses.append(status)
    return WebhookBatch(tuple(messages), tuple(statuses), skipped, tuple(groups))


_GROUP_FIELDS = frozenset({"group_lifecycle_update", "group_participant_update", "group_settings_update"})


def _group_event(item: Any) -> GroupEvent | None:
    if not isinstance(item, dict):
        return None
    kind, group_id, request_id = item.get("type"), item.get("group_id"), item.get("request_id")
    timestamp = _epoch(item.get("timestamp"))
    if not isinstance(kind, str) or not isinstance(group_id, str) or not isinstance(request_id, str) or timestamp is None:
        return None

    def phones(key: str) -> tuple[str, ...]:
        found = []
        for participant in _list(item.get(key)):
            wa_id = participant.get("wa_id") if isinstance(participant, dict) else None
            if not isinstance(wa_id, str):
                continue
            try:
                found.append(normalise_phone(wa_id, assume_international=True))
            except InvalidRequestError:
                continue
        return tuple(found)

    subject = item.get("subject")
    return GroupEvent(kind, group_id, request_id, timestamp, subject if isinstance(subject, str) else None,
                      phones("added_participants"), phones("removed_participants"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _profile_names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in _list(contacts):
        if not isinstance(contact, dict):
            continue
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        wa_id = contact.get("wa_id")
        if isinstance(name, str) and isinstance(wa_id, str):
            names[wa_id] = name
    return names


def _inbound(item: Any, names: Mapping[str, str], number_id: str) -> InboundMessage | None:
    if not isinstance(item, dict):
        return None
    sender, message_id, kind = item.get("from"), item.get("id"), item.get("type")
    timestamp = _epoch(item.get("timestamp"))
    if not isinstance(sender, str) or not isinstance(message_id, str) or not isinstance(kind, str) or timestamp is None:
        return None
    try:
        # ``from`` is the sender's WhatsApp id: their international number without "+". Meta notes
        # it can differ from the number the person typed (e.g. Brazil's extra 9, Mexico's 1).
        phone = normalise_phone(sender, assume_international=True)
    except InvalidRequestError:
        return None
    return InboundMessage(
        phone=phone,
        message_id=message_id,
        timestamp=timestamp,
        type=kind,
        text=_text_of(item, kind),
        profile_name=names.get(sender),
        phone_number_id=number_id,
    )


def _text_of(item: Mapping[str, Any], kind: str) -> str | None:
    def dig(*path: str) -> str | None:
        node: Any = item
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, str) else None

    if kind == "text":
        return dig("text", "body")
    if kind == "button":
        return dig("button", "text")
    if kind == "interactive":
        return dig("interactive", "button_reply", "title") or dig("interactive", "list_reply", "title")
    return None


def _status(item: Any) -> StatusUpdate | None:
    if not isinstance(item, dict):
        return None
    message_id, status = item.get("id"), item.get("status")
    timestamp = _epoch(item.get("timestamp"))
    if not isinstance(message_id, str) or not isinstance(status, str) or timestamp is None:
        return None
    phone = None
    if isinstance(item.get("recipient_id"), str) and not item.get("group_id"):
        try:
            phone = normalise_phone(item["recipient_id"], assume_international=True)
        except InvalidRequestError:
            phone = None
    codes = tuple(
        e["code"] for e in _list(item.get("errors"))
        if isinstance(e, dict) and isinstance(e.get("code"), int) and not isinstance(e.get("code"), bool)
    )
    return StatusUpdate(message_id, phone, status, timestamp, codes)


def _epoch(value: Any) -> int | None:
    # Meta sends timestamps as strings of seconds ("1749416383").
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
