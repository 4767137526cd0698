"""What every platform adapter needs the same way: fitting a message, reading a number, a token's fingerprint."""

from __future__ import annotations

import hashlib
import math
import unicodedata
from typing import Any, Literal

Counting = Literal["utf16", "code_points"]


def fit_text(text: str, limit: int, count: Counting = "code_points") -> str:
    """Fit ``text`` into a platform's length limit, ending with "…" when it had to be cut.

    ``count`` is how the platform counts: "utf16" (Discord and Telegram count UTF-16 code units,
    so an emoji outside the BMP counts 2) or "code_points" (WhatsApp). The cut never splits a
    character or an emoji sequence (accents, ZWJ sequences, skin tones, flags), and falls on a
    space or line break when one is within the last 80 characters."""
    measure = _utf16_len if count == "utf16" else len
    if measure(text) <= limit:
        return text
    budget = limit - 1  # room for the ellipsis
    end = min(len(text), budget)
    while end and measure(text[:end]) > budget:
        end -= 1
    # Back off while the next character would extend the last one.
    while end and (_extends(text[end]) or text[end - 1] == "\u200d"):
        end -= 1
    cut = text[:end]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > 0 and space >= end - 80:
        cut = cut[:space]
    return cut.rstrip() + "…"


def non_negative_number(value: Any) -> float | None:
    """A finite number ≥ 0 from a JSON number or a numeric header; None for anything else (booleans too)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def fingerprint(token: str) -> str:
    """A token's SHA-256: adapters remember a refused token by it, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def _extends(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char in ("\u200d", "\u20e3")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences (subdivision flags)
    )


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
