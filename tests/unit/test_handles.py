"""Account handles: what the member recognises, cleaned of anything a page or a log should not carry."""

from __future__ import annotations

import pytest

from membergate.domain.handles import HANDLE_LIMIT, clean, discord_handle, telegram_handle

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("username", "global_name", "expected"), [
    ("alice", "Alice L.", "Alice L. (@alice)"),
    ("alice", "ALICE", "@alice"),  # the same name twice says nothing more
    ("alice", None, "@alice"),
    (None, "Alice", "Alice"),
    (None, None, None),
    (42, {"x": 1}, None),  # not strings: not a name
])
def test_discord_handle_display_name_and_username(username, global_name, expected):
    # Given a /users/@me answer / When its handle is made / Then it reads as Discord shows the account
    assert discord_handle(username, global_name) == expected


@pytest.mark.parametrize(("username", "first_name", "expected"), [
    ("ana_b", "Ana", "@ana_b"),
    (None, "Ana", "Ana"),
    ("", "", None),
])
def test_telegram_handle_username_else_first_name(username, first_name, expected):
    assert telegram_handle(username, first_name) == expected


def test_clean_handle_drops_controls_and_bidi_overrides_and_bounds_the_length():
    # Given a name with CR/LF, a right-to-left override and far too many characters
    hostile = "Eve\r\nSet-Cookie: x\u202e" + "é" * 500
    # When it is cleaned
    cleaned = clean(hostile)
    # Then no control or format character is left and it fits the limit
    assert "\r" not in cleaned and "\n" not in cleaned and "\u202e" not in cleaned
    assert cleaned.startswith("Eve Set-Cookie: x") and len(cleaned) == HANDLE_LIMIT
