"""Account handles as a member recognises them ("Alice (@alice)", "@bob"), cleaned for display and storage."""

from __future__ import annotations

import unicodedata

# Discord names are at most 32 characters, Telegram's first_name 64: longer is not a platform's answer.
HANDLE_LIMIT = 64


def clean(value: object) -> str:
    """Printable text only (no CR/LF or other controls, no bidi overrides), trimmed to the limit."""
    if not isinstance(value, str):
        return ""
    # A line break becomes a space (the words stay apart); format characters (bidi overrides) go.
    kept = "".join(" " if unicodedata.category(c) == "Cc" else "" if unicodedata.category(c)[0] == "C" else c
                   for c in value)
    return " ".join(kept.split())[:HANDLE_LIMIT]


def discord_handle(username: object, global_name: object) -> str | None:
    """Discord shows the display name (global_name) and the unique @username: both, when both exist."""
    user, shown = clean(username), clean(global_name)
    if user and shown and shown.lower() != user.lower():
        return f"{shown} (@{user})"
    if user:
        return f"@{user}"
    return shown or None


def telegram_handle(username: object, first_name: object) -> str | None:
    """Telegram's @username when the account has one, else its first name (usernames are optional)."""
    user, first = clean(username), clean(first_name)
    if user:
        return f"@{user}"
    return first or None
