"""Names members read: what is left once invisible characters (spaces, format, control) are taken out."""

from __future__ import annotations

import unicodedata

# Spaces (Zs), format characters such as zero-width and direction marks (Cf), and controls (Cc):
# a name made only of these shows as empty, or turns the text around it backwards.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Cc"})


def visible_text(value: str) -> str:
    """``value`` without its invisible characters ("" when nothing a member could read is left)."""
    return "".join(c for c in value if unicodedata.category(c) not in INVISIBLE_CATEGORIES)
