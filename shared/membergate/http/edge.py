"""What every request passes before any route runs: body size, encoding, JSON shape, ids, ASCII secrets.

One place for the limits, so each route answers the same 4xx envelope for the same hostile input.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from ..domain.errors import InvalidRequestError
from .errors import PayloadTooLargeError, UnsupportedMediaTypeError

# Lambda's synchronous invocation payload limit: Stripe never sends more, nothing larger can arrive.
STRIPE_WEBHOOK_BODY_LIMIT = 6 * 1024 * 1024
# What a member form or an admin call can reasonably need (a plan with 20 prices and 20 grants is ~3 KiB).
MEMBER_BODY_LIMIT = 64 * 1024
ADMIN_BODY_LIMIT = 64 * 1024
# No request Membergate reads nests deeper than a few levels; anything deeper is hostile.
MAX_JSON_DEPTH = 32
# Plan, member, claim, OAuth state and code ids: what new_token, Stripe and Discord produce.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CSV = "text/csv"
# A migration's member import (a CSV of up to 100 rows a request, with emails and names: room to spare).
IMPORT_BODY_LIMIT = 1024 * 1024


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None


def require_id(value: object, field: str) -> str:
    """The id, or InvalidRequestError: ids reach keys, URLs and Location headers, so only safe characters."""
    if not is_id(value):
        raise InvalidRequestError(f"{field}: not a valid id (letters, digits, '_' and '-' only)", field=field)
    return value  # type: ignore[return-value]


def ascii_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets; anything non-ASCII is simply unequal (never an error)."""
    if not given.isascii() or not expected.isascii():
        return False
    return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))


def raw_body(event: Mapping[str, Any], limit: int) -> bytes:
    """The request body as bytes, bounded by ``limit`` (PayloadTooLargeError) and decoded from base64."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise InvalidRequestError("the body could not be read", field="body")
    if event.get("isBase64Encoded"):
        # Base64 is 4 bytes for every 3: refuse before decoding anything large.
        if len(body) > (limit + 2) // 3 * 4 + 4:
            raise PayloadTooLargeError(limit)
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("the body is not valid base64; send it as sent by the browser", field="body") from None
    else:
        if len(body) > limit:  # characters: at least one byte each
            raise PayloadTooLargeError(limit)
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > limit:
        raise PayloadTooLargeError(limit)
    return raw


def body_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("the body is not valid UTF-8; send it encoded as UTF-8", field="body") from None


# No field takes a number anywhere near this long (epoch seconds have 10 digits, amounts fewer);
# below Python's own 4,300-digit limit, whose error would read as "not valid JSON".
MAX_INT_DIGITS = 100


class _NumberTooLarge(Exception):
    """An integer literal longer than MAX_INT_DIGITS (raised by the parser's hook, outside ValueError)."""


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise _NumberTooLarge(literal)
    return int(literal)


def load_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from a request, refusing whatever would make the parser or validators fail later."""
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise InvalidRequestError(f"the body nests deeper than {max_depth} levels; send the documented shape", field="body") from None
    except _NumberTooLarge as error:
        raise InvalidRequestError(
            f"the body holds a number too large ({len(str(error).lstrip('-'))} digits; at most {MAX_INT_DIGITS}): "
            "send the documented value", field="body") from None
    except ValueError:  # JSONDecodeError, and integers longer than Python converts
        raise InvalidRequestError("the body is not valid JSON; send a JSON object", field="body") from None
    if json_depth(value) > max_depth:
        raise InvalidRequestError(f"the body nests deeper than {max_depth} levels; send the documented shape", field="body")
    return value


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (a recursive walk would overflow on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def media_type(headers: Mapping[str, str]) -> str:
    return (headers.get("content-type") or "").split(";")[0].strip().lower()


def guard_body(event: Mapping[str, Any], limit: int, accepted: tuple[str, ...]) -> None:
    """Refuse, before routing, a body that is too large (413), of a type the route does not read
    (415), not UTF-8 or JSON that would break the parser (400). Bodiless requests pass."""
    raw = raw_body(event, limit)
    if not raw:
        return
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    kind = media_type(headers) or JSON  # curl and most clients omit it for JSON
    if kind not in accepted and not (kind.endswith("+json") and JSON in accepted):
        raise UnsupportedMediaTypeError(f"send the body as {' or '.join(accepted)} (got {kind[:60]})")
    text = body_text(raw)
    value = load_json(text) if kind not in (FORM, CSV) else {}
    if value is not None and not isinstance(value, dict):
        # Every JSON body Membergate reads is an object (``null``: the documented "no body" of an optional
        # one); an array or a bare value, even an empty one a lenient optional body would read as absent,
        # is refused here, said the same way.
        raise InvalidRequestError("the body is not a JSON object; send the documented object (or no body)", field="body")
