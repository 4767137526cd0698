"""fit_text, non_negative_number and fingerprint: the helpers every platform adapter shares."""

from __future__ import annotations

from membergate.adapters import discord, telegram, whatsapp
from membergate.adapters.platform_text import fingerprint, fit_text, non_negative_number


def test_fit_text_within_limit_unchanged():
    # Given a text exactly at the limit, in either counting
    # Then it is returned as it is
    assert fit_text("x" * 10, 10) == "x" * 10
    assert fit_text("😀" * 5, 10, count="utf16") == "😀" * 5


def test_fit_text_utf16_counts_astral_characters_twice():
    # Given 6 emoji (12 UTF-16 units, 6 code points) and a limit of 10
    text = "😀" * 6
    # When fitted by each counting
    # Then UTF-16 cuts (4 emoji + "…" = 9 units), code points keep it whole
    assert fit_text(text, 10, count="utf16") == "😀" * 4 + "…"
    assert fit_text(text, 10, count="code_points") == text


def test_fit_text_never_splits_an_emoji_sequence():
    # Given a family emoji (ZWJ sequence) straddling the limit
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    text = "ab" + family + "cd"
    # When fitted to 5 code points
    fitted = fit_text(text, 5)
    # Then the sequence is dropped whole, never cut inside, and the result fits
    assert fitted == "ab…"
    assert len(fitted) <= 5


def test_fit_text_cuts_at_a_space_near_the_end():
    # Given words longer than the limit
    text = "word " * 30
    # When fitted to 42 characters
    fitted = fit_text(text, 42)
    # Then it ends at a word boundary with an ellipsis
    assert fitted.endswith("word…") and len(fitted) <= 42


def test_platform_truncation_uses_each_platforms_limit_and_counting():
    # Given one long emoji text
    text = "😀" * 3000
    # Then Discord and Telegram count UTF-16 units, WhatsApp characters
    assert len(discord.truncate_message(text).encode("utf-16-le")) // 2 <= 2000
    assert len(telegram.truncate_message(text).encode("utf-16-le")) // 2 <= 4096
    assert len(whatsapp.truncate_text(text * 2)) <= 4096
    assert whatsapp.truncate_text(text) == text  # 3000 characters fit WhatsApp's 4096


def test_non_negative_number_reads_numbers_and_numeric_headers_only():
    assert non_negative_number(1.5) == 1.5
    assert non_negative_number("0.25") == 0.25
    assert non_negative_number(True) is None
    assert non_negative_number(None) is None
    assert non_negative_number("soon") is None
    assert non_negative_number(-1) is None
    assert non_negative_number("nan") is None
    assert non_negative_number(float("inf")) is None


def test_fingerprint_is_stable_and_hides_the_token():
    assert fingerprint("secret") == fingerprint("secret")
    assert fingerprint("secret") != fingerprint("secret2")
    assert "secret" not in fingerprint("secret") and len(fingerprint("secret")) == 64
